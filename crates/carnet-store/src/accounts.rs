//! Accounts, activation codes, second factors, sessions and authentication failures.
//! Every secret arrives here already hashed or sealed; nothing here sees a password,
//! a token or a TOTP secret in clear.

use carnet_domain::{AdminId, MemberId, PracticeId, ProfessionalIdStatus, Role, Timestamp};
use sqlx::Row as _;
use uuid::Uuid;

use crate::tx::on_tx;
use crate::{StoreError, Tx};

/// Whose account it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountHolder {
    Member {
        member_id: MemberId,
        practice_id: PracticeId,
        role: Role,
    },
    Admin(AdminId),
}

/// An account as the authentication needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: Uuid,
    pub holder: AccountHolder,
    pub login: String,
    pub password_hash: String,
    pub password_changed_at: Timestamp,
    pub created_at: Timestamp,
    /// The person's name, for the password policy (it must not appear in the password).
    pub name: String,
}

/// A current activation code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationRecord {
    pub member_id: MemberId,
    pub practice_id: PracticeId,
    pub code_hash: Vec<u8>,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub failures: i64,
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub second_factor_at: Option<Timestamp>,
    pub authenticated_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub totp_step: Option<i64>,
    pub totp_tries: i64,
    /// The device the session was opened on (set once, by `attach_session_device`).
    pub device_id: Option<Uuid>,
    /// How the second factor was verified: "totp", "passkey" or "recovery".
    pub second_factor_kind: Option<String>,
    /// The version of the practice PIN that unlocked care records for this session
    /// (none: locked; cleared by an idle lock).
    pub pin_version: Option<i64>,
    /// Wrong PINs typed in this session.
    pub pin_failures: i64,
    /// Opened on a connection that presented the device's certificate: served only on
    /// such connections (ADR 0008).
    pub certified_device: bool,
}

/// A TOTP credential as stored (secret sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRecord {
    pub sealed_secret: Vec<u8>,
    pub confirmed_at: Option<Timestamp>,
    pub last_used_step: Option<i64>,
}

const ACCOUNT_QUERY: &str = "SELECT a.id, a.member_id, a.practice_id, a.admin_id, m.role, \
     a.login, a.password_hash, a.password_changed_at, a.created_at, \
     COALESCE(m.name, p.name) AS name \
     FROM accounts a LEFT JOIN members m ON m.id = a.member_id \
     LEFT JOIN platform_admins p ON p.id = a.admin_id";

/// The unique keys an account is looked up by.
#[derive(Clone, Copy)]
enum AccountKey<'a> {
    Login(&'a str),
    Member(MemberId),
    Id(Uuid),
}

/// (member, practice, code hash, expires at, used at, failures).
type ActivationRow = (Uuid, Uuid, Vec<u8>, i64, Option<i64>, i64);

/// What every signed-in request reads, in one statement (one row per practice key
/// version, at least one): the session, its account, its device grant's state and, for a
/// member's account, the records gate of the member's own practice. The session's columns
/// keep their names; the account's id is the session's `account_id`.
const SIGNED_IN_QUERY: &str = "SELECT s.id, s.account_id, s.created_at, s.last_seen_at, \
     s.expires_at, s.second_factor_at, s.authenticated_at, s.revoked_at, s.totp_step, \
     s.totp_tries, s.device_id, s.second_factor_kind, s.pin_version, s.pin_failures, \
     s.certified_device, \
     a.member_id, a.practice_id, a.admin_id, m.role, a.login, a.password_hash, \
     a.password_changed_at, a.created_at AS account_created_at, \
     COALESCE(m.name, p.name) AS name, \
     g.state AS grant_state, d.status AS decision_status, \
     pin.version AS practice_pin_version, k.version AS key_version, k.wrapped_key \
     FROM sessions s JOIN accounts a ON a.id = s.account_id \
     LEFT JOIN members m ON m.id = a.member_id \
     LEFT JOIN platform_admins p ON p.id = a.admin_id \
     LEFT JOIN device_grants g ON g.device_id = s.device_id AND g.account_id = s.account_id \
     LEFT JOIN professional_id_decisions d ON d.seq = ( \
         SELECT MAX(seq) FROM professional_id_decisions WHERE member_id = a.member_id) \
     LEFT JOIN practice_pins pin ON pin.practice_id = a.practice_id \
     LEFT JOIN practice_keys k ON k.practice_id = a.practice_id \
     WHERE s.token_hash = $1 ORDER BY k.version DESC";

/// A session as a signed-in request finds it, with all it is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInRecord {
    pub session: SessionRecord,
    pub account: AccountRecord,
    /// The state of the grant of the session's device to its account, if any.
    pub grant_state: Option<String>,
    /// For a member's account, its own practice's records gate (empty otherwise).
    pub gate: RecordsGate,
}

/// What the records capability checks about the member's own practice, read with the
/// session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordsGate {
    /// The practice's current PIN version (none: no PIN set yet).
    pub pin_version: Option<i64>,
    /// The member's professional number, as last decided.
    pub professional_id: ProfessionalIdStatus,
    /// Every version of the practice key, wrapped, newest first.
    pub wrapped_keys: Vec<(i64, Vec<u8>)>,
}

const SESSION_COLUMNS: &str = "id, account_id, created_at, last_seen_at, expires_at, \
     second_factor_at, authenticated_at, revoked_at, totp_step, totp_tries, device_id, \
     second_factor_kind, pin_version, pin_failures, certified_device";

/// Decodes an account row; the two-argument form names the columns that hold the
/// account's id and creation time when a wider row gives those names to other values.
macro_rules! account_row {
    ($row:expr) => {
        account_row!($row, id = "id", created_at = "created_at")
    };
    ($row:expr, id = $id:literal, created_at = $created_at:literal) => {{
        use sqlx::Row as _;
        let row = $row;
        let member: Option<Uuid> = row.try_get("member_id")?;
        let practice: Option<Uuid> = row.try_get("practice_id")?;
        let admin: Option<Uuid> = row.try_get("admin_id")?;
        let role: Option<String> = row.try_get("role")?;
        let holder = match (member, practice, admin, role) {
            (Some(member), Some(practice), None, Some(role)) => AccountHolder::Member {
                member_id: MemberId::from_uuid(member),
                practice_id: PracticeId::from_uuid(practice),
                role: Role::parse(&role).map_err(|_| StoreError::Corrupt("member role"))?,
            },
            (None, None, Some(admin), None) => AccountHolder::Admin(AdminId::from_uuid(admin)),
            _ => return Err(StoreError::Corrupt("account holder")),
        };
        Ok::<_, StoreError>(AccountRecord {
            id: row.try_get($id)?,
            holder,
            login: row.try_get("login")?,
            password_hash: row.try_get("password_hash")?,
            password_changed_at: Timestamp::from_unix_millis(row.try_get("password_changed_at")?),
            created_at: Timestamp::from_unix_millis(row.try_get($created_at)?),
            name: row.try_get("name")?,
        })
    }};
}

macro_rules! session_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        let at = |value: Option<i64>| value.map(Timestamp::from_unix_millis);
        Ok::<_, StoreError>(SessionRecord {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
            last_seen_at: Timestamp::from_unix_millis(row.try_get("last_seen_at")?),
            expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
            second_factor_at: at(row.try_get("second_factor_at")?),
            authenticated_at: Timestamp::from_unix_millis(row.try_get("authenticated_at")?),
            revoked_at: at(row.try_get("revoked_at")?),
            totp_step: row.try_get("totp_step")?,
            totp_tries: row.try_get("totp_tries")?,
            device_id: row.try_get("device_id")?,
            second_factor_kind: row.try_get("second_factor_kind")?,
            pin_version: row.try_get("pin_version")?,
            pin_failures: row.try_get("pin_failures")?,
            certified_device: row.try_get("certified_device")?,
        })
    }};
}

impl Tx {
    // ---- activation codes ----------------------------------------------------------------

    /// Stores a member's activation code, replacing any earlier one.
    pub async fn put_activation_code(
        &mut self,
        member_id: MemberId,
        practice_id: PracticeId,
        prefix: &str,
        code_hash: &[u8],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO activation_codes (member_id, practice_id, code_prefix, code_hash, \
                 created_at, expires_at, used_at, failures) VALUES ($1, $2, $3, $4, $5, $6, NULL, 0) \
                 ON CONFLICT (member_id) DO UPDATE SET code_prefix = excluded.code_prefix, \
                 code_hash = excluded.code_hash, created_at = excluded.created_at, \
                 expires_at = excluded.expires_at, used_at = NULL, failures = 0",
            )
            .bind(member_id.as_uuid())
            .bind(practice_id.as_uuid())
            .bind(prefix)
            .bind(code_hash)
            .bind(now.unix_millis())
            .bind(expires_at.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The codes whose first characters are `prefix` (usually one).
    pub async fn activation_codes_with_prefix(
        &mut self,
        prefix: &str,
    ) -> Result<Vec<ActivationRecord>, StoreError> {
        on_tx!(self, |conn| {
            let rows: Vec<ActivationRow> = sqlx::query_as(
                "SELECT member_id, practice_id, code_hash, expires_at, used_at, failures \
                 FROM activation_codes WHERE code_prefix = $1",
            )
            .bind(prefix)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(member, practice, code_hash, expires_at, used_at, failures)| {
                        ActivationRecord {
                            member_id: MemberId::from_uuid(member),
                            practice_id: PracticeId::from_uuid(practice),
                            code_hash,
                            expires_at: Timestamp::from_unix_millis(expires_at),
                            used_at: used_at.map(Timestamp::from_unix_millis),
                            failures,
                        }
                    },
                )
                .collect())
        })
    }

    /// Counts one wrong try against every code with `prefix`.
    pub async fn activation_code_failed(&mut self, prefix: &str) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE activation_codes SET failures = failures + 1 WHERE code_prefix = $1",
            )
            .bind(prefix)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    pub async fn activation_code_used(
        &mut self,
        member_id: MemberId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("UPDATE activation_codes SET used_at = $2 WHERE member_id = $1")
                .bind(member_id.as_uuid())
                .bind(now.unix_millis())
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    // ---- accounts ------------------------------------------------------------------------

    pub async fn insert_account(
        &mut self,
        id: Uuid,
        holder: &AccountHolder,
        login: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        let (member, practice, admin) = match holder {
            AccountHolder::Member {
                member_id,
                practice_id,
                ..
            } => (
                Some(*member_id.as_uuid()),
                Some(*practice_id.as_uuid()),
                None,
            ),
            AccountHolder::Admin(admin) => (None, None, Some(*admin.as_uuid())),
        };
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO accounts (id, member_id, practice_id, admin_id, login, password_hash, \
                 password_changed_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id)
            .bind(member)
            .bind(practice)
            .bind(admin)
            .bind(login)
            .bind(password_hash)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn account_by_login(
        &mut self,
        login: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(AccountKey::Login(login)).await
    }

    pub async fn account_of_member(
        &mut self,
        member_id: MemberId,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(AccountKey::Member(member_id)).await
    }

    pub async fn account(&mut self, id: Uuid) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(AccountKey::Id(id)).await
    }

    async fn account_where(
        &mut self,
        key: AccountKey<'_>,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let column = match key {
            AccountKey::Login(_) => "a.login",
            AccountKey::Member(_) => "a.member_id",
            AccountKey::Id(_) => "a.id",
        };
        let sql = format!("{ACCOUNT_QUERY} WHERE {column} = $1");
        on_tx!(self, |conn| {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql));
            let query = match key {
                AccountKey::Login(login) => query.bind(login),
                AccountKey::Member(member_id) => query.bind(*member_id.as_uuid()),
                AccountKey::Id(id) => query.bind(id),
            };
            let row = query.fetch_optional(&mut *conn).await?;
            row.map(|row| account_row!(row)).transpose()
        })
    }

    /// Stores a new password's hash (a change: the change time moves).
    pub async fn change_password(
        &mut self,
        account_id: Uuid,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE accounts SET password_hash = $2, password_changed_at = $3 WHERE id = $1",
            )
            .bind(account_id)
            .bind(password_hash)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Stores the same password hashed with the current parameters (not a change).
    pub async fn rehash_password(
        &mut self,
        account_id: Uuid,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("UPDATE accounts SET password_hash = $2 WHERE id = $1")
                .bind(account_id)
                .bind(password_hash)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    // ---- failures ------------------------------------------------------------------------

    pub async fn record_auth_failure(
        &mut self,
        account_id: Uuid,
        kind: &'static str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("INSERT INTO auth_failures (account_id, at, kind) VALUES ($1, $2, $3)")
                .bind(account_id)
                .bind(now.unix_millis())
                .bind(kind)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Password failures since `since` and after the account's last unlock.
    pub async fn password_failures_since(
        &mut self,
        account_id: Uuid,
        since: Timestamp,
    ) -> Result<(i64, Option<Timestamp>), StoreError> {
        on_tx!(self, |conn| {
            let (count, last): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MAX(at) FROM auth_failures WHERE account_id = $1 \
                 AND kind = 'password' AND at >= $2 AND at > COALESCE( \
                 (SELECT MAX(at) FROM account_unlocks WHERE account_id = $1), -1)",
            )
            .bind(account_id)
            .bind(since.unix_millis())
            .fetch_one(&mut *conn)
            .await?;
            Ok((count, last.map(Timestamp::from_unix_millis)))
        })
    }

    pub async fn unlock_account(
        &mut self,
        account_id: Uuid,
        by_member: Option<MemberId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO account_unlocks (account_id, at, by_member) VALUES ($1, $2, $3)",
            )
            .bind(account_id)
            .bind(now.unix_millis())
            .bind(by_member.map(|member| *member.as_uuid()))
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    // ---- second factor -------------------------------------------------------------------

    /// Stores a (new, unconfirmed) TOTP secret, replacing an unconfirmed one.
    pub async fn put_totp(
        &mut self,
        account_id: Uuid,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO totp_credentials (account_id, sealed_secret, created_at, confirmed_at, \
                 last_used_step) VALUES ($1, $2, $3, NULL, NULL) ON CONFLICT (account_id) DO UPDATE \
                 SET sealed_secret = excluded.sealed_secret, created_at = excluded.created_at, \
                 confirmed_at = NULL, last_used_step = NULL",
            )
            .bind(account_id)
            .bind(sealed_secret)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    pub async fn totp(&mut self, account_id: Uuid) -> Result<Option<TotpRecord>, StoreError> {
        on_tx!(self, |conn| {
            let row: Option<(Vec<u8>, Option<i64>, Option<i64>)> = sqlx::query_as(
                "SELECT sealed_secret, confirmed_at, last_used_step FROM totp_credentials \
                 WHERE account_id = $1",
            )
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(
                row.map(|(sealed_secret, confirmed_at, last_used_step)| TotpRecord {
                    sealed_secret,
                    confirmed_at: confirmed_at.map(Timestamp::from_unix_millis),
                    last_used_step,
                }),
            )
        })
    }

    /// Records a used TOTP step (and confirms the credential on its first use).
    pub async fn totp_used(
        &mut self,
        account_id: Uuid,
        step: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE totp_credentials SET last_used_step = $2, \
                 confirmed_at = COALESCE(confirmed_at, $3) WHERE account_id = $1",
            )
            .bind(account_id)
            .bind(step)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Stores a replacement TOTP secret awaiting confirmation (replacing a pending one).
    pub async fn put_totp_replacement(
        &mut self,
        account_id: Uuid,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO totp_replacements (account_id, sealed_secret, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (account_id) DO UPDATE \
                 SET sealed_secret = excluded.sealed_secret, created_at = excluded.created_at",
            )
            .bind(account_id)
            .bind(sealed_secret)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The pending replacement secret, if any.
    pub async fn totp_replacement(
        &mut self,
        account_id: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        on_tx!(self, |conn| {
            Ok(sqlx::query_scalar(
                "SELECT sealed_secret FROM totp_replacements WHERE account_id = $1",
            )
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?)
        })
    }

    pub async fn delete_totp_replacement(&mut self, account_id: Uuid) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM totp_replacements WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Replaces the account's recovery codes.
    pub async fn put_recovery_codes(
        &mut self,
        account_id: Uuid,
        code_hashes: &[[u8; 32]],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *conn)
                .await?;
            for hash in code_hashes {
                sqlx::query("INSERT INTO recovery_codes (account_id, code_hash, created_at) VALUES ($1, $2, $3)")
                    .bind(account_id)
                    .bind(hash.as_slice())
                    .bind(now.unix_millis())
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }

    /// Uses a recovery code once: true when it existed unused.
    pub async fn use_recovery_code(
        &mut self,
        account_id: Uuid,
        code_hash: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 WHERE account_id = $1 AND code_hash = $2 \
                 AND used_at IS NULL",
            )
            .bind(account_id)
            .bind(code_hash)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    // ---- sessions ------------------------------------------------------------------------

    pub async fn insert_session(
        &mut self,
        id: Uuid,
        token_hash: &[u8],
        account_id: Uuid,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO sessions (id, token_hash, account_id, created_at, last_seen_at, \
                 expires_at, authenticated_at) VALUES ($1, $2, $3, $4, $4, $5, $4)",
            )
            .bind(id)
            .bind(token_hash)
            .bind(account_id)
            .bind(now.unix_millis())
            .bind(expires_at.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn session_by_token_hash(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1");
        on_tx!(self, |conn| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(token_hash)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|row| session_row!(row)).transpose()
        })
    }

    /// The session presented with `token_hash`, its account, its device's grant state and
    /// its practice's records gate, in one statement (`SIGNED_IN_QUERY`).
    pub async fn signed_in(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<SignedInRecord>, StoreError> {
        on_tx!(self, |conn| {
            let rows = sqlx::query(SIGNED_IN_QUERY)
                .bind(token_hash)
                .fetch_all(&mut *conn)
                .await?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            let session = session_row!(first)?;
            let account =
                account_row!(first, id = "account_id", created_at = "account_created_at")?;
            let grant_state: Option<String> = first.try_get("grant_state")?;
            let decision: Option<String> = first.try_get("decision_status")?;
            let professional_id = match decision {
                None => ProfessionalIdStatus::Pending,
                Some(status) => ProfessionalIdStatus::parse(&status)
                    .filter(|status| *status != ProfessionalIdStatus::Pending)
                    .ok_or(StoreError::Corrupt("decision status"))?,
            };
            let mut wrapped_keys = Vec::with_capacity(rows.len());
            for row in &rows {
                let version: Option<i64> = row.try_get("key_version")?;
                let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
                if let Some(key) = version.zip(wrapped) {
                    wrapped_keys.push(key);
                }
            }
            Ok(Some(SignedInRecord {
                session,
                account,
                grant_state,
                gate: RecordsGate {
                    pin_version: first.try_get("practice_pin_version")?,
                    professional_id,
                    wrapped_keys,
                },
            }))
        })
    }

    pub async fn sessions_of(
        &mut self,
        account_id: Uuid,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = $1 ORDER BY created_at DESC"
        );
        on_tx!(self, |conn| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account_id)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|row| session_row!(row)).collect()
        })
    }

    /// Updates a session's activity: last seen, and optionally second factor, fresh
    /// authentication (unlock, re-authentication) and TOTP tries.
    pub async fn update_session(&mut self, session: &SessionRecord) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $2, second_factor_at = $3, \
                 authenticated_at = $4, revoked_at = $5, totp_step = $6, totp_tries = $7, \
                 second_factor_kind = $8, pin_version = $9, pin_failures = $10 WHERE id = $1",
            )
            .bind(session.id)
            .bind(session.last_seen_at.unix_millis())
            .bind(session.second_factor_at.map(Timestamp::unix_millis))
            .bind(session.authenticated_at.unix_millis())
            .bind(session.revoked_at.map(Timestamp::unix_millis))
            .bind(session.totp_step)
            .bind(session.totp_tries)
            .bind(session.second_factor_kind.as_deref())
            .bind(session.pin_version)
            .bind(session.pin_failures)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Revokes every live session of an account except `keep`.
    pub async fn revoke_sessions_of(
        &mut self,
        account_id: Uuid,
        keep: Option<Uuid>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE sessions SET revoked_at = $3 WHERE account_id = $1 AND revoked_at IS NULL \
                 AND ($2 IS NULL OR id <> $2)",
            )
            .bind(account_id)
            .bind(keep)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
