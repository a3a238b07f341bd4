//! What the store's benchmarks share: a practice, a patient's first rows (sealed or in
//! clear: the store keeps bytes either way), the place a sealed value is bound to.

use carnet_crypto::SealContext;
use carnet_domain::{Address, Practice, PracticeId, PracticeName, Profession, Timestamp};
use carnet_store::{PatientRecord, PatientRevisionRecord, Tx};
use uuid::Uuid;

/// When every benchmark row was written, and by whom.
pub const NOW: Timestamp = Timestamp::from_unix_millis(2);
pub const AUTHOR: Uuid = Uuid::from_u128(9);

/// A practice whose id is made from `seed`.
pub fn practice(seed: u8) -> Practice {
    Practice {
        id: PracticeId::new_v7(1, &[seed; 10]),
        name: PracticeName::parse("Cabinet").expect("name"),
        address: Address::parse("1 rue Haute, 13001 Marseille").expect("address"),
        profession: Profession::Nurse,
        created_at: Timestamp::from_unix_millis(1),
    }
}

/// The place a benchmark's sealed value is bound to: its table and row.
pub fn place<'a>(table: &'a str, row: &'a [u8]) -> SealContext<'a> {
    SealContext {
        table,
        column: "sealed",
        row,
    }
}

/// A patient and its first identity revision, as given: a wrapped key and a sealed
/// identity, or nothing and the identity in clear.
pub async fn insert_patient(
    tx: &mut Tx,
    practice_id: PracticeId,
    (patient_id, revision_id): (Uuid, Uuid),
    wrapped_key: Vec<u8>,
    identity: Vec<u8>,
) {
    tx.insert_patient(
        &PatientRecord {
            id: patient_id,
            practice_id,
            key_version: 1,
            wrapped_key,
            created_at: NOW,
            last_care_at: None,
        },
        AUTHOR,
    )
    .await
    .expect("patient");
    tx.insert_patient_revision(
        practice_id,
        &PatientRevisionRecord {
            id: revision_id,
            patient_id,
            number: 1,
            sealed_identity: identity,
            created_at: NOW,
            created_by: AUTHOR,
        },
    )
    .await
    .expect("revision");
}
