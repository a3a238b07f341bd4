//! Clinical content over the API (ADR 0009): a patient's record as a timeline, new
//! entries (care episodes, acts with vital signs, notes, allergies, treatments,
//! history), revisions and their history. Every route takes the clinical capability: a
//! holder or professional with a validated number, on an approved device, PIN unlocked.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use carnet_domain::ClinicalContent;
use carnet_service::{ClinicalScope, ClinicalView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{ApiJson, Authenticated, id_param, practice_id};
use crate::auth::Active;
use crate::error::ErrorEnvelope;
use crate::{ApiError, AppState};

/// One entry's content, by `kind`:
/// `episode` {prescription_reference, prescriber, start_date, end_date?, place: home|practice};
/// `act` {performed_at (AAAA-MM-JJTHH:MM), performer, label, ngap_code? ("AMI 1"),
/// observation?, vitals? {temperature_celsius, systolic_mmhg, diastolic_mmhg, pulse_bpm,
/// spo2_percent, glycaemia_g_per_l, weight_kg, pain_0_10}};
/// `note` {text}; `allergy` {substance, reaction?}; `treatment` {name, dosage?};
/// `history` {text}.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct ContentBody(serde_json::Value);

impl ContentBody {
    fn into_content(self) -> Result<ClinicalContent, ApiError> {
        // The parser's message could quote the input: it is not echoed.
        serde_json::from_value(self.0).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "Contenu invalide : vérifiez la nature (kind) de la saisie et ses champs.",
            )
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    content: ContentBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryChange {
    /// The revision this change was made from (the current one, or 409).
    revision: i64,
    content: ContentBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryBody {
    id: String,
    kind: &'static str,
    revision: i64,
    content: ContentBody,
    created_at: String,
    revised_at: String,
    /// The member who wrote this revision.
    revised_by: String,
}

impl From<ClinicalView> for EntryBody {
    fn from(view: ClinicalView) -> Self {
        Self {
            id: view.entry_id.to_string(),
            kind: view.kind,
            revision: view.revision,
            content: ContentBody(serde_json::to_value(&view.content).unwrap_or_default()),
            created_at: view.created_at.to_rfc3339(),
            revised_at: view.revised_at.to_rfc3339(),
            revised_by: view.revised_by.to_string(),
        }
    }
}

/// The clinical capability of the caller over the practice named in the path.
pub(crate) async fn scope_of(
    state: &AppState,
    caller: &carnet_service::Caller,
    active: &carnet_service::ActiveSession,
    practice: &str,
) -> Result<ClinicalScope, ApiError> {
    Ok(state
        .services
        .authorize_clinical(caller, active, practice_id(practice)?)
        .await?)
}

/// The patient's record: the current revision of every entry, most recent first.
#[utoipa::path(get, path = "/api/v1/practices/{practice_id}/patients/{patient_id}/entries",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
    ),
    responses(
        (status = 200, body = [EntryBody]),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ))]
pub async fn timeline(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient)): Path<(String, String)>,
) -> Result<Json<Vec<EntryBody>>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let entries = state.services.clinical_timeline(&scope, patient).await?;
    Ok(Json(entries.into_iter().map(EntryBody::from).collect()))
}

/// Writes a new entry in the patient's record.
#[utoipa::path(post, path = "/api/v1/practices/{practice_id}/patients/{patient_id}/entries",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
    ),
    request_body = NewEntry,
    responses(
        (status = 201, body = EntryBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn add(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewEntry>,
) -> Result<(StatusCode, Json<EntryBody>), ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let content = body.content.into_content()?;
    let added = state
        .services
        .add_clinical_entry(&scope, patient, &content)
        .await?;
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// Changes an entry: a new revision; the previous ones are kept.
#[utoipa::path(patch,
    path = "/api/v1/practices/{practice_id}/patients/{patient_id}/entries/{entry_id}",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
        ("entry_id" = uuid::Uuid, Path, description = "Entry id"),
    ),
    request_body = EntryChange,
    responses(
        (status = 200, body = EntryBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn revise(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient, entry)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<EntryChange>,
) -> Result<Json<EntryBody>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let entry = id_param(&entry, "entry_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let content = body.content.into_content()?;
    let revised = state
        .services
        .revise_clinical_entry(&scope, patient, entry, body.revision, &content)
        .await?;
    Ok(Json(revised.into()))
}

/// Every revision of an entry, newest first.
#[utoipa::path(get,
    path = "/api/v1/practices/{practice_id}/patients/{patient_id}/entries/{entry_id}/revisions",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
        ("entry_id" = uuid::Uuid, Path, description = "Entry id"),
    ),
    responses(
        (status = 200, body = [EntryBody]),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ))]
pub async fn history(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient, entry)): Path<(String, String, String)>,
) -> Result<Json<Vec<EntryBody>>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let entry = id_param(&entry, "entry_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let history = state
        .services
        .clinical_history(&scope, patient, entry)
        .await?;
    Ok(Json(history.into_iter().map(EntryBody::from).collect()))
}
