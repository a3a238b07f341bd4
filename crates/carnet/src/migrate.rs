//! `carnet migrate`: applies pending migrations without serving.

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

pub async fn run(config: &Config) -> Result<(), CliError> {
    let instance = instance::open(config, OpenMode::CreateIfMissing).await?;
    if let Some(copy) = &instance.pre_migration_copy {
        say(&format!(
            "Copie de la base avant migration : {}",
            copy.display()
        ));
    }
    let status = instance
        .store
        .migration_status()
        .await
        .map_err(|error| CliError::failure(error.describe_without_secrets()))?;
    say(&format!(
        "Base à jour (migrations appliquées : {}).",
        status
            .applied
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    instance.store.close().await;
    Ok(())
}
