//! The care-record pages (ADR 0009): the PIN first, then search, create, the record with
//! its quick act entry; staff see identity and contact, never the clinical part.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use carnet_http::HttpSettings;
use serde_json::json;

use crate::auth::signed_in;
use crate::patients::{unlock, validate};
use crate::support::{TestApp, send, test_app};

/// A page request with this session (and the thread's device cookie), or a form post.
async fn page(
    test: &TestApp,
    cookie: &str,
    uri: &str,
    form: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = crate::auth::request(
        if form.is_some() { "POST" } else { "GET" },
        uri,
        Some(cookie),
        None,
    );
    if let Some(form) = form {
        let (mut parts, _) = request.into_parts();
        parts.headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().expect("header"),
        );
        request = Request::from_parts(parts, Body::from(form.to_owned()));
    }
    let (response, body) = send(&test.anonymous(), request).await;
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    (
        response.status(),
        String::from_utf8_lossy(&body).into_owned(),
        location,
    )
}

#[tokio::test]
async fn a_professional_finds_a_patient_and_records_an_act_with_vital_signs() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder_id, holder, _, _) = signed_in(&test).await;
    let practice = practice.to_string();
    validate(&test, &practice, &holder_id.to_string()).await;
    let list = format!("/cabinets/{practice}/patients");

    // Without the PIN: sent to the PIN prompt.
    let (status, _, location) = page(&test, &holder, &list, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/code-pin");
    unlock(&test, &holder, &holder).await;
    let (status, html, _) = page(&test, &holder, &list, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Nom (au moins 3 lettres) ou NIR"));

    // A new patient; a bad date first, kept in the form with the reason.
    let form = "birth_name=Le+Goff&first_names=Anne+Marie&birth_date=1950-02-30&sex=F&identity_status=PROV&phone1=0612345678";
    let (status, html, _) = page(
        &test,
        &holder,
        &format!("/cabinets/{practice}/nouveau-patient"),
        Some(form),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("date de naissance"), "{html}");
    assert!(html.contains("value=\"Le Goff\""), "what was typed is kept");
    let form = form.replace("1950-02-30", "1950-02-28");
    let (status, _, location) = page(
        &test,
        &holder,
        &format!("/cabinets/{practice}/nouveau-patient"),
        Some(&form),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with(&format!("/cabinets/{practice}/patients/")),
        "{location}"
    );

    // Found by name prefix.
    let (status, html, _) = page(&test, &holder, &format!("{list}?nom=le+g"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("href=\"{location}\"")), "{html}");
    assert!(html.contains("LE GOFF Anne"));

    // The record: an act with vital signs, typed the French way.
    let (status, html, _) = page(&test, &holder, &location, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Saisie rapide d&#x27;un acte") || html.contains("Saisie rapide d'un acte")
    );
    let act = "performed_at=2026-11-23T08%3A30&label=Pansement&ngap_code=ami+2&temperature=37%2C4&systolic=130&diastolic=80&pain=3";
    let (status, _, back) = page(&test, &holder, &format!("{location}/actes"), Some(act)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(back, location);
    let (_, html, _) = page(&test, &holder, &location, None).await;
    assert!(html.contains("Pansement (AMI 2)"), "{html}");
    assert!(
        html.contains("T 37,4 °C · TA 130/80 mmHg · douleur 3/10"),
        "{html}"
    );
    assert!(html.contains("Par Anne Martin"));
    // Implausible: refused, said on the page, nothing written.
    let (status, html, _) = page(
        &test,
        &holder,
        &format!("{location}/actes"),
        Some(&act.replace("37%2C4", "73")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("Température hors des valeurs plausibles"),
        "{html}"
    );
    assert_eq!(html.matches("Pansement (AMI 2)").count(), 1);

    // Staff: identity and contact, no clinical part, and no way to write one.
    let staff = crate::pin::staff_member(&test, &holder, &practice).await;
    unlock(&test, &holder, &staff).await;
    let (status, html, _) = page(&test, &staff, &location, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("0612345678"));
    assert!(!html.contains("Pansement"), "{html}");
    assert!(!html.contains("Saisie rapide"));
    assert!(html.contains("pas au contenu clinique"));
    let (status, _, _) = page(&test, &staff, &format!("{location}/actes"), Some(act)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The history of an edited care entry and the versions of a document have their pages;
/// the record links to them; staff are refused both.
#[tokio::test]
async fn entry_history_and_document_versions_have_their_pages() {
    let test = test_app(HttpSettings::default()).await;
    let (practice, holder, patient_id) = crate::patients::holder_with_patient(&test).await;
    let api = format!("/api/v1/practices/{practice}/patients/{patient_id}");
    let act = |observation: &str| {
        json!({"kind": "act", "performed_at": "2026-11-23T08:30", "performer": "Anne Martin",
               "label": "Pansement simple", "observation": observation})
    };
    let (status, entry) = crate::patients::call(
        &test,
        "POST",
        &format!("{api}/entries"),
        &holder,
        Some(json!({"content": act("Plaie rouge, suintante.")})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let entry_id = entry["id"].as_str().expect("id");
    let (status, body) = crate::patients::call(
        &test,
        "PATCH",
        &format!("{api}/entries/{entry_id}"),
        &holder,
        Some(json!({"revision": 1, "content": act("Plaie propre.")})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let documents = format!("{api}/documents");
    let (status, first) = crate::documents::upload(
        &test,
        &holder,
        &documents,
        "ordonnance.pdf",
        b"%PDF-1.7\nordonnance v1".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let document_id = first["id"].as_str().expect("id");
    let (status, second) = crate::documents::upload(
        &test,
        &holder,
        &format!("{documents}/{document_id}/versions"),
        "ordonnance-corrigee.pdf",
        b"%PDF-1.7\nordonnance v2".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");

    let base = format!("/cabinets/{practice}/patients/{patient_id}");
    let (status, record, _) = page(&test, &holder, &base, None).await;
    assert_eq!(status, StatusCode::OK);
    let history_link = format!("{base}/soins/{entry_id}/historique");
    let versions_link = format!("{base}/documents/{document_id}");
    assert!(
        record.contains(&history_link),
        "the record links to the entry's history"
    );
    assert!(
        record.contains(&versions_link),
        "the record links to the versions"
    );

    let (status, history, _) = page(&test, &holder, &history_link, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(history.contains("Version 2") && history.contains("Version 1"));
    assert!(history.contains("Plaie propre.") && history.contains("Plaie rouge, suintante."));

    let (status, versions, _) = page(&test, &holder, &versions_link, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(versions.contains("ordonnance-corrigee.pdf") && versions.contains("ordonnance.pdf"));
    assert!(versions.contains(&format!("{documents}/{document_id}/content?version=1")));
    assert!(versions.contains(&format!(
        "data-upload=\"{documents}/{document_id}/versions\""
    )));

    // Staff: identity and contact only — neither page.
    let staff = crate::pin::staff_member(&test, &holder, &practice).await;
    unlock(&test, &holder, &staff).await;
    for uri in [&history_link, &versions_link] {
        let (status, html, _) = page(&test, &staff, uri, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert!(!html.contains("Plaie") && !html.contains("ordonnance"));
    }
}
