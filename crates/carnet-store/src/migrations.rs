//! Schema migrations: one append-only series per backend, embedded in the binary.
//!
//! Applied at start and by `carnet migrate`. Before an existing SQLite database is
//! migrated, a consistent copy is written beside it (`VACUUM INTO`), so a failed or
//! regretted upgrade never costs the practice its data.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::{Backend, Store, StoreError, on_backend};

/// (version, description, SQL) for SQLite, in order.
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "audit",
        include_str!("../migrations/sqlite/0002_audit.sql"),
    ),
    (
        3,
        "accounts",
        include_str!("../migrations/sqlite/0003_accounts.sql"),
    ),
    (
        4,
        "totp replacements",
        include_str!("../migrations/sqlite/0004_totp_replacements.sql"),
    ),
    (
        5,
        "passkeys and setup links",
        include_str!("../migrations/sqlite/0005_passkeys_and_setup.sql"),
    ),
    (
        6,
        "devices",
        include_str!("../migrations/sqlite/0006_devices.sql"),
    ),
    (
        7,
        "practice pin",
        include_str!("../migrations/sqlite/0007_practice_pin.sql"),
    ),
    (
        8,
        "device certificates",
        include_str!("../migrations/sqlite/0008_device_certificates.sql"),
    ),
    (
        9,
        "patients",
        include_str!("../migrations/sqlite/0009_patients.sql"),
    ),
    (
        10,
        "clinical content",
        include_str!("../migrations/sqlite/0010_clinical.sql"),
    ),
    (
        11,
        "documents",
        include_str!("../migrations/sqlite/0011_documents.sql"),
    ),
    (
        12,
        "patient index by patient",
        include_str!("../migrations/sqlite/0012_patient_index_by_patient.sql"),
    ),
    (
        13,
        "backup leases and runs",
        include_str!("../migrations/sqlite/0013_backups.sql"),
    ),
    (
        14,
        "row-level security",
        include_str!("../migrations/sqlite/0014_row_level_security.sql"),
    ),
    (
        15,
        "current identity beside the patient",
        include_str!("../migrations/sqlite/0015_current_identity.sql"),
    ),
    (
        16,
        "audit by patient in buckets",
        include_str!("../migrations/sqlite/0016_audit_by_patient_in_buckets.sql"),
    ),
];

/// (version, description, SQL) for PostgreSQL, in order.
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "audit",
        include_str!("../migrations/postgres/0002_audit.sql"),
    ),
    (
        3,
        "accounts",
        include_str!("../migrations/postgres/0003_accounts.sql"),
    ),
    (
        4,
        "totp replacements",
        include_str!("../migrations/postgres/0004_totp_replacements.sql"),
    ),
    (
        5,
        "passkeys and setup links",
        include_str!("../migrations/postgres/0005_passkeys_and_setup.sql"),
    ),
    (
        6,
        "devices",
        include_str!("../migrations/postgres/0006_devices.sql"),
    ),
    (
        7,
        "practice pin",
        include_str!("../migrations/postgres/0007_practice_pin.sql"),
    ),
    (
        8,
        "device certificates",
        include_str!("../migrations/postgres/0008_device_certificates.sql"),
    ),
    (
        9,
        "patients",
        include_str!("../migrations/postgres/0009_patients.sql"),
    ),
    (
        10,
        "clinical content",
        include_str!("../migrations/postgres/0010_clinical.sql"),
    ),
    (
        11,
        "documents",
        include_str!("../migrations/postgres/0011_documents.sql"),
    ),
    (
        12,
        "patient index by patient",
        include_str!("../migrations/postgres/0012_patient_index_by_patient.sql"),
    ),
    (
        13,
        "backup leases and runs",
        include_str!("../migrations/postgres/0013_backups.sql"),
    ),
    (
        14,
        "row-level security",
        include_str!("../migrations/postgres/0014_row_level_security.sql"),
    ),
    (
        15,
        "current identity beside the patient",
        include_str!("../migrations/postgres/0015_current_identity.sql"),
    ),
    (
        16,
        "audit by patient in buckets",
        include_str!("../migrations/postgres/0016_audit_by_patient_in_buckets.sql"),
    ),
];

/// Where the schema stands against the migrations this binary knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied successfully in the database.
    pub applied: Vec<i64>,
    /// Versions this binary knows that the database has not applied yet.
    pub pending: Vec<i64>,
    /// Versions applied in the database that this binary does not know (a newer binary
    /// migrated it): running on it would be unsafe.
    pub unknown: Vec<i64>,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

fn migrator(series: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        series
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

impl Store {
    fn series(&self) -> &'static [(i64, &'static str, &'static str)] {
        match self.backend {
            Backend::Sqlite { .. } => SQLITE,
            Backend::Postgres { .. } => POSTGRES,
        }
    }

    /// Compares the database's applied migrations with the ones this binary carries.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let table_exists: bool = on_backend!(self, |pool| {
            let exists = match self.backend {
                Backend::Sqlite { .. } => {
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                     AND name = '_sqlx_migrations'"
                }
                Backend::Postgres { .. } => {
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
                }
            };
            sqlx::query_scalar::<_, i64>(exists).fetch_one(pool).await? > 0
        });
        let applied: Vec<i64> = if table_exists {
            on_backend!(self, |pool| {
                sqlx::query_scalar::<_, i64>(
                    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
                )
                .fetch_all(pool)
                .await?
            })
        } else {
            Vec::new()
        };
        let known: Vec<i64> = self
            .series()
            .iter()
            .map(|(version, _, _)| *version)
            .collect();
        Ok(MigrationStatus {
            pending: known
                .iter()
                .copied()
                .filter(|v| !applied.contains(v))
                .collect(),
            unknown: applied
                .iter()
                .copied()
                .filter(|v| !known.contains(v))
                .collect(),
            applied,
        })
    }

    /// Applies pending migrations. On SQLite, when the database already holds a schema
    /// and something is pending, a copy is first written to `backup_dir` and its path
    /// returned.
    pub async fn migrate(&self, backup_dir: Option<&Path>) -> Result<Option<PathBuf>, StoreError> {
        let status = self.migration_status().await?;
        if !status.unknown.is_empty() {
            return Err(StoreError::Corrupt(
                "the database was migrated by a newer Carnet; refusing to run on it",
            ));
        }
        if status.pending.is_empty() {
            return Ok(None);
        }
        let mut copy = None;
        if let (Backend::Sqlite { pool, .. }, Some(dir)) = (&self.backend, backup_dir) {
            let tables: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
            )
            .fetch_one(pool)
            .await?;
            if tables > 0 {
                copy = Some(copy_sqlite_database(pool, dir, &status).await?);
            }
        }
        let migrator = migrator(self.series());
        on_backend!(self, |pool| migrator.run(pool).await?);
        Ok(copy)
    }
}

/// Writes a consistent copy of the SQLite database into `dir` (`VACUUM INTO` reads one
/// snapshot, so concurrent writers cannot tear it) and returns its path.
async fn copy_sqlite_database(
    pool: &sqlx::SqlitePool,
    dir: &Path,
    status: &MigrationStatus,
) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        action: "creating the pre-migration copy directory",
        source,
    })?;
    let last = status.applied.last().copied().unwrap_or_default();
    let path = dir.join(format!("carnet-before-migration-from-v{last}.sqlite3"));
    if path.exists() {
        std::fs::remove_file(&path).map_err(|source| StoreError::Io {
            action: "replacing an older pre-migration copy",
            source,
        })?;
    }
    let target = path
        .to_str()
        .ok_or(StoreError::Corrupt("the data directory path is not UTF-8"))?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(pool)
        .await?;
    Ok(path)
}
