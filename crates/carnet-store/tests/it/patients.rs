//! Patients in the store (ADR 0009): bytes only, scoped by practice, found by blind
//! index with their current revision, revisions append-only — on both backends.

use carnet_domain::{Address, Practice, PracticeId, PracticeName, Profession, Timestamp};
use carnet_store::{PatientRecord, PatientRevisionRecord, Store, StoreError};
use uuid::Uuid;

use crate::support::conformance;

conformance!(
    patients_are_scoped_indexed_and_their_revisions_append_only,
    patient_revisions_cannot_be_updated_or_deleted,
    an_import_inserts_many_patients_at_once,
    reads_see_the_latest_commit_and_refuse_writes,
    the_identity_beside_the_patient_is_its_newest_revision,
);

/// PostgreSQL's row-level security (migration 0014) is a second wall behind each query's
/// own practice filter: a raw query as Carnet's role that forgets the filter sees no
/// patient without a scope, only its practice's patients with one, cannot write a row of
/// another practice, and sees every practice only when it says it works instance-wide.
#[tokio::test]
async fn row_level_security_keeps_a_query_without_practice_filter_in_its_practice() {
    let Some(harness) = crate::support::postgres().await else {
        return;
    };
    let (a, b) = (practice(11), practice(12));
    let now = Timestamp::from_unix_millis(4_000);
    let (in_a, in_b) = (patient(0xB1, a.id, now), patient(0xB2, b.id, now));
    let mut tx = harness.store.transaction().await.expect("tx");
    practices_with_a_patient(&mut tx, (&a, &b), &in_a).await;
    tx.insert_practice_key(b.id, 1, b"first", now)
        .await
        .expect("key");
    tx.insert_patient(&in_b, Uuid::from_u128(9))
        .await
        .expect("patient of b");
    tx.commit().await.expect("commit");

    let options = harness.app_options.clone().expect("PostgreSQL options");
    let mut raw: sqlx::PgConnection = sqlx::ConnectOptions::connect(&options)
        .await
        .expect("connect as Carnet's role");
    let mut wall = sqlx::Connection::begin(&mut raw).await.expect("begin");
    assert_eq!(
        visible_patients(&mut wall).await,
        Vec::<Uuid>::new(),
        "no scope, no patient"
    );

    set(&mut wall, "carnet.practice", &a.id.as_uuid().to_string()).await;
    assert_eq!(
        visible_patients(&mut wall).await,
        [in_a.id],
        "practice a's scope shows a's patient only"
    );
    let other: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM patients WHERE id = $1")
        .bind(in_b.id)
        .fetch_optional(&mut *wall)
        .await
        .expect("select");
    assert_eq!(other, None, "b's patient is invisible by id too");
    let written = sqlx::query(
        "INSERT INTO patients (id, practice_id, key_version, wrapped_key, created_at, \
         created_by) VALUES ($1, $2, 1, 'x', 0, $1)",
    )
    .bind(Uuid::from_u128(0xB3))
    .bind(b.id.as_uuid())
    .execute(&mut *wall)
    .await;
    assert!(
        written.is_err(),
        "a row of practice b written under a's scope must be refused"
    );
    wall.rollback().await.expect("rollback");

    let mut wall = sqlx::Connection::begin(&mut raw).await.expect("begin");
    set(&mut wall, "carnet.instance_wide", "on").await;
    assert_eq!(
        visible_patients(&mut wall).await,
        [in_a.id, in_b.id],
        "instance-wide sees both"
    );
    wall.rollback().await.expect("rollback");
    drop(raw);

    // What `carnet serve` checks to warn: Carnet's own role is held by the policies, the
    // test URL's superuser is not.
    assert!(
        !harness.store.bypasses_row_security().await.expect("role"),
        "Carnet's role is subject to row-level security"
    );
    let url = crate::support::postgres_url().expect("PostgreSQL URL");
    let superuser = Store::connect_postgres(&url).await.expect("connect");
    assert!(
        superuser.bypasses_row_security().await.expect("role"),
        "the test URL's superuser escapes row-level security"
    );
    superuser.close().await;
    harness.finish().await;
}

/// A connection for reads (`Store::reads`) on PostgreSQL sends no BEGIN until its first
/// care-records statement, whose row-level security scope needs a transaction; that
/// transaction ends with the reads, and a reads connection let go without ending it (a
/// cancelled request) is closed rather than pooled with its scope. Observed from the
/// server's side, on a store whose connections carry a name of their own.
#[tokio::test]
async fn reads_open_a_transaction_for_their_row_scope_only_and_never_pool_it() {
    let Some(harness) = crate::support::postgres().await else {
        return;
    };
    let (a, b) = (practice(13), practice(14));
    let in_a = patient(0xB4, a.id, Timestamp::from_unix_millis(4_000));
    let mut tx = harness.store.transaction().await.expect("tx");
    practices_with_a_patient(&mut tx, (&a, &b), &in_a).await;
    tx.commit().await.expect("commit");

    let name = format!("carnet_reads_{}", std::process::id());
    let options = harness
        .app_options
        .clone()
        .expect("PostgreSQL options")
        .application_name(&name);
    let store = Store::connect_postgres_with(options)
        .await
        .expect("connect");
    let url = crate::support::postgres_url().expect("PostgreSQL URL");
    let mut observer = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("observer");
    // How many of the named store's server processes are inside a transaction (the
    // pool may hold more than one connection: returning one is asynchronous).
    let mut open = async || -> i64 {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state = 'idle in transaction'",
        )
        .bind(&name)
        .fetch_one(&mut observer)
        .await
        .expect("pg_stat_activity")
    };

    let mut reads = store.reads().await.expect("reads");
    assert_eq!(reads.practice_keys(a.id).await.expect("keys").len(), 1);
    assert_eq!(open().await, 0, "no transaction for the keys");
    let found = reads
        .patient_with_revision(a.id, in_a.id)
        .await
        .expect("read");
    assert!(found.is_none(), "the patient has no revision yet");
    assert_eq!(open().await, 1, "the patient's scope opened one");
    reads.rollback().await.expect("end");
    assert_eq!(open().await, 0, "ended with the reads");

    let mut reads = store.reads().await.expect("reads");
    reads
        .patient_with_revision(a.id, in_a.id)
        .await
        .expect("read");
    assert_eq!(open().await, 1);
    drop(reads);
    let mut left = open().await;
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        left = open().await;
    }
    assert_eq!(
        left, 0,
        "the connection let go inside its transaction was closed, not pooled with it"
    );
    let mut reads = store.reads().await.expect("reads");
    assert_eq!(reads.practice_keys(a.id).await.expect("keys").len(), 1);
    drop(reads);
    store.close().await;
    harness.finish().await;
}

/// Sets a row-level security setting for the rest of the transaction.
async fn set(connection: &mut sqlx::PgConnection, setting: &str, value: &str) {
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(setting)
        .bind(value)
        .execute(connection)
        .await
        .expect("set_config");
}

/// Every patient id a query without practice filter sees.
async fn visible_patients(connection: &mut sqlx::PgConnection) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM patients ORDER BY id")
        .fetch_all(connection)
        .await
        .expect("select")
}

fn practice(n: u64) -> Practice {
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&n.to_be_bytes());
    Practice {
        id: PracticeId::new_v7(1_000 + n, &random),
        name: PracticeName::parse(&format!("Cabinet {n}")).expect("valid"),
        address: Address::parse("3 rue des Lilas, 69003 Lyon").expect("valid"),
        profession: Profession::Nurse,
        created_at: Timestamp::from_unix_millis(1_000),
    }
}

/// A patient of `practice_id` with key version 1.
fn patient(id: u128, practice_id: PracticeId, created_at: Timestamp) -> PatientRecord {
    PatientRecord {
        id: Uuid::from_u128(id),
        practice_id,
        key_version: 1,
        wrapped_key: b"wrapped".to_vec(),
        created_at,
        last_care_at: None,
    }
}

/// Inserts practices `a` and `b`, a first key (version 1) for `a`, and `patient` in `a`.
async fn practices_with_a_patient(
    tx: &mut carnet_store::Tx,
    (a, b): (&Practice, &Practice),
    patient: &PatientRecord,
) {
    tx.insert_practice(a).await.expect("practice");
    tx.insert_practice(b).await.expect("practice");
    tx.insert_practice_key(a.id, 1, b"first", patient.created_at)
        .await
        .expect("key");
    tx.insert_patient(patient, Uuid::from_u128(9))
        .await
        .expect("patient");
}

fn revision(patient: Uuid, number: i64, sealed: &[u8]) -> PatientRevisionRecord {
    PatientRevisionRecord {
        id: Uuid::from_u128(0x1000 + u128::try_from(number).expect("positive") + patient.as_u128()),
        patient_id: patient,
        number,
        sealed_identity: sealed.to_vec(),
        created_at: Timestamp::from_unix_millis(5_000 + number),
        created_by: Uuid::from_u128(9),
    }
}

async fn patients_are_scoped_indexed_and_their_revisions_append_only(store: &Store) {
    let (a, b) = (practice(1), practice(2));
    let now = Timestamp::from_unix_millis(4_000);
    let patient = patient(0xA1, a.id, now);
    let mut tx = store.transaction().await.expect("tx");
    practices_with_a_patient(&mut tx, (&a, &b), &patient).await;
    tx.insert_practice_key(a.id, 1, b"second", now)
        .await
        .expect("a racing insert is a no-op");
    tx.insert_patient_revision(a.id, &revision(patient.id, 1, b"sealed-1"))
        .await
        .expect("revision");
    tx.replace_patient_index(a.id, patient.id, &[("birth_name", b"digest-1".to_vec())])
        .await
        .expect("index");
    tx.insert_patient_revision(a.id, &revision(patient.id, 2, b"sealed-2"))
        .await
        .expect("revision 2");
    tx.replace_patient_index(a.id, patient.id, &[("birth_name", b"digest-2".to_vec())])
        .await
        .expect("index 2");
    tx.commit().await.expect("commit");

    let mut tx = store.transaction().await.expect("tx");
    assert_eq!(
        tx.practice_keys(a.id).await.expect("keys"),
        vec![(1, b"first".to_vec())]
    );
    assert_eq!(
        tx.patient(a.id, patient.id).await.expect("read"),
        Some(patient.clone())
    );
    assert_eq!(
        tx.patient(b.id, patient.id).await.expect("read"),
        None,
        "scoped"
    );
    let found = tx
        .patients_by_index(a.id, "birth_name", b"digest-2")
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, patient);
    assert_eq!(found[0].1.number, 2, "with its current revision");
    assert!(
        tx.patients_by_index(a.id, "birth_name", b"digest-1")
            .await
            .expect("search")
            .is_empty(),
        "the index follows the current revision"
    );
    assert!(
        tx.patients_by_index(b.id, "birth_name", b"digest-2")
            .await
            .expect("search")
            .is_empty(),
        "scoped"
    );
    assert_eq!(
        tx.patient_revisions(a.id, patient.id)
            .await
            .expect("history")
            .iter()
            .map(|revision| revision.number)
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert!(matches!(
        tx.insert_patient_revision(
            a.id,
            &PatientRevisionRecord {
                id: Uuid::from_u128(0xFFFF),
                ..revision(patient.id, 2, b"again")
            }
        )
        .await,
        Err(StoreError::Conflict)
    ));
    tx.rollback().await.expect("rollback");
}

async fn patient_revisions_cannot_be_updated_or_deleted(store: &Store) {
    patients_are_scoped_indexed_and_their_revisions_append_only(store).await;
    for statement in [
        "UPDATE patient_revisions SET sealed_identity = sealed_identity",
        "DELETE FROM patient_revisions",
    ] {
        assert!(
            store.danger_execute(statement).await.is_err(),
            "{statement} must be refused by the database"
        );
    }
}

/// 450 new patients in one call (more than one statement's worth per table), each with
/// its revision and index entries (a duplicate entry kept once): each is found by its
/// own digest with its revision, a shared digest finds them all, and a patient already
/// there fails the whole insert.
async fn an_import_inserts_many_patients_at_once(store: &Store) {
    let a = practice(3);
    let now = Timestamp::from_unix_millis(4_000);
    let patients: Vec<PatientRecord> = (0..450_u128)
        .map(|n| PatientRecord {
            id: Uuid::from_u128(0xB000 + n),
            practice_id: a.id,
            key_version: 1,
            wrapped_key: n.to_be_bytes().to_vec(),
            created_at: now,
            last_care_at: None,
        })
        .collect();
    let revisions: Vec<PatientRevisionRecord> = patients
        .iter()
        .map(|patient| revision(patient.id, 1, patient.id.as_bytes()))
        .collect();
    let entries: Vec<Vec<(&'static str, Vec<u8>)>> = patients
        .iter()
        .map(|patient| {
            vec![
                ("birth_name", patient.id.as_bytes().to_vec()),
                ("birth_name_prefix", b"shared".to_vec()),
                ("birth_name_prefix", b"shared".to_vec()),
            ]
        })
        .collect();
    let rows: Vec<_> = patients
        .iter()
        .zip(&revisions)
        .zip(&entries)
        .map(|((patient, revision), entries)| (patient, revision, entries.as_slice()))
        .collect();
    let mut tx = store.transaction().await.expect("tx");
    tx.insert_practice(&a).await.expect("practice");
    tx.insert_new_patients(a.id, Uuid::from_u128(9), &rows)
        .await
        .expect("insert");
    tx.commit().await.expect("commit");

    let mut tx = store.transaction().await.expect("tx");
    for n in [0, 199, 200, 449] {
        let found = tx
            .patients_by_index(a.id, "birth_name", patients[n].id.as_bytes())
            .await
            .expect("search");
        assert_eq!(found, vec![(patients[n].clone(), revisions[n].clone())]);
    }
    let shared = tx
        .patients_by_index(a.id, "birth_name_prefix", b"shared")
        .await
        .expect("search");
    assert_eq!(shared.len(), 450);
    let again = tx
        .insert_new_patients(a.id, Uuid::from_u128(9), &rows[449..])
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    tx.rollback().await.expect("rollback");
}

/// A connection for reads only (`Store::reads`): each statement sees the latest commit,
/// and nothing can be written or committed through it. A patient is read with its current
/// revision in one statement, only within its practice.
async fn reads_see_the_latest_commit_and_refuse_writes(store: &Store) {
    let (a, b) = (practice(30), practice(31));
    let now = Timestamp::from_unix_millis(4_000);
    let mut reads = store.reads().await.expect("reads");
    assert!(
        reads.practice_keys(a.id).await.expect("keys").is_empty(),
        "nothing yet"
    );
    assert!(matches!(
        reads.insert_practice(&a).await,
        Err(StoreError::ReadOnly)
    ));

    let patient = patient(0xC1, a.id, now);
    let mut tx = store.transaction().await.expect("tx");
    practices_with_a_patient(&mut tx, (&a, &b), &patient).await;
    for number in [1, 2] {
        tx.insert_patient_revision(a.id, &revision(patient.id, number, b"sealed"))
            .await
            .expect("revision");
    }
    tx.commit().await.expect("commit");

    assert_eq!(
        reads.practice_keys(a.id).await.expect("keys").len(),
        1,
        "the same connection sees the commit made meanwhile"
    );
    let (found, current) = reads
        .patient_with_revision(a.id, patient.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found, patient);
    assert_eq!(current.number, 2, "the current revision");
    assert!(
        reads
            .patient_with_revision(b.id, patient.id)
            .await
            .expect("read")
            .is_none(),
        "not from another practice"
    );
    assert!(matches!(reads.commit().await, Err(StoreError::ReadOnly)));
}

/// The copy of the current revision beside the patient (migration 0015), which searches
/// and record reads use: it is the newest revision, whatever order revisions are written
/// in, and the migration fills it in for patients written before it.
async fn the_identity_beside_the_patient_is_its_newest_revision(store: &Store) {
    let (a, b) = (practice(40), practice(41));
    let now = Timestamp::from_unix_millis(4_000);
    let patient = patient(0xD1, a.id, now);
    let mut tx = store.transaction().await.expect("tx");
    practices_with_a_patient(&mut tx, (&a, &b), &patient).await;
    tx.replace_patient_index(a.id, patient.id, &[("birth_name", b"d".to_vec())])
        .await
        .expect("index");
    let newest = revision(patient.id, 3, b"sealed-3");
    for written in [
        revision(patient.id, 1, b"sealed-1"),
        newest.clone(),
        revision(patient.id, 2, b"sealed-2"),
    ] {
        tx.insert_patient_revision(a.id, &written)
            .await
            .expect("revision");
    }
    tx.commit().await.expect("commit");
    let current = async || {
        let mut tx = store.transaction().await.expect("tx");
        let read = tx
            .patient_with_revision(a.id, patient.id)
            .await
            .expect("read")
            .expect("found");
        let found = tx
            .patients_by_index(a.id, "birth_name", b"d")
            .await
            .expect("search");
        tx.rollback().await.expect("end");
        assert_eq!(found, vec![read.clone()], "search and read agree");
        read
    };
    assert_eq!(current().await, (patient.clone(), newest.clone()));

    // A database from before migration 0015: the copy's columns do not exist yet.
    for statement in [
        "ALTER TABLE patients DROP COLUMN current_revision_id",
        "ALTER TABLE patients DROP COLUMN current_number",
        "ALTER TABLE patients DROP COLUMN current_identity",
        "ALTER TABLE patients DROP COLUMN current_created_at",
        "ALTER TABLE patients DROP COLUMN current_created_by",
        "DELETE FROM _sqlx_migrations WHERE version = 15",
    ] {
        store.danger_execute(statement).await.expect(statement);
    }
    store.migrate(None).await.expect("migrate to 0015");
    assert_eq!(
        current().await,
        (patient, newest),
        "filled in by the migration"
    );
}
