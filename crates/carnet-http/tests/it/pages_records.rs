//! The care-record pages (ADR 0009): the PIN first, then search, create, the record with
//! its quick act entry; staff see identity and contact, never the clinical part.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use carnet_http::HttpSettings;
use serde_json::json;

use crate::auth::{member_signed_in, signed_in};
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
    let staff_body = json!({"name": "Léa Petit", "role": "staff", "phone": "0633333333"});
    let (_, staff) = member_signed_in(
        &test,
        &holder,
        &practice,
        staff_body,
        "lea.petit@example.fr",
    )
    .await;
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
