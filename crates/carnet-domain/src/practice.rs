//! Practices ("cabinets") and their members.
//!
//! A practice isolates everything: care data belongs to exactly one practice and
//! only its members can reach it. Members are holders (titulaires), professionals
//! (associates, replacements) or staff (secrétariat).

use serde::{Deserialize, Serialize};

use crate::{MemberId, PracticeId, ProfessionalId, ProfessionalIdState, Timestamp};

/// Why a short text (a name, an address, a telephone) was refused. French messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("Le champ « {field} » est obligatoire.")]
    Empty { field: &'static str },
    #[error("Le champ « {field} » ne doit pas dépasser {max} caractères.")]
    TooLong { field: &'static str, max: usize },
    #[error("Le champ « {field} » contient des caractères de contrôle.")]
    ControlCharacters { field: &'static str },
    #[error(
        "Le numéro de téléphone doit comporter 10 chiffres (06 12 34 56 78) ou commencer par +."
    )]
    Phone,
    #[error(
        "Profession inconnue : choisissez infirmier, médecin, dentiste, kinésithérapeute ou sage-femme."
    )]
    Profession,
    #[error("Rôle inconnu : choisissez titulaire, professionnel ou secrétaire.")]
    Role,
}

/// Trims `text` and checks it is a non-empty single line of at most `max` characters.
fn checked_line(field: &'static str, text: &str, max: usize) -> Result<String, TextError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty { field });
    }
    if trimmed.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextError::ControlCharacters { field });
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(text: &str) -> Result<Self, TextError> {
                checked_line($field, text, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

text_type!(
    /// The practice's name as its members know it ("Cabinet infirmier des Tilleuls").
    PracticeName, "nom du cabinet", 120
);
text_type!(
    /// The practice's postal address, one line.
    Address, "adresse", 200
);
text_type!(
    /// A member's name as shown to colleagues.
    MemberName, "nom", 120
);

/// A telephone number for out-of-band delivery of activation codes: French national
/// format (10 digits starting with 0) or international (`+` then 8 to 15 digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect();
        let (plus, digits) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, compact.as_str()),
        };
        let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        let length_ok = if plus {
            (8..=15).contains(&digits.len())
        } else {
            digits.len() == 10 && digits.starts_with('0')
        };
        if all_digits && length_ok {
            Ok(Self(compact))
        } else {
            Err(TextError::Phone)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> Self {
        value.0
    }
}

/// The health profession a practice exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profession {
    Nurse,
    Physician,
    Dentist,
    Physiotherapist,
    Midwife,
}

impl Profession {
    pub const ALL: [Self; 5] = [
        Self::Nurse,
        Self::Physician,
        Self::Dentist,
        Self::Physiotherapist,
        Self::Midwife,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nurse => "nurse",
            Self::Physician => "physician",
            Self::Dentist => "dentist",
            Self::Physiotherapist => "physiotherapist",
            Self::Midwife => "midwife",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        Self::ALL
            .into_iter()
            .find(|profession| profession.as_str() == text)
            .ok_or(TextError::Profession)
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Nurse => "infirmier·ère",
            Self::Physician => "médecin",
            Self::Dentist => "chirurgien·ne-dentiste",
            Self::Physiotherapist => "masseur·se-kinésithérapeute",
            Self::Midwife => "sage-femme",
        }
    }
}

/// What a member may do in the practice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Titulaire: owns the practice; everything, including members, devices, PIN.
    Holder,
    /// Associate or replacement with a professional number: care records once validated.
    Professional,
    /// Secrétaire: administrative identity and contact only, never clinical content.
    Staff,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Holder, Self::Professional, Self::Staff];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Holder => "holder",
            Self::Professional => "professional",
            Self::Staff => "staff",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or(TextError::Role)
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Holder => "titulaire",
            Self::Professional => "professionnel·le",
            Self::Staff => "secrétaire",
        }
    }

    /// Holders and professionals exercise a health profession and must declare a number;
    /// staff must not (they have none, and declaring one would grant nothing).
    pub fn requires_professional_id(self) -> bool {
        matches!(self, Self::Holder | Self::Professional)
    }
}

/// A practice as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Practice {
    pub id: PracticeId,
    pub name: PracticeName,
    pub address: Address,
    pub profession: Profession,
    pub created_at: Timestamp,
}

/// A member to be added to a practice, already checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMember {
    pub name: MemberName,
    pub role: Role,
    pub phone: Phone,
    pub professional_id: Option<ProfessionalId>,
}

/// Why a new member is inconsistent as a whole (each field being valid on its own).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewMemberError {
    #[error("Un titulaire ou un professionnel doit indiquer son numéro RPPS ou ADELI.")]
    ProfessionalIdRequired,
    #[error("Un·e secrétaire n'a pas de numéro RPPS ou ADELI : laissez ce champ vide.")]
    ProfessionalIdNotAllowed,
}

impl NewMember {
    pub fn new(
        name: MemberName,
        role: Role,
        phone: Phone,
        professional_id: Option<ProfessionalId>,
    ) -> Result<Self, NewMemberError> {
        match (role.requires_professional_id(), &professional_id) {
            (true, None) => Err(NewMemberError::ProfessionalIdRequired),
            (false, Some(_)) => Err(NewMemberError::ProfessionalIdNotAllowed),
            _ => Ok(Self {
                name,
                role,
                phone,
                professional_id,
            }),
        }
    }
}

/// A member as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    pub practice_id: PracticeId,
    pub name: MemberName,
    pub role: Role,
    pub phone: Phone,
    pub professional_id: Option<ProfessionalId>,
    pub professional_id_state: ProfessionalIdState,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rpps;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PracticeName::parse("  Cabinet des Tilleuls ").map(String::from),
            Ok("Cabinet des Tilleuls".into())
        );
        assert_eq!(
            PracticeName::parse("   "),
            Err(TextError::Empty {
                field: "nom du cabinet"
            })
        );
        assert!(PracticeName::parse(&"x".repeat(121)).is_err());
        assert!(
            PracticeName::parse(&"é".repeat(120)).is_ok(),
            "counted in characters"
        );
        assert!(MemberName::parse("Anne\nMarie").is_err());
    }

    #[test]
    fn phones_accept_french_and_international_forms() {
        assert_eq!(
            Phone::parse("06 12 34 56 78").map(String::from),
            Ok("0612345678".into())
        );
        assert!(Phone::parse("+33 6 12 34 56 78").is_ok());
        assert!(Phone::parse("6 12 34 56 78").is_err());
        assert!(Phone::parse("+33").is_err());
        assert!(Phone::parse("06 12 34 56 7a").is_err());
    }

    #[test]
    fn roles_and_professions_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        for profession in Profession::ALL {
            assert_eq!(Profession::parse(profession.as_str()), Ok(profession));
        }
        assert_eq!(Role::parse("admin"), Err(TextError::Role));
    }

    #[test]
    fn professional_numbers_follow_the_role() {
        let name = MemberName::parse("Anne Martin").expect("valid");
        let phone = Phone::parse("0612345678").expect("valid");
        let rpps = ProfessionalId::Rpps(Rpps::parse("10000005479").expect("valid"));
        assert!(
            NewMember::new(
                name.clone(),
                Role::Professional,
                phone.clone(),
                Some(rpps.clone())
            )
            .is_ok()
        );
        assert_eq!(
            NewMember::new(name.clone(), Role::Holder, phone.clone(), None),
            Err(NewMemberError::ProfessionalIdRequired)
        );
        assert_eq!(
            NewMember::new(name, Role::Staff, phone, Some(rpps)),
            Err(NewMemberError::ProfessionalIdNotAllowed)
        );
    }
}
