//! Patients, their sealed identity revisions, their blind indexes, and the practice keys
//! that protect them (ADR 0009). This layer stores bytes: it never sees a clear value.
//! Every query filters by the practice id its caller was authorized for.

use carnet_domain::{PracticeId, Timestamp};
use uuid::Uuid;

use crate::tx::{RowScope, on_tx};
use crate::{StoreError, Tx};

/// A patient row: its wrapped key and bookkeeping, no identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientRecord {
    pub id: Uuid,
    pub practice_id: PracticeId,
    pub key_version: i64,
    pub wrapped_key: Vec<u8>,
    pub created_at: Timestamp,
    pub last_care_at: Option<Timestamp>,
}

/// One sealed revision of a patient's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientRevisionRecord {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub number: i64,
    pub sealed_identity: Vec<u8>,
    pub created_at: Timestamp,
    pub created_by: Uuid,
}

/// One revision row of a sealed record (identity or clinical content).
struct SealedRevision<'a> {
    id: Uuid,
    /// The patient or the clinical entry.
    parent: Uuid,
    practice_id: PracticeId,
    number: i64,
    sealed: &'a [u8],
    created_at: Timestamp,
    created_by: Uuid,
}

/// A blind index entry: (field, digest).
pub type IndexEntry = (&'static str, Vec<u8>);

type PatientRow = (Uuid, Uuid, i64, Vec<u8>, i64, Option<i64>);

fn patient_of(row: PatientRow) -> PatientRecord {
    let (id, practice_id, key_version, wrapped_key, created_at, last_care_at) = row;
    PatientRecord {
        id,
        practice_id: PracticeId::from_uuid(practice_id),
        key_version,
        wrapped_key,
        created_at: Timestamp::from_unix_millis(created_at),
        last_care_at: last_care_at.map(Timestamp::from_unix_millis),
    }
}

type RevisionRow = (Uuid, Uuid, i64, Vec<u8>, i64, Uuid);

/// A patient found by index with its current revision (patient columns, then revision).
type CandidateRow = (
    Uuid,
    i64,
    Vec<u8>,
    i64,
    Option<i64>,
    Uuid,
    i64,
    Vec<u8>,
    i64,
    Uuid,
);

/// The columns of a [`CandidateRow`]: patient `p` with the copy of its current revision
/// (migration 0015), which every revision written through this store keeps.
const CANDIDATES: &str = "SELECT p.id, p.key_version, p.wrapped_key, p.created_at, \
     p.last_care_at, p.current_revision_id, p.current_number, p.current_identity, \
     p.current_created_at, p.current_created_by";

/// Leaves out a patient whose first revision is not written yet (inside its creation's
/// transaction only).
const HAS_REVISION: &str = "p.current_number IS NOT NULL";

fn candidate_of(
    practice_id: PracticeId,
    row: CandidateRow,
) -> (PatientRecord, PatientRevisionRecord) {
    let (id, key_version, wrapped_key, created_at, last_care_at) =
        (row.0, row.1, row.2, row.3, row.4);
    (
        patient_of((
            id,
            *practice_id.as_uuid(),
            key_version,
            wrapped_key,
            created_at,
            last_care_at,
        )),
        revision_of((row.5, id, row.6, row.7, row.8, row.9)),
    )
}

fn revision_of(row: RevisionRow) -> PatientRevisionRecord {
    let (id, patient_id, number, sealed_identity, created_at, created_by) = row;
    PatientRevisionRecord {
        id,
        patient_id,
        number,
        sealed_identity,
        created_at: Timestamp::from_unix_millis(created_at),
        created_by,
    }
}

impl Tx {
    // ---- practice keys -------------------------------------------------------------------

    /// The practice's wrapped keys, newest version first.
    pub async fn practice_keys(
        &mut self,
        practice_id: PracticeId,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        on_tx!(self, |conn| {
            Ok(sqlx::query_as(
                "SELECT version, wrapped_key FROM practice_keys WHERE practice_id = $1 \
                 ORDER BY version DESC",
            )
            .bind(practice_id.as_uuid())
            .fetch_all(&mut *conn)
            .await?)
        })
    }

    /// Stores a practice key version unless it exists (two requests may race to make
    /// the first one: the first wins, both read it back).
    pub async fn insert_practice_key(
        &mut self,
        practice_id: PracticeId,
        version: i64,
        wrapped_key: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO practice_keys (practice_id, version, wrapped_key, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (practice_id, version) DO NOTHING",
            )
            .bind(practice_id.as_uuid())
            .bind(version)
            .bind(wrapped_key)
            .bind(now.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    // ---- patients ------------------------------------------------------------------------

    pub async fn insert_patient(
        &mut self,
        patient: &PatientRecord,
        created_by: Uuid,
    ) -> Result<(), StoreError> {
        self.scope_rows(RowScope::Practice(patient.practice_id))
            .await?;
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO patients (id, practice_id, key_version, wrapped_key, created_at, \
                 created_by) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(patient.id)
            .bind(patient.practice_id.as_uuid())
            .bind(patient.key_version)
            .bind(&patient.wrapped_key)
            .bind(patient.created_at.unix_millis())
            .bind(created_by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The patient, if it belongs to `practice_id`.
    pub async fn patient(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
    ) -> Result<Option<PatientRecord>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        on_tx!(self, |conn| {
            let row: Option<PatientRow> = sqlx::query_as(
                "SELECT id, practice_id, key_version, wrapped_key, created_at, last_care_at \
                 FROM patients WHERE practice_id = $1 AND id = $2",
            )
            .bind(practice_id.as_uuid())
            .bind(patient_id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(patient_of))
        })
    }

    /// The patient, if it belongs to `practice_id`, with its current revision (one
    /// statement: this runs on every record read).
    pub async fn patient_with_revision(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
    ) -> Result<Option<(PatientRecord, PatientRevisionRecord)>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        let sql = format!(
            "{CANDIDATES} FROM patients p WHERE p.practice_id = $1 AND p.id = $2 AND {HAS_REVISION}"
        );
        on_tx!(self, |conn| {
            let row: Option<CandidateRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(practice_id.as_uuid())
                .bind(patient_id)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.map(|row| candidate_of(practice_id, row)))
        })
    }

    /// The practice's patients whose indexes hold `(field, digest)`, each with its
    /// current revision.
    pub async fn patients_by_index(
        &mut self,
        practice_id: PracticeId,
        field: &str,
        digest: &[u8],
    ) -> Result<Vec<(PatientRecord, PatientRevisionRecord)>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        let sql = format!(
            "{CANDIDATES} FROM patient_index i \
             JOIN patients p ON p.id = i.patient_id AND p.practice_id = i.practice_id \
             WHERE i.practice_id = $1 AND i.field = $2 AND i.digest = $3 AND {HAS_REVISION} \
             ORDER BY p.id"
        );
        on_tx!(self, |conn| {
            let rows: Vec<CandidateRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(practice_id.as_uuid())
                .bind(field)
                .bind(digest)
                .fetch_all(&mut *conn)
                .await?;
            Ok(rows
                .into_iter()
                .map(|row| candidate_of(practice_id, row))
                .collect())
        })
    }

    pub async fn insert_patient_revision(
        &mut self,
        practice_id: PracticeId,
        revision: &PatientRevisionRecord,
    ) -> Result<(), StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.insert_sealed_revision(
            "INSERT INTO patient_revisions (id, patient_id, practice_id, number, \
             sealed_identity, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            SealedRevision {
                id: revision.id,
                parent: revision.patient_id,
                practice_id,
                number: revision.number,
                sealed: &revision.sealed_identity,
                created_at: revision.created_at,
                created_by: revision.created_by,
            },
        )
        .await?;
        // The copy beside the patient follows the newest revision (numbers only grow).
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE patients SET current_revision_id = $1, current_number = $2, \
                 current_identity = $3, current_created_at = $4, current_created_by = $5 \
                 WHERE id = $6 AND practice_id = $7 \
                 AND (current_number IS NULL OR current_number < $2)",
            )
            .bind(revision.id)
            .bind(revision.number)
            .bind(&revision.sealed_identity)
            .bind(revision.created_at.unix_millis())
            .bind(revision.created_by)
            .bind(revision.patient_id)
            .bind(practice_id.as_uuid())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// Inserts one sealed revision with `sql` (the revision tables share their shape).
    async fn insert_sealed_revision(
        &mut self,
        sql: &'static str,
        revision: SealedRevision<'_>,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(sql)
                .bind(revision.id)
                .bind(revision.parent)
                .bind(revision.practice_id.as_uuid())
                .bind(revision.number)
                .bind(revision.sealed)
                .bind(revision.created_at.unix_millis())
                .bind(revision.created_by)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn current_revision(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
    ) -> Result<Option<PatientRevisionRecord>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        on_tx!(self, |conn| {
            let row: Option<RevisionRow> = sqlx::query_as(
                "SELECT id, patient_id, number, sealed_identity, created_at, created_by \
                 FROM patient_revisions WHERE practice_id = $1 AND patient_id = $2 \
                 ORDER BY number DESC LIMIT 1",
            )
            .bind(practice_id.as_uuid())
            .bind(patient_id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(revision_of))
        })
    }

    /// Every revision of the patient, newest first.
    pub async fn patient_revisions(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
    ) -> Result<Vec<PatientRevisionRecord>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        on_tx!(self, |conn| {
            let rows: Vec<RevisionRow> = sqlx::query_as(
                "SELECT id, patient_id, number, sealed_identity, created_at, created_by \
                 FROM patient_revisions WHERE practice_id = $1 AND patient_id = $2 \
                 ORDER BY number DESC",
            )
            .bind(practice_id.as_uuid())
            .bind(patient_id)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.into_iter().map(revision_of).collect())
        })
    }

    /// Replaces the patient's blind indexes (they follow the current revision).
    /// Inserts new patients, each with its first revision and its index entries, in a
    /// few multi-row statements per table (an import: one statement per row costs more
    /// than the row). New patients have no index entries to replace.
    pub async fn insert_new_patients(
        &mut self,
        practice_id: PracticeId,
        created_by: Uuid,
        patients: &[(&PatientRecord, &PatientRevisionRecord, &[IndexEntry])],
    ) -> Result<(), StoreError> {
        /// Rows per statement (SQLite allows 32,766 parameters, PostgreSQL 65,535).
        const ROWS: usize = 200;
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.before_write().await?;
        let kind = self.kind();
        for chunk in patients.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO patients (id, practice_id, key_version, wrapped_key, created_at, \
                 created_by, current_revision_id, current_number, current_identity, \
                 current_created_at, current_created_by) VALUES {}",
                crate::tx::values_rows(kind, chunk.len(), 11)
            );
            on_tx!(self, |conn| {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (patient, revision, _) in chunk {
                    query = query
                        .bind(patient.id)
                        .bind(patient.practice_id.as_uuid())
                        .bind(patient.key_version)
                        .bind(&patient.wrapped_key)
                        .bind(patient.created_at.unix_millis())
                        .bind(created_by)
                        .bind(revision.id)
                        .bind(revision.number)
                        .bind(&revision.sealed_identity)
                        .bind(revision.created_at.unix_millis())
                        .bind(revision.created_by);
                }
                query
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::from_write)?;
            });
            let sql = format!(
                "INSERT INTO patient_revisions (id, patient_id, practice_id, number, \
                 sealed_identity, created_at, created_by) VALUES {}",
                crate::tx::values_rows(kind, chunk.len(), 7)
            );
            on_tx!(self, |conn| {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (_, revision, _) in chunk {
                    query = query
                        .bind(revision.id)
                        .bind(revision.patient_id)
                        .bind(practice_id.as_uuid())
                        .bind(revision.number)
                        .bind(&revision.sealed_identity)
                        .bind(revision.created_at.unix_millis())
                        .bind(revision.created_by);
                }
                query
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::from_write)?;
            });
        }
        let mut entries: Vec<(Uuid, &IndexEntry)> = patients
            .iter()
            .flat_map(|(patient, _, entries)| entries.iter().map(|entry| (patient.id, entry)))
            .collect();
        // In the index's own order (field, digest, patient): digests are keyed hashes, so in
        // row order each entry lands on a random page of the index, and an import touched
        // (and, past the page cache, read back) a page per entry. Sorted, consecutive
        // entries share pages.
        entries.sort_unstable_by(
            |(a_patient, (a_field, a_digest)), (b_patient, (b_field, b_digest))| {
                (a_field, a_digest, a_patient).cmp(&(b_field, b_digest, b_patient))
            },
        );
        for chunk in entries.chunks(ROWS * 4) {
            let sql = format!(
                "INSERT INTO patient_index (practice_id, field, digest, patient_id) VALUES {} \
                 ON CONFLICT DO NOTHING",
                crate::tx::values_rows(kind, chunk.len(), 4)
            );
            on_tx!(self, |conn| {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (patient_id, (field, digest)) in chunk {
                    query = query
                        .bind(practice_id.as_uuid())
                        .bind(*field)
                        .bind(digest)
                        .bind(*patient_id);
                }
                query.execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    pub async fn replace_patient_index(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
        entries: &[IndexEntry],
    ) -> Result<(), StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM patient_index WHERE practice_id = $1 AND patient_id = $2")
                .bind(practice_id.as_uuid())
                .bind(patient_id)
                .execute(&mut *conn)
                .await?;
            for (field, digest) in entries {
                sqlx::query(
                    "INSERT INTO patient_index (practice_id, field, digest, patient_id) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(practice_id.as_uuid())
                .bind(*field)
                .bind(digest)
                .bind(patient_id)
                .execute(&mut *conn)
                .await?;
            }
        });
        Ok(())
    }
}

/// A clinical entry (its kind in clear) with one sealed revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClinicalRecord {
    pub entry_id: Uuid,
    pub patient_id: Uuid,
    pub kind: String,
    pub entry_created_at: Timestamp,
    pub revision_id: Uuid,
    pub number: i64,
    pub sealed_content: Vec<u8>,
    pub created_at: Timestamp,
    pub created_by: Uuid,
}

type ClinicalRow = (Uuid, Uuid, String, i64, Uuid, i64, Vec<u8>, i64, Uuid);

fn clinical_of(row: ClinicalRow) -> ClinicalRecord {
    let (entry_id, patient_id, kind, entry_created_at, revision_id, number, sealed, at, by) = row;
    ClinicalRecord {
        entry_id,
        patient_id,
        kind,
        entry_created_at: Timestamp::from_unix_millis(entry_created_at),
        revision_id,
        number,
        sealed_content: sealed,
        created_at: Timestamp::from_unix_millis(at),
        created_by: by,
    }
}

const CLINICAL_COLUMNS: &str = "e.id, e.patient_id, e.kind, e.created_at, r.id, r.number, \
     r.sealed_content, r.created_at, r.created_by \
     FROM clinical_entries e JOIN clinical_revisions r ON r.entry_id = e.id";

impl Tx {
    /// Records a new entry and its first revision.
    pub async fn insert_clinical_entry(
        &mut self,
        practice_id: PracticeId,
        record: &ClinicalRecord,
    ) -> Result<(), StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO clinical_entries (id, practice_id, patient_id, kind, created_at, \
                 created_by) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(record.entry_id)
            .bind(practice_id.as_uuid())
            .bind(record.patient_id)
            .bind(&record.kind)
            .bind(record.entry_created_at.unix_millis())
            .bind(record.created_by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        self.insert_clinical_revision(practice_id, record).await
    }

    /// Appends a revision to an entry (a conflict if its number is taken).
    pub async fn insert_clinical_revision(
        &mut self,
        practice_id: PracticeId,
        record: &ClinicalRecord,
    ) -> Result<(), StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.insert_sealed_revision(
            "INSERT INTO clinical_revisions (id, entry_id, practice_id, number, \
             sealed_content, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            SealedRevision {
                id: record.revision_id,
                parent: record.entry_id,
                practice_id,
                number: record.number,
                sealed: &record.sealed_content,
                created_at: record.created_at,
                created_by: record.created_by,
            },
        )
        .await
    }

    /// The current revision of each of the patient's entries, oldest entry first.
    pub async fn clinical_entries(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
    ) -> Result<Vec<ClinicalRecord>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        let sql = format!(
            "SELECT {CLINICAL_COLUMNS} WHERE e.practice_id = $1 AND e.patient_id = $2 \
             AND r.number = (SELECT MAX(number) FROM clinical_revisions WHERE entry_id = e.id) \
             ORDER BY e.created_at, e.id"
        );
        on_tx!(self, |conn| {
            let rows: Vec<ClinicalRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(practice_id.as_uuid())
                .bind(patient_id)
                .fetch_all(&mut *conn)
                .await?;
            Ok(rows.into_iter().map(clinical_of).collect())
        })
    }

    /// Every revision of one entry of the patient, newest first.
    pub async fn clinical_revisions(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
        entry_id: Uuid,
    ) -> Result<Vec<ClinicalRecord>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        let sql = format!(
            "SELECT {CLINICAL_COLUMNS} WHERE e.practice_id = $1 AND e.patient_id = $2 \
             AND e.id = $3 ORDER BY r.number DESC"
        );
        on_tx!(self, |conn| {
            let rows: Vec<ClinicalRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(practice_id.as_uuid())
                .bind(patient_id)
                .bind(entry_id)
                .fetch_all(&mut *conn)
                .await?;
            Ok(rows.into_iter().map(clinical_of).collect())
        })
    }

    /// Moves the patient's last care date forward to `at` (never back).
    pub async fn advance_last_care(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE patients SET last_care_at = CASE WHEN last_care_at IS NULL \
                 OR last_care_at < $3 THEN $3 ELSE last_care_at END \
                 WHERE practice_id = $1 AND id = $2",
            )
            .bind(practice_id.as_uuid())
            .bind(patient_id)
            .bind(at.unix_millis())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
}

impl Tx {
    /// Up to `limit` of the practice's patients still wrapped by a key version older than
    /// `version` (the re-encryption job's work list).
    pub async fn patients_below_key_version(
        &mut self,
        practice_id: PracticeId,
        version: i64,
        limit: i64,
    ) -> Result<Vec<PatientRecord>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        on_tx!(self, |conn| {
            let rows: Vec<PatientRow> = sqlx::query_as(
                "SELECT id, practice_id, key_version, wrapped_key, created_at, last_care_at \
                 FROM patients WHERE practice_id = $1 AND key_version < $2 \
                 ORDER BY id LIMIT $3",
            )
            .bind(practice_id.as_uuid())
            .bind(version)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.into_iter().map(patient_of).collect())
        })
    }

    /// Replaces a patient's wrapped key, if it is still wrapped by `from_version` (another
    /// node may have done it already); false otherwise.
    pub async fn rewrap_patient(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
        from_version: i64,
        to_version: i64,
        wrapped_key: &[u8],
    ) -> Result<bool, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.before_write().await?;
        on_tx!(self, |conn| {
            let done = sqlx::query(
                "UPDATE patients SET wrapped_key = $5, key_version = $4 \
                 WHERE practice_id = $1 AND id = $2 AND key_version = $3",
            )
            .bind(practice_id.as_uuid())
            .bind(patient_id)
            .bind(from_version)
            .bind(to_version)
            .bind(wrapped_key)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The practices with patients still wrapped by an older key version.
    pub async fn practices_to_reencrypt(&mut self) -> Result<Vec<PracticeId>, StoreError> {
        self.scope_rows(RowScope::Instance).await?;
        on_tx!(self, |conn| {
            let rows: Vec<(Uuid,)> = sqlx::query_as(
                "SELECT DISTINCT p.practice_id FROM patients p WHERE p.key_version < \
                 (SELECT MAX(k.version) FROM practice_keys k WHERE k.practice_id = p.practice_id)",
            )
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id,)| PracticeId::from_uuid(id))
                .collect())
        })
    }
}
