//! The blob store that holds encrypted document versions (ADR 0010): a local directory by
//! default, or any S3-compatible object store. Blobs are written once under a random name
//! and never rewritten; what reaches the store is already sealed, so the store (and
//! whoever runs it) sees only ciphertext and sizes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use carnet_store::StoreError;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};
use tokio::io::AsyncWriteExt as _;

use crate::ServiceError;

/// Bytes sent per part of an S3 multipart upload (S3 asks at least 5 MiB but the last).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once while uploading.
const PARTS_IN_FLIGHT: usize = 2;

/// Where an S3-compatible blob store is and how to sign in to it.
#[derive(Clone)]
pub struct S3Settings {
    /// `https://s3.example.fr` (plain `http` only on a loopback address).
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Keys are written below this prefix (may be empty).
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Settings {
    /// A client for the bucket: path-style requests (what most S3-compatible stores
    /// expect), signed; plain HTTP only towards a loopback endpoint. The error is a French
    /// sentence without the secret.
    pub fn object_store(&self) -> Result<Arc<dyn ObjectStore>, String> {
        let url = check_endpoint(&self.endpoint)
            .ok_or_else(|| format!("adresse invalide : {}", self.endpoint))?;
        let store = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region(&self.region)
            .with_bucket_name(&self.bucket)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(url.plain_loopback)
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Arc::new(store))
    }
}

#[derive(Clone)]
enum Backend {
    /// One file per blob, written to a temporary name, synced, then renamed.
    Local(PathBuf),
    /// Objects under `prefix`, written by multipart upload (never visible half-written).
    Object {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

/// The blob store of an instance.
#[derive(Clone)]
pub struct Blobs {
    backend: Backend,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Local(root) => f.debug_tuple("Blobs::Local").field(root).finish(),
            Backend::Object { store, prefix } => f
                .debug_struct("Blobs::Object")
                .field("store", &store.to_string())
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// Why a blob store could not be set up (shown to the operator).
#[derive(Debug, thiserror::Error)]
pub enum BlobsError {
    #[error("dossier des documents {path} : {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stockage S3 : {0}")]
    S3(String),
    #[error("document {name} : {reason}")]
    Blob { name: String, reason: String },
}

impl BlobsError {
    fn blob(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::Blob {
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Whether `name` can be a blob's name: what the store writes (`<uuid>.bin`) and, more
/// broadly, one path segment of ASCII letters, digits, `-`, `_` and `.` that does not
/// start with a dot (so it is safe as a file name anywhere) and is not a write in progress.
pub fn is_blob_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.ends_with(".partial")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Blobs {
    /// Blobs kept in `root` (created with mode 0700 if missing).
    pub fn local(root: &Path) -> Result<Self, BlobsError> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|source| BlobsError::Directory {
                path: root.to_path_buf(),
                source,
            })?;
        Ok(Self {
            backend: Backend::Local(root.to_path_buf()),
        })
    }

    /// Blobs kept in an S3-compatible bucket. Path-style requests (what most
    /// S3-compatible stores expect); plain HTTP only towards a loopback endpoint.
    pub fn s3(settings: &S3Settings) -> Result<Self, BlobsError> {
        Ok(Self {
            backend: Backend::Object {
                store: settings.object_store().map_err(BlobsError::S3)?,
                prefix: settings.prefix.trim_matches('/').to_owned(),
            },
        })
    }

    fn object_path(prefix: &str, name: &str) -> object_store::path::Path {
        if prefix.is_empty() {
            object_store::path::Path::from(name)
        } else {
            object_store::path::Path::from(format!("{prefix}/{name}"))
        }
    }

    /// Starts writing the blob `name`; nothing is visible under that name before
    /// [`BlobWriter::finish`].
    pub(crate) async fn writer(&self, name: &str) -> Result<BlobWriter, ServiceError> {
        match &self.backend {
            Backend::Local(root) => {
                let path = root.join(name);
                let temporary = root.join(format!("{name}.partial"));
                let file = tokio::fs::File::create(&temporary)
                    .await
                    .map_err(|error| unavailable(&error))?;
                Ok(BlobWriter::Local {
                    file,
                    temporary,
                    path,
                })
            }
            Backend::Object { store, prefix } => {
                let upload = store
                    .put_multipart(&Self::object_path(prefix, name))
                    .await
                    .map_err(|error| unavailable(&error))?;
                Ok(BlobWriter::Object(WriteMultipart::new_with_chunk_size(
                    upload, PART_BYTES,
                )))
            }
        }
    }

    /// The whole blob `name`, handed to `then` on a blocking thread (bulk work such as
    /// decryption stays off the threads serving requests; a local file is read in the
    /// same hop).
    pub(crate) async fn read_then<T, F>(&self, name: &str, then: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(Vec<u8>) -> T + Send + 'static,
    {
        let done = match &self.backend {
            Backend::Local(root) => {
                let path = root.join(name);
                tokio::task::spawn_blocking(move || std::fs::read(path).map(then)).await
            }
            Backend::Object { store, prefix } => {
                let found = store
                    .get(&Self::object_path(prefix, name))
                    .await
                    .map_err(|error| unavailable(&error))?;
                let bytes = found.bytes().await.map_err(|error| unavailable(&error))?;
                tokio::task::spawn_blocking(move || Ok(then(bytes.to_vec()))).await
            }
        };
        blocking_outcome(done)
    }

    /// Every blob of the store with its size, by name (names that [`is_blob_name`]
    /// refuses are left out: nothing the store writes, and nothing safe to copy).
    pub async fn list(&self) -> Result<Vec<(String, u64)>, BlobsError> {
        match &self.backend {
            Backend::Local(root) => {
                let failed = |error: std::io::Error| BlobsError::Directory {
                    path: root.clone(),
                    source: error,
                };
                let mut entries = tokio::fs::read_dir(root).await.map_err(failed)?;
                let mut found = Vec::new();
                while let Some(entry) = entries.next_entry().await.map_err(failed)? {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let meta = entry.metadata().await.map_err(failed)?;
                    if meta.is_file() && is_blob_name(&name) {
                        found.push((name, meta.len()));
                    }
                }
                Ok(found)
            }
            Backend::Object { store, prefix } => {
                use futures_util::TryStreamExt as _;
                let below =
                    (!prefix.is_empty()).then(|| object_store::path::Path::from(prefix.as_str()));
                let depth = below.as_ref().map_or(0, |path| path.parts().count());
                let objects: Vec<object_store::ObjectMeta> = store
                    .list(below.as_ref())
                    .try_collect()
                    .await
                    .map_err(|error| BlobsError::S3(error.to_string()))?;
                Ok(objects
                    .into_iter()
                    .filter(|meta| meta.location.parts().count() == depth + 1)
                    .filter_map(|meta| {
                        let name = meta.location.filename()?.to_owned();
                        is_blob_name(&name).then_some((name, meta.size))
                    })
                    .collect())
            }
        }
    }

    /// Copies the blob `name` into the file `to` (written beside it under a temporary
    /// name, synced, then renamed: `to` is whole or absent) and returns its size. The
    /// object is streamed, never held whole in memory.
    pub async fn download(&self, name: &str, to: &Path) -> Result<u64, BlobsError> {
        use futures_util::StreamExt as _;
        let failed = |error: &dyn std::fmt::Display| BlobsError::blob(name, error);
        let mut temporary = to.as_os_str().to_owned();
        temporary.push(".partial");
        let temporary = PathBuf::from(temporary);
        let mut file = tokio::fs::File::create(&temporary)
            .await
            .map_err(|error| failed(&error))?;
        let written: Result<u64, BlobsError> = async {
            let mut size = 0_u64;
            match &self.backend {
                Backend::Local(root) => {
                    let mut source = tokio::fs::File::open(root.join(name))
                        .await
                        .map_err(|error| failed(&error))?;
                    size = tokio::io::copy(&mut source, &mut file)
                        .await
                        .map_err(|error| failed(&error))?;
                }
                Backend::Object { store, prefix } => {
                    let mut stream = store
                        .get(&Self::object_path(prefix, name))
                        .await
                        .map_err(|error| failed(&error))?
                        .into_stream();
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|error| failed(&error))?;
                        file.write_all(&chunk)
                            .await
                            .map_err(|error| failed(&error))?;
                        size += chunk.len() as u64;
                    }
                }
            }
            // Flushed first: a sync alone does not report a failed buffered write.
            file.flush().await.map_err(|error| failed(&error))?;
            file.sync_all().await.map_err(|error| failed(&error))?;
            Ok(size)
        }
        .await;
        drop(file);
        match written {
            Ok(size) => {
                tokio::fs::rename(&temporary, to)
                    .await
                    .map_err(|error| failed(&error))?;
                sync_parent(to).await.map_err(|error| failed(&error))?;
                Ok(size)
            }
            Err(error) => {
                let _ = tokio::fs::remove_file(&temporary).await;
                Err(error)
            }
        }
    }

    /// The size of the blob `name`, or `None` when the store has no blob of that name.
    pub async fn size_of(&self, name: &str) -> Result<Option<u64>, BlobsError> {
        let failed = |error: &dyn std::fmt::Display| BlobsError::blob(name, error);
        match &self.backend {
            Backend::Local(root) => match tokio::fs::metadata(root.join(name)).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(failed(&error)),
            },
            Backend::Object { store, prefix } => {
                match store.head(&Self::object_path(prefix, name)).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(error) => Err(failed(&error)),
                }
            }
        }
    }

    /// Stores `bytes` as the blob `name` unless the store already has a blob of that
    /// name: nothing is ever overwritten. Meant for restores (on a bucket the name is
    /// looked up, then written: nothing else writes a name that only a restore knows).
    pub async fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<Stored, BlobsError> {
        let failed = |error: &dyn std::fmt::Display| BlobsError::blob(name, error);
        if !is_blob_name(name) {
            return Err(failed(&"nom de document refusé"));
        }
        if let Some(size) = self.size_of(name).await? {
            return Ok(Stored::AlreadyThere { size });
        }
        match &self.backend {
            Backend::Local(root) => {
                // Written whole under a temporary name, then linked to its name (which
                // fails if the name is taken): never a half-written or replaced blob.
                let temporary = root.join(format!("{name}.partial"));
                let path = root.join(name);
                let written = async {
                    let mut file = tokio::fs::File::create(&temporary).await?;
                    file.write_all(&bytes).await?;
                    // Flushed first: a sync alone does not report a failed buffered write.
                    file.flush().await?;
                    file.sync_all().await?;
                    tokio::fs::hard_link(&temporary, &path).await
                }
                .await;
                let _ = tokio::fs::remove_file(&temporary).await;
                let written = match written {
                    Ok(()) => sync_parent(&path).await,
                    Err(error) => Err(error),
                };
                match written {
                    Ok(()) => Ok(Stored::Written),
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        let size = self.size_of(name).await?.unwrap_or_default();
                        Ok(Stored::AlreadyThere { size })
                    }
                    Err(error) => Err(failed(&error)),
                }
            }
            Backend::Object { store, prefix } => {
                store
                    .put(&Self::object_path(prefix, name), bytes.into())
                    .await
                    .map_err(|error| failed(&error))?;
                Ok(Stored::Written)
            }
        }
    }

    /// Removes a blob whose database row did not land (best effort: an orphan blob is
    /// ciphertext nobody holds the key to).
    pub(crate) async fn remove(&self, name: &str) {
        let outcome = match &self.backend {
            Backend::Local(root) => tokio::fs::remove_file(root.join(name))
                .await
                .map_err(|error| error.to_string()),
            Backend::Object { store, prefix } => store
                .delete(&Self::object_path(prefix, name))
                .await
                .map_err(|error| error.to_string()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "orphan blob left in the blob store");
        }
    }
}

/// What [`Blobs::put_new`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    Written,
    /// The store already had a blob of that name (of this size): left as it was.
    AlreadyThere {
        size: u64,
    },
}

/// Syncs the directory holding `path`, so a name just given to a file survives a crash.
async fn sync_parent(path: &Path) -> std::io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || sync_parent_now(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// [`sync_parent`], on the calling (blocking) thread.
fn sync_parent_now(path: &Path) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(directory)?.sync_all()
}

/// A blob being written.
pub(crate) enum BlobWriter {
    Local {
        file: tokio::fs::File,
        temporary: PathBuf,
        path: PathBuf,
    },
    Object(WriteMultipart),
}

impl BlobWriter {
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), ServiceError> {
        match self {
            Self::Local { file, .. } => file
                .write_all(bytes)
                .await
                .map_err(|error| unavailable(&error)),
            Self::Object(upload) => {
                upload
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|error| unavailable(&error))?;
                upload.write(bytes);
                Ok(())
            }
        }
    }

    /// Makes the blob durable and visible under its name.
    pub(crate) async fn finish(self) -> Result<(), ServiceError> {
        match self {
            Self::Local {
                mut file,
                temporary,
                path,
            } => {
                // The last buffered write, and its error if it failed: a sync alone does
                // not report it (tokio keeps it for the next write or flush).
                let flushed = file.flush().await;
                let file = file.into_std().await;
                // Sync, rename and the directory's sync in one hop to a blocking thread.
                let done = tokio::task::spawn_blocking(move || {
                    let synced = flushed.and_then(|()| file.sync_all());
                    drop(file);
                    if let Err(error) = synced {
                        let _ = std::fs::remove_file(&temporary);
                        return Err(error);
                    }
                    std::fs::rename(&temporary, &path)?;
                    // The new name is durable only once its directory is: before the
                    // document's row commits, a crash must not lose the blob it names.
                    sync_parent_now(&path)
                })
                .await;
                blocking_outcome(done)
            }
            Self::Object(upload) => upload
                .finish()
                .await
                .map(drop)
                .map_err(|error| unavailable(&error)),
        }
    }

    /// Drops what was written.
    pub(crate) async fn abort(self) {
        match self {
            Self::Local {
                file, temporary, ..
            } => {
                drop(file);
                let _ = tokio::fs::remove_file(&temporary).await;
            }
            Self::Object(upload) => {
                if let Err(error) = upload.abort().await {
                    tracing::warn!(%error, "an aborted upload could not be cancelled");
                }
            }
        }
    }
}

/// The outcome of file work done on a blocking thread.
fn blocking_outcome<T>(
    done: Result<std::io::Result<T>, tokio::task::JoinError>,
) -> Result<T, ServiceError> {
    match done {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(unavailable(&error)),
        Err(error) => Err(unavailable(&error)),
    }
}

fn unavailable(error: &dyn std::fmt::Display) -> ServiceError {
    tracing::error!(%error, "blob store failed");
    ServiceError::Unavailable(StoreError::Corrupt("blob store"))
}

struct EndpointCheck {
    plain_loopback: bool,
}

/// Checks an endpoint's scheme: `https://`, or `http://` towards a loopback host.
fn check_endpoint(endpoint: &str) -> Option<EndpointCheck> {
    if let Some(rest) = endpoint.strip_prefix("https://") {
        return (!rest.is_empty()).then_some(EndpointCheck {
            plain_loopback: false,
        });
    }
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then_some(EndpointCheck {
        plain_loopback: true,
    })
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn plain_http_only_towards_loopback() {
        assert!(check_endpoint("https://s3.example.fr").is_some());
        assert!(check_endpoint("http://127.0.0.1:9000").is_some());
        assert!(check_endpoint("http://[::1]:9000").is_some());
        assert!(check_endpoint("http://localhost:9000/").is_some());
        assert!(check_endpoint("http://s3.example.fr").is_none());
        assert!(check_endpoint("http://10.0.0.5:9000").is_none());
        assert!(check_endpoint("ftp://127.0.0.1").is_none());
        assert!(check_endpoint("https://").is_none());
    }
}
