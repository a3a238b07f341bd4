//! Practice key rotation (ADR 0009): after ten rotations — some with the patients left on
//! older versions, some moved — every record still opens (identity, clinical content,
//! documents) and search still finds; a re-encryption stopped half-way leaves every
//! record readable and resumes where it stopped.

use axum::http::StatusCode;
use carnet_http::HttpSettings;
use carnet_service::Caller;
use serde_json::json;

use crate::auth::signed_in;
use crate::patients::{NIR, act, call, create, identity, names, search, unlock, validate};
use crate::support::{TestApp, test_app};

async fn key_versions(test: &TestApp) -> Vec<i64> {
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        test.dir.path().join("db.sqlite3").display()
    ))
    .await
    .expect("raw database");
    let versions: Vec<(i64,)> = sqlx::query_as("SELECT key_version FROM patients ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("versions");
    pool.close().await;
    versions.into_iter().map(|(version,)| version).collect()
}

/// Everything of the record opens, and search finds both patients.
async fn all_opens(
    test: &TestApp,
    holder: &str,
    practice: &str,
    patient_uri: &str,
    document: &str,
) {
    let (status, body) = call(test, "GET", patient_uri, holder, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, entries) =
        call(test, "GET", &format!("{patient_uri}/entries"), holder, None).await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    assert_eq!(entries.as_array().expect("entries").len(), 1);
    let (status, _) = call(
        test,
        "GET",
        &format!("{patient_uri}/documents/{document}/content"),
        holder,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        names(&search(test, holder, practice, "name=leg").await).len(),
        2
    );
    assert_eq!(
        names(&search(test, holder, practice, &format!("nir={NIR}")).await).len(),
        1
    );
}

#[tokio::test]
async fn after_ten_rotations_every_record_still_opens() {
    let test = test_app(HttpSettings::default()).await;
    let (practice_id, holder_id, holder, _, _) = signed_in(&test).await;
    let practice = practice_id.to_string();
    validate(&test, &practice, &holder_id.to_string()).await;
    unlock(&test, &holder, &holder).await;
    let mut first = identity("Legrand", "Paul", "1950-01-02");
    first["nir"] = json!(NIR);
    let patient = create(&test, &holder, &practice, first).await;
    create(
        &test,
        &holder,
        &practice,
        identity("Legros", "Anne", "1960-03-04"),
    )
    .await;
    let patient_uri = format!(
        "/api/v1/practices/{practice}/patients/{}",
        patient["id"].as_str().expect("id")
    );
    let (status, _) = call(
        &test,
        "POST",
        &format!("{patient_uri}/entries"),
        &holder,
        Some(json!({"content": act()})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, uploaded) = crate::documents::upload(
        &test,
        &holder,
        &format!("{patient_uri}/documents"),
        "radio.pdf",
        b"%PDF-1.7 radio".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let document = uploaded["id"].as_str().expect("id").to_owned();

    let services = &test.state.services;
    let operator = Caller::operator();
    // Five rotations with nobody moved: the patients stay on version 1 meanwhile.
    for expected in 2..=6 {
        assert_eq!(
            services
                .rotate_practice_key(&operator, practice_id)
                .await
                .expect("rotate"),
            expected
        );
        all_opens(&test, &holder, &practice, &patient_uri, &document).await;
    }
    assert_eq!(key_versions(&test).await, vec![1, 1]);
    assert_eq!(
        services.practices_to_reencrypt().await.expect("list"),
        vec![practice_id]
    );
    // Then five with every patient moved each time.
    for expected in 7..=11 {
        services
            .rotate_practice_key(&operator, practice_id)
            .await
            .expect("rotate");
        while services
            .reencrypt_practice(&operator, practice_id, 200)
            .await
            .expect("move")
            > 0
        {}
        assert_eq!(key_versions(&test).await, vec![expected, expected]);
        all_opens(&test, &holder, &practice, &patient_uri, &document).await;
    }
    assert!(
        services
            .practices_to_reencrypt()
            .await
            .expect("list")
            .is_empty()
    );
    // A member never rotates keys.
    let member = Caller::new(carnet_service::Actor::Member {
        practice_id,
        member_id: holder_id,
        role: carnet_domain::Role::Holder,
    });
    assert!(
        services
            .rotate_practice_key(&member, practice_id)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_re_encryption_stopped_half_way_leaves_everything_readable_and_resumes() {
    let test = test_app(HttpSettings::default()).await;
    let (practice_id, _, holder, _, _) = signed_in(&test).await;
    let practice = practice_id.to_string();
    unlock(&test, &holder, &holder).await;
    for (name, first, born) in [
        ("Legrand", "Paul", "1950-01-02"),
        ("Legros", "Anne", "1960-03-04"),
        ("Leguen", "Luc", "1970-05-06"),
    ] {
        create(&test, &holder, &practice, identity(name, first, born)).await;
    }
    let services = &test.state.services;
    let operator = Caller::operator();
    services
        .rotate_practice_key(&operator, practice_id)
        .await
        .expect("rotate");
    assert_eq!(
        services
            .reencrypt_practice(&operator, practice_id, 1)
            .await
            .expect("one batch"),
        1
    );
    // Stopped here (a kill between two batches leaves exactly this: each batch is one
    // transaction). Mixed versions; everything reads and is found.
    let mut versions = key_versions(&test).await;
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 1, 2]);
    assert_eq!(
        names(&search(&test, &holder, &practice, "name=leg").await).len(),
        3
    );
    for found in search(&test, &holder, &practice, "name=leg").await {
        let uri = format!(
            "/api/v1/practices/{practice}/patients/{}",
            found["id"].as_str().expect("id")
        );
        assert_eq!(
            call(&test, "GET", &uri, &holder, None).await.0,
            StatusCode::OK
        );
    }
    // Resumed (as the server's job does): the rest moves.
    assert_eq!(
        services.practices_to_reencrypt().await.expect("list"),
        vec![practice_id]
    );
    assert_eq!(
        services
            .reencrypt_practice(&operator, practice_id, 200)
            .await
            .expect("rest"),
        2
    );
    assert_eq!(
        services
            .reencrypt_practice(&operator, practice_id, 200)
            .await
            .expect("done"),
        0
    );
    assert_eq!(key_versions(&test).await, vec![2, 2, 2]);
    assert_eq!(
        names(&search(&test, &holder, &practice, "name=leg").await).len(),
        3
    );
}
