//! Care records (ADR 0009), first part: the capability that opens them, the key
//! hierarchy at work, and patients (identity, search, revisions).
//!
//! Keys: a data key per practice (versioned), wrapped by a key derived from the instance
//! key; a data key per patient, wrapped by its practice's key; blind-index keys derived
//! from the practice key, one per field. A patient's identity is sealed under the patient
//! key, one sealed document per revision; an edit appends a revision. Every read and
//! write appends its audit event in the same transaction; a value that does not open is
//! audited as an integrity failure and nothing is served.

use carnet_audit::{Action, Outcome, Targets};
use carnet_crypto::{BlindIndexKey, DataKey, SealContext, SealingKey};
use carnet_domain::{
    BirthDate, MemberId, PatientIdentity, PatientInput, PracticeId, ProfessionalIdStatus, Role,
    Timestamp, name_prefix, normalize_name,
};
use carnet_store::{IndexEntry, PatientRecord, PatientRevisionRecord, StoreError};
use uuid::Uuid;

use crate::auth::actor_of;
use crate::{ActiveSession, Actor, Caller, DeviceStanding, ServiceError, Services};

/// What a capability over a practice's records allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordsLevel {
    /// Identity and contact: any member of the practice (staff included).
    Administrative,
    /// Clinical content and documents: holders and professionals with a validated
    /// RPPS/ADELI number.
    Clinical,
}

/// Proof that the caller may open one practice's records — patients' identity and
/// contact: a member of that practice, signed in on an approved device, in a session
/// whose PIN is unlocked. Only [`Services::authorize_records`] creates it; the records
/// use cases take it and read the practice id from it.
#[derive(Debug)]
pub struct RecordsScope {
    practice_id: PracticeId,
    member_id: MemberId,
    caller: Caller,
    /// The practice's keys, opened when the scope was granted (a key made by a
    /// rotation after that is used from the next request on; older versions stay
    /// readable, so nothing is lost).
    keys: PracticeKeys,
}

impl RecordsScope {
    pub fn practice_id(&self) -> PracticeId {
        self.practice_id
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The member acting.
    pub fn member_id(&self) -> MemberId {
        self.member_id
    }

    /// The practice's keys.
    pub(crate) fn keys(&self) -> &PracticeKeys {
        &self.keys
    }
}

/// The outcome of the records checks.
enum Verdict {
    Allowed {
        member_id: MemberId,
        wrapped: Vec<(i64, Vec<u8>)>,
    },
    Refused(ServiceError),
}

/// Proof that the caller may also open clinical content and documents: all of
/// [`RecordsScope`], and a holder or professional whose RPPS/ADELI number is validated.
/// Only [`Services::authorize_clinical`] creates it.
#[derive(Debug)]
pub struct ClinicalScope(RecordsScope);

impl ClinicalScope {
    /// The identity-level scope this one includes.
    pub fn records(&self) -> &RecordsScope {
        &self.0
    }
}

/// Every version of a practice's key, opened, newest first (a patient's key stays wrapped
/// by the version it was wrapped with until the re-encryption job moves it).
pub(crate) struct PracticeKeys {
    current: (i64, DataKey),
    older: Vec<(i64, DataKey)>,
}

impl std::fmt::Debug for PracticeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PracticeKeys")
            .field("current", &self.current.0)
            .field("older", &self.older.len())
            .finish_non_exhaustive()
    }
}

impl PracticeKeys {
    /// The current version and its key (new patients are wrapped with it).
    pub(crate) fn current(&self) -> (i64, &DataKey) {
        (self.current.0, &self.current.1)
    }

    pub(crate) fn of(&self, version: i64) -> Option<&DataKey> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|(known, _)| *known == version)
            .map(|(_, key)| key)
    }

    fn all(&self) -> impl Iterator<Item = &DataKey> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .map(|(_, key)| key)
    }
}

/// The rows of a new patient, ready to be stored.
pub(crate) struct NewPatient {
    pub(crate) patient: PatientRecord,
    revision: PatientRevisionRecord,
    entries: Vec<IndexEntry>,
}

impl NewPatient {
    pub(crate) async fn insert(
        &self,
        tx: &mut carnet_store::Tx,
        practice_id: PracticeId,
        created_by: Uuid,
    ) -> Result<(), StoreError> {
        tx.insert_patient(&self.patient, created_by).await?;
        tx.insert_patient_revision(practice_id, &self.revision)
            .await?;
        tx.replace_patient_index(practice_id, self.patient.id, &self.entries)
            .await
    }

    /// Inserts many new patients at once (an import: a few multi-row statements).
    pub(crate) async fn insert_all(
        patients: &[Self],
        tx: &mut carnet_store::Tx,
        practice_id: PracticeId,
        created_by: Uuid,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = patients
            .iter()
            .map(|new| (&new.patient, &new.revision, new.entries.as_slice()))
            .collect();
        tx.insert_new_patients(practice_id, created_by, &rows).await
    }
}

/// A patient's current identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientView {
    pub id: Uuid,
    /// The current revision's number (1 for a new patient).
    pub revision: i64,
    pub identity: PatientIdentity,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_care_at: Option<Timestamp>,
}

/// The most patients one search shows (and so audits as read). Past it the person is asked
/// to type more of the name or the birth date: a search is for finding one patient, not for
/// listing a practice, and one request's work (rows opened, journal entries written) stays
/// bounded whatever the practice's size.
pub const SEARCH_LIMIT: usize = 50;

/// What a search found: the first [`SEARCH_LIMIT`] patients in name and birth date order,
/// and how many matched in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientMatches {
    pub shown: Vec<PatientView>,
    pub total: usize,
}

/// One revision of a patient's identity, and who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientRevisionView {
    pub number: i64,
    pub identity: PatientIdentity,
    pub created_at: Timestamp,
    /// The member who made it.
    pub created_by: Uuid,
}

/// A search: a name prefix (3 letters or more; birth or used name), optionally with a
/// birth date, or a NIR/NIA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatientQuery {
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub nir: Option<String>,
}

// The blind-indexed fields.
const BIRTH_NAME: &str = "birth_name";
const USED_NAME: &str = "used_name";
const BIRTH_NAME_PREFIX: &str = "birth_name_prefix";
const USED_NAME_PREFIX: &str = "used_name_prefix";
const BIRTH_DATE: &str = "birth_date";
const NIR: &str = "nir";

/// The version the practice key is made with (rotation will add versions).
const FIRST_PRACTICE_KEY: i64 = 1;
/// Patient keys seal identities as version 1.
const PATIENT_KEY_VERSION: u32 = 1;

pub(crate) fn practice_key_row(practice_id: PracticeId, version: i64) -> Vec<u8> {
    let mut row = practice_id.as_uuid().as_bytes().to_vec();
    row.extend_from_slice(&version.to_be_bytes());
    row
}

impl Services {
    /// A new practice key for `version`, wrapped for its row of `practice_keys`.
    pub(crate) fn new_wrapped_practice_key(
        &self,
        practice_id: PracticeId,
        version: i64,
    ) -> Result<Vec<u8>, ServiceError> {
        let key = DataKey::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let row = practice_key_row(practice_id, version);
        key.wrap(
            &self.auth.records_kek,
            SealContext {
                table: "practice_keys",
                column: "wrapped_key",
                row: &row,
            },
            self.random.as_ref(),
        )
        .map_err(|_| ServiceError::Randomness)
    }
}

/// The blind-index keys of one practice key version, one per field: derived once (an HKDF
/// each) for every identity indexed with them, not once per identity — an import indexes
/// thousands, a rotation batch hundreds.
pub(crate) struct IndexKeys {
    birth_name: BlindIndexKey,
    birth_name_prefix: BlindIndexKey,
    used_name: BlindIndexKey,
    used_name_prefix: BlindIndexKey,
    birth_date: BlindIndexKey,
    nir: BlindIndexKey,
}

impl IndexKeys {
    pub(crate) fn derive(practice_key: &DataKey) -> Result<Self, ServiceError> {
        let key = |field: &str| {
            practice_key
                .blind_index_key(field)
                .map_err(|_| ServiceError::Integrity)
        };
        Ok(Self {
            birth_name: key(BIRTH_NAME)?,
            birth_name_prefix: key(BIRTH_NAME_PREFIX)?,
            used_name: key(USED_NAME)?,
            used_name_prefix: key(USED_NAME_PREFIX)?,
            birth_date: key(BIRTH_DATE)?,
            nir: key(NIR)?,
        })
    }

    /// The blind-index entries of an identity.
    pub(crate) fn entries(&self, identity: &PatientIdentity) -> Vec<IndexEntry> {
        let entry = |field: &'static str, key: &BlindIndexKey, value: &str| {
            (field, key.digest(value).to_vec())
        };
        let mut entries = Vec::new();
        let birth_name = normalize_name(&identity.birth_name);
        entries.push(entry(BIRTH_NAME, &self.birth_name, &birth_name));
        if let Some(prefix) = name_prefix(&birth_name) {
            entries.push(entry(BIRTH_NAME_PREFIX, &self.birth_name_prefix, &prefix));
        }
        if let Some(used) = &identity.used_name {
            let used = normalize_name(used);
            entries.push(entry(USED_NAME, &self.used_name, &used));
            if let Some(prefix) = name_prefix(&used) {
                entries.push(entry(USED_NAME_PREFIX, &self.used_name_prefix, &prefix));
            }
        }
        let birth_date = identity.birth_date.to_string();
        entries.push(entry(BIRTH_DATE, &self.birth_date, &birth_date));
        if let Some(nir) = &identity.nir {
            entries.push(entry(NIR, &self.nir, nir));
        }
        entries
    }
}

/// What putting patients under the current practice key needs (new ones, or ones a
/// rotation moves), derived once for all of them: the version, the key that wraps patient
/// keys, the blind-index keys.
pub(crate) struct NewPatientKeys {
    pub(crate) version: i64,
    pub(crate) wrapping: SealingKey,
    pub(crate) index: IndexKeys,
}

impl NewPatientKeys {
    pub(crate) fn derive(keys: &PracticeKeys) -> Result<Self, ServiceError> {
        let (version, practice_key) = keys.current();
        let wrapping = practice_key
            .sealing_key(u32::try_from(version).map_err(|_| ServiceError::Integrity)?)
            .map_err(|_| ServiceError::Integrity)?;
        Ok(Self {
            version,
            wrapping,
            index: IndexKeys::derive(practice_key)?,
        })
    }
}

pub(crate) fn revision_context(revision_id: &Uuid) -> SealContext<'_> {
    SealContext {
        table: "patient_revisions",
        column: "sealed_identity",
        row: revision_id.as_bytes(),
    }
}

pub(crate) fn patient_key_context(patient_id: &Uuid) -> SealContext<'_> {
    SealContext {
        table: "patients",
        column: "wrapped_key",
        row: patient_id.as_bytes(),
    }
}

/// A patient's key, unwrapped with the practice key of the version it was wrapped with.
pub(crate) fn open_patient_key(keys: &PracticeKeys, patient: &PatientRecord) -> Option<DataKey> {
    let version = u32::try_from(patient.key_version).ok()?;
    let wrapping = keys.of(patient.key_version)?.sealing_key(version).ok()?;
    DataKey::unwrap(
        &wrapping,
        &patient.wrapped_key,
        patient_key_context(&patient.id),
    )
    .ok()
}

/// Whether the caller, in `active`, may open the practice's records at `level`, and if so
/// the practice's wrapped keys (those read with the session).
fn records_verdict(
    caller: &Caller,
    active: &ActiveSession,
    practice_id: PracticeId,
    level: RecordsLevel,
) -> Verdict {
    let Actor::Member {
        practice_id: own,
        member_id,
        role,
    } = caller.actor
    else {
        // The platform side and anonymous callers never open care records.
        return Verdict::Refused(ServiceError::Forbidden);
    };
    // The gate was read for the account's own practice: it decides for no other.
    if own != practice_id
        || actor_of(active.account()) != caller.actor
        || active.device() != DeviceStanding::Approved
    {
        return Verdict::Refused(ServiceError::Forbidden);
    }
    let clinical = level == RecordsLevel::Clinical;
    if clinical && role == Role::Staff {
        return Verdict::Refused(ServiceError::Forbidden);
    }
    let gate = active.gate();
    if !crate::pin::pin_unlocked_at(active.session(), gate.pin_version) {
        return Verdict::Refused(ServiceError::PinRequired);
    }
    if clinical && gate.professional_id != ProfessionalIdStatus::Validated {
        return Verdict::Refused(ServiceError::Forbidden);
    }
    Verdict::Allowed {
        member_id,
        wrapped: gate.wrapped_keys.clone(),
    }
}

/// Whether the identity answers a name prefix (normalised, spaces ignored).
fn name_matches(identity: &PatientIdentity, prefix: &str) -> bool {
    let squeeze = |name: &str| normalize_name(name).replace(' ', "");
    let prefix = prefix.replace(' ', "");
    squeeze(&identity.birth_name).starts_with(&prefix)
        || identity
            .used_name
            .as_deref()
            .is_some_and(|used| squeeze(used).starts_with(&prefix))
}

impl Services {
    /// The capability over a practice's patients (identity and contact).
    pub async fn authorize_records(
        &self,
        caller: &Caller,
        session: &ActiveSession,
        practice_id: PracticeId,
    ) -> Result<RecordsScope, ServiceError> {
        self.records_scope(caller, session, practice_id, RecordsLevel::Administrative)
            .await
    }

    /// The capability over a practice's clinical content and documents.
    pub async fn authorize_clinical(
        &self,
        caller: &Caller,
        session: &ActiveSession,
        practice_id: PracticeId,
    ) -> Result<ClinicalScope, ServiceError> {
        self.records_scope(caller, session, practice_id, RecordsLevel::Clinical)
            .await
            .map(ClinicalScope)
    }

    /// The one authorization function for care records. Every refusal is audited (on the
    /// practice's chain when it exists). The session, its account, its device's standing,
    /// the practice's PIN version, the member's professional number and the practice's
    /// wrapped keys are those the request was found active with (read in one statement
    /// per request, [`Services::resolve_session`]).
    async fn records_scope(
        &self,
        caller: &Caller,
        session: &ActiveSession,
        practice_id: PracticeId,
        level: RecordsLevel,
    ) -> Result<RecordsScope, ServiceError> {
        match records_verdict(caller, session, practice_id, level) {
            Verdict::Allowed { member_id, wrapped } => {
                let keys = self
                    .opened_practice_keys(practice_id, caller, wrapped)
                    .await?;
                Ok(RecordsScope {
                    practice_id,
                    member_id,
                    caller: caller.clone(),
                    keys,
                })
            }
            Verdict::Refused(refusal) => {
                let chain = if self.store.practice(practice_id).await?.is_some() {
                    carnet_audit::ChainId::Practice(practice_id)
                } else {
                    carnet_audit::ChainId::Instance
                };
                let event = self.audit_event(
                    caller,
                    chain,
                    Action::RecordRead,
                    Targets::default(),
                    Outcome::Denied,
                );
                self.audit_alone(event).await?;
                Err(refusal)
            }
        }
    }

    /// Whether the member holding `scope` would get the clinical capability (their role
    /// and validated number; not audited: pages use it to show or hide the clinical
    /// part, then ask [`Services::authorize_clinical`], which is).
    pub async fn clinical_allowed(&self, scope: &RecordsScope) -> Result<bool, ServiceError> {
        let Actor::Member { role, .. } = scope.caller.actor else {
            return Ok(false);
        };
        if role == Role::Staff {
            return Ok(false);
        }
        let (practice_id, member_id) = (scope.practice_id, scope.member_id);
        let member = self
            .read(move |tx| Box::pin(async move { tx.member(practice_id, member_id).await }))
            .await?;
        Ok(member.is_some_and(|member| {
            member.professional_id_state.status() == ProfessionalIdStatus::Validated
        }))
    }

    /// The name of the member acting (for "performed by" on a care act).
    pub async fn member_name(&self, caller: &Caller) -> Result<String, ServiceError> {
        let Actor::Member {
            practice_id,
            member_id,
            ..
        } = caller.actor
        else {
            return Err(ServiceError::Forbidden);
        };
        let member = self
            .read(move |tx| Box::pin(async move { tx.member(practice_id, member_id).await }))
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(member.name.as_str().to_owned())
    }

    /// The practice's current key (made on first use), with its version; `caller` is who
    /// an integrity failure is audited against.
    pub(crate) async fn practice_key_for(
        &self,
        practice_id: PracticeId,
        caller: &Caller,
    ) -> Result<PracticeKeys, ServiceError> {
        let wrapped = self
            .read(move |tx| Box::pin(async move { tx.practice_keys(practice_id).await }))
            .await?;
        self.opened_practice_keys(practice_id, caller, wrapped)
            .await
    }

    /// Opens the practice's wrapped keys (newest first), making the first one if there
    /// is none yet; a key that does not open is audited as an integrity failure.
    async fn opened_practice_keys(
        &self,
        practice_id: PracticeId,
        caller: &Caller,
        mut wrapped: Vec<(i64, Vec<u8>)>,
    ) -> Result<PracticeKeys, ServiceError> {
        if wrapped.is_empty() {
            let first = self.new_wrapped_practice_key(practice_id, FIRST_PRACTICE_KEY)?;
            let now = self.now();
            self.audited(Vec::new(), move |tx| {
                Box::pin(async move {
                    tx.insert_practice_key(practice_id, FIRST_PRACTICE_KEY, &first, now)
                        .await
                })
            })
            .await?;
            wrapped = self
                .read(move |tx| Box::pin(async move { tx.practice_keys(practice_id).await }))
                .await?;
        }
        let mut opened = Vec::with_capacity(wrapped.len());
        for (version, wrapped) in wrapped {
            let row = practice_key_row(practice_id, version);
            match DataKey::unwrap(
                &self.auth.records_kek,
                &wrapped,
                SealContext {
                    table: "practice_keys",
                    column: "wrapped_key",
                    row: &row,
                },
            ) {
                Ok(key) => opened.push((version, key)),
                Err(_) => return Err(self.integrity_failure_for(practice_id, caller, None).await),
            }
        }
        let mut versions = opened.into_iter();
        let current = versions
            .next()
            .ok_or(ServiceError::Unavailable(StoreError::Corrupt(
                "practice key",
            )))?;
        Ok(PracticeKeys {
            current,
            older: versions.collect(),
        })
    }

    /// Audits an integrity failure and returns the error to answer with.
    pub(crate) async fn integrity_failure(
        &self,
        scope: &RecordsScope,
        patient: Option<Uuid>,
    ) -> ServiceError {
        self.integrity_failure_for(scope.practice_id, &scope.caller, patient)
            .await
    }

    async fn integrity_failure_for(
        &self,
        practice_id: PracticeId,
        caller: &Caller,
        patient: Option<Uuid>,
    ) -> ServiceError {
        let event = self.audit_event(
            caller,
            carnet_audit::ChainId::Practice(practice_id),
            Action::IntegrityFailure,
            Targets {
                patient,
                ..Targets::default()
            },
            Outcome::Failure,
        );
        match self.audit_alone(event).await {
            Ok(()) => ServiceError::Integrity,
            Err(error) => error,
        }
    }

    /// Opens a patient's key (wrapped by the practice key of its version); a failure is
    /// audited.
    pub(crate) async fn patient_key(
        &self,
        scope: &RecordsScope,
        keys: &PracticeKeys,
        patient: &PatientRecord,
    ) -> Result<DataKey, ServiceError> {
        match open_patient_key(keys, patient) {
            Some(key) => Ok(key),
            None => Err(self.integrity_failure(scope, Some(patient.id)).await),
        }
    }

    /// Opens the identity of one revision of a patient.
    async fn open_identity(
        &self,
        scope: &RecordsScope,
        keys: &PracticeKeys,
        patient: &PatientRecord,
        revision: &PatientRevisionRecord,
    ) -> Result<PatientIdentity, ServiceError> {
        let patient_key = self.patient_key(scope, keys, patient).await?;
        let opened = patient_key
            .sealing_key(PATIENT_KEY_VERSION)
            .ok()
            .and_then(|sealing| {
                sealing
                    .open(&revision.sealed_identity, revision_context(&revision.id))
                    .ok()
            })
            .and_then(|plain| serde_json::from_slice::<PatientIdentity>(&plain).ok());
        match opened {
            Some(identity) if revision.patient_id == patient.id => Ok(identity),
            _ => Err(self.integrity_failure(scope, Some(patient.id)).await),
        }
    }

    pub(crate) fn records_event(
        &self,
        scope: &RecordsScope,
        action: Action,
        patient: Option<Uuid>,
    ) -> carnet_audit::Event {
        self.audit_event(
            &scope.caller,
            carnet_audit::ChainId::Practice(scope.practice_id),
            action,
            Targets {
                patient,
                ..Targets::default()
            },
            Outcome::Success,
        )
    }

    pub(crate) fn today(&self) -> Option<BirthDate> {
        BirthDate::of_unix_millis(self.now().unix_millis())
    }

    /// Creates a patient: its key, its first identity revision, its blind indexes.
    pub async fn create_patient(
        &self,
        scope: &RecordsScope,
        input: &PatientInput,
    ) -> Result<PatientView, ServiceError> {
        let identity = PatientIdentity::check(input, self.today())
            .map_err(|error| ServiceError::invalid("identity", &error))?;
        let keys = scope.keys();
        let now = self.now();
        let practice_id = scope.practice_id;
        let created_by = *scope.member_id.as_uuid();
        let new = self.new_patient(
            practice_id,
            &NewPatientKeys::derive(keys)?,
            &identity,
            created_by,
            now,
        )?;
        let patient_id = new.patient.id;
        let event = self.records_event(scope, Action::RecordWritten, Some(patient_id));
        self.audited(vec![event], move |tx| {
            Box::pin(async move { new.insert(tx, practice_id, created_by).await })
        })
        .await?;
        Ok(PatientView {
            id: patient_id,
            revision: 1,
            identity,
            created_at: now,
            updated_at: now,
            last_care_at: None,
        })
    }

    /// The rows of a new patient: its wrapped key, its first sealed revision, its blind
    /// indexes (made outside the transaction that stores them).
    pub(crate) fn new_patient(
        &self,
        practice_id: PracticeId,
        keys: &NewPatientKeys,
        identity: &PatientIdentity,
        created_by: Uuid,
        now: Timestamp,
    ) -> Result<NewPatient, ServiceError> {
        let patient_id = self.new_uuid()?;
        let revision_id = self.new_uuid()?;
        let patient_key =
            DataKey::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let wrapped_key = patient_key
            .wrap(
                &keys.wrapping,
                patient_key_context(&patient_id),
                self.random.as_ref(),
            )
            .map_err(|_| ServiceError::Randomness)?;
        let plain = serde_json::to_vec(identity).map_err(|_| ServiceError::Integrity)?;
        let sealed_identity = patient_key
            .sealing_key(PATIENT_KEY_VERSION)
            .and_then(|key| key.seal(&plain, revision_context(&revision_id), self.random.as_ref()))
            .map_err(|_| ServiceError::Randomness)?;
        Ok(NewPatient {
            patient: PatientRecord {
                id: patient_id,
                practice_id,
                key_version: keys.version,
                wrapped_key,
                created_at: now,
                last_care_at: None,
            },
            revision: PatientRevisionRecord {
                id: revision_id,
                patient_id,
                number: 1,
                sealed_identity,
                created_at: now,
                created_by,
            },
            entries: keys.index.entries(identity),
        })
    }

    /// A patient's current identity (audited as a read).
    pub async fn patient(
        &self,
        scope: &RecordsScope,
        patient_id: Uuid,
    ) -> Result<PatientView, ServiceError> {
        let practice_id = scope.practice_id;
        let event = self.records_event(scope, Action::RecordRead, Some(patient_id));
        let (patient, revision) = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    // Unknown here: the job fails alone (not found), its audit entry with it.
                    tx.patient_with_revision(practice_id, patient_id)
                        .await?
                        .ok_or(StoreError::MissingReference)
                })
            })
            .await?;
        let keys = scope.keys();
        let identity = self.open_identity(scope, keys, &patient, &revision).await?;
        Ok(PatientView {
            id: patient.id,
            revision: revision.number,
            identity,
            created_at: patient.created_at,
            updated_at: revision.created_at,
            last_care_at: patient.last_care_at,
        })
    }

    /// Changes a patient's identity: a new revision (the previous ones are kept).
    /// `expected_revision` must be the current one, so two people editing at once
    /// cannot silently overwrite each other.
    pub async fn update_patient(
        &self,
        scope: &RecordsScope,
        patient_id: Uuid,
        expected_revision: i64,
        input: &PatientInput,
    ) -> Result<PatientView, ServiceError> {
        let identity = PatientIdentity::check(input, self.today())
            .map_err(|error| ServiceError::invalid("identity", &error))?;
        let current = self.patient(scope, patient_id).await?;
        if current.revision != expected_revision {
            return Err(ServiceError::Conflict);
        }
        let practice_id = scope.practice_id;
        let patient = self
            .read(move |tx| Box::pin(async move { tx.patient(practice_id, patient_id).await }))
            .await?
            .ok_or(ServiceError::NotFound)?;
        let keys = scope.keys();
        let patient_key = self.patient_key(scope, keys, &patient).await?;
        // The indexes follow the practice key version the patient is wrapped with.
        let index_key = keys
            .of(patient.key_version)
            .ok_or(ServiceError::Integrity)?;
        let revision_id = self.new_uuid()?;
        let plain = serde_json::to_vec(&identity).map_err(|_| ServiceError::Integrity)?;
        let sealed_identity = patient_key
            .sealing_key(PATIENT_KEY_VERSION)
            .and_then(|key| key.seal(&plain, revision_context(&revision_id), self.random.as_ref()))
            .map_err(|_| ServiceError::Randomness)?;
        let entries = IndexKeys::derive(index_key)?.entries(&identity);
        let now = self.now();
        let number = expected_revision + 1;
        let revision = PatientRevisionRecord {
            id: revision_id,
            patient_id,
            number,
            sealed_identity,
            created_at: now,
            created_by: *scope.member_id.as_uuid(),
        };
        let event = self.records_event(scope, Action::RecordWritten, Some(patient_id));
        // Two edits racing for the same number: the second one's insert conflicts.
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.insert_patient_revision(practice_id, &revision).await?;
                tx.replace_patient_index(practice_id, patient_id, &entries)
                    .await
            })
        })
        .await?;
        Ok(PatientView {
            id: patient_id,
            revision: number,
            identity,
            created_at: current.created_at,
            updated_at: now,
            last_care_at: current.last_care_at,
        })
    }

    /// Every revision of a patient's identity, newest first (audited as a read).
    pub async fn patient_history(
        &self,
        scope: &RecordsScope,
        patient_id: Uuid,
    ) -> Result<Vec<PatientRevisionView>, ServiceError> {
        let practice_id = scope.practice_id;
        let event = self.records_event(scope, Action::RecordRead, Some(patient_id));
        let loaded = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    let Some(patient) = tx.patient(practice_id, patient_id).await? else {
                        return Err(StoreError::MissingReference);
                    };
                    let revisions = tx.patient_revisions(practice_id, patient_id).await?;
                    Ok((patient, revisions))
                })
            })
            .await;
        let (patient, revisions) = match loaded {
            Err(ServiceError::NotFound) => return Err(ServiceError::NotFound),
            other => other?,
        };
        let keys = scope.keys();
        let mut history = Vec::with_capacity(revisions.len());
        for revision in &revisions {
            let identity = self.open_identity(scope, keys, &patient, revision).await?;
            history.push(PatientRevisionView {
                number: revision.number,
                identity,
                created_at: revision.created_at,
                created_by: revision.created_by,
            });
        }
        Ok(history)
    }

    /// Finds patients by name prefix (and birth date) or by NIR, without any clear value
    /// in the database: the blind index narrows the candidates, which are opened and
    /// compared in memory (homonyms stay apart by their birth date and identity). At most
    /// [`SEARCH_LIMIT`] patients are shown; each one shown is audited as read.
    pub async fn search_patients(
        &self,
        scope: &RecordsScope,
        query: &PatientQuery,
    ) -> Result<PatientMatches, ServiceError> {
        let keys = scope.keys();
        let birth_date = query
            .birth_date
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .map(|text| BirthDate::parse(text, None))
            .transpose()
            .map_err(|error| ServiceError::invalid("birth_date", &error))?;
        let (lookups, name, nir): (Vec<(&'static str, String)>, Option<String>, Option<String>) =
            if let Some(nir) = query.nir.as_deref().filter(|nir| !nir.trim().is_empty()) {
                let nir = carnet_domain::Nir::parse(nir)
                    .map_err(|error| ServiceError::invalid("nir", &error))?
                    .as_str()
                    .to_owned();
                (vec![(NIR, nir.clone())], None, Some(nir))
            } else {
                let name = normalize_name(query.name.as_deref().unwrap_or_default());
                let Some(prefix) = name_prefix(&name) else {
                    return Err(ServiceError::Invalid {
                        field: "name",
                        message: "Tapez au moins 3 lettres du nom, ou le NIR.".into(),
                    });
                };
                (
                    vec![
                        (BIRTH_NAME_PREFIX, prefix.clone()),
                        (USED_NAME_PREFIX, prefix),
                    ],
                    Some(name),
                    None,
                )
            };
        // Every key version still wrapping some patient indexes them: probe with each.
        let mut probes = Vec::new();
        for practice_key in keys.all() {
            for (field, value) in &lookups {
                let key = practice_key
                    .blind_index_key(field)
                    .map_err(|_| ServiceError::Integrity)?;
                probes.push((*field, key.digest(value).to_vec()));
            }
        }
        let practice_id = scope.practice_id;
        // Each probe decides on its own rows (candidates are checked after opening): no
        // snapshot across the probes is needed.
        let candidates = self
            .read_latest(move |tx| {
                Box::pin(async move {
                    let mut all: Vec<(PatientRecord, PatientRevisionRecord)> = Vec::new();
                    for (field, digest) in &probes {
                        for found in tx.patients_by_index(practice_id, field, digest).await? {
                            if !all.iter().any(|(known, _)| known.id == found.0.id) {
                                all.push(found);
                            }
                        }
                    }
                    Ok(all)
                })
            })
            .await?;
        let mut matches = Vec::new();
        for (patient, revision) in &candidates {
            let identity = self.open_identity(scope, keys, patient, revision).await?;
            let fits = match (&nir, &name) {
                (Some(nir), _) => identity.nir.as_deref() == Some(nir.as_str()),
                (None, Some(name)) => {
                    name_matches(&identity, name)
                        && birth_date.is_none_or(|date| identity.birth_date == date)
                }
                (None, None) => false,
            };
            if fits {
                matches.push(PatientView {
                    id: patient.id,
                    revision: revision.number,
                    identity,
                    created_at: patient.created_at,
                    updated_at: revision.created_at,
                    last_care_at: patient.last_care_at,
                });
            }
        }
        // Each name normalised once (not once per comparison).
        matches.sort_by_cached_key(|found| {
            (
                normalize_name(&found.identity.birth_name),
                found.identity.birth_date,
            )
        });
        let total = matches.len();
        matches.truncate(SEARCH_LIMIT);
        // The search itself, and each patient it shows, are traced.
        let mut events = vec![self.records_event(scope, Action::RecordRead, None)];
        events.extend(
            matches
                .iter()
                .map(|found| self.records_event(scope, Action::RecordRead, Some(found.id))),
        );
        self.audited(events, |_| Box::pin(async { Ok(()) })).await?;
        Ok(PatientMatches {
            shown: matches,
            total,
        })
    }
}
