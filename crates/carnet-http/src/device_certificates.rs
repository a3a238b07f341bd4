//! Device certificates on the wire (ADR 0008): a signed-in client on a new device sends
//! its signing request; once a holder approved the device, the client picks its
//! certificate up with its device secret and authenticates the device by mutual TLS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use carnet_service::{CertificatePickup, CertificateStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{ApiJson, Authenticated};
use crate::auth::Token;
use crate::error::ErrorEnvelope;
use crate::session::device_cookie;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// A PKCS#10 signing request in PEM (ECDSA P-256 or P-384, or Ed25519).
    request: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateBody {
    /// "pending" (waiting for a holder's approval), "issued" or "revoked".
    state: &'static str,
    /// The device's certificate (PEM), once issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    /// The device authority's certificate (PEM), when picked up.
    #[serde(skip_serializing_if = "Option::is_none")]
    authority: Option<String>,
}

fn body(status: CertificateStatus, authority: Option<String>) -> CertificateBody {
    let (state, certificate) = match status {
        CertificateStatus::Pending => ("pending", None),
        CertificateStatus::Issued { certificate_pem } => ("issued", Some(certificate_pem)),
        CertificateStatus::Revoked => ("revoked", None),
    };
    CertificateBody {
        state,
        certificate,
        authority,
    }
}

/// Asks for a certificate for the key of this session's device. The device must still
/// be waiting for approval: the certificate is issued when a holder approves it.
#[utoipa::path(post, path = "/api/v1/auth/device-certificate", tag = "devices",
    request_body = CertificateRequest,
    responses(
        (status = 202, body = CertificateBody),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
pub async fn request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Token(token): Token,
    ApiJson(request): ApiJson<CertificateRequest>,
) -> Result<(StatusCode, Json<CertificateBody>), ApiError> {
    let status = state
        .services
        .request_device_certificate(&caller, &token, &request.request)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(body(status, None))))
}

/// The certificate of the device named by the device cookie (no session needed: the
/// device secret is the proof), with the device authority's certificate.
#[utoipa::path(get, path = "/api/v1/device-certificate", tag = "devices",
    responses(
        (status = 200, body = CertificateBody),
        (status = 404, body = ErrorEnvelope),
    ))]
pub async fn pick_up(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<CertificateBody>, ApiError> {
    let secret = device_cookie(&headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Aucun certificat demandé pour cet appareil.",
        )
    })?;
    let CertificatePickup {
        status,
        authority_pem,
    } = state.services.pick_up_device_certificate(&secret).await?;
    Ok(Json(body(status, Some(authority_pem))))
}
