//! The backup engine against the `restic` tool (Debian), on the same synthetic practice,
//! in the same run: ratios, never absolute times. Selected by `CARNET_BENCH` (skipped
//! when unset): `full` (a ~500 MB database and ~500 MB of documents, release build),
//! `smoke` (a few MB; CI runs it so the harness keeps working):
//!
//! ```sh
//! CARNET_BENCH=full cargo nextest run --release --workspace -E 'test(benchmark_backup)' --no-capture
//! ```
//!
//! Both tools run as child processes, measured the same way (wall time; peak resident
//! memory read from `/proc/PID/status` while they run). Carnet's side is this test binary
//! re-run on one operation: staging (the SQLite online backup copy, hard-linked
//! documents) then the backup, or the restore. restic: `--no-cache`, default chunker and
//! compression.
//!
//! Measures: initial backup (time, peak memory); bytes added after rewriting 1 % of the
//! database pages at random; a backup with no change (time); restore (throughput, peak
//! memory); and the restored tree compared byte for byte with what was backed up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use carnet_backup::stage::{self, BlobSource, Database, Sources};
use carnet_backup::{Location, Password, Target};

struct Scale {
    database_mb: usize,
    document_mb: usize,
    document_count: usize,
}

fn scale() -> Option<&'static Scale> {
    static FULL: Scale = Scale {
        database_mb: 500,
        document_mb: 500,
        document_count: 100,
    };
    static SMOKE: Scale = Scale {
        database_mb: 8,
        document_mb: 8,
        document_count: 4,
    };
    match std::env::var("CARNET_BENCH").as_deref() {
        Ok("full") => Some(&FULL),
        Ok("smoke") => Some(&SMOKE),
        Ok(other) => panic!("CARNET_BENCH is full or smoke, not {other:?}"),
        Err(_) => None,
    }
}

/// Incompressible bytes (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2).wrapping_add(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Rows of ~3 KB: one per 4 KiB page, so rewriting 1 % of the rows rewrites ~1 % of
/// the pages, scattered.
const ROW_BYTES: usize = 3000;

fn build_practice(root: &Path, scale: &Scale) -> usize {
    let database = rusqlite::Connection::open(root.join("carnet.sqlite3")).expect("db");
    database
        .execute_batch(
            "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; \
             CREATE TABLE sealed (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .expect("schema");
    let rows = scale.database_mb * 1024 * 1024 / 4096;
    let transaction = database.unchecked_transaction().expect("tx");
    for row in 0..rows {
        transaction
            .execute(
                "INSERT INTO sealed (id, body) VALUES (?1, ?2)",
                rusqlite::params![row as i64, noise(row as u64 + 1, ROW_BYTES)],
            )
            .expect("insert");
    }
    transaction.commit().expect("commit");
    database
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    std::fs::create_dir_all(root.join("blobs")).expect("blobs");
    let each = scale.document_mb * 1024 * 1024 / scale.document_count;
    for document in 0..scale.document_count {
        std::fs::write(
            root.join("blobs").join(format!("document-{document:04}")),
            noise(1_000_000 + document as u64, each),
        )
        .expect("document");
    }
    rows
}

/// Rewrites 1 % of the rows (hence pages), picked at random, with new bytes.
fn rewrite_one_percent(root: &Path, rows: usize) {
    let database = rusqlite::Connection::open(root.join("carnet.sqlite3")).expect("db");
    let transaction = database.unchecked_transaction().expect("tx");
    let mut pick = 0x9e37_79b9_7f4a_7c15_u64;
    for n in 0..rows / 100 {
        pick ^= pick << 13;
        pick ^= pick >> 7;
        pick ^= pick << 17;
        transaction
            .execute(
                "UPDATE sealed SET body = ?1 WHERE id = ?2",
                rusqlite::params![
                    noise(7_000_000 + n as u64, ROW_BYTES),
                    (pick % rows as u64) as i64
                ],
            )
            .expect("update");
    }
    transaction.commit().expect("commit");
    database
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// What a measured run gives: seconds, peak resident MiB (`VmHWM`: this counts the pages
/// of a memory-mapped file too, which are page cache), peak anonymous MiB (`RssAnon`,
/// sampled every 5 ms: what the program itself allocated), and its stdout.
struct Measured {
    seconds: f64,
    peak: f64,
    anonymous: f64,
    stdout: String,
}

/// Runs `command` to completion, reading its memory from `/proc/PID/status` meanwhile.
#[expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
fn measure(mut command: Command) -> Measured {
    let start = std::time::Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the measured program starts");
    let status_path = format!("/proc/{}/status", child.id());
    let (mut peak_kib, mut anonymous_kib) = (0, 0);
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            peak_kib = peak_kib.max(status_kib(&status, "VmHWM:").unwrap_or(0));
            anonymous_kib = anonymous_kib.max(status_kib(&status, "RssAnon:").unwrap_or(0));
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Measured {
        seconds: start.elapsed().as_secs_f64(),
        peak: peak_kib as f64 / 1024.0,
        anonymous: anonymous_kib as f64 / 1024.0,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

fn restic(repository: &Path, password_file: &Path, args: &[&str]) -> Measured {
    let mut command = Command::new("restic");
    command
        .arg("--repo")
        .arg(repository)
        .arg("--password-file")
        .arg(password_file)
        .args(["--no-cache", "--quiet"])
        .args(args);
    measure(command)
}

const PASSWORD: &str = "mot-de-passe-du-banc-d-essai";

/// Carnet's side in a process of its own, as restic's: this test binary, re-run on
/// [`child_process_for_benchmarks`] with the operation in the environment. Returns
/// the measure and the seconds spent staging.
fn carnet(
    operation: &str,
    repository: &Path,
    practice: &Path,
    work: &Path,
    time: i64,
) -> (Measured, f64) {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args([
            "--exact",
            "child_process_for_benchmarks",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CARNET_BENCH_CHILD", operation)
        .env("CARNET_BENCH_REPOSITORY", repository)
        .env("CARNET_BENCH_PRACTICE", practice)
        .env("CARNET_BENCH_WORK", work)
        .env("CARNET_BENCH_TIME", time.to_string());
    let measured = measure(command);
    // libtest may print "test … " on the same line first.
    let staging = measured
        .stdout
        .split("staging-seconds ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(f64::NAN);
    (measured, staging)
}

#[expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
fn timed<T>(work: impl FnOnce() -> T) -> (T, f64) {
    let start = std::time::Instant::now();
    let value = work();
    (value, start.elapsed().as_secs_f64())
}

/// Not a test: the entry point of [`carnet`]'s child processes (returns at once in a
/// normal run). Backs up the practice (staging into WORK) or restores into WORK.
#[test]
fn child_process_for_benchmarks() {
    let Ok(operation) = std::env::var("CARNET_BENCH_CHILD") else {
        return;
    };
    let var = |name: &str| PathBuf::from(std::env::var(name).expect(name));
    let target = Target {
        name: "banc".into(),
        location: Location::Local(var("CARNET_BENCH_REPOSITORY")),
        append_only: false,
    };
    let password = Password::new(PASSWORD.into());
    match operation.as_str() {
        "backup" => {
            let practice = var("CARNET_BENCH_PRACTICE");
            let sources = Sources {
                database: Database::Sqlite(practice.join("carnet.sqlite3")),
                blobs: Some(BlobSource::Directory(practice.join("blobs"))),
                checkpoint_file: None,
                config: None,
            };
            let time: i64 = std::env::var("CARNET_BENCH_TIME")
                .expect("time")
                .parse()
                .expect("time");
            let at = carnet_backup::jiff::Timestamp::from_second(time)
                .expect("time")
                .to_zoned(carnet_backup::jiff::tz::TimeZone::UTC);
            let (staged, seconds) = timed(|| {
                stage::stage(&sources, &var("CARNET_BENCH_WORK"))
                    .expect("staged")
                    .root
            });
            carnet_backup::backup(&target, &password, &staged, at).expect("backup");
            report(&format!("staging-seconds {seconds:.3}"));
        }
        "restore" => {
            carnet_backup::restore(&target, &password, "latest", &var("CARNET_BENCH_WORK"), &[])
                .expect("restore");
        }
        other => panic!("unknown operation {other}"),
    }
}

/// Bytes under `root`: a repository's growth is what a backup added (packs, index,
/// snapshot), measured the same way for both tools.
fn directory_bytes(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                total += std::fs::metadata(&path).expect("meta").len();
            }
        }
    }
    total
}

fn same_tree(a: &Path, b: &Path) -> bool {
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for entry in std::fs::read_dir(a.join(&relative)).expect("read dir") {
            let entry = entry.expect("entry");
            let name = relative.join(entry.file_name());
            if entry.path().is_dir() {
                stack.push(name);
            } else if std::fs::read(a.join(&name)).ok() != std::fs::read(b.join(&name)).ok() {
                return false;
            }
        }
    }
    true
}

#[expect(clippy::print_stdout, reason = "the benchmark reports its measures")]
fn report(line: &str) {
    println!("{line}");
}

#[test]
fn benchmark_backup_against_restic() {
    let Some(scale) = scale() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let practice = dir.path().join("practice");
    std::fs::create_dir(&practice).expect("practice");
    let rows = build_practice(&practice, scale);
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, PASSWORD).expect("password file");
    let carnet_repo = dir.path().join("carnet-repo");
    let restic_repo = dir.path().join("restic-repo");
    restic(&restic_repo, &password_file, &["init"]);
    let staging = dir.path().join("staging");
    let mut time = 1_780_000_000;
    let mut carnet_backup = || {
        time += 3600;
        carnet("backup", &carnet_repo, &practice, &staging, time)
    };
    let practice_arg = practice.to_str().expect("utf-8");

    // 1. Initial backup.
    let (carnet_run, staging_seconds) = carnet_backup();
    let restic_run = restic(&restic_repo, &password_file, &["backup", practice_arg]);
    report(&format!(
        "initial backup: Carnet {:.2} s (staging {staging_seconds:.2} s), peak {:.0} MiB \
         ({:.0} MiB anonymous); restic {:.2} s, peak {:.0} MiB ({:.0} MiB anonymous) → time \
         {:.2}× (target ≤1.1×), memory {:.2}× peak RSS, {:.2}× anonymous (target ≤1.25×); \
         repositories {} and {} bytes",
        carnet_run.seconds,
        carnet_run.peak,
        carnet_run.anonymous,
        restic_run.seconds,
        restic_run.peak,
        restic_run.anonymous,
        carnet_run.seconds / restic_run.seconds,
        carnet_run.peak / restic_run.peak,
        carnet_run.anonymous / restic_run.anonymous,
        directory_bytes(&carnet_repo),
        directory_bytes(&restic_repo)
    ));

    // 2. 1 % of the database pages rewritten at random.
    rewrite_one_percent(&practice, rows);
    let restic_before = directory_bytes(&restic_repo);
    let carnet_before = directory_bytes(&carnet_repo);
    carnet_backup();
    restic(&restic_repo, &password_file, &["backup", practice_arg]);
    let carnet_added = directory_bytes(&carnet_repo) - carnet_before;
    let restic_added = directory_bytes(&restic_repo) - restic_before;
    report(&format!(
        "1 % of pages rewritten: Carnet added {carnet_added} bytes, restic {restic_added} \
         bytes → {:.3}× (target ≤0.2×; fixed {} KiB chunks against restic's ~1 MiB)",
        carnet_added as f64 / restic_added as f64,
        carnet_backup::CHUNK_SIZE / 1024
    ));

    // 3. No change.
    let (carnet_run, staging_seconds) = carnet_backup();
    let restic_run = restic(&restic_repo, &password_file, &["backup", practice_arg]);
    report(&format!(
        "no-change backup: Carnet {:.2} s (staging {staging_seconds:.2} s: the database \
         is copied again only when it changed), restic {:.2} s → {:.2}× (target ≤1.0×)",
        carnet_run.seconds,
        restic_run.seconds,
        carnet_run.seconds / restic_run.seconds
    ));

    // 4. Restore.
    let carnet_out = dir.path().join("carnet-restored");
    let (carnet_run, _) = carnet("restore", &carnet_repo, &practice, &carnet_out, 0);
    let restic_out = dir.path().join("restic-restored");
    let restic_run = restic(
        &restic_repo,
        &password_file,
        &[
            "restore",
            "latest",
            "--target",
            restic_out.to_str().expect("utf-8"),
        ],
    );
    let mib = directory_bytes(&carnet_out) as f64 / 1024.0 / 1024.0;
    report(&format!(
        "restore: Carnet {:.0} MiB/s, peak {:.0} MiB ({:.0} anonymous); restic {:.0} MiB/s, \
         peak {:.0} MiB ({:.0} anonymous) → throughput {:.2}× (target ≥1.0×), memory {:.2}× \
         peak RSS (target ≤2×)",
        mib / carnet_run.seconds,
        carnet_run.peak,
        carnet_run.anonymous,
        mib / restic_run.seconds,
        restic_run.peak,
        restic_run.anonymous,
        restic_run.seconds / carnet_run.seconds,
        carnet_run.peak / restic_run.peak
    ));

    // 5. Byte for byte.
    let identical = same_tree(&staging, &carnet_out) && same_tree(&carnet_out, &staging);
    report(&format!(
        "restored tree byte-identical to what was backed up: {identical}"
    ));
    assert!(identical, "the restored tree differs from the staged one");
}
