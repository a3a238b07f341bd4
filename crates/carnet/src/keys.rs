//! `carnet keys …`: practice key rotation (ADR 0009). A new version of the practice's key
//! is made at once; the patients move to it batch by batch here, and — if this command
//! is interrupted — by the server's background job, which resumes where it stopped.

use carnet_domain::PracticeId;
use carnet_service::{Caller, ServiceError};

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Makes a new version of a practice's key and moves every patient to it (safe to
    /// interrupt: the server finishes the move).
    Rotate {
        #[arg(long)]
        practice: PracticeId,
        /// Patients moved per transaction.
        #[arg(long, default_value_t = carnet_service::REENCRYPTION_BATCH)]
        batch_size: i64,
        /// Stop after this many batches (a short maintenance window); the server
        /// finishes the move in the background.
        #[arg(long)]
        batches: Option<u64>,
    },
}

pub async fn run(config: &Config, command: &KeysCommand) -> Result<(), CliError> {
    let KeysCommand::Rotate {
        practice,
        batch_size,
        batches,
    } = command;
    if *batch_size < 1 {
        return Err(CliError::refusal("--batch-size doit valoir au moins 1"));
    }
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let services = &instance.services;
    let caller = Caller::operator();
    let result = async {
        let version = services.rotate_practice_key(&caller, *practice).await?;
        say(&format!("Nouvelle clé du cabinet : version {version}."));
        let mut moved = 0;
        let mut done_batches = 0;
        loop {
            if batches.is_some_and(|limit| done_batches >= limit) {
                say(&format!(
                    "Arrêt demandé après {done_batches} lot(s) : {moved} patient(s) passé(s) à \
                     la version {version} ; le serveur termine le reste."
                ));
                return Ok(());
            }
            let batch = services
                .reencrypt_practice(&caller, *practice, *batch_size)
                .await?;
            if batch == 0 {
                break;
            }
            moved += batch;
            done_batches += 1;
            say(&format!("{moved} patient(s) passé(s) à la nouvelle clé…"));
        }
        say(&format!(
            "Rotation terminée : {moved} patient(s) passé(s) à la version {version}."
        ));
        Ok::<_, ServiceError>(())
    }
    .await;
    instance.store.close().await;
    result.map_err(|error| match error {
        ServiceError::NotFound | ServiceError::Forbidden => CliError::refusal(error.to_string()),
        other => CliError::failure(other.to_string()),
    })
}

/// For the server: moves the patients of every practice left behind by an interrupted
/// rotation. Returns how many moved.
pub async fn resume_reencryption(
    services: &carnet_service::Services,
) -> Result<usize, ServiceError> {
    let caller = Caller::operator();
    let mut moved = 0;
    for practice in services.practices_to_reencrypt().await? {
        loop {
            let batch = services
                .reencrypt_practice(&caller, practice, carnet_service::REENCRYPTION_BATCH)
                .await?;
            if batch == 0 {
                break;
            }
            moved += batch;
        }
    }
    Ok(moved)
}
