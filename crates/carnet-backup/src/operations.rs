//! Backup, check, retention and restore on one target.

use std::path::{Path, PathBuf};

use rustic_core::jiff::Zoned;
use rustic_core::{
    BackupOptions, CheckOptions, LsOptions, ParentOptions, PathList, PruneOptions,
    ReadSubsetOption, SnapshotOptions,
};

use crate::repository::{Password, SNAPSHOT_ROOT, open, open_or_init};
use crate::{BackupError, RetentionPolicy, Target};

/// What one backup did.
#[derive(Clone, Debug)]
pub struct BackupReport {
    pub snapshot: String,
    /// Bytes written to the repository (after deduplication and compression).
    pub bytes_added: u64,
    pub files: u64,
    pub bytes_processed: u64,
}

/// One snapshot, as listed.
#[derive(Clone, Debug)]
pub struct SnapshotSummary {
    pub id: String,
    pub time: Zoned,
    pub bytes_added: u64,
    pub files: u64,
}

/// What a check found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Whether pack contents were read (and which part: `(n, of)`), or only the structure.
    pub read_data: Option<(u32, u32)>,
}

#[derive(Clone, Debug)]
pub struct RestoreReport {
    pub snapshot: String,
    pub files: u64,
    pub bytes: u64,
}

fn rustic(target: &Target) -> impl Fn(Box<rustic_core::RusticError>) -> BackupError + '_ {
    move |error| BackupError::from_rustic(&target.name, &error)
}

/// Backs `staged` (see [`crate::stage`]) up to `target` as a snapshot taken at `time`,
/// creating the repository on first use.
pub fn backup(
    target: &Target,
    password: &Password,
    staged: &Path,
    time: Zoned,
) -> Result<BackupReport, BackupError> {
    let repository = open_or_init(target, password)?
        .to_indexed_ids()
        .map_err(rustic(target))?;
    let snapshot = SnapshotOptions::default()
        .host("carnet".to_owned())
        .time(time)
        .add_tags("carnet")
        .and_then(|options| options.to_snapshot())
        .map_err(rustic(target))?;
    // The staging tree is rebuilt each time (new hard links, new copies): files are
    // matched to the parent snapshot by size and modification time only.
    let options = BackupOptions::default()
        .as_path(PathBuf::from(SNAPSHOT_ROOT))
        .no_scan(true)
        .parent_opts(
            ParentOptions::default()
                .ignore_ctime(true)
                .ignore_inode(true),
        );
    let staged = std::path::absolute(staged)
        .map_err(|error| BackupError::io("dossier de préparation", error))?;
    let source: PathList = [staged].into_iter().collect();
    let saved = repository
        .backup(&options, &source, snapshot)
        .map_err(rustic(target))?;
    let summary = saved.summary.unwrap_or_default();
    Ok(BackupReport {
        snapshot: saved.id.to_string(),
        bytes_added: summary.data_added_packed,
        files: summary.total_files_processed,
        bytes_processed: summary.total_bytes_processed,
    })
}

/// The target's snapshots, oldest first.
pub fn snapshots(
    target: &Target,
    password: &Password,
) -> Result<Vec<SnapshotSummary>, BackupError> {
    let repository = open(target, password)?;
    let mut all = repository.get_all_snapshots().map_err(rustic(target))?;
    all.sort_by_key(|snapshot| snapshot.time.timestamp());
    Ok(all
        .into_iter()
        .map(|snapshot| {
            let summary = snapshot.summary.unwrap_or_default();
            SnapshotSummary {
                id: snapshot.id.to_string(),
                time: snapshot.time,
                bytes_added: summary.data_added_packed,
                files: summary.total_files_processed,
            }
        })
        .collect())
}

/// Checks the repository's structure (index, snapshots, trees: every referenced blob is
/// in a pack), and with `read_data = Some((n, of))` also reads and authenticates the
/// n-th of `of` slices of the packs (the weekly rolling read: `of = 4` re-reads every
/// byte every four weeks).
pub fn check(
    target: &Target,
    password: &Password,
    read_data: Option<(u32, u32)>,
) -> Result<CheckReport, BackupError> {
    let repository = open(target, password)?;
    let mut options = CheckOptions::default().read_data(read_data.is_some());
    if let Some(slice) = read_data {
        options = options.read_data_subset(if slice.1 <= 1 {
            ReadSubsetOption::All
        } else {
            ReadSubsetOption::IdSubSet(slice)
        });
    }
    let corrupted = |detail: String| BackupError::Corrupted {
        target: target.name.clone(),
        detail,
    };
    let results = repository
        .check(options)
        .map_err(|error| corrupted(error.display_log()))?;
    results
        .is_ok()
        .map_err(|error| corrupted(error.display_log()))?;
    Ok(CheckReport { read_data })
}

/// Forgets the snapshots `policy` does not keep at `now`, then prunes the data only they
/// used. Returns the forgotten snapshot ids. Not on an append-only target (the server's
/// credentials there cannot delete; prune runs elsewhere with other credentials).
///
/// `exclusive`: the caller holds the instance's backup lease, so no backup writes to the
/// repository meanwhile and unused packs go at once. Otherwise (a prune run elsewhere
/// while the server may be backing up) packs are only marked, and removed by a later
/// prune a day on (rustic's two-phase deletion, safe against a concurrent backup).
pub fn forget_and_prune(
    target: &Target,
    password: &Password,
    policy: &RetentionPolicy,
    now: &Zoned,
    exclusive: bool,
) -> Result<Vec<String>, BackupError> {
    let repository = open(target, password)?;
    let all = repository.get_all_snapshots().map_err(rustic(target))?;
    let forget: Vec<_> = policy
        .to_forget(all, now)
        .map_err(rustic(target))?
        .into_iter()
        .map(|snapshot| snapshot.id)
        .collect();
    if forget.is_empty() {
        return Ok(Vec::new());
    }
    repository
        .delete_snapshots(&forget)
        .map_err(rustic(target))?;
    let options = PruneOptions::default().instant_delete(exclusive);
    let plan = repository.prune_plan(&options).map_err(rustic(target))?;
    repository.prune(&options, plan).map_err(rustic(target))?;
    Ok(forget.iter().map(ToString::to_string).collect())
}

/// The repository, indexed for reading files, and the snapshot `snapshot` names.
fn indexed_snapshot(
    target: &Target,
    password: &Password,
    snapshot: &str,
) -> Result<
    (
        rustic_core::Repository<rustic_core::IndexedFullStatus>,
        rustic_core::repofile::SnapshotFile,
    ),
    BackupError,
> {
    let repository = open(target, password)?
        .to_indexed()
        .map_err(rustic(target))?;
    let found = repository
        .get_snapshot_from_str(snapshot, |_| true)
        .map_err(|_| BackupError::NoSnapshot {
            target: target.name.clone(),
            snapshot: snapshot.to_owned(),
        })?;
    Ok((repository, found))
}

/// Restores snapshot `snapshot` (an id, a unique id prefix, or `latest`) into `to`, a new
/// or empty directory: it becomes a data directory (keys not included). Files named in
/// `may_exist` may already be there (the keys put back from the recovery kit); any other
/// entry refuses the restore: nothing is overwritten.
pub fn restore(
    target: &Target,
    password: &Password,
    snapshot: &str,
    to: &Path,
    may_exist: &[&str],
) -> Result<RestoreReport, BackupError> {
    let occupied = to.exists()
        && std::fs::read_dir(to)
            .map_err(|error| BackupError::io(format!("lecture de {}", to.display()), error))?
            .filter_map(Result::ok)
            .any(|entry| {
                !may_exist
                    .iter()
                    .any(|name| entry.file_name().to_str() == Some(name))
            });
    if occupied {
        return Err(BackupError::io(
            format!("restauration dans {}", to.display()),
            std::io::Error::other(
                "le dossier n'est pas vide : rien n'est écrasé, choisissez un dossier neuf",
            ),
        ));
    }
    let (repository, found) = indexed_snapshot(target, password, snapshot)?;
    let node = repository
        .node_from_snapshot_path(&format!("{}:{SNAPSHOT_ROOT}", found.id), |_| true)
        .map_err(rustic(target))?;
    let nodes = repository
        .ls(&node, &LsOptions::default())
        .map_err(rustic(target))?;
    // File by file, each streamed blob after blob (`dump`, which reads a few blobs ahead
    // in parallel and in order): memory stays a few chunks per file. rustic_core's own
    // restore reads whole packs on 20 threads at once (measured: ~10× restic's memory).
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        restore_nodes(&repository, nodes, to)
    }))
    .map_err(|_| BackupError::Corrupted {
        target: target.name.clone(),
        detail: "une partie des données ne se relit pas pendant la restauration".into(),
    })?
    .map_err(|error| match error {
        RestoreFailure::Repository(error) => BackupError::from_rustic(&target.name, &error),
        RestoreFailure::Write(context, error) => BackupError::io(context, error),
    })?;
    Ok(RestoreReport {
        snapshot: found.id.to_string(),
        files: written.0,
        bytes: written.1,
    })
}

enum RestoreFailure {
    Repository(Box<rustic_core::RusticError>),
    Write(String, std::io::Error),
}

/// Files restored at once (each streamed by `dump`, which itself reads ahead in
/// parallel): enough to keep a disk and the decryption busy with small documents.
const RESTORE_WORKERS: usize = 4;

/// Writes every node under `to` (directories 0700, files 0600, as a data directory
/// wants); returns (files, bytes). Directories first, then the files, largest first,
/// shared among a few workers. Files are not synced one by one (as restic does not):
/// run `sync` before relying on a restored directory after a power cut.
fn restore_nodes(
    repository: &rustic_core::Repository<rustic_core::IndexedFullStatus>,
    nodes: impl Iterator<Item = rustic_core::RusticResult<(PathBuf, rustic_core::repofile::Node)>>,
    to: &Path,
) -> Result<(u64, u64), RestoreFailure> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let create_dir = |path: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|error| {
                RestoreFailure::Write(format!("création de {}", path.display()), error)
            })
    };
    create_dir(to)?;
    let mut files = Vec::new();
    for entry in nodes {
        let (path, node) = entry.map_err(RestoreFailure::Repository)?;
        if node.is_dir() {
            create_dir(&to.join(&path))?;
        } else if node.is_file() {
            files.push((path, node));
        }
    }
    files.sort_by_key(|(_, node)| std::cmp::Reverse(node.meta.size));
    let totals = (
        files.len() as u64,
        files.iter().map(|(_, node)| node.meta.size).sum(),
    );
    let queue = std::sync::Mutex::new(files.into_iter());
    let write_one = |path: &Path, node: &rustic_core::repofile::Node| {
        let destination = to.join(path);
        if let Some(parent) = destination.parent() {
            create_dir(parent)?;
        }
        let failed =
            |error| RestoreFailure::Write(format!("écriture de {}", destination.display()), error);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&destination)
            .map_err(failed)?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        repository
            .dump(node, &mut writer)
            .map_err(RestoreFailure::Repository)?;
        writer
            .into_inner()
            .map(drop)
            .map_err(|error| failed(error.into_error()))
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..RESTORE_WORKERS)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().ok().and_then(|mut files| files.next());
                        let Some((path, node)) = next else {
                            return Ok(());
                        };
                        write_one(&path, &node)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })?;
    Ok(totals)
}

/// Writes the file `path` (relative to the data directory, e.g. `blobs/NAME`) as it was
/// in snapshot `snapshot` to `out`. Returns the snapshot id.
pub fn restore_file(
    target: &Target,
    password: &Password,
    snapshot: &str,
    path: &str,
    out: &mut impl std::io::Write,
) -> Result<String, BackupError> {
    let (repository, found) = indexed_snapshot(target, password, snapshot)?;
    let node = repository
        .node_from_snapshot_path(
            &format!(
                "{}:{SNAPSHOT_ROOT}/{}",
                found.id,
                path.trim_start_matches('/')
            ),
            |_| true,
        )
        .map_err(|_| BackupError::NoSuchFile {
            target: target.name.clone(),
            path: path.to_owned(),
        })?;
    repository.dump(&node, out).map_err(rustic(target))?;
    Ok(found.id.to_string())
}
