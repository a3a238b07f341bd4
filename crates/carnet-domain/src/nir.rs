//! The NIR ("numéro de sécurité sociale", also the INS matricule) and the NIA:
//! 13 characters then a 2-digit key, key = 97 − (number mod 97), where the Corsican
//! departments 2A and 2B count as 19 and 18.
//!
//! A NIR identifies a patient: its `Debug` output is redacted so it can never reach a
//! log through a `{:?}`.

use std::fmt;

/// Why a NIR was refused. Messages are French: they are shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NirError {
    #[error("Le NIR doit comporter 15 caractères : 13 pour le numéro et 2 pour la clé.")]
    Length,
    #[error("Le NIR ne peut contenir que des chiffres (et 2A ou 2B pour un département corse).")]
    Characters,
    #[error("Le NIR doit commencer par 1, 2, 3, 4, 7 ou 8.")]
    FirstDigit,
    #[error("La clé du NIR ne correspond pas au numéro : vérifiez chaque chiffre.")]
    Key,
}

/// A checked NIR or NIA, kept as its 15 canonical characters (upper case, no spaces).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nir(String);

impl Nir {
    /// Parses a NIR typed by a person: spaces are ignored and `2a`/`2b` accepted in any case.
    pub fn parse(text: &str) -> Result<Self, NirError> {
        let canonical: String = text
            .chars()
            .filter(|c| *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if canonical.chars().count() != 15 {
            return Err(NirError::Length);
        }
        let bytes = canonical.as_bytes();
        if bytes.len() != 15 {
            return Err(NirError::Characters);
        }
        let corsica = &bytes[5..7];
        let department_is_corsican = corsica == b"2A" || corsica == b"2B";
        let digits_ok = bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| byte.is_ascii_digit() || (department_is_corsican && index == 6));
        if !digits_ok {
            return Err(NirError::Characters);
        }
        if !matches!(bytes[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
            return Err(NirError::FirstDigit);
        }
        let number: u64 = bytes[..13]
            .iter()
            .enumerate()
            .fold(0, |number, (index, byte)| {
                let digit = match (index, byte) {
                    (5, b'2') if department_is_corsican => 1,
                    (6, b'A') => 9,
                    (6, b'B') => 8,
                    (_, byte) => u64::from(byte - b'0'),
                };
                number * 10 + digit
            });
        let key = u64::from(bytes[13] - b'0') * 10 + u64::from(bytes[14] - b'0');
        if key != 97 - number % 97 {
            return Err(NirError::Key);
        }
        Ok(Self(canonical))
    }

    /// The 15 canonical characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The usual grouping for display: `2 55 08 14 168 025 38`.
    pub fn grouped(&self) -> String {
        let s = &self.0;
        format!(
            "{} {} {} {} {} {} {}",
            &s[0..1],
            &s[1..3],
            &s[3..5],
            &s[5..7],
            &s[7..10],
            &s[10..13],
            &s[13..15]
        )
    }
}

impl fmt::Debug for Nir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nir(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const VALID: [&str; 6] = [
        "255081416802538",
        "295109912611193",
        "253072B07300470",
        "253072A07300443",
        "189127512501282",
        "262087503203977",
    ];

    #[test]
    fn accepts_the_reference_numbers() {
        for nir in VALID {
            assert_eq!(Nir::parse(nir).map(|n| n.0), Ok(nir.to_owned()), "{nir}");
        }
    }

    #[test]
    fn accepts_spaces_and_lower_case_corsica() {
        let nir = Nir::parse("2 53 07 2b 073 004 70").expect("valid once normalised");
        assert_eq!(nir.as_str(), "253072B07300470");
        assert_eq!(nir.grouped(), "2 53 07 2B 073 004 70");
    }

    #[test]
    fn refuses_a_wrong_key() {
        assert_eq!(Nir::parse("284058832102530"), Err(NirError::Key));
    }

    #[test]
    fn refuses_bad_shapes_with_the_right_reason() {
        assert_eq!(Nir::parse("25508141680253"), Err(NirError::Length));
        assert_eq!(Nir::parse("2550814168025X8"), Err(NirError::Characters));
        assert_eq!(Nir::parse("25508A416802538"), Err(NirError::Characters));
        assert_eq!(Nir::parse("555081416802538"), Err(NirError::FirstDigit));
        assert_eq!(Nir::parse("2550814168025é8"), Err(NirError::Characters));
    }

    #[test]
    fn debug_output_never_shows_the_number() {
        let nir = Nir::parse(VALID[0]).expect("valid");
        assert!(!format!("{nir:?}").contains("2550"));
    }

    /// The key of a 13-character number, computed independently with big-enough integers.
    fn reference_key(number: &str) -> u64 {
        let numeric = number.replace("2A", "19").replace("2B", "18");
        97 - numeric.parse::<u64>().expect("digits") % 97
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(text in any::<String>()) {
            let _ = Nir::parse(&text);
        }

        #[test]
        fn never_panics_on_near_misses(text in "[0-9AB ]{13,17}") {
            let _ = Nir::parse(&text);
        }

        #[test]
        fn the_computed_key_is_the_only_accepted_one(
            first in "[12]", rest in "[0-9]{4}", department in "(2A|2B|[0-9]{2})", tail in "[0-9]{6}"
        ) {
            let number = format!("{first}{rest}{department}{tail}");
            let key = reference_key(&number);
            for candidate in 0..100u64 {
                let nir = format!("{number}{candidate:02}");
                prop_assert_eq!(Nir::parse(&nir).is_ok(), candidate == key, "{}", nir);
            }
        }
    }
}
