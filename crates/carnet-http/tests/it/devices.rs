//! Registered devices over HTTP: a new browser waits for approval and reaches nothing of
//! the practice; a holder's own new device needs a passkey or recovery-code sign-in (or
//! another holder); a blocked device is refused with `Clear-Site-Data` and never
//! approved again.

use axum::http::StatusCode;
use carnet_http::HttpSettings;
use serde_json::{Value, json};

use crate::auth::{
    PUBLIC_ROUTES, members_uri, new_browser, request, sign_in_again, sign_in_with_recovery,
    signed_in,
};
use crate::support::{TestApp, assert_envelope, json, send, test_app};

const PASSWORD: &str = "Tilleul-Marée-42-Orage!";
const LOGIN: &str = "anne.martin@example.fr";

async fn devices_of(test: &TestApp, cookie: &str, uri: &str) -> Vec<Value> {
    let (response, body) = send(&test.anonymous(), request("GET", uri, Some(cookie), None)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&body)
    );
    json(&body).as_array().expect("list").clone()
}

pub async fn decide(
    test: &TestApp,
    cookie: &str,
    device: &Value,
    decision: &str,
) -> (StatusCode, Vec<u8>) {
    let uri = format!(
        "/api/v1/auth/devices/{}/{}/decision",
        device["device_id"].as_str().expect("id"),
        device["account_id"].as_str().expect("id")
    );
    let (response, body) = send(
        &test.anonymous(),
        request(
            "POST",
            &uri,
            Some(cookie),
            Some(json!({ "decision": decision })),
        ),
    )
    .await;
    (response.status(), body)
}

/// Every practice-data route of the API (not the account's own `/api/v1/auth/…`).
fn practice_routes(practice: &str) -> Vec<(&'static str, String)> {
    let document = carnet_http::openapi_document();
    let mut routes = Vec::new();
    for (path, item) in &document.paths.paths {
        if !path.starts_with("/api/v1/")
            || path.starts_with("/api/v1/auth/")
            || PUBLIC_ROUTES.contains(&path.as_str())
        {
            continue;
        }
        let uri = path
            .replace("{practice_id}", practice)
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "0190a0b0-0000-7000-8000-000000000000"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, present) in [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ] {
            if present {
                routes.push((method, uri.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn a_new_device_waits_for_approval_and_reaches_nothing_of_the_practice() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, first_cookie, secret, recovery) = signed_in(&test).await;
    let app = test.anonymous();
    let mine = devices_of(&test, &first_cookie, "/api/v1/auth/devices").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0]["state"], "approved",
        "the activation device is approved"
    );

    // The same person on another browser: signed in, but pending.
    new_browser();
    test.clock.advance_millis(31_000);
    let cookie = sign_in_again(&test, &secret).await;
    let routes = practice_routes(&practice.to_string());
    assert!(routes.len() >= 5, "{routes:?}");
    for (method, uri) in &routes {
        let body = matches!(*method, "POST" | "PATCH").then(|| json!({}));
        let (response, bytes) = send(&app, request(method, uri, Some(&cookie), body)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {uri}");
        assert_envelope(&bytes, "device_pending");
    }
    let (page, html) = send(&app, request("GET", "/espace", Some(&cookie), None)).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&html).contains("en attente"));
    let journal = format!("/cabinets/{practice}/journal");
    let (page, _) = send(&app, request("GET", &journal, Some(&cookie), None)).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let mine = devices_of(&test, &cookie, "/api/v1/auth/devices").await;
    let pending = mine
        .iter()
        .find(|device| device["current"] == true)
        .expect("this device")
        .clone();
    assert_eq!(pending["state"], "pending");
    // Nor the PIN: neither shown nor accepted on a pending device.
    let (response, _) = send(
        &app,
        request("GET", "/api/v1/auth/pin", Some(&cookie), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/pin/unlock",
            Some(&cookie),
            Some(json!({"pin": "BCDF"})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A holder's own device: not with a TOTP sign-in, from any device…
    for session in [&cookie, &first_cookie] {
        let (status, body) = decide(&test, session, &pending, "approve").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // …but right after a recovery-code sign-in on it.
    let recovered = sign_in_with_recovery(&test, &recovery[0]).await;
    let (status, body) = decide(&test, &recovered, &pending, "approve").await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&cookie), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "approved: the waiting session now works"
    );
}

#[tokio::test]
async fn a_blocked_device_is_cut_off_at_once_wiped_and_never_approved_again() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, first_cookie, secret, _) = signed_in(&test).await;
    let app = test.anonymous();
    new_browser();
    test.clock.advance_millis(31_000);
    let cookie = sign_in_again(&test, &secret).await;
    let listed = devices_of(&test, &first_cookie, "/api/v1/auth/practice-devices").await;
    assert_eq!(listed.len(), 2, "the holder sees the practice's devices");
    let other = listed
        .iter()
        .find(|device| device["state"] == "pending")
        .expect("pending")
        .clone();
    let (status, _) = decide(&test, &first_cookie, &other, "block").await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Its very next request: refused, and the browser is told to forget everything.
    for uri in ["/api/v1/auth/sessions", "/espace"] {
        let (response, _) = send(&app, request("GET", uri, Some(&cookie), None)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(
            response.headers()["clear-site-data"],
            "\"cache\", \"cookies\", \"storage\"",
            "{uri}"
        );
    }
    // Signing in again on it: refused the same way, no usable session.
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": LOGIN, "password": PASSWORD})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().contains_key("clear-site-data"));

    let (status, body) = decide(&test, &first_cookie, &other, "approve").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "never re-approved"
    );
    assert_envelope(&body, "invalid_input");
    let (status, _) = decide(&test, &first_cookie, &other, "delete").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let listed = devices_of(&test, &first_cookie, "/api/v1/auth/practice-devices").await;
    assert_eq!(listed.len(), 1, "deleted from the list");
    let (page, html) = send(
        &app,
        request("GET", "/appareils", Some(&first_cookie), None),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&html).contains("a été bloqué"),
        "the notice is shown"
    );
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&first_cookie), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the other device is untouched"
    );
}

#[tokio::test]
async fn devices_are_renamed_with_checked_names() {
    let test = test_app(HttpSettings::default()).await;
    let (_, _, cookie, _, _) = signed_in(&test).await;
    let mine = devices_of(&test, &cookie, "/api/v1/auth/devices").await;
    let uri = format!(
        "/api/v1/auth/devices/{}/{}",
        mine[0]["device_id"].as_str().expect("id"),
        mine[0]["account_id"].as_str().expect("id")
    );
    let app = test.anonymous();
    let (response, _) = send(
        &app,
        request(
            "PATCH",
            &uri,
            Some(&cookie),
            Some(json!({"name": "Poste accueil"})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (response, body) = send(
        &app,
        request("PATCH", &uri, Some(&cookie), Some(json!({"name": ""}))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_envelope(&body, "invalid_input");
    let mine = devices_of(&test, &cookie, "/api/v1/auth/devices").await;
    assert_eq!(mine[0]["name"], "Poste accueil");
}

#[tokio::test]
async fn a_later_sign_in_never_approves_a_device_by_itself() {
    let test = test_app(HttpSettings::default()).await;
    let (_, _, code) = crate::auth::holder_with_code(&test).await;
    // An account activated without any device (as accounts made before devices were).
    let issued = test
        .state
        .services
        .activate(
            &carnet_service::Caller::new(carnet_service::Actor::Anonymous),
            &code,
            LOGIN,
            PASSWORD,
        )
        .await
        .expect("activated");
    let session = issued.token.expose().to_owned();
    let app = test.anonymous();
    let (_, body) = send(
        &app,
        request("POST", "/api/v1/auth/totp/enrolment", Some(&session), None),
    )
    .await;
    let secret =
        carnet_crypto::TotpSecret::from_base32(json(&body)["secret"].as_str().expect("secret"))
            .expect("base32");
    let totp = json!({"code": secret.code_at(crate::auth::now_seconds(&test))});
    let (response, _) = send(
        &app,
        request("POST", "/api/v1/auth/totp", Some(&session), Some(totp)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    new_browser();
    test.clock.advance_millis(31_000);
    let cookie = sign_in_again(&test, &secret).await;
    let mine = devices_of(&test, &cookie, "/api/v1/auth/devices").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0]["state"], "pending",
        "no device approves itself after the activation"
    );
}
