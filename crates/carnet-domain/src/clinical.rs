//! Clinical content of a care record: care episodes, care acts (with vital signs),
//! notes ("transmissions"), allergies, current treatments, history. Checked when built
//! (lengths, dates, NGAP codes, plausible vital signs with their units); serialised only
//! to be sealed.

use serde::{Deserialize, Serialize};

/// Why clinical content was refused (in French, naming the field).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClinicalError {
    #[error("Le champ « {0} » est obligatoire.")]
    Missing(&'static str),
    #[error("Le champ « {field} » ne doit pas dépasser {max} caractères.")]
    TooLong { field: &'static str, max: usize },
    #[error("Le champ « {0} » contient des caractères de contrôle.")]
    ControlCharacters(&'static str),
    #[error("Le champ « {0} » doit être une date AAAA-MM-JJ réelle.")]
    Date(&'static str),
    #[error("Le champ « {0} » doit être une date et une heure AAAA-MM-JJTHH:MM réelles.")]
    DateTime(&'static str),
    #[error("La fin de l'épisode précède son début.")]
    EpisodeEnd,
    #[error("Le lieu est « domicile » ou « cabinet ».")]
    Place,
    #[error(
        "Code NGAP invalide : une lettre-clé et un coefficient, par exemple « AMI 1 » ou « AIS 3 »."
    )]
    Ngap,
    #[error("{name} hors des valeurs plausibles ({min} à {max} {unit}).")]
    Implausible {
        name: &'static str,
        min: f64,
        max: f64,
        unit: &'static str,
    },
    #[error("La pression systolique doit dépasser la diastolique.")]
    BloodPressure,
    #[error("Une tension se saisit avec ses deux valeurs (systolique et diastolique).")]
    BloodPressureHalf,
}

/// Where care happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarePlace {
    Home,
    Practice,
}

/// Vital signs taken during a care act. Units are fixed: °C, mmHg, beats per minute, %,
/// g/L, kg; pain on the 0–10 numeric scale.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vitals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_celsius: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systolic_mmhg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diastolic_mmhg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulse_bpm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spo2_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glycaemia_g_per_l: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pain_0_10: Option<u8>,
}

/// The plausibility bounds: (name, value, min, max, unit).
fn bounds(vitals: &Vitals) -> [(&'static str, Option<f64>, f64, f64, &'static str); 8] {
    [
        ("Température", vitals.temperature_celsius, 30.0, 45.0, "°C"),
        (
            "Pression systolique",
            vitals.systolic_mmhg,
            40.0,
            300.0,
            "mmHg",
        ),
        (
            "Pression diastolique",
            vitals.diastolic_mmhg,
            20.0,
            200.0,
            "mmHg",
        ),
        ("Pouls", vitals.pulse_bpm, 20.0, 250.0, "battements/min"),
        ("SpO2", vitals.spo2_percent, 50.0, 100.0, "%"),
        ("Glycémie", vitals.glycaemia_g_per_l, 0.1, 8.0, "g/L"),
        ("Poids", vitals.weight_kg, 0.3, 400.0, "kg"),
        ("Douleur", vitals.pain_0_10.map(f64::from), 0.0, 10.0, "/10"),
    ]
}

impl Vitals {
    pub fn check(&self) -> Result<(), ClinicalError> {
        for (name, value, min, max, unit) in bounds(self) {
            if let Some(value) = value
                && (!value.is_finite() || value < min || value > max)
            {
                return Err(ClinicalError::Implausible {
                    name,
                    min,
                    max,
                    unit,
                });
            }
        }
        match (self.systolic_mmhg, self.diastolic_mmhg) {
            (Some(systolic), Some(diastolic)) if systolic <= diastolic => {
                Err(ClinicalError::BloodPressure)
            }
            (Some(_), None) | (None, Some(_)) => Err(ClinicalError::BloodPressureHalf),
            _ => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        bounds(self).iter().all(|(_, value, ..)| value.is_none())
    }
}

/// One piece of clinical content. The kind never changes across revisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClinicalContent {
    /// A care episode: a prescription and the care it orders.
    Episode {
        prescription_reference: String,
        prescriber: String,
        start_date: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_date: Option<String>,
        place: CarePlace,
    },
    /// A care act, with optional vital signs.
    Act {
        /// AAAA-MM-JJTHH:MM, local time.
        performed_at: String,
        performer: String,
        label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ngap_code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observation: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vitals: Option<Vitals>,
    },
    /// A note ("transmission") for the team.
    Note { text: String },
    Allergy {
        substance: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reaction: Option<String>,
    },
    Treatment {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dosage: Option<String>,
    },
    /// Medical or surgical history.
    History { text: String },
}

fn text(field: &'static str, value: &str, max: usize) -> Result<(), ClinicalError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ClinicalError::Missing(field));
    }
    if trimmed.chars().count() > max {
        return Err(ClinicalError::TooLong { field, max });
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ClinicalError::ControlCharacters(field));
    }
    Ok(())
}

fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), ClinicalError> {
    match value {
        Some(value) if !value.trim().is_empty() => text(field, value, max),
        _ => Ok(()),
    }
}

fn date(field: &'static str, value: &str) -> Result<time::Date, ClinicalError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value.trim(), &format).map_err(|_| ClinicalError::Date(field))
}

fn date_time(field: &'static str, value: &str) -> Result<time::PrimitiveDateTime, ClinicalError> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(value.trim(), &format)
        .map_err(|_| ClinicalError::DateTime(field))
}

/// An NGAP code: a key letter group (2 to 4 capitals) and a coefficient ("AMI 1",
/// "AIS 3", "AMI 4,1" or "AMI 4.1").
fn ngap(code: &str) -> Result<(), ClinicalError> {
    let Some((letters, coefficient)) = code.trim().split_once(' ') else {
        return Err(ClinicalError::Ngap);
    };
    let letters_ok =
        (2..=4).contains(&letters.len()) && letters.bytes().all(|b| b.is_ascii_uppercase());
    let coefficient = coefficient.trim().replace(',', ".");
    let coefficient_ok = !coefficient.is_empty()
        && coefficient.len() <= 6
        && coefficient.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && coefficient.parse::<f64>().is_ok_and(|value| value > 0.0);
    if letters_ok && coefficient_ok {
        Ok(())
    } else {
        Err(ClinicalError::Ngap)
    }
}

impl ClinicalContent {
    /// The kind, as stored in clear beside the sealed content.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Episode { .. } => "episode",
            Self::Act { .. } => "act",
            Self::Note { .. } => "note",
            Self::Allergy { .. } => "allergy",
            Self::Treatment { .. } => "treatment",
            Self::History { .. } => "history",
        }
    }

    /// Checks every field.
    pub fn check(&self) -> Result<(), ClinicalError> {
        match self {
            Self::Episode {
                prescription_reference,
                prescriber,
                start_date,
                end_date,
                ..
            } => {
                text("référence de la prescription", prescription_reference, 100)?;
                text("prescripteur", prescriber, 200)?;
                let start = date("début", start_date)?;
                if let Some(end) = end_date.as_deref().filter(|end| !end.trim().is_empty())
                    && date("fin", end)? < start
                {
                    return Err(ClinicalError::EpisodeEnd);
                }
                Ok(())
            }
            Self::Act {
                performed_at,
                performer,
                label,
                ngap_code,
                observation,
                vitals,
            } => {
                date_time("date et heure", performed_at)?;
                text("intervenant", performer, 200)?;
                text("acte", label, 200)?;
                if let Some(code) = ngap_code.as_deref().filter(|code| !code.trim().is_empty()) {
                    ngap(code)?;
                }
                optional_text("observation", observation.as_deref(), 5000)?;
                vitals.as_ref().map_or(Ok(()), Vitals::check)
            }
            Self::Note { text: note } => text("transmission", note, 5000),
            Self::Allergy {
                substance,
                reaction,
            } => {
                text("allergène", substance, 200)?;
                optional_text("réaction", reaction.as_deref(), 500)
            }
            Self::Treatment { name, dosage } => {
                text("traitement", name, 200)?;
                optional_text("posologie", dosage.as_deref(), 500)
            }
            Self::History { text: history } => text("antécédent", history, 5000),
        }
    }

    /// For a care act: the day it was performed (for the retention date).
    pub fn act_date(&self) -> Option<time::Date> {
        match self {
            Self::Act { performed_at, .. } => date_time("date et heure", performed_at)
                .ok()
                .map(time::PrimitiveDateTime::date),
            _ => None,
        }
    }

    /// The moment that orders the timeline (acts: when performed; episodes: start).
    pub fn sort_key(&self) -> Option<String> {
        match self {
            Self::Act { performed_at, .. } => Some(performed_at.trim().to_owned()),
            Self::Episode { start_date, .. } => Some(format!("{}T00:00", start_date.trim())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(vitals: Vitals, code: &str) -> ClinicalContent {
        ClinicalContent::Act {
            performed_at: "2026-11-23T08:30".into(),
            performer: "Anne Martin".into(),
            label: "Injection sous-cutanée".into(),
            ngap_code: Some(code.into()),
            observation: None,
            vitals: Some(vitals),
        }
    }

    #[test]
    fn acts_check_their_code_and_vital_signs() {
        let good = Vitals {
            temperature_celsius: Some(37.2),
            systolic_mmhg: Some(130.0),
            diastolic_mmhg: Some(80.0),
            pain_0_10: Some(3),
            ..Vitals::default()
        };
        assert_eq!(act(good.clone(), "AMI 1").check(), Ok(()));
        assert_eq!(act(good.clone(), "AMI 4,1").check(), Ok(()));
        assert_eq!(act(good.clone(), "ami 1").check(), Err(ClinicalError::Ngap));
        assert_eq!(act(good.clone(), "AMI").check(), Err(ClinicalError::Ngap));
        let fever = Vitals {
            temperature_celsius: Some(73.0),
            ..Vitals::default()
        };
        assert!(matches!(
            act(fever, "AMI 1").check(),
            Err(ClinicalError::Implausible { unit: "°C", .. })
        ));
        let inverted = Vitals {
            systolic_mmhg: Some(70.0),
            diastolic_mmhg: Some(90.0),
            ..Vitals::default()
        };
        assert_eq!(
            act(inverted, "AMI 1").check(),
            Err(ClinicalError::BloodPressure)
        );
        let pain = Vitals {
            pain_0_10: Some(11),
            ..Vitals::default()
        };
        assert!(matches!(
            act(pain, "AMI 1").check(),
            Err(ClinicalError::Implausible { unit: "/10", .. })
        ));
        assert_eq!(
            act(good, "AMI 1").act_date().map(|date| date.to_string()),
            Some("2026-11-23".into())
        );
    }

    #[test]
    fn episodes_check_their_dates() {
        let episode = |end: &str| ClinicalContent::Episode {
            prescription_reference: "ORD-1".into(),
            prescriber: "Dr Durand".into(),
            start_date: "2026-11-01".into(),
            end_date: Some(end.into()),
            place: CarePlace::Home,
        };
        assert_eq!(episode("2026-11-30").check(), Ok(()));
        assert_eq!(
            episode("2026-10-30").check(),
            Err(ClinicalError::EpisodeEnd)
        );
        assert_eq!(
            episode("2026-11-31").check(),
            Err(ClinicalError::Date("fin"))
        );
    }
}
