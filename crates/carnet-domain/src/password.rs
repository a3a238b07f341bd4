//! The password policy (CNIL délibération 2022-100, "password alone" case, ≥ 80 bits):
//! at least 12 characters with upper case, lower case, digit and special character,
//! not guessable by a strength estimator (zxcvbn), and not containing the person's own
//! names or e-mail. A `Password` that exists passed every rule; it is zeroed on drop and
//! never printed.

use std::fmt;

use zeroize::Zeroizing;

/// The longest password accepted (hashing cost is bounded; passphrases still fit).
pub const PASSWORD_MAX_CHARS: usize = 256;
/// The shortest password accepted.
pub const PASSWORD_MIN_CHARS: usize = 12;

/// Words and patterns common in French passwords that the estimator's (English)
/// dictionaries miss; they count as known words, like the person's own names.
const FRENCH_COMMON: &[&str] = &[
    "azerty",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn",
    "motdepasse",
    "mdp",
    "soleil",
    "bonjour",
    "coucou",
    "doudou",
    "loulou",
    "chouchou",
    "jetaime",
    "amour",
    "marseille",
    "paris",
    "lyon",
    "toulouse",
    "bordeaux",
    "lille",
    "nantes",
    "france",
    "chocolat",
    "princesse",
    "bisous",
    "chaton",
    "nicolas",
    "camille",
    "julien",
    "thomas",
    "sophie",
    "nathalie",
    "isabelle",
    "pierre",
    "marie",
    "cabinet",
    "infirmier",
    "infirmiere",
    "medecin",
    "docteur",
    "sante",
    "patient",
    "carnet",
    "dossier",
    "secretaire",
    "kine",
    "dentiste",
];

/// One rule a candidate password broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordRule {
    TooShort,
    TooLong,
    NoLowercase,
    NoUppercase,
    NoDigit,
    NoSpecial,
    ContainsPersonalData,
    Guessable,
}

impl PasswordRule {
    /// The French sentence shown to the person.
    pub fn message_fr(self) -> &'static str {
        match self {
            Self::TooShort => "Le mot de passe doit comporter au moins 12 caractères.",
            Self::TooLong => "Le mot de passe ne doit pas dépasser 256 caractères.",
            Self::NoLowercase => "Ajoutez au moins une lettre minuscule.",
            Self::NoUppercase => "Ajoutez au moins une lettre majuscule.",
            Self::NoDigit => "Ajoutez au moins un chiffre.",
            Self::NoSpecial => "Ajoutez au moins un caractère spécial (par exemple ! ? % # _).",
            Self::ContainsPersonalData => {
                "Le mot de passe ne doit contenir ni votre nom, ni votre prénom, ni votre adresse e-mail."
            }
            Self::Guessable => {
                "Ce mot de passe est trop facile à deviner (mot courant, suite ou motif connu) : \
                 choisissez-en un moins prévisible, par exemple une phrase de plusieurs mots."
            }
        }
    }
}

/// Every rule a candidate broke, in the order above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordError {
    pub broken: Vec<PasswordRule>,
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sentences: Vec<&str> = self.broken.iter().map(|rule| rule.message_fr()).collect();
        f.write_str(&sentences.join(" "))
    }
}

impl std::error::Error for PasswordError {}

/// A password that satisfies the policy.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks `candidate` against the policy. `personal` holds the person's names and
    /// e-mail: none of their parts of 3 characters or more may appear in the password.
    pub fn new(candidate: &str, personal: &[&str]) -> Result<Self, PasswordError> {
        let mut broken = Vec::new();
        let length = candidate.chars().count();
        if length < PASSWORD_MIN_CHARS {
            broken.push(PasswordRule::TooShort);
        }
        if length > PASSWORD_MAX_CHARS {
            broken.push(PasswordRule::TooLong);
        }
        if !candidate.chars().any(char::is_lowercase) {
            broken.push(PasswordRule::NoLowercase);
        }
        if !candidate.chars().any(char::is_uppercase) {
            broken.push(PasswordRule::NoUppercase);
        }
        if !candidate.chars().any(|c| c.is_ascii_digit()) {
            broken.push(PasswordRule::NoDigit);
        }
        if !candidate.chars().any(|c| !c.is_alphanumeric()) {
            broken.push(PasswordRule::NoSpecial);
        }
        let folded = fold(candidate);
        let personal_parts: Vec<String> = personal
            .iter()
            .flat_map(|text| {
                fold(text)
                    .split(|c: char| !c.is_alphanumeric())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|part| part.chars().count() >= 3)
            .collect();
        if personal_parts
            .iter()
            .any(|part| folded.contains(part.as_str()))
        {
            broken.push(PasswordRule::ContainsPersonalData);
        }
        // The estimator is costly on very long inputs: only run it on acceptable lengths.
        if length <= PASSWORD_MAX_CHARS {
            let inputs: Vec<&str> = personal_parts
                .iter()
                .map(String::as_str)
                .chain(FRENCH_COMMON.iter().copied())
                .collect();
            let estimate = zxcvbn::zxcvbn(candidate, &inputs);
            if u8::from(estimate.score()) < 4 {
                broken.push(PasswordRule::Guessable);
            }
        }
        if broken.is_empty() {
            Ok(Self(Zeroizing::new(candidate.to_owned())))
        } else {
            Err(PasswordError { broken })
        }
    }

    /// The password, for hashing. Never log or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Lower case with French accents folded, for comparisons.
fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            'ÿ' => 'y',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_long_unpredictable_password_is_accepted() {
        for strong in [
            "Tilleul-Marée-42-Orage!",
            "Xk9#mQ2!vL7p",
            "brume Océan 7 cerf-volant !",
        ] {
            assert!(
                Password::new(strong, &["Anne", "Martin"]).is_ok(),
                "{strong}"
            );
        }
        let password =
            Password::new("Tilleul-Marée-42-Orage!", &["Anne", "Martin"]).expect("strong");
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }

    #[test]
    fn each_rule_is_named_in_french() {
        let error = Password::new("abc", &[]).expect_err("weak");
        for rule in [
            PasswordRule::TooShort,
            PasswordRule::NoUppercase,
            PasswordRule::NoDigit,
            PasswordRule::NoSpecial,
        ] {
            assert!(error.broken.contains(&rule), "{rule:?} in {error:?}");
        }
        assert!(error.to_string().contains("au moins 12 caractères"));
    }

    #[test]
    fn common_patterns_are_refused_even_with_the_four_classes() {
        for guessable in [
            "Password1234!",
            "Azerty123456!",
            "Motdepasse1!",
            "Aaaaaaaaaaa1!",
            "Infirmiere2026!",
        ] {
            let error = Password::new(guessable, &[]).expect_err(guessable);
            assert_eq!(error.broken, vec![PasswordRule::Guessable], "{guessable}");
        }
    }

    #[test]
    fn the_persons_names_and_email_are_refused_accents_folded() {
        let error = Password::new(
            "Hélène-Quartz-93!x",
            &["Helene Dupont", "h.dupont@example.fr"],
        )
        .expect_err("contains the first name");
        assert!(error.broken.contains(&PasswordRule::ContainsPersonalData));
        let error = Password::new("xK9#dupont-Lune-7", &["Helene Dupont"]).expect_err("surname");
        assert!(error.broken.contains(&PasswordRule::ContainsPersonalData));
        assert!(
            Password::new("Tilleul-Marée-42-Orage!", &["Al"]).is_ok(),
            "parts under 3 characters are ignored"
        );
    }

    #[test]
    fn length_is_counted_in_characters_and_capped() {
        assert!(Password::new(&format!("Éé1!{}", "x".repeat(300)), &[]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn never_panics_and_never_accepts_a_short_or_classless_password(candidate in any::<String>()) {
            match Password::new(&candidate, &["Anne Martin"]) {
                Ok(password) => {
                    let length = candidate.chars().count();
                    prop_assert!((PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&length));
                    prop_assert!(candidate.chars().any(char::is_lowercase));
                    prop_assert!(candidate.chars().any(char::is_uppercase));
                    prop_assert!(candidate.chars().any(|c| c.is_ascii_digit()));
                    prop_assert!(candidate.chars().any(|c| !c.is_alphanumeric()));
                    prop_assert_eq!(password.expose(), candidate.as_str());
                }
                Err(error) => prop_assert!(!error.broken.is_empty()),
            }
        }

        #[test]
        fn random_strong_passwords_pass(words in prop::collection::vec("[a-z]{5,8}", 4), digits in 10u32..99, symbol in "[!#%?_]") {
            let candidate = format!("{}-{}{}{}", words.join("-"), digits, symbol, "Q");
            prop_assert!(Password::new(&candidate, &[]).is_ok(), "{}", candidate);
        }
    }
}
