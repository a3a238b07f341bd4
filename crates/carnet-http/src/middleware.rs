//! The layers every response passes through.
//!
//! Logs carry the method, the route template (never the URI: a query string could hold
//! a searched name), the status, the latency and the request id — never bodies, cookies,
//! tokens or client addresses.

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};

use crate::{ApiError, HttpSettings};

/// The Content-Security-Policy of every response: nothing inline, nothing foreign.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The headers every response carries, replacing any a handler set.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 7] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    ),
];

/// Wraps `router` in Carnet's middleware stack.
///
/// Each `Router::layer` call boxes every route once more, and a request then clones and
/// polls one boxed service per call: the layers are grouped into three calls instead of
/// one per layer (fourteen, fifteen under HTTPS). Measured in ADR 0009 ("The server's
/// common layers").
pub fn with_middleware(router: Router, settings: &HttpSettings) -> Router {
    router
        .layer(
            ServiceBuilder::new()
                // Bodies read whole (JSON, forms) stop at `body_limit_bytes`; document
                // uploads are streamed, and their own limit is checked as they arrive.
                .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
                .layer(RequestBodyLimitLayer::new(settings.body_limit_bytes.max(
                    usize::try_from(settings.document_max_bytes).unwrap_or(usize::MAX),
                )))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    settings.request_timeout,
                ))
                .layer(CatchPanicLayer::custom(answer_panic)),
        )
        // Outside the layers above, so their bare 408/413 answers get the envelope too.
        .layer(axum::middleware::map_response_with_state(
            settings.https,
            finish_response,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                    header::PROXY_AUTHORIZATION,
                ]))
                .layer(axum::middleware::map_request(drop_client_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN))
                        .make_span_with(|request: &Request| {
                            let route = request
                                .extensions()
                                .get::<MatchedPath>()
                                .map_or("<unmatched>", MatchedPath::as_str);
                            let request_id = request
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|value| value.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!(
                                "request",
                                method = %request.method(),
                                route,
                                request_id,
                            )
                        }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

/// Every response on its way out: the envelope for bare errors, the security headers
/// (replacing a handler's), `no-store` unless the handler chose its caching, and HSTS
/// when clients use HTTPS.
async fn finish_response(
    axum::extract::State(https): axum::extract::State<bool>,
    response: Response<axum::body::Body>,
) -> axum::response::Response {
    let mut response = envelope_for_bare_errors(response);
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, value);
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}

/// Request ids are ours: a client-chosen one could forge or pollute log lines.
async fn drop_client_request_id(mut request: Request) -> Request {
    request.headers_mut().remove(REQUEST_ID);
    request
}

/// Gives the error envelope to error responses that layers or the router produced with
/// no body of their own (405, 408, 413, …).
fn envelope_for_bare_errors(response: Response<axum::body::Body>) -> axum::response::Response {
    let status = response.status();
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !bare {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let replacement = ApiError::from_status(status).into_response();
    let (replacement_parts, body) = replacement.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &replacement_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}

/// A handler panicked: answer 500 in the envelope and log that it happened. The panic
/// payload is not logged: it could quote data the handler was working on.
fn answer_panic(_payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a request handler panicked; answered 500");
    ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}
