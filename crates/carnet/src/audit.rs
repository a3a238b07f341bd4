//! `carnet audit verify` and `carnet audit checkpoint`.

use carnet_audit::ChainId;
use carnet_domain::PracticeId;

use crate::checkpoint_file;
use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

/// Exit code when the audit trail is damaged.
pub const EXIT_DAMAGED: u8 = 2;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verifies every chain (hash links, sequence, signed checkpoints from the database
    /// and the checkpoint file). Exit 0 when intact, 2 with the first damaged sequence
    /// number otherwise.
    Verify {
        /// Only this practice's chain.
        #[arg(long)]
        practice: Option<PracticeId>,
    },
    /// Signs a checkpoint of every chain that moved since its last one, now.
    Checkpoint,
}

pub async fn run(config: &Config, command: &AuditCommand) -> Result<(), CliError> {
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let result = match command {
        AuditCommand::Verify { practice } => verify(config, &instance, *practice).await,
        AuditCommand::Checkpoint => checkpoint(config, &instance, true).await.map(|count| {
            say(&format!("{count} point(s) de contrôle signé(s)."));
        }),
    };
    instance.store.close().await;
    result
}

/// Signs due checkpoints (all moved chains when `force`) and appends them to the file.
pub async fn checkpoint(
    config: &Config,
    instance: &instance::Instance,
    force: bool,
) -> Result<usize, CliError> {
    let created = instance
        .services
        .checkpoint_chains(
            &instance.audit_signer,
            config.audit_checkpoint_entries.into(),
            i64::from(config.audit_checkpoint_minutes) * 60_000,
            force,
        )
        .await
        .map_err(|error| {
            CliError::failure(format!(
                "points de contrôle impossibles ({})",
                error.describe_without_secrets()
            ))
        })?;
    checkpoint_file::append(&config.audit_checkpoint_path(), &created).map_err(|error| {
        CliError::failure(format!(
            "écriture de {} impossible ({error})",
            config.audit_checkpoint_path().display()
        ))
    })?;
    if !config.audit_checkpoint_webhook.is_empty() && !created.is_empty() {
        let public_key = instance.audit_signer.verifier().public_key().to_vec();
        if let Err(error) =
            send_to_webhook(&config.audit_checkpoint_webhook, &created, &public_key).await
        {
            // The checkpoints are in the database and the file: log, never fail the caller.
            tracing::warn!(%error, "audit checkpoint webhook failed");
        }
    }
    Ok(created.len())
}

async fn verify(
    config: &Config,
    instance: &instance::Instance,
    practice: Option<PracticeId>,
) -> Result<(), CliError> {
    let external =
        checkpoint_file::read(&config.audit_checkpoint_path()).map_err(|message| CliError {
            code: EXIT_DAMAGED,
            message,
        })?;
    let verifier = instance.audit_signer.verifier();
    let only = practice.map(ChainId::Practice);
    let reports = instance
        .services
        .verify_audit(&verifier, &external, only)
        .await
        .map_err(|error| {
            CliError::failure(format!(
                "lecture du journal impossible ({})",
                error.describe_without_secrets()
            ))
        })?;
    let mut first_damage = None;
    for report in &reports {
        match &report.result {
            Ok(intact) => say(&format!(
                "intact   {}  {} entrée(s), {} point(s) de contrôle",
                report.chain, intact.entries, intact.checkpoints_checked
            )),
            Err(damage) => {
                say(&format!("ALTÉRÉ   {damage}"));
                first_damage.get_or_insert_with(|| damage.to_string());
            }
        }
    }
    if reports.is_empty() {
        say("Aucune chaîne à vérifier.");
    }
    match first_damage {
        None => Ok(()),
        Some(damage) => Err(CliError {
            code: EXIT_DAMAGED,
            message: format!("journal d'audit altéré : {damage}"),
        }),
    }
}

/// POSTs checkpoints as JSON to the configured witness.
async fn send_to_webhook(
    url: &str,
    checkpoints: &[carnet_audit::Checkpoint],
    public_key: &[u8],
) -> Result<(), String> {
    let body = serde_json::json!({
        "public_key": carnet_audit::hex(public_key),
        "checkpoints": checkpoints.iter().map(|checkpoint| serde_json::json!({
            "chain": checkpoint.chain.to_string(),
            "seq": checkpoint.seq,
            "head_hash": carnet_audit::hex(&checkpoint.head_hash),
            "at": checkpoint.at.to_rfc3339(),
            "at_unix_millis": checkpoint.at.unix_millis(),
            "signature": carnet_audit::hex(&checkpoint.signature),
            "line": checkpoint_file::format_line(checkpoint),
        })).collect::<Vec<_>>(),
    });
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|error| error.to_string())?;
    let response = client
        .post(url)
        .json(&body)
        .send()
        .await
        // Never print the URL: it may carry a token.
        .map_err(|error| error.without_url().to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the witness answered {}", response.status()))
    }
}
