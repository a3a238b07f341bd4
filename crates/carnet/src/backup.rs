//! `carnet backup …`, `carnet restore …` and the server's backup job (ADR 0012).
//!
//! A run, on the node holding the `backup` lease: sign a checkpoint of the audit trail,
//! stage the instance (database copy, blobs, checkpoint file, configuration), then for
//! each target: back up, check the structure, apply retention (not on append-only
//! targets); once a week read a rolling quarter of the packs; once a month restore the
//! latest snapshot into a scratch directory and open it (the restore drill). Every
//! outcome is recorded in `backup_runs` for the monitoring page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use carnet_backup::stage::{self, BlobSource, Database, Sources, Staged};
use carnet_backup::{BackupError, Password, Target};
use carnet_domain::{Clock as _, Timestamp};
use carnet_service::{Caller, Stored};
use carnet_store::BackupRunRecord;

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, Instance, OpenMode, SystemClock};
use crate::output::say;

/// The job's lease: held while a run lasts, renewed every few minutes.
const LEASE: &str = "backup";
const LEASE_LENGTH_MS: i64 = 15 * 60_000;
const LEASE_RENEWAL: Duration = Duration::from_mins(5);
/// A rolling read of the packs: one slice of four each week.
const DATA_CHECK_EVERY_MS: i64 = 7 * 86_400_000;
const DATA_CHECK_SLICES: u32 = 4;
const DRILL_EVERY_MS: i64 = 30 * 86_400_000;
/// Patients whose sealed identity a drill opens, per practice.
const DRILL_SAMPLE: i64 = 20;

#[derive(Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Backs up now, to every target (or one), then checks and applies retention, as
    /// the server does on its schedule.
    Run {
        #[arg(long)]
        target: Option<String>,
    },
    /// Lists a target's snapshots.
    List {
        #[arg(long)]
        target: String,
    },
    /// Checks a target's repository: its structure, and with --read-data every byte.
    Check {
        #[arg(long)]
        target: String,
        #[arg(long)]
        read_data: bool,
    },
    /// Applies retention and removes unused data: for append-only targets, run it from
    /// another machine with credentials that can delete (two-phase: packs are removed
    /// by a prune a day later, so a backup running meanwhile is safe).
    Prune {
        #[arg(long)]
        target: String,
    },
    /// Restores the latest snapshot into a scratch directory and opens it (what the
    /// server does every month), now.
    Drill {
        #[arg(long)]
        target: String,
    },
}

/// `carnet restore`: a whole data directory, or one document.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RestoreArgs {
    #[command(subcommand)]
    pub document: Option<RestoreCommand>,
    /// The target to restore from.
    #[arg(long)]
    pub target: Option<String>,
    /// A snapshot id (or its first characters), or `latest`.
    #[arg(long, default_value = "latest")]
    pub snapshot: String,
    /// A new (or empty) directory: it becomes a data directory. Put the instance key and
    /// the audit key from the recovery kit in it, then `carnet serve --data-dir` it.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// When documents are kept in an S3 bucket (`blob_s3_*`): put the restored documents
    /// back into it (an object already there is never replaced) and remove them from
    /// the new directory once they are there.
    #[arg(long)]
    pub documents_to_bucket: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum RestoreCommand {
    /// Brings back a version of one document into the document store, from the newest
    /// snapshot that holds it (or the one given).
    Document {
        #[arg(long)]
        target: String,
        /// The document's id (shown in its history page).
        #[arg(long)]
        document: uuid::Uuid,
        /// The version number; default the latest.
        #[arg(long)]
        version: Option<i64>,
        #[arg(long)]
        snapshot: Option<String>,
    },
}

/// What the recovery kit puts back in a new data directory before a restore into it.
const KIT_FILES: &[&str] = &["instance.key", "audit.key", "backup.password"];

/// Reads the backup password, creating it (0600) when `create` and it is missing.
pub fn password(config: &Config, create: bool) -> Result<Password, CliError> {
    let path = config.backup_password_path();
    let material = if path.exists() {
        instance::read_key_file(&path)?
    } else if create {
        instance::create_key_file(&path)?
    } else {
        return Err(CliError::refusal(format!(
            "le mot de passe des sauvegardes {} est introuvable : remettez-le depuis le kit de \
             secours",
            path.display()
        )));
    };
    Ok(Password::new(material.to_file_text().trim().to_owned()))
}

fn target_named(config: &Config, name: &str) -> Result<Target, CliError> {
    let targets = config
        .backup_targets()
        .map_err(|error| CliError::refusal(error.to_string()))?;
    targets
        .into_iter()
        .find(|target| target.name == name)
        .ok_or_else(|| {
            CliError::refusal(format!(
                "aucune cible de sauvegarde « {name} » dans backup_targets"
            ))
        })
}

#[expect(clippy::needless_pass_by_value, reason = "used as map_err(refused)")]
fn refused(error: BackupError) -> CliError {
    CliError::failure(error.to_string())
}

/// Runs blocking backup work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| {
            Err(BackupError::Repository {
                target: String::new(),
                detail: format!("tâche interrompue ({error})"),
            })
        })
}

fn now_zoned(now: Timestamp) -> rustic_core_time::Zoned {
    rustic_core_time::Timestamp::from_millisecond(now.unix_millis())
        .unwrap_or(rustic_core_time::Timestamp::UNIX_EPOCH)
        .to_zoned(rustic_core_time::tz::TimeZone::UTC)
}

/// jiff, as re-exported by the backup engine.
mod rustic_core_time {
    pub use carnet_backup::jiff::{Timestamp, Zoned, tz};
}

pub async fn run(config: &Config, command: &BackupCommand) -> Result<(), CliError> {
    match command {
        BackupCommand::Run { target } => {
            let instance = instance::open(config, OpenMode::MustExist).await?;
            let job = BackupJob::new(config, Arc::new(instance))?;
            let result = job.run_once(target.as_deref(), true).await;
            job.instance.store.close().await;
            let failures = result?;
            if failures > 0 {
                return Err(CliError::failure(format!(
                    "{failures} opération(s) de sauvegarde en échec (voir ci-dessus)"
                )));
            }
            Ok(())
        }
        BackupCommand::List { target } => {
            let (target, password) = (target_named(config, target)?, password(config, false)?);
            let listed = blocking(move || carnet_backup::snapshots(&target, &password))
                .await
                .map_err(refused)?;
            for snapshot in &listed {
                say(&format!(
                    "{}  {}  {} fichier(s), {} octet(s) ajouté(s)",
                    &snapshot.id[..8],
                    snapshot.time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    snapshot.files,
                    snapshot.bytes_added
                ));
            }
            say(&format!("{} sauvegarde(s).", listed.len()));
            Ok(())
        }
        BackupCommand::Check { target, read_data } => {
            let (target, password) = (target_named(config, target)?, password(config, false)?);
            let read = read_data.then_some((1, 1));
            blocking(move || carnet_backup::check(&target, &password, read))
                .await
                .map_err(refused)?;
            say("Dépôt intact.");
            Ok(())
        }
        BackupCommand::Prune { target } => {
            let (target, password) = (target_named(config, target)?, password(config, false)?);
            let policy = config.retention_policy();
            let now = now_zoned(SystemClock.now());
            let forgotten = blocking(move || {
                carnet_backup::forget_and_prune(&target, &password, &policy, &now, false)
            })
            .await
            .map_err(refused)?;
            say(&format!("{} sauvegarde(s) oubliée(s).", forgotten.len()));
            Ok(())
        }
        BackupCommand::Drill { target } => {
            let target = target_named(config, target)?;
            let report = drill(config, &target).await.map_err(CliError::failure)?;
            say(&report);
            Ok(())
        }
    }
}

pub async fn restore(config: &Config, args: &RestoreArgs) -> Result<(), CliError> {
    if let Some(RestoreCommand::Document {
        target,
        document,
        version,
        snapshot,
    }) = &args.document
    {
        return restore_document(config, target, *document, *version, snapshot.as_deref()).await;
    }
    let (Some(target), Some(to)) = (&args.target, &args.to) else {
        return Err(CliError::refusal(
            "indiquez --target NOM et --to NOUVEAU_DOSSIER (et --snapshot ID, sinon la plus récente)",
        ));
    };
    let bucket = if args.documents_to_bucket {
        if config.blob_s3_settings().is_none() {
            return Err(CliError::refusal(
                "--documents-to-bucket : la configuration ne nomme aucun stockage S3 \
                 (blob_s3_endpoint)",
            ));
        }
        Some(instance::blobs(config)?)
    } else {
        None
    };
    let (target, password) = (target_named(config, target)?, password(config, false)?);
    let (snapshot, to_dir) = (args.snapshot.clone(), to.clone());
    let report =
        blocking(move || carnet_backup::restore(&target, &password, &snapshot, &to_dir, KIT_FILES))
            .await
            .map_err(refused)?;
    say(&format!(
        "Sauvegarde {} restaurée dans {} : {} fichier(s), {} octet(s).",
        &report.snapshot[..8],
        to.display(),
        report.files,
        report.bytes
    ));
    let restored_blobs = to.join(stage::BLOBS_DIR);
    if let Some(bucket) = bucket
        && restored_blobs.exists()
    {
        documents_to_bucket(&bucket, &restored_blobs).await?;
    } else if config.blob_s3_settings().is_some() && restored_blobs.exists() {
        say(&format!(
            "Les documents restaurés sont dans {} : relancez avec --documents-to-bucket pour \
             les remettre dans le stockage S3 (rien n'y est écrasé), ou servez-les depuis ce \
             dossier (sans blob_s3_*).",
            restored_blobs.display()
        ));
    }
    if to.join(stage::POSTGRES_FILE).exists() {
        say(&format!(
            "La base PostgreSQL est dans {} : créez une base vide, puis \
             `pg_restore --no-owner --dbname URL {}`.",
            stage::POSTGRES_FILE,
            to.join(stage::POSTGRES_FILE).display()
        ));
    }
    say(
        "Avant de démarrer : copiez instance.key et audit.key depuis le kit de secours dans ce \
         dossier (droits 0600), puis `carnet serve --data-dir` ce dossier.",
    );
    Ok(())
}

/// Puts every restored document of `restored` into the bucket, then removes the local
/// copies of those the bucket now holds (written, or already there at the same size).
/// One already there at another size is left in both places and named: the bucket's
/// object may be damaged, and replacing it is the operator's decision.
async fn documents_to_bucket(
    bucket: &carnet_service::Blobs,
    restored: &Path,
) -> Result<(), CliError> {
    let local = carnet_service::Blobs::local(restored)
        .map_err(|error| CliError::failure(error.to_string()))?;
    let (mut written, mut present, mut different) = (0_usize, 0_usize, Vec::new());
    for (name, size) in local
        .list()
        .await
        .map_err(|error| unreachable_blobs(&error))?
    {
        let path = restored.join(&name);
        let bytes = std::fs::read(&path).map_err(|error| {
            CliError::failure(format!("lecture de {} ({error})", path.display()))
        })?;
        match bucket
            .put_new(&name, bytes)
            .await
            .map_err(|error| unreachable_blobs(&error))?
        {
            Stored::Written => written += 1,
            Stored::AlreadyThere { size: there } if there == size => present += 1,
            Stored::AlreadyThere { .. } => {
                different.push(name);
                continue;
            }
        }
        std::fs::remove_file(&path).map_err(|error| {
            CliError::failure(format!("suppression de {} ({error})", path.display()))
        })?;
    }
    say(&format!(
        "Documents remis dans le stockage S3 : {written} envoyé(s), {present} déjà présent(s)."
    ));
    if !different.is_empty() {
        return Err(CliError::failure(format!(
            "{} document(s) existent déjà dans le stockage S3 avec une autre taille et n'ont \
             pas été remplacés (copies gardées dans {}) : {}",
            different.len(),
            restored.display(),
            different.join(", ")
        )));
    }
    let _ = std::fs::remove_dir(restored);
    Ok(())
}

/// `carnet restore document`: puts the version back, then records it in the instance's
/// audit trail.
async fn restore_document(
    config: &Config,
    target: &str,
    document: uuid::Uuid,
    version: Option<i64>,
    snapshot: Option<&str>,
) -> Result<(), CliError> {
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let mut done = put_document_back(config, &instance, target, document, version, snapshot).await;
    if done.is_ok()
        && let Err(error) = instance
            .services
            .record_document_restored(&Caller::operator(), document)
            .await
    {
        done = Err(CliError::failure(format!(
            "document remis, mais le journal d'audit n'a pas pu l'enregistrer ({error})"
        )));
    }
    instance.store.close().await;
    done
}

async fn put_document_back(
    config: &Config,
    instance: &Instance,
    target: &str,
    document: uuid::Uuid,
    version: Option<i64>,
    snapshot: Option<&str>,
) -> Result<(), CliError> {
    let versions = instance.store.document_blob_names(document).await;
    let versions = versions.map_err(|error| CliError::failure(error.to_string()))?;
    let (number, blob_name) = match version {
        Some(number) => versions.iter().find(|(n, _)| *n == number),
        None => versions.last(),
    }
    .cloned()
    .ok_or_else(|| CliError::refusal("document ou version introuvable"))?;
    let (target, password) = (target_named(config, target)?, password(config, false)?);
    let blob_path = format!("{}/{blob_name}", stage::BLOBS_DIR);
    let blobs = instance::blobs(config)?;
    let already = || {
        CliError::refusal(format!(
            "la version {number} de ce document est déjà dans le stockage : rien n'est écrasé"
        ))
    };
    if blobs
        .size_of(&blob_name)
        .await
        .map_err(|error| unreachable_blobs(&error))?
        .is_some()
    {
        return Err(already());
    }
    let candidates: Vec<String> = if let Some(id) = snapshot {
        vec![id.to_owned()]
    } else {
        let (target, password) = (target.clone(), password.clone());
        let mut all = blocking(move || carnet_backup::snapshots(&target, &password))
            .await
            .map_err(refused)?;
        all.reverse();
        all.into_iter().map(|s| s.id).collect()
    };
    for id in candidates {
        let (target, password, path) = (target.clone(), password.clone(), blob_path.clone());
        let outcome = blocking(move || {
            let mut bytes = Vec::new();
            carnet_backup::restore_file(&target, &password, &id, &path, &mut bytes)
                .map(|from| (from, bytes))
        })
        .await;
        match outcome {
            Ok((from, bytes)) => {
                let stored = blobs.put_new(&blob_name, bytes).await;
                if stored.map_err(|error| unreachable_blobs(&error))? != Stored::Written {
                    return Err(already());
                }
                say(&format!(
                    "Version {number} du document remise dans le stockage (depuis la \
                     sauvegarde {}).",
                    &from[..8]
                ));
                return Ok(());
            }
            Err(BackupError::NoSuchFile { .. }) => {}
            Err(error) => return Err(refused(error)),
        }
    }
    Err(CliError::refusal(
        "aucune sauvegarde de cette cible ne contient cette version du document",
    ))
}

fn unreachable_blobs(error: &carnet_service::BlobsError) -> CliError {
    CliError::failure(format!("stockage des documents inaccessible ({error})"))
}

fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()));
    written.map_err(|error| CliError::failure(format!("écriture de {} ({error})", path.display())))
}

/// A random name for this node in the lease table.
fn node_name() -> Result<String, CliError> {
    use carnet_crypto::RandomSource as _;
    let mut bytes = [0_u8; 8];
    carnet_crypto::SystemRandom
        .fill(&mut bytes)
        .map_err(|_| CliError::failure("source d'aléa indisponible"))?;
    Ok(carnet_audit::hex(&bytes))
}

/// The backup job of one instance.
#[derive(Debug)]
pub struct BackupJob {
    config: Config,
    targets: Vec<Target>,
    password: Password,
    instance: Arc<Instance>,
    /// This node's name in the lease table.
    node: String,
}

impl BackupJob {
    pub fn new(config: &Config, instance: Arc<Instance>) -> Result<Self, CliError> {
        let targets = config
            .backup_targets()
            .map_err(|error| CliError::refusal(error.to_string()))?;
        if targets.is_empty() {
            return Err(CliError::refusal(
                "aucune cible de sauvegarde : renseignez backup_targets dans la configuration",
            ));
        }
        Ok(Self {
            config: config.clone(),
            targets,
            password: password(config, true)?,
            instance,
            node: node_name()?,
        })
    }

    fn sources(&self) -> Sources {
        let database = if self.config.database_url.is_empty() {
            Database::Sqlite(self.config.sqlite_path())
        } else {
            Database::Postgres(self.config.database_url.clone())
        };
        Sources {
            database,
            blobs: Some(match self.config.blob_s3_settings() {
                Some(settings) => BlobSource::Bucket(settings),
                None => BlobSource::Directory(self.config.data_dir.join("blobs")),
            }),
            checkpoint_file: Some(self.config.audit_checkpoint_path()),
            config: Some(self.config.to_redacted_toml()),
        }
    }

    async fn record(&self, target: &str, kind: &str, started: Timestamp, outcome: RunOutcome) {
        let record = BackupRunRecord {
            target: target.to_owned(),
            kind: kind.to_owned(),
            started_at: started.unix_millis(),
            finished_at: SystemClock.now().unix_millis(),
            ok: outcome.ok,
            snapshot: outcome.snapshot,
            bytes_added: outcome.bytes_added,
            message: outcome.message,
        };
        if record.ok {
            tracing::info!(target = %record.target, kind, message = %record.message, "backup");
        } else {
            tracing::error!(target = %record.target, kind, message = %record.message, "backup failed");
        }
        record_metrics(&record);
        let recorded = self
            .instance
            .services
            .record_backup_run(&Caller::operator(), &record)
            .await;
        if let Err(error) = recorded {
            tracing::error!(%error, "backup outcome not recorded");
        }
    }

    /// One run under the lease. Returns how many operations failed; `Ok(0)` also when
    /// another node holds the lease (said when `verbose`).
    pub async fn run_once(&self, only: Option<&str>, verbose: bool) -> Result<usize, CliError> {
        let store = &self.instance.store;
        let now = SystemClock.now();
        let until = Timestamp::from_unix_millis(now.unix_millis() + LEASE_LENGTH_MS);
        let taken = store
            .take_lease(LEASE, &self.node, now, until)
            .await
            .map_err(|error| CliError::failure(error.to_string()))?;
        if !taken {
            if verbose {
                say("Une sauvegarde est déjà en cours sur un autre nœud.");
            }
            return Ok(0);
        }
        let renewal = tokio::spawn(renew_lease(self.instance.clone(), self.node.clone()));
        let failures = self.run_targets(only, verbose).await;
        renewal.abort();
        if let Err(error) = store.release_lease(LEASE, &self.node).await {
            tracing::warn!(%error, "backup lease not released (it expires by itself)");
        }
        failures
    }

    async fn run_targets(&self, only: Option<&str>, verbose: bool) -> Result<usize, CliError> {
        let targets: Vec<&Target> = self
            .targets
            .iter()
            .filter(|target| only.is_none_or(|name| target.name == name))
            .collect();
        if targets.is_empty() {
            return Err(CliError::refusal(format!(
                "aucune cible de sauvegarde « {} »",
                only.unwrap_or_default()
            )));
        }
        // Pins the audit trail up to now in the checkpoint file the snapshot carries.
        if let Err(error) = crate::audit::checkpoint(&self.config, &self.instance, true).await {
            tracing::warn!(error = %error.message, "checkpoint before backup failed");
        }
        let started = SystemClock.now();
        let staging = self.config.data_dir.join("backup-staging");
        let sources = self.sources();
        let staged = {
            let (sources, staging) = (sources.clone(), staging.clone());
            blocking(move || stage::stage(&sources, &staging)).await
        };
        let staged = match staged {
            Ok(staged) => staged,
            Err(error) => {
                for target in &targets {
                    self.record(&target.name, "backup", started, RunOutcome::failed(&error))
                        .await;
                }
                return Ok(targets.len());
            }
        };
        let runs = self
            .instance
            .store
            .latest_backup_runs()
            .await
            .map_err(|error| CliError::failure(error.to_string()))?;
        let mut failures = 0;
        for target in targets {
            failures += self.run_target(target, &staged, &runs, verbose).await;
        }
        // The database copy and a bucket's mirror stay for the next run (what has not
        // changed is then not read again); the rest goes.
        if let Err(error) = blocking(move || stage::tidy(&sources, &staging)).await {
            tracing::warn!(error = %error, "tidying the backup staging directory failed");
        }
        Ok(failures)
    }

    /// Backup, check, retention, and the weekly and monthly verifications, on one target.
    async fn run_target(
        &self,
        target: &Target,
        staged: &Staged,
        runs: &[BackupRunRecord],
        verbose: bool,
    ) -> usize {
        let mut failures = 0;
        let started = SystemClock.now();
        let (t, p, s) = (target.clone(), self.password.clone(), staged.root.clone());
        let time = now_zoned(started);
        let backup = blocking(move || carnet_backup::backup(&t, &p, &s, time)).await;
        let mut outcome = match &backup {
            Ok(report) => RunOutcome {
                ok: true,
                snapshot: Some(report.snapshot.clone()),
                bytes_added: Some(i64::try_from(report.bytes_added).unwrap_or(i64::MAX)),
                message: format!(
                    "{} fichier(s), {} octet(s) lus, {} octet(s) ajoutés",
                    report.files, report.bytes_processed, report.bytes_added
                ),
            },
            Err(error) => RunOutcome::failed(error),
        };
        if let (Some(mirror), true) = (staged.mirror, backup.is_ok()) {
            let _ = write!(
                outcome.message,
                "; documents du stockage S3 : {} au total, {} copié(s) ({} octet(s)), {} \
                 retiré(s)",
                mirror.blobs, mirror.fetched, mirror.fetched_bytes, mirror.dropped
            );
        }
        if backup.is_ok() && !target.append_only {
            let (t, p, policy) = (
                target.clone(),
                self.password.clone(),
                self.config.retention_policy(),
            );
            let now = now_zoned(SystemClock.now());
            match blocking(move || carnet_backup::forget_and_prune(&t, &p, &policy, &now, true))
                .await
            {
                Ok(forgotten) if !forgotten.is_empty() => {
                    let _ = write!(
                        outcome.message,
                        "; {} ancienne(s) oubliée(s)",
                        forgotten.len()
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    let _ = write!(outcome.message, "; nettoyage impossible : {error}");
                }
            }
        }
        if verbose {
            say(&format!("{} : {}", target.name, outcome.message));
        }
        failures += usize::from(!outcome.ok);
        self.record(&target.name, "backup", started, outcome).await;
        if backup.is_err() {
            return failures;
        }

        failures += self.verify(target, "check", None, verbose).await;
        let now = SystemClock.now().unix_millis();
        let last = |kind: &str| {
            runs.iter()
                .filter(|run| run.target == target.name && run.kind == kind)
                .map(|run| run.started_at)
                .max()
        };
        if last("data_check").is_none_or(|at| now - at >= DATA_CHECK_EVERY_MS) {
            let week = u32::try_from(now / DATA_CHECK_EVERY_MS).unwrap_or(0);
            let slice = (week % DATA_CHECK_SLICES + 1, DATA_CHECK_SLICES);
            failures += self
                .verify(target, "data_check", Some(slice), verbose)
                .await;
        }
        if last("drill").is_none_or(|at| now - at >= DRILL_EVERY_MS) {
            let started = SystemClock.now();
            let outcome = match drill(&self.config, target).await {
                Ok(message) => RunOutcome::ok(message),
                Err(message) => RunOutcome {
                    ok: false,
                    snapshot: None,
                    bytes_added: None,
                    message,
                },
            };
            if verbose {
                say(&format!("{} : {}", target.name, outcome.message));
            }
            failures += usize::from(!outcome.ok);
            self.record(&target.name, "drill", started, outcome).await;
        }
        failures
    }

    async fn verify(
        &self,
        target: &Target,
        kind: &str,
        slice: Option<(u32, u32)>,
        verbose: bool,
    ) -> usize {
        let started = SystemClock.now();
        let (t, p) = (target.clone(), self.password.clone());
        let outcome = match blocking(move || carnet_backup::check(&t, &p, slice)).await {
            Ok(_) => RunOutcome::ok(match slice {
                None => "structure intacte".to_owned(),
                Some((n, of)) => format!("données relues (part {n} sur {of}) : intactes"),
            }),
            Err(error) => RunOutcome::failed(&error),
        };
        if verbose {
            say(&format!("{} : {}", target.name, outcome.message));
        }
        let failed = usize::from(!outcome.ok);
        self.record(&target.name, kind, started, outcome).await;
        failed
    }

    /// The server's schedule: every minute, runs when the last backup is an interval old
    /// (and this node gets the lease).
    pub async fn schedule(self) {
        let interval_ms = i64::from(self.config.backup_interval_minutes) * 60_000;
        let mut ticks = tokio::time::interval(Duration::from_mins(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let due = match self.instance.store.latest_backup_runs().await {
                Ok(runs) => {
                    let now = SystemClock.now().unix_millis();
                    let last = runs
                        .iter()
                        .filter(|run| run.kind == "backup")
                        .map(|run| run.started_at)
                        .max();
                    last.is_none_or(|at| now - at >= interval_ms)
                }
                Err(error) => {
                    tracing::error!(%error, "backup schedule: runs unreadable");
                    false
                }
            };
            if due && let Err(error) = self.run_once(None, false).await {
                tracing::error!(error = %error.message, "backup run failed");
            }
        }
    }
}

/// The run as metrics (through the `metrics` facade; exported by whichever recorder the
/// binary installs): per target and kind, the duration and failures; per target, the
/// time of the last successful backup and the bytes it added.
fn record_metrics(record: &BackupRunRecord) {
    let labels = [
        ("target", record.target.clone()),
        ("kind", record.kind.clone()),
    ];
    let seconds = (record.finished_at - record.started_at).max(0) as f64 / 1000.0;
    metrics::gauge!("carnet_backup_duration_seconds", &labels).set(seconds);
    if !record.ok {
        metrics::counter!("carnet_backup_failures_total", &labels).increment(1);
        return;
    }
    if record.kind == "backup" {
        let target = [("target", record.target.clone())];
        metrics::gauge!("carnet_backup_last_success_timestamp_seconds", &target)
            .set(record.finished_at as f64 / 1000.0);
        metrics::gauge!("carnet_backup_bytes_added", &target)
            .set(record.bytes_added.unwrap_or(0) as f64);
    }
}

async fn renew_lease(instance: Arc<Instance>, node: String) {
    let mut ticks = tokio::time::interval(LEASE_RENEWAL);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = SystemClock.now();
        let until = Timestamp::from_unix_millis(now.unix_millis() + LEASE_LENGTH_MS);
        if let Err(error) = instance.store.take_lease(LEASE, &node, now, until).await {
            tracing::warn!(%error, "backup lease not renewed");
        }
    }
}

/// What one operation gives the runs table.
struct RunOutcome {
    ok: bool,
    snapshot: Option<String>,
    bytes_added: Option<i64>,
    message: String,
}

impl RunOutcome {
    fn ok(message: String) -> Self {
        Self {
            ok: true,
            snapshot: None,
            bytes_added: None,
            message,
        }
    }

    fn failed(error: &BackupError) -> Self {
        Self {
            ok: false,
            snapshot: None,
            bytes_added: None,
            message: error.to_string(),
        }
    }
}

/// The restore drill: restores the latest snapshot of `target` into a scratch directory,
/// compares the database's rows per table with the counts taken at backup time, opens it
/// as an instance with this instance's keys, verifies the audit trail, opens a sample of
/// sealed records, and checks that every document version's blob came back. The scratch
/// directory is removed after.
pub async fn drill(config: &Config, target: &Target) -> Result<String, String> {
    let scratch = config.data_dir.join("backup-drill");
    let _ = std::fs::remove_dir_all(&scratch);
    let result = drill_in(config, target, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn drill_in(config: &Config, target: &Target, scratch: &Path) -> Result<String, String> {
    let password = password(config, false).map_err(|error| error.message)?;
    let (t, to) = (target.clone(), scratch.to_path_buf());
    let restored = blocking(move || carnet_backup::restore(&t, &password, "latest", &to, &[]))
        .await
        .map_err(|error| format!("restauration : {error}"))?;
    if scratch.join(stage::POSTGRES_FILE).exists() {
        return drill_postgres(config, scratch, &restored.snapshot).await;
    }
    let database = scratch.join(stage::SQLITE_FILE);
    let expected = stage::read_row_counts(&scratch.join(stage::COUNTS_FILE))
        .map_err(|error| format!("comptes de lignes : {error}"))?;
    let found =
        stage::row_counts(&database).map_err(|error| format!("base restaurée : {error}"))?;
    let tables = same_counts(&expected, &found)?;
    let (sealed, documents) = drill_open(config, scratch, String::new()).await?;
    Ok(format!(
        "sauvegarde {} restaurée : {} tables aux bons comptes, journal d'audit intact, {sealed} \
         dossier(s) ouverts avec les clés, {documents} document(s) présents",
        &restored.snapshot[..8],
        tables
    ))
}

/// The drill on PostgreSQL: the dump is loaded into a scratch database on the same
/// server (`carnet_drill_` and the snapshot id; the role needs CREATEDB), its rows per
/// table compared with those the dump holds, opened and checked as on SQLite, then
/// dropped.
async fn drill_postgres(config: &Config, scratch: &Path, snapshot: &str) -> Result<String, String> {
    let name = format!("carnet_drill_{}", &snapshot[..8]);
    let (url, dump, database) = (
        config.database_url.clone(),
        scratch.join(stage::POSTGRES_FILE),
        name.clone(),
    );
    let scratch_url = blocking(move || stage::load_postgres_dump(&url, &dump, &database))
        .await
        .map_err(|error| format!("chargement du dump dans une base temporaire : {error}"))?;
    // Counted before the copy is opened (opening runs the migrations).
    let counted = compare_postgres_counts(scratch, scratch_url.clone()).await;
    let opened = match counted {
        Ok(tables) => drill_open(config, scratch, scratch_url)
            .await
            .map(|(sealed, documents)| (tables, sealed, documents)),
        Err(message) => Err(message),
    };
    let url = config.database_url.clone();
    if let Err(error) = blocking(move || stage::drop_postgres_database(&url, &name)).await {
        tracing::warn!(error = %error, "the drill's scratch database was not dropped");
    }
    let (tables, sealed, documents) = opened?;
    Ok(format!(
        "sauvegarde {} chargée dans une base temporaire : {tables} tables aux bons comptes, \
         journal d'audit intact, {sealed} dossier(s) ouverts avec les clés, {documents} \
         document(s) présents",
        &snapshot[..8]
    ))
}

/// Rows per table of the scratch database against the rows the dump holds; the number
/// of tables compared.
async fn compare_postgres_counts(scratch: &Path, scratch_url: String) -> Result<usize, String> {
    let dump = scratch.join(stage::POSTGRES_FILE);
    let expected = blocking(move || stage::dump_row_counts(&dump))
        .await
        .map_err(|error| format!("comptes de lignes du dump : {error}"))?;
    let found = blocking(move || stage::postgres_row_counts(&scratch_url))
        .await
        .map_err(|error| format!("base restaurée : {error}"))?;
    same_counts(&expected, &found)
}

/// The restored rows per table against those of the backup: the number of tables.
fn same_counts(expected: &[(String, i64)], found: &[(String, i64)]) -> Result<usize, String> {
    if found != expected {
        return Err("la base restaurée n'a pas le nombre de lignes de la sauvegarde".into());
    }
    Ok(expected.len())
}

/// Opens the restored copy in `scratch` (its database at `database_url`, empty for the
/// SQLite file there) with copies of this instance's keys, and runs [`drill_checks`].
async fn drill_open(
    config: &Config,
    scratch: &Path,
    database_url: String,
) -> Result<(usize, usize), String> {
    let mut scratch_config = config.clone();
    scratch_config.data_dir = scratch.to_path_buf();
    scratch_config.database_url = database_url;
    // Copies of the keys, so that nothing the opening does (finishing an interrupted
    // rotation renames key files) can touch the live ones.
    for (live, name) in [
        (config.instance_key_path(), "instance.key"),
        (config.audit_key_path(), "audit.key"),
    ] {
        let bytes = std::fs::read(&live)
            .map_err(|error| format!("lecture de {} ({error})", live.display()))?;
        write_new_file(&scratch.join(name), &bytes).map_err(|error| error.message)?;
    }
    scratch_config.instance_key_file = String::new();
    scratch_config.audit_key_file = String::new();
    scratch_config.audit_checkpoint_file =
        scratch.join(stage::CHECKPOINT_FILE).display().to_string();
    scratch_config.backup_password_file = config.backup_password_path().display().to_string();
    scratch_config.blob_s3_endpoint = String::new();
    let copy = instance::open(&scratch_config, OpenMode::MustExist)
        .await
        .map_err(|error| format!("la base restaurée ne s'ouvre pas : {}", error.message))?;
    let checked = drill_checks(&scratch_config, &copy).await;
    copy.store.close().await;
    checked
}

/// On an opened restored copy: the audit trail verifies, sealed records open, and every
/// document version's blob is there (from the local directory or the bucket).
async fn drill_checks(config: &Config, copy: &Instance) -> Result<(usize, usize), String> {
    let external = crate::checkpoint_file::read(&config.audit_checkpoint_path())
        .map_err(|message| format!("fichier des points de contrôle : {message}"))?;
    let reports = copy
        .services
        .verify_audit(&copy.audit_signer.verifier(), &external, None)
        .await
        .map_err(|error| {
            format!(
                "journal d'audit illisible : {}",
                error.describe_without_secrets()
            )
        })?;
    if let Some(damage) = reports
        .iter()
        .find_map(|report| report.result.as_ref().err())
    {
        return Err(format!("journal d'audit altéré dans la copie : {damage}"));
    }
    let (opened, failed) = copy
        .services
        .verify_sealed_sample(&Caller::operator(), DRILL_SAMPLE)
        .await
        .map_err(|error| format!("dossiers : {error}"))?;
    if failed > 0 {
        return Err(format!(
            "{failed} dossier(s) ne s'ouvrent pas avec les clés"
        ));
    }
    let names = copy
        .store
        .all_blob_names()
        .await
        .map_err(|error| format!("documents : {error}"))?;
    for name in &names {
        if !config.data_dir.join(stage::BLOBS_DIR).join(name).is_file() {
            return Err(format!("un document manque dans la copie ({name})"));
        }
    }
    let documents = names.len();
    Ok((opened, documents))
}

#[cfg(test)]
mod tests {
    use carnet_store::BackupRunRecord;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    fn run(kind: &str, ok: bool) -> BackupRunRecord {
        BackupRunRecord {
            target: "disque".into(),
            kind: kind.into(),
            started_at: 1_000_000,
            finished_at: 1_004_500,
            ok,
            snapshot: None,
            bytes_added: Some(2048),
            message: String::new(),
        }
    }

    #[test]
    fn runs_become_metrics() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            super::record_metrics(&run("backup", true));
            super::record_metrics(&run("drill", false));
            super::record_metrics(&run("drill", false));
        });
        let values: Vec<(String, DebugValue)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (format!("{}{{{}}}", key.name(), labels.join(",")), value)
            })
            .collect();
        let value = |name: &str| {
            values
                .iter()
                .find(|(key, _)| key == name)
                .map_or_else(|| panic!("{name} in {values:?}"), |(_, value)| value)
        };
        assert_eq!(
            value("carnet_backup_last_success_timestamp_seconds{target=disque}"),
            &DebugValue::Gauge(1004.5.into())
        );
        assert_eq!(
            value("carnet_backup_bytes_added{target=disque}"),
            &DebugValue::Gauge(2048.0.into())
        );
        assert_eq!(
            value("carnet_backup_duration_seconds{target=disque,kind=backup}"),
            &DebugValue::Gauge(4.5.into())
        );
        assert_eq!(
            value("carnet_backup_failures_total{target=disque,kind=drill}"),
            &DebugValue::Counter(2)
        );
    }
}
