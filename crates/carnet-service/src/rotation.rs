//! Practice key rotation (ADR 0009): a new version of the practice key is made at once;
//! then a job moves every patient key to it (re-wrapping, and recomputing the patient's
//! blind indexes), batch by batch. The job's state is the patients' key versions in the
//! database: it resumes after a restart or a kill, on any node, and two nodes doing the
//! same batch do no harm (each move is conditional on the version it started from).
//! Records open throughout: a patient's key is read with the version that wraps it.

use carnet_audit::{Action, ChainId, Outcome, Targets};
use carnet_domain::PracticeId;
use carnet_store::StoreError;

use crate::records::{NewPatientKeys, PracticeKeys, open_patient_key, patient_key_context};
use crate::{Actor, Caller, ServiceError, Services};

/// Patients moved per transaction.
pub const REENCRYPTION_BATCH: i64 = 200;

impl Services {
    /// Makes a new version of the practice's key (the operator, at the console); returns
    /// the new version. Patients move to it with [`Services::reencrypt_practice`].
    pub async fn rotate_practice_key(
        &self,
        caller: &Caller,
        practice_id: PracticeId,
    ) -> Result<i64, ServiceError> {
        if caller.actor != Actor::Operator {
            return Err(ServiceError::Forbidden);
        }
        if self.store.practice(practice_id).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        let keys = self.practice_key_for(practice_id, caller).await?;
        let version = keys.current().0 + 1;
        let wrapped = self.new_wrapped_practice_key(practice_id, version)?;
        let now = self.now();
        let event = self.audit_event(
            caller,
            ChainId::Practice(practice_id),
            Action::KeyRotated,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.insert_practice_key(practice_id, version, &wrapped, now)
                    .await
            })
        })
        .await?;
        Ok(version)
    }

    /// Moves up to `batch` of the practice's patients to the current key version, in one
    /// transaction; returns how many were moved (0: nothing left).
    pub async fn reencrypt_practice(
        &self,
        caller: &Caller,
        practice_id: PracticeId,
        batch: i64,
    ) -> Result<usize, ServiceError> {
        let keys: PracticeKeys = self.practice_key_for(practice_id, caller).await?;
        let current = keys.current().0;
        let patients = self
            .patients_with_revisions(practice_id, current, batch)
            .await?;
        if patients.is_empty() {
            return Ok(0);
        }
        let target = NewPatientKeys::derive(&keys)?;
        let mut moves = Vec::with_capacity(patients.len());
        for (patient, revision) in &patients {
            let opened = open_patient_key(&keys, patient).and_then(|patient_key| {
                let identity = revision.as_ref().and_then(|revision| {
                    let plain = patient_key
                        .sealing_key(1)
                        .ok()?
                        .open(
                            &revision.sealed_identity,
                            crate::records::revision_context(&revision.id),
                        )
                        .ok()?;
                    serde_json::from_slice::<carnet_domain::PatientIdentity>(&plain).ok()
                });
                Some((patient_key, identity?))
            });
            let Some((patient_key, identity)) = opened else {
                // Audited, and left where it is: the job never loses a key it cannot open.
                let event = self.audit_event(
                    caller,
                    ChainId::Practice(practice_id),
                    Action::IntegrityFailure,
                    Targets {
                        patient: Some(patient.id),
                        ..Targets::default()
                    },
                    Outcome::Failure,
                );
                self.audit_alone(event).await?;
                continue;
            };
            let rewrapped = patient_key
                .wrap(
                    &target.wrapping,
                    patient_key_context(&patient.id),
                    self.random.as_ref(),
                )
                .map_err(|_| ServiceError::Randomness)?;
            let entries = target.index.entries(&identity);
            moves.push((patient.id, patient.key_version, rewrapped, entries));
        }
        let count = moves.len();
        let event = self.audit_event(
            caller,
            ChainId::Practice(practice_id),
            Action::KeyRotated,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                for (patient_id, from, wrapped, entries) in &moves {
                    if tx
                        .rewrap_patient(practice_id, *patient_id, *from, current, wrapped)
                        .await?
                    {
                        tx.replace_patient_index(practice_id, *patient_id, entries)
                            .await?;
                    }
                }
                Ok::<_, StoreError>(())
            })
        })
        .await?;
        Ok(count)
    }

    /// Records in the instance's audit trail that the recovery kit was produced.
    pub async fn record_recovery_kit(&self, caller: &Caller) -> Result<(), ServiceError> {
        let event =
            self.operator_event(caller, Action::Export, Targets::default(), Outcome::Success)?;
        self.audit_alone(event).await
    }

    /// The practices whose patients are not all on the current key version.
    pub async fn practices_to_reencrypt(&self) -> Result<Vec<PracticeId>, ServiceError> {
        self.read(|tx| Box::pin(async move { tx.practices_to_reencrypt().await }))
            .await
    }

    /// For a restore drill on a restored copy (the operator only): opens the sealed
    /// identity of up to `sample` patients of every practice with the keys, and returns
    /// (records opened, records that did not open). Nothing is returned in clear.
    pub async fn verify_sealed_sample(
        &self,
        caller: &Caller,
        sample: i64,
    ) -> Result<(usize, usize), ServiceError> {
        if caller.actor != Actor::Operator {
            return Err(ServiceError::Forbidden);
        }
        let mut opened = 0;
        let mut failed = 0;
        for practice in self.store.list_practices().await? {
            let practice_id = practice.id;
            let keys: PracticeKeys = self.practice_key_for(practice_id, caller).await?;
            let patients = self
                .patients_with_revisions(practice_id, i64::MAX, sample)
                .await?;
            for (patient, revision) in &patients {
                let identity = open_patient_key(&keys, patient).and_then(|patient_key| {
                    let revision = revision.as_ref()?;
                    patient_key
                        .sealing_key(1)
                        .ok()?
                        .open(
                            &revision.sealed_identity,
                            crate::records::revision_context(&revision.id),
                        )
                        .ok()
                });
                if identity.is_some() {
                    opened += 1;
                } else {
                    failed += 1;
                }
            }
        }
        Ok((opened, failed))
    }

    /// Up to `limit` patients of the practice whose key is below `version`, each with its
    /// current revision.
    async fn patients_with_revisions(
        &self,
        practice_id: PracticeId,
        version: i64,
        limit: i64,
    ) -> Result<
        Vec<(
            carnet_store::PatientRecord,
            Option<carnet_store::PatientRevisionRecord>,
        )>,
        ServiceError,
    > {
        self.read(move |tx| {
            Box::pin(async move {
                let patients = tx
                    .patients_below_key_version(practice_id, version, limit)
                    .await?;
                let mut with_revisions = Vec::with_capacity(patients.len());
                for patient in patients {
                    let revision = tx.current_revision(practice_id, patient.id).await?;
                    with_revisions.push((patient, revision));
                }
                Ok(with_revisions)
            })
        })
        .await
    }
}
