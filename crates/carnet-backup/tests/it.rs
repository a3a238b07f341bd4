//! The backup engine against real repositories: a local directory, an S3 server in
//! process, and the independent `restic` tool reading what Carnet wrote.

use std::path::{Path, PathBuf};

use carnet_backup::stage::{self, BlobSource, Database, Sources};
use carnet_backup::{BackupError, Location, Password, RetentionPolicy, Target};
use rustic_core::jiff::{Timestamp, ToSpan as _, Zoned, tz::TimeZone};

/// Incompressible bytes (xorshift), so sizes in the repository mean something.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A small instance: a SQLite database (WAL mode, like Carnet's), blobs and a checkpoint
/// file, each carrying `marker`.
struct Instance {
    dir: tempfile::TempDir,
}

impl Instance {
    fn new(marker: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database = rusqlite::Connection::open(dir.path().join("carnet.sqlite3")).expect("db");
        database
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE notes (id INTEGER PRIMARY KEY, body BLOB);",
            )
            .expect("schema");
        for row in 0..2000 {
            database
                .execute(
                    "INSERT INTO notes (body) VALUES (?1)",
                    [[marker.as_bytes(), &noise(row, 400)].concat()],
                )
                .expect("insert");
        }
        std::fs::create_dir_all(dir.path().join("blobs/ab")).expect("blobs");
        std::fs::write(
            dir.path().join("blobs/ab/document-1"),
            [marker.as_bytes(), &noise(99_999, 200_000)].concat(),
        )
        .expect("blob");
        std::fs::write(dir.path().join("blobs/ab/unfinished.partial"), "partial").expect("blob");
        std::fs::write(dir.path().join("audit-checkpoints.log"), "checkpoint 1\n").expect("log");
        std::fs::write(dir.path().join("instance.key"), "SECRET-INSTANCE-KEY").expect("key");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn sources(&self) -> Sources {
        Sources {
            database: Database::Sqlite(self.path().join("carnet.sqlite3")),
            blobs: Some(BlobSource::Directory(self.path().join("blobs"))),
            checkpoint_file: Some(self.path().join("audit-checkpoints.log")),
            config: None,
        }
    }

    fn row_count(path: &Path) -> i64 {
        rusqlite::Connection::open(path)
            .expect("open")
            .query_row("SELECT count(*) FROM notes", [], |row| row.get(0))
            .expect("count")
    }
}

fn local_target(dir: &Path) -> Target {
    Target {
        name: "disque".into(),
        location: Location::Local(dir.join("depot")),
        append_only: false,
    }
}

fn password() -> Password {
    Password::new("mot-de-passe-des-sauvegardes-de-test".into())
}

fn at(seconds: i64) -> Zoned {
    Timestamp::from_second(seconds)
        .expect("timestamp")
        .to_zoned(TimeZone::UTC)
}

fn backup_now(instance: &Instance, target: &Target, time: Zoned) -> carnet_backup::BackupReport {
    let staged = stage::stage(&instance.sources(), &instance.path().join("staging"))
        .expect("staged")
        .root;
    carnet_backup::backup(target, &password(), &staged, time).expect("backup")
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn assert_no_marker(root: &Path, marker: &str) {
    for file in files_under(root) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds the marker in clear",
            file.display()
        );
    }
}

#[test]
fn a_backup_restores_byte_for_byte_and_holds_nothing_in_clear() {
    let instance = Instance::new("CANARI-7731");
    let target = local_target(instance.path());
    let first = backup_now(&instance, &target, at(1_780_000_000));
    assert!(first.bytes_added > 0);

    let restored = instance.path().join("restauree");
    std::fs::create_dir_all(&restored).expect("dir");
    std::fs::write(restored.join("instance.key"), "put back from the kit").expect("key");
    let report =
        carnet_backup::restore(&target, &password(), "latest", &restored, &["instance.key"])
            .expect("restore beside the key put back");
    assert_eq!(report.snapshot, first.snapshot);
    assert_eq!(
        Instance::row_count(&restored.join("carnet.sqlite3")),
        2000,
        "the database copy opens with every row"
    );
    assert_eq!(
        std::fs::read(restored.join("blobs/ab/document-1")).expect("blob"),
        std::fs::read(instance.path().join("blobs/ab/document-1")).expect("blob")
    );
    assert_eq!(
        std::fs::read(restored.join("audit-checkpoints.log")).expect("log"),
        b"checkpoint 1\n"
    );
    assert_eq!(
        std::fs::read(restored.join("instance.key")).expect("key"),
        b"put back from the kit",
        "the backup has no instance key, and the one put back is untouched"
    );
    assert!(!restored.join("blobs/ab/unfinished.partial").exists());
    assert_no_marker(&instance.path().join("depot"), "CANARI-7731");
    assert_no_marker(&instance.path().join("depot"), "SECRET-INSTANCE-KEY");

    // Nothing is overwritten: a non-empty destination is refused.
    let error =
        carnet_backup::restore(&target, &password(), "latest", &restored, &["instance.key"])
            .expect_err("non-empty destination");
    assert!(error.to_string().contains("n'est pas vide"), "{error}");
}

#[test]
fn an_unchanged_instance_adds_almost_nothing() {
    let instance = Instance::new("CANARI");
    let target = local_target(instance.path());
    let first = backup_now(&instance, &target, at(1_780_000_000));
    let second = backup_now(&instance, &target, at(1_780_003_600));
    assert_ne!(first.snapshot, second.snapshot);
    assert!(
        second.bytes_added * 20 < first.bytes_added,
        "first {} bytes, then {} bytes",
        first.bytes_added,
        second.bytes_added
    );
    let listed = carnet_backup::snapshots(&target, &password()).expect("list");
    assert_eq!(
        listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![first.snapshot, second.snapshot]
    );
}

/// (modification time, inode) of a file.
fn identity(path: &Path) -> (std::time::SystemTime, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).expect("metadata");
    (meta.modified().expect("mtime"), meta.ino())
}

#[test]
fn an_unchanged_database_keeps_its_staged_copy_and_a_changed_one_replaces_it() {
    let instance = Instance::new("CANARI");
    let staging = instance.path().join("staging");
    let staged = stage::stage(&instance.sources(), &staging)
        .expect("staged")
        .root;
    let copy = staged.join(stage::SQLITE_FILE);
    let counts = staged.join(stage::COUNTS_FILE);
    let first = identity(&copy);
    std::thread::sleep(std::time::Duration::from_millis(20));
    stage::tidy(&instance.sources(), &staging).expect("tidied");
    assert!(!staging.join(stage::BLOBS_DIR).exists(), "links removed");
    stage::stage(&instance.sources(), &staging).expect("staged again");
    assert_eq!(identity(&copy), first, "an identical copy is dropped");
    assert!(
        staging.join("blobs/ab/document-1").exists(),
        "links made again"
    );

    rusqlite::Connection::open(instance.path().join("carnet.sqlite3"))
        .expect("db")
        .execute("INSERT INTO notes (body) VALUES (x'00')", [])
        .expect("insert");
    stage::stage(&instance.sources(), &staging).expect("staged after a change");
    assert_ne!(
        identity(&copy),
        first,
        "a changed database gives a new copy"
    );
    assert_eq!(Instance::row_count(&copy), 2001);
    assert!(
        std::fs::read_to_string(&counts)
            .expect("counts")
            .contains("notes 2001"),
        "counts written for the new copy"
    );
    let names: Vec<_> = std::fs::read_dir(&staging)
        .expect("staging")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|name| !name.to_string_lossy().contains("fresh")),
        "no working copy left in the snapshot tree: {names:?}"
    );

    // Counts missing (a crash between the rename and the counts): the copy is replaced.
    std::fs::remove_file(&counts).expect("counts removed");
    let before = identity(&copy);
    std::thread::sleep(std::time::Duration::from_millis(20));
    stage::stage(&instance.sources(), &staging).expect("staged without counts");
    assert_ne!(identity(&copy), before);
    assert!(counts.exists());
}

#[test]
fn a_wrong_password_and_a_missing_repository_are_named() {
    let instance = Instance::new("CANARI");
    let target = local_target(instance.path());
    let error = carnet_backup::snapshots(&target, &password()).expect_err("no repository yet");
    assert!(
        matches!(error, BackupError::NotInitialised { .. }),
        "{error}"
    );
    backup_now(&instance, &target, at(1_780_000_000));
    let unplugged = Target {
        name: "usb".into(),
        location: Location::Local(instance.path().join("not-mounted/carnet")),
        append_only: false,
    };
    let staged = stage::stage(&instance.sources(), &instance.path().join("staging"))
        .expect("staged")
        .root;
    let error = carnet_backup::backup(&unplugged, &password(), &staged, at(1_780_000_000))
        .expect_err("a disk that is not there");
    assert!(matches!(error, BackupError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("branché"), "{error}");
    assert!(
        !instance.path().join("not-mounted").exists(),
        "nothing created in its place"
    );

    let error = carnet_backup::snapshots(&target, &Password::new("autre".into()))
        .expect_err("wrong password");
    assert!(
        matches!(error, BackupError::WrongPassword { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("kit de secours"), "{error}");
}

/// Flips one byte in the middle of the largest file under `dir`.
fn corrupt_largest(dir: &Path) -> PathBuf {
    let file = files_under(dir)
        .into_iter()
        .max_by_key(|f| std::fs::metadata(f).expect("meta").len())
        .expect("a file");
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    // Repository files are read-only.
    let mut permissions = std::fs::metadata(&file).expect("meta").permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "a test corrupts the file on purpose"
    )]
    permissions.set_readonly(false);
    std::fs::set_permissions(&file, permissions).expect("writable");
    std::fs::write(&file, bytes).expect("write");
    file
}

#[test]
fn one_corrupted_byte_in_a_pack_or_an_index_is_reported_by_the_check() {
    let instance = Instance::new("CANARI");
    let target = local_target(instance.path());
    backup_now(&instance, &target, at(1_780_000_000));
    carnet_backup::check(&target, &password(), Some((1, 1))).expect("a sound repository checks");

    corrupt_largest(&instance.path().join("depot/data"));
    carnet_backup::check(&target, &password(), None)
        .expect("the structure alone does not read packs");
    let error = carnet_backup::check(&target, &password(), Some((1, 1)))
        .expect_err("reading the data finds the byte");
    assert!(matches!(error, BackupError::Corrupted { .. }), "{error}");
    assert!(error.to_string().contains("endommagé"), "{error}");

    // A restore from the damaged pack is refused with the same sentence, not a crash.
    let error = carnet_backup::restore(
        &target,
        &password(),
        "latest",
        &instance.path().join("restauree"),
        &[],
    )
    .expect_err("restore from a corrupted pack");
    assert!(matches!(error, BackupError::Corrupted { .. }), "{error}");

    let other = Instance::new("CANARI");
    let target = local_target(other.path());
    backup_now(&other, &target, at(1_780_000_000));
    corrupt_largest(&other.path().join("depot/index"));
    let error = carnet_backup::check(&target, &password(), None).expect_err("index corrupted");
    assert!(matches!(error, BackupError::Corrupted { .. }), "{error}");
}

type Bucket = fn(&Zoned) -> String;

/// A snapshot record (no data) taken at `time`.
fn snapshot_at(time: Zoned) -> rustic_core::repofile::SnapshotFile {
    rustic_core::repofile::SnapshotFile {
        time,
        id: rustic_core::Id::random().into(),
        ..Default::default()
    }
}

/// An independent oracle for the retention rules: the newest snapshot of each of the
/// last N buckets (hours, days, ISO weeks, months) that hold one, and the newest.
fn expected_kept(times: &[Zoned], policy: &RetentionPolicy) -> Vec<Zoned> {
    let buckets: [(u32, Bucket); 4] = [
        (policy.hourly, |t| t.strftime("%Y-%m-%d %H").to_string()),
        (policy.daily, |t| t.strftime("%Y-%m-%d").to_string()),
        // rustic_core buckets weeks by (calendar year, ISO week): the ISO week that
        // straddles New Year counts as two (restic uses the ISO year). See ADR 0012.
        (policy.weekly, |t| t.strftime("%Y-%V").to_string()),
        (policy.monthly, |t| t.strftime("%Y-%m").to_string()),
    ];
    let mut newest_first: Vec<Zoned> = times.to_vec();
    newest_first.sort_by_key(|t| std::cmp::Reverse(t.timestamp()));
    let mut kept: Vec<Zoned> = vec![newest_first[0].clone()];
    for (count, bucket) in buckets {
        let mut seen = Vec::new();
        for time in &newest_first {
            let key = bucket(time);
            if !seen.contains(&key) {
                if seen.len() == count as usize {
                    break;
                }
                seen.push(key);
                if !kept.contains(time) {
                    kept.push(time.clone());
                }
            }
        }
    }
    kept.sort_by_key(Zoned::timestamp);
    kept
}

#[test]
fn retention_over_400_simulated_days_keeps_exactly_the_expected_snapshots() {
    use rustic_core::repofile::SnapshotFile;
    let policy = RetentionPolicy::default();
    let start = at(1_767_225_600); // 2026-01-01T00:00:00Z
    let mut live: Vec<SnapshotFile> = Vec::new();
    let mut all_times = Vec::new();
    // A backup every hour for 400 days; forget runs once a day, at the daily backup.
    for hour in 0..(400 * 24) {
        let time = start.checked_add(hour.hours()).expect("time");
        all_times.push(time.clone());
        live.push(snapshot_at(time.clone()));
        if hour % 24 == 23 {
            let forget: Vec<_> = policy
                .to_forget(live.clone(), &time)
                .expect("retention")
                .into_iter()
                .map(|s| s.id)
                .collect();
            live.retain(|s| !forget.contains(&s.id));
        }
    }
    let mut kept: Vec<Zoned> = live.iter().map(|s| s.time.clone()).collect();
    kept.sort_by_key(Zoned::timestamp);
    let expected = expected_kept(&all_times, &policy);
    assert_eq!(kept, expected);
    assert!(kept.len() >= 40, "{} kept", kept.len());
    // Twelve monthly copies (this month and the eleven before) span eleven months.
    let oldest = kept.first().expect("kept");
    let newest = kept.last().expect("kept");
    assert!(newest.timestamp().as_second() - oldest.timestamp().as_second() > 300 * 86_400);
}

#[test]
fn the_newest_snapshot_is_never_forgotten() {
    use rustic_core::repofile::SnapshotFile;
    let policy = RetentionPolicy {
        hourly: 0,
        daily: 0,
        weekly: 0,
        monthly: 0,
    };
    let snapshots: Vec<SnapshotFile> = (0..5)
        .map(|day| snapshot_at(at(1_780_000_000 + day * 86_400)))
        .collect();
    let newest = snapshots[4].id;
    let forget = policy
        .to_forget(snapshots, &at(1_790_000_000))
        .expect("retention");
    assert_eq!(forget.len(), 4);
    assert!(forget.iter().all(|s| s.id != newest));
}

#[test]
fn forget_and_prune_remove_the_data_of_forgotten_snapshots() {
    let instance = Instance::new("CANARI");
    let target = local_target(instance.path());
    backup_now(&instance, &target, at(1_780_000_000));
    // A new blob, backed up, then gone from the instance: pruning the old snapshots of
    // an hour-only policy frees it.
    std::fs::write(instance.path().join("blobs/ab/big"), noise(7, 3_000_000)).expect("blob");
    backup_now(&instance, &target, at(1_780_003_600));
    std::fs::remove_file(instance.path().join("blobs/ab/big")).expect("removed");
    let last = backup_now(&instance, &target, at(1_780_090_000));
    let size = |dir: &Path| -> u64 {
        files_under(dir)
            .iter()
            .map(|f| std::fs::metadata(f).expect("m").len())
            .sum()
    };
    let before = size(&instance.path().join("depot/data"));
    let policy = RetentionPolicy {
        hourly: 1,
        daily: 0,
        weekly: 0,
        monthly: 0,
    };
    let forgotten =
        carnet_backup::forget_and_prune(&target, &password(), &policy, &at(1_780_090_000), true)
            .expect("prune");
    assert_eq!(forgotten.len(), 2);
    let after = size(&instance.path().join("depot/data"));
    assert!(after + 1_000_000 < before, "{before} → {after}");
    let listed = carnet_backup::snapshots(&target, &password()).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, last.snapshot);
    carnet_backup::check(&target, &password(), Some((1, 1))).expect("sound after prune");
}

#[test]
fn one_file_comes_back_from_any_snapshot() {
    let instance = Instance::new("CANARI");
    let target = local_target(instance.path());
    let first = backup_now(&instance, &target, at(1_780_000_000));
    std::fs::write(instance.path().join("blobs/ab/document-2"), b"version 2").expect("blob");
    backup_now(&instance, &target, at(1_780_003_600));
    let mut out = Vec::new();
    let from = carnet_backup::restore_file(
        &target,
        &password(),
        &first.snapshot[..8],
        "blobs/ab/document-1",
        &mut out,
    )
    .expect("restored");
    assert_eq!(from, first.snapshot);
    assert_eq!(
        out,
        std::fs::read(instance.path().join("blobs/ab/document-1")).expect("b")
    );
    let error = carnet_backup::restore_file(
        &target,
        &password(),
        &first.snapshot,
        "blobs/ab/document-2",
        &mut Vec::new(),
    )
    .expect_err("not in the first snapshot");
    assert!(matches!(error, BackupError::NoSuchFile { .. }), "{error}");
}

/// Back up, check (reading every pack) and restore over S3; nothing in clear in the
/// bucket (`objects`: where the server keeps them on disk, when it can be read).
fn round_trip_over_s3(settings: carnet_service::S3Settings, objects: Option<&Path>) {
    let instance = Instance::new("CANARI-S3");
    let target = Target {
        name: "hors-site".into(),
        location: Location::S3(settings),
        append_only: false,
    };
    let report = backup_now(&instance, &target, at(1_780_000_000));
    if let Some(objects) = objects {
        assert!(objects.join("config").exists());
        assert_no_marker(objects, "CANARI-S3");
    }
    carnet_backup::check(&target, &password(), Some((1, 1))).expect("check over S3");
    let listed = carnet_backup::snapshots(&target, &password()).expect("list over S3");
    assert_eq!(listed.len(), 1);
    let restored = instance.path().join("restauree");
    carnet_backup::restore(&target, &password(), &report.snapshot, &restored, &[])
        .expect("restore");
    assert_eq!(Instance::row_count(&restored.join("carnet.sqlite3")), 2000);
}

#[test]
fn an_s3_target_round_trips_and_an_unreachable_one_is_named() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(carnet_testkit::S3Server::start("sauvegardes/cabinet"));
    round_trip_over_s3(server.settings.clone(), Some(&server.objects_dir()));

    let mut settings = server.settings.clone();
    settings.endpoint = "http://127.0.0.1:9".into();
    let unreachable = Target {
        name: "ailleurs".into(),
        location: Location::S3(settings),
        append_only: false,
    };
    let error = carnet_backup::snapshots(&unreachable, &password()).expect_err("unreachable");
    assert!(matches!(error, BackupError::Unreachable { .. }), "{error}");
    drop(server);
    runtime.shutdown_background();
}

/// A second S3 implementation: CI runs moto's server on loopback and names it in
/// `CARNET_TEST_MOTO_URL` (bucket `carnet-backup-ci`, created beforehand); `None` (said
/// on standard error) when it is not set, refused when `CARNET_REQUIRE_MOTO` is.
#[expect(clippy::print_stderr, reason = "a test that did not run says so")]
fn moto_settings(prefix: &str) -> Option<carnet_service::S3Settings> {
    let Some(endpoint) = std::env::var("CARNET_TEST_MOTO_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CARNET_REQUIRE_MOTO").is_none(),
            "CARNET_REQUIRE_MOTO is set but CARNET_TEST_MOTO_URL is not"
        );
        eprintln!("moto S3 test: DID NOT RUN (set CARNET_TEST_MOTO_URL)");
        return None;
    };
    Some(carnet_service::S3Settings {
        endpoint,
        region: "us-east-1".into(),
        bucket: "carnet-backup-ci".into(),
        prefix: format!("{prefix}-{}", std::process::id()),
        access_key_id: "moto".into(),
        secret_access_key: "moto-secret".into(),
    })
}

/// The same against a second S3 implementation (moto).
#[test]
fn an_s3_target_round_trips_on_a_second_implementation() {
    let Some(settings) = moto_settings("run") else {
        return;
    };
    round_trip_over_s3(settings, None);
}

/// The proof that a practice can recover without Carnet: Debian's `restic` lists and
/// restores a repository Carnet wrote, with the password alone. Runs when `restic` is
/// installed; CI installs it and sets `CARNET_REQUIRE_RESTIC=1`.
#[test]
fn the_restic_tool_lists_and_restores_a_carnet_repository() {
    if std::process::Command::new("restic")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CARNET_REQUIRE_RESTIC").is_none(),
            "restic is required (CARNET_REQUIRE_RESTIC) but not installed"
        );
        eprintln!("restic is not installed: the interoperability test did not run");
        return;
    }
    let instance = Instance::new("CANARI");
    let target = local_target(instance.path());
    let report = backup_now(&instance, &target, at(1_780_000_000));
    let password_file = instance.path().join("password");
    std::fs::write(&password_file, password().expose()).expect("password file");
    let restic = |args: &[&str]| {
        let output = std::process::Command::new("restic")
            .arg("--repo")
            .arg(instance.path().join("depot"))
            .arg("--password-file")
            .arg(&password_file)
            .arg("--no-cache")
            .args(args)
            .output()
            .expect("restic runs");
        assert!(
            output.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let listed = restic(&["snapshots", "--json"]);
    assert!(listed.contains(&report.snapshot), "{listed}");
    let out = instance.path().join("par-restic");
    restic(&[
        "restore",
        "latest",
        "--target",
        out.to_str().expect("utf-8"),
    ]);
    let restored = out.join("carnet");
    assert_eq!(Instance::row_count(&restored.join("carnet.sqlite3")), 2000);
    assert_eq!(
        std::fs::read(restored.join("blobs/ab/document-1")).expect("blob"),
        std::fs::read(instance.path().join("blobs/ab/document-1")).expect("blob")
    );
    restic(&["check", "--read-data"]);
}

/// Documents kept in a bucket are mirrored into the staging tree: the first staging
/// fetches them all, the next fetches only new names (or a file cut short) and leaves
/// the others untouched, a blob gone from the bucket leaves the mirror, and a snapshot
/// restores them byte for byte. Names the store never writes are not copied.
fn documents_in_a_bucket_are_mirrored_and_restored(
    runtime: &tokio::runtime::Runtime,
    settings: carnet_service::S3Settings,
) {
    use object_store::ObjectStoreExt as _;
    let instance = Instance::new("CANARI-MIROIR");
    let blobs = carnet_service::Blobs::s3(&settings).expect("bucket");
    let put = |name: &str, bytes: Vec<u8>| {
        let stored = runtime.block_on(blobs.put_new(name, bytes)).expect("put");
        assert_eq!(stored, carnet_service::Stored::Written);
    };
    let first = [b"CANARI-MIROIR".as_slice(), &noise(7, 300_000)].concat();
    put("a1.bin", first.clone());
    put("b2.bin", noise(8, 40_000));
    let store = settings.object_store().expect("store");
    let key = |name: &str| object_store::path::Path::from(format!("{}/{name}", settings.prefix));
    runtime
        .block_on(store.put(&key("sous-dossier/x.bin"), b"not a blob".to_vec().into()))
        .expect("nested object");
    assert_eq!(
        runtime
            .block_on(blobs.put_new("a1.bin", b"other".to_vec()))
            .expect("put"),
        carnet_service::Stored::AlreadyThere { size: 300_013 },
        "an existing blob is never replaced"
    );

    let sources = Sources {
        blobs: Some(BlobSource::Bucket(settings.clone())),
        ..instance.sources()
    };
    let staging = instance.path().join("staging");
    let staged = stage::stage(&sources, &staging).expect("staged");
    let report = staged.mirror.expect("a mirror report");
    assert_eq!((report.blobs, report.fetched, report.dropped), (2, 2, 0));
    assert_eq!(report.fetched_bytes, 340_013);
    let mirror = staging.join(stage::BLOBS_DIR);
    assert_eq!(std::fs::read(mirror.join("a1.bin")).expect("a1"), first);
    assert!(
        !mirror.join("sous-dossier").exists(),
        "only the store's own names"
    );
    let untouched = identity(&mirror.join("a1.bin"));

    stage::tidy(&sources, &staging).expect("tidied");
    assert!(
        mirror.join("a1.bin").exists(),
        "the mirror stays between runs"
    );
    put("c3.bin", noise(9, 10_000));
    std::fs::write(mirror.join("b2.bin"), b"cut short").expect("truncate");
    let report = stage::stage(&sources, &staging)
        .expect("staged again")
        .mirror
        .expect("report");
    assert_eq!((report.blobs, report.fetched, report.dropped), (3, 2, 0));
    assert_eq!(
        identity(&mirror.join("a1.bin")),
        untouched,
        "not fetched again"
    );
    assert_eq!(
        std::fs::read(mirror.join("b2.bin")).expect("b2"),
        noise(8, 40_000)
    );

    runtime
        .block_on(store.delete(&key("c3.bin")))
        .expect("delete");
    let report = stage::stage(&sources, &staging)
        .expect("staged after a removal")
        .mirror
        .expect("report");
    assert_eq!((report.blobs, report.fetched, report.dropped), (2, 0, 1));
    assert!(!mirror.join("c3.bin").exists());

    let target = local_target(instance.path());
    let backed_up =
        carnet_backup::backup(&target, &password(), &staging, at(1_780_000_000)).expect("backup");
    assert_no_marker(&instance.path().join("depot"), "CANARI-MIROIR");
    let restored = instance.path().join("restauree");
    carnet_backup::restore(&target, &password(), &backed_up.snapshot, &restored, &[])
        .expect("restore");
    assert_eq!(
        std::fs::read(restored.join("blobs/a1.bin")).expect("a1"),
        first
    );
    assert_eq!(
        std::fs::read(restored.join("blobs/b2.bin")).expect("b2"),
        noise(8, 40_000)
    );

    let mut unreachable = settings;
    unreachable.endpoint = "http://127.0.0.1:9".into();
    let error = stage::stage(
        &Sources {
            blobs: Some(BlobSource::Bucket(unreachable)),
            ..instance.sources()
        },
        &staging,
    )
    .expect_err("an unreachable bucket");
    assert!(matches!(error, BackupError::Documents(_)), "{error}");
    assert!(error.to_string().contains("stockage S3"), "{error}");
}

#[test]
fn documents_in_an_s3_bucket_are_mirrored_and_restored() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(carnet_testkit::S3Server::start("cabinet/documents"));
    documents_in_a_bucket_are_mirrored_and_restored(&runtime, server.settings.clone());
    drop(server);
    runtime.shutdown_background();
}

/// The same mirror against moto (CI; see above).
#[test]
fn documents_in_an_s3_bucket_are_mirrored_on_a_second_implementation() {
    let Some(settings) = moto_settings("documents") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    documents_in_a_bucket_are_mirrored_and_restored(&runtime, settings);
    runtime.shutdown_background();
}

/// The rows a PostgreSQL dump holds are counted from its data (a value with a line
/// break still counts once), and match the live table's count; runs when
/// `CARNET_TEST_POSTGRES_URL` names a server (required in CI).
#[test]
fn a_postgres_dump_counts_its_rows() {
    let Some(url) = std::env::var("CARNET_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        assert!(
            std::env::var_os("CARNET_REQUIRE_POSTGRES").is_none(),
            "CARNET_REQUIRE_POSTGRES is set but CARNET_TEST_POSTGRES_URL is not"
        );
        return;
    };
    let schema = format!("carnet_backup_counts_{}", std::process::id());
    let psql = |sql: &str| {
        let output = std::process::Command::new("psql")
            .args([
                "--no-psqlrc",
                "--quiet",
                "--set",
                "ON_ERROR_STOP=1",
                "--dbname",
            ])
            .arg(&url)
            .arg("--command")
            .arg(sql)
            .output()
            .expect("psql");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.notes (body text); CREATE TABLE {schema}.vide (n int); \
         INSERT INTO {schema}.notes VALUES ('une'), (E'deux\\nlignes'), (E'trois \\\\ .'), (NULL)"
    ));
    let confined = format!("{url}?options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().expect("dir");
    let sources = Sources {
        database: Database::Postgres(confined.clone()),
        blobs: None,
        checkpoint_file: None,
        config: None,
    };
    let staged = stage::stage(&sources, dir.path()).expect("staged").root;
    let counts = stage::dump_row_counts(&staged.join(stage::POSTGRES_FILE)).expect("counts");
    assert_eq!(counts, [("notes".to_owned(), 4), ("vide".to_owned(), 0)]);
    let live = stage::postgres_row_counts(&confined).expect("live counts");
    assert!(live.contains(&("notes".to_owned(), 4)), "{live:?}");
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
