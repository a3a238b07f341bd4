//! Patients over HTTP (ADR 0009): created, found by name prefix or NIR without clear
//! text in the database, read, changed by appending revisions; refused without the PIN,
//! to other practices and to the platform side; tampered ciphertexts are refused and
//! audited; no identity value ever reaches the database files in clear.

use axum::http::StatusCode;
use carnet_domain::AdminId;
use carnet_http::HttpSettings;
use carnet_service::{Actor, Caller, PracticeAction, ProfessionalIdDecision, ServiceError};
use serde_json::{Value, json};

use crate::auth::{member_signed_in, request, sign_in_again, signed_in, signed_in_as};
use crate::support::{TestApp, send, test_app};

pub const NIR: &str = "255081416802538";

pub async fn call(
    test: &TestApp,
    method: &str,
    uri: &str,
    cookie: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (response, bytes) = send(&test.anonymous(), request(method, uri, Some(cookie), body)).await;
    (
        response.status(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Shows the holder's PIN and unlocks the care records with it in `cookie`'s session.
pub async fn unlock(test: &TestApp, holder: &str, cookie: &str) {
    let (status, shown) = call(test, "GET", "/api/v1/auth/pin", holder, None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let (status, body) = call(
        test,
        "POST",
        "/api/v1/auth/pin/unlock",
        cookie,
        Some(json!({"pin": shown["pin"]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// The holder of a new practice (professional number validated, PIN unlocked) and one
/// patient, Paul Legrand: (practice id, holder's cookie, patient id).
pub async fn holder_with_patient(test: &TestApp) -> (String, String, String) {
    let (practice, _, holder, _, patient) = holder_and_patient(test, "Legrand").await;
    (practice.to_string(), holder, patient)
}

/// [`holder_with_patient`] with the patient's birth name, the holder's id and TOTP secret.
async fn holder_and_patient(
    test: &TestApp,
    birth_name: &str,
) -> (
    carnet_domain::PracticeId,
    carnet_domain::MemberId,
    String,
    carnet_crypto::TotpSecret,
    String,
) {
    let (practice_id, holder_id, holder, secret, _) = crate::auth::signed_in(test).await;
    let practice = practice_id.to_string();
    validate(test, &practice, &holder_id.to_string()).await;
    unlock(test, &holder, &holder).await;
    let patient = create(
        test,
        &holder,
        &practice,
        identity(birth_name, "Paul", "1950-01-02"),
    )
    .await;
    let patient_id = patient["id"].as_str().expect("id").to_owned();
    (practice_id, holder_id, holder, secret, patient_id)
}

pub fn identity(birth_name: &str, first: &str, birth_date: &str) -> Value {
    json!({
        "birth_name": birth_name,
        "birth_first_names": [first, "Marie"],
        "birth_date": birth_date,
        "sex": "F",
        "identity_status": "PROV",
        "address": "12 rue des Lilas, 17000 La Rochelle",
        "phones": ["06 11 22 33 44"],
    })
}

pub async fn create(test: &TestApp, cookie: &str, practice: &str, body: Value) -> Value {
    let (status, created) = call(
        test,
        "POST",
        &format!("/api/v1/practices/{practice}/patients"),
        cookie,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// "birth name birth date" of each patient found.
pub fn names(found: &[Value]) -> Vec<String> {
    found
        .iter()
        .map(|patient| {
            format!(
                "{} {}",
                patient["identity"]["birth_name"].as_str().expect("name"),
                patient["identity"]["birth_date"].as_str().expect("date")
            )
        })
        .collect()
}

pub async fn search(test: &TestApp, cookie: &str, practice: &str, query: &str) -> Vec<Value> {
    let (status, found) = call(
        test,
        "GET",
        &format!("/api/v1/practices/{practice}/patients?{query}"),
        cookie,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{query}: {found}");
    found.as_array().expect("list").clone()
}

#[tokio::test]
async fn patients_are_found_by_name_prefix_birth_date_or_nir_and_homonyms_stay_apart() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    unlock(&test, &holder, &holder).await;

    let mut first = identity("Le Goff-Hélias", "Anne", "1950-01-02");
    first["nir"] = json!(NIR);
    first["identity_status"] = json!("QUAL");
    let anne = create(&test, &holder, &practice, first).await;
    assert_eq!(anne["revision"], 1);
    assert_eq!(anne["identity"]["nir"], NIR);
    // A homonym, born another day; and someone else.
    create(
        &test,
        &holder,
        &practice,
        identity("Le Goff Helias", "Anne", "1961-07-14"),
    )
    .await;
    create(
        &test,
        &holder,
        &practice,
        identity("Legrand", "Paul", "1950-01-02"),
    )
    .await;

    assert_eq!(
        names(&search(&test, &holder, &practice, "name=le%20g").await).len(),
        3,
        "prefix LEG: all three"
    );
    assert_eq!(
        names(&search(&test, &holder, &practice, "name=LEGOFF").await),
        vec!["Le Goff-Hélias 1950-01-02", "Le Goff Helias 1961-07-14"],
        "spaces, hyphens, accents and case ignored; homonyms both found, in order"
    );
    assert_eq!(
        names(
            &search(
                &test,
                &holder,
                &practice,
                "name=le-goff&birth_date=1961-07-14"
            )
            .await
        ),
        vec!["Le Goff Helias 1961-07-14"],
        "the birth date tells homonyms apart"
    );
    assert_eq!(
        names(&search(&test, &holder, &practice, &format!("nir={NIR}")).await),
        vec!["Le Goff-Hélias 1950-01-02"]
    );
    let (status, body) = call(
        &test,
        "GET",
        &format!("/api/v1/practices/{practice}/patients?name=le"),
        &holder,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn a_search_shows_at_most_fifty_patients_audits_those_and_says_how_many_matched() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    unlock(&test, &holder, &holder).await;
    let total = carnet_service::SEARCH_LIMIT + 3;
    let mut expected = Vec::new();
    for n in 0..total {
        let birth_date = format!("{}-03-04", 1910 + n);
        create(
            &test,
            &holder,
            &practice,
            identity("Martin", "Anne", &birth_date),
        )
        .await;
        expected.push(format!("Martin {birth_date}"));
    }
    expected.truncate(carnet_service::SEARCH_LIMIT);

    let (response, bytes) = send(
        &test.anonymous(),
        request(
            "GET",
            &format!("/api/v1/practices/{practice}/patients?name=mar"),
            Some(&holder),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-total-count"]
            .to_str()
            .expect("header"),
        total.to_string()
    );
    let found: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        names(found.as_array().expect("list")),
        expected,
        "the first fifty in birth date order"
    );

    // The search and each patient shown are in the journal; those not shown are not.
    let (status, events) = call(
        &test,
        "GET",
        &format!("/api/v1/practices/{practice}/audit-events?action=record_read&limit=500"),
        &holder,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let reads = events.as_array().expect("events");
    let with_patient = reads
        .iter()
        .filter(|event| !event["target_patient"].is_null())
        .count();
    assert_eq!(
        (reads.len(), with_patient),
        (
            carnet_service::SEARCH_LIMIT + 1,
            carnet_service::SEARCH_LIMIT
        )
    );

    // The page says so, and how to narrow the search.
    let (response, bytes) = send(
        &test.anonymous(),
        request(
            "GET",
            &format!("/cabinets/{practice}/patients?nom=mar"),
            Some(&holder),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = String::from_utf8_lossy(&bytes);
    assert!(
        page.contains(&format!(
            "{total} patients correspondent ; voici les 50 premiers"
        )),
        "{page}"
    );
    let listed = format!("<li><a href=\"/cabinets/{practice}/patients/");
    assert_eq!(page.matches(&listed).count(), carnet_service::SEARCH_LIMIT);
}

#[tokio::test]
async fn bad_input_creates_nothing_and_every_edit_appends_a_revision() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    unlock(&test, &holder, &holder).await;
    let homonym = create(
        &test,
        &holder,
        &practice,
        identity("Le Goff Helias", "Anne", "1961-07-14"),
    )
    .await;

    // Bad input is refused, naming the rule, and creates nothing.
    let (status, body) = call(
        &test,
        "POST",
        &format!("/api/v1/practices/{practice}/patients"),
        &holder,
        Some(identity("Dupont", "Jean", "1950-02-30")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("date")
    );
    assert!(
        search(&test, &holder, &practice, "name=dup")
            .await
            .is_empty()
    );

    // An edit appends a revision; the previous identity stays in the history.
    let id = homonym["id"].as_str().expect("id");
    let uri = format!("/api/v1/practices/{practice}/patients/{id}");
    let mut changed = identity("Le Goff Helias", "Anne", "1961-07-14");
    changed["used_name"] = json!("Martin");
    let (status, body) = call(
        &test,
        "PATCH",
        &uri,
        &holder,
        Some(json!({"revision": 1, "identity": changed})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 2);
    let (status, _) = call(
        &test,
        "PATCH",
        &uri,
        &holder,
        Some(json!({"revision": 1, "identity": changed})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "a stale revision is refused");
    assert_eq!(
        names(&search(&test, &holder, &practice, "name=mart").await),
        vec!["Le Goff Helias 1961-07-14"],
        "found by the used name now"
    );
    let (status, read) = call(&test, "GET", &uri, &holder, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["identity"]["used_name"], "Martin");
    let (status, history) = call(&test, "GET", &format!("{uri}/revisions"), &holder, None).await;
    assert_eq!(status, StatusCode::OK);
    let history = history.as_array().expect("revisions");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["number"], 2);
    assert_eq!(
        history[1]["identity"]["used_name"], "",
        "the first version, kept"
    );
}

/// Every care-record route of the API (patients and their clinical entries), with its
/// ids filled in, and whether it reaches clinical content. A new route under
/// `/patients` without a case here fails the enumeration.
fn records_routes(
    practice: &str,
    patient: &str,
    entry: &str,
    document_id: &str,
) -> Vec<(&'static str, String, bool)> {
    let document = carnet_http::openapi_document();
    let mut routes = Vec::new();
    for (path, item) in &document.paths.paths {
        // The access history is the audit trail's (holders, ids only): tested there.
        let records = path.contains("/patients") || path.ends_with("/imports");
        if !records || path.ends_with("/access-history") {
            continue;
        }
        let clinical = path.contains("/entries") || path.contains("/documents");
        let uri = path
            .replace("{practice_id}", practice)
            .replace("{patient_id}", patient)
            .replace("{entry_id}", entry)
            .replace("{document_id}", document_id);
        assert!(!uri.contains('{'), "add a case for {path}");
        for (method, present) in [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ] {
            if present {
                let uri = if method == "GET" && path.ends_with("/patients") {
                    format!("{uri}?name=leg")
                } else if method == "POST" && path.contains("/documents") {
                    format!("{uri}?name=document.pdf")
                } else if path.ends_with("/imports") {
                    format!("{uri}?format=csv")
                } else {
                    uri.clone()
                };
                routes.push((method, uri, clinical));
            }
        }
    }
    routes
}

/// A new practice whose holder (number validated, PIN unlocked) has one patient with a
/// care act (through the API) and a document (through the service): something for every
/// records route to act on.
struct FilledRecord {
    practice_id: carnet_domain::PracticeId,
    holder: String,
    secret: carnet_crypto::TotpSecret,
    practice: String,
    patient: String,
    entry: String,
    document: String,
}

impl FilledRecord {
    fn routes(&self) -> Vec<(&'static str, String, bool)> {
        records_routes(&self.practice, &self.patient, &self.entry, &self.document)
    }
}

async fn filled_record(test: &TestApp, birth_name: &str) -> FilledRecord {
    let (practice_id, holder_id, holder, secret, patient) =
        holder_and_patient(test, birth_name).await;
    let practice = practice_id.to_string();
    let patient_id = patient.as_str();
    let holder = holder.as_str();
    let (status, entry) = call(
        test,
        "POST",
        &format!("/api/v1/practices/{practice}/patients/{patient_id}/entries"),
        holder,
        Some(json!({"content": act()})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let document = test
        .state
        .services
        .upload_document(
            &test
                .state
                .services
                .authorize_clinical(
                    &Caller::new(Actor::Member {
                        practice_id,
                        member_id: holder_id,
                        role: carnet_domain::Role::Holder,
                    }),
                    &active_session(test, holder).await,
                    practice_id,
                )
                .await
                .expect("scope"),
            patient_id.parse().expect("id"),
            None,
            "ordonnance.pdf",
            futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
                bytes::Bytes::from_static(b"%PDF-1.7 ordonnance"),
            )]),
            1_000_000,
        )
        .await
        .expect("document");
    FilledRecord {
        practice_id,
        holder: holder.to_owned(),
        secret,
        patient: patient_id.to_owned(),
        practice,
        entry: entry["id"].as_str().expect("id").to_owned(),
        document: document.id.to_string(),
    }
}

/// Every read of a patient's record is in the trail before it is served: each GET route
/// of a patient (from the OpenAPI document, so a new one is covered) adds an entry about
/// the patient, and answers 503 with nothing of the record when that entry cannot be
/// written.
#[tokio::test]
async fn every_read_of_a_record_is_audited_before_it_is_served() {
    let test = test_app(HttpSettings::default()).await;
    let record = filled_record(&test, "Wqzlegrand").await;
    let reads: Vec<String> = record
        .routes()
        .into_iter()
        .filter(|(method, uri, _)| *method == "GET" && uri.contains(&record.patient))
        .map(|(_, uri, _)| uri)
        .collect();
    assert_eq!(reads.len(), 7, "{reads:?}");
    let entries_about_the_patient = || async {
        let (status, events) = call(
            &test,
            "GET",
            &format!(
                "/api/v1/practices/{}/audit-events?patient={}&limit=500",
                record.practice, record.patient
            ),
            &record.holder,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{events}");
        // Reading the trail is itself in the trail: only the record's reads are counted.
        events
            .as_array()
            .expect("events")
            .iter()
            .filter(|event| {
                ["record_read", "document_downloaded"]
                    .contains(&event["action"].as_str().unwrap_or(""))
            })
            .count()
    };
    for uri in &reads {
        let before = entries_about_the_patient().await;
        let (response, _) = send(
            &test.anonymous(),
            request("GET", uri, Some(&record.holder), None),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            entries_about_the_patient().await,
            before + 1,
            "{uri} is in the trail"
        );
    }

    crate::audit::break_the_trail(&test).await;
    for uri in &reads {
        let (response, body) = send(
            &test.anonymous(),
            request("GET", uri, Some(&record.holder), None),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        let body = String::from_utf8_lossy(&body);
        assert!(
            !body.contains("Wqzlegrand") && !body.contains("Pansement") && !body.contains("PDF"),
            "nothing of the record was served by {uri}: {body}"
        );
    }
}

pub fn act() -> Value {
    json!({"kind": "act", "performed_at": "2026-11-23T08:30", "performer": "Anne Martin",
           "label": "Pansement simple", "ngap_code": "AMI 2",
           "vitals": {"temperature_celsius": 37.4, "pain_0_10": 2}})
}

fn body_for(method: &str, uri: &str) -> Option<Value> {
    let entries = uri.contains("/entries");
    match (method, entries) {
        ("POST", false) => Some(identity("Legrand", "Paul", "1950-01-02")),
        ("POST", true) => Some(json!({"content": act()})),
        ("PATCH", false) => {
            Some(json!({"revision": 1, "identity": identity("Legrand", "Paul", "1950-01-02")}))
        }
        ("PATCH", true) => Some(json!({"revision": 1, "content": act()})),
        _ => None,
    }
}

/// Validates a member's professional number, as a platform administrator does.
pub async fn validate(test: &TestApp, practice: &str, member: &str) {
    let services = &test.state.services;
    let admin = services
        .create_platform_admin(&Caller::operator(), "Admin")
        .await
        .expect("admin");
    let scope = services
        .authorize(
            &Caller::new(Actor::PlatformAdmin(admin)),
            practice.parse().expect("id"),
            PracticeAction::DecideProfessionalId,
        )
        .await
        .expect("scope");
    services
        .decide_professional_id(
            &scope,
            member.parse().expect("id"),
            ProfessionalIdDecision::Validate,
            "RPPS vérifié",
        )
        .await
        .expect("validated");
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "the whole matrix in one place: every role and condition against every route"
)]
async fn care_records_open_by_role_practice_and_pin_and_nothing_else() {
    let test = test_app(HttpSettings::default()).await;
    let record = filled_record(&test, "Legrand").await;
    let routes = record.routes();
    let FilledRecord {
        practice_id,
        holder,
        secret,
        practice,
        ..
    } = record;
    assert_eq!(routes.len(), 15, "{routes:?}");

    // The practice's other members, each signed in with the PIN unlocked.
    let member = |role: &str, name: &str, phone: &str, rpps: Option<&str>| {
        let mut body = json!({"name": name, "role": role, "phone": phone});
        if let Some(rpps) = rpps {
            body["professional_id_kind"] = json!("rpps");
            body["professional_id_number"] = json!(rpps);
        }
        body
    };
    let (validated_id, validated) = member_signed_in(
        &test,
        &holder,
        &practice,
        member(
            "professional",
            "Paul Roux",
            "0644444444",
            Some("10000010008"),
        ),
        "paul.roux@example.fr",
    )
    .await;
    validate(&test, &practice, &validated_id).await;
    let (_, unvalidated) = member_signed_in(
        &test,
        &holder,
        &practice,
        member(
            "professional",
            "Jeanne Noir",
            "0655555555",
            Some("10000010016"),
        ),
        "jeanne.noir@example.fr",
    )
    .await;
    let (_, staff) = member_signed_in(
        &test,
        &holder,
        &practice,
        member("staff", "Léa Petit", "0633333333", None),
        "lea.petit@example.fr",
    )
    .await;
    for session in [&validated, &unvalidated, &staff] {
        unlock(&test, &holder, session).await;
    }
    // The holder of another practice (PIN unlocked there).
    let (_, _, other, _, _) = signed_in_as(&test, "paul.durand@example.fr").await;
    unlock(&test, &other, &other).await;
    // The holder again, in a new session: no PIN typed yet.
    test.clock.advance_millis(31_000);
    let relocked = sign_in_again(&test, &secret).await;

    // (who, session, administrative allowed, clinical allowed, refusal code)
    let cases = [
        ("holder, validated", &holder, true, true, ""),
        ("professional, validated", &validated, true, true, ""),
        (
            "professional, not validated",
            &unvalidated,
            true,
            false,
            "forbidden",
        ),
        ("staff", &staff, true, false, "forbidden"),
        (
            "holder, PIN not typed",
            &relocked,
            false,
            false,
            "pin_required",
        ),
        (
            "holder of another practice",
            &other,
            false,
            false,
            "forbidden",
        ),
    ];
    for (who, session, administrative, clinical, refusal) in cases {
        for (method, uri, is_clinical) in &routes {
            let allowed = if *is_clinical {
                clinical
            } else {
                administrative
            };
            let (status, body) = call(&test, method, uri, session, body_for(method, uri)).await;
            if allowed {
                assert!(
                    !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                        && !status.is_server_error(),
                    "{who}: {method} {uri} should pass: {status} {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{who}: {method} {uri}: {body}"
                );
                assert_eq!(body["error"]["code"], refusal, "{who}: {method} {uri}");
            }
        }
    }

    // The platform side never obtains either capability, whatever session it presents
    // (an administrator has no session in a practice: the capability functions are asked
    // directly, with the holder's unlocked session).
    let holder = active_session(&test, &holder).await;
    for actor in [
        Actor::PlatformAdmin(AdminId::from_uuid(uuid::Uuid::from_u128(7))),
        Actor::Operator,
    ] {
        let services = &test.state.services;
        let caller = Caller::new(actor.clone());
        let records = services
            .authorize_records(&caller, &holder, practice_id)
            .await;
        assert!(
            matches!(records, Err(ServiceError::Forbidden)),
            "{actor:?}: {records:?}"
        );
        let clinical = services
            .authorize_clinical(&caller, &holder, practice_id)
            .await;
        assert!(
            matches!(clinical, Err(ServiceError::Forbidden)),
            "{actor:?}: {clinical:?}"
        );
    }
}

/// The session of `token` as the session layer finds it active.
pub async fn active_session(test: &TestApp, token: &str) -> carnet_service::ActiveSession {
    match test.state.services.resolve_session(token, None).await {
        Ok(carnet_service::SessionState::Active { active, .. }) => active,
        other => panic!("an active session: {other:?}"),
    }
}

/// Every file of the test's SQLite database (main file and WAL), as bytes.
pub fn database_bytes(test: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["db.sqlite3", "db.sqlite3-wal"] {
        if let Ok(content) = std::fs::read(test.dir.path().join(name)) {
            bytes.extend(content);
        }
    }
    assert!(bytes.len() > 4096, "the database files were read");
    bytes
}

#[tokio::test]
async fn no_identity_value_reaches_the_database_files_in_clear() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    unlock(&test, &holder, &holder).await;
    let markers = [
        "Zyxwvcanari",
        "Qwertcanari",
        "Plughcanari",
        "7 impasse Kzqcanari",
        "0611223344",
        "kzq.canari@example.fr",
        "Docteur Wxqcanari",
        "Note Vbncanari",
        NIR,
    ];
    let mut body = identity(markers[0], markers[1], "1950-01-02");
    body["used_name"] = json!(markers[2]);
    body["address"] = json!(markers[3]);
    body["phones"] = json!([markers[4]]);
    body["email"] = json!(markers[5]);
    body["treating_doctor"] = json!(markers[6]);
    body["administrative_note"] = json!(markers[7]);
    body["nir"] = json!(markers[8]);
    let created = create(&test, &holder, &practice, body).await;
    // Read, searched, changed: every path that writes.
    let id = created["id"].as_str().expect("id");
    let found = search(&test, &holder, &practice, "name=zyx").await;
    assert_eq!(found.len(), 1);
    let mut changed = identity(markers[0], markers[1], "1950-01-02");
    changed["address"] = json!(markers[3]);
    let (status, _) = call(
        &test,
        "PATCH",
        &format!("/api/v1/practices/{practice}/patients/{id}"),
        &holder,
        Some(json!({"revision": 1, "identity": changed})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let bytes = database_bytes(&test);
    let contains = |needle: &str| {
        bytes
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    // The test can fail: a value known to be stored in clear (the holder's login) is found.
    assert!(
        contains("anne.martin@example.fr"),
        "the scan sees clear text"
    );
    for marker in markers {
        for form in [
            marker.to_owned(),
            marker.to_uppercase(),
            marker.to_lowercase(),
        ] {
            assert!(!contains(&form), "{form} is in the database files in clear");
        }
    }
}

/// Opens the test's SQLite file beside the application (as an attacker with the disk).
async fn raw_database(test: &TestApp) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", test.dir.path().join("db.sqlite3").display());
    sqlx::SqlitePool::connect(&url).await.expect("raw database")
}

async fn integrity_failures(test: &TestApp, holder: &str, practice: &str) -> usize {
    let (status, events) = call(
        test,
        "GET",
        &format!("/api/v1/practices/{practice}/audit-events?action=integrity_failure"),
        holder,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events["events"]
        .as_array()
        .or_else(|| events.as_array())
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn tampered_ciphertexts_are_refused_and_audited() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    unlock(&test, &holder, &holder).await;
    let first = create(
        &test,
        &holder,
        &practice,
        identity("Legrand", "Paul", "1950-01-02"),
    )
    .await;
    let second = create(
        &test,
        &holder,
        &practice,
        identity("Lefort", "Anne", "1960-03-04"),
    )
    .await;
    let uri = |patient: &Value| {
        format!(
            "/api/v1/practices/{practice}/patients/{}",
            patient["id"].as_str().expect("id")
        )
    };
    assert_eq!(integrity_failures(&test, &holder, &practice).await, 0);
    let raw = raw_database(&test).await;
    sqlx::query("DROP TRIGGER patient_revisions_no_update")
        .execute(&raw)
        .await
        .expect("an attacker with the file drops the guard");
    let id = |patient: &Value| -> uuid::Uuid {
        patient["id"].as_str().expect("id").parse().expect("uuid")
    };

    // 1. A ciphertext moved from one patient's row to another's: in the revision and in
    // its copy beside the patient (which reads use, migration 0015).
    let sealed_of = |patient: uuid::Uuid| {
        sqlx::query_as::<_, (Vec<u8>,)>(
            "SELECT sealed_identity FROM patient_revisions WHERE patient_id = ?",
        )
        .bind(patient)
        .fetch_one(&raw)
    };
    let (sealed,) = sealed_of(id(&second)).await.expect("read");
    let (original,) = sealed_of(id(&first)).await.expect("read");
    let set = async |value: Vec<u8>| {
        for table in [
            "patient_revisions SET sealed_identity",
            "patients SET current_identity",
        ] {
            let column = if table.starts_with("patients ") {
                "id"
            } else {
                "patient_id"
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} = ? WHERE {column} = ?"
            )))
            .bind(value.clone())
            .bind(id(&first))
            .execute(&raw)
            .await
            .expect("tamper");
        }
    };
    set(sealed).await;
    let (status, body) = call(&test, "GET", &uri(&first), &holder, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "integrity_failure");
    assert!(
        !body.to_string().contains("Lefort"),
        "nothing of the moved value is served"
    );
    let (status, _) = call(&test, "GET", &uri(&second), &holder, None).await;
    assert_eq!(status, StatusCode::OK, "the other patient is untouched");

    // 2. One flipped bit.
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    set(flipped).await;
    let (status, _) = call(&test, "GET", &uri(&first), &holder, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    // 3. Restored: it opens again (the failures were the tampering, not the key).
    set(original).await;
    let (status, body) = call(&test, "GET", &uri(&first), &holder, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // 4. A patient key wrapped for another row (the other patient's wrapped key).
    sqlx::query(
        "UPDATE patients SET wrapped_key = (SELECT wrapped_key FROM patients p2 \
         WHERE p2.id = ?) WHERE id = ?",
    )
    .bind(id(&second))
    .bind(id(&first))
    .execute(&raw)
    .await
    .expect("move key");
    let (status, _) = call(&test, "GET", &uri(&first), &holder, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        integrity_failures(&test, &holder, &practice).await,
        3,
        "each failure is in the audit trail"
    );
    raw.close().await;
}

const CSV_HEADER: &str = "nom_naissance;nom_utilise;prenoms_naissance;prenom_utilise;date_naissance;sexe;code_insee_naissance;matricule_ins;statut_identite;adresse;telephone;email;medecin_traitant;note";

async fn import(
    test: &TestApp,
    cookie: &str,
    practice: &str,
    format: &str,
    content: String,
) -> (StatusCode, Value) {
    let (mut parts, _) = request(
        "POST",
        &format!("/api/v1/practices/{practice}/imports?format={format}"),
        Some(cookie),
        None,
    )
    .into_parts();
    parts
        .headers
        .insert("content-type", "text/csv".parse().expect("header"));
    let (response, bytes) = send(
        &test.anonymous(),
        axum::http::Request::from_parts(parts, axum::body::Body::from(content)),
    )
    .await;
    (
        response.status(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn an_import_with_one_bad_row_imports_nothing_and_names_the_row() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, _, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    unlock(&test, &holder, &holder).await;

    let bad = format!(
        "{CSV_HEADER}\nLegrand;;Paul;;02/01/1950;M;;;;;0612345678;;;\nLefort;;Anne;;1961-02-30;F;;;;;;;;\n"
    );
    let (status, body) = import(&test, &holder, &practice, "csv", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("rien n'a été importé"), "{message}");
    assert!(message.contains("ligne 3"), "{message}");
    assert!(
        search(&test, &holder, &practice, "name=leg")
            .await
            .is_empty(),
        "nothing imported"
    );

    let good = format!(
        "{CSV_HEADER}\nLegrand;;Paul;;02/01/1950;M;;;;;0612345678;;;\nLefort;;Anne;;1961-02-28;F;;;;;;;;\n"
    );
    let (status, body) = import(&test, &holder, &practice, "csv", good).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["imported"], 2);
    assert_eq!(
        names(&search(&test, &holder, &practice, "name=leg").await),
        vec!["Legrand 1950-01-02"]
    );

    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": NIR}],
            "name": [{"use": "official", "family": "Moreau", "given": ["Claire"]}],
            "gender": "female", "birthDate": "1955-08-14"}},
        {"resource": {"resourceType": "Patient",
            "name": [{"use": "official", "family": "Morel", "given": ["Luc"]}],
            "gender": "male", "birthDate": "1960-13-01"}}
    ]});
    let (status, body) = import(&test, &holder, &practice, "fhir", bundle.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("entrée 2")
    );
    assert!(
        search(&test, &holder, &practice, "name=mor")
            .await
            .is_empty()
    );
    let mut fixed = bundle.clone();
    fixed["entry"][1]["resource"]["birthDate"] = json!("1960-12-01");
    let (status, body) = import(&test, &holder, &practice, "fhir", fixed.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        names(&search(&test, &holder, &practice, &format!("nir={NIR}")).await),
        vec!["Moreau 1955-08-14"],
        "the INS-NIR identifier became the NIR"
    );
}
