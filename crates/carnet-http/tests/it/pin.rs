//! The practice PIN over HTTP: shown to holders only, regenerated (the old one dies at
//! once), typed by members to unlock the care records, needed again after an idle lock;
//! the third wrong PIN ends the session and alerts the holders.

use axum::http::StatusCode;
use carnet_http::HttpSettings;
use carnet_service::Caller;
use serde_json::{Value, json};

use crate::auth::{member_signed_in, request, signed_in};
use crate::support::{TestApp, json, send, test_app};

const PASSWORD: &str = "Tilleul-Marée-42-Orage!";

async fn call(
    test: &TestApp,
    method: &str,
    uri: &str,
    cookie: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (response, bytes) = send(&test.anonymous(), request(method, uri, Some(cookie), body)).await;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (response.status(), value)
}

/// A staff member of the holder's practice, signed in on the same browser.
pub async fn staff_member(test: &TestApp, holder_cookie: &str, practice: &str) -> String {
    let member = json!({"name": "Léa Petit", "role": "staff", "phone": "0633333333"});
    member_signed_in(
        test,
        holder_cookie,
        practice,
        member,
        "lea.petit@example.fr",
    )
    .await
    .1
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one story: show, refuse, unlock, renew, notice"
)]
async fn holders_alone_see_and_regenerate_the_pin_and_the_old_one_dies_at_once() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let (status, shown) = call(&test, "GET", "/api/v1/auth/pin", &holder, None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let first = shown["pin"].as_str().expect("pin").to_owned();
    assert_eq!(first.len(), 4);
    assert!(
        first
            .bytes()
            .all(|byte| carnet_crypto::CODE_ALPHABET.contains(&byte)),
        "{first}"
    );
    let (_, again) = call(&test, "GET", "/api/v1/auth/pin", &holder, None).await;
    assert_eq!(again["pin"], first.as_str(), "stable until regenerated");

    let staff = staff_member(&test, &holder, &practice.to_string()).await;
    let (status, _) = call(&test, "GET", "/api/v1/auth/pin", &staff, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "staff never see the PIN");
    let (status, _) = call(&test, "POST", "/api/v1/auth/pin/regenerate", &staff, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (page, html) = send(
        &test.anonymous(),
        request("GET", "/cabinet/code-pin", Some(&staff), None),
    )
    .await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(!String::from_utf8_lossy(&html).contains(&first));

    let (status, _) = call(
        &test,
        "POST",
        "/api/v1/auth/pin/unlock",
        &staff,
        Some(json!({"pin": first.to_lowercase()})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "typed in lower case is fine"
    );
    assert!(
        test.state
            .services
            .care_records_unlocked(&staff)
            .await
            .expect("state")
    );

    let (status, renewed) = call(&test, "POST", "/api/v1/auth/pin/regenerate", &holder, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renewed["version"], 2);
    assert!(
        !test
            .state
            .services
            .care_records_unlocked(&staff)
            .await
            .expect("state"),
        "the old PIN's unlock ends with it"
    );
    let second = renewed["pin"].as_str().expect("pin").to_owned();
    if second != first {
        let (status, _) = call(
            &test,
            "POST",
            "/api/v1/auth/pin/unlock",
            &staff,
            Some(json!({"pin": first})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "the old PIN no longer works"
        );
    }
    let (status, _) = call(
        &test,
        "POST",
        "/api/v1/auth/pin/unlock",
        &staff,
        Some(json!({"pin": second})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let notices = test
        .state
        .services
        .my_notices(&staff)
        .await
        .expect("notices");
    assert!(
        notices
            .iter()
            .any(|(_, message)| message.contains("a changé")),
        "{notices:?}"
    );
    let (page, html) = send(
        &test.anonymous(),
        request("GET", "/espace", Some(&staff), None),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = String::from_utf8_lossy(&html).into_owned();
    assert!(html.contains("a changé"), "the notice is on the home page");
    assert!(html.contains("déverrouillés pour cette session"), "{html}");
    let (response, _) = send(
        &test.anonymous(),
        request("POST", "/messages/lus", Some(&staff), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        test.state
            .services
            .my_notices(&staff)
            .await
            .expect("notices")
            .is_empty(),
        "dismissed"
    );

    // Six minutes later, the holder must confirm their identity again to see it.
    test.clock.advance_millis(6 * 60 * 1000);
    let (status, _) = call(&test, "GET", "/api/v1/auth/pin", &holder, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let _ = Caller::operator();
}

#[tokio::test]
async fn the_third_wrong_pin_ends_the_session_and_alerts_the_holders() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let (_, shown) = call(&test, "GET", "/api/v1/auth/pin", &holder, None).await;
    let pin = shown["pin"].as_str().expect("pin").to_owned();
    let wrong = if pin == "2222" { "3333" } else { "2222" };
    let staff = staff_member(&test, &holder, &practice.to_string()).await;
    for attempt in 1..=3 {
        let (status, body) = call(
            &test,
            "POST",
            "/api/v1/auth/pin/unlock",
            &staff,
            Some(json!({"pin": wrong})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {body}"
        );
    }
    let (status, _) = call(&test, "GET", "/api/v1/auth/sessions", &staff, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session is over");
    let alerts = test
        .state
        .services
        .my_notices(&holder)
        .await
        .expect("notices");
    assert!(
        alerts
            .iter()
            .any(|(_, message)| message.contains("trois codes PIN erronés")),
        "{alerts:?}"
    );
    let failures = test
        .store
        .audit_chain_entries(carnet_audit::ChainId::Practice(practice))
        .await
        .expect("read")
        .into_iter()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.event.action.code() == "pin_failed")
        })
        .count();
    assert_eq!(failures, 3);
}

#[tokio::test]
async fn an_idle_lock_asks_for_the_pin_again() {
    let test = test_app(HttpSettings::default()).await;
    let (_, _, holder, _, _) = signed_in(&test).await;
    let (_, shown) = call(&test, "GET", "/api/v1/auth/pin", &holder, None).await;
    let (status, _) = call(
        &test,
        "POST",
        "/api/v1/auth/pin/unlock",
        &holder,
        Some(json!({"pin": shown["pin"]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        test.state
            .services
            .care_records_unlocked(&holder)
            .await
            .expect("state")
    );
    test.clock.advance_millis(16 * 60 * 1000);
    let (status, _) = call(
        &test,
        "POST",
        "/api/v1/auth/unlock",
        &holder,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        !test
            .state
            .services
            .care_records_unlocked(&holder)
            .await
            .expect("state"),
        "after the idle lock, the PIN is needed again"
    );
    let _ = json(b"null");
}
