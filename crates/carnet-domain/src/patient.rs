//! A patient's identity after the INS traits (Identifiant national de santé: birth name,
//! first names, birth date, sex, birthplace, NIR or NIA, identity status), contact and
//! administrative data — and the normalisation that search indexes use. Pure: checked
//! when built, serialised only to be sealed.

use serde::{Deserialize, Serialize};

use crate::Nir;

/// Why a patient identity was refused (in French, naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatientError {
    #[error("Le champ « {0} » est obligatoire.")]
    Missing(&'static str),
    #[error("Le champ « {field} » ne doit pas dépasser {max} caractères.")]
    TooLong { field: &'static str, max: usize },
    #[error(
        "Le champ « {0} » n'accepte que des lettres, des espaces, des tirets et des apostrophes."
    )]
    NameCharacters(&'static str),
    #[error("Le champ « {0} » contient des caractères de contrôle.")]
    ControlCharacters(&'static str),
    #[error(
        "La date de naissance doit être une date réelle au format AAAA-MM-JJ, pas dans le futur."
    )]
    BirthDate,
    #[error("Le sexe doit être F, M ou I (indéterminé).")]
    Sex,
    #[error("Le code INSEE du lieu de naissance a 5 caractères (99 et le pays pour l'étranger).")]
    Birthplace,
    #[error("Statut d'identité inconnu : PROV, RECUP, VALI ou QUAL.")]
    Status,
    #[error(
        "Une identité récupérée ou qualifiée (RECUP, QUAL) demande le matricule INS (NIR ou NIA)."
    )]
    StatusNeedsIns,
    #[error("Le matricule INS (NIR ou NIA) est invalide : {0}")]
    Nir(String),
    #[error("L'adresse e-mail est invalide.")]
    Email,
    #[error("Un numéro de téléphone doit comporter 10 chiffres ou commencer par +.")]
    Phone,
    #[error("Pas plus de {0} prénoms de naissance.")]
    TooManyFirstNames(usize),
}

/// The INS identity status (référentiel national d'identitovigilance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityStatus {
    /// Provisoire: not checked against an identity document nor the INSi teleservice.
    #[serde(rename = "PROV")]
    Provisional,
    /// Récupérée: INS retrieved from the teleservice, identity document not checked.
    #[serde(rename = "RECUP")]
    Retrieved,
    /// Validée: checked against an identity document, INS not retrieved.
    #[serde(rename = "VALI")]
    Validated,
    /// Qualifiée: both.
    #[serde(rename = "QUAL")]
    Qualified,
}

impl IdentityStatus {
    pub fn parse(text: &str) -> Result<Self, PatientError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "PROV" => Ok(Self::Provisional),
            "RECUP" => Ok(Self::Retrieved),
            "VALI" => Ok(Self::Validated),
            "QUAL" => Ok(Self::Qualified),
            _ => Err(PatientError::Status),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisional => "PROV",
            Self::Retrieved => "RECUP",
            Self::Validated => "VALI",
            Self::Qualified => "QUAL",
        }
    }
}

/// Sex as the INS records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sex {
    #[serde(rename = "F")]
    Female,
    #[serde(rename = "M")]
    Male,
    #[serde(rename = "I")]
    Undetermined,
}

impl Sex {
    pub fn parse(text: &str) -> Result<Self, PatientError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "F" => Ok(Self::Female),
            "M" => Ok(Self::Male),
            "I" => Ok(Self::Undetermined),
            _ => Err(PatientError::Sex),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Female => "F",
            Self::Male => "M",
            Self::Undetermined => "I",
        }
    }
}

/// A date of birth (year, month, day), a real date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BirthDate {
    year: i32,
    month: u8,
    day: u8,
}

impl BirthDate {
    /// Parses `AAAA-MM-JJ`; refuses impossible dates and dates after `today`.
    pub fn parse(text: &str, today: Option<BirthDate>) -> Result<Self, PatientError> {
        let parts: Vec<&str> = text.trim().split('-').collect();
        let [year, month, day] = parts.as_slice() else {
            return Err(PatientError::BirthDate);
        };
        if year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return Err(PatientError::BirthDate);
        }
        let year: i32 = year.parse().map_err(|_| PatientError::BirthDate)?;
        let month: u8 = month.parse().map_err(|_| PatientError::BirthDate)?;
        let day: u8 = day.parse().map_err(|_| PatientError::BirthDate)?;
        let month_enum = time::Month::try_from(month).map_err(|_| PatientError::BirthDate)?;
        time::Date::from_calendar_date(year, month_enum, day)
            .map_err(|_| PatientError::BirthDate)?;
        let date = Self { year, month, day };
        if year < 1850 || today.is_some_and(|today| date > today) {
            return Err(PatientError::BirthDate);
        }
        Ok(date)
    }

    /// The date of a Unix time in milliseconds (UTC).
    pub fn of_unix_millis(millis: i64) -> Option<Self> {
        let date = time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
            .ok()?
            .date();
        Some(Self {
            year: date.year(),
            month: u8::from(date.month()),
            day: date.day(),
        })
    }
}

impl std::fmt::Display for BirthDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl TryFrom<String> for BirthDate {
    type Error = PatientError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text, None)
    }
}

impl From<BirthDate> for String {
    fn from(date: BirthDate) -> Self {
        date.to_string()
    }
}

/// What a person types to create or change a patient (all text, checked by
/// [`PatientIdentity::check`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientInput {
    pub birth_name: String,
    #[serde(default)]
    pub used_name: String,
    pub birth_first_names: Vec<String>,
    #[serde(default)]
    pub first_name_used: String,
    pub birth_date: String,
    pub sex: String,
    #[serde(default)]
    pub birthplace_insee: String,
    #[serde(default)]
    pub nir: String,
    pub identity_status: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub treating_doctor: String,
    #[serde(default)]
    pub administrative_note: String,
}

/// A checked patient identity, contact and administrative data: what is sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientIdentity {
    pub birth_name: String,
    pub used_name: Option<String>,
    pub birth_first_names: Vec<String>,
    pub first_name_used: Option<String>,
    pub birth_date: BirthDate,
    pub sex: Sex,
    pub birthplace_insee: Option<String>,
    /// NIR or NIA (the INS matricule), 15 characters with its key.
    pub nir: Option<String>,
    pub identity_status: IdentityStatus,
    pub address: Option<String>,
    pub phones: Vec<String>,
    pub email: Option<String>,
    pub treating_doctor: Option<String>,
    pub administrative_note: Option<String>,
}

const NAME_MAX: usize = 100;
const FIRST_NAMES_MAX: usize = 10;

fn name(field: &'static str, text: &str) -> Result<String, PatientError> {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return Err(PatientError::Missing(field));
    }
    if collapsed.chars().count() > NAME_MAX {
        return Err(PatientError::TooLong {
            field,
            max: NAME_MAX,
        });
    }
    if !collapsed
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’'))
    {
        return Err(PatientError::NameCharacters(field));
    }
    Ok(collapsed)
}

fn optional_name(field: &'static str, text: &str) -> Result<Option<String>, PatientError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        name(field, text).map(Some)
    }
}

fn optional_text(
    field: &'static str,
    text: &str,
    max: usize,
    multiline: bool,
) -> Result<Option<String>, PatientError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(PatientError::TooLong { field, max });
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !(multiline && c == '\n'))
    {
        return Err(PatientError::ControlCharacters(field));
    }
    Ok(Some(trimmed.to_owned()))
}

fn phone(text: &str) -> Result<String, PatientError> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    let valid = if let Some(rest) = compact.strip_prefix('+') {
        (8..=15).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit())
    } else {
        compact.len() == 10 && compact.bytes().all(|b| b.is_ascii_digit())
    };
    if valid {
        Ok(compact)
    } else {
        Err(PatientError::Phone)
    }
}

impl PatientIdentity {
    /// Checks every field of `input`; `today` bounds the birth date.
    pub fn check(input: &PatientInput, today: Option<BirthDate>) -> Result<Self, PatientError> {
        if input.birth_first_names.len() > FIRST_NAMES_MAX {
            return Err(PatientError::TooManyFirstNames(FIRST_NAMES_MAX));
        }
        let birth_first_names = input
            .birth_first_names
            .iter()
            .filter(|first| !first.trim().is_empty())
            .map(|first| name("prénoms de naissance", first))
            .collect::<Result<Vec<_>, _>>()?;
        if birth_first_names.is_empty() {
            return Err(PatientError::Missing("prénoms de naissance"));
        }
        let nir = if input.nir.trim().is_empty() {
            None
        } else {
            Some(
                Nir::parse(&input.nir)
                    .map_err(|error| PatientError::Nir(error.to_string()))?
                    .as_str()
                    .to_owned(),
            )
        };
        let identity_status = IdentityStatus::parse(&input.identity_status)?;
        if matches!(
            identity_status,
            IdentityStatus::Retrieved | IdentityStatus::Qualified
        ) && nir.is_none()
        {
            return Err(PatientError::StatusNeedsIns);
        }
        let birthplace_insee = {
            let code = input.birthplace_insee.trim().to_ascii_uppercase();
            if code.is_empty() {
                None
            } else if code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Some(code)
            } else {
                return Err(PatientError::Birthplace);
            }
        };
        let email = match optional_text("e-mail", &input.email, 254, false)? {
            Some(email) if !email.contains('@') || email.contains(' ') => {
                return Err(PatientError::Email);
            }
            other => other,
        };
        Ok(Self {
            birth_name: name("nom de naissance", &input.birth_name)?,
            used_name: optional_name("nom utilisé", &input.used_name)?,
            birth_first_names,
            first_name_used: optional_name("prénom utilisé", &input.first_name_used)?,
            birth_date: BirthDate::parse(&input.birth_date, today)?,
            sex: Sex::parse(&input.sex)?,
            birthplace_insee,
            nir,
            identity_status,
            address: optional_text("adresse", &input.address, 300, true)?,
            phones: input
                .phones
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| phone(p))
                .collect::<Result<_, _>>()?,
            email,
            treating_doctor: optional_text("médecin traitant", &input.treating_doctor, 200, false)?,
            administrative_note: optional_text(
                "note administrative",
                &input.administrative_note,
                500,
                true,
            )?,
        })
    }
}

/// A name as search indexes see it: upper case, accents folded, ligatures spelled out,
/// spaces, hyphens and apostrophes collapsed to one space ("Le Goff-Hélias" and
/// "LE GOFF HELIAS" are the same).
pub fn normalize_name(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        match fold(c) {
            Folded::One(c) => folded.push(c),
            Folded::Two(a, b) => {
                folded.push(a);
                folded.push(b);
            }
            Folded::Separator => folded.push(' '),
        }
    }
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

enum Folded {
    One(char),
    Two(char, char),
    Separator,
}

fn fold(c: char) -> Folded {
    let upper = c.to_uppercase().next().unwrap_or(c);
    let base = match upper {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'Ç' => 'C',
        'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'Ñ' => 'N',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
        'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'Ý' | 'Ÿ' => 'Y',
        'Œ' => return Folded::Two('O', 'E'),
        'Æ' => return Folded::Two('A', 'E'),
        'ß' => return Folded::Two('S', 'S'),
        '-' | '\'' | '’' | '‐' | '–' => return Folded::Separator,
        other if other.is_whitespace() => return Folded::Separator,
        other => other,
    };
    Folded::One(base)
}

/// The first three letters of a normalised name (spaces ignored), if it has three.
pub fn name_prefix(normalized: &str) -> Option<String> {
    let letters: String = normalized.chars().filter(|c| *c != ' ').take(3).collect();
    (letters.chars().count() == 3).then_some(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PatientInput {
        PatientInput {
            birth_name: "Le Goff-Hélias".into(),
            birth_first_names: vec!["Anne".into(), "Marie".into()],
            birth_date: "1950-02-28".into(),
            sex: "f".into(),
            identity_status: "prov".into(),
            phones: vec!["06 12 34 56 78".into()],
            ..PatientInput::default()
        }
    }

    #[test]
    fn an_identity_is_checked_field_by_field() {
        let identity = PatientIdentity::check(&input(), None).expect("valid");
        assert_eq!(identity.birth_name, "Le Goff-Hélias");
        assert_eq!(identity.sex, Sex::Female);
        assert_eq!(identity.phones, vec!["0612345678".to_owned()]);
        for (change, expected) in [
            (
                PatientInput {
                    birth_date: "1950-02-30".into(),
                    ..input()
                },
                PatientError::BirthDate,
            ),
            (
                PatientInput {
                    birth_name: "Dupont2".into(),
                    ..input()
                },
                PatientError::NameCharacters("nom de naissance"),
            ),
            (
                PatientInput {
                    identity_status: "QUAL".into(),
                    ..input()
                },
                PatientError::StatusNeedsIns,
            ),
            (
                PatientInput {
                    birth_first_names: vec![" ".into()],
                    ..input()
                },
                PatientError::Missing("prénoms de naissance"),
            ),
        ] {
            assert_eq!(PatientIdentity::check(&change, None), Err(expected));
        }
        let today = BirthDate::parse("2026-11-23", None).expect("date");
        assert_eq!(
            BirthDate::parse("2026-11-24", Some(today)),
            Err(PatientError::BirthDate)
        );
    }

    #[test]
    fn names_normalise_for_search() {
        assert_eq!(normalize_name("Le Goff-Hélias"), "LE GOFF HELIAS");
        assert_eq!(normalize_name("  le   goff - helias "), "LE GOFF HELIAS");
        assert_eq!(normalize_name("Œuvray d’Ærø"), "OEUVRAY D AERO");
        assert_eq!(name_prefix("LE GOFF"), Some("LEG".into()));
        assert_eq!(name_prefix("LI"), None);
    }
}
