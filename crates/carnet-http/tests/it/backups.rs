//! The backup monitoring page: holders see each target's state and alerts (not its
//! address); other members are refused; a locked session gets the lock screen.

use axum::http::StatusCode;
use carnet_http::HttpSettings;
use carnet_store::BackupRunRecord;

use crate::auth::request;
use crate::support::{send, test_app};

#[tokio::test]
async fn holders_see_each_targets_state_and_alerts_and_others_are_refused() {
    let mut test = test_app(HttpSettings::default()).await;
    test.state.services = (*test.state.services)
        .clone()
        .with_backup_plan(carnet_service::BackupPlan {
            targets: vec![
                ("disque".into(), "/mnt/secret-path".into()),
                ("hors-site".into(), "s3:https://s3.example.fr/seau".into()),
            ],
            interval_minutes: 60,
        })
        .into();
    let now = carnet_domain::Clock::now(test.clock.as_ref()).unix_millis();
    for (target, kind, ok, message) in [
        (
            "disque",
            "backup",
            true,
            "12 fichier(s), 3 octet(s) ajoutés",
        ),
        ("disque", "check", true, "structure intacte"),
        ("disque", "drill", false, "la base restaurée ne s'ouvre pas"),
    ] {
        test.store
            .record_backup_run(&BackupRunRecord {
                target: target.into(),
                kind: kind.into(),
                started_at: now - 60_000,
                finished_at: now - 30_000,
                ok,
                snapshot: Some("0123abcd".into()),
                bytes_added: Some(2 * 1024 * 1024),
                message: message.into(),
            })
            .await
            .expect("record");
    }
    let (practice, holder, _) = crate::patients::holder_with_patient(&test).await;
    let app = carnet_http::app(test.state.clone());

    let (response, body) = send(&app, request("GET", "/sauvegardes", Some(&holder), None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = String::from_utf8(body).expect("utf-8");
    assert!(html.contains("Cible « disque »"), "{html}");
    assert!(html.contains("2,0 Mo"), "size added");
    assert!(
        html.contains("l&#39;exercice de restauration a échoué")
            || html.contains("l'exercice de restauration a échoué"),
        "{html}"
    );
    assert!(html.contains("Cible « hors-site »"));
    assert!(
        html.contains("aucune sauvegarde réussie"),
        "the target never backed up alerts"
    );
    assert!(
        !html.contains("/mnt/secret-path"),
        "addresses are for administrators"
    );
    assert!(
        !html.contains("ne s'ouvre pas"),
        "so is the text of a failure"
    );
    assert!(html.contains("administrateur de la plateforme"), "{html}");

    let (_, space) = send(&app, request("GET", "/espace", Some(&holder), None)).await;
    assert!(String::from_utf8_lossy(&space).contains("href=\"/sauvegardes\""));

    let staff = crate::pin::staff_member(&test, &holder, &practice).await;
    let (_, space) = send(&app, request("GET", "/espace", Some(&staff), None)).await;
    assert!(!String::from_utf8_lossy(&space).contains("href=\"/sauvegardes\""));
    let (response, _) = send(&app, request("GET", "/sauvegardes", Some(&staff), None)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (response, _) = send(&app, request("GET", "/sauvegardes", None, None)).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "signed out: to the sign-in page"
    );
}

/// Only the operator records backup outcomes and restored documents; a backup and a
/// drill each add an event to the instance's trail with their row, a check adds none,
/// and a refused caller leaves neither a row nor an event.
#[tokio::test]
async fn only_the_operator_records_backups_and_restores_and_they_are_audited() {
    use carnet_service::{Actor, Caller, ServiceError};
    let test = test_app(HttpSettings::default()).await;
    let services = &test.state.services;
    let run = |kind: &str| BackupRunRecord {
        target: "disque".into(),
        kind: kind.into(),
        started_at: 1_000,
        finished_at: 2_000,
        ok: true,
        snapshot: None,
        bytes_added: None,
        message: "ok".into(),
    };
    let document = uuid::Uuid::from_u128(0xD0C);
    for stranger in [
        Caller::new(Actor::Anonymous),
        Caller::new(Actor::PlatformAdmin(carnet_domain::AdminId::from_uuid(
            uuid::Uuid::from_u128(7),
        ))),
    ] {
        let refused = services.record_backup_run(&stranger, &run("backup")).await;
        assert!(
            matches!(refused, Err(ServiceError::Forbidden)),
            "{refused:?}"
        );
        let refused = services.record_document_restored(&stranger, document).await;
        assert!(
            matches!(refused, Err(ServiceError::Forbidden)),
            "{refused:?}"
        );
    }
    assert!(
        test.store
            .latest_backup_runs()
            .await
            .expect("runs")
            .is_empty()
    );
    let operator = Caller::operator();
    let trail = || async {
        services
            .instance_audit(&operator, &carnet_service::AuditFilter::default())
            .await
            .expect("trail")
    };
    assert!(
        trail().await.is_empty(),
        "nothing audited for refused callers"
    );

    for kind in ["backup", "check", "drill"] {
        services
            .record_backup_run(&operator, &run(kind))
            .await
            .expect("recorded");
    }
    services
        .record_document_restored(&operator, document)
        .await
        .expect("recorded");
    assert_eq!(
        test.store.latest_backup_runs().await.expect("runs").len(),
        3
    );
    let actions: Vec<(String, Option<uuid::Uuid>)> = trail()
        .await
        .iter()
        .map(|entry| {
            (
                entry.event.action.code().to_owned(),
                entry.event.targets.document,
            )
        })
        // Reading the trail is itself audited.
        .filter(|(action, _)| action != "audit_read")
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert_eq!(
        actions
            .iter()
            .filter(|(action, _)| action == "backup")
            .count(),
        2
    );
    assert!(actions.contains(&("restored".to_owned(), Some(document))));
}
