//! The staging directory: the tree a snapshot records, laid out as a data directory.
//!
//! ```text
//! carnet.sqlite3          SQLite online backup of the live database (a consistent copy)
//!   or carnet.pgdump      pg_dump custom format, uncompressed (so it deduplicates)
//! blobs/…                 the document blobs, hard-linked (immutable files; copied
//!                         when the staging directory is on another file system)
//! audit-checkpoints.log   the checkpoint file, copied
//! database-counts.txt     rows per table of the SQLite copy (the restore drill checks)
//! config/carnet.toml      the effective configuration, secrets removed (for reference:
//!                         a restored instance does not read it from there)
//! ```
//!
//! Nothing else from the data directory is staged: not the instance key, the audit key,
//! the backup password or the TLS key (an allowlist, not a denylist).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::BackupError;

/// File name of the database copy in a snapshot (SQLite).
pub const SQLITE_FILE: &str = "carnet.sqlite3";
/// File name of the database dump in a snapshot (PostgreSQL).
pub const POSTGRES_FILE: &str = "carnet.pgdump";
pub const BLOBS_DIR: &str = "blobs";
pub const CHECKPOINT_FILE: &str = "audit-checkpoints.log";
pub const CONFIG_FILE: &str = "config/carnet.toml";
/// Rows per table of the database copy, one `table count` per line: a restore drill
/// compares the restored database with it.
pub const COUNTS_FILE: &str = "database-counts.txt";

/// The database to copy.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(PathBuf),
    /// A PostgreSQL URL (passed to `pg_dump` through its environment, not its arguments).
    Postgres(String),
}

/// What an instance backs up.
#[derive(Clone, Debug)]
pub struct Sources {
    pub database: Database,
    /// The local blob directory; `None` when documents live in an S3 bucket (that bucket
    /// has its own versioning and replication; see the operator guide).
    pub blob_dir: Option<PathBuf>,
    pub checkpoint_file: Option<PathBuf>,
    /// The effective configuration, secrets removed (written for reference).
    pub config: Option<String>,
}

/// Builds the staging tree in `staging` (emptied first) and returns it.
pub fn stage(sources: &Sources, staging: &Path) -> Result<PathBuf, BackupError> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)
            .map_err(|error| BackupError::io(format!("vidage de {}", staging.display()), error))?;
    }
    create_private_dir(staging)?;
    // The checkpoint file before the database: every checkpoint it holds then refers to
    // entries the database copy has (a checkpoint beyond the copy would read as a
    // truncated trail when the copy is verified).
    if let Some(file) = &sources.checkpoint_file
        && file.exists()
    {
        copy_file(file, &staging.join(CHECKPOINT_FILE))?;
    }
    match &sources.database {
        Database::Sqlite(live) => {
            copy_sqlite(live, &staging.join(SQLITE_FILE))?;
            write_row_counts(&staging.join(SQLITE_FILE), &staging.join(COUNTS_FILE))?;
        }
        Database::Postgres(url) => dump_postgres(url, &staging.join(POSTGRES_FILE))?,
    }
    if let Some(blobs) = &sources.blob_dir
        && blobs.exists()
    {
        link_tree(blobs, &staging.join(BLOBS_DIR))?;
    }
    if let Some(config) = &sources.config {
        create_private_dir(&staging.join("config"))?;
        std::fs::write(staging.join(CONFIG_FILE), config)
            .map_err(|error| BackupError::io("écriture de la configuration", error))?;
    }
    Ok(staging.to_path_buf())
}

fn create_private_dir(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|error| BackupError::io(format!("création de {}", path.display()), error))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|error| BackupError::io(format!("copie de {}", from.display()), error))
}

/// SQLite's online backup API, in one step: the copy is one read transaction of the
/// live database (writers go on, in WAL mode), page for page, so unchanged pages stay
/// where they were and deduplicate.
fn copy_sqlite(live: &Path, copy: &Path) -> Result<(), BackupError> {
    use rusqlite::backup::{Backup, StepResult};
    use rusqlite::{Connection, OpenFlags};
    let database = |error: rusqlite::Error| BackupError::Database(error.to_string());
    let source = Connection::open_with_flags(
        live,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(database)?;
    source
        .busy_timeout(Duration::from_secs(30))
        .map_err(database)?;
    let mut destination = Connection::open(copy).map_err(database)?;
    // The copy needs no journal and no sync while it is written (a crash means a new
    // staging): without this it inherited WAL mode from the source's first page and every
    // page was written twice (WAL, then checkpoint) — measured ~2.5 s for 500 MB.
    destination
        .query_row("PRAGMA journal_mode=OFF", [], |_| Ok(()))
        .map_err(database)?;
    destination
        .execute_batch("PRAGMA synchronous=OFF;")
        .map_err(database)?;
    {
        let backup = Backup::new(&source, &mut destination).map_err(database)?;
        // All pages in one step (-1): one read transaction, hence one consistent state.
        let mut attempts = 0;
        loop {
            match backup.step(-1).map_err(database)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked if attempts < 300 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    return Err(BackupError::Database(
                        "la base est restée verrouillée 30 secondes".into(),
                    ));
                }
            }
        }
    }
    // Leaves one self-contained file (no -wal beside it).
    destination
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(database)?;
    destination.close().map_err(|(_, error)| database(error))?;
    let _ = std::fs::remove_file(copy.with_extension("sqlite3-wal"));
    let _ = std::fs::remove_file(copy.with_extension("sqlite3-shm"));
    Ok(())
}

/// Rows per table of the SQLite database at `database`, sorted by table name.
pub fn row_counts(database: &Path) -> Result<Vec<(String, i64)>, BackupError> {
    use rusqlite::{Connection, OpenFlags};
    let failed = |error: rusqlite::Error| BackupError::Database(error.to_string());
    let connection =
        Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(failed)?;
    let mut statement = connection
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .map_err(failed)?;
    let tables: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .map_err(failed)?
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    tables
        .into_iter()
        .map(|table| {
            // Table names come from the database's own catalogue, quoted.
            let quoted = table.replace('"', "\"\"");
            let count = connection
                .query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |row| {
                    row.get(0)
                })
                .map_err(failed)?;
            Ok((table, count))
        })
        .collect()
}

/// Reads a counts file written by [`stage`].
pub fn read_row_counts(file: &Path) -> Result<Vec<(String, i64)>, BackupError> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| BackupError::io(format!("lecture de {}", file.display()), error))?;
    text.lines()
        .map(|line| {
            let (table, count) = line.rsplit_once(' ').ok_or_else(|| {
                BackupError::Database(format!("ligne illisible dans {COUNTS_FILE}"))
            })?;
            let count = count.parse().map_err(|_| {
                BackupError::Database(format!("nombre illisible dans {COUNTS_FILE}"))
            })?;
            Ok((table.to_owned(), count))
        })
        .collect()
}

fn write_row_counts(database: &Path, file: &Path) -> Result<(), BackupError> {
    use std::fmt::Write as _;
    let mut text = String::new();
    for (table, count) in row_counts(database)? {
        let _ = writeln!(text, "{table} {count}");
    }
    std::fs::write(file, text)
        .map_err(|error| BackupError::io(format!("écriture de {}", file.display()), error))
}

/// `pg_dump` in custom format without compression (compressed dumps change entirely when
/// one row changes; the repository compresses anyway). The password goes through the
/// environment (`PGPASSWORD`) so it never shows in the process list.
fn dump_postgres(url: &str, file: &Path) -> Result<(), BackupError> {
    let (address, password) = split_password(url)?;
    let mut command = std::process::Command::new("pg_dump");
    command
        .args(["--format=custom", "--compress=0", "--no-owner", "--file"])
        .arg(file)
        .arg("--dbname")
        .arg(&address);
    // An instance confined to a schema (`options=-c search_path=…`) dumps that schema.
    if let Some(schema) = search_path_schema(&address) {
        command.arg("--schema").arg(schema);
    }
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().map_err(|error| {
        BackupError::Database(format!(
            "pg_dump ne démarre pas ({error}) : installez postgresql-client"
        ))
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BackupError::Database(format!(
            "pg_dump a échoué : {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// The schema a URL confines the connection to with `options=-c search_path=NAME`.
fn search_path_schema(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let options = parsed
        .query_pairs()
        .find(|(key, _)| key == "options")?
        .1
        .into_owned();
    let schema = options.split("search_path=").nth(1)?;
    let schema = schema.split([' ', ',']).next()?.trim_matches('"');
    (!schema.is_empty()).then(|| schema.to_owned())
}

/// The URL without its password, and the password.
fn split_password(url: &str) -> Result<(String, Option<String>), BackupError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|_| BackupError::Database("l'URL PostgreSQL n'est pas valide".into()))?;
    let password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    if password.is_some() {
        let _ = parsed.set_password(None);
    }
    Ok((parsed.to_string(), password))
}

/// Mirrors `from` into `to` with hard links (files under `from` are never rewritten in
/// place: a blob is written once under a new name). Unfinished blobs (`.partial`) are
/// skipped.
fn link_tree(from: &Path, to: &Path) -> Result<(), BackupError> {
    create_private_dir(to)?;
    let entries = std::fs::read_dir(from)
        .map_err(|error| BackupError::io(format!("lecture de {}", from.display()), error))?;
    for entry in entries {
        let entry = entry
            .map_err(|error| BackupError::io(format!("lecture de {}", from.display()), error))?;
        let name = entry.file_name();
        let source = entry.path();
        let destination = to.join(&name);
        let kind = entry
            .file_type()
            .map_err(|error| BackupError::io(format!("lecture de {}", source.display()), error))?;
        if kind.is_dir() {
            link_tree(&source, &destination)?;
        } else if kind.is_file()
            && !name.to_string_lossy().ends_with(".partial")
            && std::fs::hard_link(&source, &destination).is_err()
        {
            copy_file(&source, &destination)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{search_path_schema, split_password};

    #[test]
    fn the_password_leaves_the_url_and_a_confining_schema_is_found() {
        let (address, password) =
            split_password("postgres://carnet:p%40ss+w@db.example:5432/carnet").expect("url");
        assert_eq!(address, "postgres://carnet@db.example:5432/carnet");
        assert_eq!(password.as_deref(), Some("p@ss+w"));
        assert_eq!(
            search_path_schema("postgres://u@h/test?options=-c%20search_path%3Dcarnet_e2e"),
            Some("carnet_e2e".to_owned())
        );
        assert_eq!(search_path_schema("postgres://u@h/test"), None);
    }
}
