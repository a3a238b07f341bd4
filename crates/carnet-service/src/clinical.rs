//! Clinical content (ADR 0009): care episodes, acts with vital signs, notes, allergies,
//! treatments, history — each an entry whose revisions are sealed under the patient key.
//! An edit appends a revision; nothing is overwritten. Only a [`ClinicalScope`] reaches
//! them; every read and write is audited in the same transaction.

use carnet_audit::Action;
use carnet_crypto::{DataKey, SealContext};
use carnet_domain::{ClinicalContent, PracticeId, Timestamp};
use carnet_store::{ClinicalRecord, PatientRecord, StoreError};
use uuid::Uuid;

use crate::records::ClinicalScope;
use crate::{RecordsScope, ServiceError, Services};

/// One clinical entry at one revision.
#[derive(Clone, Debug, PartialEq)]
pub struct ClinicalView {
    pub entry_id: Uuid,
    pub kind: &'static str,
    pub revision: i64,
    pub content: ClinicalContent,
    /// When the entry was first written.
    pub created_at: Timestamp,
    /// When this revision was written, and by which member.
    pub revised_at: Timestamp,
    pub revised_by: Uuid,
}

/// Patient keys seal clinical content as version 1 (as identities).
const CONTENT_KEY_VERSION: u32 = 1;

fn content_context(revision_id: &Uuid) -> SealContext<'_> {
    SealContext {
        table: "clinical_revisions",
        column: "sealed_content",
        row: revision_id.as_bytes(),
    }
}

fn checked(content: &ClinicalContent) -> Result<(), ServiceError> {
    content
        .check()
        .map_err(|error| ServiceError::invalid("content", &error))
}

/// Midnight UTC of an act's day, as the patient's last care date.
fn care_day(content: &ClinicalContent) -> Option<Timestamp> {
    let day = content.act_date()?;
    let midnight = day.midnight().assume_utc().unix_timestamp();
    Some(Timestamp::from_unix_millis(midnight * 1000))
}

impl Services {
    /// The patient (of the scope's practice) and its opened key.
    pub(crate) async fn patient_with_key(
        &self,
        scope: &RecordsScope,
        patient_id: Uuid,
    ) -> Result<(PatientRecord, DataKey), ServiceError> {
        let practice_id = scope.practice_id();
        // One row, one statement: no transaction needed (saves its BEGIN and ROLLBACK).
        let patient = self
            .read_latest(move |tx| {
                Box::pin(async move { tx.patient(practice_id, patient_id).await })
            })
            .await?
            .ok_or(ServiceError::NotFound)?;
        let keys = scope.keys();
        let key = self.patient_key(scope, keys, &patient).await?;
        Ok((patient, key))
    }

    fn seal_content(
        &self,
        patient_key: &DataKey,
        revision_id: &Uuid,
        content: &ClinicalContent,
    ) -> Result<Vec<u8>, ServiceError> {
        let plain = serde_json::to_vec(content).map_err(|_| ServiceError::Integrity)?;
        patient_key
            .sealing_key(CONTENT_KEY_VERSION)
            .and_then(|key| key.seal(&plain, content_context(revision_id), self.random.as_ref()))
            .map_err(|_| ServiceError::Randomness)
    }

    async fn open_content(
        &self,
        scope: &RecordsScope,
        patient_key: &DataKey,
        record: &ClinicalRecord,
    ) -> Result<ClinicalView, ServiceError> {
        let opened = patient_key
            .sealing_key(CONTENT_KEY_VERSION)
            .ok()
            .and_then(|key| {
                key.open(&record.sealed_content, content_context(&record.revision_id))
                    .ok()
            })
            .and_then(|plain| serde_json::from_slice::<ClinicalContent>(&plain).ok())
            .filter(|content| content.kind() == record.kind);
        match opened {
            Some(content) => Ok(ClinicalView {
                entry_id: record.entry_id,
                kind: content.kind(),
                revision: record.number,
                content,
                created_at: record.entry_created_at,
                revised_at: record.created_at,
                revised_by: record.created_by,
            }),
            None => Err(self.integrity_failure(scope, Some(record.patient_id)).await),
        }
    }

    /// Writes a new entry in a patient's record (a care act also moves the patient's
    /// last care date forward).
    pub async fn add_clinical_entry(
        &self,
        scope: &ClinicalScope,
        patient_id: Uuid,
        content: &ClinicalContent,
    ) -> Result<ClinicalView, ServiceError> {
        checked(content)?;
        let records = scope.records();
        let (_, patient_key) = self.patient_with_key(records, patient_id).await?;
        let entry_id = self.new_uuid()?;
        let revision_id = self.new_uuid()?;
        let sealed_content = self.seal_content(&patient_key, &revision_id, content)?;
        let now = self.now();
        let record = ClinicalRecord {
            entry_id,
            patient_id,
            kind: content.kind().to_owned(),
            entry_created_at: now,
            revision_id,
            number: 1,
            sealed_content,
            created_at: now,
            created_by: *records.member_id().as_uuid(),
        };
        let view = ClinicalView {
            entry_id,
            kind: content.kind(),
            revision: 1,
            content: content.clone(),
            created_at: now,
            revised_at: now,
            revised_by: record.created_by,
        };
        self.write_clinical(records, record, care_day(content), true)
            .await?;
        Ok(view)
    }

    async fn write_clinical(
        &self,
        scope: &RecordsScope,
        record: ClinicalRecord,
        care_day: Option<Timestamp>,
        new_entry: bool,
    ) -> Result<(), ServiceError> {
        let practice_id: PracticeId = scope.practice_id();
        let event = self.records_event(scope, Action::RecordWritten, Some(record.patient_id));
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                if new_entry {
                    tx.insert_clinical_entry(practice_id, &record).await?;
                } else {
                    tx.insert_clinical_revision(practice_id, &record).await?;
                }
                if let Some(day) = care_day {
                    tx.advance_last_care(practice_id, record.patient_id, day)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The patient's record as a timeline: the current revision of every entry, the most
    /// recent first (acts by when they were performed, the rest by when written).
    pub async fn clinical_timeline(
        &self,
        scope: &ClinicalScope,
        patient_id: Uuid,
    ) -> Result<Vec<ClinicalView>, ServiceError> {
        let records = scope.records();
        let (_, patient_key) = self.patient_with_key(records, patient_id).await?;
        let practice_id = records.practice_id();
        let event = self.records_event(records, Action::RecordRead, Some(patient_id));
        let rows = self
            .audited(vec![event], move |tx| {
                Box::pin(async move { tx.clinical_entries(practice_id, patient_id).await })
            })
            .await?;
        let mut timeline = Vec::with_capacity(rows.len());
        for row in &rows {
            timeline.push(self.open_content(records, &patient_key, row).await?);
        }
        let key = |view: &ClinicalView| {
            view.content
                .sort_key()
                .unwrap_or_else(|| view.created_at.to_rfc3339())
        };
        timeline.sort_by_key(|view| std::cmp::Reverse(key(view)));
        Ok(timeline)
    }

    /// Every revision of one entry, newest first.
    pub async fn clinical_history(
        &self,
        scope: &ClinicalScope,
        patient_id: Uuid,
        entry_id: Uuid,
    ) -> Result<Vec<ClinicalView>, ServiceError> {
        let records = scope.records();
        let (_, patient_key) = self.patient_with_key(records, patient_id).await?;
        let practice_id = records.practice_id();
        let event = self.records_event(records, Action::RecordRead, Some(patient_id));
        let rows = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    let rows = tx
                        .clinical_revisions(practice_id, patient_id, entry_id)
                        .await?;
                    if rows.is_empty() {
                        return Err(StoreError::MissingReference);
                    }
                    Ok(rows)
                })
            })
            .await?;
        let mut history = Vec::with_capacity(rows.len());
        for row in &rows {
            history.push(self.open_content(records, &patient_key, row).await?);
        }
        Ok(history)
    }

    /// Changes an entry: a new revision of the same kind, made from the current one
    /// (`expected_revision`, or 409); the previous revisions are kept.
    pub async fn revise_clinical_entry(
        &self,
        scope: &ClinicalScope,
        patient_id: Uuid,
        entry_id: Uuid,
        expected_revision: i64,
        content: &ClinicalContent,
    ) -> Result<ClinicalView, ServiceError> {
        checked(content)?;
        let history = self.clinical_history(scope, patient_id, entry_id).await?;
        let current = history.first().ok_or(ServiceError::NotFound)?;
        if current.kind != content.kind() {
            return Err(ServiceError::Invalid {
                field: "kind",
                message: "Une saisie garde sa nature : créez-en une nouvelle.".into(),
            });
        }
        if current.revision != expected_revision {
            return Err(ServiceError::Conflict);
        }
        let records = scope.records();
        let (_, patient_key) = self.patient_with_key(records, patient_id).await?;
        let revision_id = self.new_uuid()?;
        let sealed_content = self.seal_content(&patient_key, &revision_id, content)?;
        let now = self.now();
        let record = ClinicalRecord {
            entry_id,
            patient_id,
            kind: content.kind().to_owned(),
            entry_created_at: current.created_at,
            revision_id,
            number: expected_revision + 1,
            sealed_content,
            created_at: now,
            created_by: *records.member_id().as_uuid(),
        };
        let view = ClinicalView {
            entry_id,
            kind: content.kind(),
            revision: record.number,
            content: content.clone(),
            created_at: current.created_at,
            revised_at: now,
            revised_by: record.created_by,
        };
        self.write_clinical(records, record, care_day(content), false)
            .await?;
        Ok(view)
    }
}
