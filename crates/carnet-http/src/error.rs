//! The one error shape of the API: `{"error": {"code": "snake_case", "message": "…"}}`.
//!
//! Codes are stable and listed here; messages are French, written for the person using
//! the application, and never contain internal error text or stored values.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use carnet_service::ServiceError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answered by the API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
}

/// The error envelope on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, snake_case: clients act on it.
    pub code: String,
    /// French, for people; never contains stored values.
    pub message: String,
    /// The input field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_required",
            "Connectez-vous pour accéder à cette ressource.",
        )
    }

    pub fn session_locked() -> Self {
        Self::new(
            StatusCode::LOCKED,
            "session_locked",
            "Session verrouillée après inactivité : saisissez votre mot de passe pour continuer.",
        )
    }

    pub fn password_expired() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "password_expired",
            "Votre mot de passe a expiré : changez-le pour continuer.",
        )
    }

    pub fn device_pending() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "device_pending",
            "Cet appareil attend l'approbation d'un titulaire du cabinet.",
        )
    }

    pub fn second_factor_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "second_factor_required",
            "Vérifiez votre second facteur pour continuer.",
        )
    }

    pub fn invalid_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Le corps de la requête n'est pas un JSON valide pour cette opération.",
        )
    }

    pub fn invalid_id(field: &'static str) -> Self {
        Self {
            field: Some(field),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                "L'identifiant dans l'adresse n'est pas valide.",
            )
        }
    }

    /// The error for a bare status produced by a layer (timeout, body limit, unknown
    /// route, wrong method, panic).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "Ressource introuvable."),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "Cette méthode n'est pas acceptée ici.",
            ),
            StatusCode::REQUEST_TIMEOUT => {
                ("timeout", "La requête a pris trop de temps ; réessayez.")
            }
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "Le contenu envoyé est trop volumineux.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "Le type de contenu n'est pas accepté (JSON attendu).",
            ),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                ("bad_request", "La requête n'est pas valide.")
            }
            StatusCode::UNAUTHORIZED => (
                "authentication_required",
                "Connectez-vous pour accéder à cette ressource.",
            ),
            StatusCode::FORBIDDEN => ("forbidden", "Vous n'avez pas accès à cette ressource."),
            StatusCode::SERVICE_UNAVAILABLE => {
                ("unavailable", "Le service est momentanément indisponible.")
            }
            status if status.is_server_error() => (
                "internal_error",
                "Une erreur interne est survenue ; elle a été enregistrée.",
            ),
            _ => ("error", "La requête n'a pas pu aboutir."),
        };
        Self::new(status, code, message)
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message.clone(),
                field: self.field.map(str::to_owned),
            },
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let status = match &error {
            ServiceError::Forbidden | ServiceError::AccountLocked | ServiceError::PinRequired => {
                StatusCode::FORBIDDEN
            }
            ServiceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Integrity => {
                tracing::error!("a sealed value failed to open (integrity failure, audited)");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ServiceError::NotFound => StatusCode::NOT_FOUND,
            ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Conflict => StatusCode::CONFLICT,
            ServiceError::Unavailable(source) => {
                // Logged once, here at the boundary; the source names no stored value.
                tracing::error!(error = %source, "storage unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Randomness => {
                tracing::error!("random source failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Authentication { .. } => StatusCode::UNAUTHORIZED,
            ServiceError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        };
        let field = match &error {
            ServiceError::Invalid { field, .. } => Some(*field),
            _ => None,
        };
        Self {
            status,
            code: error.code(),
            message: error.to_string(),
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.envelope())).into_response()
    }
}
