//! The staging directory: the tree a snapshot records, laid out as a data directory.
//!
//! ```text
//! carnet.sqlite3          SQLite online backup of the live database (a consistent copy)
//!   or carnet.pgdump      pg_dump custom format, uncompressed (so it deduplicates)
//! blobs/…                 the document blobs, hard-linked (immutable files; copied
//!                         when the staging directory is on another file system), or,
//!                         when documents live in an S3 bucket, a mirror of the bucket
//!                         kept from run to run (only new names are fetched)
//! audit-checkpoints.log   the checkpoint file, copied
//! database-counts.txt     rows per table of the SQLite copy (the restore drill checks)
//! config/carnet.toml      the effective configuration, secrets removed (for reference:
//!                         a restored instance does not read it from there)
//! ```
//!
//! Nothing else from the data directory is staged: not the instance key, the audit key,
//! the backup password or the TLS key (an allowlist, not a denylist).
//!
//! The SQLite copy and its counts are kept from one staging to the next: when the live
//! database has not changed since the kept copy was made (see [`stage_sqlite`]), it is
//! not copied again, and the kept file, with its modification time, is skipped by the
//! backup as unchanged instead of being read and hashed again. So is a bucket's mirror:
//! blobs are written once under new names and never rewritten, so a name already in the
//! mirror with the listed size is the same blob, and the file, untouched, is skipped by
//! the backup too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use carnet_service::{Blobs, S3Settings};

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

/// Where the document blobs are.
#[derive(Clone, Debug)]
pub enum BlobSource {
    /// A local directory: its files are hard-linked into the staging tree.
    Directory(PathBuf),
    /// An S3-compatible bucket: mirrored into the staging tree (see the module
    /// documentation); the node that backs up needs room for the documents.
    Bucket(S3Settings),
}

/// What an instance backs up.
#[derive(Clone, Debug)]
pub struct Sources {
    pub database: Database,
    pub blobs: Option<BlobSource>,
    pub checkpoint_file: Option<PathBuf>,
    /// The effective configuration, secrets removed (written for reference).
    pub config: Option<String>,
}

impl Sources {
    /// What stays in the staging directory from one run to the next: the SQLite copy and
    /// its counts, and a bucket's mirror.
    fn kept(&self) -> Vec<&'static str> {
        let mut kept = match self.database {
            Database::Sqlite(_) => vec![SQLITE_FILE, COUNTS_FILE],
            Database::Postgres(_) => Vec::new(),
        };
        if matches!(self.blobs, Some(BlobSource::Bucket(_))) {
            kept.push(BLOBS_DIR);
        }
        kept
    }
}

/// A staged tree, and what the documents' mirror fetched (bucket sources only).
#[derive(Debug)]
pub struct Staged {
    pub root: PathBuf,
    pub mirror: Option<MirrorReport>,
}

/// What bringing a bucket's mirror up to date did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorReport {
    /// Blobs in the bucket (hence in the mirror).
    pub blobs: usize,
    /// Blobs fetched by this run, and their bytes.
    pub fetched: usize,
    pub fetched_bytes: u64,
    /// Mirror files removed because the bucket no longer has them.
    pub dropped: usize,
}

/// The SQLite copy while it is written, before it replaces the kept one (never part of a
/// snapshot: it is renamed or removed before [`stage`] returns).
const FRESH_SQLITE_FILE: &str = "carnet-fresh.sqlite3";

/// Builds the staging tree in `staging` and returns it. Everything from an earlier
/// staging is removed first, except the SQLite copy, its counts and a bucket's mirror
/// (see the module documentation).
pub fn stage(sources: &Sources, staging: &Path) -> Result<Staged, BackupError> {
    create_private_dir(staging)?;
    empty_except(staging, &sources.kept())?;
    // The checkpoint file before the database: every checkpoint it holds then refers to
    // entries the database copy has (a checkpoint beyond the copy would read as a
    // truncated trail when the copy is verified).
    if let Some(file) = &sources.checkpoint_file
        && file.exists()
    {
        copy_file(file, &staging.join(CHECKPOINT_FILE))?;
    }
    match &sources.database {
        Database::Sqlite(live) => stage_sqlite(live, staging)?,
        Database::Postgres(url) => dump_postgres(url, &staging.join(POSTGRES_FILE))?,
    }
    // The documents after the database: every blob the copy refers to was written
    // before its row, hence is there now (blobs are never removed once referenced).
    let mut mirror = None;
    match &sources.blobs {
        Some(BlobSource::Directory(blobs)) if blobs.exists() => {
            link_tree(blobs, &staging.join(BLOBS_DIR))?;
        }
        Some(BlobSource::Bucket(settings)) => {
            mirror = Some(mirror_bucket(settings, &staging.join(BLOBS_DIR))?);
        }
        _ => {}
    }
    if let Some(config) = &sources.config {
        create_private_dir(&staging.join("config"))?;
        std::fs::write(staging.join(CONFIG_FILE), config)
            .map_err(|error| BackupError::io("écriture de la configuration", error))?;
    }
    Ok(Staged {
        root: staging.to_path_buf(),
        mirror,
    })
}

/// Tidies the staging directory after the backups: removes the document links, the
/// checkpoint and the configuration, keeps the SQLite copy, its counts and a bucket's
/// mirror for the next [`stage`] (a PostgreSQL dump is removed: it is made anew each
/// time).
pub fn tidy(sources: &Sources, staging: &Path) -> Result<(), BackupError> {
    if !staging.exists() {
        return Ok(());
    }
    empty_except(staging, &sources.kept())
}

/// Removes every entry of `dir` but those named in `kept`.
fn empty_except(dir: &Path, kept: &[&str]) -> Result<(), BackupError> {
    let failed = |error| BackupError::io(format!("vidage de {}", dir.display()), error);
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        if kept.iter().any(|name| entry.file_name() == *name) {
            continue;
        }
        if entry.file_type().map_err(failed)?.is_dir() {
            std::fs::remove_dir_all(entry.path()).map_err(failed)?;
        } else {
            std::fs::remove_file(entry.path()).map_err(failed)?;
        }
    }
    Ok(())
}

/// Blobs fetched at once from a bucket.
const FETCHES_IN_FLIGHT: usize = 4;

/// Brings the mirror `mirror` of a bucket up to date: fetches each blob whose name it
/// lacks (or holds at another size: a fetch cut short), removes what the bucket no
/// longer has, and leaves every other file untouched. A blob whose fetched size is not
/// the listed one fails the staging (never a short blob in a snapshot).
fn mirror_bucket(settings: &S3Settings, mirror: &Path) -> Result<MirrorReport, BackupError> {
    use futures_util::StreamExt as _;
    use std::collections::HashMap;
    let documents = |error: &dyn std::fmt::Display| BackupError::Documents(error.to_string());
    create_private_dir(mirror)?;
    let failed = |error| BackupError::io(format!("lecture de {}", mirror.display()), error);
    let mut held: HashMap<String, u64> = HashMap::new();
    for entry in std::fs::read_dir(mirror).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let meta = entry.metadata().map_err(failed)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if meta.is_file() && carnet_service::is_blob_name(&name) {
            held.insert(name, meta.len());
        } else {
            remove_entry(&entry.path(), meta.is_dir())?;
        }
    }
    crate::s3::block_on(async {
        let blobs = Blobs::s3(settings).map_err(|error| documents(&error))?;
        let listed = blobs.list().await.map_err(|error| documents(&error))?;
        let mut report = MirrorReport {
            blobs: listed.len(),
            ..MirrorReport::default()
        };
        let wanted: Vec<(String, u64)> = listed
            .iter()
            .filter(|(name, size)| held.get(name) != Some(size))
            .cloned()
            .collect();
        let mut fetches = futures_util::stream::iter(wanted)
            .map(|(name, size)| {
                let (blobs, path) = (blobs.clone(), mirror.join(&name));
                async move {
                    let got = blobs.download(&name, &path).await;
                    (name, size, got)
                }
            })
            .buffer_unordered(FETCHES_IN_FLIGHT);
        while let Some((name, size, got)) = fetches.next().await {
            let got = got.map_err(|error| documents(&error))?;
            if got != size {
                let _ = std::fs::remove_file(mirror.join(&name));
                return Err(documents(&format!(
                    "le document {name} fait {got} octets au lieu des {size} annoncés"
                )));
            }
            report.fetched += 1;
            report.fetched_bytes += got;
        }
        let in_bucket: std::collections::HashSet<&str> =
            listed.iter().map(|(name, _)| name.as_str()).collect();
        for name in held.keys() {
            if !in_bucket.contains(name.as_str()) {
                remove_entry(&mirror.join(name), false)?;
                report.dropped += 1;
            }
        }
        Ok(report)
    })
}

fn remove_entry(path: &Path, directory: bool) -> Result<(), BackupError> {
    let removed = if directory {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(|error| BackupError::io(format!("suppression de {}", path.display()), error))
}

/// Copies the live database unless the kept copy is still current, i.e. its stamp
/// (written beside the staging directory, never in a snapshot) matches: the live file
/// and its WAL have the size, modification time and inode they had just before that
/// copy began, the copy is as it was written, its counts are there, and it is less than
/// a day old (a full copy at least daily, whatever the timestamps say). This is the test
/// restic and git make for unchanged files, with git's guard against racy timestamps: a
/// state is only stamped when the newest modification is older than the file system's
/// timestamp granularity, measured on the file system's own clock (see
/// [`settled_state`]). The counts and the stamp are removed before the copy replaces the
/// kept one and written after, so a crash in between leaves neither, and the next
/// staging copies again.
fn stage_sqlite(live: &Path, staging: &Path) -> Result<(), BackupError> {
    let kept = staging.join(SQLITE_FILE);
    let counts = staging.join(COUNTS_FILE);
    let stamp_file = stamp_path(staging);
    let settled = settled_state(live, staging)?;
    let current = read_stamp(&stamp_file).is_some_and(|stamp| {
        settled.as_ref().is_some_and(|(sources, now)| {
            stamp.sources == *sources
                && now.saturating_sub(stamp.made) < STAMP_MAX_AGE_NS
                && counts.exists()
                && FileState::of(&kept).ok() == Some(stamp.copy)
        })
    });
    if current {
        return Ok(());
    }
    let remove = |path: &Path| match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(BackupError::io(
            format!("suppression de {}", path.display()),
            error,
        )),
        _ => Ok(()),
    };
    remove(&stamp_file)?;
    let fresh = staging.join(FRESH_SQLITE_FILE);
    copy_sqlite(live, &fresh)?;
    remove(&counts)?;
    std::fs::rename(&fresh, &kept)
        .map_err(|error| BackupError::io(format!("remplacement de {}", kept.display()), error))?;
    write_row_counts(&kept, &counts)?;
    if let Some((sources, now)) = settled {
        let stamp = Stamp {
            sources,
            copy: FileState::of(&kept)?,
            made: now,
        };
        std::fs::write(&stamp_file, stamp.to_text()).map_err(|error| {
            BackupError::io(format!("écriture de {}", stamp_file.display()), error)
        })?;
    }
    Ok(())
}

/// A full copy at least once a day, in nanoseconds of the file system's clock.
const STAMP_MAX_AGE_NS: i128 = 24 * 3600 * 1_000_000_000;

/// Where the stamp of the kept copy lives: beside the staging directory.
fn stamp_path(staging: &Path) -> PathBuf {
    with_suffix(staging, ".stamp")
}

/// A file as `stat` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileState {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
}

impl FileState {
    fn of(path: &Path) -> Result<Self, BackupError> {
        Self::of_optional(path)?.ok_or_else(|| {
            BackupError::io(
                format!("lecture de {}", path.display()),
                std::io::ErrorKind::NotFound.into(),
            )
        })
    }

    /// `None` when the file does not exist.
    fn of_optional(path: &Path) -> Result<Option<Self>, BackupError> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(BackupError::io(
                    format!("lecture de {}", path.display()),
                    error,
                ));
            }
        };
        Ok(Some(Self {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }))
    }

    fn to_text(self) -> String {
        format!(
            "{} {} {} {}",
            self.device, self.inode, self.size, self.modified_ns
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split(' ');
        let state = Self {
            device: fields.next()?.parse().ok()?,
            inode: fields.next()?.parse().ok()?,
            size: fields.next()?.parse().ok()?,
            modified_ns: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(state)
    }
}

/// The live database and its WAL (absent or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SourceState {
    database: FileState,
    wal: Option<FileState>,
}

impl SourceState {
    /// An empty WAL holds no frame: the same state as no WAL (a read-only connection,
    /// like the copy's own, leaves an empty one behind).
    fn of(live: &Path) -> Result<Self, BackupError> {
        Ok(Self {
            database: FileState::of(live)?,
            wal: FileState::of_optional(&with_suffix(live, "-wal"))?.filter(|wal| wal.size > 0),
        })
    }

    fn newest_ns(&self) -> i128 {
        self.wal.map_or(self.database.modified_ns, |wal| {
            wal.modified_ns.max(self.database.modified_ns)
        })
    }
}

/// What a kept copy was made from, the copy as written, and when (file system clock).
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    sources: SourceState,
    copy: FileState,
    made: i128,
}

impl Stamp {
    fn to_text(&self) -> String {
        format!(
            "database {}\nwal {}\ncopy {}\nmade {}\n",
            self.sources.database.to_text(),
            self.sources
                .wal
                .map_or_else(|| "none".to_owned(), FileState::to_text),
            self.copy.to_text(),
            self.made
        )
    }

    /// Anything unreadable is no stamp (the database is copied again).
    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ');
        let database = FileState::parse(field("database")?)?;
        let wal = match field("wal")? {
            "none" => None,
            other => Some(FileState::parse(other)?),
        };
        let copy = FileState::parse(field("copy")?)?;
        let made = field("made")?.parse().ok()?;
        Some(Self {
            sources: SourceState { database, wal },
            copy,
            made,
        })
    }
}

fn read_stamp(path: &Path) -> Option<Stamp> {
    Stamp::parse(&std::fs::read_to_string(path).ok()?)
}

/// The sources' state once their newest modification is older than the timestamp
/// granularity (a later write then cannot carry the same timestamp), with the file
/// system's "now" read from a probe file written in `staging`. Waits up to twice for
/// writes to settle; `None` when they go on (the copy is then made and not stamped).
fn settled_state(live: &Path, staging: &Path) -> Result<Option<(SourceState, i128)>, BackupError> {
    /// Timestamps with nanoseconds come from a clock of a few milliseconds' resolution;
    /// whole seconds may be a file system with 1 s (or FAT's 2 s) resolution.
    const FINE_NS: i128 = 100_000_000;
    const COARSE_NS: i128 = 2_000_000_000;
    let probe = staging.join(".horloge");
    for _ in 0..3 {
        let sources = SourceState::of(live)?;
        std::fs::write(&probe, b"")
            .map_err(|error| BackupError::io(format!("écriture de {}", probe.display()), error))?;
        let now = FileState::of(&probe)?.modified_ns;
        let _ = std::fs::remove_file(&probe);
        let newest = sources.newest_ns();
        let margin = if newest % 1_000_000_000 == 0 || now % 1_000_000_000 == 0 {
            COARSE_NS
        } else {
            FINE_NS
        };
        let age = now - newest;
        if age >= margin {
            return Ok(Some((sources, now)));
        }
        let wait = u64::try_from((margin - age.max(0)).min(COARSE_NS)).unwrap_or(0);
        std::thread::sleep(Duration::from_nanos(wait));
    }
    Ok(None)
}

/// `path` with `suffix` appended to its file name (`x.sqlite3` → `x.sqlite3-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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
    let _ = std::fs::remove_file(with_suffix(copy, "-wal"));
    let _ = std::fs::remove_file(with_suffix(copy, "-shm"));
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
    text.lines().map(parse_count_line).collect()
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
/// environment (`PGPASSWORD`) so it never shows in the process list. The care records'
/// row-level security (migration 0014) applies to Carnet's role: the dump works
/// instance-wide and keeps row security on, so it holds every practice's rows without
/// needing a role that bypasses the policies.
fn dump_postgres(url: &str, file: &Path) -> Result<(), BackupError> {
    let (address, password) = split_password(&instance_wide(url)?)?;
    let mut command = std::process::Command::new("pg_dump");
    command
        .args([
            "--format=custom",
            "--compress=0",
            "--no-owner",
            "--enable-row-security",
            "--file",
        ])
        .arg(file)
        .arg("--dbname")
        .arg(&address);
    // An instance confined to a schema (`options=-c search_path=…`) dumps that schema.
    if let Some(schema) = search_path_schema(&address) {
        command.arg("--schema").arg(schema);
    }
    run_postgres_tool(command, password.as_deref(), "pg_dump").map(drop)
}

/// Loads the dump `dump` into a new database `name` on the server of `url` (a leftover
/// of that name, from an interrupted drill, is dropped first) and returns that database's
/// URL (same role, password and options). The role needs the CREATEDB privilege.
pub fn load_postgres_dump(url: &str, dump: &Path, name: &str) -> Result<String, BackupError> {
    drop_postgres_database(url, name)?;
    psql(url, &format!("CREATE DATABASE \"{}\"", checked_name(name)?))?;
    let mut scratch = url::Url::parse(url)
        .map_err(|_| BackupError::Database("l'URL PostgreSQL n'est pas valide".into()))?;
    scratch.set_path(&format!("/{name}"));
    let (address, password) = split_password(scratch.as_str())?;
    let mut command = std::process::Command::new("pg_restore");
    command
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&address)
        .arg(dump);
    run_postgres_tool(command, password.as_deref(), "pg_restore")?;
    Ok(scratch.to_string())
}

/// Drops the database `name` on the server of `url`, if it exists.
pub fn drop_postgres_database(url: &str, name: &str) -> Result<(), BackupError> {
    psql(
        url,
        &format!("DROP DATABASE IF EXISTS \"{}\"", checked_name(name)?),
    )
}

/// A scratch database name: lower-case letters, digits and underscores only (it is put
/// in SQL as a quoted identifier).
fn checked_name(name: &str) -> Result<&str, BackupError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
    {
        Ok(name)
    } else {
        Err(BackupError::Database(format!(
            "nom de base temporaire refusé : {name}"
        )))
    }
}

fn psql(url: &str, sql: &str) -> Result<(), BackupError> {
    psql_output(url, &["--quiet"], sql).map(drop)
}

/// Runs one SQL command with `psql` on `url` (stop at the first error, no `.psqlrc`,
/// `options` as formatting flags) and returns what it printed.
fn psql_output(url: &str, options: &[&str], sql: &str) -> Result<Vec<u8>, BackupError> {
    let (address, password) = split_password(url)?;
    let mut command = std::process::Command::new("psql");
    command
        .arg("--no-psqlrc")
        .args(options)
        .args(["--set", "ON_ERROR_STOP=1", "--dbname"])
        .arg(&address)
        .arg("--command")
        .arg(sql);
    run_postgres_tool(command, password.as_deref(), "psql")
}

/// Rows per table of a database (user tables of every schema), sorted by table name.
pub fn postgres_row_counts(url: &str) -> Result<Vec<(String, i64)>, BackupError> {
    // One statement: each table's count through query_to_xml (names quoted by format).
    const COUNTS: &str = "SELECT c.relname, (xpath('/row/n/text()', query_to_xml(\
        format('SELECT count(*) AS n FROM %I.%I', s.nspname, c.relname), false, true, '')))[1]\
        ::text FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
        WHERE c.relkind IN ('r', 'p') AND s.nspname NOT IN ('pg_catalog', 'information_schema') \
        AND s.nspname NOT LIKE 'pg_toast%' ORDER BY 1";
    let output = psql_output(
        &instance_wide(url)?,
        &["--no-align", "--tuples-only", "--field-separator= "],
        COUNTS,
    )?;
    String::from_utf8_lossy(&output)
        .lines()
        .filter(|line| !line.is_empty())
        .map(parse_count_line)
        .collect()
}

/// Rows per table held in a `pg_dump` custom-format file, counted in its data (each row
/// of a text `COPY` block is one line), sorted by table name: what a restore of that
/// dump must hold. The dump is streamed through `pg_restore`, never held in memory.
pub fn dump_row_counts(dump: &Path) -> Result<Vec<(String, i64)>, BackupError> {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new("pg_restore")
        .args(["--data-only", "--file=-"])
        .arg(dump)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| tool_missing("pg_restore", &error))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| BackupError::Database("pg_restore : sortie indisponible".into()))?;
    let mut counts: Vec<(String, i64)> = Vec::new();
    let mut current: Option<(String, i64)> = None;
    for line in std::io::BufReader::new(stdout).split(b'\n') {
        let line = line.map_err(|error| BackupError::io("lecture du dump", error))?;
        match &mut current {
            Some((_, rows)) if line.as_slice() != b"\\." => *rows += 1,
            Some(_) => counts.extend(current.take()),
            None => {
                if let Some(table) = line
                    .strip_prefix(b"COPY ")
                    .and_then(|rest| rest.split(|byte| *byte == b' ').next())
                {
                    let table = String::from_utf8_lossy(table);
                    let name = table.rsplit('.').next().unwrap_or_default();
                    current = Some((name.trim_matches('"').to_owned(), 0));
                }
            }
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|error| BackupError::io("pg_restore", error))?;
    if !output.status.success() || current.is_some() {
        return Err(BackupError::Database(format!(
            "pg_restore n'a pas pu lire le dump : {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    counts.sort();
    Ok(counts)
}

fn tool_missing(tool: &str, error: &std::io::Error) -> BackupError {
    BackupError::Database(format!(
        "{tool} ne démarre pas ({error}) : installez postgresql-client"
    ))
}

fn parse_count_line(line: &str) -> Result<(String, i64), BackupError> {
    line.rsplit_once(' ')
        .and_then(|(table, count)| Some((table.to_owned(), count.trim().parse().ok()?)))
        .ok_or_else(|| BackupError::Database(format!("compte de lignes illisible : {line}")))
}

/// Runs a PostgreSQL client tool, the password in its environment; returns what it
/// printed.
fn run_postgres_tool(
    mut command: std::process::Command,
    password: Option<&str>,
    tool: &str,
) -> Result<Vec<u8>, BackupError> {
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command
        .output()
        .map_err(|error| tool_missing(tool, &error))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(BackupError::Database(format!(
            "{tool} a échoué : {}",
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

/// `url` with the session setting that lets its queries see every practice's care
/// records under row-level security (`carnet.instance_wide`, migration 0014), added to
/// the URL's own `options` (libpq lets them override `PGOPTIONS`).
fn instance_wide(url: &str) -> Result<String, BackupError> {
    const SETTING: &str = "-c carnet.instance_wide=on";
    let mut parsed = url::Url::parse(url)
        .map_err(|_| BackupError::Database("l'URL PostgreSQL n'est pas valide".into()))?;
    let mut pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    match pairs.iter_mut().find(|(key, _)| key == "options") {
        Some((_, options)) => {
            options.push(' ');
            options.push_str(SETTING);
        }
        None => pairs.push(("options".to_owned(), SETTING.to_owned())),
    }
    // Percent-encoded by hand: libpq decodes `%20` but not the `+` of form encoding.
    let encode = |text: &str| {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let query = pairs
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    parsed.set_query(Some(&query));
    Ok(parsed.to_string())
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
    use super::{FileState, SourceState, Stamp, instance_wide, search_path_schema, split_password};

    #[test]
    fn a_stamp_reads_back_and_anything_else_is_no_stamp() {
        let file = |n: u64| FileState {
            device: 2049,
            inode: n,
            size: n * 4096,
            modified_ns: 1_796_512_948_424_558_379 + i128::from(n),
        };
        for wal in [None, Some(file(2))] {
            let stamp = Stamp {
                sources: SourceState {
                    database: file(1),
                    wal,
                },
                copy: file(3),
                made: 1_796_512_949_000_000_001,
            };
            assert_eq!(Stamp::parse(&stamp.to_text()), Some(stamp));
        }
        for text in [
            "",
            "database 1 2 3\nwal none\ncopy 1 2 3 4\nmade 5\n",
            "database 1 2 3 4\nwal none\ncopy 1 2 3 4 5\nmade 5\n",
            "database 1 2 3 4\ncopy 1 2 3 4\nwal none\nmade 5\n",
            "database 1 2 3 4\nwal none\ncopy 1 2 3 4\nmade x\n",
        ] {
            assert_eq!(Stamp::parse(text), None, "{text:?}");
        }
    }

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

    #[test]
    fn instance_wide_adds_its_setting_to_the_url_options() {
        assert_eq!(
            instance_wide("postgres://u:p@h/test?sslmode=require&options=-c%20search_path%3Ds")
                .expect("valid"),
            "postgres://u:p@h/test?sslmode=require&options=%2Dc%20search%5Fpath%3Ds%20%2Dc%20\
             carnet%2Einstance%5Fwide%3Don"
        );
        assert_eq!(
            instance_wide("postgres://u@h/test").expect("valid"),
            "postgres://u@h/test?options=%2Dc%20carnet%2Einstance%5Fwide%3Don"
        );
        assert_eq!(
            search_path_schema(
                &instance_wide("postgres://u@h/t?options=-c%20search_path%3Ds").expect("valid")
            ),
            Some("s".to_owned())
        );
    }
}
