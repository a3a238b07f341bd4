//! Passkeys and the first administrator's setup on the JSON API. The browser pages call
//! these from `carnet.js` (WebAuthn needs a script); the options and answers are the
//! WebAuthn JSON forms (`PublicKeyCredential.parse…OptionsFromJSON`, `toJSON()`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use carnet_service::{PasskeyChallenge, PasskeyRegistered, PasskeySignedIn};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{ApiJson, Authenticated};
use crate::auth::{AnyCaller, Token};
use crate::error::ErrorEnvelope;
use crate::session::session_cookie_header;
use crate::{ApiError, AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyBody {
    /// To send back with the browser's answer (single use, five minutes).
    ceremony: String,
    /// WebAuthn options, JSON form (`{"publicKey": …}`).
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

impl From<PasskeyChallenge> for CeremonyBody {
    fn from(challenge: PasskeyChallenge) -> Self {
        Self {
            ceremony: challenge.ceremony,
            options: challenge.options,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyNameRequest {
    /// What the person calls it ("Téléphone d'Anne"), 1 to 60 characters.
    name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CeremonyAnswer {
    ceremony: String,
    /// The credential, as `PublicKeyCredential.toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredBody {
    /// When the passkey was the account's first second factor: 10 single-use recovery
    /// codes, shown once.
    recovery_codes: Option<Vec<String>>,
}

/// Starts registering a passkey: the account's first second factor (password session),
/// or one more (signed in, authenticated in the last five minutes).
#[utoipa::path(post, path = "/api/v1/auth/passkeys/registration", tag = "auth",
    request_body = PasskeyNameRequest,
    responses(
        (status = 200, body = CeremonyBody),
        (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn start_registration(
    State(state): State<AppState>,
    Token(token): Token,
    ApiJson(request): ApiJson<PasskeyNameRequest>,
) -> Result<Json<CeremonyBody>, ApiError> {
    let challenge = state
        .services
        .start_passkey_registration(&token, &request.name)
        .await?;
    Ok(Json(challenge.into()))
}

/// Finishes registering a passkey; every other session of the account is revoked.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/registration/finish", tag = "auth",
    request_body = CeremonyAnswer,
    responses(
        (status = 201, body = RegisteredBody),
        (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn finish_registration(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    Token(token): Token,
    ApiJson(answer): ApiJson<CeremonyAnswer>,
) -> Result<(StatusCode, Json<RegisteredBody>), ApiError> {
    let registered = state
        .services
        .finish_passkey_registration(
            &caller,
            &token,
            &answer.ceremony,
            &answer.credential.to_string(),
        )
        .await?;
    let recovery_codes = match registered {
        PasskeyRegistered::Added => None,
        PasskeyRegistered::Enrolled { recovery_codes } => Some(recovery_codes),
    };
    Ok((StatusCode::CREATED, Json(RegisteredBody { recovery_codes })))
}

/// Starts a passkey sign-in: with the passkey alone (no session), or as the second factor
/// of a password session.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/sign-in", tag = "auth",
    responses(
        (status = 200, body = CeremonyBody),
        (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn start_sign_in(
    State(state): State<AppState>,
    token: Option<Token>,
) -> Result<Json<CeremonyBody>, ApiError> {
    let challenge = state
        .services
        .start_passkey_sign_in(token.as_ref().map(|Token(token)| token.as_str()))
        .await?;
    Ok(Json(challenge.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeySignInBody {
    /// True when a new session was opened (its cookie is set).
    new_session: bool,
}

/// Finishes a passkey sign-in: a new session (cookie set), or the second factor of the
/// presented session. Not subject to the password lockout.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/sign-in/finish", tag = "auth",
    request_body = CeremonyAnswer,
    responses(
        (status = 200, body = PasskeySignInBody, description = "May set the session cookie"),
        (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn finish_sign_in(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    token: Option<Token>,
    headers: axum::http::HeaderMap,
    ApiJson(answer): ApiJson<CeremonyAnswer>,
) -> Result<Response, ApiError> {
    let done = state
        .services
        .finish_passkey_sign_in(
            &caller,
            token.as_ref().map(|Token(token)| token.as_str()),
            &answer.ceremony,
            &answer.credential.to_string(),
        )
        .await?;
    Ok(match done {
        PasskeySignedIn::NewSession(issued) => {
            let response = (
                [(
                    header::SET_COOKIE,
                    session_cookie_header(issued.token.expose()),
                )],
                Json(PasskeySignInBody { new_session: true }),
            )
                .into_response();
            crate::devices::after_sign_in(
                &state,
                &headers,
                "/api/",
                &caller,
                issued.token.expose(),
                response,
            )
            .await
        }
        PasskeySignedIn::SecondFactorVerified => {
            Json(PasskeySignInBody { new_session: false }).into_response()
        }
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyBody {
    id: String,
    name: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339, if ever used.
    last_used_at: Option<String>,
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/api/v1/auth/passkeys", tag = "auth",
    responses(
        (status = 200, body = Vec<PasskeyBody>),
        (status = 401, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    Token(token): Token,
) -> Result<Json<Vec<PasskeyBody>>, ApiError> {
    let passkeys = state.services.my_passkeys(&token).await?;
    Ok(Json(
        passkeys
            .into_iter()
            .map(|passkey| PasskeyBody {
                id: passkey.id.to_string(),
                name: passkey.name,
                created_at: passkey.created_at.to_rfc3339(),
                last_used_at: passkey
                    .last_used_at
                    .map(carnet_domain::Timestamp::to_rfc3339),
            })
            .collect(),
    ))
}

fn passkey_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::invalid_id("passkey_id"))
}

/// Renames one of the caller's passkeys.
#[utoipa::path(patch, path = "/api/v1/auth/passkeys/{passkey_id}", tag = "auth",
    params(("passkey_id" = uuid::Uuid, Path, description = "Passkey id")),
    request_body = PasskeyNameRequest,
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn rename(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<PasskeyNameRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .rename_passkey(&caller, &token, passkey_id(&id)?, &request.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one of the caller's passkeys (authenticated in the last five minutes); every
/// other session is revoked. An administrator's last passkey stays.
#[utoipa::path(delete, path = "/api/v1/auth/passkeys/{passkey_id}", tag = "auth",
    params(("passkey_id" = uuid::Uuid, Path, description = "Passkey id")),
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .remove_passkey(&caller, &token, passkey_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The secret part of the setup link printed by `carnet serve` / `carnet admin bootstrap`.
    link: String,
    name: String,
    /// An e-mail address.
    login: String,
    password: String,
}

/// Creates the first platform administrator from a setup link; opens a session whose
/// second factor (a passkey) must be registered next.
#[utoipa::path(post, path = "/api/v1/setup", tag = "auth",
    request_body = SetupRequest,
    responses(
        (status = 201, body = crate::auth::SignInBody, description = "Sets the session cookie"),
        (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn setup(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    headers: axum::http::HeaderMap,
    ApiJson(request): ApiJson<SetupRequest>,
) -> Result<Response, ApiError> {
    let issued = state
        .services
        .complete_setup(
            &caller,
            &request.link,
            &request.name,
            &request.login,
            &request.password,
        )
        .await?;
    let response = crate::auth::signed_in(StatusCode::CREATED, &issued);
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
