//! Patients over the API (ADR 0009): create, search (name prefix and birth date, or
//! NIR), read, change (a new revision), history. Every route takes the records
//! capability: a member of the practice, on an approved device, with the PIN unlocked.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use carnet_domain::{PatientIdentity, PatientInput};
use carnet_service::{PatientQuery, PatientRevisionView, PatientView, RecordsScope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::{ApiJson, Authenticated, id_param, practice_id};
use crate::auth::Active;
use crate::error::ErrorEnvelope;
use crate::{ApiError, AppState};

/// A patient's identity, contact and administrative data (INS traits).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityBody {
    /// Nom de naissance.
    birth_name: String,
    /// Nom utilisé, if different.
    #[serde(default)]
    used_name: String,
    /// Prénoms de naissance, in order.
    birth_first_names: Vec<String>,
    #[serde(default)]
    first_name_used: String,
    /// AAAA-MM-JJ.
    birth_date: String,
    /// F, M or I.
    sex: String,
    /// Code INSEE du lieu de naissance (5 characters; 99xxx abroad).
    #[serde(default)]
    birthplace_insee: String,
    /// Matricule INS: NIR or NIA (15 characters with its key).
    #[serde(default)]
    nir: String,
    /// PROV, RECUP, VALI or QUAL.
    identity_status: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phones: Vec<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    treating_doctor: String,
    #[serde(default)]
    administrative_note: String,
}

impl From<IdentityBody> for PatientInput {
    fn from(body: IdentityBody) -> Self {
        Self {
            birth_name: body.birth_name,
            used_name: body.used_name,
            birth_first_names: body.birth_first_names,
            first_name_used: body.first_name_used,
            birth_date: body.birth_date,
            sex: body.sex,
            birthplace_insee: body.birthplace_insee,
            nir: body.nir,
            identity_status: body.identity_status,
            address: body.address,
            phones: body.phones,
            email: body.email,
            treating_doctor: body.treating_doctor,
            administrative_note: body.administrative_note,
        }
    }
}

impl From<PatientIdentity> for IdentityBody {
    fn from(identity: PatientIdentity) -> Self {
        let text = |value: Option<String>| value.unwrap_or_default();
        Self {
            birth_name: identity.birth_name,
            used_name: text(identity.used_name),
            birth_first_names: identity.birth_first_names,
            first_name_used: text(identity.first_name_used),
            birth_date: identity.birth_date.to_string(),
            sex: identity.sex.as_str().to_owned(),
            birthplace_insee: text(identity.birthplace_insee),
            nir: text(identity.nir),
            identity_status: identity.identity_status.as_str().to_owned(),
            address: text(identity.address),
            phones: identity.phones,
            email: text(identity.email),
            treating_doctor: text(identity.treating_doctor),
            administrative_note: text(identity.administrative_note),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatientBody {
    id: String,
    /// The current revision (send it back to change the identity).
    revision: i64,
    identity: IdentityBody,
    created_at: String,
    updated_at: String,
    /// The date of the last care act, if any.
    last_care_at: Option<String>,
}

impl From<PatientView> for PatientBody {
    fn from(view: PatientView) -> Self {
        Self {
            id: view.id.to_string(),
            revision: view.revision,
            identity: view.identity.into(),
            created_at: view.created_at.to_rfc3339(),
            updated_at: view.updated_at.to_rfc3339(),
            last_care_at: view.last_care_at.map(carnet_domain::Timestamp::to_rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionBody {
    number: i64,
    identity: IdentityBody,
    created_at: String,
    /// The member who made this revision.
    created_by: String,
}

impl From<PatientRevisionView> for RevisionBody {
    fn from(view: PatientRevisionView) -> Self {
        Self {
            number: view.number,
            identity: view.identity.into(),
            created_at: view.created_at.to_rfc3339(),
            created_by: view.created_by.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientChange {
    /// The revision this change was made from (the current one, or 409).
    revision: i64,
    identity: IdentityBody,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// At least 3 letters of the birth or used name (accents and case ignored).
    name: Option<String>,
    /// AAAA-MM-JJ, to narrow a name search.
    birth_date: Option<String>,
    /// NIR or NIA.
    nir: Option<String>,
}

async fn scope_of(
    state: &AppState,
    caller: &carnet_service::Caller,
    active: &carnet_service::ActiveSession,
    practice: &str,
) -> Result<RecordsScope, ApiError> {
    Ok(state
        .services
        .authorize_records(caller, active, practice_id(practice)?)
        .await?)
}

/// Creates a patient.
#[utoipa::path(post, path = "/api/v1/practices/{practice_id}/patients", tag = "patients",
    params(("practice_id" = uuid::Uuid, Path, description = "Practice id")),
    request_body = IdentityBody,
    responses(
        (status = 201, body = PatientBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path(practice): Path<String>,
    ApiJson(body): ApiJson<IdentityBody>,
) -> Result<(StatusCode, Json<PatientBody>), ApiError> {
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let created = state
        .services
        .create_patient(&scope, &PatientInput::from(body))
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Finds patients by name prefix (with an optional birth date) or by NIR: at most 50, in
/// name and birth date order; `X-Total-Count` says how many matched in all (more than 50:
/// type more of the name, or the birth date).
#[utoipa::path(get, path = "/api/v1/practices/{practice_id}/patients", tag = "patients",
    params(("practice_id" = uuid::Uuid, Path, description = "Practice id"), SearchParams),
    responses(
        (status = 200, body = [PatientBody], headers(
            ("X-Total-Count" = usize, description = "How many patients matched (at most 50 are listed)"),
        )),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn search(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path(practice): Path<String>,
    Query(params): Query<SearchParams>,
) -> Result<([(&'static str, String); 1], Json<Vec<PatientBody>>), ApiError> {
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let found = state
        .services
        .search_patients(
            &scope,
            &PatientQuery {
                name: params.name,
                birth_date: params.birth_date,
                nir: params.nir,
            },
        )
        .await?;
    Ok((
        [("x-total-count", found.total.to_string())],
        Json(found.shown.into_iter().map(PatientBody::from).collect()),
    ))
}

/// A patient's current identity.
#[utoipa::path(get, path = "/api/v1/practices/{practice_id}/patients/{patient_id}",
    tag = "patients",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
    ),
    responses(
        (status = 200, body = PatientBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 500, body = ErrorEnvelope),
    ))]
pub async fn read(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient)): Path<(String, String)>,
) -> Result<Json<PatientBody>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    Ok(Json(state.services.patient(&scope, patient).await?.into()))
}

/// Changes a patient's identity: a new revision; the previous ones are kept.
#[utoipa::path(patch, path = "/api/v1/practices/{practice_id}/patients/{patient_id}",
    tag = "patients",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
    ),
    request_body = PatientChange,
    responses(
        (status = 200, body = PatientBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn change(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient)): Path<(String, String)>,
    ApiJson(body): ApiJson<PatientChange>,
) -> Result<Json<PatientBody>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let changed = state
        .services
        .update_patient(
            &scope,
            patient,
            body.revision,
            &PatientInput::from(body.identity),
        )
        .await?;
    Ok(Json(changed.into()))
}

/// Every revision of a patient's identity, newest first.
#[utoipa::path(get, path = "/api/v1/practices/{practice_id}/patients/{patient_id}/revisions",
    tag = "patients",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
    ),
    responses(
        (status = 200, body = [RevisionBody]),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ))]
pub async fn history(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient)): Path<(String, String)>,
) -> Result<Json<Vec<RevisionBody>>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let history = state.services.patient_history(&scope, patient).await?;
    Ok(Json(history.into_iter().map(RevisionBody::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// csv (the documented columns, `;` or `,`) or fhir (an R4 Bundle of Patients).
    format: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportBody {
    imported: usize,
}

/// Imports patients from another software: all of the file, or nothing (422 naming every
/// bad row with its line or entry).
#[utoipa::path(post, path = "/api/v1/practices/{practice_id}/imports", tag = "patients",
    params(("practice_id" = uuid::Uuid, Path, description = "Practice id"), ImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 201, body = ImportBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn import(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path(practice): Path<String>,
    Query(params): Query<ImportParams>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<ImportBody>), ApiError> {
    let format = match params.format.as_str() {
        "csv" => carnet_service::ImportFormat::Csv,
        "fhir" => carnet_service::ImportFormat::Fhir,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "Le format est csv ou fhir.",
            ));
        }
    };
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let limit = usize::try_from(state.settings.document_max_bytes).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::from(carnet_service::ServiceError::TooLarge {
            max_bytes: state.settings.document_max_bytes,
        })
    })?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "Le fichier doit être en UTF-8.",
        )
    })?;
    let imported = state
        .services
        .import_patients(
            &carnet_service::Services::import_scope(&scope),
            format,
            &text,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ImportBody { imported })))
}
