//! Opening (or creating) the repository of a target.

use std::sync::Arc;

use rustic_backend::LocalBackend;
use rustic_core::repofile::Chunker;
use rustic_core::{
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository, RepositoryBackends,
    RepositoryOptions, WriteBackend,
};

use crate::BackupError;
use crate::s3::S3Backend;
use crate::target::{Location, Target};

/// Chunk size of the repository's fixed-size chunker (see ADR 0012): a database rewrites
/// pages in place, scattered; content-defined chunks of ~1 MiB would re-store almost the
/// whole file after 1 % of random page writes, 32 KiB chunks re-store ~8 % of it.
pub const CHUNK_SIZE: u64 = 32 * 1024;

/// zstd level 1 (fast): what Carnet backs up is mostly ciphertext already (sealed
/// columns, sealed documents), which does not compress, so the default level (3) spends
/// CPU for little; page slack still shrinks (no compression at all was measured: no
/// faster, 15 % larger, and 0.15× instead of 0.11× after scattered page writes).
const COMPRESSION: i32 = 1;

/// Largest data pack, in MiB.
const PACK_MIB: u64 = 16;

/// Where the instance's files sit inside every snapshot (`restic restore latest:/carnet`
/// gives back a data directory).
pub const SNAPSHOT_ROOT: &str = "/carnet";

/// The repository password: generated at installation, kept in the data directory
/// (0600) and printed in the recovery kit; distinct from the instance key.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

fn backend(target: &Target) -> Result<Arc<dyn WriteBackend>, BackupError> {
    let unreachable = |detail: String| BackupError::Unreachable {
        target: target.name.clone(),
        detail,
    };
    match &target.location {
        Location::Local(path) => {
            let path_text = path
                .to_str()
                .ok_or_else(|| unreachable("chemin non UTF-8".into()))?;
            let backend = LocalBackend::new(path_text, Vec::new())
                .map_err(|error| unreachable(error.display_log()))?;
            Ok(Arc::new(backend))
        }
        Location::S3(settings) => Ok(Arc::new(
            S3Backend::new(settings, target.address()).map_err(unreachable)?,
        )),
    }
}

fn repository(target: &Target) -> Result<Repository<()>, BackupError> {
    let backends = RepositoryBackends::new(backend(target)?, None);
    // No local cache: it would sit in the service account's home; the repository is
    // read directly (index and snapshot files are small next to the packs).
    let options = RepositoryOptions::default().no_cache(true);
    Repository::new(&options, &backends)
        .map_err(|error| BackupError::from_rustic(&target.name, &error))
}

/// Whether the target holds a repository; an error when it cannot be reached.
fn is_initialised(target: &Target, repository: &Repository<()>) -> Result<bool, BackupError> {
    if let Location::Local(path) = &target.location
        && !path.exists()
    {
        return Ok(false);
    }
    repository
        .config_id()
        .map(|id| id.is_some())
        .map_err(|error| BackupError::Unreachable {
            target: target.name.clone(),
            detail: error.display_log(),
        })
}

/// Opens the target's repository with `password`.
pub(crate) fn open(
    target: &Target,
    password: &Password,
) -> Result<Repository<OpenStatus>, BackupError> {
    let repository = repository(target)?;
    if !is_initialised(target, &repository)? {
        return Err(BackupError::NotInitialised {
            target: target.name.clone(),
        });
    }
    repository
        .open(&Credentials::password(password.expose()))
        .map_err(|error| BackupError::from_rustic(&target.name, &error))
}

/// Opens the target's repository, creating it first when the target is empty.
pub(crate) fn open_or_init(
    target: &Target,
    password: &Password,
) -> Result<Repository<OpenStatus>, BackupError> {
    let repository = repository(target)?;
    let credentials = Credentials::password(password.expose());
    let opened = if is_initialised(target, &repository)? {
        repository.open(&credentials)
    } else {
        if let Location::Local(path) = &target.location {
            // Only the last directory is created: a missing parent is a disk that is not
            // mounted, and backing up to the system disk in its place would be a silent
            // failure.
            std::fs::create_dir(path).map_err(|error| BackupError::Unreachable {
                target: target.name.clone(),
                detail: format!(
                    "{} ne peut pas être créé ({error}) : le disque est-il branché ?",
                    path.display()
                ),
            })?;
        }
        // Data packs of 16 MiB at most (restic's default; rustic's grow with the
        // repository from 32 MiB): a pack is held in memory while it is written.
        let config = ConfigOptions::default()
            .set_chunker(Chunker::FixedSize)
            .set_chunk_size(bytesize::ByteSize::b(CHUNK_SIZE))
            .set_datapack_size(bytesize::ByteSize::mib(PACK_MIB))
            .set_datapack_size_limit(bytesize::ByteSize::mib(PACK_MIB))
            .set_compression(COMPRESSION);
        repository.init(&credentials, &KeyOptions::default(), &config)
    };
    opened.map_err(|error| BackupError::from_rustic(&target.name, &error))
}
