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
    test.state.services =
        test.state
            .services
            .clone()
            .with_backup_plan(carnet_service::BackupPlan {
                targets: vec![
                    ("disque".into(), "/mnt/secret-path".into()),
                    ("hors-site".into(), "s3:https://s3.example.fr/seau".into()),
                ],
                interval_minutes: 60,
            });
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
