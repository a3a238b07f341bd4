//! Opening the local instance: data directory, instance key, database, migrations.
//!
//! Every command that touches the instance goes through [`open`], so the refusals
//! (missing or foreign key, key readable by others, database migrated by a newer
//! Carnet) are the same for `serve`, `migrate` and the operator commands.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;

use carnet_audit::CheckpointSigner;
use carnet_crypto::{InstanceKey, KeyMaterial, RandomSource, SystemRandom};
use carnet_domain::{Clock, Timestamp};
use carnet_service::{InstanceKeyCheck, Services};
use carnet_store::Store;

use crate::config::Config;
use crate::exit::CliError;

/// Whether opening may create a new instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve` and `migrate`: an empty data directory becomes a new instance.
    CreateIfMissing,
    /// Operator commands: the instance must already exist.
    MustExist,
}

/// An opened, migrated instance whose key matches its database.
#[derive(Debug)]
pub struct Instance {
    pub services: Services,
    /// Signs audit checkpoints.
    pub audit_signer: CheckpointSigner,
    pub store: Store,
    /// Whether this opening created the instance key (first start).
    pub created_key: bool,
    /// Where the database was copied before a migration, if it was.
    pub pre_migration_copy: Option<std::path::PathBuf>,
}

/// The system clock: the one place Carnet reads the time of day.
#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        #[expect(
            clippy::disallowed_methods,
            reason = "the clock injected everywhere else"
        )]
        let now = std::time::SystemTime::now();
        let millis = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            });
        Timestamp::from_unix_millis(millis)
    }
}

pub async fn open(config: &Config, mode: OpenMode) -> Result<Instance, CliError> {
    let data_dir = &config.data_dir;
    if !data_dir.exists() {
        if mode == OpenMode::MustExist {
            return Err(CliError::refusal(format!(
                "aucune instance dans {} : lancez d'abord `carnet serve` ou `carnet migrate`",
                data_dir.display()
            )));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|error| {
                CliError::refusal(format!(
                    "impossible de créer le répertoire de données {} ({error})",
                    data_dir.display()
                ))
            })?;
    }

    let (store, database_existed) = open_store(config, mode).await?;

    let key_path = config.instance_key_path();
    let (key, created_key) = if key_path.exists() {
        (InstanceKey::from_material(read_key_file(&key_path)?), false)
    } else if database_existed {
        return Err(CliError::refusal(format!(
            "la base de données existe mais le fichier de clé de l'instance {} est introuvable : \
             remettez la clé de cette instance (kit de récupération) avant de démarrer",
            key_path.display()
        )));
    } else if mode == OpenMode::MustExist {
        return Err(CliError::refusal(format!(
            "le fichier de clé de l'instance {} est introuvable",
            key_path.display()
        )));
    } else {
        (
            InstanceKey::from_material(create_key_file(&key_path)?),
            true,
        )
    };
    let audit_signer = load_audit_signer(config, database_existed)?;
    if mode == OpenMode::CreateIfMissing {
        // Generated at installation, so the first recovery kit already carries it.
        crate::backup::password(config, true)?;
    }

    let pre_migration_copy = store
        .migrate(Some(&data_dir.join("pre-migration")))
        .await
        .map_err(|error| CliError::refusal(format!("migration de la base impossible ({error})")))?;
    let services = Services::new(store.clone(), Arc::new(SystemClock), Arc::new(SystemRandom));
    let key = finish_interrupted_rotation(&services, &key_path, key).await?;
    let new_instance = match services.check_instance_key(&key).await {
        Ok(InstanceKeyCheck::Recorded) => true,
        Ok(InstanceKeyCheck::Matches) => false,
        Ok(InstanceKeyCheck::Mismatch) => {
            return Err(CliError::refusal(format!(
                "le fichier de clé {} ne correspond pas à cette base de données : \
                 ce n'est pas la clé de cette instance",
                key_path.display()
            )));
        }
        Err(error) => {
            return Err(CliError::refusal(format!(
                "impossible de vérifier la clé de l'instance ({error})"
            )));
        }
    };
    let root = services
        .instance_root(&key, new_instance)
        .await
        .map_err(|error| {
            CliError::refusal(format!(
                "la racine des clés de l'instance ne s'ouvre pas avec {} ({error})",
                key_path.display()
            ))
        })?;
    let services = services
        .with_auth(config.auth_settings(), &root)
        .map_err(|error| {
            CliError::refusal(format!("paramètres d'authentification refusés ({error})"))
        })?
        .with_blobs(blobs(config)?)
        .with_backup_plan(backup_plan(config)?);
    check_audit_public_key(&services, &audit_signer, config).await?;
    Ok(Instance {
        services,
        audit_signer,
        store,
        created_key,
        pre_migration_copy,
    })
}

/// The configured backups, for the monitoring page.
fn backup_plan(config: &Config) -> Result<carnet_service::BackupPlan, CliError> {
    let targets = config
        .backup_targets()
        .map_err(|error| CliError::refusal(error.to_string()))?;
    Ok(carnet_service::BackupPlan {
        targets: targets
            .iter()
            .map(|target| (target.name.clone(), target.address()))
            .collect(),
        interval_minutes: config.backup_interval_minutes,
    })
}

/// The blob store the configuration names: S3-compatible, or `<data_dir>/blobs`.
pub fn blobs(config: &Config) -> Result<carnet_service::Blobs, CliError> {
    match config.blob_s3_settings() {
        Some(settings) => carnet_service::Blobs::s3(&settings),
        None => carnet_service::Blobs::local(&config.data_dir.join("blobs")),
    }
    .map_err(|error| CliError::refusal(format!("stockage des documents inaccessible ({error})")))
}

/// Where `carnet keys rotate --instance` writes the next key before the database
/// switches to it.
pub(crate) fn next_key_path(key_path: &Path) -> std::path::PathBuf {
    let mut name = key_path.as_os_str().to_owned();
    name.push(".next");
    std::path::PathBuf::from(name)
}

/// An instance key rotation stopped between the database switch and the file rename
/// leaves `<key>.next` behind: if the database already uses it, it becomes the key file;
/// otherwise the rotation did not happen and it is removed.
async fn finish_interrupted_rotation(
    services: &Services,
    key_path: &Path,
    key: InstanceKey,
) -> Result<InstanceKey, CliError> {
    let next_path = next_key_path(key_path);
    if !next_path.exists() {
        return Ok(key);
    }
    let next = InstanceKey::from_material(read_key_file(&next_path)?);
    // A database error must not be read as "the rotation did not happen": removing the
    // next key then could lose the only key the database answers to.
    let unreadable = |error: &dyn std::fmt::Display| {
        CliError::refusal(format!(
            "une rotation de la clé de l'instance a été interrompue ({} existe) et la base \
             ne peut pas être interrogée ({error}) : rien n'est modifié, réessayez",
            next_path.display()
        ))
    };
    let recorded = services
        .has_recorded_instance_key()
        .await
        .map_err(|error| unreadable(&error))?;
    let adopted = recorded
        && services
            .check_instance_key(&next)
            .await
            .map_err(|error| unreadable(&error))?
            == InstanceKeyCheck::Matches;
    if adopted {
        fs::rename(&next_path, key_path)
            .and_then(|()| sync_parent(key_path))
            .map_err(|error| {
                CliError::refusal(format!(
                    "impossible de remplacer {} par la nouvelle clé ({error})",
                    key_path.display()
                ))
            })?;
        tracing::warn!(
            path = %key_path.display(),
            "an interrupted instance key rotation was finished: the new key is now the key file"
        );
        Ok(next)
    } else {
        fs::remove_file(&next_path).map_err(|error| {
            CliError::refusal(format!(
                "impossible de retirer {} ({error})",
                next_path.display()
            ))
        })?;
        Ok(key)
    }
}

/// Makes a rename in `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs::File::open(parent)?.sync_all()
}

/// Reads (or, for a new instance, creates) the audit key that signs checkpoints.
fn load_audit_signer(
    config: &Config,
    database_existed: bool,
) -> Result<CheckpointSigner, CliError> {
    let audit_key_path = config.audit_key_path();
    let audit_seed = if audit_key_path.exists() {
        read_key_file(&audit_key_path)?
    } else if database_existed {
        return Err(CliError::refusal(format!(
            "la base de données existe mais la clé du journal d'audit {} est introuvable : \
             remettez-la (kit de récupération) avant de démarrer",
            audit_key_path.display()
        )));
    } else {
        create_key_file(&audit_key_path)?
    };
    CheckpointSigner::from_seed(audit_seed.expose()).map_err(|_| {
        CliError::refusal(format!(
            "la clé du journal d'audit {} est invalide",
            audit_key_path.display()
        ))
    })
}

/// Refuses an audit key other than the one recorded at the instance's creation.
async fn check_audit_public_key(
    services: &Services,
    audit_signer: &CheckpointSigner,
    config: &Config,
) -> Result<(), CliError> {
    let audit_key_path = config.audit_key_path();
    let public_key = audit_signer.verifier().public_key().to_vec();
    match services.check_audit_public_key(&public_key).await {
        Ok(InstanceKeyCheck::Matches | InstanceKeyCheck::Recorded) => {}
        Ok(InstanceKeyCheck::Mismatch) => {
            return Err(CliError::refusal(format!(
                "la clé du journal d'audit {} n'est pas celle de cette instance",
                audit_key_path.display()
            )));
        }
        Err(error) => {
            return Err(CliError::refusal(format!(
                "impossible de vérifier la clé du journal d'audit ({error})"
            )));
        }
    }
    Ok(())
}

/// Opens the configured database without migrating it, and says whether it already held
/// an instance (so a missing key file can be told from a first start).
async fn open_store(config: &Config, mode: OpenMode) -> Result<(Store, bool), CliError> {
    let data_dir = &config.data_dir;
    if config.database_url.is_empty() {
        let path = config.sqlite_path();
        let existed = path.exists();
        if !existed && mode == OpenMode::MustExist {
            return Err(CliError::refusal(format!(
                "aucune base de données dans {} : lancez d'abord `carnet serve` ou `carnet migrate`",
                data_dir.display()
            )));
        }
        if !existed {
            // SQLite gives its WAL and shared-memory files the main file's mode: create it
            // private so none of them is readable by other users.
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|error| {
                    CliError::refusal(format!("impossible de créer {} ({error})", path.display()))
                })?;
        }
        let store = Store::open_sqlite(&path).await.map_err(|error| {
            CliError::refusal(format!(
                "impossible d'ouvrir la base SQLite {} ({error})",
                path.display()
            ))
        })?;
        Ok((store, existed))
    } else {
        let store = Store::connect_postgres(&config.database_url)
            .await
            .map_err(|error| {
                // The URL can hold a password: never repeat it.
                CliError::refusal(format!(
                    "impossible de joindre la base PostgreSQL ({})",
                    error.describe_without_secrets()
                ))
            })?;
        let status = store.migration_status().await.map_err(|error| {
            CliError::refusal(format!(
                "impossible de lire la base PostgreSQL ({})",
                error.describe_without_secrets()
            ))
        })?;
        let existed = !status.applied.is_empty();
        Ok((store, existed))
    }
}

/// Reads a key file, refusing one that group or others can read or write.
pub(crate) fn read_key_file(path: &Path) -> Result<KeyMaterial, CliError> {
    let metadata = fs::metadata(path).map_err(|error| {
        CliError::refusal(format!("impossible de lire {} ({error})", path.display()))
    })?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(CliError::refusal(format!(
            "le fichier de clé {} est accessible à d'autres utilisateurs (droits {:o}) : \
             corrigez avec `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(|error| {
        CliError::refusal(format!("impossible de lire {} ({error})", path.display()))
    })?);
    KeyMaterial::from_file_text(&text).map_err(|_| {
        CliError::refusal(format!(
            "le fichier de clé {} est illisible : il doit contenir 64 caractères hexadécimaux",
            path.display()
        ))
    })
}

/// Creates a new key file with mode 0600 (never overwriting one).
pub(crate) fn create_key_file(path: &Path) -> Result<KeyMaterial, CliError> {
    let key = KeyMaterial::generate(&SystemRandom as &dyn RandomSource)
        .map_err(|error| CliError::refusal(format!("génération de la clé impossible ({error})")))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| {
            CliError::refusal(format!("impossible de créer {} ({error})", path.display()))
        })?;
    file.write_all(key.to_file_text().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| {
            CliError::refusal(format!("impossible d'écrire {} ({error})", path.display()))
        })?;
    Ok(key)
}
