use std::fmt::Write as _;
use std::path::PathBuf;

use crate::support::{Instance, assert_refused, stderr_of, stdout_of};

#[test]
fn practice_create_prints_the_id_and_list_shows_it() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let created = instance.run(&[
        "practice",
        "create",
        "--name",
        "Cabinet dentaire du Port",
        "--address",
        "1 quai Est, 17000 La Rochelle",
        "--profession",
        "dentist",
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    let id = stdout_of(&created).trim().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let listed = stdout_of(&instance.run(&["practice", "list"]));
    let line = listed
        .lines()
        .find(|line| line.starts_with(&id))
        .expect("listed");
    assert!(line.ends_with("\tCabinet dentaire du Port"), "{line}");
    assert!(line.contains("\tdentist\t"), "{line}");
}

#[test]
fn practice_create_refuses_bad_input_in_french_and_creates_nothing() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let output = instance.run(&[
        "practice",
        "create",
        "--name",
        " ",
        "--address",
        "1 rue",
        "--profession",
        "nurse",
    ]);
    assert_refused(&output, "Le champ « nom du cabinet » est obligatoire.");
    assert_eq!(stdout_of(&instance.run(&["practice", "list"])), "");
}

#[test]
fn operator_commands_need_an_existing_instance() {
    let instance = Instance::new();
    let output = instance.run(&["practice", "list"]);
    assert_refused(&output, "aucune instance");
    assert!(!instance.data_dir().exists());
}

#[test]
fn config_check_hides_secrets() {
    let instance = Instance::new();
    let secret = instance.dir.path().join("database-url");
    std::fs::write(&secret, "postgres://carnet:tres-secret@127.0.0.1/carnet").expect("write");
    let output = instance
        .command()
        .args(["config", "check"])
        .env("CARNET_DATABASE_URL_FILE", &secret)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let printed = stdout_of(&output);
    assert!(
        printed.contains("database_url = \"<redacted>\""),
        "{printed}"
    );
    assert!(!printed.contains("tres-secret"));
}

/// The committed example configuration is the one the code generates.
/// Regenerate with `cargo run -- config example > carnet.example.toml`.
#[test]
fn the_committed_example_configuration_is_current() {
    let instance = Instance::new();
    let output = instance.run(&["config", "example"]);
    assert!(output.status.success());
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../carnet.example.toml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == stdout_of(&output),
        "carnet.example.toml is stale: run `cargo run -- config example > carnet.example.toml`"
    );
}

#[test]
fn migrate_creates_the_instance_and_reports_the_schema() {
    let instance = Instance::new();
    let output = instance.run(&["migrate"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains(
        "Base à jour (migrations appliquées : 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)"
    ));
    let again = instance.run(&["migrate"]);
    assert!(again.status.success());
}

/// The committed CLI reference (docs/cli.md) is the binary's own help.
/// Regenerate with `CARNET_UPDATE_GENERATED=1 cargo nextest run -p carnet cli_reference`.
#[test]
fn the_committed_cli_reference_is_current() {
    let instance = Instance::new();
    let mut generated = String::from(
        "# Command-line reference\n\nGenerated from `carnet … --help`; checked by a test.\n",
    );
    for command in [
        vec![],
        vec!["serve"],
        vec!["migrate"],
        vec!["config", "check"],
        vec!["config", "example"],
        vec!["practice", "create"],
        vec!["practice", "list"],
        vec!["member", "add-holder"],
        vec!["member", "activation-code"],
        vec!["audit", "verify"],
        vec!["audit", "checkpoint"],
        vec!["backup", "run"],
        vec!["backup", "list"],
        vec!["backup", "check"],
        vec!["backup", "prune"],
        vec!["backup", "drill"],
        vec!["restore"],
        vec!["restore", "document"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let output = instance.run(&args);
        assert!(output.status.success());
        let title = if command.is_empty() {
            "carnet".to_owned()
        } else {
            format!("carnet {}", command.join(" "))
        };
        let _ = write!(
            generated,
            "\n## `{title}`\n\n```text\n{}```\n",
            stdout_of(&output)
        );
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    if std::env::var("CARNET_UPDATE_GENERATED").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/cli.md is stale: run CARNET_UPDATE_GENERATED=1 cargo nextest run -p carnet cli_reference"
    );
}

/// A nurses' practice on `instance`; its id.
fn nurses_practice(instance: &Instance) -> String {
    let created = instance.run(&[
        "practice",
        "create",
        "--name",
        "Cabinet du Port",
        "--address",
        "1 quai Est, 17000 La Rochelle",
        "--profession",
        "nurse",
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    stdout_of(&created).trim().to_owned()
}

/// A new instance with a nurses' practice and these CSV rows imported: (instance, practice).
pub fn practice_with_patients(rows: &[&str]) -> (Instance, String) {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let practice = nurses_practice(&instance);
    let file = instance.dir.path().join("export.csv");
    let header = carnet_domain::CSV_COLUMNS.join(";");
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).expect("write");
    let imported = instance.run(&[
        "import",
        "--practice",
        &practice,
        file.to_str().expect("UTF-8"),
    ]);
    assert!(imported.status.success(), "{}", stderr_of(&imported));
    (instance, practice)
}

#[test]
fn import_takes_a_whole_file_or_nothing_and_names_the_bad_row() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let practice = nurses_practice(&instance);
    let header = carnet_domain::CSV_COLUMNS.join(";");
    let file = instance.dir.path().join("export.csv");
    std::fs::write(
        &file,
        format!(
            "{header}\nLegrand;;Paul;;02/01/1950;M;;;;;;;;\nLefort;;Anne;;1961-02-30;F;;;;;;;;\n"
        ),
    )
    .expect("write");
    let refused = instance.run(&[
        "import",
        "--practice",
        &practice,
        file.to_str().expect("UTF-8"),
    ]);
    assert_refused(&refused, "ligne 3");
    assert!(stderr_of(&refused).contains("rien n'a été importé"));

    std::fs::write(
        &file,
        format!(
            "{header}\nLegrand;;Paul;;02/01/1950;M;;;;;;;;\nLefort;;Anne;;1961-02-28;F;;;;;;;;\n"
        ),
    )
    .expect("write");
    let imported = instance.run(&[
        "import",
        "--practice",
        &practice,
        file.to_str().expect("UTF-8"),
    ]);
    assert!(imported.status.success(), "{}", stderr_of(&imported));
    assert_eq!(stdout_of(&imported).trim(), "2 patient(s) importé(s).");
}

#[tokio::test]
async fn a_rotation_stopped_after_one_batch_is_finished_by_the_server() {
    let (instance, practice) = practice_with_patients(&[
        "Legrand;;Paul;;1950-01-02;M;;;;;;;;",
        "Legros;;Anne;;1960-03-04;F;;;;;;;;",
        "Leguen;;Luc;;1970-05-06;M;;;;;;;;",
    ]);
    let mut arguments = rotate_one_patient_per_batch(&practice);
    arguments.extend(["--batches", "1"]);
    let rotated = instance.run(&arguments);
    assert!(rotated.status.success(), "{}", stderr_of(&rotated));
    assert!(stdout_of(&rotated).contains("Nouvelle clé du cabinet : version 2."));
    assert!(stdout_of(&rotated).contains("le serveur termine le reste"));

    let pool = sqlite_of(&instance).await;
    assert_eq!(
        versions_in(&pool).await,
        vec![1, 1, 2],
        "stopped after one patient"
    );
    assert_the_server_moves_the_rest(&instance, &pool).await;
    pool.close().await;
}

fn rotate_one_patient_per_batch(practice: &str) -> Vec<&str> {
    vec![
        "keys",
        "rotate",
        "--practice",
        practice,
        "--batch-size",
        "1",
    ]
}

async fn sqlite_of(instance: &Instance) -> sqlx::SqlitePool {
    let url = format!(
        "sqlite://{}",
        instance.data_dir().join("carnet.sqlite3").display()
    );
    sqlx::SqlitePool::connect(&url).await.expect("database")
}

/// The practice key versions of the instance's patients, sorted.
async fn versions_in(pool: &sqlx::SqlitePool) -> Vec<i64> {
    let mut versions: Vec<i64> = sqlx::query_as::<_, (i64,)>("SELECT key_version FROM patients")
        .fetch_all(pool)
        .await
        .expect("versions")
        .into_iter()
        .map(|(version,)| version)
        .collect();
    versions.sort_unstable();
    versions
}

/// The process really killed (SIGKILL) while it re-encrypts, one patient per batch: each
/// batch is one transaction, so every patient is left on one version or the other, and
/// the server moves the rest. (Here the 3,000 batches take about 9 s, one sync each; the
/// kill comes after the first ten.)
#[tokio::test]
async fn a_rotation_killed_during_re_encryption_is_finished_by_the_server() {
    const PATIENTS: usize = 3_000;
    let rows: Vec<String> = (0..PATIENTS)
        .map(|n| {
            format!(
                "Durand;;Paul;;{}-{:02}-{:02};M;;;;;;;;",
                1930 + n / 336,
                1 + (n / 28) % 12,
                1 + n % 28
            )
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (instance, practice) = practice_with_patients(&rows);
    let mut rotating = instance
        .command()
        .args(rotate_one_patient_per_batch(&practice))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the rotation");
    let pool = sqlite_of(&instance).await;
    let mut moved = 0;
    for _ in 0..3_000 {
        moved = versions_in(&pool).await.iter().filter(|v| **v == 2).count();
        if moved >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    rotating.kill().expect("SIGKILL");
    let status = rotating.wait().expect("wait");
    assert!(
        status.code().is_none(),
        "killed by the signal, not finished ({moved} moved when seen): {status:?}"
    );
    let after_kill = versions_in(&pool).await;
    let on_new = after_kill.iter().filter(|v| **v == 2).count();
    assert_eq!(after_kill.len(), PATIENTS);
    assert!(
        after_kill.iter().all(|v| *v == 1 || *v == 2) && on_new > 0 && on_new < PATIENTS,
        "cut off half way: {on_new} of {PATIENTS} on version 2"
    );
    assert_the_server_moves_the_rest(&instance, &pool).await;
    pool.close().await;
}

/// Starts the server and waits (up to a minute) for every patient to be on version 2.
async fn assert_the_server_moves_the_rest(instance: &Instance, pool: &sqlx::SqlitePool) {
    let server = instance.serve();
    let mut versions = Vec::new();
    for _ in 0..600 {
        versions = versions_in(pool).await;
        if versions.iter().all(|v| *v == 2) {
            drop(server);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(server);
    panic!("the server did not move the rest: {versions:?}");
}

#[test]
fn the_recovery_kit_holds_the_keys_and_is_private() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let kit = instance.dir.path().join("kit.html");
    let written = instance.run(&[
        "keys",
        "recovery-kit",
        "--output",
        kit.to_str().expect("UTF-8"),
    ]);
    assert!(written.status.success(), "{}", stderr_of(&written));
    assert_eq!(crate::support::mode_of(&kit), 0o600);
    let page = std::fs::read_to_string(&kit).expect("kit");
    assert_eq!(
        crate::support::mode_of(&instance.data_dir().join("backup.password")),
        0o600,
        "the backup password is made at installation, private"
    );
    for file in ["instance.key", "audit.key", "backup.password"] {
        let hex = std::fs::read_to_string(instance.data_dir().join(file)).expect("key");
        let grouped: Vec<String> = hex
            .trim()
            .as_bytes()
            .chunks(4)
            .map(|group| String::from_utf8_lossy(group).into_owned())
            .collect();
        assert!(page.contains(&grouped.join(" ")), "{file} is in the kit");
    }
    assert!(
        page.contains("deux <strong>exemplaires</strong>")
            || page.contains("<strong>deux exemplaires</strong>")
    );
    let again = instance.run(&[
        "keys",
        "recovery-kit",
        "--output",
        kit.to_str().expect("UTF-8"),
    ]);
    assert_refused(&again, "n'existe pas");
}

/// Instance key rotation (ADR 0011): the key file changes, the old key no longer opens
/// the instance, the practices' keys still open after several rotations, and a rotation
/// cut off on either side of the database switch is settled at the next start.
#[test]
fn the_instance_key_rotates_and_an_interrupted_rotation_settles() {
    let (instance, practice) = practice_with_patients(&[
        "Legrand;;Paul;;1950-01-02;M;;;;;;;;",
        "Legros;;Anne;;1960-03-04;F;;;;;;;;",
    ]);
    let key_path = instance.data_dir().join("instance.key");
    let next_path = instance.data_dir().join("instance.key.next");
    let first_key = std::fs::read_to_string(&key_path).expect("key");

    for _ in 0..3 {
        let before = std::fs::read_to_string(&key_path).expect("key");
        let rotated = instance.run(&["keys", "rotate", "--instance"]);
        assert!(rotated.status.success(), "{}", stderr_of(&rotated));
        assert!(stdout_of(&rotated).contains("kit de secours"));
        assert_ne!(std::fs::read_to_string(&key_path).expect("key"), before);
        assert_eq!(crate::support::mode_of(&key_path), 0o600);
        assert!(!next_path.exists());
    }
    // The practice key (wrapped under the root) still opens: its patients move to a new
    // practice key version, which needs every patient key opened.
    let moved = instance.run(&["keys", "rotate", "--practice", &practice]);
    assert!(moved.status.success(), "{}", stderr_of(&moved));
    assert!(
        stdout_of(&moved).contains("2 patient(s) passé(s)"),
        "{}",
        stdout_of(&moved)
    );

    // The retired key is refused.
    let current = std::fs::read_to_string(&key_path).expect("key");
    std::fs::write(&key_path, &first_key).expect("old key back");
    assert_refused(&instance.run(&["practice", "list"]), "ne correspond pas");
    std::fs::write(&key_path, &current).expect("current key back");

    // Cut off before the switch: a stray next key is dropped, the current key stays.
    write_private(&next_path, &"ab".repeat(32));
    let listed = instance.run(&["practice", "list"]);
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert!(!next_path.exists());
    assert_eq!(std::fs::read_to_string(&key_path).expect("key"), current);

    // Cut off after the switch, before the rename: the next start adopts the next key.
    let rotated = instance.run(&["keys", "rotate", "--instance"]);
    assert!(rotated.status.success(), "{}", stderr_of(&rotated));
    let newest = std::fs::read_to_string(&key_path).expect("key");
    std::fs::rename(&key_path, &next_path).expect("as if not yet renamed");
    write_private(&key_path, &current);
    let listed = instance.run(&["practice", "list"]);
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert!(!next_path.exists());
    assert_eq!(std::fs::read_to_string(&key_path).expect("key"), newest);
    let moved = instance.run(&["keys", "rotate", "--practice", &practice]);
    assert!(moved.status.success(), "{}", stderr_of(&moved));
}

fn write_private(path: &std::path::Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("open");
    file.write_all(text.as_bytes()).expect("write");
}
