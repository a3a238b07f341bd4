//! Device certificates over HTTP (ADR 0008): a signing request is accepted only from a
//! device still waiting for approval, the certificate is issued when it is approved and
//! revoked when it is blocked; the client picks it up with its device secret alone. The
//! TLS side (real handshakes) is tested end to end in the `carnet` crate.

use axum::http::StatusCode;
use carnet_http::HttpSettings;
use serde_json::{Value, json};

use crate::auth::{new_browser, request, sign_in_again, sign_in_with_recovery, signed_in};
use crate::devices::decide;
use crate::support::{TestApp, assert_envelope, json, send, test_app};

async fn ask(test: &TestApp, cookie: &str, pem: &str) -> (StatusCode, Value) {
    let (response, body) = send(
        &test.anonymous(),
        request(
            "POST",
            "/api/v1/auth/device-certificate",
            Some(cookie),
            Some(json!({ "request": pem })),
        ),
    )
    .await;
    (response.status(), json(&body))
}

/// Picks up with this thread's device cookie (no session).
async fn pick_up(test: &TestApp) -> (StatusCode, Value) {
    let (response, body) = send(
        &test.anonymous(),
        request("GET", "/api/v1/device-certificate", None, None),
    )
    .await;
    (response.status(), json(&body))
}

#[tokio::test]
async fn a_certificate_is_asked_from_a_waiting_device_issued_at_approval_and_revoked_at_block() {
    let test = test_app(HttpSettings::default()).await;
    let (_, _, first_cookie, secret, recovery) = signed_in(&test).await;
    let (_, pem) = carnet_crypto::new_device_key("script").expect("key");

    // The activation device is approved already: a session alone never certifies it.
    let (status, body) = ask(&test, &first_cookie, &pem).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "request");

    // A new device (as `carnet device enroll` makes): pending.
    new_browser();
    test.clock.advance_millis(31_000);
    let cookie = sign_in_again(&test, &secret).await;
    let (status, body) = ask(
        &test,
        &cookie,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = ask(&test, &cookie, &pem).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"state": "pending"}));
    let (status, _) = ask(&test, &cookie, &pem).await;
    assert_eq!(status, StatusCode::CONFLICT, "one request per device");
    let (status, body) = pick_up(&test).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "pending");
    assert!(body.get("certificate").is_none());
    let authority = body["authority"].as_str().expect("authority").to_owned();
    assert!(authority.starts_with("-----BEGIN CERTIFICATE-----"));

    // Approved (the holder's own device, right after a recovery-code sign-in on it).
    let recovered = sign_in_with_recovery(&test, &recovery[0]).await;
    let (response, body) = send(
        &test.anonymous(),
        request("GET", "/api/v1/auth/devices", Some(&recovered), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let device = json(&body)
        .as_array()
        .expect("devices")
        .iter()
        .find(|device| device["current"] == true)
        .expect("this device")
        .clone();
    assert_eq!(
        decide(&test, &recovered, &device, "approve").await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = pick_up(&test).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "issued");
    let certificate = body["certificate"].as_str().expect("certificate");
    assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(certificate, authority);
    assert_eq!(body["authority"], authority.as_str(), "one authority");

    // Blocked: revoked.
    assert_eq!(
        decide(&test, &first_cookie, &device, "block").await.0,
        StatusCode::NO_CONTENT
    );
    let (_, body) = pick_up(&test).await;
    assert_eq!(body["state"], "revoked");
    assert!(body.get("certificate").is_none());

    // Without a device secret, or with one that asked nothing: nothing to pick up.
    new_browser();
    let (response, bytes) = send(
        &test.anonymous(),
        request("GET", "/api/v1/device-certificate", None, None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_envelope(&bytes, "not_found");
}
