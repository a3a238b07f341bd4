use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use carnet_http::{CONTENT_SECURITY_POLICY, HttpSettings};

use crate::support::{assert_envelope, get as get_request, send, short_settings, test_app};

const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    for uri in [
        "/",
        "/healthz",
        "/readyz",
        "/api/openapi.json",
        "/static/carnet.css",
        "/nowhere",
        "/api/v1/practices",
    ] {
        let (response, _) = send(&app, get_request(uri)).await;
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                response.headers().get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{name} on {uri}"
            );
        }
        assert!(
            response.headers().get("x-request-id").is_some(),
            "request id on {uri}"
        );
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none(),
            "no HSTS over plain HTTP ({uri})"
        );
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn hsts_is_sent_when_clients_use_https() {
    let settings = HttpSettings {
        https: true,
        ..HttpSettings::default()
    };
    let test = test_app(settings).await;
    let app = test.anonymous();
    let (response, _) = send(&app, get_request("/")).await;
    assert_eq!(
        response
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=63072000; includeSubDomains")
    );
}

#[tokio::test]
async fn pages_are_not_cached_but_assets_revalidate() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    let (page, _) = send(&app, get_request("/")).await;
    assert_eq!(page.headers()["cache-control"], "no-store");
    let (asset, body) = send(&app, get_request("/static/carnet.js")).await;
    assert_eq!(asset.headers()["cache-control"], "no-cache");
    assert_eq!(
        asset.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(!body.is_empty());
    let (missing, body) = send(&app, get_request("/static/nothing.js")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_envelope(&body, "not_found");
}

#[tokio::test]
async fn a_client_cannot_choose_its_request_id() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    let request = Request::get("/healthz")
        .header("x-request-id", "forged-by-the-client")
        .body(Body::empty())
        .expect("request");
    let (response, _) = send(&app, request).await;
    let id = response.headers()["x-request-id"].to_str().expect("ASCII");
    assert_ne!(id, "forged-by-the-client");
    assert_eq!(id.len(), 36, "a UUID of ours: {id}");
}

#[tokio::test]
async fn unknown_addresses_answer_a_french_page_or_the_envelope() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    let (page, body) = send(&app, get_request("/dossiers/inconnu")).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("Page introuvable"));
    let (api, body) = send(&app, get_request("/api/v1/nothing")).await;
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert_envelope(&body, "not_found");
    let (wrong_method, body) = send(
        &app,
        Request::delete("/healthz")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&body, "method_not_allowed");
}

async fn panicking_handler() -> &'static str {
    panic!("a handler bug")
}

/// Routes that misbehave on purpose, wrapped in the production middleware.
fn misbehaving(settings: &HttpSettings) -> Router {
    let routes = Router::new()
        .route("/panic", get(panicking_handler))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "too late"
            }),
        )
        .route("/echo", post(|body: String| async move { body }));
    carnet_http::with_middleware(routes, settings)
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_survives() {
    let app = misbehaving(&short_settings());
    let (response, body) = send(&app, get_request("/panic")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_envelope(&body, "internal_error");
    assert!(
        !String::from_utf8_lossy(&body).contains("a handler bug"),
        "no internal text"
    );
    let (again, _) = send(&app, get_request("/panic")).await;
    assert_eq!(
        again.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "still serving"
    );
}

#[tokio::test]
async fn a_slow_request_times_out_with_the_envelope() {
    let app = misbehaving(&short_settings());
    let (response, body) = send(&app, get_request("/slow")).await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_envelope(&body, "timeout");
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_the_envelope() {
    let app = misbehaving(&short_settings());
    let small = Request::post("/echo")
        .body(Body::from("x".repeat(100)))
        .expect("request");
    let (response, _) = send(&app, small).await;
    assert_eq!(response.status(), StatusCode::OK);
    let big = Request::post("/echo")
        .body(Body::from("x".repeat(10_000)))
        .expect("request");
    let (response, body) = send(&app, big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_envelope(&body, "payload_too_large");
}
