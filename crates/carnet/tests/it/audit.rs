//! `carnet audit verify` on a real instance: intact, then each kind of damage made by
//! editing the SQLite file directly (as an attacker with the file would, dropping the
//! append-only triggers first), found with the right sequence number.

use carnet_audit::{ChainId, Outcome};
use carnet_store::Store;

use crate::support::{Instance, stderr_of, stdout_of};

const DAMAGED: i32 = 2;

/// An instance whose instance chain has 8 entries (8 practices created), with a signed
/// checkpoint taken after the 6th.
fn fixture() -> Instance {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    for n in 1..=8 {
        let output = instance.run(&[
            "practice",
            "create",
            "--name",
            &format!("Cabinet {n}"),
            "--address",
            "1 rue de la Paix, 75002 Paris",
            "--profession",
            "nurse",
        ]);
        assert!(output.status.success(), "{}", stderr_of(&output));
        if n == 6 {
            let output = instance.run(&["audit", "checkpoint"]);
            assert!(output.status.success(), "{}", stderr_of(&output));
        }
    }
    instance
}

async fn edit(instance: &Instance, statements: &str) {
    let path = instance.data_dir().join("carnet.sqlite3");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the database file");
    let attack = format!(
        "DROP TRIGGER IF EXISTS audit_entries_no_update; \
         DROP TRIGGER IF EXISTS audit_entries_no_delete; {statements}"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(attack))
        .execute(&pool)
        .await
        .expect("edit");
    pool.close().await;
}

fn assert_damage(instance: &Instance, expected: &str) {
    let output = instance.run(&["audit", "verify"]);
    assert_eq!(
        output.status.code(),
        Some(DAMAGED),
        "{}{}",
        stdout_of(&output),
        stderr_of(&output)
    );
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains(&format!("ALTÉRÉ   {expected}")),
        "expected «{expected}» in {stdout}"
    );
    assert!(
        stderr_of(&output).contains(expected),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn an_intact_live_instance_verifies() {
    let instance = fixture();
    let output = instance.run(&["audit", "verify"]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout_of(&output),
        stderr_of(&output)
    );
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("intact   instance  8 entrée(s), 1 point(s) de contrôle"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("intact   practice:").count(), 8, "{stdout}");
    let checkpoints =
        std::fs::read_to_string(instance.data_dir().join("audit-checkpoints.log")).expect("file");
    assert_eq!(
        checkpoints.lines().count(),
        7,
        "instance + 6 practices at the first checkpoint"
    );
    assert_eq!(
        crate::support::mode_of(&instance.data_dir().join("audit.key")),
        0o600
    );
}

#[tokio::test]
async fn an_edited_field_is_found_at_its_sequence() {
    let instance = fixture();
    edit(
        &instance,
        "UPDATE audit_entries SET outcome = 'denied' WHERE chain_id = 'instance' AND seq = 3",
    )
    .await;
    assert_damage(&instance, "instance seq 3: entry altered");
}

#[tokio::test]
async fn a_deleted_entry_is_found_at_its_sequence() {
    let instance = fixture();
    edit(
        &instance,
        "DELETE FROM audit_entries WHERE chain_id = 'instance' AND seq = 4",
    )
    .await;
    assert_damage(&instance, "instance seq 4: entries missing");
}

#[tokio::test]
async fn an_inserted_entry_is_found_at_its_sequence() {
    let instance = fixture();
    edit(
        &instance,
        "UPDATE audit_entries SET seq = seq + 1000 WHERE chain_id = 'instance' AND seq >= 3; \
         UPDATE audit_entries SET seq = seq - 999 WHERE chain_id = 'instance' AND seq >= 1000; \
         INSERT INTO audit_entries SELECT chain_id, 3, prev_hash, hash, at, actor_kind, \
           actor_account, actor_role, actor_device, actor_session, action, target_patient, \
           target_record, target_document, target_member, outcome, 'forged', client_address \
           FROM audit_entries WHERE chain_id = 'instance' AND seq = 2",
    )
    .await;
    assert_damage(&instance, "instance seq 3: entry altered");
}

#[tokio::test]
async fn two_swapped_entries_are_found_at_the_first() {
    let instance = fixture();
    edit(
        &instance,
        "UPDATE audit_entries SET seq = -2 WHERE chain_id = 'instance' AND seq = 2; \
         UPDATE audit_entries SET seq = 2 WHERE chain_id = 'instance' AND seq = 5; \
         UPDATE audit_entries SET seq = 5 WHERE chain_id = 'instance' AND seq = -2",
    )
    .await;
    assert_damage(&instance, "instance seq 2: entry altered");
}

#[tokio::test]
async fn a_truncated_tail_is_found_against_the_checkpoint() {
    let instance = fixture();
    edit(
        &instance,
        "DELETE FROM audit_entries WHERE chain_id = 'instance' AND seq >= 6",
    )
    .await;
    assert_damage(&instance, "instance seq 6: tail truncated");
}

#[tokio::test]
async fn a_rewritten_chain_is_found_against_the_checkpoint() {
    let instance = fixture();
    // Re-seal the whole chain from seq 2 with one outcome changed: internally consistent.
    let store = Store::open_sqlite(&instance.data_dir().join("carnet.sqlite3"))
        .await
        .expect("open");
    let entries: Vec<_> = store
        .audit_chain_entries(ChainId::Instance)
        .await
        .expect("read")
        .into_iter()
        .map(|entry| entry.expect("readable"))
        .collect();
    store.close().await;
    let first = entries[0].clone();
    edit(
        &instance,
        "DELETE FROM audit_entries WHERE chain_id = 'instance' AND seq >= 2; \
         DELETE FROM audit_chains WHERE chain_id = 'instance'",
    )
    .await;
    let reset_head = format!(
        "INSERT INTO audit_chains (chain_id, head_seq, head_hash) VALUES ('instance', 1, x'{}')",
        carnet_audit::hex(&first.hash)
    );
    edit(&instance, &reset_head).await;
    let store = Store::open_sqlite(&instance.data_dir().join("carnet.sqlite3"))
        .await
        .expect("open");
    let mut tx = store.transaction().await.expect("begin");
    for mut entry in entries.into_iter().skip(1) {
        if entry.seq == 2 {
            entry.event.outcome = Outcome::Failure;
        }
        tx.append_audit(entry.event).await.expect("re-seal");
    }
    tx.commit().await.expect("commit");
    store.close().await;
    assert_damage(&instance, "instance seq 6: chain rewritten");
}

#[test]
fn a_forged_checkpoint_in_the_file_is_found() {
    let instance = fixture();
    let path = instance.data_dir().join("audit-checkpoints.log");
    let text = std::fs::read_to_string(&path).expect("file");
    let forged: String = text
        .lines()
        .map(|line| {
            if line.starts_with("carnet-checkpoint 1 instance ") {
                // Claim a different head hash; the signature no longer matches.
                let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
                fields[4] = "00".repeat(32);
                fields.join(" ")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, forged + "\n").expect("write");
    assert_damage(&instance, "instance seq 6: checkpoint signature invalid");
}

#[tokio::test]
async fn verify_can_be_limited_to_one_practice() {
    let instance = fixture();
    edit(
        &instance,
        "UPDATE audit_entries SET outcome = 'denied' WHERE chain_id = 'instance' AND seq = 3",
    )
    .await;
    let listed = stdout_of(&instance.run(&["practice", "list"]));
    let practice = listed
        .lines()
        .next()
        .and_then(|line| line.split('\t').next())
        .expect("a practice");
    let output = instance.run(&["audit", "verify", "--practice", practice]);
    assert!(output.status.success(), "{}", stdout_of(&output));
    assert_eq!(stdout_of(&output).lines().count(), 1);
}

#[test]
fn refuses_to_start_when_the_audit_key_is_missing_or_replaced() {
    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let key = instance.data_dir().join("audit.key");
    let original = std::fs::read(&key).expect("audit key");
    std::fs::remove_file(&key).expect("remove");
    let output = instance.run(&["serve", "--listen", "127.0.0.1:0"]);
    crate::support::assert_refused(&output, "clé du journal d'audit");
    std::fs::write(&key, format!("{}\n", "cd".repeat(32))).expect("write");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let output = instance.run(&["serve", "--listen", "127.0.0.1:0"]);
    crate::support::assert_refused(&output, "n'est pas celle de cette instance");
    std::fs::write(&key, original).expect("restore");
}

#[tokio::test]
async fn checkpoints_are_posted_to_the_configured_witness() {
    use std::sync::{Arc, Mutex};

    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/witness",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let instance = Instance::new();
    assert!(instance.run(&["migrate"]).status.success());
    let output = instance.run(&[
        "practice",
        "create",
        "--name",
        "Cabinet",
        "--address",
        "1 rue Basse, 31000 Toulouse",
        "--profession",
        "dentist",
    ]);
    assert!(output.status.success());
    let url = format!("http://{address}/witness");
    let output = tokio::task::spawn_blocking({
        let mut command = instance.command();
        command
            .args(["audit", "checkpoint"])
            .env("CARNET_AUDIT_CHECKPOINT_WEBHOOK", &url);
        move || command.output().expect("run")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{}", stderr_of(&output));

    let bodies = received.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "one POST per checkpoint run");
    let checkpoints = bodies[0]["checkpoints"].as_array().expect("list");
    assert_eq!(
        checkpoints.len(),
        2,
        "the instance chain and the practice chain"
    );
    let file =
        std::fs::read_to_string(instance.data_dir().join("audit-checkpoints.log")).expect("file");
    for checkpoint in checkpoints {
        let line = checkpoint["line"].as_str().expect("line");
        assert!(
            file.contains(line),
            "the witness got the same checkpoint as the file"
        );
    }
    assert_eq!(bodies[0]["public_key"].as_str().map(str::len), Some(64));
    server.abort();
}

#[test]
fn a_plain_http_witness_off_the_machine_is_refused() {
    let instance = Instance::new();
    let output = instance
        .command()
        .args(["config", "check"])
        .env(
            "CARNET_AUDIT_CHECKPOINT_WEBHOOK",
            "http://witness.example.org/c",
        )
        .output()
        .expect("run");
    crate::support::assert_refused(&output, "audit_checkpoint_webhook doit être en https");
}
