//! `carnet keys …`: key rotation and the recovery kit.
//!
//! Practice key rotation (ADR 0009): a new version of the practice's key is made at once;
//! the patients move to it batch by batch here, and — if this command is interrupted — by
//! the server's background job, which resumes where it stopped.
//!
//! Instance key rotation (ADR 0011): a new instance key re-wraps the instance root in one
//! transaction; the key file is replaced after (a crash between the two is finished at the
//! next start). Running servers are not interrupted.

use carnet_domain::PracticeId;
use carnet_service::{Caller, ServiceError};

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Makes a new version of a practice's key and moves every patient to it (safe to
    /// interrupt: the server finishes the move); or, with --instance, replaces the
    /// instance key (the key file is rewritten; print a new recovery kit after).
    Rotate {
        #[arg(
            long,
            required_unless_present = "instance",
            conflicts_with = "instance"
        )]
        practice: Option<PracticeId>,
        /// Replace the instance key instead of a practice key.
        #[arg(long)]
        instance: bool,
        /// Patients moved per transaction.
        #[arg(long, default_value_t = carnet_service::REENCRYPTION_BATCH)]
        batch_size: i64,
        /// Stop after this many batches (a short maintenance window); the server
        /// finishes the move in the background.
        #[arg(long)]
        batches: Option<u64>,
    },
    /// Writes the recovery kit: a page to print with what recovers this instance (the
    /// instance key, the audit key) and how to keep it. The file is readable by its owner
    /// only; print it, then delete it.
    RecoveryKit {
        /// Where to write the page (refused if the file exists).
        #[arg(long, default_value = "kit-de-secours-carnet.html")]
        output: std::path::PathBuf,
    },
}

pub async fn run(config: &Config, command: &KeysCommand) -> Result<(), CliError> {
    let (practice, batch_size, batches) = match command {
        KeysCommand::Rotate {
            practice: Some(practice),
            batch_size,
            batches,
            ..
        } => (practice, batch_size, batches),
        KeysCommand::Rotate { practice: None, .. } => return rotate_instance_key(config).await,
        KeysCommand::RecoveryKit { output } => return recovery_kit(config, output).await,
    };
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

/// Replaces the instance key: the next key is written beside the key file first, the
/// database switches to it in one transaction, then it replaces the key file.
async fn rotate_instance_key(config: &Config) -> Result<(), CliError> {
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let key_path = config.instance_key_path();
    let next_path = instance::next_key_path(&key_path);
    let result = async {
        let current =
            carnet_crypto::InstanceKey::from_material(instance::read_key_file(&key_path)?);
        let next =
            carnet_crypto::InstanceKey::from_material(instance::create_key_file(&next_path)?);
        let switched = instance
            .services
            .rotate_instance_key(&Caller::operator(), &current, &next)
            .await;
        if let Err(error) = switched {
            let _ = std::fs::remove_file(&next_path);
            return Err(match error {
                ServiceError::Conflict => CliError::refusal(
                    "la clé de l'instance a changé pendant l'opération : relancez la commande",
                ),
                other => CliError::failure(other.to_string()),
            });
        }
        std::fs::rename(&next_path, &key_path)
            .and_then(|()| instance::sync_parent(&key_path))
            .map_err(|error| {
                CliError::failure(format!(
                    "la base utilise la nouvelle clé, mais {} n'a pas pu remplacer {} ({error}) : \
                     le prochain démarrage terminera le remplacement",
                    next_path.display(),
                    key_path.display()
                ))
            })?;
        say(&format!(
            "Nouvelle clé de l'instance écrite dans {}. Imprimez dès maintenant un nouveau kit \
             de secours (`carnet keys recovery-kit`) et copiez cette clé sur les autres nœuds \
             avant leur prochain démarrage. Gardez l'ancien kit tant que vous gardez des \
             sauvegardes d'avant aujourd'hui : elles s'ouvrent avec l'ancienne clé.",
            key_path.display()
        ));
        Ok(())
    }
    .await;
    instance.store.close().await;
    result
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

/// 64 hexadecimal characters in groups of 4, to copy by hand without error.
fn grouped(hex: &str) -> String {
    hex.trim()
        .as_bytes()
        .chunks(4)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn recovery_kit(config: &Config, output: &std::path::Path) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    // Opening the instance checks that the key is this database's.
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let instance_key = instance::read_key_file(&config.instance_key_path())?;
    let audit_key = instance::read_key_file(&config.audit_key_path())?;
    let backup_password = crate::backup::password(config, true)?;
    let targets = match config.backup_targets.as_slice() {
        [] => "aucune cible configurée pour l'instant".to_owned(),
        targets => targets.join(", "),
    };
    let recorded = instance
        .services
        .record_recovery_kit(&Caller::operator())
        .await;
    instance.store.close().await;
    recorded.map_err(|error| CliError::failure(error.to_string()))?;
    let page = format!(
        include_str!("recovery_kit.html"),
        date = carnet_domain::Clock::now(&crate::instance::SystemClock).to_french_text(),
        data_dir = html_escape(&config.data_dir.display().to_string()),
        instance_key = grouped(&instance_key.to_file_text()),
        audit_key = grouped(&audit_key.to_file_text()),
        backup_password = grouped(backup_password.expose()),
        targets = html_escape(&targets),
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .map_err(|error| {
            CliError::refusal(format!(
                "impossible de créer {} ({error}) : choisissez un fichier qui n'existe pas",
                output.display()
            ))
        })?;
    file.write_all(page.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| CliError::failure(format!("écriture impossible ({error})")))?;
    say(&format!(
        "Kit de secours écrit dans {} (lisible par vous seul). Imprimez-le en deux \
         exemplaires, rangez-les comme indiqué, puis supprimez ce fichier.",
        output.display()
    ));
    Ok(())
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
