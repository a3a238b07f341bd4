//! Reading patients from another software's export: CSV with documented columns, or a
//! FHIR R4 `Bundle` of `Patient` resources (FR Core). Pure: text in, checked identities
//! (or the list of every bad row, with its line or entry and the reason) out.

use serde_json::Value;

use crate::{PatientIdentity, PatientInput};

/// The CSV columns, in this order, with a header line naming them (`;` or `,` between
/// fields, double quotes around fields that contain one).
pub const CSV_COLUMNS: [&str; 14] = [
    "nom_naissance",
    "nom_utilise",
    "prenoms_naissance",
    "prenom_utilise",
    "date_naissance",
    "sexe",
    "code_insee_naissance",
    "matricule_ins",
    "statut_identite",
    "adresse",
    "telephone",
    "email",
    "medecin_traitant",
    "note",
];

/// FR Core identifier systems of the INS matricule.
const INS_NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
const INS_NIA: &str = "urn:oid:1.2.250.1.213.1.4.9";

/// One refused row: where ("ligne 4", "entrée 2") and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportProblem {
    pub location: String,
    pub reason: String,
}

/// Splits CSV text into records of fields (RFC 4180 quoting, `separator` between fields),
/// each with its first line number.
fn csv_records(text: &str, separator: char) -> Result<Vec<(usize, Vec<String>)>, ImportProblem> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, '\n') => {
                line += 1;
                field.push('\n');
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, c) if c == separator => fields.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push((record_line, std::mem::take(&mut fields)));
                line += 1;
                record_line = line;
            }
            (_, other) => field.push(other),
        }
    }
    if quoted {
        return Err(ImportProblem {
            location: format!("ligne {record_line}"),
            reason: "guillemet ouvert jamais refermé".into(),
        });
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records
        .into_iter()
        .filter(|(_, fields)| !(fields.len() == 1 && fields[0].trim().is_empty()))
        .collect())
}

/// A date typed `AAAA-MM-JJ` or `JJ/MM/AAAA`, as `AAAA-MM-JJ`.
fn iso_date(text: &str) -> String {
    let text = text.trim();
    match text.split('/').collect::<Vec<_>>().as_slice() {
        [day, month, year] if year.len() == 4 => format!("{year}-{month:0>2}-{day:0>2}"),
        _ => text.to_owned(),
    }
}

/// Reads a CSV export: every row checked; either all identities, or every problem.
pub fn patients_from_csv(
    text: &str,
    today: Option<crate::BirthDate>,
) -> Result<Vec<PatientIdentity>, Vec<ImportProblem>> {
    let text = text.trim_start_matches('\u{feff}');
    let header = text.lines().next().unwrap_or_default();
    let separator = if header.contains(';') { ';' } else { ',' };
    let records = csv_records(text, separator).map_err(|problem| vec![problem])?;
    let Some(((_, names), rows)) = records.split_first() else {
        return Err(vec![ImportProblem {
            location: "ligne 1".into(),
            reason: "fichier vide".into(),
        }]);
    };
    let names: Vec<String> = names
        .iter()
        .map(|name| name.trim().to_lowercase())
        .collect();
    if names != CSV_COLUMNS {
        return Err(vec![ImportProblem {
            location: "ligne 1".into(),
            reason: format!("en-tête attendu : {}", CSV_COLUMNS.join(";")),
        }]);
    }
    let mut identities = Vec::new();
    let mut problems = Vec::new();
    for (line, fields) in rows {
        let location = format!("ligne {line}");
        if fields.len() != CSV_COLUMNS.len() {
            problems.push(ImportProblem {
                location,
                reason: format!("{} champs au lieu de {}", fields.len(), CSV_COLUMNS.len()),
            });
            continue;
        }
        let field = |index: usize| fields[index].trim().to_owned();
        let status = field(8);
        let input = PatientInput {
            birth_name: field(0),
            used_name: field(1),
            birth_first_names: field(2).split_whitespace().map(str::to_owned).collect(),
            first_name_used: field(3),
            birth_date: iso_date(&field(4)),
            sex: field(5),
            birthplace_insee: field(6),
            nir: field(7),
            identity_status: if status.is_empty() {
                "PROV".into()
            } else {
                status
            },
            address: field(9),
            phones: vec![field(10)],
            email: field(11),
            treating_doctor: field(12),
            administrative_note: field(13),
        };
        match PatientIdentity::check(&input, today) {
            Ok(identity) => identities.push(identity),
            Err(error) => problems.push(ImportProblem {
                location,
                reason: error.to_string(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(identities)
    } else {
        Err(problems)
    }
}

fn text_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The identity a FHIR `Patient` resource describes (FR Core).
fn input_of_patient(resource: &Value) -> Result<PatientInput, String> {
    if resource["resourceType"] != "Patient" {
        return Err("ressource autre que Patient".into());
    }
    let names = resource["name"].as_array().cloned().unwrap_or_default();
    let official = names
        .iter()
        .find(|name| name["use"] == "official")
        .or_else(|| names.first())
        .ok_or("aucun nom")?;
    let usual = names.iter().find(|name| name["use"] == "usual");
    let given: Vec<String> = official["given"]
        .as_array()
        .map(|given| given.iter().map(text_of).collect())
        .unwrap_or_default();
    let nir = resource["identifier"]
        .as_array()
        .and_then(|identifiers| {
            identifiers
                .iter()
                .find(|identifier| identifier["system"] == INS_NIR)
                .or_else(|| {
                    identifiers
                        .iter()
                        .find(|identifier| identifier["system"] == INS_NIA)
                })
        })
        .map(|identifier| text_of(&identifier["value"]))
        .unwrap_or_default();
    let sex = match resource["gender"].as_str() {
        Some("female") => "F",
        Some("male") => "M",
        Some("other" | "unknown") => "I",
        _ => "",
    };
    let telecom = resource["telecom"].as_array().cloned().unwrap_or_default();
    let of_system = |system: &str| -> Vec<String> {
        telecom
            .iter()
            .filter(|contact| contact["system"] == system)
            .map(|contact| text_of(&contact["value"]))
            .collect()
    };
    let address = resource["address"]
        .as_array()
        .and_then(|addresses| addresses.first())
        .map(|address| {
            if let Some(text) = address["text"].as_str() {
                return text.to_owned();
            }
            let mut parts: Vec<String> = address["line"]
                .as_array()
                .map(|lines| lines.iter().map(text_of).collect())
                .unwrap_or_default();
            let city = format!(
                "{} {}",
                text_of(&address["postalCode"]),
                text_of(&address["city"])
            );
            if !city.trim().is_empty() {
                parts.push(city.trim().to_owned());
            }
            parts.join(", ")
        })
        .unwrap_or_default();
    Ok(PatientInput {
        birth_name: text_of(&official["family"]),
        used_name: usual
            .map(|name| text_of(&name["family"]))
            .unwrap_or_default(),
        birth_first_names: given,
        first_name_used: String::new(),
        birth_date: text_of(&resource["birthDate"]),
        sex: sex.to_owned(),
        birthplace_insee: String::new(),
        nir,
        // An imported identity is provisional until checked again (identitovigilance).
        identity_status: "PROV".into(),
        address,
        phones: of_system("phone").into_iter().take(2).collect(),
        email: of_system("email").into_iter().next().unwrap_or_default(),
        treating_doctor: String::new(),
        administrative_note: String::new(),
    })
}

/// Reads a FHIR R4 `Bundle` of `Patient`s: every entry checked; either all identities,
/// or every problem (entries counted from 1).
pub fn patients_from_fhir(
    text: &str,
    today: Option<crate::BirthDate>,
) -> Result<Vec<PatientIdentity>, Vec<ImportProblem>> {
    let bundle: Value = serde_json::from_str(text).map_err(|error| {
        vec![ImportProblem {
            location: format!("ligne {}", error.line()),
            reason: "JSON illisible".into(),
        }]
    })?;
    if bundle["resourceType"] != "Bundle" {
        return Err(vec![ImportProblem {
            location: "document".into(),
            reason: "un Bundle FHIR R4 est attendu".into(),
        }]);
    }
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    let mut identities = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let location = format!("entrée {}", index + 1);
        match input_of_patient(&entry["resource"]).and_then(|input| {
            PatientIdentity::check(&input, today).map_err(|error| error.to_string())
        }) {
            Ok(identity) => identities.push(identity),
            Err(reason) => problems.push(ImportProblem { location, reason }),
        }
    }
    if entries.is_empty() {
        problems.push(ImportProblem {
            location: "document".into(),
            reason: "aucune entrée".into(),
        });
    }
    if problems.is_empty() {
        Ok(identities)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "nom_naissance;nom_utilise;prenoms_naissance;prenom_utilise;date_naissance;sexe;code_insee_naissance;matricule_ins;statut_identite;adresse;telephone;email;medecin_traitant;note";

    #[test]
    fn a_csv_export_is_read_with_quotes_and_french_dates() {
        let text = format!(
            "{HEADER}\nDupont;;Jean Paul;;02/01/1950;M;;;;\"12 rue \"\"Haute\"\"; 17000\";0612345678;;;\nMartin;;Anne;;1961-07-14;F;;;PROV;;;;;\n"
        );
        let identities = patients_from_csv(&text, None).expect("valid");
        assert_eq!(identities.len(), 2);
        assert_eq!(identities[0].birth_first_names, vec!["Jean", "Paul"]);
        assert_eq!(identities[0].birth_date.to_string(), "1950-01-02");
        assert_eq!(
            identities[0].address.as_deref(),
            Some("12 rue \"Haute\"; 17000")
        );
    }

    #[test]
    fn every_bad_row_is_named() {
        let text = format!(
            "{HEADER}\nDupont;;Jean;;1950-01-02;M;;;;;;;;\nMartin;;Anne;;1961-02-30;F;;;;;;;;\n;;Paul;;1961-01-01;X;;;;;;;;\n"
        );
        let problems = patients_from_csv(&text, None).expect_err("bad rows");
        assert_eq!(
            problems
                .iter()
                .map(|problem| problem.location.as_str())
                .collect::<Vec<_>>(),
            vec!["ligne 3", "ligne 4"]
        );
        assert!(problems[0].reason.contains("date de naissance"));
    }

    #[test]
    fn a_fhir_bundle_is_read_after_fr_core() {
        let bundle = serde_json::json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": {
                "resourceType": "Patient",
                "identifier": [{"system": INS_NIR, "value": "255081416802538"}],
                "name": [{"use": "official", "family": "Le Goff", "given": ["Anne", "Marie"]},
                         {"use": "usual", "family": "Martin"}],
                "gender": "female", "birthDate": "1955-08-14",
                "telecom": [{"system": "phone", "value": "0612345678"}, {"system": "email", "value": "a@example.fr"}],
                "address": [{"line": ["3 rue des Lilas"], "postalCode": "69003", "city": "Lyon"}]
            }}]
        });
        let identities = patients_from_fhir(&bundle.to_string(), None).expect("valid");
        let anne = &identities[0];
        assert_eq!(anne.birth_name, "Le Goff");
        assert_eq!(anne.used_name.as_deref(), Some("Martin"));
        assert_eq!(anne.nir.as_deref(), Some("255081416802538"));
        assert_eq!(anne.address.as_deref(), Some("3 rue des Lilas, 69003 Lyon"));
        assert_eq!(anne.email.as_deref(), Some("a@example.fr"));
    }
}
