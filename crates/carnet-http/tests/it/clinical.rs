//! Clinical content over HTTP (ADR 0009): care acts with vital signs, notes and episodes
//! in a timeline; every edit a revision; implausible values refused; the last care date
//! kept for retention; clinical text never in the database files in clear.

use axum::http::StatusCode;
use carnet_http::HttpSettings;
use serde_json::{Value, json};

use crate::auth::signed_in;
use crate::patients::{act, call, create, identity, unlock, validate};
use crate::support::{TestApp, test_app};

/// A validated holder with the PIN unlocked and one patient: (cookie, entries URI).
async fn record(test: &TestApp) -> (String, String) {
    let (practice, holder, patient_id) = crate::patients::holder_with_patient(test).await;
    let uri = format!("/api/v1/practices/{practice}/patients/{patient_id}/entries");
    (holder, uri)
}

async fn add(test: &TestApp, cookie: &str, uri: &str, content: Value) -> (StatusCode, Value) {
    call(
        test,
        "POST",
        uri,
        cookie,
        Some(json!({ "content": content })),
    )
    .await
}

#[tokio::test]
async fn acts_notes_and_episodes_form_a_timeline_and_the_last_care_date_follows() {
    let test = test_app(HttpSettings::default()).await;
    let (holder, uri) = record(&test).await;
    let (status, episode) = add(
        &test,
        &holder,
        &uri,
        json!({"kind": "episode", "prescription_reference": "ORD-2026-11", "prescriber": "Dr Durand",
               "start_date": "2026-11-20", "place": "home"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{episode}");
    let (status, first) = add(&test, &holder, &uri, act()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let mut later = act();
    later["performed_at"] = json!("2026-11-24T18:00");
    later["label"] = json!("Injection");
    let (status, _) = add(&test, &holder, &uri, later).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = add(
        &test,
        &holder,
        &uri,
        json!({"kind": "note", "text": "Patient fatigué."}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, timeline) = call(&test, "GET", &uri, &holder, None).await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<String> = timeline
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| {
            format!(
                "{} {}",
                entry["kind"].as_str().expect("kind"),
                entry["content"]["performed_at"]
                    .as_str()
                    .or(entry["content"]["start_date"].as_str())
                    .unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "act 2026-11-24T18:00",
            "note -",
            "act 2026-11-23T08:30",
            "episode 2026-11-20"
        ],
        "the most recent first: acts by when performed, the note (written at 10:17 on the \
         23rd) by when written"
    );
    assert_eq!(
        timeline[0]["content"]["vitals"]["temperature_celsius"],
        37.4
    );

    // The patient's last care date follows the latest act (retention counts from it).
    let patient_uri = uri.trim_end_matches("/entries").to_owned();
    let (_, patient) = call(&test, "GET", &patient_uri, &holder, None).await;
    assert_eq!(patient["last_care_at"], "2026-11-24T00:00:00Z");

    let _ = episode;
}

#[tokio::test]
async fn implausible_or_malformed_content_is_refused_and_writes_nothing() {
    let test = test_app(HttpSettings::default()).await;
    let (holder, uri) = record(&test).await;
    // Refused, naming the rule; nothing written.
    let mut feverish = act();
    feverish["vitals"] = json!({"temperature_celsius": 73});
    for (content, expected) in [
        (feverish, "Température"),
        (
            json!({"kind": "act", "performed_at": "2026-11-23T08:30", "performer": "A",
                "label": "B", "ngap_code": "XYZ"}),
            "NGAP",
        ),
        (json!({"kind": "unknown"}), "nature"),
    ] {
        let (status, body) = add(&test, &holder, &uri, content).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains(expected),
            "{body}"
        );
    }

    let (status, timeline) = call(&test, "GET", &uri, &holder, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(timeline, json!([]), "nothing was written");
}

#[tokio::test]
async fn an_edit_appends_a_revision_and_keeps_the_previous_one() {
    let test = test_app(HttpSettings::default()).await;
    let (holder, uri) = record(&test).await;
    let (status, first) = add(&test, &holder, &uri, act()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // An edit is a revision; a stale one and a change of kind are refused.
    let entry_uri = format!("{uri}/{}", first["id"].as_str().expect("id"));
    let mut corrected = act();
    corrected["observation"] = json!("Plaie propre.");
    let (status, body) = call(
        &test,
        "PATCH",
        &entry_uri,
        &holder,
        Some(json!({"revision": 1, "content": corrected})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 2);
    let (status, _) = call(
        &test,
        "PATCH",
        &entry_uri,
        &holder,
        Some(json!({"revision": 1, "content": act()})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &test,
        "PATCH",
        &entry_uri,
        &holder,
        Some(json!({"revision": 2, "content": {"kind": "note", "text": "x"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, history) = call(
        &test,
        "GET",
        &format!("{entry_uri}/revisions"),
        &holder,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let history = history.as_array().expect("revisions");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["content"]["observation"], "Plaie propre.");
    assert!(
        history[1]["content"].get("observation").is_none(),
        "the first version, kept"
    );
}

#[tokio::test]
async fn clinical_text_never_reaches_the_database_files_in_clear() {
    let test = test_app(HttpSettings::default()).await;
    let (holder, uri) = record(&test).await;
    let markers = [
        "Wqzobservation",
        "Kzqtransmission",
        "Vbnallergene",
        "Xqwprescripteur",
    ];
    let mut with_observation = act();
    with_observation["observation"] = json!(markers[0]);
    for content in [
        with_observation,
        json!({"kind": "note", "text": markers[1]}),
        json!({"kind": "allergy", "substance": markers[2]}),
        json!({"kind": "episode", "prescription_reference": "ORD", "prescriber": markers[3],
               "start_date": "2026-11-20", "place": "practice"}),
    ] {
        let (status, body) = add(&test, &holder, &uri, content).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let bytes = crate::patients::database_bytes(&test);
    let contains = |needle: &str| {
        bytes
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    assert!(
        contains("anne.martin@example.fr"),
        "the scan sees clear text"
    );
    for marker in markers {
        assert!(
            !contains(marker),
            "{marker} is in the database files in clear"
        );
        assert!(
            !contains(&marker.to_uppercase()),
            "{marker} in clear (upper case)"
        );
    }
}

/// The canary scan on PostgreSQL: identity, clinical text and a document's name and
/// bytes, then a `pg_dump` of the schema (text, and bytea as hex) and the blob files.
#[tokio::test]
async fn a_postgresql_dump_and_the_blobs_reveal_nothing() {
    let Some((test, url, schema)) =
        crate::support::test_app_on_postgres(HttpSettings::default()).await
    else {
        eprintln!("PostgreSQL canary scan: DID NOT RUN (set CARNET_TEST_POSTGRES_URL)");
        return;
    };
    let (practice, holder_id, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    validate(&test, &practice, &holder_id.to_string()).await;
    unlock(&test, &holder, &holder).await;
    let markers = [
        "Zyxwvcanari",
        "Qwertcanari",
        "Kzqtransmission",
        "Wqzobservation",
        "Xqzdocument",
        "Vbnfichier",
    ];
    let mut body = identity(markers[0], markers[1], "1950-01-02");
    body["address"] = json!("7 impasse Kzqcanari");
    let patient = create(&test, &holder, &practice, body).await;
    let uri = format!(
        "/api/v1/practices/{practice}/patients/{}",
        patient["id"].as_str().expect("id")
    );
    let mut with_observation = act();
    with_observation["observation"] = json!(markers[3]);
    for content in [
        json!({"kind": "note", "text": markers[2]}),
        with_observation,
    ] {
        let (status, body) = add(&test, &holder, &format!("{uri}/entries"), content).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = crate::documents::upload(
        &test,
        &holder,
        &format!("{uri}/documents"),
        &format!("{}.pdf", markers[5]),
        format!("%PDF-1.7 {}", markers[4]).into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let dump = std::process::Command::new("pg_dump")
        .args(["--dbname", &url, "--schema", &schema, "--no-owner"])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let mut everything = dump.stdout;
    for entry in std::fs::read_dir(test.dir.path().join("blobs")).expect("blobs") {
        everything.extend(std::fs::read(entry.expect("entry").path()).expect("blob"));
    }
    let stored = String::from_utf8_lossy(&everything).to_lowercase();
    assert!(
        stored.contains("anne.martin@example.fr"),
        "the dump holds clear text to find"
    );
    assert!(
        stored.contains("patient_revisions"),
        "the dump has the records' tables"
    );
    for marker in markers {
        let hex = marker.bytes().fold(String::new(), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        });
        assert!(
            !stored.contains(&marker.to_lowercase()),
            "{marker} in clear in the dump or blobs"
        );
        assert!(!stored.contains(&hex), "{marker} as bytea hex in the dump");
    }
    crate::support::drop_postgres_schema(&test.store, &url, &schema).await;
}
