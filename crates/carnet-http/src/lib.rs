//! Carnet's HTTP adapter: the JSON API under `/api/v1` (described by
//! `/api/openapi.json`), the French pages, static assets, health endpoints, and the
//! middleware every response passes through (security headers, request ids, limits,
//! timeouts, panic catching, one error envelope).
//!
//! This crate never touches the store: it calls [`carnet_service::Services`] only.
//! It does not know how a request is authenticated either: the authentication layer
//! (accounts and sessions) puts an [`carnet_service::Actor`] into the request
//! extensions, and handlers that need one refuse the request without it.

mod api;
mod assets;
mod audit;
mod auth;
mod backups;
mod clinical;
mod device_certificates;
mod devices;
mod documents;
mod error;
mod limiter;
mod middleware;
mod pages;
mod pages_auth;
mod pages_passkeys;
mod pages_records;
mod passkeys;
mod patients;
mod pin;
pub mod serve;
mod session;

use std::net::IpAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use carnet_service::Services;

pub use api::{api_routes, openapi_document};
pub use error::ApiError;
pub use middleware::{CONTENT_SECURITY_POLICY, with_middleware};
pub use session::{SESSION_COOKIE, SessionProblem};

/// The HTTP settings the binary's configuration decides.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Whether clients reach Carnet over HTTPS (built-in TLS or a declared TLS-terminating
    /// proxy): then responses carry `Strict-Transport-Security`.
    pub https: bool,
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How long a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed for the client's address.
    pub trusted_proxies: Vec<IpAddr>,
    /// Inactivity before the privacy blur covers signed-in pages.
    pub blur_after: Duration,
    /// Inactivity before the session locks (the pages reload then, showing the lock).
    pub idle_lock: Duration,
    /// The largest document accepted, in bytes (uploads are streamed, not buffered).
    pub document_max_bytes: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            https: false,
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            blur_after: Duration::from_mins(2),
            idle_lock: Duration::from_mins(15),
            document_max_bytes: 20 * 1024 * 1024,
        }
    }
}

/// The registered device whose certificate the connection presented (mutual TLS), put
/// into every request of that connection by the server after checking it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertifiedDevice(pub uuid::Uuid);

/// The address of the connection's peer, put into every request by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The client's address: the peer's, or — when the peer is a trusted proxy — the
    /// address that proxy appended last to `X-Forwarded-For`.
    pub fn resolve(self, headers: &axum::http::HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
        if !trusted_proxies.contains(&self.0) {
            return self.0;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|item| item.trim().parse::<IpAddr>().ok())
            .next_back()
            .unwrap_or(self.0)
    }
}

/// What every handler can reach.
#[derive(Clone, Debug)]
///
/// Cloned several times per request (each middleware and the handler get their own), so
/// every part is behind an `Arc`: a clone is three reference counts, not one per pool,
/// key and setting.
pub struct AppState {
    pub services: std::sync::Arc<Services>,
    pub settings: std::sync::Arc<HttpSettings>,
    /// Per-address sign-in attempt limiter (per node).
    pub limiter: std::sync::Arc<limiter::AddressLimiter>,
}

impl AppState {
    pub fn new(services: Services, settings: HttpSettings) -> Self {
        Self {
            services: std::sync::Arc::new(services),
            settings: std::sync::Arc::new(settings),
            limiter: std::sync::Arc::default(),
        }
    }
}

/// The whole application: routes and middleware.
pub fn app(state: AppState) -> Router {
    let settings = state.settings.clone();
    // One `Router::layer` call for the three (each call boxes every route once more).
    let routes = routes(state.clone()).layer(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                limiter::limit_sign_in_attempts,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                session::csrf_guard,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state,
                session::resolve_session,
            )),
    );
    with_middleware(routes, &settings)
}

/// The care-record pages (French; ADR 0009, 0010).
fn record_pages() -> Router<AppState> {
    Router::new()
        .route("/cabinets/{practice_id}/patients", get(pages_records::list))
        .route(
            "/cabinets/{practice_id}/nouveau-patient",
            get(pages_records::new_form).post(pages_records::create),
        )
        .route(
            "/cabinets/{practice_id}/patients/{patient_id}",
            get(pages_records::show),
        )
        .route(
            "/cabinets/{practice_id}/patients/{patient_id}/modifier",
            get(pages_records::edit_form).post(pages_records::edit),
        )
        .route(
            "/cabinets/{practice_id}/patients/{patient_id}/historique",
            get(pages_records::history),
        )
        .route(
            "/cabinets/{practice_id}/patients/{patient_id}/soins/{entry_id}/historique",
            get(pages_records::entry_history),
        )
        .route(
            "/cabinets/{practice_id}/patients/{patient_id}/documents/{document_id}",
            get(pages_records::document_versions),
        )
        .route(
            "/cabinets/{practice_id}/patients/{patient_id}/actes",
            axum::routing::post(pages_records::add_act),
        )
        .route(
            "/cabinets/{practice_id}/patients/{patient_id}/transmissions",
            axum::routing::post(pages_records::add_note),
        )
}

/// The routes without middleware (tests wrap them with extra routes or layers).
pub fn routes(state: AppState) -> Router {
    let (api_router, _) = api_routes().split_for_parts();
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/openapi.json", get(api::openapi_json))
        .route("/static/{file}", get(assets::serve))
        .route(
            "/cabinets/{practice_id}/journal",
            get(audit::practice_journal_page),
        )
        .route(
            "/connexion",
            get(pages_auth::login_form).post(pages_auth::login_submit),
        )
        .route(
            "/connexion/second-facteur",
            get(pages_auth::second_factor_form).post(pages_auth::second_factor_submit),
        )
        .route(
            "/connexion/secours",
            get(pages_auth::recovery_form).post(pages_auth::recovery_submit),
        )
        .route("/connexion/enrolement", get(pages_auth::enrolment_form))
        .route(
            "/activation",
            get(pages_auth::activation_form).post(pages_auth::activation_submit),
        )
        .route("/espace", get(pages_auth::space))
        .merge(record_pages())
        .route(
            "/mot-de-passe",
            get(pages_auth::password_change_form).post(pages_auth::password_change_submit),
        )
        .route("/sessions", get(pages_auth::sessions))
        .route(
            "/sessions/{session_id}/revoquer",
            axum::routing::post(pages_auth::revoke_session),
        )
        .route("/deconnexion", axum::routing::post(pages_auth::logout))
        .route("/deverrouiller", axum::routing::post(pages_auth::unlock))
        .route(
            "/messages/lus",
            axum::routing::post(pages_auth::dismiss_notices),
        )
        .route("/appareils", get(devices::my_devices_page))
        .route("/sauvegardes", get(backups::page))
        .route("/appareils/cabinet", get(devices::practice_devices_page))
        .route(
            "/appareils/{device_id}/{account_id}/{action}",
            axum::routing::post(devices::act),
        )
        .route("/code-pin", get(pin::prompt).post(pin::prompt_submit))
        .route(
            "/cabinet/code-pin",
            get(pin::holder_page).post(pin::holder_regenerate),
        )
        .route("/cles-d-acces", get(pages_passkeys::passkeys))
        .route(
            "/cles-d-acces/{passkey_id}/renommer",
            axum::routing::post(pages_passkeys::rename),
        )
        .route(
            "/cles-d-acces/{passkey_id}/retirer",
            axum::routing::post(pages_passkeys::remove),
        )
        .route(
            "/installation",
            get(pages_passkeys::setup_form).post(pages_passkeys::setup_submit),
        )
        .merge(api_router)
        .fallback(pages::not_found)
        .with_state(state)
}
