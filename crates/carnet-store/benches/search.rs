//! A name-prefix search over many patients (100,000 by default, `CARNET_BENCH_PATIENTS`)
//! through Carnet's blind index, against the same search on a plaintext index in the same
//! SQLite database.
//!
//! Sealed: the practice key unwrapped, the two prefix digests (birth name, used name)
//! computed with their blind-index keys, the candidates read through the index
//! (`Tx::patients_by_index`, one pooled connection, no transaction: as the service reads
//! them), each candidate's key unwrapped and identity opened and parsed, then filtered,
//! sorted and cut to the fifty shown, as `Services::search_patients` does. Plaintext: one
//! table whose rows hold the identity in clear and its two prefixes in clear, indexed; the
//! same parse, filter, sort and cut. Authorization and audit are left out of both (they
//! are not the index; the HTTP benchmark measures them).
//!
//! `cargo bench -p carnet-store --bench search`. The two alternate in pairs; each pair's
//! CPU time per search (this process, user + system) and their ratio are printed, and the
//! median ratio. Nothing is asserted.

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

use carnet_crypto::{BlindIndexKey, DataKey, KeyMaterial, SealingKey, SystemRandom};
use carnet_domain::{PatientIdentity, PatientInput, PracticeId, name_prefix, normalize_name};
use carnet_store::{PatientRecord, PatientRevisionRecord, Store};
use common::place;
use uuid::Uuid;

const PAIRS: usize = 5;
/// Searches per run (terms cycled).
const SEARCHES: usize = 1_000;
/// Patients per transaction while filling the database.
const BATCH: usize = 2_000;
/// What a search shows (`carnet_service::SEARCH_LIMIT`; this crate does not depend on it).
const SHOWN: usize = 50;

/// A deterministic synthetic identity: a seven-letter name from random syllables (so
/// about 720 different 3-letter prefixes), a first name, a birth date.
struct Names(u64);

impl Names {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % bound as u64).unwrap_or(0)
    }

    fn identity(&mut self) -> PatientIdentity {
        const CONSONANTS: &[u8] = b"BCDFGLMNPRST";
        const VOWELS: &[u8] = b"AEIOU";
        let mut name = String::new();
        for _ in 0..3 {
            name.push(char::from(CONSONANTS[self.next(CONSONANTS.len())]));
            name.push(char::from(VOWELS[self.next(VOWELS.len())]));
        }
        name.push(char::from(CONSONANTS[self.next(CONSONANTS.len())]));
        let first = ["Anne", "Paul", "Marie", "Louis", "Jeanne", "Pierre"][self.next(6)];
        let birth_date = format!(
            "{}-{:02}-{:02}",
            1930 + self.next(80),
            1 + self.next(12),
            1 + self.next(28)
        );
        PatientIdentity::check(
            &PatientInput {
                birth_name: name,
                birth_first_names: vec![first.into()],
                birth_date,
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
}

struct Sealed {
    practice_id: PracticeId,
    wrapped_practice_key: Vec<u8>,
    /// The practice whose patients are the same identities in clear, in the same tables
    /// (index values in clear instead of HMACs).
    twin_id: PracticeId,
}

/// The practice's fields' blind-index keys, as the service derives them per search.
fn prefix_keys(practice_key: &DataKey) -> [(&'static str, BlindIndexKey); 2] {
    ["birth_name_prefix", "used_name_prefix"]
        .map(|field| (field, practice_key.blind_index_key(field).expect("key")))
}

/// Fills both: `count` sealed patients (key, sealed identity, blind indexes as the service
/// writes them) and the same identities in the plaintext table. Returns the search terms.
async fn fill(
    store: &Store,
    plain: &sqlx::SqlitePool,
    kek: &SealingKey,
    count: usize,
) -> (Sealed, Vec<String>) {
    let practice = common::practice(1);
    let practice_key = DataKey::generate(&SystemRandom).expect("key");
    let wrapped_practice_key = practice_key
        .wrap(kek, place("practice_keys", b"p"), &SystemRandom)
        .expect("wrap");
    let wrapping = practice_key.sealing_key(1).expect("sealing");
    let index_keys: Vec<(&'static str, BlindIndexKey)> =
        ["birth_name", "birth_name_prefix", "birth_date"]
            .into_iter()
            .map(|field| (field, practice_key.blind_index_key(field).expect("key")))
            .collect();
    let mut names = Names(0x9E37_79B9_7F4A_7C15);
    let mut terms = Vec::new();
    let twin = common::practice(2);
    let mut tx = store.transaction().await.expect("tx");
    tx.insert_practice(&practice).await.expect("practice");
    tx.insert_practice(&twin).await.expect("twin practice");
    // One writer at a time: each batch's plaintext rows go in after its sealed ones.
    let mut plain_rows: Vec<(String, String)> = Vec::with_capacity(BATCH);
    for n in 0..count {
        let identity = names.identity();
        let normalized = normalize_name(&identity.birth_name);
        let prefix = name_prefix(&normalized).expect("prefix");
        if n % 250 == 0 {
            terms.push(prefix.clone());
        }
        let json = serde_json::to_vec(&identity).expect("json");
        let values = [
            normalized.clone(),
            prefix.clone(),
            identity.birth_date.to_string(),
        ];
        insert_sealed(
            &mut tx,
            practice.id,
            n,
            &json,
            (&wrapping, &index_keys),
            &values,
        )
        .await;
        insert_twin(&mut tx, twin.id, n, &json, &values).await;
        plain_rows.push((prefix, String::from_utf8(json).expect("utf-8")));
        if (n + 1) % BATCH == 0 || n + 1 == count {
            tx.commit().await.expect("commit");
            let mut plain_tx = plain.begin().await.expect("plain tx");
            for (prefix, identity) in plain_rows.drain(..) {
                sqlx::query(
                    "INSERT INTO plain_patients (practice_id, birth_prefix, used_prefix, \
                     identity) VALUES (?, ?, '', ?)",
                )
                .bind(practice.id.as_uuid().as_bytes().as_slice())
                .bind(prefix)
                .bind(identity)
                .execute(&mut *plain_tx)
                .await
                .expect("plain");
            }
            plain_tx.commit().await.expect("plain commit");
            tx = store.transaction().await.expect("tx");
        }
    }
    tx.rollback().await.expect("nothing left");
    (
        Sealed {
            practice_id: practice.id,
            wrapped_practice_key,
            twin_id: twin.id,
        },
        terms,
    )
}

/// Sealed patient `n`: its wrapped key, its identity sealed, its blind indexes, as the
/// service writes them.
async fn insert_sealed(
    tx: &mut carnet_store::Tx,
    practice_id: PracticeId,
    n: usize,
    json: &[u8],
    (wrapping, index_keys): (&SealingKey, &[(&'static str, BlindIndexKey)]),
    values: &[String; 3],
) {
    let patient_id = Uuid::from_u128(1 + n as u128);
    let revision_id = Uuid::from_u128((1 << 64) + n as u128);
    let patient_key = DataKey::generate(&SystemRandom).expect("key");
    let wrapped_key = patient_key
        .wrap(
            wrapping,
            place("patients", patient_id.as_bytes()),
            &SystemRandom,
        )
        .expect("wrap");
    let sealed_identity = patient_key
        .sealing_key(1)
        .expect("sealing")
        .seal(
            json,
            place("patient_revisions", revision_id.as_bytes()),
            &SystemRandom,
        )
        .expect("seal");
    common::insert_patient(
        tx,
        practice_id,
        (patient_id, revision_id),
        wrapped_key,
        sealed_identity,
    )
    .await;
    let entries: Vec<(&'static str, Vec<u8>)> = index_keys
        .iter()
        .zip(values)
        .map(|((field, key), value)| (*field, key.digest(value).to_vec()))
        .collect();
    tx.replace_patient_index(practice_id, patient_id, &entries)
        .await
        .expect("index");
}

/// Patient `n`'s twin: the same rows as a sealed patient's, in clear.
async fn insert_twin(
    tx: &mut carnet_store::Tx,
    twin_id: PracticeId,
    n: usize,
    json: &[u8],
    values: &[String; 3],
) {
    let patient_id = Uuid::from_u128((2 << 64) + n as u128);
    let revision_id = Uuid::from_u128((3 << 64) + n as u128);
    common::insert_patient(
        tx,
        twin_id,
        (patient_id, revision_id),
        Vec::new(),
        json.to_vec(),
    )
    .await;
    let entries: Vec<(&'static str, Vec<u8>)> = ["birth_name", "birth_name_prefix", "birth_date"]
        .into_iter()
        .zip(values)
        .map(|(field, value)| (field, value.as_bytes().to_vec()))
        .collect();
    tx.replace_patient_index(twin_id, patient_id, &entries)
        .await
        .expect("twin index");
}

/// The same search through the same store method, in the twin practice whose index
/// values and identities are in clear: what the blind index and sealing alone cost.
async fn same_layout_search(store: &Store, twin_id: PracticeId, term: &str) -> usize {
    let name = normalize_name(term);
    let prefix = name_prefix(&name).expect("prefix");
    let probes =
        ["birth_name_prefix", "used_name_prefix"].map(|field| (field, prefix.as_bytes().to_vec()));
    let candidates = candidates(store, twin_id, &probes).await;
    let found = candidates
        .iter()
        .map(|(_, revision)| {
            serde_json::from_slice::<PatientIdentity>(&revision.sealed_identity).expect("json")
        })
        .filter(|identity| normalize_name(&identity.birth_name).starts_with(&name))
        .collect();
    shown(found)
}

/// The patients whose index holds one of `probes` (field, value), each once, read as the
/// service reads them: one pooled connection, no transaction.
async fn candidates(
    store: &Store,
    practice_id: PracticeId,
    probes: &[(&'static str, Vec<u8>)],
) -> Vec<(PatientRecord, PatientRevisionRecord)> {
    let mut tx = store.reads().await.expect("reads");
    let mut candidates: Vec<(PatientRecord, PatientRevisionRecord)> = Vec::new();
    for (field, value) in probes {
        for found in tx
            .patients_by_index(practice_id, field, value)
            .await
            .expect("probe")
        {
            if !candidates.iter().any(|(known, _)| known.id == found.0.id) {
                candidates.push(found);
            }
        }
    }
    candidates
}

/// The first fifty of `found` in name and birth date order, as the service shows them.
fn shown(mut found: Vec<PatientIdentity>) -> usize {
    found
        .sort_by_cached_key(|identity| (normalize_name(&identity.birth_name), identity.birth_date));
    found.truncate(SHOWN);
    found.len()
}

async fn sealed_search(store: &Store, kek: &SealingKey, sealed: &Sealed, term: &str) -> usize {
    let practice_key = DataKey::unwrap(
        kek,
        &sealed.wrapped_practice_key,
        place("practice_keys", b"p"),
    )
    .expect("practice key");
    let wrapping = practice_key.sealing_key(1).expect("sealing");
    let name = normalize_name(term);
    let prefix = name_prefix(&name).expect("prefix");
    let probes =
        prefix_keys(&practice_key).map(|(field, key)| (field, key.digest(&prefix).to_vec()));
    let candidates = candidates(store, sealed.practice_id, &probes).await;
    let mut found = Vec::new();
    for (patient, revision) in &candidates {
        let patient_key = DataKey::unwrap(
            &wrapping,
            &patient.wrapped_key,
            place("patients", patient.id.as_bytes()),
        )
        .expect("patient key");
        let identity: PatientIdentity = serde_json::from_slice(
            &patient_key
                .sealing_key(1)
                .expect("sealing")
                .open(
                    &revision.sealed_identity,
                    place("patient_revisions", revision.id.as_bytes()),
                )
                .expect("open"),
        )
        .expect("json");
        if normalize_name(&identity.birth_name).starts_with(&name) {
            found.push(identity);
        }
    }
    shown(found)
}

async fn plain_search(plain: &sqlx::SqlitePool, practice_id: PracticeId, term: &str) -> usize {
    let name = normalize_name(term);
    let prefix = name_prefix(&name).expect("prefix");
    // One probe per prefix column, like the blind index's two probes.
    let mut rows: Vec<(i64, String)> = Vec::new();
    for probe in [
        "SELECT id, identity FROM plain_patients WHERE practice_id = ? AND birth_prefix = ?",
        "SELECT id, identity FROM plain_patients WHERE practice_id = ? AND used_prefix = ?",
    ] {
        let found: Vec<(i64, String)> = sqlx::query_as(probe)
            .bind(practice_id.as_uuid().as_bytes().as_slice())
            .bind(&prefix)
            .fetch_all(plain)
            .await
            .expect("plain search");
        for row in found {
            if !rows.iter().any(|(known, _)| *known == row.0) {
                rows.push(row);
            }
        }
    }
    let found = rows
        .iter()
        .map(|(_, row)| serde_json::from_str::<PatientIdentity>(row).expect("json"))
        .filter(|identity| normalize_name(&identity.birth_name).starts_with(&name))
        .collect();
    shown(found)
}

/// CPU seconds of this process (user + system), from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// (CPU seconds, wall seconds, patients shown) of `SEARCHES` searches, terms cycled.
async fn run<'a, F, Fut>(terms: &'a [String], search: F) -> (f64, f64, usize)
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let (cpu, wall) = (process_cpu_seconds(), Instant::now());
    let mut shown = 0;
    for term in terms.iter().cycle().take(SEARCHES) {
        shown += std::hint::black_box(search(term).await);
    }
    (
        process_cpu_seconds() - cpu,
        wall.elapsed().as_secs_f64(),
        shown,
    )
}

fn main() {
    let count: usize = std::env::var("CARNET_BENCH_PATIENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bench.sqlite3");
        let store = Store::open_sqlite(&path).await.expect("open");
        store.migrate(None).await.expect("migrate");
        store
            .danger_execute(
                "CREATE TABLE plain_patients (id INTEGER PRIMARY KEY, practice_id BLOB NOT NULL, \
                 birth_prefix TEXT NOT NULL, used_prefix TEXT NOT NULL, identity TEXT NOT NULL)",
            )
            .await
            .expect("table");
        for index in [
            "CREATE INDEX plain_by_birth ON plain_patients (practice_id, birth_prefix)",
            "CREATE INDEX plain_by_used ON plain_patients (practice_id, used_prefix)",
        ] {
            store.danger_execute(index).await.expect("index");
        }
        // Like the store's own pool (same pragmas and page cache), one connection.
        let plain = carnet_store::sqlite_pool_options()
            .max_connections(1)
            .connect_with(carnet_store::sqlite_connect_options(&path))
            .await
            .expect("plain pool");
        let root = KeyMaterial::generate(&SystemRandom).expect("root");
        let kek = SealingKey::derived(1, &root, "bench/practice-keys").expect("kek");
        let started = Instant::now();
        let (sealed, terms) = fill(&store, &plain, &kek, count).await;
        println!(
            "{count} patients sealed and in clear in {:.1} s; {} search terms",
            started.elapsed().as_secs_f64(),
            terms.len()
        );
        for term in &terms {
            let plain_found = plain_search(&plain, sealed.practice_id, term).await;
            assert_eq!(
                sealed_search(&store, &kek, &sealed, term).await,
                plain_found,
                "both find the same for {term}"
            );
            assert_eq!(
                same_layout_search(&store, sealed.twin_id, term).await,
                plain_found
            );
        }
        let (mut ratios, mut layout_ratios) = (Vec::new(), Vec::new());
        for pair in 1..=PAIRS {
            let plain_run = run(&terms, |term| {
                plain_search(&plain, sealed.practice_id, term)
            })
            .await;
            let layout_run = run(&terms, |term| {
                same_layout_search(&store, sealed.twin_id, term)
            })
            .await;
            let sealed_run = run(&terms, |term| sealed_search(&store, &kek, &sealed, term)).await;
            assert_eq!(plain_run.2, sealed_run.2);
            assert_eq!(layout_run.2, sealed_run.2);
            let per = |seconds: f64| seconds / SEARCHES as f64 * 1e3;
            println!(
                "pair {pair}: plaintext table {:.3} ms CPU ({:.3} wall), same layout in clear \
                 {:.3} ms CPU ({:.3} wall), blind index {:.3} ms CPU ({:.3} wall) per search — \
                 blind/same layout {:.2}, blind/plaintext table {:.2}",
                per(plain_run.0),
                per(plain_run.1),
                per(layout_run.0),
                per(layout_run.1),
                per(sealed_run.0),
                per(sealed_run.1),
                sealed_run.0 / layout_run.0,
                sealed_run.0 / plain_run.0
            );
            layout_ratios.push(sealed_run.0 / layout_run.0);
            ratios.push(sealed_run.0 / plain_run.0);
        }
        for list in [&mut ratios, &mut layout_ratios] {
            list.sort_by(f64::total_cmp);
        }
        println!(
            "median CPU ratio, name prefix over {count} patients: blind index / same layout in \
             clear {:.2}; blind index / plaintext table {:.2}",
            layout_ratios[PAIRS / 2],
            ratios[PAIRS / 2]
        );
    });
}
