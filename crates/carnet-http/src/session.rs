//! Sessions on the wire: the `__Host-` cookie, the middleware that turns it into an
//! `Actor` (or a reason for refusal), and the CSRF check on state-changing requests.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use carnet_service::SessionState;

use crate::{ApiError, AppState};

/// The session cookie: `__Host-` (Secure, no Domain, Path=/), HttpOnly, SameSite=Strict.
pub const SESSION_COOKIE: &str = "__Host-carnet-session";

/// Why a request with a session cookie carries no actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionProblem {
    /// Idle for too long: 423 and the lock screen.
    Locked,
    /// The second factor is still due.
    SecondFactorRequired,
    /// The password is older than allowed: only changing it is served.
    PasswordExpired,
    /// The device is not approved yet: only the account's own pages are served.
    DevicePending,
    /// Unknown, forged, expired or revoked.
    Invalid,
}

/// The actor of a session whose password expired: only the password change takes it.
#[derive(Clone, Debug)]
pub struct ExpiredPasswordActor(pub carnet_service::Actor);

/// The raw session token of the request, for the endpoints that act on the session.
#[derive(Clone, Debug)]
pub struct SessionToken(pub String);

/// The session cookie's value, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, SESSION_COOKIE)
}

fn cookie_named(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

/// `Set-Cookie` for a new session token.
pub fn session_cookie_header(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static(
            "__Host-carnet-session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        )
    })
}

/// The device cookie: a random secret naming this browser, kept 400 days (the most
/// browsers allow).
pub const DEVICE_COOKIE: &str = "__Host-carnet-device";

/// The device cookie's value, if any.
pub fn device_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, DEVICE_COOKIE)
}

/// `Set-Cookie` for a new device secret.
pub fn device_cookie_header(secret: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{DEVICE_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=34560000"
    ))
    .ok()
}

/// Where a signed-in person on a device still waiting for approval may go: their
/// account, sessions, passkeys and devices — nothing of the practice.
const PENDING_DEVICE_PATHS: [&str; 8] = [
    "/messages/lus",
    "/api/v1/auth/",
    "/sessions",
    "/mot-de-passe",
    "/cles-d-acces",
    "/appareils",
    "/deconnexion",
    "/deverrouiller",
];

/// The answer to any request from a blocked device: the browser is told to forget
/// Carnet's cache, cookies and storage, and the page says why.
pub fn blocked_device_response(path: &str) -> Response {
    let mut response = if path.starts_with("/api/") {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "device_blocked",
            "Cet appareil a été bloqué : il ne peut plus accéder à Carnet.",
        )
        .into_response()
    } else {
        crate::pages::message_page(
            StatusCode::FORBIDDEN,
            "Appareil bloqué",
            "Cet appareil a été bloqué par son utilisateur ou par un titulaire du cabinet. Les données de Carnet ont été effacées de ce navigateur. Si c'est une erreur, contactez un titulaire du cabinet.",
        )
    };
    response.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
    );
    response
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-carnet-session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// Resolves the session cookie into an `Actor` (active session) or a `SessionProblem`.
/// If the session store cannot answer, the request is refused (503): never served as
/// if signed out or signed in.
pub async fn resolve_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(token) = session_cookie(request.headers()) {
        let certified = request
            .extensions()
            .get::<crate::CertifiedDevice>()
            .map(|device| device.0);
        let resolved = state.services.resolve_session(&token, certified).await;
        match resolved {
            Ok(SessionState::Active {
                actor,
                device,
                active,
                ..
            }) => {
                let path = request.uri().path();
                let allowed = device == carnet_service::DeviceStanding::Approved
                    || PENDING_DEVICE_PATHS
                        .iter()
                        .any(|prefix| path.starts_with(prefix));
                if allowed {
                    request.extensions_mut().insert(actor);
                    request.extensions_mut().insert(active);
                } else {
                    request
                        .extensions_mut()
                        .insert(SessionProblem::DevicePending);
                }
                request.extensions_mut().insert(device);
            }
            Ok(SessionState::DeviceBlocked) => {
                return blocked_device_response(request.uri().path());
            }
            Ok(SessionState::PasswordExpired { actor, .. }) => {
                request
                    .extensions_mut()
                    .insert(SessionProblem::PasswordExpired);
                request.extensions_mut().insert(ExpiredPasswordActor(actor));
            }
            Ok(SessionState::Locked { .. }) => {
                request.extensions_mut().insert(SessionProblem::Locked);
            }
            Ok(SessionState::SecondFactorRequired { .. }) => {
                request
                    .extensions_mut()
                    .insert(SessionProblem::SecondFactorRequired);
            }
            Ok(SessionState::Invalid) => {
                request.extensions_mut().insert(SessionProblem::Invalid);
            }
            Err(error) => return ApiError::from(error).into_response(),
        }
        request.extensions_mut().insert(SessionToken(token));
    }
    next.run(request).await
}

/// Refuses state-changing requests sent by another site: `Sec-Fetch-Site` must be
/// same-origin (or none: typed by the user), and `Origin`, when sent, must be ours.
/// SameSite=Strict already keeps the cookie off cross-site requests; this is the second
/// wall (and covers same-site subdomains).
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && !same_origin(request.headers(), state.settings.https) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "Requête refusée : elle ne vient pas de Carnet.",
        )
        .into_response();
    }
    next.run(request).await
}

fn same_origin(headers: &HeaderMap, https: bool) -> bool {
    // Fetch Metadata is set by the browser and cannot be forged by a page: when present,
    // it decides. (Under `Referrer-Policy: no-referrer`, browsers send `Origin: null`
    // even for same-origin form posts, so Origin alone would refuse our own forms.)
    if let Some(site) = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
    {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let scheme = if https { "https" } else { "http" };
    origin == format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn same_origin_requests_pass_and_cross_site_ones_do_not() {
        assert!(same_origin(
            &headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080")
            ]),
            false
        ));
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            false
        ));
        assert!(
            same_origin(
                &headers(&[("sec-fetch-site", "same-origin"), ("origin", "null")]),
                false
            ),
            "our own form under no-referrer"
        );
        assert!(!same_origin(
            &headers(&[("origin", "null"), ("host", "carnet.example")]),
            false
        ));
        assert!(
            same_origin(&headers(&[]), false),
            "non-browser clients send neither"
        );
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            false
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            false
        ));
        assert!(!same_origin(
            &headers(&[
                ("host", "carnet.example"),
                ("origin", "https://evil.example")
            ]),
            true
        ));
        assert!(!same_origin(
            &headers(&[
                ("host", "carnet.example"),
                ("origin", "http://carnet.example")
            ]),
            true
        ));
        assert!(
            !same_origin(&headers(&[("origin", "https://carnet.example")]), true),
            "no Host"
        );
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; __Host-carnet-session=abc; b=2")]);
        assert_eq!(session_cookie(&map).as_deref(), Some("abc"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "carnet-session=abc")])),
            None
        );
    }
}
