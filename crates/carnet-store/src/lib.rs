//! Carnet's storage contract and its two implementations, SQLite and PostgreSQL.
//!
//! [`Store`] is the contract: every method is one unit of work, run in one database
//! transaction, with the same behaviour on both backends. The SQL is written once
//! (`$1` placeholders work on both) and expanded for each backend's pool by the
//! `on_backend!` macro, so the two implementations cannot drift apart; where the
//! dialects differ (schema, dump, copy before migration) the code says so.
//! The conformance suite in `tests/it` runs every test against both.

mod accounts;
mod audit;
mod committer;
mod device_certificates;
mod devices;
mod documents;
mod jobs;
mod migrations;
mod passkeys;
mod patients;
mod rows;
mod tx;

use std::path::Path;
use std::time::Duration;

use carnet_domain::{AdminId, Practice, PracticeId, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use accounts::{
    AccountHolder, AccountRecord, ActivationRecord, RecordsGate, SessionRecord, SignedInRecord,
    TotpRecord,
};
pub use audit::{AuditQuery, PATIENT_BUCKET};
pub use committer::{BoxFuture, GroupCommitter};
pub use device_certificates::DeviceCertificateRecord;
pub use devices::{DeviceRecord, GrantRecord, NoticeRecord};
pub use documents::DocumentVersionRecord;
pub use jobs::BackupRunRecord;
pub use migrations::MigrationStatus;
pub use passkeys::{CeremonyRecord, PasskeyRecord};
pub use patients::{ClinicalRecord, IndexEntry, PatientRecord, PatientRevisionRecord};
pub use tx::Tx;

/// What can go wrong in storage. Messages never carry stored values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored value is not valid: {0}")]
    Corrupt(&'static str),
    #[error("the row refers to something that does not exist")]
    MissingReference,
    #[error("a row with the same key already exists")]
    Conflict,
    #[error("the transaction could not be committed: {0}")]
    CommitFailed(String),
    #[error("the audited writer is not running")]
    WriterStopped,
    #[error("a write was attempted on a connection for reads only")]
    ReadOnly,
    #[error("file system error while {action}: {source}")]
    Io {
        action: &'static str,
        source: std::io::Error,
    },
}

impl StoreError {
    /// A description safe to show an operator: never the connection URL (it can hold a
    /// password), never a stored value.
    pub fn describe_without_secrets(&self) -> String {
        match self {
            Self::Database(error) => match error {
                sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
                    error.to_string()
                }
                sqlx::Error::Configuration(_) => "invalid connection URL".into(),
                sqlx::Error::Database(database_error) => database_error.message().to_owned(),
                _ => "connection error".into(),
            },
            other => other.to_string(),
        }
    }

    /// Maps constraint violations to variants a caller can act on.
    fn from_write(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error {
            match database_error.kind() {
                sqlx::error::ErrorKind::UniqueViolation => return Self::Conflict,
                sqlx::error::ErrorKind::ForeignKeyViolation => return Self::MissingReference,
                _ => {}
            }
        }
        Self::Database(error)
    }
}

/// Which database a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite { pool: SqlitePool },
    Postgres { pool: PgPool },
}

/// Runs `$body` with `$pool` bound to the backend's pool; the body is compiled once per
/// backend, so the same SQL and decoding serve SQLite and PostgreSQL.
macro_rules! on_backend {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { pool: $pool, .. } => $body,
            $crate::Backend::Postgres { pool: $pool } => $body,
        }
    };
}
pub(crate) use on_backend;

/// The member query with the latest decision joined, filtered by `$where`.
macro_rules! members_query {
    ($where:literal) => {
        concat!(
            "SELECT m.id, m.practice_id, m.name, m.role, m.phone, m.professional_id_kind, \
             m.professional_id_number, m.created_at, \
             d.status AS decision_status, d.decided_by, d.decided_at, d.reason \
             FROM members m \
             LEFT JOIN professional_id_decisions d ON d.seq = ( \
                 SELECT MAX(seq) FROM professional_id_decisions WHERE member_id = m.id) \
             WHERE ",
            $where,
            " ORDER BY m.created_at, m.id"
        )
    };
}
pub(crate) use members_query;

/// How Carnet connects to a SQLite file: WAL journal, foreign keys on, full synchronous
/// commits (an acknowledged write is on disk), a busy timeout, and room for a search's
/// candidates in the channel that brings rows from the connection's thread (sqlx's 50
/// made the thread stop and be woken again in the middle of most searches). Public so
/// benchmarks give their plaintext baselines the same.
pub fn sqlite_connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        .row_buffer_size(ROW_BUFFER)
}

/// Rows buffered between a SQLite connection's thread and the task reading them: more
/// than a 3-letter prefix's candidates in a large practice (about 140 per prefix over
/// 100,000 patients). The buffer grows only as rows arrive.
const ROW_BUFFER: usize = 512;

/// Carnet's SQLite pool: eight connections, no ping before each use (a file opened in
/// this process does not go stale; the ping is a round trip to the connection's thread).
pub fn sqlite_pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
}

/// The storage contract. Cheap to clone (pools are shared).
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` with
    /// [`sqlite_pool_options`] and [`sqlite_connect_options`].
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let pool = sqlite_pool_options()
            .connect_with(sqlite_connect_options(path))
            .await?;
        Ok(Self {
            backend: Backend::Sqlite { pool },
        })
    }

    /// Connects to PostgreSQL at `url`.
    pub async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect_postgres_with(options).await
    }

    /// Connects to PostgreSQL with prepared options (tests use this to pin a schema).
    pub async fn connect_postgres_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self {
            backend: Backend::Postgres { pool },
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite { .. } => BackendKind::Sqlite,
            Backend::Postgres { .. } => BackendKind::Postgres,
        }
    }

    /// Opens a transaction.
    pub async fn transaction(&self) -> Result<Tx, StoreError> {
        let inner = match &self.backend {
            Backend::Sqlite { pool, .. } => {
                tx::TxInner::Sqlite(tx::Held::Transaction(pool.begin().await?))
            }
            Backend::Postgres { pool } => {
                tx::TxInner::Postgres(tx::Held::Transaction(pool.begin().await?))
            }
        };
        Ok(Tx::new(inner))
    }

    /// A [`Tx`] for reads only: a pooled connection outside any transaction, so each
    /// statement sees the latest commit and no BEGIN or ROLLBACK round trip is paid (for
    /// hot reads whose statements need not see one snapshot). On PostgreSQL, the first
    /// care-records statement opens a read-only transaction for its row-level security
    /// scope, rolled back at the end. Writes, audit appends and commit are refused with
    /// [`StoreError::ReadOnly`].
    pub async fn reads(&self) -> Result<Tx, StoreError> {
        let inner = match &self.backend {
            Backend::Sqlite { pool, .. } => tx::TxInner::Sqlite(tx::Held::Reads(
                tx::ReadConnection::new(pool.acquire().await?),
            )),
            Backend::Postgres { pool } => tx::TxInner::Postgres(tx::Held::Reads(
                tx::ReadConnection::new(pool.acquire().await?),
            )),
        };
        Ok(Tx::new(inner))
    }

    /// Closes the pool, waiting for connections to be returned (graceful shutdown).
    pub async fn close(&self) {
        on_backend!(self, |pool| pool.close().await);
    }

    /// Succeeds when the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Runs one raw statement, bypassing every rule of this contract. Only for tests and
    /// tooling that must act on the database as an attacker or an operator would (tamper
    /// tests, append-only checks); never called by the service layer. On PostgreSQL it
    /// sees every practice's rows (row-level security's instance-wide scope).
    pub async fn danger_execute(&self, statement: &'static str) -> Result<u64, StoreError> {
        let mut tx = self.transaction().await?;
        tx.scope_rows(tx::RowScope::Instance).await?;
        let rows_affected = tx::on_tx!(tx, |conn| {
            sqlx::query(statement)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        // A raw statement appends no audit entry; committing flushes an empty buffer.
        tx.commit().await?;
        Ok(rows_affected)
    }

    /// Whether the role Carnet connects as escapes row-level security (migration 0014):
    /// a PostgreSQL superuser or a role with BYPASSRLS. Never on SQLite, which has none.
    pub async fn bypasses_row_security(&self) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(false),
            Backend::Postgres { pool } => Ok(sqlx::query_scalar(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            )
            .fetch_one(pool)
            .await?),
        }
    }

    // ---- instance metadata -------------------------------------------------------------

    /// A value of the instance metadata (e.g. the instance key check value).
    pub async fn instance_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value = on_backend!(self, |pool| {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM instance_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        Ok(value)
    }

    /// Records a value of the instance metadata once; a second write of the same key is a
    /// [`StoreError::Conflict`] (these values are facts about the instance; only a key
    /// rotation replaces one, with [`Tx::replace_instance_meta`]).
    pub async fn insert_instance_meta(
        &self,
        key: &str,
        value: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_backend!(self, |pool| {
            sqlx::query("INSERT INTO instance_meta (key, value, created_at) VALUES ($1, $2, $3)")
                .bind(key)
                .bind(value)
                .bind(now.unix_millis())
                .execute(pool)
                .await
                .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    // ---- platform administrators -------------------------------------------------------

    pub async fn admin_exists(&self, id: AdminId) -> Result<bool, StoreError> {
        let found = on_backend!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM platform_admins WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_one(pool)
                .await?
        });
        Ok(found > 0)
    }

    // ---- practices ---------------------------------------------------------------------

    /// Every practice, oldest first (for the operator and platform administrators).
    pub async fn list_practices(&self) -> Result<Vec<Practice>, StoreError> {
        on_backend!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, name, address, profession, created_at FROM practices \
                 ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| rows::practice!(row)).collect()
        })
    }

    pub async fn practice(&self, id: PracticeId) -> Result<Option<Practice>, StoreError> {
        on_backend!(self, |pool| {
            let row = sqlx::query(
                "SELECT id, name, address, profession, created_at FROM practices WHERE id = $1",
            )
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await?;
            row.map(|row| rows::practice!(row)).transpose()
        })
    }
}

/// SQL, run by a superuser, that gives Carnet a login role of its own (no superuser, no
/// BYPASSRLS, so row-level security applies to it) and a fresh schema that role owns
/// (`schema` replaced if it exists). The test suites run it for each PostgreSQL case;
/// `role` and `schema` must be plain identifiers (letters, digits, underscores).
pub fn owned_schema_sql(role: &str, schema: &str) -> String {
    format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
             CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS; \
           END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; \
         CREATE SCHEMA \"{schema}\" AUTHORIZATION \"{role}\""
    )
}

/// Builds a PostgreSQL connection option set that confines every connection to `schema`
/// (tests give each case a fresh schema).
pub fn postgres_options_in_schema(url: &str, schema: &str) -> Result<PgConnectOptions, StoreError> {
    let options: PgConnectOptions = url.parse()?;
    Ok(options.options([("search_path", schema)]))
}
