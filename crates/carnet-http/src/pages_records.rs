//! The care-record pages, in French: patients (search, create, identity, history) and a
//! patient's record (timeline, quick entry of a care act with vital signs, notes). The
//! same capabilities as the API (ADR 0009): without the PIN the page sends to the PIN
//! prompt; staff see identity and contact, never the clinical part.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carnet_domain::{ClinicalContent, PatientIdentity, PatientInput, Vitals};
use carnet_service::{ClinicalView, PatientView, RecordsScope, ServiceError};
use serde::Deserialize;

use crate::api::{id_param, practice_id};
use crate::pages_auth::{SignedIn, idle_seconds, render};
use crate::{ApiError, AppState};

/// What every records page answers when the capability is refused.
fn refusal(error: ServiceError) -> Response {
    match error {
        ServiceError::PinRequired => Redirect::to("/code-pin").into_response(),
        other => {
            let error = ApiError::from(other);
            crate::pages::message_page(error.status, "Dossiers de soins", &error.message)
        }
    }
}

async fn records_scope(
    state: &AppState,
    signed_in: &SignedIn,
    practice: &str,
) -> Result<RecordsScope, Response> {
    let practice = practice_id(practice).map_err(IntoResponse::into_response)?;
    state
        .services
        .authorize_records(&signed_in.caller, &signed_in.active, practice)
        .await
        .map_err(refusal)
}

/// The records capability and the patient id of a patient page's path.
async fn patient_scope(
    state: &AppState,
    signed_in: &SignedIn,
    practice: &str,
    patient: &str,
) -> Result<(RecordsScope, uuid::Uuid), Response> {
    let scope = records_scope(state, signed_in, practice).await?;
    let patient_id =
        id_param(patient, "patient_id").map_err(|_| refusal(ServiceError::NotFound))?;
    Ok((scope, patient_id))
}

/// For a page of a patient's clinical content: the clinical capability (which includes the
/// records one: one capability read, not two), the patient id, and the id of the entry or
/// document the path names last.
async fn clinical_page_scope(
    state: &AppState,
    signed_in: &SignedIn,
    (practice, patient, item): (&str, &str, &str),
) -> Result<(carnet_service::ClinicalScope, uuid::Uuid, uuid::Uuid), Response> {
    let practice = practice_id(practice).map_err(IntoResponse::into_response)?;
    let clinical = state
        .services
        .authorize_clinical(&signed_in.caller, &signed_in.active, practice)
        .await
        .map_err(refusal)?;
    let patient_id =
        id_param(patient, "patient_id").map_err(|_| refusal(ServiceError::NotFound))?;
    let item_id = id_param(item, "id").map_err(|_| refusal(ServiceError::NotFound))?;
    Ok((clinical, patient_id, item_id))
}

/// "LEGRAND Paul": the used (or birth) name in capitals, and the first name used.
fn display_name(identity: &PatientIdentity) -> String {
    let name = identity
        .used_name
        .as_deref()
        .unwrap_or(&identity.birth_name)
        .to_uppercase();
    let first = identity
        .first_name_used
        .as_deref()
        .or(identity.birth_first_names.first().map(String::as_str))
        .unwrap_or_default();
    format!("{name} {first}")
}

fn french_date(iso: &str) -> String {
    match iso.split('-').collect::<Vec<_>>().as_slice() {
        [year, month, day] => format!("{day}/{month}/{year}"),
        _ => iso.to_owned(),
    }
}

fn french_date_time(iso: &str) -> String {
    match iso.split_once('T') {
        Some((date, time)) => format!("{} à {time}", french_date(date)),
        None => french_date(iso),
    }
}

/// The identity as (label, value) lines, empty values left out.
fn identity_lines(identity: &PatientIdentity) -> Vec<(&'static str, String)> {
    let nir = identity.nir.as_deref().map(|nir| {
        carnet_domain::Nir::parse(nir).map_or_else(|_| nir.to_owned(), |nir| nir.grouped())
    });
    let status = match identity.identity_status.as_str() {
        "PROV" => "Provisoire",
        "RECUP" => "Récupérée",
        "VALI" => "Validée",
        _ => "Qualifiée",
    };
    let sex = match identity.sex.as_str() {
        "F" => "Féminin",
        "M" => "Masculin",
        _ => "Indéterminé",
    };
    [
        ("Nom de naissance", Some(identity.birth_name.clone())),
        ("Nom utilisé", identity.used_name.clone()),
        (
            "Prénoms de naissance",
            Some(identity.birth_first_names.join(" ")),
        ),
        ("Prénom utilisé", identity.first_name_used.clone()),
        (
            "Date de naissance",
            Some(french_date(&identity.birth_date.to_string())),
        ),
        ("Sexe", Some(sex.to_owned())),
        (
            "Lieu de naissance (INSEE)",
            identity.birthplace_insee.clone(),
        ),
        ("Matricule INS", nir),
        ("Statut de l'identité", Some(status.to_owned())),
        ("Adresse", identity.address.clone()),
        (
            "Téléphones",
            (!identity.phones.is_empty()).then(|| identity.phones.join(", ")),
        ),
        ("E-mail", identity.email.clone()),
        ("Médecin traitant", identity.treating_doctor.clone()),
        ("Note administrative", identity.administrative_note.clone()),
    ]
    .into_iter()
    .filter_map(|(label, value)| {
        value
            .filter(|value| !value.is_empty())
            .map(|value| (label, value))
    })
    .collect()
}

// ---- patient list and search --------------------------------------------------------------

struct PatientRow {
    id: String,
    name: String,
    birth_date: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "patients.html")]
struct PatientsPage {
    blur_seconds: u64,
    lock_seconds: u64,
    practice_id: String,
    query: String,
    birth_date: String,
    searched: bool,
    error: String,
    patients: Vec<PatientRow>,
    /// How many matched in all (more than those listed: the search should be narrowed).
    total: usize,
}

#[derive(Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    naissance: String,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(practice): Path<String>,
    Query(form): Query<SearchForm>,
) -> Response {
    let scope = match records_scope(&state, &signed_in, &practice).await {
        Ok(scope) => scope,
        Err(refused) => return refused,
    };
    let (blur_seconds, lock_seconds) = idle_seconds(&state);
    let query = form.nom.trim().to_owned();
    let searched = !query.is_empty();
    let mut page = PatientsPage {
        blur_seconds,
        lock_seconds,
        practice_id: scope.practice_id().to_string(),
        query: query.clone(),
        birth_date: form.naissance.clone(),
        searched,
        error: String::new(),
        patients: Vec::new(),
        total: 0,
    };
    if !searched {
        return render(&page, StatusCode::OK);
    }
    // A query of digits is a NIR; anything else a name.
    let is_nir = query.chars().filter(|c| !c.is_whitespace()).count() == 15
        && query.chars().next().is_some_and(|c| c.is_ascii_digit());
    let search = carnet_service::PatientQuery {
        name: (!is_nir).then(|| query.clone()),
        birth_date: Some(form.naissance),
        nir: is_nir.then_some(query),
    };
    match state.services.search_patients(&scope, &search).await {
        Ok(found) => {
            page.total = found.total;
            page.patients = found
                .shown
                .into_iter()
                .map(|patient| PatientRow {
                    id: patient.id.to_string(),
                    name: display_name(&patient.identity),
                    birth_date: french_date(&patient.identity.birth_date.to_string()),
                    status: match patient.identity.identity_status.as_str() {
                        "QUAL" => "identité qualifiée",
                        "PROV" => "identité provisoire",
                        _ => "",
                    },
                })
                .collect();
            render(&page, StatusCode::OK)
        }
        Err(ServiceError::Invalid { message, .. }) => {
            page.error = message;
            page.searched = false;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(other) => refusal(other),
    }
}

// ---- identity form ------------------------------------------------------------------------

/// The identity form's fields, as typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct IdentityForm {
    #[serde(default)]
    revision: i64,
    #[serde(default)]
    birth_name: String,
    #[serde(default)]
    used_name: String,
    #[serde(default)]
    first_names: String,
    #[serde(default)]
    first_name_used: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    birthplace_insee: String,
    #[serde(default)]
    nir: String,
    #[serde(default)]
    identity_status: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone1: String,
    #[serde(default)]
    phone2: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    treating_doctor: String,
    #[serde(default)]
    administrative_note: String,
}

impl IdentityForm {
    fn input(&self) -> PatientInput {
        PatientInput {
            birth_name: self.birth_name.clone(),
            used_name: self.used_name.clone(),
            birth_first_names: self
                .first_names
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            first_name_used: self.first_name_used.clone(),
            birth_date: self.birth_date.clone(),
            sex: self.sex.clone(),
            birthplace_insee: self.birthplace_insee.clone(),
            nir: self.nir.clone(),
            identity_status: self.identity_status.clone(),
            address: self.address.clone(),
            phones: vec![self.phone1.clone(), self.phone2.clone()],
            email: self.email.clone(),
            treating_doctor: self.treating_doctor.clone(),
            administrative_note: self.administrative_note.clone(),
        }
    }

    fn of(view: &PatientView) -> Self {
        let identity = &view.identity;
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        Self {
            revision: view.revision,
            birth_name: identity.birth_name.clone(),
            used_name: text(&identity.used_name),
            first_names: identity.birth_first_names.join(" "),
            first_name_used: text(&identity.first_name_used),
            birth_date: identity.birth_date.to_string(),
            sex: identity.sex.as_str().to_owned(),
            birthplace_insee: text(&identity.birthplace_insee),
            nir: text(&identity.nir),
            identity_status: identity.identity_status.as_str().to_owned(),
            address: text(&identity.address),
            phone1: identity.phones.first().cloned().unwrap_or_default(),
            phone2: identity.phones.get(1).cloned().unwrap_or_default(),
            email: text(&identity.email),
            treating_doctor: text(&identity.treating_doctor),
            administrative_note: text(&identity.administrative_note),
        }
    }
}

#[derive(Template)]
#[template(path = "patient_form.html")]
struct PatientFormPage {
    blur_seconds: u64,
    lock_seconds: u64,
    title: &'static str,
    action: String,
    revision: i64,
    form: IdentityForm,
    error: String,
    back: String,
}

fn form_page(
    state: &AppState,
    scope: &RecordsScope,
    patient: Option<&str>,
    form: IdentityForm,
    error: String,
) -> PatientFormPage {
    let (blur_seconds, lock_seconds) = idle_seconds(state);
    let practice = scope.practice_id();
    let (title, action, back) = match patient {
        None => (
            "Nouveau patient",
            format!("/cabinets/{practice}/nouveau-patient"),
            format!("/cabinets/{practice}/patients"),
        ),
        Some(patient) => (
            "Modifier l'identité",
            format!("/cabinets/{practice}/patients/{patient}/modifier"),
            format!("/cabinets/{practice}/patients/{patient}"),
        ),
    };
    PatientFormPage {
        blur_seconds,
        lock_seconds,
        title,
        action,
        revision: form.revision,
        form,
        error,
        back,
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(practice): Path<String>,
) -> Response {
    match records_scope(&state, &signed_in, &practice).await {
        Ok(scope) => {
            let form = IdentityForm {
                identity_status: "PROV".into(),
                ..IdentityForm::default()
            };
            render(
                &form_page(&state, &scope, None, form, String::new()),
                StatusCode::OK,
            )
        }
        Err(refused) => refused,
    }
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(practice): Path<String>,
    Form(form): Form<IdentityForm>,
) -> Response {
    let scope = match records_scope(&state, &signed_in, &practice).await {
        Ok(scope) => scope,
        Err(refused) => return refused,
    };
    match state.services.create_patient(&scope, &form.input()).await {
        Ok(created) => Redirect::to(&format!(
            "/cabinets/{}/patients/{}",
            scope.practice_id(),
            created.id
        ))
        .into_response(),
        Err(ServiceError::Invalid { message, .. }) => render(
            &form_page(&state, &scope, None, form, message),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(other) => refusal(other),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient)): Path<(String, String)>,
) -> Response {
    let (scope, patient_id) = match patient_scope(&state, &signed_in, &practice, &patient).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    match state.services.patient(&scope, patient_id).await {
        Ok(view) => render(
            &form_page(
                &state,
                &scope,
                Some(&patient),
                IdentityForm::of(&view),
                String::new(),
            ),
            StatusCode::OK,
        ),
        Err(error) => refusal(error),
    }
}

pub async fn edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient)): Path<(String, String)>,
    Form(form): Form<IdentityForm>,
) -> Response {
    let (scope, patient_id) = match patient_scope(&state, &signed_in, &practice, &patient).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    match state
        .services
        .update_patient(&scope, patient_id, form.revision, &form.input())
        .await
    {
        Ok(_) => Redirect::to(&format!(
            "/cabinets/{}/patients/{patient_id}",
            scope.practice_id()
        ))
        .into_response(),
        Err(ServiceError::Invalid { message, .. }) => render(
            &form_page(&state, &scope, Some(&patient), form, message),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(ServiceError::Conflict) => render(
            &form_page(
                &state,
                &scope,
                Some(&patient),
                form,
                "Quelqu'un a modifié cette identité entre-temps : rechargez la page pour \
                 repartir de la dernière version."
                    .into(),
            ),
            StatusCode::CONFLICT,
        ),
        Err(other) => refusal(other),
    }
}

// ---- the record ---------------------------------------------------------------------------

struct TimelineRow {
    entry_id: String,
    title: String,
    when: String,
    lines: Vec<String>,
    revision: i64,
    /// When this revision was written.
    revised_at: String,
}

fn number(value: f64) -> String {
    let text = format!("{value}");
    text.replace('.', ",")
}

fn vitals_line(vitals: &Vitals) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(value) = vitals.temperature_celsius {
        parts.push(format!("T {} °C", number(value)));
    }
    if let (Some(systolic), Some(diastolic)) = (vitals.systolic_mmhg, vitals.diastolic_mmhg) {
        parts.push(format!(
            "TA {}/{} mmHg",
            number(systolic),
            number(diastolic)
        ));
    }
    if let Some(value) = vitals.pulse_bpm {
        parts.push(format!("pouls {}/min", number(value)));
    }
    if let Some(value) = vitals.spo2_percent {
        parts.push(format!("SpO2 {} %", number(value)));
    }
    if let Some(value) = vitals.glycaemia_g_per_l {
        parts.push(format!("glycémie {} g/L", number(value)));
    }
    if let Some(value) = vitals.weight_kg {
        parts.push(format!("poids {} kg", number(value)));
    }
    if let Some(value) = vitals.pain_0_10 {
        parts.push(format!("douleur {value}/10"));
    }
    (!parts.is_empty()).then(|| format!("Constantes : {}", parts.join(" · ")))
}

fn timeline_row(view: &ClinicalView) -> TimelineRow {
    let written = view.created_at.to_french_text();
    let (title, when, lines) = match &view.content {
        ClinicalContent::Act {
            performed_at,
            performer,
            label,
            ngap_code,
            observation,
            vitals,
        } => {
            let title = match ngap_code {
                Some(code) => format!("{label} ({code})"),
                None => label.clone(),
            };
            let mut lines = vec![format!("Par {performer}")];
            lines.extend(observation.clone());
            lines.extend(vitals.as_ref().and_then(vitals_line));
            (title, french_date_time(performed_at), lines)
        }
        ClinicalContent::Note { text } => ("Transmission".to_owned(), written, vec![text.clone()]),
        ClinicalContent::Episode {
            prescription_reference,
            prescriber,
            start_date,
            end_date,
            place,
        } => {
            let mut lines = vec![
                format!("Prescripteur : {prescriber}"),
                format!(
                    "Lieu : {}",
                    match place {
                        carnet_domain::CarePlace::Home => "domicile",
                        carnet_domain::CarePlace::Practice => "cabinet",
                    }
                ),
            ];
            lines.extend(
                end_date
                    .as_deref()
                    .map(|end| format!("Fin : {}", french_date(end))),
            );
            (
                format!("Épisode de soins — prescription {prescription_reference}"),
                french_date(start_date),
                lines,
            )
        }
        ClinicalContent::Allergy {
            substance,
            reaction,
        } => (
            format!("Allergie : {substance}"),
            written,
            reaction.iter().cloned().collect(),
        ),
        ClinicalContent::Treatment { name, dosage } => (
            format!("Traitement : {name}"),
            written,
            dosage.iter().cloned().collect(),
        ),
        ClinicalContent::History { text } => ("Antécédent".to_owned(), written, vec![text.clone()]),
    };
    TimelineRow {
        entry_id: view.entry_id.to_string(),
        title,
        when,
        lines,
        revision: view.revision,
        revised_at: view.revised_at.to_french_text(),
    }
}

struct DocumentRow {
    id: String,
    name: String,
    kind: &'static str,
    size: String,
    at: String,
    version: i64,
}

fn document_row(view: carnet_service::DocumentView) -> DocumentRow {
    #[expect(
        clippy::cast_precision_loss,
        reason = "a size shown to one decimal place"
    )]
    let size = if view.size >= 1024 * 1024 {
        format!("{:.1} Mo", view.size as f64 / (1024.0 * 1024.0)).replace('.', ",")
    } else {
        format!("{} ko", view.size.div_ceil(1024))
    };
    DocumentRow {
        id: view.id.to_string(),
        name: view.name,
        kind: match view.media_type {
            carnet_service::MediaType::Pdf => "PDF",
            carnet_service::MediaType::Jpeg => "image JPEG",
            carnet_service::MediaType::Png => "image PNG",
        },
        size,
        at: view.created_at.to_french_text(),
        version: view.version,
    }
}

#[derive(Template)]
#[template(path = "patient.html")]
struct PatientPage {
    blur_seconds: u64,
    lock_seconds: u64,
    practice_id: String,
    base: String,
    name: String,
    identity: Vec<(&'static str, String)>,
    clinical: bool,
    timeline: Vec<TimelineRow>,
    documents: Vec<DocumentRow>,
    /// The patient's API address (documents are sent and opened there).
    api_base: String,
    error: String,
}

/// The patient page (with `error` above it and `status`).
async fn patient_page(
    state: &AppState,
    signed_in: &SignedIn,
    practice: &str,
    patient: &str,
    error: String,
    status: StatusCode,
) -> Response {
    let (scope, patient_id) = match patient_scope(state, signed_in, practice, patient).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let view = match state.services.patient(&scope, patient_id).await {
        Ok(view) => view,
        Err(error) => return refusal(error),
    };
    // Only those the clinical capability would admit are asked for it (a refusal is
    // audited: staff opening a patient must not fill the journal with denials).
    let clinical = match state.services.clinical_allowed(&scope).await {
        Ok(allowed) => allowed,
        Err(error) => return refusal(error),
    };
    let mut timeline = Vec::new();
    let mut documents = Vec::new();
    if clinical {
        let loaded = async {
            let clinical_scope = state
                .services
                .authorize_clinical(&signed_in.caller, &signed_in.active, scope.practice_id())
                .await?;
            let entries = state
                .services
                .clinical_timeline(&clinical_scope, patient_id)
                .await?;
            let files = state
                .services
                .documents(&clinical_scope, patient_id, None)
                .await?;
            Ok::<_, ServiceError>((entries, files))
        }
        .await;
        match loaded {
            Ok((entries, files)) => {
                timeline = entries.iter().map(timeline_row).collect();
                documents = files.into_iter().map(document_row).collect();
            }
            Err(error) => return refusal(error),
        }
    }
    let (blur_seconds, lock_seconds) = idle_seconds(state);
    let practice_id = scope.practice_id().to_string();
    let page = PatientPage {
        blur_seconds,
        lock_seconds,
        base: format!("/cabinets/{practice_id}/patients/{patient_id}"),
        api_base: format!("/api/v1/practices/{practice_id}/patients/{patient_id}"),
        documents,
        practice_id,
        name: display_name(&view.identity),
        identity: identity_lines(&view.identity),
        clinical,
        timeline,
        error,
    };
    render(&page, status)
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient)): Path<(String, String)>,
) -> Response {
    patient_page(
        &state,
        &signed_in,
        &practice,
        &patient,
        String::new(),
        StatusCode::OK,
    )
    .await
}

#[derive(Template)]
#[template(path = "patient_history.html")]
struct HistoryPage {
    blur_seconds: u64,
    lock_seconds: u64,
    back: String,
    revisions: Vec<RevisionRow>,
}

struct RevisionRow {
    number: i64,
    at: String,
    identity: Vec<(&'static str, String)>,
}

pub async fn history(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient)): Path<(String, String)>,
) -> Response {
    let (scope, patient_id) = match patient_scope(&state, &signed_in, &practice, &patient).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    match state.services.patient_history(&scope, patient_id).await {
        Ok(revisions) => {
            let (blur_seconds, lock_seconds) = idle_seconds(&state);
            let page = HistoryPage {
                blur_seconds,
                lock_seconds,
                back: format!("/cabinets/{}/patients/{patient_id}", scope.practice_id()),
                revisions: revisions
                    .iter()
                    .map(|revision| RevisionRow {
                        number: revision.number,
                        at: revision.created_at.to_french_text(),
                        identity: identity_lines(&revision.identity),
                    })
                    .collect(),
            };
            render(&page, StatusCode::OK)
        }
        Err(error) => refusal(error),
    }
}

#[derive(Template)]
#[template(path = "clinical_history.html")]
struct EntryHistoryPage {
    blur_seconds: u64,
    lock_seconds: u64,
    back: String,
    revisions: Vec<TimelineRow>,
}

/// Every revision of one clinical entry, newest first (nothing an edit replaced is lost).
pub async fn entry_history(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient, entry)): Path<(String, String, String)>,
) -> Response {
    let path = (practice.as_str(), patient.as_str(), entry.as_str());
    let (clinical, patient_id, entry_id) = match clinical_page_scope(&state, &signed_in, path).await
    {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    match state
        .services
        .clinical_history(&clinical, patient_id, entry_id)
        .await
    {
        Ok(revisions) => {
            let (blur_seconds, lock_seconds) = idle_seconds(&state);
            let page = EntryHistoryPage {
                blur_seconds,
                lock_seconds,
                back: format!(
                    "/cabinets/{}/patients/{patient_id}",
                    clinical.records().practice_id()
                ),
                revisions: revisions.iter().map(timeline_row).collect(),
            };
            render(&page, StatusCode::OK)
        }
        Err(error) => refusal(error),
    }
}

#[derive(Template)]
#[template(path = "document_versions.html")]
struct DocumentVersionsPage {
    blur_seconds: u64,
    lock_seconds: u64,
    back: String,
    /// The document's API address (versions are opened and sent there).
    api_document: String,
    name: String,
    versions: Vec<DocumentRow>,
}

/// One document's versions, newest first, each one downloadable; a new version is sent
/// from here.
pub async fn document_versions(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient, document)): Path<(String, String, String)>,
) -> Response {
    let path = (practice.as_str(), patient.as_str(), document.as_str());
    let (clinical, patient_id, document_id) =
        match clinical_page_scope(&state, &signed_in, path).await {
            Ok(found) => found,
            Err(refused) => return refused,
        };
    match state
        .services
        .documents(&clinical, patient_id, Some(document_id))
        .await
    {
        Ok(versions) => {
            let (blur_seconds, lock_seconds) = idle_seconds(&state);
            let practice_id = clinical.records().practice_id();
            let versions: Vec<DocumentRow> = versions.into_iter().map(document_row).collect();
            let page = DocumentVersionsPage {
                blur_seconds,
                lock_seconds,
                back: format!("/cabinets/{practice_id}/patients/{patient_id}"),
                api_document: format!(
                    "/api/v1/practices/{practice_id}/patients/{patient_id}/documents/{document_id}"
                ),
                name: versions
                    .first()
                    .map(|latest| latest.name.clone())
                    .unwrap_or_default(),
                versions,
            };
            render(&page, StatusCode::OK)
        }
        Err(error) => refusal(error),
    }
}

// ---- quick entries ------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(default)]
    performed_at: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    ngap_code: String,
    #[serde(default)]
    observation: String,
    #[serde(default)]
    temperature: String,
    #[serde(default)]
    systolic: String,
    #[serde(default)]
    diastolic: String,
    #[serde(default)]
    pulse: String,
    #[serde(default)]
    spo2: String,
    #[serde(default)]
    glycaemia: String,
    #[serde(default)]
    weight: String,
    #[serde(default)]
    pain: String,
}

/// A typed number ("37,4" or "37.4"); empty is none.
fn typed_number(label: &str, text: &str) -> Result<Option<f64>, String> {
    let text = text.trim().replace(',', ".");
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("{label} : tapez un nombre, par exemple 37,5."))
}

impl ActForm {
    fn content(&self, performer: String) -> Result<ClinicalContent, String> {
        let pain = match typed_number("Douleur", &self.pain)? {
            None => None,
            Some(value) if value.fract() == 0.0 && (0.0..=10.0).contains(&value) => {
                u8::try_from(value as i64).ok()
            }
            Some(_) => return Err("Douleur : un nombre entier de 0 à 10.".into()),
        };
        let vitals = Vitals {
            temperature_celsius: typed_number("Température", &self.temperature)?,
            systolic_mmhg: typed_number("Tension systolique", &self.systolic)?,
            diastolic_mmhg: typed_number("Tension diastolique", &self.diastolic)?,
            pulse_bpm: typed_number("Pouls", &self.pulse)?,
            spo2_percent: typed_number("SpO2", &self.spo2)?,
            glycaemia_g_per_l: typed_number("Glycémie", &self.glycaemia)?,
            weight_kg: typed_number("Poids", &self.weight)?,
            pain_0_10: pain,
        };
        let optional = |text: &str| {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        Ok(ClinicalContent::Act {
            performed_at: self.performed_at.trim().to_owned(),
            performer,
            label: self.label.clone(),
            ngap_code: optional(&self.ngap_code).map(|code| code.to_uppercase()),
            observation: optional(&self.observation),
            vitals: (!vitals.is_empty()).then_some(vitals),
        })
    }
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    text: String,
}

/// Adds `content` (or the form's own error) to the patient's record, then shows the
/// record again (with the error, if any).
async fn add_entry(
    state: &AppState,
    signed_in: &SignedIn,
    practice: &str,
    patient: &str,
    content: Result<ClinicalContent, String>,
) -> Response {
    let outcome = async {
        let content = content.map_err(|message| ServiceError::Invalid {
            field: "content",
            message,
        })?;
        let practice_id = practice_id(practice).map_err(|_| ServiceError::NotFound)?;
        let patient_id = id_param(patient, "patient_id").map_err(|_| ServiceError::NotFound)?;
        let scope = state
            .services
            .authorize_clinical(&signed_in.caller, &signed_in.active, practice_id)
            .await?;
        state
            .services
            .add_clinical_entry(&scope, patient_id, &content)
            .await
    }
    .await;
    match outcome {
        Ok(_) => Redirect::to(&format!("/cabinets/{practice}/patients/{patient}")).into_response(),
        Err(ServiceError::Invalid { message, .. }) => {
            patient_page(
                state,
                signed_in,
                practice,
                patient,
                message,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => refusal(other),
    }
}

pub async fn add_act(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Response {
    let performer = state
        .services
        .member_name(&signed_in.caller)
        .await
        .unwrap_or_default();
    let content = form.content(performer);
    add_entry(&state, &signed_in, &practice, &patient, content).await
}

pub async fn add_note(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((practice, patient)): Path<(String, String)>,
    Form(form): Form<NoteForm>,
) -> Response {
    let content = Ok(ClinicalContent::Note { text: form.text });
    add_entry(&state, &signed_in, &practice, &patient, content).await
}
