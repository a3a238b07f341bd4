//! Professional identity: RPPS (11 digits) and legacy ADELI (9 digits) numbers,
//! both ending with a Luhn key, and the validation a platform administrator gives them.
//!
//! A professional cannot open care records until a platform administrator has
//! validated the number (against the Annuaire Santé); the state below records who
//! decided, when and why.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AdminId, Timestamp};

/// Why a professional number was refused. Messages are French: they are shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfessionalIdError {
    #[error("Le numéro RPPS doit comporter exactement 11 chiffres.")]
    RppsFormat,
    #[error("Le numéro ADELI doit comporter exactement 9 chiffres.")]
    AdeliFormat,
    #[error("La clé de contrôle du numéro est fausse : vérifiez chaque chiffre.")]
    LuhnKey,
    #[error("Le type d'identifiant professionnel doit être « rpps » ou « adeli ».")]
    UnknownKind,
}

/// A checked RPPS number (Répertoire partagé des professionnels de santé).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Rpps(String);

/// A checked ADELI number (the registry RPPS replaces for some professions).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Adeli(String);

impl Rpps {
    pub fn parse(text: &str) -> Result<Self, ProfessionalIdError> {
        let digits = digits_of(text, 11).ok_or(ProfessionalIdError::RppsFormat)?;
        if !luhn_is_valid(&digits) {
            return Err(ProfessionalIdError::LuhnKey);
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Adeli {
    pub fn parse(text: &str) -> Result<Self, ProfessionalIdError> {
        let digits = digits_of(text, 9).ok_or(ProfessionalIdError::AdeliFormat)?;
        if !luhn_is_valid(&digits) {
            return Err(ProfessionalIdError::LuhnKey);
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Rpps> for String {
    fn from(value: Rpps) -> Self {
        value.0
    }
}

impl From<Adeli> for String {
    fn from(value: Adeli) -> Self {
        value.0
    }
}

impl fmt::Debug for Rpps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rpps({})", self.0)
    }
}

impl fmt::Debug for Adeli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Adeli({})", self.0)
    }
}

/// The professional number a member declares.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProfessionalId {
    Rpps(Rpps),
    Adeli(Adeli),
}

impl ProfessionalId {
    /// Parses a number of the given kind (`"rpps"` or `"adeli"`, as stored and sent on the wire).
    pub fn parse(kind: &str, number: &str) -> Result<Self, ProfessionalIdError> {
        match kind {
            "rpps" => Rpps::parse(number).map(Self::Rpps),
            "adeli" => Adeli::parse(number).map(Self::Adeli),
            _ => Err(ProfessionalIdError::UnknownKind),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rpps(_) => "rpps",
            Self::Adeli(_) => "adeli",
        }
    }

    pub fn number(&self) -> &str {
        match self {
            Self::Rpps(rpps) => rpps.as_str(),
            Self::Adeli(adeli) => adeli.as_str(),
        }
    }
}

/// Where a declared professional number stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfessionalIdStatus {
    Pending,
    Validated,
    Rejected,
}

impl ProfessionalIdStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Validated => "validated",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "validated" => Some(Self::Validated),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Pending => "en attente de validation",
            Self::Validated => "validé",
            Self::Rejected => "refusé",
        }
    }
}

/// The validation state of a member's professional number, with who decided, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfessionalIdState {
    Pending,
    Decided {
        status: ProfessionalIdStatus,
        by: AdminId,
        at: Timestamp,
        reason: String,
    },
}

impl ProfessionalIdState {
    pub fn status(&self) -> ProfessionalIdStatus {
        match self {
            Self::Pending => ProfessionalIdStatus::Pending,
            Self::Decided { status, .. } => *status,
        }
    }

    /// True only when a platform administrator validated the number: the condition
    /// for a professional to open care records.
    pub fn is_validated(&self) -> bool {
        self.status() == ProfessionalIdStatus::Validated
    }
}

/// The digits of `text` when it is exactly `length` ASCII digits, ignoring spaces
/// (people copy numbers grouped in blocks).
fn digits_of(text: &str, length: usize) -> Option<String> {
    let digits: String = text.chars().filter(|c| *c != ' ').collect();
    (digits.len() == length && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The Luhn check over a string of ASCII digits: the last digit is the key.
fn luhn_is_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position.is_multiple_of(2) {
                digit
            } else {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_known_valid_numbers() {
        assert_eq!(
            Rpps::parse("10000005479").map(|r| r.0),
            Ok("10000005479".into())
        );
        assert!(Adeli::parse("012807590").is_ok());
        assert!(Adeli::parse("102800000").is_ok());
        assert!(
            Rpps::parse("100 000 054 79").is_ok(),
            "spaces between blocks are allowed"
        );
    }

    #[test]
    fn refuses_the_fr_core_example_whose_key_is_wrong() {
        assert_eq!(
            Rpps::parse("10101201234"),
            Err(ProfessionalIdError::LuhnKey)
        );
    }

    #[test]
    fn refuses_wrong_lengths_and_non_digits() {
        assert_eq!(
            Rpps::parse("1000000547"),
            Err(ProfessionalIdError::RppsFormat)
        );
        assert_eq!(
            Rpps::parse("1000000547X"),
            Err(ProfessionalIdError::RppsFormat)
        );
        assert_eq!(
            Adeli::parse("01280759"),
            Err(ProfessionalIdError::AdeliFormat)
        );
        assert_eq!(
            Adeli::parse("０12807590"),
            Err(ProfessionalIdError::AdeliFormat)
        );
        assert_eq!(
            ProfessionalId::parse("siret", "10000005479"),
            Err(ProfessionalIdError::UnknownKind)
        );
    }

    #[test]
    fn error_messages_are_french_sentences() {
        let message = Rpps::parse("10101201234").unwrap_err().to_string();
        assert!(message.starts_with("La clé de contrôle"), "{message}");
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(text in any::<String>()) {
            let _ = Rpps::parse(&text);
            let _ = Adeli::parse(&text);
            let _ = ProfessionalId::parse("rpps", &text);
        }

        #[test]
        fn exactly_one_key_digit_completes_any_ten_digit_prefix(prefix in "[0-9]{10}") {
            let valid: Vec<char> = ('0'..='9')
                .filter(|key| Rpps::parse(&format!("{prefix}{key}")).is_ok())
                .collect();
            prop_assert_eq!(valid.len(), 1);
        }

        #[test]
        fn a_single_changed_digit_is_detected(prefix in "[0-9]{8}", position in 0usize..9, delta in 1u8..10) {
            let key = ('0'..='9').find(|key| Adeli::parse(&format!("{prefix}{key}")).is_ok());
            let valid = format!("{prefix}{}", key.expect("one key digit always exists"));
            let mut bytes = valid.clone().into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let altered = String::from_utf8(bytes).expect("still ASCII digits");
            prop_assert!(Adeli::parse(&altered).is_err(), "{} vs {}", valid, altered);
        }
    }
}
