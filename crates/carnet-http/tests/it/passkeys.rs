//! Passkeys and the first administrator, over HTTP, with a software authenticator whose
//! answers the server verifies for real (webauthn-rs).

use axum::http::StatusCode;
use carnet_http::HttpSettings;
use carnet_service::{AuthSettings, Caller, PasskeySettings};
use serde_json::{Value, json};

use crate::auth::{cookie_of, request};
use crate::softkey::SoftKey;
use crate::support::{TestApp, assert_envelope, json, send, test_app_with_auth};

const ORIGIN: &str = "http://localhost:8080";
const PASSWORD: &str = "Tilleul-Marée-42-Orage!";
const NEW_PASSWORD: &str = "Glycine-Rivière-77-Nuage?";
const LOGIN: &str = "claire.dubois@example.fr";
const MINUTE: i64 = 60 * 1000;

async fn passkey_app() -> TestApp {
    test_app_with_auth(
        HttpSettings::default(),
        Some(AuthSettings {
            passkeys: Some(PasskeySettings {
                origin: ORIGIN.into(),
            }),
            ..AuthSettings::default()
        }),
    )
    .await
}

/// `method uri` with the cookie and body; panics unless the status is `expected`.
async fn call(
    test: &TestApp,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    body: Option<Value>,
    expected: StatusCode,
) -> (axum::http::Response<axum::body::Body>, Value) {
    let (response, bytes) = send(&test.anonymous(), request(method, uri, cookie, body)).await;
    assert_eq!(
        response.status(),
        expected,
        "{method} {uri}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (response, value)
}

/// Registers a passkey named `name` with the session of `cookie`.
async fn register(test: &TestApp, cookie: &str, name: &str) -> (SoftKey, Value) {
    let (_, started) = call(
        test,
        "POST",
        "/api/v1/auth/passkeys/registration",
        Some(cookie),
        Some(json!({ "name": name })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        started["options"]["publicKey"]["authenticatorSelection"]["residentKey"], "required",
        "a discoverable credential, to sign in with the passkey alone"
    );
    let (key, answer) = SoftKey::register(&started["options"], ORIGIN);
    let (_, finished) = call(
        test,
        "POST",
        "/api/v1/auth/passkeys/registration/finish",
        Some(cookie),
        Some(json!({ "ceremony": started["ceremony"], "credential": answer })),
        StatusCode::CREATED,
    )
    .await;
    (key, finished)
}

/// The first administrator, created from a setup link, with a passkey: (cookie, key).
async fn first_admin(test: &TestApp) -> (String, SoftKey, String) {
    let link = test
        .state
        .services
        .issue_setup_link(&Caller::operator())
        .await
        .expect("issued")
        .expect("no administrator yet");
    let link = link.token.expose().to_owned();
    let body = json!({"link": link, "name": "Claire Dubois", "login": LOGIN, "password": PASSWORD});
    let (response, created) = call(
        test,
        "POST",
        "/api/v1/setup",
        None,
        Some(body),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["needs_enrolment"], true);
    let cookie = cookie_of(&response);
    let (_, refused) = call(
        test,
        "POST",
        "/api/v1/auth/totp/enrolment",
        Some(&cookie),
        None,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("clé d'accès")),
        "administrators never use TOTP: {refused}"
    );
    call(
        test,
        "GET",
        "/api/v1/auth/sessions",
        Some(&cookie),
        None,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (key, finished) = register(test, &cookie, "Clé USB").await;
    assert_eq!(
        finished["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "the first factor comes with recovery codes"
    );
    call(
        test,
        "GET",
        "/api/v1/auth/sessions",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
    (cookie, key, link)
}

/// Signs in with the passkey alone: the new session's cookie.
async fn passkey_sign_in(test: &TestApp, key: &mut SoftKey) -> String {
    let (_, started) = call(
        test,
        "POST",
        "/api/v1/auth/passkeys/sign-in",
        None,
        None,
        StatusCode::OK,
    )
    .await;
    let answer = key.sign_in(&started["options"]);
    let (response, finished) = call(
        test,
        "POST",
        "/api/v1/auth/passkeys/sign-in/finish",
        None,
        Some(json!({"ceremony": started["ceremony"], "credential": answer})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(finished, json!({"new_session": true}));
    cookie_of(&response)
}

async fn audit_actions(test: &TestApp) -> Vec<(String, String)> {
    test.store
        .audit_chain_entries(carnet_audit::ChainId::Instance)
        .await
        .expect("read")
        .into_iter()
        .map(|entry| {
            let entry = entry.expect("readable entry");
            (
                entry.event.action.code().to_owned(),
                entry.event.outcome.code().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_first_administrator_comes_from_a_single_use_link_and_must_register_a_passkey() {
    let test = passkey_app().await;
    let (admin_cookie, _, link) = first_admin(&test).await;
    call(
        &test,
        "GET",
        "/api/v1/auth/pin",
        Some(&admin_cookie),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    let again =
        json!({"link": link, "name": "Eve", "login": "eve@example.fr", "password": NEW_PASSWORD});
    let (_, refused) = call(
        &test,
        "POST",
        "/api/v1/setup",
        None,
        Some(again),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_envelope(refused.to_string().as_bytes(), "authentication_failed");
    assert!(
        test.state
            .services
            .issue_setup_link(&Caller::operator())
            .await
            .expect("answered")
            .is_none(),
        "no setup link once an administrator exists"
    );
    let actions = audit_actions(&test).await;
    assert!(actions.contains(&("setup_link_issued".into(), "success".into())));
    assert!(actions.contains(&("admin_created".into(), "success".into())));
    assert!(actions.contains(&("second_factor_changed".into(), "success".into())));
    assert_eq!(
        actions
            .iter()
            .filter(|(action, _)| action == "admin_created")
            .count(),
        1,
        "the refused second use left no admin_created entry"
    );
}

#[tokio::test]
async fn an_expired_or_retired_setup_link_is_refused() {
    let test = passkey_app().await;
    let services = &test.state.services;
    let first = services
        .issue_setup_link(&Caller::operator())
        .await
        .expect("issued")
        .expect("link");
    let second = services
        .issue_setup_link(&Caller::operator())
        .await
        .expect("issued")
        .expect("link");
    let body = |link: &str| json!({"link": link, "name": "Claire Dubois", "login": LOGIN, "password": PASSWORD});
    call(
        &test,
        "POST",
        "/api/v1/setup",
        None,
        Some(body(first.token.expose())),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    test.clock.advance_millis(61 * MINUTE);
    call(
        &test,
        "POST",
        "/api/v1/setup",
        None,
        Some(body(second.token.expose())),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn a_passkey_signs_in_alone_even_when_the_password_path_is_locked() {
    let test = passkey_app().await;
    let (_, mut key, _) = first_admin(&test).await;
    for _ in 0..20 {
        call(
            &test,
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": LOGIN, "password": "Mauvais-mot-de-passe-1!"})),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        test.clock.advance_millis(16 * MINUTE);
    }
    let (_, locked) = call(
        &test,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"login": LOGIN, "password": PASSWORD})),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_envelope(locked.to_string().as_bytes(), "account_locked");

    let cookie = passkey_sign_in(&test, &mut key).await;
    call(
        &test,
        "GET",
        "/api/v1/auth/sessions",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
    let (_, listed) = call(
        &test,
        "GET",
        "/api/v1/auth/passkeys",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
}

#[tokio::test]
async fn replayed_forged_and_unknown_assertions_are_refused_and_audited() {
    let test = passkey_app().await;
    let (_, mut key, _) = first_admin(&test).await;
    let (_, started) = call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in",
        None,
        None,
        StatusCode::OK,
    )
    .await;
    let answer = key.sign_in(&started["options"]);
    let finish = json!({"ceremony": started["ceremony"], "credential": answer});
    call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in/finish",
        None,
        Some(finish.clone()),
        StatusCode::OK,
    )
    .await;
    call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in/finish",
        None,
        Some(finish),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // A signature over another challenge.
    let (_, first) = call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in",
        None,
        None,
        StatusCode::OK,
    )
    .await;
    let (_, second) = call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in",
        None,
        None,
        StatusCode::OK,
    )
    .await;
    let wrong = key.sign_in(&first["options"]);
    call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in/finish",
        None,
        Some(json!({"ceremony": second["ceremony"], "credential": wrong})),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // A key the server never registered, claiming the administrator's user handle.
    let (_, registration) = call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in",
        None,
        None,
        StatusCode::OK,
    )
    .await;
    let mut stranger = SoftKey::register(
        &json!({"publicKey": {"rp": {"id": "localhost"}, "challenge": "AAAA",
                "user": {"id": crate::softkey::encode(&[7; 16])}}}),
        ORIGIN,
    )
    .0;
    let answer = stranger.sign_in(&registration["options"]);
    call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in/finish",
        None,
        Some(json!({"ceremony": registration["ceremony"], "credential": answer})),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let failures = audit_actions(&test)
        .await
        .into_iter()
        .filter(|(action, outcome)| action == "login_failed" && outcome == "failure")
        .count();
    // The replay is refused before any verification (its ceremony no longer exists);
    // the wrong signature and the unknown key are audited.
    assert_eq!(failures, 2, "the forged and the unknown assertions");
}

#[tokio::test]
async fn an_administrators_second_factor_is_a_passkey_and_a_password_session_cannot_add_one() {
    let test = passkey_app().await;
    let (cookie, mut key, _) = first_admin(&test).await;
    call(
        &test,
        "POST",
        "/api/v1/auth/logout",
        Some(&cookie),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let (response, _) = call(
        &test,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"login": LOGIN, "password": PASSWORD})),
        StatusCode::OK,
    )
    .await;
    let cookie = cookie_of(&response);
    // Knowing the password is not enough to add a passkey (that would skip the factor).
    call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/registration",
        Some(&cookie),
        Some(json!({"name": "Clé pirate"})),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    call(
        &test,
        "POST",
        "/api/v1/auth/totp",
        Some(&cookie),
        Some(json!({"code": "123456"})),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (_, started) = call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        started["options"]["publicKey"]["allowCredentials"][0]["id"],
        crate::softkey::encode(&key.credential_id),
        "only this account's passkeys are offered"
    );
    let answer = key.sign_in(&started["options"]);
    let (_, finished) = call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/sign-in/finish",
        Some(&cookie),
        Some(json!({"ceremony": started["ceremony"], "credential": answer})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(finished, json!({"new_session": false}));
    call(
        &test,
        "GET",
        "/api/v1/auth/sessions",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn passkeys_are_added_renamed_and_removed_and_an_administrator_keeps_one() {
    let test = passkey_app().await;
    let (cookie, mut key, _) = first_admin(&test).await;
    let other_session = passkey_sign_in(&test, &mut key).await;
    let (_, added) = register(&test, &cookie, "Téléphone").await;
    assert_eq!(added["recovery_codes"], Value::Null);
    call(
        &test,
        "GET",
        "/api/v1/auth/sessions",
        Some(&other_session),
        None,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (_, listed) = call(
        &test,
        "GET",
        "/api/v1/auth/passkeys",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<String> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|passkey| passkey["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    call(
        &test,
        "PATCH",
        &format!("/api/v1/auth/passkeys/{}", ids[0]),
        Some(&cookie),
        Some(json!({"name": "Clé du bureau"})),
        StatusCode::NO_CONTENT,
    )
    .await;
    call(
        &test,
        "PATCH",
        &format!("/api/v1/auth/passkeys/{}", ids[0]),
        Some(&cookie),
        Some(json!({"name": "   "})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    call(
        &test,
        "DELETE",
        &format!("/api/v1/auth/passkeys/{}", ids[1]),
        Some(&cookie),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let (_, last) = call(
        &test,
        "DELETE",
        &format!("/api/v1/auth/passkeys/{}", ids[0]),
        Some(&cookie),
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_envelope(last.to_string().as_bytes(), "invalid_input");
    let (_, listed) = call(
        &test,
        "GET",
        "/api/v1/auth/passkeys",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed[0]["name"], "Clé du bureau");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    // Adding one more needs an authentication younger than five minutes.
    test.clock.advance_millis(6 * MINUTE);
    call(
        &test,
        "POST",
        "/api/v1/auth/passkeys/registration",
        Some(&cookie),
        Some(json!({"name": "Tablette"})),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn an_administrators_expired_password_only_lets_them_change_it() {
    let test = passkey_app().await;
    let (_, mut key, _) = first_admin(&test).await;
    test.clock.advance_millis(366 * 24 * 60 * MINUTE);
    let cookie = passkey_sign_in(&test, &mut key).await;
    let (_, expired) = call(
        &test,
        "GET",
        "/api/v1/auth/sessions",
        Some(&cookie),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_envelope(expired.to_string().as_bytes(), "password_expired");
    let (page, _) = send(
        &test.anonymous(),
        request("GET", "/espace", Some(&cookie), None),
    )
    .await;
    assert_eq!(page.headers()["location"], "/mot-de-passe");
    let (page, html) = send(
        &test.anonymous(),
        request("GET", "/mot-de-passe", Some(&cookie), None),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(String::from_utf8_lossy(&html).contains("durée de validité"));
    call(
        &test,
        "POST",
        "/api/v1/auth/password",
        Some(&cookie),
        Some(json!({"current_password": PASSWORD, "new_password": PASSWORD})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    call(
        &test,
        "POST",
        "/api/v1/auth/password",
        Some(&cookie),
        Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        StatusCode::NO_CONTENT,
    )
    .await;
    call(
        &test,
        "GET",
        "/api/v1/auth/sessions",
        Some(&cookie),
        None,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn the_pages_offer_passkeys_only_when_configured() {
    let test = passkey_app().await;
    let (page, html) = send(&test.anonymous(), request("GET", "/connexion", None, None)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(String::from_utf8_lossy(&html).contains("data-passkey=\"sign-in\""));
    let (page, html) = send(
        &test.anonymous(),
        request("GET", "/installation?jeton=abc", None, None),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = String::from_utf8_lossy(&html).into_owned();
    assert!(html.contains("name=\"link\" value=\"abc\""), "{html}");

    let plain = crate::support::test_app(HttpSettings::default()).await;
    let (_, html) = send(&plain.anonymous(), request("GET", "/connexion", None, None)).await;
    assert!(!String::from_utf8_lossy(&html).contains("data-passkey"));
    let (_, body) = send(
        &plain.anonymous(),
        request("POST", "/api/v1/auth/passkeys/sign-in", None, None),
    )
    .await;
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("pas configurées"))
    );
}
