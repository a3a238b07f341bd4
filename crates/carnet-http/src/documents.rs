//! Documents over the API (ADR 0010): upload (the raw bytes as the body, the file name in
//! the query), new versions, lists, download. The clinical capability is required; the
//! type is sniffed from the content; every download is audited.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carnet_service::DocumentView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::{Authenticated, id_param};
use crate::auth::Active;
use crate::clinical::scope_of;
use crate::error::ErrorEnvelope;
use crate::{ApiError, AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentBody {
    id: String,
    version: i64,
    name: String,
    /// application/pdf, image/jpeg or image/png (from the content).
    media_type: &'static str,
    size: u64,
    created_at: String,
    created_by: String,
}

impl From<DocumentView> for DocumentBody {
    fn from(view: DocumentView) -> Self {
        Self {
            id: view.id.to_string(),
            version: view.version,
            name: view.name,
            media_type: view.media_type.as_str(),
            size: view.size,
            created_at: view.created_at.to_rfc3339(),
            created_by: view.created_by.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// The file name shown to the practice (1 to 60 characters).
    name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContentParams {
    /// A version number (default: the current one).
    version: Option<i64>,
}

async fn upload(
    state: &AppState,
    caller: &carnet_service::Caller,
    active: &carnet_service::ActiveSession,
    ids: (&str, &str, Option<&str>),
    name: &str,
    body: Body,
) -> Result<(StatusCode, Json<DocumentBody>), ApiError> {
    let (practice, patient, document) = ids;
    let patient = id_param(patient, "patient_id")?;
    let document = document
        .map(|document| id_param(document, "document_id"))
        .transpose()?;
    let scope = scope_of(state, caller, active, practice).await?;
    let stored = state
        .services
        .upload_document(
            &scope,
            patient,
            document,
            name,
            body.into_data_stream(),
            state.settings.document_max_bytes,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// Adds a document (PDF, JPEG or PNG; the body is the file).
#[utoipa::path(post, path = "/api/v1/practices/{practice_id}/patients/{patient_id}/documents",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
        UploadParams,
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = DocumentBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn add(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient)): Path<(String, String)>,
    Query(params): Query<UploadParams>,
    body: Body,
) -> Result<(StatusCode, Json<DocumentBody>), ApiError> {
    upload(
        &state,
        &caller,
        &active,
        (&practice, &patient, None),
        &params.name,
        body,
    )
    .await
}

/// The patient's documents, each at its current version.
#[utoipa::path(get, path = "/api/v1/practices/{practice_id}/patients/{patient_id}/documents",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
    ),
    responses(
        (status = 200, body = [DocumentBody]),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient)): Path<(String, String)>,
) -> Result<Json<Vec<DocumentBody>>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let listed = state.services.documents(&scope, patient, None).await?;
    Ok(Json(listed.into_iter().map(DocumentBody::from).collect()))
}

/// Adds a version of a document (the previous ones are kept).
#[utoipa::path(post,
    path = "/api/v1/practices/{practice_id}/patients/{patient_id}/documents/{document_id}/versions",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
        ("document_id" = uuid::Uuid, Path, description = "Document id"),
        UploadParams,
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = DocumentBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn add_version(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient, document)): Path<(String, String, String)>,
    Query(params): Query<UploadParams>,
    body: Body,
) -> Result<(StatusCode, Json<DocumentBody>), ApiError> {
    upload(
        &state,
        &caller,
        &active,
        (&practice, &patient, Some(&document)),
        &params.name,
        body,
    )
    .await
}

/// Every version of a document, newest first.
#[utoipa::path(get,
    path = "/api/v1/practices/{practice_id}/patients/{patient_id}/documents/{document_id}/versions",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
        ("document_id" = uuid::Uuid, Path, description = "Document id"),
    ),
    responses(
        (status = 200, body = [DocumentBody]),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ))]
pub async fn versions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient, document)): Path<(String, String, String)>,
) -> Result<Json<Vec<DocumentBody>>, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let document = id_param(&document, "document_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let listed = state
        .services
        .documents(&scope, patient, Some(document))
        .await?;
    Ok(Json(listed.into_iter().map(DocumentBody::from).collect()))
}

/// A document's content (audited), verified before it is sent.
#[utoipa::path(get,
    path = "/api/v1/practices/{practice_id}/patients/{patient_id}/documents/{document_id}/content",
    tag = "records",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
        ("document_id" = uuid::Uuid, Path, description = "Document id"),
        ContentParams,
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 500, body = ErrorEnvelope),
    ))]
pub async fn content(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Active(active): Active,
    Path((practice, patient, document)): Path<(String, String, String)>,
    Query(params): Query<ContentParams>,
) -> Result<Response, ApiError> {
    let patient = id_param(&patient, "patient_id")?;
    let document = id_param(&document, "document_id")?;
    let scope = scope_of(&state, &caller, &active, &practice).await?;
    let file = state
        .services
        .download_document(&scope, patient, document, params.version)
        .await?;
    let mut response = file.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.view.media_type.as_str()),
    );
    // RFC 6266 / 8187: the name percent-encoded, so no header injection is possible.
    let encoded: String = file
        .view
        .name
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b".-_".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename*=UTF-8''{encoded}")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
