//! The JSON API: wire types, handlers, and the OpenAPI document generated from them.
//!
//! Wire types are separate from domain types and converted explicitly, so a change in
//! the domain never silently changes the API. Every route is declared through
//! `utoipa_axum::routes!`, so the router and its OpenAPI description cannot disagree.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use carnet_domain::{Member, MemberId, Practice, PracticeId, ProfessionalIdState};
use carnet_service::{
    Actor, Caller, NewMemberInput, NewPracticeInput, PracticeAction, ProfessionalIdDecision,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorEnvelope;
use crate::{ApiError, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Carnet",
        description = "API de Carnet : dossiers de soins des cabinets de santé. \
                       Every error answers `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "AGPL-3.0-or-later"),
    ),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "practices", description = "Practices (cabinets), members, professional numbers"),
        (name = "audit", description = "The audit trail: who did what, when"),
        (name = "auth", description = "Activation, sign-in, second factor, sessions"),
    )
)]
struct ApiDoc;

/// The API routes with their OpenAPI description.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_practices, create_practice))
        .routes(routes!(list_members, add_member))
        .routes(routes!(
            list_professional_id_decisions,
            decide_professional_id
        ))
        .routes(routes!(crate::auth::issue_activation_code))
        .routes(routes!(crate::auth::unlock_member_account))
        .routes(routes!(crate::auth::activate))
        .routes(routes!(crate::auth::login))
        .routes(routes!(crate::auth::start_totp_enrolment))
        .routes(routes!(crate::auth::verify_totp))
        .routes(routes!(crate::auth::start_totp_replacement))
        .routes(routes!(crate::auth::confirm_totp_replacement))
        .routes(routes!(crate::auth::use_recovery_code))
        .routes(routes!(crate::auth::unlock))
        .routes(routes!(crate::auth::logout))
        .routes(routes!(crate::auth::my_sessions))
        .routes(routes!(crate::auth::revoke_session))
        .routes(routes!(crate::auth::change_password))
        .routes(routes!(crate::passkeys::start_registration))
        .routes(routes!(crate::passkeys::finish_registration))
        .routes(routes!(crate::passkeys::start_sign_in))
        .routes(routes!(crate::passkeys::finish_sign_in))
        .routes(routes!(crate::passkeys::list))
        .routes(routes!(crate::passkeys::rename, crate::passkeys::remove))
        .routes(routes!(crate::passkeys::setup))
        .routes(routes!(crate::devices::list_mine))
        .routes(routes!(crate::devices::list_practice))
        .routes(routes!(crate::devices::decide))
        .routes(routes!(crate::devices::rename))
        .routes(routes!(crate::device_certificates::request))
        .routes(routes!(crate::device_certificates::pick_up))
        .routes(routes!(crate::patients::create, crate::patients::search))
        .routes(routes!(crate::patients::read, crate::patients::change))
        .routes(routes!(crate::patients::history))
        .routes(routes!(crate::patients::import))
        .routes(routes!(crate::clinical::timeline, crate::clinical::add))
        .routes(routes!(crate::clinical::revise))
        .routes(routes!(crate::clinical::history))
        .routes(routes!(crate::documents::add, crate::documents::list))
        .routes(routes!(
            crate::documents::add_version,
            crate::documents::versions
        ))
        .routes(routes!(crate::documents::content))
        .routes(routes!(crate::pin::show))
        .routes(routes!(crate::pin::regenerate))
        .routes(routes!(crate::pin::unlock))
        .routes(routes!(crate::audit::practice_audit_events))
        .routes(routes!(crate::audit::patient_access_history))
        .routes(routes!(crate::audit::instance_audit_events))
}

/// The OpenAPI document, including the health routes served outside `/api/v1`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = api_routes().split_for_parts();
    let (_, health) = OpenApiRouter::<AppState>::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .split_for_parts();
    document.merge(health);
    env!("CARGO_PKG_VERSION").clone_into(&mut document.info.version);
    document
}

pub async fn openapi_json() -> impl IntoResponse {
    Json(openapi_document())
}

// ---- extractors -------------------------------------------------------------------------

/// The authenticated caller: the actor put into the request by the authentication
/// layer, with our request id and the client's address. Without an actor, the request is
/// refused with 401 before the handler runs.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = caller_of(parts, &state.settings) {
            return Ok(Self(caller));
        }
        Err(match parts.extensions.get::<crate::SessionProblem>() {
            Some(crate::SessionProblem::Locked) => ApiError::session_locked(),
            Some(crate::SessionProblem::SecondFactorRequired) => ApiError::second_factor_required(),
            Some(crate::SessionProblem::PasswordExpired) => ApiError::password_expired(),
            Some(crate::SessionProblem::DevicePending) => ApiError::device_pending(),
            Some(crate::SessionProblem::Invalid) | None => ApiError::unauthenticated(),
        })
    }
}

/// The caller allowed to change a password: signed in, or signed in with an expired
/// password (which may do nothing else).
pub struct PasswordChanger(pub Caller);

impl FromRequestParts<AppState> for PasswordChanger {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(crate::session::ExpiredPasswordActor(actor)) =
            parts
                .extensions
                .get::<crate::session::ExpiredPasswordActor>()
        {
            return Ok(Self(caller_as(parts, &state.settings, actor.clone())));
        }
        Authenticated::from_request_parts(parts, state)
            .await
            .map(|Authenticated(caller)| Self(caller))
    }
}

/// The caller of a request, if an actor was authenticated.
pub(crate) fn caller_of(parts: &Parts, settings: &crate::HttpSettings) -> Option<Caller> {
    let actor = parts.extensions.get::<Actor>()?.clone();
    Some(caller_as(parts, settings, actor))
}

/// The caller of a request: the authenticated actor, or an anonymous one (sign-in
/// attempts are audited as anonymous until they name an account).
pub(crate) fn caller_or_anonymous(parts: &Parts, settings: &crate::HttpSettings) -> Caller {
    caller_of(parts, settings).unwrap_or_else(|| caller_as(parts, settings, Actor::Anonymous))
}

/// `actor` with the request's id and client address.
fn caller_as(parts: &Parts, settings: &crate::HttpSettings, actor: Actor) -> Caller {
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let client_address = parts
        .extensions
        .get::<crate::ClientAddress>()
        .map(|peer| peer.resolve(&parts.headers, &settings.trusted_proxies));
    let certified_device = parts
        .extensions
        .get::<crate::CertifiedDevice>()
        .map(|device| device.0);
    Caller {
        actor,
        request_id,
        client_address,
        certified_device,
    }
}

/// A JSON body whose rejections speak the error envelope.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                    ApiError::from_status(rejection.status())
                }
                _ => ApiError::invalid_json(),
            }),
        }
    }
}

pub(crate) fn practice_id(text: &str) -> Result<PracticeId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid_id("practice_id"))
}

/// A UUID path parameter, or 400 naming it.
pub(crate) fn id_param(text: &str, field: &'static str) -> Result<uuid::Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::invalid_id(field))
}

pub(crate) fn member_id(text: &str) -> Result<MemberId, ApiError> {
    text.parse().map_err(|_| ApiError::invalid_id("member_id"))
}

// ---- health -----------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`, or `unavailable` with the failed checks.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_reachable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    migrations_current: Option<bool>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = HealthBody)))]
pub async fn healthz() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok",
        database_reachable: None,
        migrations_current: None,
    })
}

/// Readiness: the database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthBody),
        (status = 503, description = "Not ready", body = HealthBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.services.readiness().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthBody {
        status: if readiness.is_ready() {
            "ok"
        } else {
            "unavailable"
        },
        database_reachable: Some(readiness.database_reachable),
        migrations_current: Some(readiness.migrations_current),
    };
    (status, Json(body))
}

// ---- practices --------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePracticeRequest {
    /// 1 to 120 characters.
    name: String,
    /// Postal address, one line, up to 200 characters.
    address: String,
    /// `nurse`, `physician`, `dentist`, `physiotherapist` or `midwife`.
    profession: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PracticeBody {
    id: uuid::Uuid,
    name: String,
    address: String,
    profession: &'static str,
    /// The profession in French, for display.
    profession_label: &'static str,
    /// RFC 3339, UTC.
    created_at: String,
}

impl From<Practice> for PracticeBody {
    fn from(practice: Practice) -> Self {
        Self {
            id: *practice.id.as_uuid(),
            name: practice.name.into(),
            address: practice.address.into(),
            profession: practice.profession.as_str(),
            profession_label: practice.profession.label_fr(),
            created_at: practice.created_at.to_rfc3339(),
        }
    }
}

/// Every practice of the instance (platform administrators).
#[utoipa::path(get, path = "/api/v1/practices", tag = "practices",
    responses(
        (status = 200, body = [PracticeBody]),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
    ))]
pub async fn list_practices(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Vec<PracticeBody>>, ApiError> {
    let practices = state.services.list_practices(&caller).await?;
    Ok(Json(
        practices.into_iter().map(PracticeBody::from).collect(),
    ))
}

/// Creates a practice (platform administrators).
#[utoipa::path(post, path = "/api/v1/practices", tag = "practices",
    request_body = CreatePracticeRequest,
    responses(
        (status = 201, body = PracticeBody),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn create_practice(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<CreatePracticeRequest>,
) -> Result<(StatusCode, Json<PracticeBody>), ApiError> {
    let input = NewPracticeInput {
        name: request.name,
        address: request.address,
        profession: request.profession,
    };
    let practice = state.services.create_practice(&caller, &input).await?;
    Ok((StatusCode::CREATED, Json(practice.into())))
}

// ---- members ----------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    name: String,
    /// `holder`, `professional` or `staff`.
    role: String,
    /// French (10 digits) or international (`+` and 8 to 15 digits) number, for the
    /// activation code given by telephone.
    phone: String,
    /// `rpps` or `adeli`; inferred from the number's length when absent.
    #[serde(default)]
    professional_id_kind: Option<String>,
    /// Required for holders and professionals, refused for staff.
    #[serde(default)]
    professional_id_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfessionalIdBody {
    /// `rpps` or `adeli`.
    kind: &'static str,
    number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionBody {
    /// `validated` or `rejected`.
    status: &'static str,
    decided_by: uuid::Uuid,
    decided_at: String,
    reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberBody {
    id: uuid::Uuid,
    practice_id: uuid::Uuid,
    name: String,
    /// `holder`, `professional` or `staff`.
    role: &'static str,
    phone: String,
    professional_id: Option<ProfessionalIdBody>,
    /// `pending`, `validated` or `rejected`; only `validated` opens care records.
    professional_id_status: &'static str,
    /// The latest decision, when there is one.
    professional_id_decision: Option<DecisionBody>,
    created_at: String,
}

fn decision_body(state: &ProfessionalIdState) -> Option<DecisionBody> {
    match state {
        ProfessionalIdState::Pending => None,
        ProfessionalIdState::Decided {
            status,
            by,
            at,
            reason,
        } => Some(DecisionBody {
            status: status.as_str(),
            decided_by: *by.as_uuid(),
            decided_at: at.to_rfc3339(),
            reason: reason.clone(),
        }),
    }
}

impl From<Member> for MemberBody {
    fn from(member: Member) -> Self {
        Self {
            id: *member.id.as_uuid(),
            practice_id: *member.practice_id.as_uuid(),
            name: member.name.into(),
            role: member.role.as_str(),
            phone: member.phone.into(),
            professional_id: member
                .professional_id
                .as_ref()
                .map(|id| ProfessionalIdBody {
                    kind: id.kind(),
                    number: id.number().to_owned(),
                }),
            professional_id_status: member.professional_id_state.status().as_str(),
            professional_id_decision: decision_body(&member.professional_id_state),
            created_at: member.created_at.to_rfc3339(),
        }
    }
}

/// The members of a practice (its members and platform administrators).
#[utoipa::path(get, path = "/api/v1/practices/{practice_id}/members", tag = "practices",
    params(("practice_id" = uuid::Uuid, Path, description = "Practice id")),
    responses(
        (status = 200, body = [MemberBody]),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ))]
pub async fn list_members(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(practice): Path<String>,
) -> Result<Json<Vec<MemberBody>>, ApiError> {
    let scope = state
        .services
        .authorize(
            &caller,
            practice_id(&practice)?,
            PracticeAction::ViewMembers,
        )
        .await?;
    let members = state.services.list_members(&scope).await?;
    Ok(Json(members.into_iter().map(MemberBody::from).collect()))
}

/// Adds a member: platform administrators add the first holders, holders add anyone.
#[utoipa::path(post, path = "/api/v1/practices/{practice_id}/members", tag = "practices",
    params(("practice_id" = uuid::Uuid, Path, description = "Practice id")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, body = MemberBody),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn add_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    token: Option<crate::auth::Token>,
    Path(practice): Path<String>,
    ApiJson(request): ApiJson<AddMemberRequest>,
) -> Result<(StatusCode, Json<MemberBody>), ApiError> {
    crate::auth::require_recent_authentication(&state, &caller, token.as_ref()).await?;
    let scope = state
        .services
        .authorize(&caller, practice_id(&practice)?, PracticeAction::AddMember)
        .await?;
    let input = NewMemberInput {
        name: request.name,
        role: request.role,
        phone: request.phone,
        professional_id_kind: request.professional_id_kind,
        professional_id_number: request.professional_id_number,
    };
    let member = state.services.add_member(&scope, &input).await?;
    Ok((StatusCode::CREATED, Json(member.into())))
}

// ---- professional numbers ---------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `validate` or `reject`.
    decision: String,
    /// Why (e.g. "vérifié dans l'Annuaire Santé"), 1 to 500 characters.
    reason: String,
}

/// Decides on a member's professional number (platform administrators).
#[utoipa::path(post,
    path = "/api/v1/practices/{practice_id}/members/{member_id}/professional-id-decisions",
    tag = "practices",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("member_id" = uuid::Uuid, Path, description = "Member id"),
    ),
    request_body = DecisionRequest,
    responses(
        (status = 201, body = MemberBody),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
pub async fn decide_professional_id(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((practice, member)): Path<(String, String)>,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> Result<(StatusCode, Json<MemberBody>), ApiError> {
    let (practice_id, member_id) = (practice_id(&practice)?, member_id(&member)?);
    let decision = match request.decision.as_str() {
        "validate" => ProfessionalIdDecision::Validate,
        "reject" => ProfessionalIdDecision::Reject,
        _ => {
            return Err(ApiError {
                field: Some("decision"),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    "La décision doit être « validate » ou « reject ».",
                )
            });
        }
    };
    let scope = state
        .services
        .authorize(&caller, practice_id, PracticeAction::DecideProfessionalId)
        .await?;
    let member = state
        .services
        .decide_professional_id(&scope, member_id, decision, &request.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(member.into())))
}

/// The history of decisions on a member's professional number, oldest first.
#[utoipa::path(get,
    path = "/api/v1/practices/{practice_id}/members/{member_id}/professional-id-decisions",
    tag = "practices",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("member_id" = uuid::Uuid, Path, description = "Member id"),
    ),
    responses(
        (status = 200, body = [DecisionBody]),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ))]
pub async fn list_professional_id_decisions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((practice, member)): Path<(String, String)>,
) -> Result<Json<Vec<DecisionBody>>, ApiError> {
    let (practice_id, member_id) = (practice_id(&practice)?, member_id(&member)?);
    let scope = state
        .services
        .authorize(&caller, practice_id, PracticeAction::ViewMembers)
        .await?;
    let history = state
        .services
        .professional_id_history(&scope, member_id)
        .await?;
    Ok(Json(history.iter().filter_map(decision_body).collect()))
}
