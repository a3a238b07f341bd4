//! A restic repository in an S3-compatible bucket, over `object_store`: the same key
//! layout as restic's S3 backend (`config`, `keys/ID`, `snapshots/ID`, `index/ID`,
//! `data/XX/ID`), so `restic -r s3:https://host/bucket/prefix` reads it too.
//!
//! `rustic_core` calls backends from plain threads; the requests run on one small
//! runtime kept for the process (never dropped, so never dropped inside async code).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};

use carnet_service::S3Settings;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("carnet-backup-s3")
            .enable_all()
            .build()
            .expect("the backup S3 runtime starts (threads available)")
    })
}

#[derive(Debug)]
pub(crate) struct S3Backend {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    location: String,
}

fn backend_error(what: &'static str, error: object_store::Error) -> Box<RusticError> {
    RusticError::with_source(ErrorKind::Backend, what, error)
}

impl S3Backend {
    pub(crate) fn new(settings: &S3Settings, location: String) -> Result<Self, String> {
        Ok(Self {
            store: settings.object_store()?,
            prefix: settings.prefix.trim_matches('/').to_owned(),
            location,
        })
    }

    fn key(&self, name: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        }
    }

    fn file_key(&self, tpe: FileType, id: &Id) -> Path {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => self.key("config"),
            FileType::Pack => self.key(&format!("data/{}/{}", &hex[..2], hex.as_str())),
            _ => self.key(&format!("{}/{}", tpe.dirname(), hex.as_str())),
        }
    }
}

/// Runs a request on the backup runtime, from a plain (non-async) thread.
pub(crate) fn block_on<T: Send>(future: impl Future<Output = T> + Send) -> T {
    runtime().block_on(future)
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            return block_on(async {
                match self.store.head(&self.key("config")).await {
                    Ok(meta) => Ok(vec![(Id::default(), meta.size as u32)]),
                    Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                    Err(error) => Err(backend_error("S3 : lecture de la configuration", error)),
                }
            });
        }
        let prefix = self.key(tpe.dirname());
        block_on(async {
            let objects: Vec<_> = self
                .store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|error| backend_error("S3 : liste des objets", error))?;
            Ok(objects
                .into_iter()
                .filter_map(|meta| {
                    let name = meta.location.filename()?;
                    let id = Id::parse_some(name, tpe)?;
                    Some((id, u32::try_from(meta.size).ok()?))
                })
                .collect())
        })
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let key = self.file_key(tpe, id);
        block_on(async {
            self.store
                .get(&key)
                .await
                .map_err(|error| backend_error("S3 : lecture d'un objet", error))?
                .bytes()
                .await
                .map_err(|error| backend_error("S3 : lecture d'un objet", error))
        })
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let key = self.file_key(tpe, id);
        let range = u64::from(offset)..u64::from(offset) + u64::from(length);
        block_on(async {
            self.store
                .get_range(&key, range)
                .await
                .map_err(|error| backend_error("S3 : lecture d'une partie d'objet", error))
        })
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.file_key(tpe, id).to_string()
    }
}

impl WriteBackend for S3Backend {
    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let key = self.file_key(tpe, id);
        let payload: PutPayload = content.into_vec().into_iter().collect();
        block_on(async {
            self.store
                .put(&key, payload)
                .await
                .map(|_| ())
                .map_err(|error| backend_error("S3 : écriture d'un objet", error))
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let key = self.file_key(tpe, id);
        block_on(async {
            self.store
                .delete(&key)
                .await
                .map_err(|error| backend_error("S3 : suppression d'un objet", error))
        })
    }
}
