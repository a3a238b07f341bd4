//! The practice PIN on the wire: holders see and regenerate it; members type it to unlock
//! the care records for their session. JSON API and French pages.

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{ApiJson, Authenticated};
use crate::auth::Token;
use crate::error::ErrorEnvelope;
use crate::pages_auth::{FormPage, SignedIn, field, render, with_error};
use crate::session::clear_session_cookie;
use crate::{ApiError, AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct PinBody {
    /// The 4-character practice PIN.
    pin: String,
    /// Its version (a new one replaces the old at once).
    version: i64,
}

/// The practice PIN (holders, authenticated in the last five minutes, approved device).
#[utoipa::path(get, path = "/api/v1/auth/pin", tag = "pin",
    responses(
        (status = 200, body = PinBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 423, body = ErrorEnvelope),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
) -> Result<Json<PinBody>, ApiError> {
    let pin = state.services.show_practice_pin(&caller, &token).await?;
    Ok(Json(PinBody {
        pin: pin.pin.to_string(),
        version: pin.version,
    }))
}

/// Draws a new practice PIN (holders): the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/pin/regenerate", tag = "pin",
    responses(
        (status = 200, body = PinBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 423, body = ErrorEnvelope),
    ))]
pub async fn regenerate(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
) -> Result<Json<PinBody>, ApiError> {
    let pin = state
        .services
        .regenerate_practice_pin(&caller, &token)
        .await?;
    Ok(Json(PinBody {
        pin: pin.pin.to_string(),
        version: pin.version,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    pin: String,
}

/// Unlocks the care records for this session with the practice PIN. The third wrong PIN
/// ends the session (and alerts the holders).
#[utoipa::path(post, path = "/api/v1/auth/pin/unlock", tag = "pin",
    request_body = PinRequest,
    responses(
        (status = 204), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 423, body = ErrorEnvelope),
    ))]
pub async fn unlock(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    ApiJson(request): ApiJson<PinRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .enter_pin(&caller, &token, &request.pin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- pages ----------------------------------------------------------------------------------

fn prompt_page() -> FormPage {
    let mut page = FormPage::new(
        "Code PIN du cabinet",
        "/code-pin",
        vec![field("pin", "Code PIN (4 caractères)", "text", "off")],
        "Déverrouiller les dossiers",
    );
    page.intro = "Les dossiers de soins s'ouvrent avec le code PIN du cabinet, que vous donne un titulaire. Après trois erreurs, votre session est fermée.".into();
    page.footer_link = "/espace";
    page.footer_text = "Retour à mon espace";
    page
}

pub async fn prompt(_signed_in: SignedIn) -> Response {
    render(&prompt_page(), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct PinForm {
    pin: String,
}

pub async fn prompt_submit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<PinForm>,
) -> Response {
    match state
        .services
        .enter_pin(&signed_in.caller, &signed_in.token, &form.pin)
        .await
    {
        Ok(()) => Redirect::to("/espace").into_response(),
        Err(error) => {
            let ended = state
                .services
                .care_records_unlocked(&signed_in.token)
                .await
                .is_err();
            let mut response = with_error(prompt_page(), &error);
            if ended {
                response
                    .headers_mut()
                    .insert(axum::http::header::SET_COOKIE, clear_session_cookie());
            }
            response
        }
    }
}

/// The holders' page: the PIN, and a button to draw a new one.
pub async fn holder_page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    pin_page(
        state
            .services
            .show_practice_pin(&signed_in.caller, &signed_in.token)
            .await,
    )
}

pub async fn holder_regenerate(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    pin_page(
        state
            .services
            .regenerate_practice_pin(&signed_in.caller, &signed_in.token)
            .await,
    )
}

fn pin_page(shown: Result<carnet_service::PracticePin, carnet_service::ServiceError>) -> Response {
    let mut page = FormPage::new(
        "Code PIN du cabinet",
        "/cabinet/code-pin",
        Vec::new(),
        "Tirer un nouveau code",
    );
    page.footer_link = "/espace";
    page.footer_text = "Retour à mon espace";
    match shown {
        Ok(pin) => {
            page.intro = "Donnez ce code aux membres du cabinet, de vive voix. Tirer un nouveau code rend l'ancien inutilisable aussitôt.".into();
            page.secret = pin.pin.to_string();
            page.bare_form = true;
            render(&page, StatusCode::OK)
        }
        Err(carnet_service::ServiceError::Forbidden) => crate::pages::message_page(
            StatusCode::FORBIDDEN,
            "Réservé aux titulaires",
            "Seuls les titulaires du cabinet voient le code PIN, depuis un appareil approuvé.",
        ),
        Err(error) => {
            // Not authenticated recently enough (or unavailable): confirm with the password.
            let mut confirm = FormPage::new(
                "Code PIN du cabinet",
                "/deverrouiller?retour=/cabinet/code-pin",
                vec![field(
                    "password",
                    "Mot de passe",
                    "password",
                    "current-password",
                )],
                "Confirmer mon identité",
            );
            confirm.intro = "Pour voir le code PIN, confirmez votre identité.".into();
            confirm.footer_link = "/espace";
            confirm.footer_text = "Retour à mon espace";
            with_error(confirm, &error)
        }
    }
}
