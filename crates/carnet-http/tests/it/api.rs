use axum::http::StatusCode;
use carnet_http::HttpSettings;
use carnet_service::Actor;
use serde_json::json;

use crate::support::{assert_envelope, get, json, post_json, send, test_app};

fn practice_body() -> serde_json::Value {
    json!({"name": "Cabinet des Tilleuls", "address": "3 rue des Lilas, 69003 Lyon", "profession": "nurse"})
}

/// Every API route of the router (enumerated from the generated description, which the
/// router is built from) refuses a request without an authenticated actor: a new route
/// is covered the day it is added.
#[tokio::test]
async fn every_api_route_refuses_requests_without_an_authenticated_actor() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    let document = carnet_http::openapi_document();
    let mut checked = 0;
    for (path, item) in &document.paths.paths {
        if !path.starts_with("/api/v1/") || crate::auth::PUBLIC_ROUTES.contains(&path.as_str()) {
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
            if !present {
                continue;
            }
            let request = match method {
                "GET" => get(&uri),
                "POST" => post_json(&uri, &json!({})),
                other => {
                    let mut request = post_json(&uri, &json!({}));
                    *request.method_mut() = other.parse().expect("method");
                    request
                }
            };
            let (response, body) = send(&app, request).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {uri}"
            );
            assert_envelope(&body, "authentication_required");
            checked += 1;
        }
    }
    assert!(checked >= 9, "the enumeration found the routes ({checked})");
    let (page, body) = send(
        &app,
        get("/cabinets/0190a0b0-0000-7000-8000-000000000000/journal"),
    )
    .await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&body).contains("Connexion requise"));
}

#[tokio::test]
async fn the_operator_creates_a_practice_and_its_first_holder() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.as_actor(Actor::Operator);
    let (response, body) = send(&app, post_json("/api/v1/practices", &practice_body())).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let practice = json(&body);
    assert_eq!(practice["profession_label"], "infirmier·ère");
    let id = practice["id"].as_str().expect("id");

    let holder = json!({"name": "Anne Martin", "role": "holder", "phone": "06 12 34 56 78",
                        "professional_id_number": "10000005479"});
    let (response, body) = send(
        &app,
        post_json(&format!("/api/v1/practices/{id}/members"), &holder),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let member = json(&body);
    assert_eq!(member["professional_id"]["kind"], "rpps");
    assert_eq!(member["professional_id_status"], "pending");
    assert!(member["professional_id_decision"].is_null());

    let (response, body) = send(&app, get(&format!("/api/v1/practices/{id}/members"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(&body).as_array().map(Vec::len), Some(1));
    let (response, body) = send(&app, get("/api/v1/practices")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(&body)[0]["id"], id);
}

#[tokio::test]
async fn bad_input_gets_a_clear_french_error_naming_the_field() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.as_actor(Actor::Operator);
    let mut body = practice_body();
    body["profession"] = json!("plombier");
    let (response, bytes) = send(&app, post_json("/api/v1/practices", &body)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_envelope(&bytes, "invalid_input");
    assert_eq!(json(&bytes)["error"]["field"], "profession");

    let (response, bytes) = send(
        &app,
        post_json("/api/v1/practices", &json!({"name": "x", "surprise": 1})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_envelope(&bytes, "invalid_json");

    let (response, bytes) = send(&app, get("/api/v1/practices/not-a-uuid/members")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_envelope(&bytes, "invalid_id");

    let (_, bytes) = send(&app, post_json("/api/v1/practices", &practice_body())).await;
    let id = json(&bytes)["id"].as_str().expect("id").to_owned();
    let holder = json!({"name": "Anne", "role": "holder", "phone": "0612345678",
                        "professional_id_number": "10101201234"});
    let (response, bytes) = send(
        &app,
        post_json(&format!("/api/v1/practices/{id}/members"), &holder),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = json(&bytes);
    assert_eq!(error["error"]["field"], "professional_id");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("clé de contrôle")),
        "{error}"
    );
    let (_, bytes) = send(&app, get(&format!("/api/v1/practices/{id}/members"))).await;
    assert_eq!(json(&bytes), json!([]), "nothing was created");
}

#[tokio::test]
async fn a_member_of_another_practice_is_refused_and_a_holder_cannot_validate() {
    let test = test_app(HttpSettings::default()).await;
    let operator = test.as_actor(Actor::Operator);
    let mut ids = Vec::new();
    for name in ["Cabinet A", "Cabinet B"] {
        let mut body = practice_body();
        body["name"] = json!(name);
        let (_, bytes) = send(&operator, post_json("/api/v1/practices", &body)).await;
        let practice_id = json(&bytes)["id"].as_str().expect("id").to_owned();
        let holder = json!({"name": "Titulaire", "role": "holder", "phone": "0612345678",
                            "professional_id_number": "10000005479"});
        let (_, bytes) = send(
            &operator,
            post_json(&format!("/api/v1/practices/{practice_id}/members"), &holder),
        )
        .await;
        ids.push((
            practice_id,
            json(&bytes)["id"].as_str().expect("id").to_owned(),
        ));
    }
    let (a, holder_a) = &ids[0];
    let (b, _) = &ids[1];
    let holder_actor = Actor::Member {
        practice_id: a.parse().expect("uuid"),
        member_id: holder_a.parse().expect("uuid"),
        role: carnet_domain::Role::Holder,
    };
    let holder_app = test.as_actor(holder_actor);
    let (response, bytes) = send(&holder_app, get(&format!("/api/v1/practices/{b}/members"))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_envelope(&bytes, "forbidden");
    let (response, _) = send(&holder_app, get("/api/v1/practices")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let decision = json!({"decision": "validate", "reason": "moi-même"});
    let (response, _) = send(
        &holder_app,
        post_json(
            &format!("/api/v1/practices/{a}/members/{holder_a}/professional-id-decisions"),
            &decision,
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a holder cannot validate their own number"
    );
}

#[tokio::test]
async fn a_platform_administrator_validates_a_number_with_a_reason() {
    let test = test_app(HttpSettings::default()).await;
    let operator = test.as_actor(Actor::Operator);
    let (_, bytes) = send(&operator, post_json("/api/v1/practices", &practice_body())).await;
    let practice_id = json(&bytes)["id"].as_str().expect("id").to_owned();
    let holder = json!({"name": "Titulaire", "role": "holder", "phone": "0612345678",
                        "professional_id_kind": "adeli", "professional_id_number": "012807590"});
    let (_, bytes) = send(
        &operator,
        post_json(&format!("/api/v1/practices/{practice_id}/members"), &holder),
    )
    .await;
    let member_id = json(&bytes)["id"].as_str().expect("id").to_owned();

    let admin = test
        .state
        .services
        .create_platform_admin(&carnet_service::Caller::operator(), "Admin")
        .await
        .expect("admin");
    let admin_app = test.as_actor(Actor::PlatformAdmin(admin));
    let uri =
        format!("/api/v1/practices/{practice_id}/members/{member_id}/professional-id-decisions");
    let (response, bytes) = send(
        &admin_app,
        post_json(&uri, &json!({"decision": "approve", "reason": "x"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&bytes)["error"]["field"], "decision");

    let (response, bytes) = send(
        &admin_app,
        post_json(
            &uri,
            &json!({"decision": "validate", "reason": "Vérifié dans l'Annuaire Santé"}),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let member = json(&bytes);
    assert_eq!(member["professional_id_status"], "validated");
    assert_eq!(
        member["professional_id_decision"]["decided_by"],
        admin.to_string()
    );
    assert_eq!(
        member["professional_id_decision"]["decided_at"],
        "2026-11-23T10:17:00Z"
    );
    assert_eq!(
        member["professional_id_decision"]["reason"],
        "Vérifié dans l'Annuaire Santé"
    );

    let (response, bytes) = send(&admin_app, get(&uri)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(&bytes).as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn readiness_reports_the_database_and_migrations() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    let (response, bytes) = send(&app, get("/readyz")).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        json(&bytes),
        json!({"status": "ok", "database_reachable": true, "migrations_current": true})
    );
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let test = test_app(HttpSettings::default()).await;
    let app = test.anonymous();
    test.store.close().await;
    let (response, bytes) = send(&app, get("/readyz")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&bytes)["database_reachable"], false);
    let (live, _) = send(&app, get("/healthz")).await;
    assert_eq!(
        live.status(),
        StatusCode::OK,
        "liveness does not depend on the database"
    );
}
