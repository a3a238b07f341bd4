//! Registered devices, their standing per account (pending, approved, blocked), and the
//! in-application notices that tell people what happened to them.

use carnet_domain::{PracticeId, Timestamp};
use uuid::Uuid;

use crate::tx::on_tx;
use crate::{StoreError, Tx};

/// A device as stored (its secret only as a hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: Uuid,
    pub browser: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// What a device is for one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    pub device_id: Uuid,
    pub account_id: Uuid,
    pub practice_id: Option<PracticeId>,
    pub name: String,
    /// "pending", "approved" or "blocked".
    pub state: String,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub decided_by: Option<Uuid>,
    /// The device's browser summary and last activity (from `devices`).
    pub browser: String,
    pub last_seen_at: Timestamp,
    /// The account's login (who uses the device).
    pub login: String,
}

/// A message for one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeRecord {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub message: String,
}

const GRANT_QUERY: &str = "SELECT g.device_id, g.account_id, g.practice_id, g.name, g.state, \
     g.created_at, g.decided_at, g.decided_by, d.browser, d.last_seen_at, a.login \
     FROM device_grants g JOIN devices d ON d.id = g.device_id \
     JOIN accounts a ON a.id = g.account_id";

macro_rules! grant_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        let at = |value: Option<i64>| value.map(Timestamp::from_unix_millis);
        Ok::<_, StoreError>(GrantRecord {
            device_id: row.try_get("device_id")?,
            account_id: row.try_get("account_id")?,
            practice_id: row
                .try_get::<Option<Uuid>, _>("practice_id")?
                .map(PracticeId::from_uuid),
            name: row.try_get("name")?,
            state: row.try_get("state")?,
            created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
            decided_at: at(row.try_get("decided_at")?),
            decided_by: row.try_get("decided_by")?,
            browser: row.try_get("browser")?,
            last_seen_at: Timestamp::from_unix_millis(row.try_get("last_seen_at")?),
            login: row.try_get("login")?,
        })
    }};
}

impl Tx {
    // ---- devices -------------------------------------------------------------------------

    pub async fn insert_device(
        &mut self,
        id: Uuid,
        secret_hash: &[u8],
        browser: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO devices (id, secret_hash, browser, created_at, last_seen_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id)
            .bind(secret_hash)
            .bind(browser)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn device_by_secret_hash(
        &mut self,
        secret_hash: &[u8],
    ) -> Result<Option<DeviceRecord>, StoreError> {
        on_tx!(self, |conn| {
            let row: Option<(Uuid, String, i64, i64)> = sqlx::query_as(
                "SELECT id, browser, created_at, last_seen_at FROM devices WHERE secret_hash = $1",
            )
            .bind(secret_hash)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(
                row.map(|(id, browser, created_at, last_seen_at)| DeviceRecord {
                    id,
                    browser,
                    created_at: Timestamp::from_unix_millis(created_at),
                    last_seen_at: Timestamp::from_unix_millis(last_seen_at),
                }),
            )
        })
    }

    /// Records the device a session was opened on (`certified`: known by the
    /// connection's certificate), and the device's activity.
    pub async fn attach_session_device(
        &mut self,
        session_id: Uuid,
        device_id: Uuid,
        certified: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("UPDATE sessions SET device_id = $2, certified_device = $3 WHERE id = $1")
                .bind(session_id)
                .bind(device_id)
                .bind(certified)
                .execute(&mut *conn)
                .await?;
            sqlx::query("UPDATE devices SET last_seen_at = $2 WHERE id = $1")
                .bind(device_id)
                .bind(now.unix_millis())
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    // ---- grants --------------------------------------------------------------------------

    /// Creates the grant of a device for an account (its first sign-in there).
    pub async fn insert_grant(&mut self, grant: &GrantRecord) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO device_grants (device_id, account_id, practice_id, name, state, \
                 created_at, decided_at, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(grant.device_id)
            .bind(grant.account_id)
            .bind(grant.practice_id.map(|id| *id.as_uuid()))
            .bind(grant.name.as_str())
            .bind(grant.state.as_str())
            .bind(grant.created_at.unix_millis())
            .bind(grant.decided_at.map(Timestamp::unix_millis))
            .bind(grant.decided_by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The grant of a device for an account (deleted ones included: they stay blocked).
    pub async fn grant(
        &mut self,
        device_id: Uuid,
        account_id: Uuid,
    ) -> Result<Option<GrantRecord>, StoreError> {
        let sql = format!("{GRANT_QUERY} WHERE g.device_id = $1 AND g.account_id = $2");
        on_tx!(self, |conn| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(device_id)
                .bind(account_id)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|row| grant_row!(row)).transpose()
        })
    }

    /// Whether the account has any device grant yet.
    pub async fn account_has_grants(&mut self, account_id: Uuid) -> Result<bool, StoreError> {
        on_tx!(self, |conn| {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM device_grants WHERE account_id = $1")
                    .bind(account_id)
                    .fetch_one(&mut *conn)
                    .await?;
            Ok(count > 0)
        })
    }

    /// The account's device grants (not deleted), newest first.
    pub async fn grants_of_account(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let sql = format!(
            "{GRANT_QUERY} WHERE g.account_id = $1 AND g.deleted_at IS NULL \
             ORDER BY g.created_at DESC"
        );
        on_tx!(self, |conn| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account_id)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|row| grant_row!(row)).collect()
        })
    }

    /// The device grants of a practice's members (not deleted), newest first.
    pub async fn grants_of_practice(
        &mut self,
        practice_id: PracticeId,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let sql = format!(
            "{GRANT_QUERY} WHERE g.practice_id = $1 AND g.deleted_at IS NULL \
             ORDER BY g.created_at DESC"
        );
        on_tx!(self, |conn| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(practice_id.as_uuid())
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|row| grant_row!(row)).collect()
        })
    }

    /// Moves a grant from `from` to `to` (approve: pending → approved; block: pending or
    /// approved → blocked); false if it was not in `from`.
    pub async fn decide_grant(
        &mut self,
        device_id: Uuid,
        account_id: Uuid,
        from: &[&str],
        to: &str,
        by: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        let mut changed = false;
        for state in from {
            on_tx!(self, |conn| {
                let done = sqlx::query(
                    "UPDATE device_grants SET state = $4, decided_at = $5, decided_by = $6 \
                     WHERE device_id = $1 AND account_id = $2 AND state = $3 \
                     AND deleted_at IS NULL",
                )
                .bind(device_id)
                .bind(account_id)
                .bind(*state)
                .bind(to)
                .bind(now.unix_millis())
                .bind(by)
                .execute(&mut *conn)
                .await?;
                changed |= done.rows_affected() == 1;
            });
        }
        Ok(changed)
    }

    pub async fn rename_grant(
        &mut self,
        device_id: Uuid,
        account_id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE device_grants SET name = $3 WHERE device_id = $1 AND account_id = $2 \
                 AND deleted_at IS NULL",
            )
            .bind(device_id)
            .bind(account_id)
            .bind(name)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Hides a blocked grant from the lists (it stays blocked); false unless blocked.
    pub async fn delete_blocked_grant(
        &mut self,
        device_id: Uuid,
        account_id: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE device_grants SET deleted_at = $3 WHERE device_id = $1 \
                 AND account_id = $2 AND state = 'blocked' AND deleted_at IS NULL",
            )
            .bind(device_id)
            .bind(account_id)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Revokes the account's live sessions opened on the device.
    pub async fn revoke_device_sessions(
        &mut self,
        device_id: Uuid,
        account_id: Uuid,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE sessions SET revoked_at = $3 WHERE device_id = $1 AND account_id = $2 \
                 AND revoked_at IS NULL",
            )
            .bind(device_id)
            .bind(account_id)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        })
    }

    // ---- notices -------------------------------------------------------------------------

    pub async fn insert_notice(
        &mut self,
        id: Uuid,
        account_id: Uuid,
        message: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO notices (id, account_id, created_at, message) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(account_id)
            .bind(now.unix_millis())
            .bind(message)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The account's unread notices, newest first (at most 20).
    pub async fn notices_of(&mut self, account_id: Uuid) -> Result<Vec<NoticeRecord>, StoreError> {
        on_tx!(self, |conn| {
            let rows: Vec<(Uuid, i64, String)> = sqlx::query_as(
                "SELECT id, created_at, message FROM notices WHERE account_id = $1 \
                 AND read_at IS NULL ORDER BY created_at DESC LIMIT 20",
            )
            .bind(account_id)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, created_at, message)| NoticeRecord {
                    id,
                    created_at: Timestamp::from_unix_millis(created_at),
                    message,
                })
                .collect())
        })
    }

    /// Marks every unread notice of the account as read.
    pub async fn mark_notices_read(
        &mut self,
        account_id: Uuid,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE notices SET read_at = $2 WHERE account_id = $1 AND read_at IS NULL",
            )
            .bind(account_id)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// The account ids of a practice's holders.
    pub async fn holder_accounts(
        &mut self,
        practice_id: PracticeId,
    ) -> Result<Vec<Uuid>, StoreError> {
        on_tx!(self, |conn| {
            Ok(sqlx::query_scalar(
                "SELECT a.id FROM accounts a JOIN members m ON m.id = a.member_id \
                 WHERE m.practice_id = $1 AND m.role = 'holder'",
            )
            .bind(practice_id.as_uuid())
            .fetch_all(&mut *conn)
            .await?)
        })
    }

    // ---- practice PIN ----------------------------------------------------------------------

    /// The practice's current PIN: (version, sealed PIN).
    pub async fn practice_pin(
        &mut self,
        practice_id: PracticeId,
    ) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        on_tx!(self, |conn| {
            Ok(sqlx::query_as(
                "SELECT version, sealed_pin FROM practice_pins WHERE practice_id = $1",
            )
            .bind(practice_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?)
        })
    }

    /// Replaces the practice's PIN with `version` (the caller gives the next version, so
    /// the seal can be bound to it).
    pub async fn put_practice_pin(
        &mut self,
        practice_id: PracticeId,
        version: i64,
        sealed_pin: &[u8],
        by: Uuid,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO practice_pins (practice_id, version, sealed_pin, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (practice_id) DO UPDATE \
                 SET version = excluded.version, sealed_pin = excluded.sealed_pin, \
                 created_at = excluded.created_at, created_by = excluded.created_by",
            )
            .bind(practice_id.as_uuid())
            .bind(version)
            .bind(sealed_pin)
            .bind(now.unix_millis())
            .bind(by)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The account ids of every member of a practice.
    pub async fn member_accounts(
        &mut self,
        practice_id: PracticeId,
    ) -> Result<Vec<Uuid>, StoreError> {
        on_tx!(self, |conn| {
            Ok(
                sqlx::query_scalar("SELECT id FROM accounts WHERE practice_id = $1")
                    .bind(practice_id.as_uuid())
                    .fetch_all(&mut *conn)
                    .await?,
            )
        })
    }
}
