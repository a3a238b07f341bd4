//! Opening a patient record — identity and 50 care acts — from Carnet's sealed tables
//! (practice key unwrapped by the instance-derived key, patient key unwrapped, 51 values
//! opened with AES-256-GCM, JSON parsed) against two baselines in the same SQLite
//! database: the same tables and store methods with the values in clear (what encryption
//! alone costs), and simple plaintext tables (a patients table and an acts table, two
//! queries, no transaction). Authorization and audit are left out; one thread.
//!
//! `cargo bench -p carnet-store --bench record_read`. The two reads alternate in pairs;
//! the report gives each pair's ratio and the median. Nothing is asserted.

#![expect(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

mod common;

use std::time::Instant;

use carnet_crypto::{DataKey, KeyMaterial, SealingKey, SystemRandom};
use carnet_domain::{ClinicalContent, PatientIdentity, PatientInput, PracticeId};
use carnet_store::{ClinicalRecord, Store};
use common::place;
use uuid::Uuid;

const ACTS: usize = 50;
const READS: usize = 300;
const PAIRS: usize = 5;

fn identity() -> PatientIdentity {
    PatientIdentity::check(
        &PatientInput {
            birth_name: "Le Goff".into(),
            birth_first_names: vec!["Anne".into(), "Marie".into()],
            birth_date: "1950-01-02".into(),
            sex: "F".into(),
            identity_status: "PROV".into(),
            address: "12 rue des Lilas, 17000 La Rochelle".into(),
            phones: vec!["0612345678".into()],
            ..PatientInput::default()
        },
        None,
    )
    .expect("identity")
}

fn act(n: usize) -> ClinicalContent {
    serde_json::from_value(serde_json::json!({
        "kind": "act", "performed_at": format!("2026-11-{:02}T08:30", 1 + n % 28),
        "performer": "Anne Martin", "label": "Injection sous-cutanée", "ngap_code": "AMI 1",
        "observation": "Patiente calme, point d'injection propre, pas de réaction.",
        "vitals": {"temperature_celsius": 37.2, "systolic_mmhg": 130, "diastolic_mmhg": 80,
                   "pulse_bpm": 72, "pain_0_10": 2}
    }))
    .expect("act")
}

struct Sealed {
    practice_id: PracticeId,
    patient_id: Uuid,
    wrapped_practice_key: Vec<u8>,
}

async fn setup(store: &Store, kek: &SealingKey) -> Sealed {
    let practice = common::practice(1);
    let practice_key = DataKey::generate(&SystemRandom).expect("key");
    let wrapped_practice_key = practice_key
        .wrap(kek, place("practice_keys", b"p"), &SystemRandom)
        .expect("wrap");
    let patient_id = Uuid::from_u128(1);
    let patient_key = DataKey::generate(&SystemRandom).expect("key");
    let wrapping = practice_key.sealing_key(1).expect("sealing");
    let sealing = patient_key.sealing_key(1).expect("sealing");
    let mut tx = store.transaction().await.expect("tx");
    tx.insert_practice(&practice).await.expect("practice");
    let wrapped_key = patient_key
        .wrap(
            &wrapping,
            place("patients", patient_id.as_bytes()),
            &SystemRandom,
        )
        .expect("wrap");
    let revision_id = Uuid::from_u128(2);
    let identity = serde_json::to_vec(&identity()).expect("json");
    let sealed_identity = sealing
        .seal(
            &identity,
            place("patient_revisions", revision_id.as_bytes()),
            &SystemRandom,
        )
        .expect("seal");
    common::insert_patient(
        &mut tx,
        practice.id,
        (patient_id, revision_id),
        wrapped_key,
        sealed_identity,
    )
    .await;
    for n in 0..ACTS {
        let entry_id = Uuid::from_u128(1000 + n as u128);
        let revision_id = Uuid::from_u128(2000 + n as u128);
        let content = serde_json::to_vec(&act(n)).expect("json");
        tx.insert_clinical_entry(
            practice.id,
            &ClinicalRecord {
                entry_id,
                patient_id,
                kind: "act".into(),
                entry_created_at: common::NOW,
                revision_id,
                number: 1,
                sealed_content: sealing
                    .seal(
                        &content,
                        place("clinical_revisions", revision_id.as_bytes()),
                        &SystemRandom,
                    )
                    .expect("seal"),
                created_at: common::NOW,
                created_by: common::AUTHOR,
            },
        )
        .await
        .expect("entry");
    }
    insert_twin(&mut tx, practice.id, &identity).await;
    tx.commit().await.expect("commit");
    Sealed {
        practice_id: practice.id,
        patient_id,
        wrapped_practice_key,
    }
}

/// The same layout with the values in clear: the baseline that isolates encryption.
async fn insert_twin(tx: &mut carnet_store::Tx, practice_id: PracticeId, identity: &[u8]) {
    let twin = Uuid::from_u128(3);
    common::insert_patient(
        tx,
        practice_id,
        (twin, Uuid::from_u128(4)),
        Vec::new(),
        identity.to_vec(),
    )
    .await;
    for n in 0..ACTS {
        tx.insert_clinical_entry(
            practice_id,
            &ClinicalRecord {
                entry_id: Uuid::from_u128(3000 + n as u128),
                patient_id: twin,
                kind: "act".into(),
                entry_created_at: common::NOW,
                revision_id: Uuid::from_u128(4000 + n as u128),
                number: 1,
                sealed_content: serde_json::to_vec(&act(n)).expect("json"),
                created_at: common::NOW,
                created_by: common::AUTHOR,
            },
        )
        .await
        .expect("twin entry");
    }
}

async fn sealed_read(store: &Store, kek: &SealingKey, sealed: &Sealed) -> usize {
    let mut tx = store.transaction().await.expect("tx");
    let (patient, revision) = tx
        .patient_with_revision(sealed.practice_id, sealed.patient_id)
        .await
        .expect("read")
        .expect("patient");
    let acts = tx
        .clinical_entries(sealed.practice_id, sealed.patient_id)
        .await
        .expect("read");
    tx.rollback().await.expect("rollback");
    let practice_key = DataKey::unwrap(
        kek,
        &sealed.wrapped_practice_key,
        place("practice_keys", b"p"),
    )
    .expect("practice key");
    let patient_key = DataKey::unwrap(
        &practice_key.sealing_key(1).expect("sealing"),
        &patient.wrapped_key,
        place("patients", patient.id.as_bytes()),
    )
    .expect("patient key");
    let sealing = patient_key.sealing_key(1).expect("sealing");
    let identity: PatientIdentity = serde_json::from_slice(
        &sealing
            .open(
                &revision.sealed_identity,
                place("patient_revisions", revision.id.as_bytes()),
            )
            .expect("open"),
    )
    .expect("json");
    let mut count = usize::from(!identity.birth_name.is_empty());
    for act in &acts {
        let content: ClinicalContent = serde_json::from_slice(
            &sealing
                .open(
                    &act.sealed_content,
                    place("clinical_revisions", act.revision_id.as_bytes()),
                )
                .expect("open"),
        )
        .expect("json");
        count += usize::from(content.kind() == "act");
    }
    count
}

/// The same reads, through the same store methods, of the twin whose values are in clear.
async fn same_layout_read(store: &Store, practice_id: PracticeId) -> usize {
    let twin = Uuid::from_u128(3);
    let mut tx = store.transaction().await.expect("tx");
    let (patient, revision) = tx
        .patient_with_revision(practice_id, twin)
        .await
        .expect("read")
        .expect("twin");
    let acts = tx.clinical_entries(practice_id, twin).await.expect("read");
    tx.rollback().await.expect("rollback");
    let identity: PatientIdentity =
        serde_json::from_slice(&revision.sealed_identity).expect("json");
    let mut count = usize::from(!identity.birth_name.is_empty() && patient.id == twin);
    for act in &acts {
        let content: ClinicalContent = serde_json::from_slice(&act.sealed_content).expect("json");
        count += usize::from(content.kind() == "act");
    }
    count
}

async fn plain_setup(store: &Store) {
    store
        .danger_execute(
            "CREATE TABLE plain_patients (id BLOB PRIMARY KEY, practice_id BLOB, identity TEXT)",
        )
        .await
        .expect("table");
    store
        .danger_execute(
            "CREATE TABLE plain_acts (id BLOB PRIMARY KEY, practice_id BLOB, patient_id BLOB, \
             created_at INTEGER, content TEXT)",
        )
        .await
        .expect("table");
    store
        .danger_execute("CREATE INDEX plain_acts_by_patient ON plain_acts (practice_id, patient_id, created_at)")
        .await
        .expect("index");
}

#[expect(
    clippy::too_many_lines,
    reason = "one benchmark: its baselines' setup, the alternating runs, the report"
)]
fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open_sqlite(&dir.path().join("bench.sqlite3"))
            .await
            .expect("open");
        store.migrate(None).await.expect("migrate");
        let root = KeyMaterial::generate(&SystemRandom).expect("root");
        let kek = SealingKey::derived(1, &root, "bench/practice-keys").expect("kek");
        let sealed = setup(&store, &kek).await;
        plain_setup(&store).await;
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join("bench.sqlite3").display()
        ))
        .await
        .expect("plain pool");
        let practice = sealed.practice_id.as_uuid().as_bytes().to_vec();
        let patient = sealed.patient_id.as_bytes().to_vec();
        sqlx::query("INSERT INTO plain_patients VALUES (?, ?, ?)")
            .bind(&patient)
            .bind(&practice)
            .bind(serde_json::to_string(&identity()).expect("json"))
            .execute(&pool)
            .await
            .expect("insert");
        for n in 0..ACTS {
            sqlx::query("INSERT INTO plain_acts VALUES (?, ?, ?, ?, ?)")
                .bind(Uuid::from_u128(5000 + n as u128).as_bytes().to_vec())
                .bind(&practice)
                .bind(&patient)
                .bind(n as i64)
                .bind(serde_json::to_string(&act(n)).expect("json"))
                .execute(&pool)
                .await
                .expect("insert");
        }
        let plain_read = || async {
            let (identity,): (String,) =
                sqlx::query_as("SELECT identity FROM plain_patients WHERE practice_id = ? AND id = ?")
                    .bind(&practice)
                    .bind(&patient)
                    .fetch_one(&pool)
                    .await
                    .expect("read");
            let identity: PatientIdentity = serde_json::from_str(&identity).expect("json");
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT content FROM plain_acts WHERE practice_id = ? AND patient_id = ? ORDER BY created_at",
            )
            .bind(&practice)
            .bind(&patient)
            .fetch_all(&pool)
            .await
            .expect("read");
            let mut count = usize::from(!identity.birth_name.is_empty());
            for (content,) in rows {
                let content: ClinicalContent = serde_json::from_str(&content).expect("json");
                count += usize::from(content.kind() == "act");
            }
            count
        };
        assert_eq!(plain_read().await, ACTS + 1);
        assert_eq!(sealed_read(&store, &kek, &sealed).await, ACTS + 1);
        assert_eq!(same_layout_read(&store, sealed.practice_id).await, ACTS + 1);
        let (mut ratios, mut layout_ratios) = (Vec::new(), Vec::new());
        for pair in 1..=PAIRS {
            let started = Instant::now();
            for _ in 0..READS {
                std::hint::black_box(plain_read().await);
            }
            let plain = started.elapsed().as_secs_f64();
            let started = Instant::now();
            for _ in 0..READS {
                std::hint::black_box(same_layout_read(&store, sealed.practice_id).await);
            }
            let layout = started.elapsed().as_secs_f64();
            let started = Instant::now();
            for _ in 0..READS {
                std::hint::black_box(sealed_read(&store, &kek, &sealed).await);
            }
            let sealed_time = started.elapsed().as_secs_f64();
            let per_read = |total: f64| total / READS as f64 * 1e6;
            println!(
                "pair {pair}: plaintext tables {:.1} µs, same layout in clear {:.1} µs, sealed {:.1} µs \
                 — sealed/same layout {:.2}, sealed/plaintext tables {:.2}",
                per_read(plain),
                per_read(layout),
                per_read(sealed_time),
                sealed_time / layout,
                sealed_time / plain
            );
            layout_ratios.push(sealed_time / layout);
            ratios.push(sealed_time / plain);
        }
        for list in [&mut ratios, &mut layout_ratios] {
            list.sort_by(f64::total_cmp);
        }
        println!(
            "median, identity + {ACTS} acts: sealed / same layout in clear {:.2}; \
             sealed / plaintext tables {:.2}",
            layout_ratios[PAIRS / 2],
            ratios[PAIRS / 2]
        );
    });
}
