//! Passkeys (WebAuthn credentials), WebAuthn ceremonies in progress, and the one-time
//! links that create the first platform administrator. The credentials hold public keys
//! only; ceremony states and links are short-lived and single use.

use carnet_domain::Timestamp;
use uuid::Uuid;

use crate::tx::on_tx;
use crate::{StoreError, Tx};

/// A passkey as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub credential_id: Vec<u8>,
    pub name: String,
    /// The credential as serialised by the WebAuthn library (public key, counter).
    pub credential: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A WebAuthn ceremony between its start and its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CeremonyRecord {
    pub kind: String,
    pub account_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub state: String,
    pub expires_at: Timestamp,
}

/// kind, account, session, state, expiry.
type CeremonyRow = (String, Option<Uuid>, Option<Uuid>, String, i64);

const PASSKEY_COLUMNS: &str =
    "id, account_id, credential_id, name, credential, created_at, last_used_at";

macro_rules! passkey_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        Ok::<_, StoreError>(PasskeyRecord {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            credential_id: row.try_get("credential_id")?,
            name: row.try_get("name")?,
            credential: row.try_get("credential")?,
            created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
            last_used_at: row
                .try_get::<Option<i64>, _>("last_used_at")?
                .map(Timestamp::from_unix_millis),
        })
    }};
}

impl Tx {
    // ---- passkeys ------------------------------------------------------------------------

    pub async fn insert_passkey(&mut self, passkey: &PasskeyRecord) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO passkeys (id, account_id, credential_id, name, credential, \
                 created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(passkey.id)
            .bind(passkey.account_id)
            .bind(passkey.credential_id.as_slice())
            .bind(passkey.name.as_str())
            .bind(passkey.credential.as_str())
            .bind(passkey.created_at.unix_millis())
            .bind(passkey.last_used_at.map(Timestamp::unix_millis))
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The account's passkeys that are not removed, oldest first.
    pub async fn passkeys_of(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<PasskeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE account_id = $1 AND removed_at IS NULL \
             ORDER BY created_at, id"
        );
        on_tx!(self, |conn| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account_id)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|row| passkey_row!(row)).collect()
        })
    }

    /// The passkey with this WebAuthn credential id, unless removed.
    pub async fn passkey_by_credential_id(
        &mut self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1 AND removed_at IS NULL"
        );
        on_tx!(self, |conn| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(credential_id)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|row| passkey_row!(row)).transpose()
        })
    }

    /// Records a use: the updated credential (signature counter) and the time.
    pub async fn passkey_used(
        &mut self,
        id: Uuid,
        credential: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("UPDATE passkeys SET credential = $2, last_used_at = $3 WHERE id = $1")
                .bind(id)
                .bind(credential)
                .bind(now.unix_millis())
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Renames one of the account's passkeys; false if it has no such passkey.
    pub async fn rename_passkey(
        &mut self,
        account_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE passkeys SET name = $3 WHERE id = $1 AND account_id = $2 \
                 AND removed_at IS NULL",
            )
            .bind(id)
            .bind(account_id)
            .bind(name)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Removes one of the account's passkeys (kept, marked removed); false if it has no
    /// such passkey.
    pub async fn remove_passkey(
        &mut self,
        account_id: Uuid,
        id: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE passkeys SET removed_at = $3 WHERE id = $1 AND account_id = $2 \
                 AND removed_at IS NULL",
            )
            .bind(id)
            .bind(account_id)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    // ---- ceremonies ----------------------------------------------------------------------

    /// Stores a ceremony's state under the hash of the identifier given to the client;
    /// ceremonies already expired are swept on the way.
    pub async fn put_ceremony(
        &mut self,
        id_hash: &[u8],
        ceremony: &CeremonyRecord,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
                .bind(now.unix_millis())
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO webauthn_ceremonies (id_hash, kind, account_id, session_id, state, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id_hash)
            .bind(ceremony.kind.as_str())
            .bind(ceremony.account_id)
            .bind(ceremony.session_id)
            .bind(ceremony.state.as_str())
            .bind(ceremony.expires_at.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// Takes a ceremony (single use: it is deleted) if it exists and has not expired.
    pub async fn take_ceremony(
        &mut self,
        id_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let row: Option<CeremonyRow> = sqlx::query_as(
                "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 \
                 RETURNING kind, account_id, session_id, state, expires_at",
            )
            .bind(id_hash)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(
                row.and_then(|(kind, account_id, session_id, state, expires_at)| {
                    (expires_at > now.unix_millis()).then(|| CeremonyRecord {
                        kind,
                        account_id,
                        session_id,
                        state,
                        expires_at: Timestamp::from_unix_millis(expires_at),
                    })
                }),
            )
        })
    }

    // ---- setup links -----------------------------------------------------------------------

    /// Stores a new setup link, retiring every unused one.
    pub async fn insert_setup_link(
        &mut self,
        token_hash: &[u8],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE setup_links SET retired_at = $1 WHERE used_at IS NULL AND retired_at IS NULL",
            )
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO setup_links (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(token_hash)
            .bind(now.unix_millis())
            .bind(expires_at.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// Uses a setup link: true once, if it is neither used, retired nor expired.
    pub async fn use_setup_link(
        &mut self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE setup_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
                 AND retired_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Whether any platform administrator has an account (then no setup link is issued).
    pub async fn admin_account_exists(&mut self) -> Result<bool, StoreError> {
        on_tx!(self, |conn| {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE admin_id IS NOT NULL")
                    .fetch_one(&mut *conn)
                    .await?;
            Ok(count > 0)
        })
    }
}
