//! The device certificate authority and the certificates it issued to command-line and
//! API clients (ADR 0008).

use carnet_domain::Timestamp;
use uuid::Uuid;

use crate::tx::on_tx;
use crate::{StoreError, Tx};

/// A device's certificate, from request to revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificateRecord {
    pub device_id: Uuid,
    /// The account that asked for it.
    pub account_id: Uuid,
    pub request_pem: String,
    /// Set once issued.
    pub certificate_der: Option<Vec<u8>>,
    pub requested_at: Timestamp,
    pub not_after: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

const CERTIFICATE_QUERY: &str = "SELECT device_id, account_id, request_pem, certificate_der, \
     requested_at, not_after, revoked_at FROM device_certificates";

type CertificateRow = (
    Uuid,
    Uuid,
    String,
    Option<Vec<u8>>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn certificate_of(row: CertificateRow) -> DeviceCertificateRecord {
    let (device_id, account_id, request_pem, certificate_der, requested_at, not_after, revoked) =
        row;
    DeviceCertificateRecord {
        device_id,
        account_id,
        request_pem,
        certificate_der,
        requested_at: Timestamp::from_unix_millis(requested_at),
        not_after: not_after.map(Timestamp::from_unix_millis),
        revoked_at: revoked.map(Timestamp::from_unix_millis),
    }
}

impl Tx {
    /// The device authority's certificate (PEM) and sealed key, if it exists yet.
    pub async fn device_authority(&mut self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        on_tx!(self, |conn| {
            Ok(sqlx::query_as(
                "SELECT certificate_pem, sealed_key FROM device_authority WHERE id = 1",
            )
            .fetch_optional(&mut *conn)
            .await?)
        })
    }

    /// Stores the device authority unless one exists (two nodes may race to create it:
    /// the first one wins, the other reads it back).
    pub async fn insert_device_authority(
        &mut self,
        certificate_pem: &str,
        sealed_key: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO device_authority (id, certificate_pem, sealed_key, created_at) \
                 VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(certificate_pem)
            .bind(sealed_key)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// Records a signing request for a device (one per device: a conflict otherwise).
    pub async fn insert_certificate_request(
        &mut self,
        device_id: Uuid,
        account_id: Uuid,
        request_pem: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO device_certificates (device_id, account_id, request_pem, \
                 requested_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(device_id)
            .bind(account_id)
            .bind(request_pem)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn device_certificate(
        &mut self,
        device_id: Uuid,
    ) -> Result<Option<DeviceCertificateRecord>, StoreError> {
        on_tx!(self, |conn| {
            let row: Option<CertificateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{CERTIFICATE_QUERY} WHERE device_id = $1"
            )))
            .bind(device_id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(certificate_of))
        })
    }

    pub async fn device_certificate_by_fingerprint(
        &mut self,
        fingerprint: &[u8],
    ) -> Result<Option<DeviceCertificateRecord>, StoreError> {
        on_tx!(self, |conn| {
            let row: Option<CertificateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{CERTIFICATE_QUERY} WHERE fingerprint = $1"
            )))
            .bind(fingerprint)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(certificate_of))
        })
    }

    /// Stores the issued certificate of a pending request; false if it was already issued
    /// or revoked.
    pub async fn issue_device_certificate(
        &mut self,
        device_id: Uuid,
        certificate_der: &[u8],
        fingerprint: &[u8],
        now: Timestamp,
        not_after: Timestamp,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE device_certificates SET certificate_der = $2, fingerprint = $3, \
                 issued_at = $4, not_after = $5 WHERE device_id = $1 \
                 AND certificate_der IS NULL AND revoked_at IS NULL",
            )
            .bind(device_id)
            .bind(certificate_der)
            .bind(fingerprint)
            .bind(now.unix_millis())
            .bind(not_after.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Revokes the device's certificate (or its pending request), if any.
    pub async fn revoke_device_certificate(
        &mut self,
        device_id: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE device_certificates SET revoked_at = $2 WHERE device_id = $1 \
                 AND revoked_at IS NULL",
            )
            .bind(device_id)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
