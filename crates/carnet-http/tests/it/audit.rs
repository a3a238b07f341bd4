use std::net::{IpAddr, Ipv4Addr};

use axum::http::StatusCode;
use carnet_domain::Role;
use carnet_http::{ClientAddress, HttpSettings};
use carnet_service::{Actor, Caller};
use serde_json::json;

use crate::support::{TestApp, assert_envelope, get, json, post_json, send, test_app};

/// A practice with its first holder, created by the operator; returns (practice, holder).
async fn practice_with_holder(test: &TestApp) -> (String, String) {
    let operator = test.as_actor(Actor::Operator);
    let body = json!({"name": "Cabinet", "address": "1 rue Haute, 13001 Marseille", "profession": "nurse"});
    let (_, bytes) = send(&operator, post_json("/api/v1/practices", &body)).await;
    let practice = json(&bytes)["id"].as_str().expect("id").to_owned();
    let holder = json!({"name": "Titulaire", "role": "holder", "phone": "0612345678",
                        "professional_id_number": "10000005479"});
    let (_, bytes) = send(
        &operator,
        post_json(&format!("/api/v1/practices/{practice}/members"), &holder),
    )
    .await;
    (
        practice,
        json(&bytes)["id"].as_str().expect("id").to_owned(),
    )
}

fn holder(practice: &str, member: &str) -> Actor {
    Actor::Member {
        practice_id: practice.parse().expect("uuid"),
        member_id: member.parse().expect("uuid"),
        role: Role::Holder,
    }
}

/// The database refuses every audit append from now on: a failpoint in the database.
pub async fn break_the_trail(test: &TestApp) {
    test.store
        .danger_execute(
            "CREATE TRIGGER failpoint_audit BEFORE INSERT ON audit_entries \
             BEGIN SELECT RAISE(ABORT, 'failpoint: audit append'); END",
        )
        .await
        .expect("install the failpoint");
}

#[tokio::test]
async fn a_read_is_refused_when_its_audit_entry_cannot_be_written() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id) = practice_with_holder(&test).await;
    let app = test.as_actor(holder(&practice, &holder_id));
    let uri = format!("/api/v1/practices/{practice}/members");
    let (before, _) = send(&app, get(&uri)).await;
    assert_eq!(before.status(), StatusCode::OK);

    break_the_trail(&test).await;
    let (response, body) = send(&app, get(&uri)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_envelope(&body, "unavailable");
    assert!(
        !String::from_utf8_lossy(&body).contains("Titulaire"),
        "nothing was served"
    );
}

#[tokio::test]
async fn a_write_is_refused_and_undone_when_its_audit_entry_cannot_be_written() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id) = practice_with_holder(&test).await;
    let app = test.as_actor(holder(&practice, &holder_id));
    let uri = format!("/api/v1/practices/{practice}/members");

    break_the_trail(&test).await;
    let staff = json!({"name": "Secrétaire", "role": "staff", "phone": "0611111111"});
    let (response, body) = send(&app, post_json(&uri, &staff)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_envelope(&body, "unavailable");

    test.store
        .danger_execute("DROP TRIGGER failpoint_audit")
        .await
        .expect("remove the failpoint");
    let (_, body) = send(&app, get(&uri)).await;
    let members = json(&body);
    assert_eq!(
        members.as_array().map(Vec::len),
        Some(1),
        "the member was not added: {members}"
    );
}

#[tokio::test]
async fn holders_read_their_practice_trail_with_filters_and_every_access_is_in_it() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id) = practice_with_holder(&test).await;
    let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let app = carnet_http::with_middleware(
        carnet_http::routes(test.state.clone())
            .layer(axum::Extension(holder(&practice, &holder_id)))
            .layer(axum::Extension(ClientAddress(peer))),
        &test.state.settings,
    );
    let (_, _) = send(&app, get(&format!("/api/v1/practices/{practice}/members"))).await;
    let (response, body) = send(
        &app,
        get(&format!("/api/v1/practices/{practice}/audit-events")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let events = json(&body);
    let actions: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["action"].as_str().expect("code"))
        .collect();
    assert_eq!(
        actions,
        vec!["members_listed", "member_added", "practice_created"],
        "newest first"
    );
    let listed = &events[0];
    assert_eq!(listed["actor_kind"], "member");
    assert_eq!(listed["actor_account"], holder_id.as_str());
    assert_eq!(listed["actor_role"], "holder");
    assert_eq!(listed["client_address"], "192.0.2.10");
    assert_eq!(listed["request_id"].as_str().map(str::len), Some(36));
    assert_eq!(listed["hash"].as_str().map(str::len), Some(64));

    let (_, body) = send(
        &app,
        get(&format!(
            "/api/v1/practices/{practice}/audit-events?action=member_added"
        )),
    )
    .await;
    assert_eq!(json(&body).as_array().map(Vec::len), Some(1));
    let (_, body) = send(
        &app,
        get(&format!(
            "/api/v1/practices/{practice}/audit-events?member={holder_id}"
        )),
    )
    .await;
    let by_holder = json(&body);
    assert!(
        by_holder
            .as_array()
            .expect("list")
            .iter()
            .all(|e| e["actor_account"] == holder_id.as_str())
    );
    assert_eq!(
        by_holder[0]["action"], "audit_read",
        "reading the trail is itself in the trail"
    );
    let (response, body) = send(
        &app,
        get(&format!(
            "/api/v1/practices/{practice}/audit-events?from=demain"
        )),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["field"], "from");
}

#[tokio::test]
async fn a_patients_access_history_exports_as_csv_and_json_and_is_itself_traced() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id) = practice_with_holder(&test).await;
    let app = test.as_actor(holder(&practice, &holder_id));
    let patient = "0190a0b0-0000-7000-8000-0000000000aa";
    let uri = format!("/api/v1/practices/{practice}/patients/{patient}/access-history");
    let (response, body) = send(&app, get(&format!("{uri}?format=csv"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let csv = String::from_utf8(body).expect("UTF-8");
    assert!(
        csv.starts_with("seq,date,acteur,compte,role,action"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().count(),
        1,
        "no access to this patient yet: header only"
    );

    let (response, body) = send(&app, get(&uri)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let history = json(&body);
    assert_eq!(
        history.as_array().map(Vec::len),
        Some(1),
        "the first export is now in the history"
    );
    assert_eq!(history[0]["action"], "audit_exported");
    assert_eq!(history[0]["target_patient"], patient);
    let (response, _) = send(&app, get(&format!("{uri}?format=pdf"))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn only_holders_read_a_practice_trail_and_refusals_are_traced() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id) = practice_with_holder(&test).await;
    let staff = json!({"name": "Secrétaire", "role": "staff", "phone": "0611111111"});
    let holder_app = test.as_actor(holder(&practice, &holder_id));
    let (_, body) = send(
        &holder_app,
        post_json(&format!("/api/v1/practices/{practice}/members"), &staff),
    )
    .await;
    let staff_id = json(&body)["id"].as_str().expect("id").to_owned();
    let staff_actor = Actor::Member {
        practice_id: practice.parse().expect("uuid"),
        member_id: staff_id.parse().expect("uuid"),
        role: Role::Staff,
    };
    let admin = test
        .state
        .services
        .create_platform_admin(&Caller::operator(), "Admin")
        .await
        .expect("admin");
    for actor in [staff_actor, Actor::PlatformAdmin(admin), Actor::Operator] {
        let (response, _) = send(
            &test.as_actor(actor.clone()),
            get(&format!("/api/v1/practices/{practice}/audit-events")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{actor:?}");
    }
    let (_, body) = send(
        &holder_app,
        get(&format!(
            "/api/v1/practices/{practice}/audit-events?action=audit_read"
        )),
    )
    .await;
    let events = json(&body);
    let refusals: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .map(|e| e["actor_kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        refusals,
        vec!["operator", "platform_admin", "member"],
        "every refusal is traced"
    );
}

#[tokio::test]
async fn the_platform_side_reads_instance_events_but_members_do_not() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id) = practice_with_holder(&test).await;
    let admin = test
        .state
        .services
        .create_platform_admin(&Caller::operator(), "Admin")
        .await
        .expect("admin");
    let (response, body) = send(
        &test.as_actor(Actor::PlatformAdmin(admin)),
        get("/api/v1/audit-events"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let actions: Vec<String> = json(&body)
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["action"].as_str().expect("code").to_owned())
        .collect();
    assert_eq!(actions, vec!["admin_created", "practice_created"]);
    let (response, _) = send(
        &test.as_actor(holder(&practice, &holder_id)),
        get("/api/v1/audit-events"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_journal_page_shows_the_trail_in_french_for_holders() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id) = practice_with_holder(&test).await;
    let app = test.as_actor(holder(&practice, &holder_id));
    let (response, body) = send(
        &app,
        get(&format!("/cabinets/{practice}/journal?action=member_added")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = String::from_utf8(body).expect("UTF-8");
    assert!(html.contains("Journal des accès du cabinet"));
    assert!(html.contains("membre ajouté"));
    assert!(html.contains("<td>membre ajouté</td>"));
    assert!(!html.contains("<td>cabinet créé</td>"), "filtered out");
    assert!(!html.contains("style="), "no inline style");
    let (response, body) = send(
        &app,
        get(&format!("/cabinets/{practice}/journal?from=hier")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("Date de début invalide"));
}
