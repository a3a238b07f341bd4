//! The audit trail on the wire and on screen: the practice's events for holders (JSON
//! and a French page), a patient's access history export (JSON or CSV), and the
//! instance's events for the platform side.

use askama::Template;
use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use carnet_audit::{Action, Entry};
use carnet_domain::Timestamp;
use carnet_service::{AuditFilter, Caller, PracticeAction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::{Authenticated, caller_of, practice_id};
use crate::error::ErrorEnvelope;
use crate::{ApiError, AppState};

/// Filters, as query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Events by this member (id).
    #[serde(default)]
    member: Option<String>,
    /// One action code (e.g. `record_read`).
    #[serde(default)]
    action: Option<String>,
    /// From this date or instant (`2026-11-23` or RFC 3339), inclusive.
    #[serde(default)]
    from: Option<String>,
    /// Until this date or instant, exclusive.
    #[serde(default)]
    until: Option<String>,
    /// Events about this patient (id).
    #[serde(default)]
    patient: Option<String>,
    /// Only events before this sequence number (next page).
    #[serde(default)]
    before: Option<u64>,
    /// At most this many events (1 to 500, default 100).
    #[serde(default)]
    limit: Option<u32>,
}

fn blank_to_none(value: Option<&String>) -> Option<&str> {
    value
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
}

impl AuditParams {
    fn to_filter(&self) -> Result<AuditFilter, ApiError> {
        let invalid = |field: &'static str, message: &str| ApiError {
            field: Some(field),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_filter", message)
        };
        Ok(AuditFilter {
            member: blank_to_none(self.member.as_ref())
                .map(str::parse)
                .transpose()
                .map_err(|_| invalid("member", "L'identifiant du membre n'est pas valide."))?,
            action: blank_to_none(self.action.as_ref())
                .map(|code| Action::parse(code).ok_or(()))
                .transpose()
                .map_err(|()| invalid("action", "Action inconnue."))?,
            from: blank_to_none(self.from.as_ref())
                .map(|text| Timestamp::parse_rfc3339_or_date(text).ok_or(()))
                .transpose()
                .map_err(|()| invalid("from", "Date de début invalide (AAAA-MM-JJ)."))?,
            until: blank_to_none(self.until.as_ref())
                .map(|text| Timestamp::parse_rfc3339_or_date(text).ok_or(()))
                .transpose()
                .map_err(|()| invalid("until", "Date de fin invalide (AAAA-MM-JJ)."))?,
            patient: blank_to_none(self.patient.as_ref())
                .map(str::parse)
                .transpose()
                .map_err(|_| invalid("patient", "L'identifiant du patient n'est pas valide."))?,
            before_seq: self.before,
            limit: self.limit,
        })
    }
}

/// One audit event on the wire: ids and codes only, never names or content.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventBody {
    seq: u64,
    /// RFC 3339, UTC.
    at: String,
    /// `operator`, `platform_admin`, `member`, `anonymous` or `system`.
    actor_kind: &'static str,
    actor_account: Option<uuid::Uuid>,
    actor_role: Option<&'static str>,
    actor_device: Option<uuid::Uuid>,
    actor_session: Option<uuid::Uuid>,
    action: &'static str,
    /// The action in French.
    action_label: &'static str,
    /// `success`, `denied` or `failure`.
    outcome: &'static str,
    target_patient: Option<uuid::Uuid>,
    target_record: Option<uuid::Uuid>,
    target_document: Option<uuid::Uuid>,
    target_member: Option<uuid::Uuid>,
    request_id: Option<String>,
    client_address: Option<String>,
    /// This entry's SHA-256 in the chain, hexadecimal.
    hash: String,
}

impl From<&Entry> for AuditEventBody {
    fn from(entry: &Entry) -> Self {
        let event = &entry.event;
        Self {
            seq: entry.seq,
            at: event.at.to_rfc3339(),
            actor_kind: event.actor.kind.code(),
            actor_account: event.actor.account,
            actor_role: event.actor.role,
            actor_device: event.actor.device,
            actor_session: event.actor.session,
            action: event.action.code(),
            action_label: event.action.label_fr(),
            outcome: event.outcome.code(),
            target_patient: event.targets.patient,
            target_record: event.targets.record,
            target_document: event.targets.document,
            target_member: event.targets.member,
            request_id: event.request_id.clone(),
            client_address: event.client_address.map(|address| address.to_string()),
            hash: carnet_audit::hex(&entry.hash),
        }
    }
}

/// The practice's audit events, newest first (holders).
#[utoipa::path(get, path = "/api/v1/practices/{practice_id}/audit-events", tag = "audit",
    params(("practice_id" = uuid::Uuid, Path, description = "Practice id"), AuditParams),
    responses(
        (status = 200, body = [AuditEventBody]),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope),
    ))]
pub async fn practice_audit_events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(practice): Path<String>,
    Query(params): Query<AuditParams>,
) -> Result<Json<Vec<AuditEventBody>>, ApiError> {
    let filter = params.to_filter()?;
    let scope = state
        .services
        .authorize(&caller, practice_id(&practice)?, PracticeAction::ReadAudit)
        .await?;
    let entries = state.services.practice_audit(&scope, &filter).await?;
    Ok(Json(entries.iter().map(AuditEventBody::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `json` (default) or `csv`.
    #[serde(default)]
    format: Option<String>,
}

/// Who accessed a patient's record, oldest first, for the patient (holders). JSON or CSV.
#[utoipa::path(get,
    path = "/api/v1/practices/{practice_id}/patients/{patient_id}/access-history",
    tag = "audit",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("patient_id" = uuid::Uuid, Path, description = "Patient id"),
        ExportParams,
    ),
    responses(
        (status = 200, body = [AuditEventBody], description = "JSON, or CSV with format=csv"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope),
    ))]
pub async fn patient_access_history(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((practice, patient)): Path<(String, String)>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let practice_id = practice_id(&practice)?;
    let patient: uuid::Uuid = patient
        .parse()
        .map_err(|_| ApiError::invalid_id("patient_id"))?;
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError {
                field: Some("format"),
                ..ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_filter",
                    "Format : json ou csv.",
                )
            });
        }
    };
    let scope = state
        .services
        .authorize(&caller, practice_id, PracticeAction::ReadAudit)
        .await?;
    let entries = state
        .services
        .patient_access_history(&scope, patient)
        .await?;
    let bodies: Vec<AuditEventBody> = entries.iter().map(AuditEventBody::from).collect();
    if !csv {
        return Ok(Json(bodies).into_response());
    }
    let disposition = format!("attachment; filename=\"acces-patient-{patient}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        to_csv(&bodies),
    )
        .into_response())
}

/// CSV with a header line; every field quoted (values are ids, codes and fixed labels).
fn to_csv(bodies: &[AuditEventBody]) -> String {
    let mut out = String::from(
        "seq,date,acteur,compte,role,action,libelle,resultat,patient,dossier,document,membre,requete,adresse\r\n",
    );
    let text = |value: Option<String>| value.unwrap_or_default();
    let id = |value: Option<uuid::Uuid>| value.map(|id| id.to_string()).unwrap_or_default();
    for body in bodies {
        let fields = [
            body.seq.to_string(),
            body.at.clone(),
            body.actor_kind.to_owned(),
            id(body.actor_account),
            body.actor_role.unwrap_or_default().to_owned(),
            body.action.to_owned(),
            body.action_label.to_owned(),
            body.outcome.to_owned(),
            id(body.target_patient),
            id(body.target_record),
            id(body.target_document),
            id(body.target_member),
            text(body.request_id.clone()),
            text(body.client_address.clone()),
        ];
        let line: Vec<String> = fields
            .iter()
            .map(|field| format!("\"{}\"", field.replace('"', "\"\"")))
            .collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The instance's audit events, newest first (platform administrators).
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, body = [AuditEventBody]),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 503, body = ErrorEnvelope),
    ))]
pub async fn instance_audit_events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(params): Query<AuditParams>,
) -> Result<Json<Vec<AuditEventBody>>, ApiError> {
    let filter = params.to_filter()?;
    let entries = state.services.instance_audit(&caller, &filter).await?;
    Ok(Json(entries.iter().map(AuditEventBody::from).collect()))
}

// ---- the page ---------------------------------------------------------------------------

/// The caller of a page; without one, a French page asks to sign in.
pub struct PageCaller(pub Caller);

impl FromRequestParts<AppState> for PageCaller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = caller_of(parts, &state.settings) {
            return Ok(Self(caller));
        }
        Err(match parts.extensions.get::<crate::SessionProblem>() {
            Some(crate::SessionProblem::Locked) => {
                crate::pages_auth::lock_screen(parts.uri.path(), "")
            }
            Some(crate::SessionProblem::DevicePending) => crate::pages_auth::waiting_page(),
            _ => crate::pages::message_page(
                StatusCode::UNAUTHORIZED,
                "Connexion requise",
                "Connectez-vous pour consulter cette page.",
            ),
        })
    }
}

struct JournalRow {
    seq: u64,
    at: String,
    actor: String,
    action: &'static str,
    outcome: &'static str,
    denied: bool,
    patient: String,
}

#[derive(Template)]
#[template(path = "journal.html")]
struct JournalPage {
    practice_id: String,
    rows: Vec<JournalRow>,
    actions: Vec<(&'static str, &'static str)>,
    member: String,
    action: String,
    from: String,
    until: String,
    patient: String,
    next_before: Option<u64>,
}

/// The practice's journal for holders: filters by member, action, dates and patient.
pub async fn practice_journal_page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(practice): Path<String>,
    Query(params): Query<AuditParams>,
) -> Response {
    let outcome = async {
        let filter = params.to_filter()?;
        let scope = state
            .services
            .authorize(&caller, practice_id(&practice)?, PracticeAction::ReadAudit)
            .await?;
        let limit = filter.limit.unwrap_or(100).clamp(1, 500);
        let entries = state.services.practice_audit(&scope, &filter).await?;
        Ok::<_, ApiError>((scope, entries, limit))
    }
    .await;
    let (scope, entries, limit) = match outcome {
        Ok(found) => found,
        Err(error) => {
            return crate::pages::message_page(
                error.status,
                "Journal indisponible",
                &error.message,
            );
        }
    };
    let next_before = (entries.len() == limit as usize)
        .then(|| entries.last().map(|entry| entry.seq))
        .flatten();
    let rows = entries
        .iter()
        .map(|entry| {
            let event = &entry.event;
            let actor = match (event.actor.role, event.actor.account) {
                (Some(role), Some(account)) => format!("{} {}", role_label(role), short(account)),
                (None, Some(account)) => {
                    format!("{} {}", event.actor.kind.label_fr(), short(account))
                }
                _ => event.actor.kind.label_fr().to_owned(),
            };
            JournalRow {
                seq: entry.seq,
                at: event.at.to_french_text(),
                actor,
                action: event.action.label_fr(),
                outcome: event.outcome.label_fr(),
                denied: event.outcome != carnet_audit::Outcome::Success,
                patient: event
                    .targets
                    .patient
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let page = JournalPage {
        practice_id: scope.practice_id().to_string(),
        rows,
        actions: Action::ALL
            .iter()
            .map(|action| (action.code(), action.label_fr()))
            .collect(),
        member: params.member.unwrap_or_default(),
        action: params.action.unwrap_or_default(),
        from: params.from.unwrap_or_default(),
        until: params.until.unwrap_or_default(),
        patient: params.patient.unwrap_or_default(),
        next_before,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "journal page rendering failed");
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}

fn role_label(role: &str) -> &'static str {
    carnet_domain::Role::parse(role).map_or("membre", carnet_domain::Role::label_fr)
}

/// The first 8 characters of an id: enough to tell members apart on screen.
fn short(id: uuid::Uuid) -> String {
    id.simple().to_string().chars().take(8).collect()
}
