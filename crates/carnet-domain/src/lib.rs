//! Carnet's domain: the types and rules every other crate speaks in.
//!
//! Everything here is pure (no I/O, no clock, no randomness): values are checked
//! when they are built ("parse, don't validate"), so a `Nir`, an `Rpps` or a
//! `PracticeName` that exists is valid.

pub mod clinical;
pub mod ids;
pub mod import;
pub mod nir;
pub mod password;
pub mod patient;
pub mod practice;
pub mod professional;
pub mod time;

pub use clinical::{CarePlace, ClinicalContent, ClinicalError, Vitals};
pub use ids::{AdminId, MemberId, PracticeId};
pub use import::{CSV_COLUMNS, ImportProblem, patients_from_csv, patients_from_fhir};
pub use nir::{Nir, NirError};
pub use password::{Password, PasswordError, PasswordRule};
pub use patient::{
    BirthDate, IdentityStatus, PatientError, PatientIdentity, PatientInput, Sex, name_prefix,
    normalize_name,
};
pub use practice::{
    Address, Member, MemberName, NewMember, NewMemberError, Phone, Practice, PracticeName,
    Profession, Role, TextError,
};
pub use professional::{
    Adeli, ProfessionalId, ProfessionalIdError, ProfessionalIdState, ProfessionalIdStatus, Rpps,
};
pub use time::{Clock, ManualClock, Timestamp};
