//! Device certificates for command-line and API clients (ADR 0008). A client signs in
//! from a new device (pending, like any new browser), sends a signing request for a key
//! it made itself, and the certificate is issued when a holder approves that device. The
//! TLS listener then recognises the device by its certificate; blocking the device
//! revokes the certificate, refused from the next handshake on.

use std::sync::Arc;

use carnet_audit::{Action, Outcome, Targets};
use carnet_crypto::{DeviceAuthority, IssuedCertificate, SealContext, SecretToken};
use carnet_domain::Timestamp;
use carnet_store::{DeviceCertificateRecord, StoreError};
use uuid::Uuid;

use crate::auth::{account_chain, actor_of};
use crate::devices::{DeviceStanding, standing_of};
use crate::{Caller, ServiceError, Services};

/// How long a device certificate is valid; the device's standing is checked at every
/// handshake regardless, so this only bounds the life of a forgotten key.
pub const DEVICE_CERTIFICATE_DAYS: i64 = 730;

const AUTHORITY_KEY_CONTEXT: SealContext<'static> = SealContext {
    table: "device_authority",
    column: "sealed_key",
    row: b"1",
};

/// Where a device's certificate stands, for the client that asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Waiting for a holder to approve the device.
    Pending,
    Issued {
        certificate_pem: String,
    },
    /// The device was blocked.
    Revoked,
}

/// What `carnet device fetch` gets: the status and the authority's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificatePickup {
    pub status: CertificateStatus,
    pub authority_pem: String,
}

fn status_of(record: &DeviceCertificateRecord) -> CertificateStatus {
    match (&record.revoked_at, &record.certificate_der) {
        (Some(_), _) => CertificateStatus::Revoked,
        (None, None) => CertificateStatus::Pending,
        (None, Some(der)) => CertificateStatus::Issued {
            certificate_pem: carnet_crypto::certificate_pem(der),
        },
    }
}

fn seconds(at: Timestamp) -> i64 {
    at.unix_millis().div_euclid(1000)
}

impl Services {
    /// The instance's device authority: read from the database (its key opened with the
    /// instance key), or made and stored on first use.
    pub async fn device_authority(&self) -> Result<Arc<DeviceAuthority>, ServiceError> {
        let kit = self.auth.clone();
        kit.device_authority
            .get_or_try_init(|| async {
                if let Some(found) = self.stored_authority().await? {
                    return Ok(found);
                }
                let (authority, key_pem) =
                    DeviceAuthority::generate(seconds(self.now()), self.random.as_ref())
                        .map_err(|_| ServiceError::Randomness)?;
                let sealed = kit
                    .device_authority_key
                    .seal(
                        key_pem.as_bytes(),
                        AUTHORITY_KEY_CONTEXT,
                        self.random.as_ref(),
                    )
                    .map_err(|_| ServiceError::Randomness)?;
                let certificate = authority.certificate_pem().to_owned();
                let now = self.now();
                self.audited(Vec::new(), move |tx| {
                    Box::pin(
                        async move { tx.insert_device_authority(&certificate, &sealed, now).await },
                    )
                })
                .await?;
                // Another node may have stored its own first: the stored one is the one.
                self.stored_authority()
                    .await?
                    .ok_or(ServiceError::Unavailable(StoreError::Corrupt(
                        "device authority",
                    )))
            })
            .await
            .cloned()
    }

    async fn stored_authority(&self) -> Result<Option<Arc<DeviceAuthority>>, ServiceError> {
        let stored = self
            .read(|tx| Box::pin(async move { tx.device_authority().await }))
            .await?;
        let Some((certificate_pem, sealed_key)) = stored else {
            return Ok(None);
        };
        let corrupt = || ServiceError::Unavailable(StoreError::Corrupt("device authority"));
        let key = self
            .auth
            .device_authority_key
            .open(&sealed_key, AUTHORITY_KEY_CONTEXT)
            .map_err(|_| corrupt())?;
        let key_pem = std::str::from_utf8(&key).map_err(|_| corrupt())?;
        let authority =
            DeviceAuthority::from_parts(&certificate_pem, key_pem).map_err(|_| corrupt())?;
        Ok(Some(Arc::new(authority)))
    }

    /// Records a signing request for the device of this session. Only a device still
    /// pending for the account qualifies: the certificate is issued when a holder
    /// approves it, never on the strength of a session alone.
    pub async fn request_device_certificate(
        &self,
        caller: &Caller,
        token: &str,
        request_pem: &str,
    ) -> Result<CertificateStatus, ServiceError> {
        let (session, account) = self.complete_session(token).await?;
        carnet_crypto::check_signing_request(request_pem)
            .map_err(|error| ServiceError::invalid("request", &error))?;
        let device_id = session.device_id.ok_or(ServiceError::Conflict)?;
        let account_id = account.id;
        let grant = self
            .read(move |tx| Box::pin(async move { tx.grant(device_id, account_id).await }))
            .await?;
        match standing_of(grant.as_ref().map(|grant| grant.state.as_str())) {
            DeviceStanding::Pending => {}
            DeviceStanding::Approved => {
                return Err(ServiceError::Invalid {
                    field: "request",
                    message: "Cet appareil est déjà approuvé : un certificat se demande \
                              depuis un nouvel appareil (carnet device enroll), que \
                              l'approbation d'un titulaire valide."
                        .into(),
                });
            }
            DeviceStanding::Blocked => return Err(ServiceError::Forbidden),
        }
        let event = self.audit_event(
            &Caller {
                actor: actor_of(&account),
                ..caller.clone()
            },
            account_chain(&account),
            Action::DeviceCertificateRequested,
            Targets::default(),
            Outcome::Success,
        );
        let request = request_pem.to_owned();
        let now = self.now();
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.insert_certificate_request(device_id, account_id, &request, now)
                    .await
            })
        })
        .await?;
        Ok(CertificateStatus::Pending)
    }

    /// The certificate of the device holding `device_secret` (what the client got at
    /// sign-in, as its device cookie), with the authority's certificate.
    pub async fn pick_up_device_certificate(
        &self,
        device_secret: &str,
    ) -> Result<CertificatePickup, ServiceError> {
        let hash = SecretToken::hash_of(device_secret);
        let record = self
            .read(move |tx| {
                Box::pin(async move {
                    let Some(device) = tx.device_by_secret_hash(&hash).await? else {
                        return Ok(None);
                    };
                    tx.device_certificate(device.id).await
                })
            })
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(CertificatePickup {
            status: status_of(&record),
            authority_pem: self.device_authority().await?.certificate_pem().to_owned(),
        })
    }

    /// The certificate to issue when the device of a pending request is approved for the
    /// account that asked (signed before the approving transaction, stored inside it).
    pub(crate) async fn certificate_to_issue(
        &self,
        device_id: Uuid,
        account_id: Uuid,
    ) -> Result<Option<(IssuedCertificate, Timestamp)>, ServiceError> {
        let record = self
            .read(move |tx| Box::pin(async move { tx.device_certificate(device_id).await }))
            .await?;
        let Some(record) = record.filter(|record| {
            record.account_id == account_id
                && record.certificate_der.is_none()
                && record.revoked_at.is_none()
        }) else {
            return Ok(None);
        };
        let authority = self.device_authority().await?;
        let now = seconds(self.now());
        let issued = authority
            .issue(
                &record.request_pem,
                &format!("Carnet appareil {device_id}"),
                now,
                DEVICE_CERTIFICATE_DAYS,
                self.random.as_ref(),
            )
            .map_err(|error| ServiceError::invalid("request", &error))?;
        let not_after =
            Timestamp::from_unix_millis((now + DEVICE_CERTIFICATE_DAYS * 86_400) * 1000);
        Ok(Some((issued, not_after)))
    }

    /// At the TLS handshake: the device of this certificate (DER, already verified against
    /// the device authority), if it is issued, unexpired and not revoked. A revoked or
    /// expired certificate's attempt is audited on its account's chain.
    pub async fn certified_device(
        &self,
        caller: &Caller,
        certificate_der: &[u8],
    ) -> Result<Uuid, ServiceError> {
        let fingerprint = carnet_crypto::sha256(certificate_der);
        let found = self
            .read(move |tx| {
                Box::pin(async move {
                    let Some(record) = tx.device_certificate_by_fingerprint(&fingerprint).await?
                    else {
                        return Ok(None);
                    };
                    let account = tx.account(record.account_id).await?;
                    Ok(Some((record, account)))
                })
            })
            .await?;
        let Some((record, account)) = found else {
            return Err(ServiceError::Forbidden);
        };
        let now = self.now();
        let expired = record.not_after.is_none_or(|not_after| not_after <= now);
        if record.revoked_at.is_none() && !expired {
            return Ok(record.device_id);
        }
        if let Some(account) = account {
            let event = self.audit_event(
                &Caller {
                    actor: actor_of(&account),
                    ..caller.clone()
                },
                account_chain(&account),
                Action::DeviceCertificateRefused,
                Targets::default(),
                Outcome::Denied,
            );
            self.audit_alone(event).await?;
        }
        Err(ServiceError::Forbidden)
    }
}
