//! Backups through the real binary: back up, lose the data directory, restore it with
//! the recovery kit's keys, and serve again — every row and byte back, the audit trail
//! intact, nothing in clear in the repository.

use std::path::{Path, PathBuf};

use crate::cli::practice_with_patients;
use crate::support::{Instance, http_client, stderr_of, stdout_of};

const KIT: [&str; 3] = ["instance.key", "audit.key", "backup.password"];

const CANARY: &str = "Zorglubienne";

/// Every row of every table (but the backup job's own), as sortable text.
fn rows(database: &Path) -> Vec<(String, Vec<String>)> {
    let connection = rusqlite::Connection::open(database).expect("open");
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("tables")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    tables
        .into_iter()
        .filter(|table| !["backup_runs", "job_leases"].contains(&table.as_str()))
        .map(|table| {
            let mut statement = connection
                .prepare(&format!("SELECT * FROM \"{table}\""))
                .expect("select");
            let columns = statement.column_count();
            let mut all: Vec<String> = statement
                .query_map([], |row| {
                    Ok((0..columns)
                        .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i)))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("values");
            all.sort();
            (table, all)
        })
        .collect()
}

/// Every row of `before` is in `after`, but for the instance's audit trail: the backup
/// and its drill are recorded there after the snapshot, so the restored trail is the
/// live one up to the snapshot.
pub fn assert_rows_back(after: Vec<(String, Vec<String>)>, before: Vec<(String, Vec<String>)>) {
    let (restored_trail, others) = split_instance_trail(after);
    let (live_trail, live_others) = split_instance_trail(before);
    assert_eq!(others, live_others, "every row back");
    assert!(
        restored_trail
            .iter()
            .all(|entry| live_trail.contains(entry)),
        "the restored instance trail is a prefix of the live one"
    );
    assert!(live_trail.len() > restored_trail.len());
}

/// Splits the instance chain's audit entries off the rows of every table (the rows of
/// `audit_chains` and `audit_checkpoints` for that chain are dropped: they move with each
/// event).
fn split_instance_trail(
    tables: Vec<(String, Vec<String>)>,
) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    // A row as SQLite's values (`Ok(Text("instance"))|…`) or PostgreSQL's (`(instance,…)`).
    let instance =
        |row: &String| row.starts_with("Ok(Text(\"instance\"))") || row.starts_with("(instance,");
    let mut trail = Vec::new();
    let others = tables
        .into_iter()
        .map(|(table, all)| {
            if !table.starts_with("audit_") {
                return (table, all);
            }
            let (ours, rest): (Vec<String>, Vec<String>) = all.into_iter().partition(instance);
            if table == "audit_entries" {
                trail = ours;
            }
            (table, rest)
        })
        .collect();
    (trail, others)
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
    found
}

fn holds(root: &Path, needle: &[u8]) -> Option<PathBuf> {
    files_under(root).into_iter().find(|file| {
        std::fs::read(file)
            .expect("read")
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
    })
}

#[tokio::test]
async fn a_lost_data_directory_comes_back_from_a_backup_and_the_recovery_kit() {
    let (instance, _practice) = practice_with_patients(&[
        &format!("{CANARY};;Paul;;1950-01-02;M;;;;;;;;"),
        "Lefort;;Anne;;1961-02-28;F;;;;;;;;",
    ]);
    let data = instance.data_dir();
    std::fs::write(
        data.join("blobs").join("document-test"),
        vec![42_u8; 300_000],
    )
    .expect("a blob");
    let repository = instance.dir.path().join("depot");
    let targets = format!("disque={}", repository.display());
    let with_targets = |args: &[&str]| {
        instance
            .command()
            .args(args)
            .env("CARNET_BACKUP_TARGETS", &targets)
            .output()
            .expect("run")
    };

    let backed_up = with_targets(&["backup", "run"]);
    let said = stdout_of(&backed_up);
    assert!(
        backed_up.status.success(),
        "{said}{}",
        stderr_of(&backed_up)
    );
    assert!(said.contains("disque : structure intacte"), "{said}");
    assert!(said.contains("données relues"), "{said}");
    assert!(
        said.contains("journal d'audit intact"),
        "the first run drills: {said}"
    );
    assert!(
        said.contains("2 dossier(s) ouverts avec les clés"),
        "{said}"
    );
    let before = rows(&data.join("carnet.sqlite3"));
    let blob = std::fs::read(data.join("blobs").join("document-test")).expect("blob");
    // The job keeps only the database copy (and its counts) for the next run.
    let mut staged: Vec<String> = std::fs::read_dir(data.join("backup-staging"))
        .expect("staging kept")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into())
        .collect();
    staged.sort();
    assert_eq!(staged, ["carnet.sqlite3", "database-counts.txt"]);

    assert!(
        holds(&repository, CANARY.as_bytes()).is_none(),
        "a name in clear"
    );
    let instance_key = std::fs::read_to_string(data.join("instance.key")).expect("key");
    assert!(
        holds(&repository, instance_key.trim().as_bytes()).is_none(),
        "the instance key is never in a backup"
    );

    lose_the_disk_and_put_the_kit_back(&instance);

    let restored = with_targets(&[
        "restore",
        "--target",
        "disque",
        "--to",
        data.to_str().expect("utf-8"),
    ]);
    assert!(restored.status.success(), "{}", stderr_of(&restored));
    assert!(stdout_of(&restored).contains("restaurée dans"));
    assert_rows_back(rows(&data.join("carnet.sqlite3")), before);
    assert_eq!(
        std::fs::read(data.join("blobs").join("document-test")).expect("blob"),
        blob,
        "every blob byte back"
    );
    let verified = instance.run(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stderr_of(&verified));

    let server = instance.serve();
    let ready = http_client()
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status(), 200);
    drop(server);

    // A restore never overwrites: the data directory is not empty any more.
    let again = with_targets(&[
        "restore",
        "--target",
        "disque",
        "--to",
        data.to_str().expect("utf-8"),
    ]);
    assert!(!again.status.success());
    assert!(
        stderr_of(&again).contains("rien n'est écrasé"),
        "{}",
        stderr_of(&again)
    );

    the_wrong_password_is_named(&instance, &targets);
}

/// The disk is lost; the recovery kit gives back the keys and the backup password, put
/// in a new, empty data directory.
pub fn lose_the_disk_and_put_the_kit_back(instance: &Instance) {
    let data = instance.data_dir();
    let kit = instance.dir.path().join("kit");
    std::fs::create_dir(&kit).expect("kit");
    for name in KIT {
        std::fs::copy(data.join(name), kit.join(name)).expect("kit copy");
    }
    std::fs::remove_dir_all(&data).expect("lost");
    std::fs::create_dir(&data).expect("new data directory");
    for name in KIT {
        std::fs::copy(kit.join(name), data.join(name)).expect("put back");
    }
}

fn the_wrong_password_is_named(instance: &Instance, targets: &str) {
    let wrong = instance.dir.path().join("autre.password");
    std::fs::write(&wrong, "0".repeat(64)).expect("password");
    let mut permissions = std::fs::metadata(&wrong).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    std::fs::set_permissions(&wrong, permissions).expect("0600");
    let listed = instance
        .command()
        .args(["backup", "list", "--target", "disque"])
        .env("CARNET_BACKUP_TARGETS", targets)
        .env("CARNET_BACKUP_PASSWORD_FILE", &wrong)
        .output()
        .expect("run");
    assert!(!listed.status.success());
    assert!(
        stderr_of(&listed).contains("kit de secours"),
        "{}",
        stderr_of(&listed)
    );
}

/// `GET /metrics` on a local port, as Prometheus would (the body; empty when refused).
fn scrape(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.is_empty()
            || response.starts_with("HTTP/1.0 200")
            || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    response
}

/// Two servers on one instance: the scheduled backup runs once, on whichever node took
/// the lease, and not again before the interval.
#[test]
fn scheduled_backups_run_on_exactly_one_node() {
    let (instance, _practice) = practice_with_patients(&["Lefort;;Anne;;1961-02-28;F;;;;;;;;"]);
    let repository = instance.dir.path().join("depot");
    let targets = format!("disque={}", repository.display());
    // Each node exports its metrics on a port of its own.
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port()
    };
    let metrics_ports = [free_port(), free_port()];
    let start = |port: u16| {
        instance.serve_with(|command| {
            command
                .env("CARNET_BACKUP_TARGETS", &targets)
                .env("CARNET_METRICS_LISTEN", format!("127.0.0.1:{port}"));
        })
    };
    let (first, second) = (start(metrics_ports[0]), start(metrics_ports[1]));
    let snapshots = || std::fs::read_dir(repository.join("snapshots")).map_or(0, Iterator::count);
    let mut waited = 0;
    while snapshots() == 0 && waited < 600 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert_eq!(snapshots(), 1, "the first node's run");
    // Both nodes have ticked (at start) by now; give the second one time to try.
    std::thread::sleep(std::time::Duration::from_secs(3));
    // The node that backed up says so in its metrics, once its run is recorded.
    let success = "carnet_backup_last_success_timestamp_seconds{target=\"disque\"}";
    let mut exported = metrics_ports.map(scrape);
    let mut waited = 0;
    while !exported.iter().any(|text| text.contains(success)) && waited < 300 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        exported = metrics_ports.map(scrape);
        waited += 1;
    }
    assert_eq!(
        exported
            .iter()
            .filter(|text| text.contains(success))
            .count(),
        1,
        "exactly one node reports a success: {exported:?}"
    );
    assert!(
        exported
            .iter()
            .any(|text| text.contains("# TYPE carnet_backup_duration_seconds gauge")),
        "{exported:?}"
    );
    drop((first, second));
    assert_eq!(snapshots(), 1, "exactly one node backed up");
    let listed = instance
        .command()
        .args(["backup", "list", "--target", "disque"])
        .env("CARNET_BACKUP_TARGETS", &targets)
        .output()
        .expect("run");
    assert!(
        stdout_of(&listed).contains("1 sauvegarde(s)."),
        "{}",
        stdout_of(&listed)
    );
}

/// Documents kept in this bucket.
fn with_bucket(command: &mut std::process::Command, s3: &carnet_service::S3Settings) {
    command
        .env("CARNET_BLOB_S3_ENDPOINT", &s3.endpoint)
        .env("CARNET_BLOB_S3_BUCKET", &s3.bucket)
        .env("CARNET_BLOB_S3_PREFIX", &s3.prefix)
        .env("CARNET_BLOB_S3_ACCESS_KEY_ID", &s3.access_key_id)
        .env("CARNET_BLOB_S3_SECRET_ACCESS_KEY", &s3.secret_access_key);
}

/// Documents in an S3 bucket: the backup mirrors them (only new names fetched on the
/// next run), the bucket is lost with the disk, and `restore --documents-to-bucket`
/// puts them back byte for byte, never replacing an object already there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_kept_in_a_bucket_are_backed_up_and_put_back() {
    use object_store::ObjectStoreExt as _;
    let s3 = carnet_testkit::S3Server::start("cabinet/documents").await;
    let (instance, _practice) = practice_with_patients(&["Lefort;;Anne;;1961-02-28;F;;;;;;;;"]);
    let blobs = carnet_service::Blobs::s3(&s3.settings).expect("bucket");
    let documents = [
        ("d1.bin", vec![7_u8; 300_000]),
        ("d2.bin", vec![9_u8; 5_000]),
    ];
    for (name, bytes) in &documents {
        blobs.put_new(name, bytes.clone()).await.expect("put");
    }
    let data = instance.data_dir();
    let targets = format!("disque={}", instance.dir.path().join("depot").display());
    let run = |instance: &Instance, args: &[&str]| {
        let mut command = instance.command();
        with_bucket(&mut command, &s3.settings);
        command
            .args(args)
            .env("CARNET_BACKUP_TARGETS", &targets)
            .output()
            .expect("run")
    };
    let backed_up = run(&instance, &["backup", "run"]);
    let said = stdout_of(&backed_up);
    assert!(
        backed_up.status.success(),
        "{said}{}",
        stderr_of(&backed_up)
    );
    assert!(
        said.contains("documents du stockage S3 : 2 au total, 2 copié(s) (305000 octet(s))"),
        "{said}"
    );
    let again = stdout_of(&run(&instance, &["backup", "run"]));
    assert!(again.contains("2 au total, 0 copié(s)"), "{again}");

    // The disk and the bucket are lost.
    lose_the_disk_and_put_the_kit_back(&instance);
    let store = s3.settings.object_store().expect("store");
    let key = |name: &str| object_store::path::Path::from(format!("{}/{name}", s3.settings.prefix));
    for (name, _) in &documents {
        store.delete(&key(name)).await.expect("lost");
    }
    let restore = |to: &Path, extra: &[&str]| {
        let to = to.to_str().expect("utf-8");
        run(
            &instance,
            &[&["restore", "--target", "disque", "--to", to], extra].concat(),
        )
    };
    let elsewhere = instance.dir.path().join("ailleurs");
    let hinted = restore(&elsewhere, &[]);
    assert!(hinted.status.success(), "{}", stderr_of(&hinted));
    assert!(stdout_of(&hinted).contains("--documents-to-bucket"));
    assert!(
        elsewhere.join("blobs/d1.bin").exists(),
        "kept in the directory"
    );

    let restored = restore(&data, &["--documents-to-bucket"]);
    assert!(restored.status.success(), "{}", stderr_of(&restored));
    assert!(
        stdout_of(&restored).contains("2 envoyé(s), 0 déjà présent(s)"),
        "{}",
        stdout_of(&restored)
    );
    for (name, bytes) in &documents {
        let back = store.get(&key(name)).await.expect("back").bytes().await;
        assert!(
            back.expect("bytes") == bytes.as_slice(),
            "{name} byte for byte"
        );
    }
    assert!(
        !data.join("blobs").exists(),
        "the local copies go once in the bucket"
    );

    // An object of the same name but another size is never replaced, and is named.
    let other = store.put(&key("d2.bin"), b"autre".to_vec().into()).await;
    other.expect("replace");
    let third = instance.dir.path().join("troisieme");
    let refused = restore(&third, &["--documents-to-bucket"]);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("d2.bin"),
        "{}",
        stderr_of(&refused)
    );
    assert!(third.join("blobs/d2.bin").exists(), "its copy is kept");

    let server = instance.serve_with(|command| with_bucket(command, &s3.settings));
    let ready = http_client().get(format!("{}/readyz", server.url)).send();
    assert_eq!(ready.await.expect("GET /readyz").status(), 200);
}

/// A document whose rows are written straight into the database (the CLI cannot upload
/// one; `restore document` reads only the version numbers and blob names): its id.
fn insert_document(database: &Path, blob_names: &[&str]) -> uuid::Uuid {
    let connection = rusqlite::Connection::open(database).expect("open");
    let (practice, patient): (Vec<u8>, Vec<u8>) = connection
        .query_row("SELECT practice_id, id FROM patients LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("a patient");
    let document = uuid::Uuid::from_u128(0x0d0c_0000_0000_4000_8000_0000_0000_0001);
    connection
        .execute(
            "INSERT INTO documents VALUES (?1, ?2, ?3, 0, ?4)",
            rusqlite::params![document.as_bytes(), practice, patient, [0_u8; 16]],
        )
        .expect("document");
    for (number, name) in (1_i64..).zip(blob_names) {
        connection
            .execute(
                "INSERT INTO document_versions VALUES (?1, ?2, ?3, ?4, x'00', x'00', ?5, 0, ?6)",
                rusqlite::params![
                    uuid::Uuid::from_u128(
                        0x0d0c_0000_0000_4000_8000_0000_0001_0000 + number as u128
                    )
                    .as_bytes(),
                    document.as_bytes(),
                    practice,
                    number,
                    name,
                    [0_u8; 16]
                ],
            )
            .expect("version");
    }
    document
}

/// `restore document` brings one version's blob back into the store it was lost from
/// (the local directory, or the bucket), and never replaces one that is there.
async fn one_document_version_comes_back(bucket: Option<&carnet_service::S3Settings>) {
    let (instance, _practice) = practice_with_patients(&["Lefort;;Anne;;1961-02-28;F;;;;;;;;"]);
    let data = instance.data_dir();
    let store = match bucket {
        Some(settings) => carnet_service::Blobs::s3(settings),
        None => carnet_service::Blobs::local(&data.join("blobs")),
    }
    .expect("store");
    let (first, second) = (vec![3_u8; 70_000], vec![4_u8; 9_000]);
    store.put_new("v1.bin", first.clone()).await.expect("put");
    store.put_new("v2.bin", second).await.expect("put");
    let document = insert_document(&data.join("carnet.sqlite3"), &["v1.bin", "v2.bin"]);
    let targets = format!("disque={}", instance.dir.path().join("depot").display());
    let run = |args: &[&str]| {
        let mut command = instance.command();
        if let Some(settings) = bucket {
            with_bucket(&mut command, settings);
        }
        let output = command.args(args).env("CARNET_BACKUP_TARGETS", &targets);
        output.output().expect("run")
    };
    let backed_up = run(&["backup", "run"]);
    assert!(backed_up.status.success(), "{}", stderr_of(&backed_up));

    // Version 1 is lost from the store.
    match bucket {
        Some(settings) => {
            use object_store::ObjectStoreExt as _;
            let key = format!("{}/v1.bin", settings.prefix);
            let objects = settings.object_store().expect("store");
            objects.delete(&key.as_str().into()).await.expect("lost");
        }
        None => std::fs::remove_file(data.join("blobs/v1.bin")).expect("lost"),
    }
    assert_eq!(store.size_of("v1.bin").await.expect("size"), None);
    let id = document.to_string();
    let restore = |version: &str| {
        run(&[
            "restore",
            "document",
            "--target",
            "disque",
            "--document",
            &id,
            "--version",
            version,
        ])
    };
    let back = restore("1");
    assert!(back.status.success(), "{}", stderr_of(&back));
    assert!(stdout_of(&back).contains("Version 1 du document remise"));
    let path = instance.dir.path().join("v1-back.bin");
    store.download("v1.bin", &path).await.expect("back");
    assert!(
        std::fs::read(&path).expect("read") == first,
        "byte for byte"
    );

    let again = restore("1");
    assert!(!again.status.success());
    assert!(
        stderr_of(&again).contains("rien n'est écrasé"),
        "{}",
        stderr_of(&again)
    );
    let unknown = restore("5");
    assert!(
        stderr_of(&unknown).contains("introuvable"),
        "{}",
        stderr_of(&unknown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_document_version_comes_back_into_the_local_store() {
    one_document_version_comes_back(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_document_version_comes_back_into_the_bucket() {
    let s3 = carnet_testkit::S3Server::start("cabinet/documents").await;
    one_document_version_comes_back(Some(&s3.settings)).await;
}
