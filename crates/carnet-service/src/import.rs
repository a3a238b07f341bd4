//! Import of patients from another software (ADR 0009): a CSV export or a FHIR R4 Bundle.
//! Every row is checked first; one bad row and nothing is imported (the answer names
//! every bad row). Then all patients are written in one transaction, each audited.
//!
//! Who imports: a member of the practice with the records capability (API), or the
//! operator at the console (`carnet import`), who holds an [`ImportScope`]: it writes new
//! patients and reads nothing back.

use carnet_audit::{Action, ChainId, Outcome, Targets};
use carnet_domain::{ImportProblem, PatientIdentity, PracticeId};
use uuid::Uuid;

use crate::records::{NewPatient, NewPatientKeys};
use crate::{Actor, Caller, RecordsScope, ServiceError, Services};

/// The formats an import reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Fhir,
}

/// Write-only proof that the caller may import patients into one practice.
#[derive(Debug)]
pub struct ImportScope {
    practice_id: PracticeId,
    caller: Caller,
    /// The member who imports (the nil id for the operator).
    created_by: Uuid,
}

/// Problems listed in a refusal, at most.
const PROBLEMS_SHOWN: usize = 20;

fn refusal(problems: &[ImportProblem]) -> ServiceError {
    let mut listed: Vec<String> = problems
        .iter()
        .take(PROBLEMS_SHOWN)
        .map(|problem| format!("{} : {}", problem.location, problem.reason))
        .collect();
    if problems.len() > PROBLEMS_SHOWN {
        listed.push(format!("et {} autres", problems.len() - PROBLEMS_SHOWN));
    }
    ServiceError::Invalid {
        field: "file",
        message: format!(
            "Import refusé, rien n'a été importé. {} ligne(s) à corriger — {}",
            problems.len(),
            listed.join(" ; ")
        ),
    }
}

impl Services {
    /// The import capability from a member's records capability.
    pub fn import_scope(scope: &RecordsScope) -> ImportScope {
        ImportScope {
            practice_id: scope.practice_id(),
            caller: scope.caller().clone(),
            created_by: *scope.member_id().as_uuid(),
        }
    }

    /// The import capability of the operator at the console, for an existing practice.
    pub async fn authorize_operator_import(
        &self,
        caller: &Caller,
        practice_id: PracticeId,
    ) -> Result<ImportScope, ServiceError> {
        if caller.actor != Actor::Operator {
            return Err(ServiceError::Forbidden);
        }
        if self.store.practice(practice_id).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        Ok(ImportScope {
            practice_id,
            caller: caller.clone(),
            created_by: Uuid::nil(),
        })
    }

    /// Imports every patient of `text`, or none; returns how many were imported.
    pub async fn import_patients(
        &self,
        scope: &ImportScope,
        format: ImportFormat,
        text: &str,
    ) -> Result<usize, ServiceError> {
        let today = self.today();
        let identities: Vec<PatientIdentity> = match format {
            ImportFormat::Csv => carnet_domain::patients_from_csv(text, today),
            ImportFormat::Fhir => carnet_domain::patients_from_fhir(text, today),
        }
        .map_err(|problems| refusal(&problems))?;
        let practice_id = scope.practice_id;
        let keys = self.practice_key_for(practice_id, &scope.caller).await?;
        let new_keys = NewPatientKeys::derive(&keys)?;
        let now = self.now();
        let mut patients = Vec::with_capacity(identities.len());
        let mut events = Vec::with_capacity(identities.len());
        for identity in &identities {
            let new = self.new_patient(practice_id, &new_keys, identity, scope.created_by, now)?;
            events.push(self.audit_event(
                &scope.caller,
                ChainId::Practice(practice_id),
                Action::RecordWritten,
                Targets {
                    patient: Some(new.patient.id),
                    ..Targets::default()
                },
                Outcome::Success,
            ));
            patients.push(new);
        }
        let created_by = scope.created_by;
        let count = patients.len();
        self.audited(events, move |tx| {
            Box::pin(
                async move { NewPatient::insert_all(&patients, tx, practice_id, created_by).await },
            )
        })
        .await?;
        Ok(count)
    }
}
