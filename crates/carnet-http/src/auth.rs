//! Activation, sign-in, second factor and sessions on the JSON API. The session token
//! only ever travels in the `__Host-` cookie; response bodies never contain it.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use carnet_service::{Actor, Caller, PracticeAction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{ApiJson, Authenticated, caller_or_anonymous, member_id, practice_id};
use crate::error::ErrorEnvelope;
use crate::session::{SessionToken, clear_session_cookie, session_cookie_header};
use crate::{ApiError, AppState};

/// Who is asking, signed in or not (for sign-in attempts, audited as anonymous).
pub struct AnyCaller(pub Caller);

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(caller_or_anonymous(parts, &state.settings)))
    }
}

/// The request's session, as the session layer found it active (the records
/// capabilities are asked with it); without one, 401.
pub struct Active(pub carnet_service::ActiveSession);

impl<S: Send + Sync> FromRequestParts<S> for Active {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<carnet_service::ActiveSession>()
            .map(|active| Self(active.clone()))
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// The session cookie's token; without one, 401.
pub struct Token(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SessionToken>()
            .map(|token| Self(token.0.clone()))
            .ok_or_else(ApiError::unauthenticated)
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Token {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<SessionToken>()
            .map(|token| Self(token.0.clone())))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignInBody {
    /// The second factor must be checked next (`/api/v1/auth/totp`).
    second_factor_required: bool,
    /// No second factor yet: enrol one first (`/api/v1/auth/totp/enrolment`).
    needs_enrolment: bool,
}

pub(crate) fn signed_in(status: StatusCode, issued: &carnet_service::IssuedSession) -> Response {
    (
        status,
        [(
            header::SET_COOKIE,
            session_cookie_header(issued.token.expose()),
        )],
        Json(SignInBody {
            second_factor_required: true,
            needs_enrolment: issued.needs_enrolment,
        }),
    )
        .into_response()
}

/// Members and platform administrators signed in with a session must have authenticated
/// (password, unlock, second factor) in the last five minutes before sensitive actions:
/// creating members, issuing activation codes, unlocking accounts.
pub(crate) async fn require_recent_authentication(
    state: &AppState,
    caller: &Caller,
    token: Option<&Token>,
) -> Result<(), ApiError> {
    if let (Actor::Member { .. } | Actor::PlatformAdmin(_), Some(Token(token))) =
        (&caller.actor, token)
        && !state.services.recently_authenticated(token).await?
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "reauthentication_required",
            "Pour cette action, confirmez votre identité (mot de passe) : la dernière date de plus de 5 minutes.",
        ));
    }
    Ok(())
}

// ---- activation codes -------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationCodeBody {
    /// To be given to the member by telephone; shown only this once.
    code: String,
    /// RFC 3339: the code is dead after this (72 hours), after use or after 5 wrong tries.
    expires_at: String,
}

/// Issues a member's activation code (holders; the platform side for holders).
/// A member issuing it must have re-authenticated in the last 5 minutes.
#[utoipa::path(post,
    path = "/api/v1/practices/{practice_id}/members/{member_id}/activation-code",
    tag = "auth",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("member_id" = uuid::Uuid, Path, description = "Member id"),
    ),
    responses(
        (status = 201, body = ActivationCodeBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn issue_activation_code(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    token: Option<Token>,
    Path((practice, member)): Path<(String, String)>,
) -> Result<(StatusCode, Json<ActivationCodeBody>), ApiError> {
    let (practice_id, member_id) = (practice_id(&practice)?, member_id(&member)?);
    require_recent_authentication(&state, &caller, token.as_ref()).await?;
    let scope = state
        .services
        .authorize(&caller, practice_id, PracticeAction::AddMember)
        .await?;
    let (code, expires_at) = state
        .services
        .issue_activation_code(&scope, member_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ActivationCodeBody {
            code,
            expires_at: expires_at.to_rfc3339(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The code given by telephone, e.g. `BCDF-2345-GHJK` (case and dashes ignored).
    code: String,
    /// The login to sign in with: an e-mail address.
    login: String,
    /// At least 12 characters with upper case, lower case, digit and special character.
    password: String,
}

/// Activates an account with its code; opens a session whose second factor is due.
#[utoipa::path(post, path = "/api/v1/auth/activate", tag = "auth",
    request_body = ActivateRequest,
    responses(
        (status = 201, body = SignInBody, description = "Sets the session cookie"),
        (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn activate(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    headers: axum::http::HeaderMap,
    ApiJson(request): ApiJson<ActivateRequest>,
) -> Result<Response, ApiError> {
    let issued = state
        .services
        .activate(&caller, &request.code, &request.login, &request.password)
        .await?;
    let response = signed_in(StatusCode::CREATED, &issued);
    Ok(crate::devices::after_sign_in(
        &state,
        &headers,
        "/api/",
        &caller,
        issued.token.expose(),
        response,
    )
    .await)
}

// ---- sign-in -------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    login: String,
    password: String,
}

/// Checks login and password; opens a session whose second factor is due.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = SignInBody, description = "Sets the session cookie"),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope),
    ))]
pub async fn login(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    headers: axum::http::HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let issued = state
        .services
        .login(&caller, &request.login, &request.password)
        .await?;
    let response = signed_in(StatusCode::OK, &issued);
    Ok(crate::devices::after_sign_in(
        &state,
        &headers,
        "/api/",
        &caller,
        issued.token.expose(),
        response,
    )
    .await)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentBody {
    /// Base32 secret for manual entry in an authenticator app.
    secret: String,
    /// `otpauth://` URI (for a QR code).
    uri: String,
}

/// Starts the TOTP enrolment of the session's account (second factor still due).
#[utoipa::path(post, path = "/api/v1/auth/totp/enrolment", tag = "auth",
    responses(
        (status = 200, body = EnrolmentBody),
        (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn start_totp_enrolment(
    State(state): State<AppState>,
    Token(token): Token,
) -> Result<Json<EnrolmentBody>, ApiError> {
    let enrolment = state.services.start_totp_enrolment(&token).await?;
    Ok(Json(EnrolmentBody {
        secret: enrolment.secret_base32,
        uri: enrolment.uri,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorBody {
    /// At the first successful code only: 10 single-use recovery codes, shown once.
    recovery_codes: Option<Vec<String>>,
}

/// Checks a TOTP code: completes the sign-in (and the enrolment, the first time).
#[utoipa::path(post, path = "/api/v1/auth/totp", tag = "auth",
    request_body = CodeRequest,
    responses(
        (status = 200, body = SecondFactorBody),
        (status = 401, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope),
    ))]
pub async fn verify_totp(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    Token(token): Token,
    ApiJson(request): ApiJson<CodeRequest>,
) -> Result<Json<SecondFactorBody>, ApiError> {
    let recovery_codes = state
        .services
        .verify_totp(&caller, &token, &request.code)
        .await?;
    Ok(Json(SecondFactorBody { recovery_codes }))
}

/// Completes the sign-in with a single-use recovery code.
#[utoipa::path(post, path = "/api/v1/auth/recovery", tag = "auth",
    request_body = CodeRequest,
    responses((status = 204), (status = 401, body = ErrorEnvelope)))]
pub async fn use_recovery_code(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    Token(token): Token,
    ApiJson(request): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .use_recovery_code(&caller, &token, &request.code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    password: String,
}

/// Unlocks an idle-locked session with the password.
#[utoipa::path(post, path = "/api/v1/auth/unlock", tag = "auth",
    request_body = PasswordRequest,
    responses((status = 204), (status = 401, body = ErrorEnvelope)))]
pub async fn unlock(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    Token(token): Token,
    ApiJson(request): ApiJson<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .unlock_session(&caller, &token, &request.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the current session and clears its cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorEnvelope)))]
pub async fn logout(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    Token(token): Token,
) -> Result<Response, ApiError> {
    state.services.logout(&caller, &token).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_session_cookie())],
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    id: uuid::Uuid,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    /// The session this request came with.
    current: bool,
    revoked: bool,
}

/// The caller's sessions, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    responses(
        (status = 200, body = [SessionBody]),
        (status = 401, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn my_sessions(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    Token(token): Token,
) -> Result<Json<Vec<SessionBody>>, ApiError> {
    let sessions = state.services.my_sessions(&token).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|session| SessionBody {
                id: session.id,
                created_at: session.created_at.to_rfc3339(),
                last_seen_at: session.last_seen_at.to_rfc3339(),
                expires_at: session.expires_at.to_rfc3339(),
                current: session.current,
                revoked: session.revoked,
            })
            .collect(),
    ))
}

/// Revokes one of the caller's sessions: it is refused on its very next request.
#[utoipa::path(post, path = "/api/v1/auth/sessions/{session_id}/revoke", tag = "auth",
    params(("session_id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    Path(session): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session_id: uuid::Uuid = session
        .parse()
        .map_err(|_| ApiError::invalid_id("session_id"))?;
    state
        .services
        .revoke_my_session(&caller, &token, session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// Changes the password; every other session is revoked.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    crate::api::PasswordChanger(caller): crate::api::PasswordChanger,
    Token(token): Token,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .change_password(
            &caller,
            &token,
            &request.current_password,
            &request.new_password,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts the password lockout of a member's account (holders; fresh authentication).
#[utoipa::path(post,
    path = "/api/v1/practices/{practice_id}/members/{member_id}/unlock",
    tag = "auth",
    params(
        ("practice_id" = uuid::Uuid, Path, description = "Practice id"),
        ("member_id" = uuid::Uuid, Path, description = "Member id"),
    ),
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn unlock_member_account(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    token: Option<Token>,
    Path((practice, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (practice_id, member_id) = (practice_id(&practice)?, member_id(&member)?);
    require_recent_authentication(&state, &caller, token.as_ref()).await?;
    let scope = state
        .services
        .authorize(&caller, practice_id, PracticeAction::AddMember)
        .await?;
    state
        .services
        .unlock_member_account(&scope, member_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts replacing the TOTP second factor (signed in, fresh authentication).
#[utoipa::path(post, path = "/api/v1/auth/totp/replacement", tag = "auth",
    responses(
        (status = 200, body = EnrolmentBody),
        (status = 401, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn start_totp_replacement(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    Token(token): Token,
) -> Result<Json<EnrolmentBody>, ApiError> {
    let enrolment = state.services.start_totp_replacement(&token).await?;
    Ok(Json(EnrolmentBody {
        secret: enrolment.secret_base32,
        uri: enrolment.uri,
    }))
}

/// Confirms the replacement with a code from the new secret: new recovery codes (shown
/// once), every other session revoked.
#[utoipa::path(post, path = "/api/v1/auth/totp/replacement/confirm", tag = "auth",
    request_body = CodeRequest,
    responses(
        (status = 200, body = SecondFactorBody),
        (status = 401, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn confirm_totp_replacement(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    ApiJson(request): ApiJson<CodeRequest>,
) -> Result<Json<SecondFactorBody>, ApiError> {
    let codes = state
        .services
        .confirm_totp_replacement(&caller, &token, &request.code)
        .await?;
    Ok(Json(SecondFactorBody {
        recovery_codes: Some(codes),
    }))
}
