//! Carnet's backups: encrypted, deduplicated snapshots of an instance in restic
//! repositories (format v2, through `rustic_core`), so that the independent `restic`
//! tool can list and restore them without Carnet.
//!
//! What a snapshot holds (the "data directory" layout, see [`stage`]): a consistent
//! copy of the database (SQLite online backup, or a `pg_dump`), the document blobs,
//! the audit checkpoint file and the configuration file. Never the instance key, the
//! audit key or the backup password: a backup alone decrypts nothing; the recovery kit
//! does.
//!
//! `rustic_core` is synchronous: every operation here blocks, and callers on an async
//! runtime run them in `spawn_blocking`.

mod error;
mod operations;
mod repository;
pub mod retention;
mod s3;
pub mod stage;
mod target;

pub use error::BackupError;
pub use operations::{
    BackupReport, CheckReport, RestoreReport, SnapshotSummary, backup, check, forget_and_prune,
    restore, restore_file, snapshots,
};
pub use repository::{CHUNK_SIZE, Password, SNAPSHOT_ROOT};
pub use retention::RetentionPolicy;
pub use rustic_core::jiff;
pub use target::{Location, S3Credentials, Target, TargetSpecError};
