//! Accounts and sessions over HTTP: activation, sign-in with the mandatory second
//! factor, idle lock, expiry, revocation, throttling, CSRF — with an injected clock.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use carnet_crypto::TotpSecret;
use carnet_domain::{MemberId, PracticeId};
use carnet_http::HttpSettings;
use carnet_service::{Actor, Caller, NewMemberInput, NewPracticeInput, PracticeAction};
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json, send, test_app};

/// Routes that need no session at all.
pub const PUBLIC_ROUTES: [&str; 6] = [
    "/api/v1/device-certificate",
    "/api/v1/auth/activate",
    "/api/v1/auth/login",
    "/api/v1/auth/passkeys/sign-in",
    "/api/v1/auth/passkeys/sign-in/finish",
    "/api/v1/setup",
];
/// Routes of the sign-in flow itself: they act on a session that is not (yet) active.
const SESSION_FLOW_ROUTES: [&str; 7] = [
    "/api/v1/auth/passkeys/registration",
    "/api/v1/auth/passkeys/registration/finish",
    "/api/v1/auth/totp/enrolment",
    "/api/v1/auth/totp",
    "/api/v1/auth/recovery",
    "/api/v1/auth/unlock",
    "/api/v1/auth/logout",
];

const PASSWORD: &str = "Tilleul-Marée-42-Orage!";
const LOGIN: &str = "anne.martin@example.fr";

/// A practice with a holder who has an activation code; returns (practice, member, code).
pub async fn holder_with_code(test: &TestApp) -> (PracticeId, MemberId, String) {
    let services = &test.state.services;
    let operator = Caller::operator();
    let practice = services
        .create_practice(
            &operator,
            &NewPracticeInput {
                name: "Cabinet".into(),
                address: "1 rue Haute, 13001 Marseille".into(),
                profession: "nurse".into(),
            },
        )
        .await
        .expect("practice");
    let scope = services
        .authorize(&operator, practice.id, PracticeAction::AddMember)
        .await
        .expect("scope");
    let member = services
        .add_member(
            &scope,
            &NewMemberInput {
                name: "Anne Martin".into(),
                role: "holder".into(),
                phone: "0612345678".into(),
                professional_id_kind: None,
                professional_id_number: Some("10000005479".into()),
            },
        )
        .await
        .expect("holder");
    let (code, _) = services
        .issue_activation_code(&scope, member.id)
        .await
        .expect("code");
    (practice.id, member.id, code)
}

thread_local! {
    /// The device cookie of the simulated browser (one per test thread), sent with every
    /// request like a browser's cookie jar would.
    static DEVICE_COOKIE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Starts acting as another browser: the device cookie is forgotten.
pub fn new_browser() {
    DEVICE_COOKIE.with(|device| device.borrow_mut().take());
}

pub fn request(
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    let mut cookies: Vec<String> = cookie
        .map(|cookie| format!("__Host-carnet-session={cookie}"))
        .into_iter()
        .collect();
    if let Some(device) = DEVICE_COOKIE.with(|device| device.borrow().clone()) {
        cookies.push(format!("__Host-carnet-device={device}"));
    }
    if !cookies.is_empty() {
        builder = builder.header("cookie", cookies.join("; "));
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request"),
        None => builder.body(Body::empty()).expect("request"),
    }
}

pub fn cookie_of(response: &Response<Body>) -> String {
    for set in response.headers().get_all("set-cookie") {
        let set = set.to_str().expect("ASCII");
        if let Some(rest) = set.strip_prefix("__Host-carnet-device=") {
            assert!(set.contains("Secure; HttpOnly; SameSite=Strict"), "{set}");
            let secret = rest.split(';').next().expect("value").to_owned();
            DEVICE_COOKIE.with(|device| *device.borrow_mut() = Some(secret));
        }
    }
    let header = response.headers()["set-cookie"].to_str().expect("ASCII");
    assert!(
        header.contains("Secure; HttpOnly; SameSite=Strict"),
        "{header}"
    );
    assert!(header.starts_with("__Host-carnet-session="), "{header}");
    header
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("token")
}

pub fn now_seconds(test: &TestApp) -> u64 {
    u64::try_from(carnet_domain::Clock::now(test.clock.as_ref()).unix_millis() / 1000)
        .expect("positive")
}

/// Activates the holder, enrols TOTP and completes the second factor: a signed-in
/// session. Returns (practice, member, cookie, TOTP secret, recovery codes).
pub async fn signed_in(test: &TestApp) -> (PracticeId, MemberId, String, TotpSecret, Vec<String>) {
    signed_in_as(test, LOGIN).await
}

/// [`signed_in`] for the holder of a new practice, with this login.
pub async fn signed_in_as(
    test: &TestApp,
    login: &str,
) -> (PracticeId, MemberId, String, TotpSecret, Vec<String>) {
    let app = test.anonymous();
    let (practice, member, code) = holder_with_code(test).await;
    let (response, body) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/activate",
            None,
            Some(json!({"code": code.to_lowercase(), "login": login, "password": PASSWORD})),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        json(&body),
        json!({"second_factor_required": true, "needs_enrolment": true})
    );
    let cookie = cookie_of(&response);
    let (response, body) = send(
        &app,
        request("POST", "/api/v1/auth/totp/enrolment", Some(&cookie), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let enrolment = json(&body);
    assert!(
        enrolment["uri"]
            .as_str()
            .expect("uri")
            .starts_with(&format!(
                "otpauth://totp/Carnet:{}?secret=",
                login.replace('@', "%40")
            ))
    );
    let secret =
        TotpSecret::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    let code = secret.code_at(now_seconds(test));
    let (response, body) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&cookie),
            Some(json!({"code": code})),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let recovery: Vec<String> = json(&body)["recovery_codes"]
        .as_array()
        .expect("recovery codes at enrolment")
        .iter()
        .map(|code| code.as_str().expect("text").to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    (practice, member, cookie, secret, recovery)
}

/// Signs in again with the password and a TOTP code of the current step; returns the
/// new session's cookie.
pub async fn sign_in_again(test: &TestApp, secret: &TotpSecret) -> String {
    let app = test.anonymous();
    let credentials = json!({"login": LOGIN, "password": PASSWORD});
    let (response, _) = send(
        &app,
        request("POST", "/api/v1/auth/login", None, Some(credentials)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = cookie_of(&response);
    let code = json!({"code": secret.code_at(now_seconds(test))});
    let (response, body) = send(
        &app,
        request("POST", "/api/v1/auth/totp", Some(&cookie), Some(code)),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&body)
    );
    cookie
}

/// Signs in again with the password and a recovery code (on this thread's browser);
/// returns the new session's cookie.
pub async fn sign_in_with_recovery(test: &TestApp, code: &str) -> String {
    let app = test.anonymous();
    let credentials = json!({"login": LOGIN, "password": PASSWORD});
    let (response, _) = send(
        &app,
        request("POST", "/api/v1/auth/login", None, Some(credentials)),
    )
    .await;
    let cookie = cookie_of(&response);
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/recovery",
            Some(&cookie),
            Some(json!({ "code": code })),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    cookie
}

/// A member added by the holder (`member`: the add-member body), activated with `login`
/// and signed in with TOTP on this thread's browser (so on an approved device): their
/// id and session cookie.
pub async fn member_signed_in(
    test: &TestApp,
    holder_cookie: &str,
    practice: &str,
    member: Value,
    login: &str,
) -> (String, String) {
    let app = test.anonymous();
    let (response, bytes) = send(
        &app,
        request(
            "POST",
            &format!("/api/v1/practices/{practice}/members"),
            Some(holder_cookie),
            Some(member),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let id = json(&bytes)["id"].as_str().expect("id").to_owned();
    let (_, bytes) = send(
        &app,
        request(
            "POST",
            &format!("/api/v1/practices/{practice}/members/{id}/activation-code"),
            Some(holder_cookie),
            None,
        ),
    )
    .await;
    let activation = json!({"code": json(&bytes)["code"], "login": login, "password": PASSWORD});
    let (response, _) = send(
        &app,
        request("POST", "/api/v1/auth/activate", None, Some(activation)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = cookie_of(&response);
    let (_, bytes) = send(
        &app,
        request("POST", "/api/v1/auth/totp/enrolment", Some(&cookie), None),
    )
    .await;
    let secret =
        TotpSecret::from_base32(json(&bytes)["secret"].as_str().expect("secret")).expect("base32");
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&cookie),
            Some(json!({"code": secret.code_at(now_seconds(test))})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    (id, cookie)
}

pub fn members_uri(practice: PracticeId) -> String {
    format!("/api/v1/practices/{practice}/members")
}

#[tokio::test]
async fn activation_then_totp_signs_in_and_the_session_acts_as_the_member() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, member, cookie, _, _) = signed_in(&test).await;
    let app = test.anonymous();
    let (response, body) = send(
        &app,
        request("GET", &members_uri(practice), Some(&cookie), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(json(&body)[0]["id"], member.to_string());
    let (response, body) = send(
        &app,
        request(
            "GET",
            &format!("/api/v1/practices/{practice}/audit-events?action=login_succeeded"),
            Some(&cookie),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json(&body)[0]["actor_account"],
        member.to_string(),
        "the sign-in is in the trail"
    );
}

#[tokio::test]
async fn an_activation_code_is_single_use_expires_and_dies_after_five_wrong_tries() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    let (practice, member, code) = holder_with_code(&test).await;
    let activate = |code: String, login: &str| {
        request(
            "POST",
            "/api/v1/auth/activate",
            None,
            Some(json!({"code": code, "login": login, "password": PASSWORD})),
        )
    };
    let (response, _) = send(&app, activate(code.clone(), LOGIN)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (response, body) = send(&app, activate(code.clone(), "other@example.fr")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "single use");
    assert_envelope(&body, "authentication_failed");

    // A new code, expired after 72 hours.
    let scope = test
        .state
        .services
        .authorize(&Caller::operator(), practice, PracticeAction::AddMember)
        .await
        .expect("scope");
    let (second, _) = test
        .state
        .services
        .issue_activation_code(&scope, member)
        .await
        .expect("code");
    test.clock.advance_millis(72 * 3600 * 1000 + 1);
    let (response, _) = send(&app, activate(second, "x@example.fr")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "expired");

    // A fresh code dies after 5 wrong tries with its prefix, even if the 6th is right.
    let (third, _) = test
        .state
        .services
        .issue_activation_code(&scope, member)
        .await
        .expect("code");
    let prefix: String = third.chars().take(4).collect();
    for _ in 0..5 {
        let (response, _) = send(
            &app,
            activate(format!("{prefix}-2222-2222"), "y@example.fr"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (response, _) = send(&app, activate(third, "y@example.fr")).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "dead after 5 wrong tries"
    );
}

#[tokio::test]
async fn a_weak_password_is_refused_at_activation_with_the_rules_in_french() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    let (_, _, code) = holder_with_code(&test).await;
    let (response, body) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/activate",
            None,
            Some(json!({"code": code, "login": LOGIN, "password": "AnneMartin2026!"})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = json(&body);
    assert_eq!(error["error"]["field"], "password");
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("ni votre nom"),
        "{error}"
    );
}

#[tokio::test]
async fn the_password_alone_never_opens_the_api() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, _, _, _) = signed_in(&test).await;
    let app = test.anonymous();
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
    assert_eq!(response.status(), StatusCode::OK);
    let half = cookie_of(&response);
    let (response, body) = send(
        &app,
        request("GET", &members_uri(practice), Some(&half), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_envelope(&body, "second_factor_required");
}

#[tokio::test]
async fn a_totp_code_is_refused_when_replayed_and_after_three_tries_per_step() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, _, secret, _) = signed_in(&test).await;
    let app = test.anonymous();
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
    let cookie = cookie_of(&response);
    // The code used at enrolment, in the same step: a replay (and the step's first try).
    let now = now_seconds(&test);
    let (response, body) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&cookie),
            Some(json!({"code": secret.code_at(now)})),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "replay refused"
    );
    assert_envelope(&body, "authentication_failed");
    let next = secret.code_at(now + 30);
    let wrong = format!(
        "{:06}",
        (next.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    for _ in 0..2 {
        let (response, _) = send(
            &app,
            request(
                "POST",
                "/api/v1/auth/totp",
                Some(&cookie),
                Some(json!({"code": wrong})),
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The next step's code would be accepted (drift), but this step's 3 tries are spent.
    let (response, body) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&cookie),
            Some(json!({"code": next})),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "3 tries per step"
    );
    assert_envelope(&body, "too_many_attempts");
    test.clock.advance_millis(30_000);
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&cookie),
            Some(json!({"code": next})),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the next step has its own tries"
    );
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&cookie), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, _, _, recovery) = signed_in(&test).await;
    let app = test.anonymous();
    for expected in [StatusCode::NO_CONTENT, StatusCode::UNAUTHORIZED] {
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
        let cookie = cookie_of(&response);
        let (response, _) = send(
            &app,
            request(
                "POST",
                "/api/v1/auth/recovery",
                Some(&cookie),
                Some(json!({"code": recovery[0]})),
            ),
        )
        .await;
        assert_eq!(response.status(), expected);
        if expected == StatusCode::NO_CONTENT {
            let (response, _) = send(
                &app,
                request("GET", &members_uri(practice), Some(&cookie), None),
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn an_idle_session_locks_and_unlocks_with_the_password_then_expires_after_twelve_hours() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, cookie, _, _) = signed_in(&test).await;
    let app = test.anonymous();
    test.clock.advance_millis(14 * 60 * 1000);
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&cookie), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "14 minutes idle: still open"
    );
    test.clock.advance_millis(15 * 60 * 1000 + 1);
    let (response, body) = send(
        &app,
        request("GET", &members_uri(practice), Some(&cookie), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::LOCKED);
    assert_envelope(&body, "session_locked");
    assert!(
        !String::from_utf8_lossy(&body).contains("Anne"),
        "nothing of the record"
    );
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/unlock",
            Some(&cookie),
            Some(json!({"password": "wrong"})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/unlock",
            Some(&cookie),
            Some(json!({"password": PASSWORD})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&cookie), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    for _ in 0..50 {
        test.clock.advance_millis(14 * 60 * 1000);
        let _ = send(
            &app,
            request("GET", &members_uri(practice), Some(&cookie), None),
        )
        .await;
    }
    let (response, body) = send(
        &app,
        request("GET", &members_uri(practice), Some(&cookie), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "12 hours: expired however active"
    );
    assert_envelope(&body, "authentication_required");
}

#[tokio::test]
async fn a_revoked_session_is_refused_on_its_very_next_request() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, first, secret, _) = signed_in(&test).await;
    let app = test.anonymous();
    test.clock.advance_millis(30_000);
    let second = sign_in_again(&test, &secret).await;
    let (_, body) = send(
        &app,
        request("GET", "/api/v1/auth/sessions", Some(&second), None),
    )
    .await;
    let sessions = json(&body);
    let other = sessions
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the first session");
    let uri = format!(
        "/api/v1/auth/sessions/{}/revoke",
        other["id"].as_str().expect("id")
    );
    let (response, _) = send(&app, request("POST", &uri, Some(&second), None)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&first), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );
    let (response, _) = send(
        &app,
        request("POST", "/api/v1/auth/logout", Some(&second), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .expect("ASCII")
            .contains("Max-Age=0")
    );
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&second), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "logged out");
}

#[tokio::test]
async fn changing_the_password_revokes_the_other_sessions() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, first, secret, _) = signed_in(&test).await;
    let app = test.anonymous();
    test.clock.advance_millis(30_000);
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
    let second = cookie_of(&response);
    let code = secret.code_at(now_seconds(&test));
    let _ = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&second),
            Some(json!({"code": code})),
        ),
    )
    .await;
    let change =
        json!({"current_password": PASSWORD, "new_password": "Brume-Océan-77-Cerf-Volant?"});
    let (response, body) = send(
        &app,
        request("POST", "/api/v1/auth/password", Some(&second), Some(change)),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&first), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "other session revoked"
    );
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&second), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "this one kept");
}

#[tokio::test]
async fn an_attacker_gets_at_most_twenty_password_checks_per_day_and_unknown_accounts_look_the_same()
 {
    let test = test_app(HttpSettings::default()).await;
    let _ = signed_in(&test).await;
    let app = test.anonymous();
    let attempt = |login: &str, password: &str| {
        request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": login, "password": password})),
        )
    };
    let (unknown, unknown_body) =
        send(&app, attempt("nobody@example.fr", "Guess-1234-Guess!")).await;
    let (known, known_body) = send(&app, attempt(LOGIN, "Guess-1234-Guess!")).await;
    assert_eq!(unknown.status(), known.status());
    assert_eq!(
        unknown_body, known_body,
        "the same answer for an unknown account"
    );

    let mut checked = 1;
    let mut refused_without_check = 0;
    for _ in 0..200 {
        let (response, body) = send(&app, attempt(LOGIN, "Guess-1234-Guess!")).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused_without_check += 1,
            StatusCode::FORBIDDEN => {
                assert_envelope(&body, "account_locked");
                break;
            }
            other => panic!("unexpected {other}"),
        }
        test.clock.advance_millis(60_000);
    }
    assert_eq!(checked, 20, "exactly 20 passwords checked before the lock");
    assert!(
        refused_without_check > 0,
        "delays grew from the 5th failure"
    );
    let (response, _) = send(&app, attempt(LOGIN, PASSWORD)).await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "even the right password: locked"
    );
    test.clock.advance_millis(24 * 3600 * 1000);
    let (response, _) = send(&app, attempt(LOGIN, PASSWORD)).await;
    assert_eq!(response.status(), StatusCode::OK, "unlocked after 24 hours");
}

#[tokio::test]
async fn a_cross_site_request_is_refused_even_with_a_valid_session() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, cookie, _, _) = signed_in(&test).await;
    let app = test.anonymous();
    let staff = json!({"name": "Secrétaire", "role": "staff", "phone": "0611111111"});
    let mut forged = request(
        "POST",
        &members_uri(practice),
        Some(&cookie),
        Some(staff.clone()),
    );
    forged
        .headers_mut()
        .insert("origin", "https://evil.example".parse().expect("header"));
    forged
        .headers_mut()
        .insert("host", "carnet.example".parse().expect("header"));
    let (response, body) = send(&app, forged).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_envelope(&body, "cross_site_request");
    let mut same = request("POST", &members_uri(practice), Some(&cookie), Some(staff));
    same.headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().expect("header"));
    let (response, _) = send(&app, same).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Every route that needs a session refuses a missing, forged, expired, revoked and
/// locked one; the routes are enumerated from the router's description.
#[tokio::test]
async fn every_authenticated_route_refuses_missing_forged_expired_revoked_and_locked_sessions() {
    let document = carnet_http::openapi_document();
    let mut routes = Vec::new();
    for (path, item) in &document.paths.paths {
        if !path.starts_with("/api/v1/") || PUBLIC_ROUTES.contains(&path.as_str()) {
            continue;
        }
        let uri = path
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
        assert!(item.put.is_none(), "add a case for {path}");
        for (method, present) in [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ] {
            if present {
                routes.push((
                    method,
                    uri.clone(),
                    SESSION_FLOW_ROUTES.contains(&path.as_str()),
                ));
            }
        }
    }
    assert!(routes.len() >= 16, "{routes:?}");
    for kind in ["missing", "forged", "expired", "revoked", "locked"] {
        let test = test_app(HttpSettings::default()).await;
        let (_, _, cookie, _, _) = signed_in(&test).await;
        let app = test.anonymous();
        let presented = match kind {
            "missing" => None,
            "forged" => Some("Zm9yZ2VkLXRva2VuLXRoYXQtbm9ib2R5LWV2ZXItaXNzdWVk".to_owned()),
            "expired" => {
                test.clock.advance_millis(12 * 3600 * 1000 + 1);
                Some(cookie)
            }
            "revoked" => {
                let (response, _) = send(
                    &app,
                    request("POST", "/api/v1/auth/logout", Some(&cookie), None),
                )
                .await;
                assert_eq!(response.status(), StatusCode::NO_CONTENT);
                Some(cookie)
            }
            _ => {
                test.clock.advance_millis(16 * 60 * 1000);
                Some(cookie)
            }
        };
        for (method, uri, session_flow) in &routes {
            if kind == "locked" && uri.ends_with("/auth/logout") {
                continue; // Signing out from the lock screen is allowed.
            }
            let body = matches!(*method, "POST" | "PATCH").then(|| json!({}));
            let (response, _) = send(&app, request(method, uri, presented.as_deref(), body)).await;
            let status = response.status();
            let refused = if kind == "locked" && !session_flow {
                status == StatusCode::LOCKED
            } else {
                matches!(
                    status,
                    StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::LOCKED
                ) && status != StatusCode::OK
            };
            assert!(refused, "{kind} session on {method} {uri}: {status}");
            assert!(
                !status.is_success(),
                "{kind} session on {method} {uri} succeeded"
            );
        }
    }
}

#[tokio::test]
async fn a_holder_needs_a_fresh_authentication_to_issue_an_activation_code() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, member, cookie, _, _) = signed_in(&test).await;
    let app = test.anonymous();
    let uri = format!("/api/v1/practices/{practice}/members/{member}/activation-code");
    let (response, body) = send(&app, request("POST", &uri, Some(&cookie), None)).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "just signed in: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(json(&body)["code"].as_str().map(str::len), Some(14));
    test.clock.advance_millis(6 * 60 * 1000);
    let (response, body) = send(&app, request("POST", &uri, Some(&cookie), None)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_envelope(&body, "reauthentication_required");
    let _ = Actor::Anonymous;
}

#[tokio::test]
async fn a_holder_unlocks_a_members_locked_account_only_after_a_fresh_authentication() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder_cookie, secret, _) = signed_in(&test).await;
    let app = test.anonymous();
    // The holder adds a professional and gives them a code; they activate.
    let pro = json!({"name": "Paul Durand", "role": "professional", "phone": "0622222222",
                     "professional_id_number": "012807590"});
    let (response, body) = send(
        &app,
        request(
            "POST",
            &members_uri(practice),
            Some(&holder_cookie),
            Some(pro),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let pro_id = json(&body)["id"].as_str().expect("id").to_owned();
    let (_, body) = send(
        &app,
        request(
            "POST",
            &format!("/api/v1/practices/{practice}/members/{pro_id}/activation-code"),
            Some(&holder_cookie),
            None,
        ),
    )
    .await;
    let code = json(&body)["code"].as_str().expect("code").to_owned();
    let pro_login = "paul.durand@example.fr";
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/activate",
            None,
            Some(json!({"code": code, "login": pro_login, "password": PASSWORD})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // An attacker exhausts the professional's password tries.
    let attempt = |password: &str| {
        request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": pro_login, "password": password})),
        )
    };
    for _ in 0..20 {
        let (response, _) = send(&app, attempt("Guess-1234-Guess!")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        test.clock.advance_millis(16 * 60 * 1000);
    }
    let (response, _) = send(&app, attempt(PASSWORD)).await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "locked, even with the right password"
    );

    // The holder's session sat idle for hours: it is locked; they sign in afresh.
    let unlock = format!("/api/v1/practices/{practice}/members/{pro_id}/unlock");
    let (response, body) = send(&app, request("POST", &unlock, Some(&holder_cookie), None)).await;
    assert_eq!(
        response.status(),
        StatusCode::LOCKED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let fresh = sign_in_again(&test, &secret).await;
    let (response, _) = send(&app, request("POST", &unlock, Some(&fresh), None)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (response, _) = send(&app, attempt(PASSWORD)).await;
    assert_eq!(response.status(), StatusCode::OK, "unlocked by the holder");
}

#[tokio::test]
async fn one_address_cannot_spray_sign_in_attempts() {
    let test = test_app(HttpSettings::default()).await;
    let _ = holder_with_code(&test).await;
    let peer = std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
    let app = test
        .anonymous()
        .layer(axum::Extension(carnet_http::ClientAddress(peer)));
    let mut limited = 0;
    for n in 0..40 {
        let body = json!({"login": format!("user{n}@example.fr"), "password": "Guess-1234-Guess!"});
        let (response, _) = send(
            &app,
            request("POST", "/api/v1/auth/login", None, Some(body)),
        )
        .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert_eq!(
        limited, 10,
        "30 attempts per minute per address, then refused"
    );
    test.clock.advance_millis(60_000);
    let body = json!({"login": "user@example.fr", "password": "Guess-1234-Guess!"});
    let (response, _) = send(
        &app,
        request("POST", "/api/v1/auth/login", None, Some(body)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a new minute");
}

#[tokio::test]
async fn creating_a_member_needs_a_fresh_authentication() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, cookie, _, _) = signed_in(&test).await;
    let app = test.anonymous();
    let staff = json!({"name": "Secrétaire", "role": "staff", "phone": "0611111111"});
    test.clock.advance_millis(6 * 60 * 1000);
    let (response, body) = send(
        &app,
        request(
            "POST",
            &members_uri(practice),
            Some(&cookie),
            Some(staff.clone()),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_envelope(&body, "reauthentication_required");
}

/// The same attack on an existing login and on a login that matches no account gets the
/// same sequence of answers (throttling and lockout included): nothing tells them apart.
#[tokio::test]
async fn throttling_does_not_reveal_whether_an_account_exists() {
    let mut sequences = Vec::new();
    for login in [LOGIN, "nobody@example.fr"] {
        let test = test_app(HttpSettings::default()).await;
        let _ = signed_in(&test).await;
        let app = test.anonymous();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let body = json!({"login": login, "password": "Guess-1234-Guess!"});
            let (response, body) = send(
                &app,
                request("POST", "/api/v1/auth/login", None, Some(body)),
            )
            .await;
            statuses.push((
                response.status(),
                json(&body)["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
            test.clock.advance_millis(20_000);
        }
        sequences.push(statuses);
    }
    assert_eq!(sequences[0], sequences[1]);
    assert!(
        sequences[0]
            .iter()
            .any(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
    );
}

/// The signed-in pages send a missing or invalid session to the sign-in page and a
/// locked one to the lock screen (423), showing nothing of the page.
#[tokio::test]
async fn signed_in_pages_refuse_missing_invalid_and_locked_sessions() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, cookie, _, _) = signed_in(&test).await;
    let app = test.anonymous();
    let pages = [
        "/espace".to_owned(),
        "/sessions".to_owned(),
        "/mot-de-passe".to_owned(),
        "/cles-d-acces".to_owned(),
        format!("/cabinets/{practice}/journal"),
    ];
    for page in &pages {
        let (response, body) = send(&app, request("GET", page, Some(&cookie), None)).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{page}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    for page in &pages[..3] {
        for presented in [None, Some("forged")] {
            let (response, _) = send(&app, request("GET", page, presented, None)).await;
            assert_eq!(
                response.status(),
                StatusCode::SEE_OTHER,
                "{page} without a session"
            );
            assert_eq!(response.headers()["location"], "/connexion");
        }
    }
    test.clock.advance_millis(16 * 60 * 1000);
    for page in &pages {
        let (response, body) = send(&app, request("GET", page, Some(&cookie), None)).await;
        assert_eq!(response.status(), StatusCode::LOCKED, "{page}");
        let html = String::from_utf8(body).expect("UTF-8");
        assert!(html.contains("Session verrouillée"), "{page}");
        assert!(
            !html.contains("Mon espace") && !html.contains("Journal des accès"),
            "{page} shows nothing of itself"
        );
    }
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one story: replace, confirm, revoke, retire"
)]
async fn replacing_the_totp_factor_revokes_the_other_sessions_and_retires_the_old_secret() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, first, old_secret, _) = signed_in(&test).await;
    let app = test.anonymous();
    test.clock.advance_millis(30_000);
    let second = sign_in_again(&test, &old_secret).await;

    let (response, body) = send(
        &app,
        request("POST", "/api/v1/auth/totp/replacement", Some(&second), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let new_secret =
        TotpSecret::from_base32(json(&body)["secret"].as_str().expect("secret")).expect("base32");
    let wrong = json!({"code": old_secret.code_at(now_seconds(&test))});
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp/replacement/confirm",
            Some(&second),
            Some(wrong),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret does not confirm the new one"
    );
    let right = json!({"code": new_secret.code_at(now_seconds(&test))});
    let (response, body) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp/replacement/confirm",
            Some(&second),
            Some(right),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        json(&body)["recovery_codes"].as_array().map(Vec::len),
        Some(10)
    );

    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&first), None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "other sessions revoked on factor change"
    );
    let (response, _) = send(
        &app,
        request("GET", &members_uri(practice), Some(&second), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    test.clock.advance_millis(60_000);
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
    let third = cookie_of(&response);
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&third),
            Some(json!({"code": old_secret.code_at(now_seconds(&test))})),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret is retired"
    );
    let (response, _) = send(
        &app,
        request(
            "POST",
            "/api/v1/auth/totp",
            Some(&third),
            Some(json!({"code": new_secret.code_at(now_seconds(&test))})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_platform_administrator_also_lifts_a_password_lockout() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, member, code) = holder_with_code(&test).await;
    let app = test.anonymous();
    let activation = json!({"code": code, "login": LOGIN, "password": PASSWORD});
    let (response, _) = send(
        &app,
        request("POST", "/api/v1/auth/activate", None, Some(activation)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let attempt = |password: &str| {
        request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": LOGIN, "password": password})),
        )
    };
    for _ in 0..20 {
        let (response, _) = send(&app, attempt("Guess-1234-Guess!")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        test.clock.advance_millis(16 * 60 * 1000);
    }
    let (response, _) = send(&app, attempt(PASSWORD)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "locked");
    let admin = test
        .state
        .services
        .create_platform_admin(&Caller::operator(), "Admin")
        .await
        .expect("admin");
    let unlock = format!("/api/v1/practices/{practice}/members/{member}/unlock");
    let (response, body) = send(
        &test.as_actor(Actor::PlatformAdmin(admin)),
        request("POST", &unlock, None, None),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (response, _) = send(&app, attempt(PASSWORD)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "unlocked by the administrator"
    );
}
