//! `carnet import`: the operator imports the patients of a practice leaving another
//! software (CSV with the documented columns, or a FHIR R4 Bundle). All or nothing; the
//! operator's capability writes and reads nothing back (ADR 0009).

use std::path::PathBuf;

use carnet_domain::PracticeId;
use carnet_service::{Caller, ImportFormat, ServiceError};

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

#[derive(Debug, clap::Args)]
pub struct ImportCommand {
    /// The practice the patients belong to.
    #[arg(long)]
    practice: PracticeId,
    /// csv or fhir (default: from the file's extension, .csv or .json).
    #[arg(long)]
    format: Option<String>,
    /// The file to import.
    file: PathBuf,
}

pub async fn run(config: &Config, command: &ImportCommand) -> Result<(), CliError> {
    let format = match command.format.as_deref().or_else(|| {
        command
            .file
            .extension()
            .and_then(|extension| extension.to_str())
    }) {
        Some("csv") => ImportFormat::Csv,
        Some("fhir" | "json") => ImportFormat::Fhir,
        _ => {
            return Err(CliError::refusal(
                "format inconnu : --format csv ou --format fhir",
            ));
        }
    };
    let text = std::fs::read_to_string(&command.file).map_err(|error| {
        CliError::refusal(format!("{} illisible ({error})", command.file.display()))
    })?;
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let services = &instance.services;
    let result = async {
        let scope = services
            .authorize_operator_import(&Caller::operator(), command.practice)
            .await?;
        services.import_patients(&scope, format, &text).await
    }
    .await;
    instance.store.close().await;
    match result {
        Ok(count) => {
            say(&format!("{count} patient(s) importé(s)."));
            Ok(())
        }
        Err(error @ (ServiceError::Invalid { .. } | ServiceError::NotFound)) => {
            Err(CliError::refusal(error.to_string()))
        }
        Err(other) => Err(CliError::failure(other.to_string())),
    }
}
