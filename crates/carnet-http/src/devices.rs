//! Registered devices on the wire: binding a new session to the browser's device cookie,
//! the JSON API to list, approve, block, delete and rename devices, and the French pages
//! "Mes appareils" and "Appareils du cabinet".

use askama::Template;
use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use carnet_service::{Caller, DeviceDecision, DeviceSummary};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{ApiJson, Authenticated};
use crate::auth::Token;
use crate::error::ErrorEnvelope;
use crate::pages_auth::{SignedIn, idle_seconds, render};
use crate::session::{blocked_device_response, device_cookie, device_cookie_header};
use crate::{ApiError, AppState};

/// After a sign-in opened the session `token`: binds it to this browser's device (a new
/// one if the browser has no device cookie). Returns the device cookie to set, or the
/// blocked-device answer (the new session is already ended).
async fn bind_device(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    caller: &Caller,
    token: &str,
) -> Result<Option<HeaderValue>, Response> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let presented = device_cookie(headers);
    match state
        .services
        .bind_device(caller, token, presented.as_deref(), user_agent)
        .await
    {
        Ok(binding) if binding.standing == carnet_service::DeviceStanding::Blocked => {
            Err(blocked_device_response(path))
        }
        Ok(binding) => Ok(binding
            .new_secret
            .and_then(|secret| device_cookie_header(secret.expose()))),
        Err(error) => Err(ApiError::from(error).into_response()),
    }
}

/// Completes a sign-in answer: binds the new session of `token` to the device and adds
/// the device cookie (new device) to `response` — or answers that the device is blocked.
pub(crate) async fn after_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    caller: &Caller,
    token: &str,
    mut response: Response,
) -> Response {
    match bind_device(state, headers, path, caller, token).await {
        Ok(cookie) => {
            if let Some(cookie) = cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(refused) => refused,
    }
}

// ---- API ------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceBody {
    device_id: String,
    account_id: String,
    login: String,
    name: String,
    browser: String,
    /// "approved", "pending" or "blocked".
    state: &'static str,
    /// RFC 3339.
    created_at: String,
    last_seen_at: String,
    /// The device of this session.
    current: bool,
}

fn body(device: DeviceSummary) -> DeviceBody {
    DeviceBody {
        device_id: device.device_id.to_string(),
        account_id: device.account_id.to_string(),
        login: device.login,
        name: device.name,
        browser: device.browser,
        state: match device.standing {
            carnet_service::DeviceStanding::Approved => "approved",
            carnet_service::DeviceStanding::Pending => "pending",
            carnet_service::DeviceStanding::Blocked => "blocked",
        },
        created_at: device.created_at.to_rfc3339(),
        last_seen_at: device.last_seen_at.to_rfc3339(),
        current: device.current,
    }
}

/// The caller's devices.
#[utoipa::path(get, path = "/api/v1/auth/devices", tag = "devices",
    responses(
        (status = 200, body = Vec<DeviceBody>),
        (status = 401, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn list_mine(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    Token(token): Token,
) -> Result<Json<Vec<DeviceBody>>, ApiError> {
    let devices = state.services.my_devices(&token).await?;
    Ok(Json(devices.into_iter().map(body).collect()))
}

/// The devices of every member of the caller's practice (holders).
#[utoipa::path(get, path = "/api/v1/auth/practice-devices", tag = "devices",
    responses(
        (status = 200, body = Vec<DeviceBody>),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 423, body = ErrorEnvelope),
    ))]
pub async fn list_practice(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    Token(token): Token,
) -> Result<Json<Vec<DeviceBody>>, ApiError> {
    let devices = state.services.practice_devices(&token).await?;
    Ok(Json(devices.into_iter().map(body).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// "approve", "block" or "delete" (blocked devices only).
    decision: String,
}

fn decision_of(text: &str) -> Result<DeviceDecision, ApiError> {
    match text {
        "approve" => Ok(DeviceDecision::Approve),
        "block" => Ok(DeviceDecision::Block),
        "delete" => Ok(DeviceDecision::Delete),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "La décision doit être approve, block ou delete.",
        )),
    }
}

fn ids(device: &str, account: &str) -> Result<(uuid::Uuid, uuid::Uuid), ApiError> {
    Ok((
        device
            .parse()
            .map_err(|_| ApiError::invalid_id("device_id"))?,
        account
            .parse()
            .map_err(|_| ApiError::invalid_id("account_id"))?,
    ))
}

/// Approves, blocks or deletes a device of the caller, or (holders) of the practice.
/// Blocking ends the device's sessions at once.
#[utoipa::path(post, path = "/api/v1/auth/devices/{device_id}/{account_id}/decision",
    tag = "devices",
    params(
        ("device_id" = uuid::Uuid, Path, description = "Device id"),
        ("account_id" = uuid::Uuid, Path, description = "Account using the device"),
    ),
    request_body = DecisionRequest,
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn decide(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    Path((device, account)): Path<(String, String)>,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> Result<StatusCode, ApiError> {
    let (device_id, account_id) = ids(&device, &account)?;
    state
        .services
        .decide_device(
            &caller,
            &token,
            device_id,
            account_id,
            decision_of(&request.decision)?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceNameRequest {
    /// 1 to 60 characters ("Poste accueil").
    name: String,
}

/// Renames a device of the caller, or (holders) of the practice.
#[utoipa::path(patch, path = "/api/v1/auth/devices/{device_id}/{account_id}", tag = "devices",
    params(
        ("device_id" = uuid::Uuid, Path, description = "Device id"),
        ("account_id" = uuid::Uuid, Path, description = "Account using the device"),
    ),
    request_body = DeviceNameRequest,
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 423, body = ErrorEnvelope),
    ))]
pub async fn rename(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    Path((device, account)): Path<(String, String)>,
    ApiJson(request): ApiJson<DeviceNameRequest>,
) -> Result<StatusCode, ApiError> {
    let (device_id, account_id) = ids(&device, &account)?;
    state
        .services
        .rename_device(&caller, &token, device_id, account_id, &request.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- pages ----------------------------------------------------------------------------------

#[expect(
    clippy::struct_excessive_bools,
    reason = "a template row: each flag shows one button"
)]
struct DeviceRow {
    device_id: String,
    account_id: String,
    login: String,
    name: String,
    browser: String,
    state: &'static str,
    last_seen_at: String,
    current: bool,
    approvable: bool,
    blockable: bool,
    deletable: bool,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    title: &'static str,
    practice: bool,
    error: String,
    devices: Vec<DeviceRow>,
    notices: Vec<String>,
    back: &'static str,
    blur_seconds: u64,
    lock_seconds: u64,
}

fn row(device: DeviceSummary) -> DeviceRow {
    use carnet_service::DeviceStanding::{Approved, Blocked, Pending};
    DeviceRow {
        device_id: device.device_id.to_string(),
        account_id: device.account_id.to_string(),
        login: device.login,
        name: device.name,
        browser: device.browser,
        state: device.standing.label_fr(),
        last_seen_at: device.last_seen_at.to_french_text(),
        current: device.current,
        approvable: device.standing == Pending,
        blockable: matches!(device.standing, Pending | Approved),
        deletable: device.standing == Blocked,
    }
}

async fn devices_page(
    state: &AppState,
    signed_in: &SignedIn,
    practice: bool,
    error: String,
) -> Response {
    let (blur_seconds, lock_seconds) = idle_seconds(state);
    let listed = if practice {
        state.services.practice_devices(&signed_in.token).await
    } else {
        state.services.my_devices(&signed_in.token).await
    };
    let notices = crate::pages_auth::notice_lines(state, &signed_in.token).await;
    match listed {
        Ok(list) => render(
            &DevicesPage {
                title: if practice {
                    "Appareils du cabinet"
                } else {
                    "Mes appareils"
                },
                practice,
                error,
                devices: list.into_iter().map(row).collect(),
                notices,
                back: "/espace",
                blur_seconds,
                lock_seconds,
            },
            StatusCode::OK,
        ),
        Err(error) => crate::pages::message_page(
            ApiError::from(error).status,
            "Appareils indisponibles",
            "Cette liste n'est pas disponible pour votre compte.",
        ),
    }
}

pub async fn my_devices_page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    devices_page(&state, &signed_in, false, String::new()).await
}

pub async fn practice_devices_page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    devices_page(&state, &signed_in, true, String::new()).await
}

#[derive(Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    name: String,
    /// Where to come back: "cabinet" for the practice's list.
    #[serde(default)]
    liste: String,
}

/// POST /appareils/{device}/{account}/{action}: approuver, bloquer, supprimer, renommer.
pub async fn act(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((device, account, action)): Path<(String, String, String)>,
    Form(form): Form<DeviceForm>,
) -> Response {
    let practice = form.liste == "cabinet";
    let back = if practice {
        "/appareils/cabinet"
    } else {
        "/appareils"
    };
    let Ok((device_id, account_id)) = ids(&device, &account) else {
        return devices_page(&state, &signed_in, practice, "Appareil inconnu.".into()).await;
    };
    let done = match action.as_str() {
        "renommer" => {
            state
                .services
                .rename_device(
                    &signed_in.caller,
                    &signed_in.token,
                    device_id,
                    account_id,
                    &form.name,
                )
                .await
        }
        other => {
            let decision = match other {
                "approuver" => DeviceDecision::Approve,
                "bloquer" => DeviceDecision::Block,
                "supprimer" => DeviceDecision::Delete,
                _ => {
                    return devices_page(&state, &signed_in, practice, "Action inconnue.".into())
                        .await;
                }
            };
            state
                .services
                .decide_device(
                    &signed_in.caller,
                    &signed_in.token,
                    device_id,
                    account_id,
                    decision,
                )
                .await
        }
    };
    match done {
        Ok(()) => Redirect::to(back).into_response(),
        Err(error) => devices_page(&state, &signed_in, practice, error.to_string()).await,
    }
}
