//! Documents of the care records (ADR 0010): exam results, prescriptions, photos,
//! letters. Each version gets its own key (wrapped by the patient key), its bytes are
//! encrypted in 64 KiB chunks (AES-256-GCM, the chunk's index and whether it is the last
//! bound into each tag, so chunks cannot be reordered, dropped or cut off) and streamed
//! to the blob store under a random name; the file name, type and size are sealed in the
//! database. The type is sniffed from the content (PDF, JPEG, PNG), never taken from the
//! client. A download is audited, and its every chunk verified before a byte is served.

use bytes::Bytes;
use carnet_audit::{Action, Outcome, Targets};
use carnet_crypto::{DataKey, SealContext, SealingKey};
use carnet_store::{DocumentVersionRecord, StoreError};

use crate::blobs::Blobs;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::ClinicalScope;
use crate::{RecordsScope, ServiceError, Services};

/// Plaintext bytes per encrypted chunk.
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
/// Sealed bytes gathered before one write to the blob store. Each write to a local file
/// is a hop to a blocking thread: written chunk by chunk (64 KiB), a 50 MB upload took
/// 1.5-1.7 times as long as a plain streamed file; gathered, about as long (ADR 0010).
const WRITE_BYTES: usize = 1024 * 1024;
/// Bytes enough to tell the types apart (the PNG signature is the longest).
const SNIFF_BYTES: usize = 8;
/// Document keys seal their chunks and metadata as version 1.
const DOCUMENT_KEY_VERSION: u32 = 1;

/// The kinds of file a document may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaType {
    #[serde(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
}

impl MediaType {
    /// The type of a file from its first bytes, if it is one Carnet keeps.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// What is sealed beside a version's blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DocumentMeta {
    name: String,
    media_type: MediaType,
    size: u64,
}

/// A document version as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentView {
    pub id: Uuid,
    pub version: i64,
    pub name: String,
    pub media_type: MediaType,
    pub size: u64,
    pub created_at: carnet_domain::Timestamp,
    pub created_by: Uuid,
}

/// A downloaded, verified document.
#[derive(Debug)]
pub struct DocumentContent {
    pub view: DocumentView,
    pub bytes: Vec<u8>,
}

fn chunk_nonce_aad(version_id: &Uuid, index: u64, last: bool) -> Vec<u8> {
    let mut aad = version_id.as_bytes().to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

fn meta_context(version_id: &Uuid) -> SealContext<'_> {
    SealContext {
        table: "document_versions",
        column: "sealed_meta",
        row: version_id.as_bytes(),
    }
}

fn key_context(version_id: &Uuid) -> SealContext<'_> {
    SealContext {
        table: "document_versions",
        column: "wrapped_key",
        row: version_id.as_bytes(),
    }
}

/// Seals a document's chunks in order, gathering them for the blob store: each chunk
/// with the sealing layout of [`SealingKey`], bound to its place (version, index, last or
/// not) as the row.
struct ChunkSealer<'a> {
    key: &'a SealingKey,
    version_id: &'a Uuid,
    random: &'a dyn carnet_crypto::RandomSource,
    /// The next chunk's index.
    index: u64,
    /// Sealed chunks not yet written.
    out: Vec<u8>,
}

impl ChunkSealer<'_> {
    fn seal(&mut self, plain: &[u8], last: bool) -> Result<(), ServiceError> {
        let place = chunk_nonce_aad(self.version_id, self.index, last);
        self.key
            .seal_into(
                plain,
                SealContext {
                    table: "document_chunks",
                    column: "bytes",
                    row: &place,
                },
                self.random,
                &mut self.out,
            )
            .map_err(|_| ServiceError::Randomness)?;
        self.index += 1;
        Ok(())
    }

    /// Hands the gathered chunks to `writer` once there are `at_least` bytes of them.
    async fn write_out(
        &mut self,
        writer: &mut crate::blobs::BlobWriter,
        at_least: usize,
    ) -> Result<(), ServiceError> {
        if !self.out.is_empty() && self.out.len() >= at_least {
            writer.write(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
}

/// The size of one sealed chunk of `plain` bytes.
fn sealed_len(plain: usize) -> usize {
    1 + 4 + 12 + plain + TAG
}

impl Services {
    /// Sets where documents are kept.
    #[must_use]
    pub fn with_blobs(mut self, blobs: Blobs) -> Self {
        self.blobs = Some(std::sync::Arc::new(blobs));
        self
    }

    fn blobs(&self) -> Result<&Blobs, ServiceError> {
        self.blobs
            .as_deref()
            .ok_or(ServiceError::Unavailable(StoreError::Corrupt(
                "no blob store",
            )))
    }

    /// Stores a new document (`document_id` none) or a new version of one, from a stream
    /// of bytes of at most `max_bytes`. Refused: an empty file, a type other than PDF,
    /// JPEG or PNG, a file over the limit — and then nothing is kept.
    pub async fn upload_document<S, E>(
        &self,
        scope: &ClinicalScope,
        patient_id: Uuid,
        document_id: Option<Uuid>,
        name: &str,
        body: S,
        max_bytes: u64,
    ) -> Result<DocumentView, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let records = scope.records();
        let name = crate::label(name, "au document", "compte-rendu.pdf")?;
        let practice_id = records.practice_id();
        let number = match document_id {
            None => 1,
            Some(document_id) => {
                let versions = self
                    .read(move |tx| {
                        Box::pin(async move {
                            tx.document_versions(practice_id, patient_id, Some(document_id))
                                .await
                        })
                    })
                    .await?;
                versions
                    .first()
                    .map(|latest| latest.number + 1)
                    .ok_or(ServiceError::NotFound)?
            }
        };
        let (_, patient_key) = self.patient_with_key(records, patient_id).await?;
        let document_id = match document_id {
            Some(id) => id,
            None => self.new_uuid()?,
        };
        let version_id = self.new_uuid()?;
        let document_key =
            DataKey::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let sealing = document_key
            .sealing_key(DOCUMENT_KEY_VERSION)
            .map_err(|_| ServiceError::Integrity)?;
        let blob_name = format!("{}.bin", self.new_uuid()?.simple());
        let (media_type, size) = self
            .write_blob(&blob_name, &version_id, &sealing, body, max_bytes)
            .await?;
        let meta = DocumentMeta {
            name: name.clone(),
            media_type,
            size,
        };
        let sealed_meta = serde_json::to_vec(&meta)
            .map_err(|_| ServiceError::Integrity)
            .and_then(|plain| {
                sealing
                    .seal(&plain, meta_context(&version_id), self.random.as_ref())
                    .map_err(|_| ServiceError::Randomness)
            })?;
        let wrapped_key = patient_key
            .sealing_key(DOCUMENT_KEY_VERSION)
            .and_then(|wrapping| {
                document_key.wrap(&wrapping, key_context(&version_id), self.random.as_ref())
            })
            .map_err(|_| ServiceError::Randomness)?;
        let now = self.now();
        let record = DocumentVersionRecord {
            version_id,
            document_id,
            patient_id,
            number,
            wrapped_key,
            sealed_meta,
            blob_name: blob_name.clone(),
            created_at: now,
            created_by: *records.member_id().as_uuid(),
        };
        let event = self.document_event(records, Action::RecordWritten, patient_id, document_id);
        let stored = self
            .audited(vec![event], move |tx| {
                Box::pin(async move { tx.insert_document_version(practice_id, &record).await })
            })
            .await;
        if let Err(error) = stored {
            // The row did not land: the blob would be an orphan.
            self.blobs()?.remove(&blob_name).await;
            return Err(error);
        }
        Ok(DocumentView {
            id: document_id,
            version: number,
            name,
            media_type,
            size,
            created_at: now,
            created_by: *records.member_id().as_uuid(),
        })
    }

    /// Encrypts `body` chunk by chunk into the blob `name`; returns the sniffed type and
    /// the plaintext size. On any refusal or failure, the partial blob is removed.
    async fn write_blob<S, E>(
        &self,
        name: &str,
        version_id: &Uuid,
        key: &SealingKey,
        mut body: S,
        max_bytes: u64,
    ) -> Result<(MediaType, u64), ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut writer = self.blobs()?.writer(name).await?;
        let mut sealer = ChunkSealer {
            key,
            version_id,
            random: self.random.as_ref(),
            index: 0,
            out: Vec::with_capacity(WRITE_BYTES + sealed_len(CHUNK)),
        };
        let outcome = async {
            // The chunk being filled (never more than CHUNK bytes) and the first bytes,
            // for the type.
            let mut pending: Vec<u8> = Vec::with_capacity(CHUNK);
            let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
            let mut media_type = None;
            let mut size: u64 = 0;
            while let Some(piece) = body.next().await {
                let piece = piece.map_err(|error| ServiceError::Invalid {
                    field: "file",
                    message: format!("Envoi interrompu ({error})."),
                })?;
                size += piece.len() as u64;
                if size > max_bytes {
                    return Err(ServiceError::TooLarge { max_bytes });
                }
                if media_type.is_none() {
                    let take = (SNIFF_BYTES - head.len()).min(piece.len());
                    head.extend_from_slice(&piece[..take]);
                    if head.len() == SNIFF_BYTES {
                        media_type = Some(MediaType::sniff(&head).ok_or_else(unsupported)?);
                    }
                }
                // A chunk is sealed once a byte follows it: the last one is sealed as
                // the last. First the chunk begun by earlier pieces…
                let mut input: &[u8] = &piece;
                if !pending.is_empty() {
                    let take = (CHUNK - pending.len()).min(input.len());
                    pending.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if !input.is_empty() {
                        sealer.seal(&pending, false)?;
                        pending.clear();
                    }
                }
                // …then whole chunks straight from the piece (no copy of the plaintext).
                while input.len() > CHUNK {
                    sealer.seal(&input[..CHUNK], false)?;
                    input = &input[CHUNK..];
                    sealer.write_out(&mut writer, WRITE_BYTES).await?;
                }
                pending.extend_from_slice(input);
                sealer.write_out(&mut writer, WRITE_BYTES).await?;
            }
            if size == 0 {
                return Err(ServiceError::Invalid {
                    field: "file",
                    message: "Le fichier est vide.".into(),
                });
            }
            let media_type = match media_type {
                Some(found) => found,
                None => MediaType::sniff(&head).ok_or_else(unsupported)?,
            };
            sealer.seal(&pending, true)?;
            sealer.write_out(&mut writer, 0).await?;
            Ok((media_type, size))
        }
        .await;
        match outcome {
            Ok(done) => {
                writer.finish().await?;
                Ok(done)
            }
            Err(error) => {
                writer.abort().await;
                Err(error)
            }
        }
    }

    /// Opens a version's key and metadata (a failure is audited as an integrity failure).
    async fn open_version(
        &self,
        scope: &RecordsScope,
        patient_key: &DataKey,
        version: &DocumentVersionRecord,
    ) -> Result<(SealingKey, DocumentView), ServiceError> {
        let opened = patient_key
            .sealing_key(DOCUMENT_KEY_VERSION)
            .ok()
            .and_then(|wrapping| {
                DataKey::unwrap(
                    &wrapping,
                    &version.wrapped_key,
                    key_context(&version.version_id),
                )
                .ok()
            })
            .and_then(|key| key.sealing_key(DOCUMENT_KEY_VERSION).ok())
            .and_then(|sealing| {
                let plain = sealing
                    .open(&version.sealed_meta, meta_context(&version.version_id))
                    .ok()?;
                let meta: DocumentMeta = serde_json::from_slice(&plain).ok()?;
                Some((sealing, meta))
            });
        match opened {
            Some((sealing, meta)) => Ok((
                sealing,
                DocumentView {
                    id: version.document_id,
                    version: version.number,
                    name: meta.name,
                    media_type: meta.media_type,
                    size: meta.size,
                    created_at: version.created_at,
                    created_by: version.created_by,
                },
            )),
            None => Err(self
                .integrity_failure(scope, Some(version.patient_id))
                .await),
        }
    }

    /// The patient's documents (each at its current version), or every version of one
    /// document; newest first.
    pub async fn documents(
        &self,
        scope: &ClinicalScope,
        patient_id: Uuid,
        document_id: Option<Uuid>,
    ) -> Result<Vec<DocumentView>, ServiceError> {
        let records = scope.records();
        let (_, patient_key) = self.patient_with_key(records, patient_id).await?;
        let practice_id = records.practice_id();
        let event = self.records_event(records, Action::RecordRead, Some(patient_id));
        let versions = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    tx.document_versions(practice_id, patient_id, document_id)
                        .await
                })
            })
            .await?;
        let mut listed: Vec<DocumentView> = Vec::new();
        for version in &versions {
            // Without a document named, only each document's newest version is listed.
            if document_id.is_none() && listed.iter().any(|seen| seen.id == version.document_id) {
                continue;
            }
            listed.push(self.open_version(records, &patient_key, version).await?.1);
        }
        if document_id.is_some() && listed.is_empty() {
            return Err(ServiceError::NotFound);
        }
        Ok(listed)
    }

    /// A successful access to one of a patient's documents, on the practice's chain.
    fn document_event(
        &self,
        records: &RecordsScope,
        action: Action,
        patient_id: Uuid,
        document_id: Uuid,
    ) -> carnet_audit::Event {
        self.audit_event(
            records.caller(),
            carnet_audit::ChainId::Practice(records.practice_id()),
            action,
            Targets {
                patient: Some(patient_id),
                document: Some(document_id),
                ..Targets::default()
            },
            Outcome::Success,
        )
    }

    /// A document's content (the current version, or `number`), decrypted and verified
    /// whole before it is returned. The download's audit entry is committed while the
    /// content is read and opened, and nothing is returned before it is durable: the
    /// same guarantee as auditing first, without adding the commit's sync to the wait.
    pub async fn download_document(
        &self,
        scope: &ClinicalScope,
        patient_id: Uuid,
        document_id: Uuid,
        number: Option<i64>,
    ) -> Result<DocumentContent, ServiceError> {
        let records = scope.records();
        let practice_id = records.practice_id();
        // Each statement decides on its own rows (versions are only ever added).
        let (patient, versions) = self
            .read_latest(move |tx| {
                Box::pin(async move {
                    let patient = tx.patient(practice_id, patient_id).await?;
                    let versions = tx
                        .document_versions(practice_id, patient_id, Some(document_id))
                        .await?;
                    Ok((patient, versions))
                })
            })
            .await?;
        let patient = patient.ok_or(ServiceError::NotFound)?;
        let version = match number {
            None => versions.first(),
            Some(number) => versions.iter().find(|version| version.number == number),
        }
        .ok_or(ServiceError::NotFound)?;
        let patient_key = self.patient_key(records, records.keys(), &patient).await?;
        let (sealing, view) = self.open_version(records, &patient_key, version).await?;
        let event =
            self.document_event(records, Action::DocumentDownloaded, patient_id, document_id);
        let version_id = version.version_id;
        // The version read again in the audit's transaction: what is served is what the
        // committed entry says was there.
        let audited = self.audited(vec![event], move |tx| {
            Box::pin(async move {
                let versions = tx
                    .document_versions(practice_id, patient_id, Some(document_id))
                    .await?;
                if versions.iter().any(|found| found.version_id == version_id) {
                    Ok(())
                } else {
                    Err(StoreError::MissingReference)
                }
            })
        });
        // Up to the size limit of bulk decryption: off the threads serving requests.
        let opened = async {
            self.blobs()?
                .read_then(&version.blob_name, move |sealed| {
                    open_chunks(&sealing, &version_id, sealed)
                })
                .await
        };
        let (audited, opened) = tokio::join!(audited, opened);
        audited?;
        match opened? {
            Some(bytes) if bytes.len() as u64 == view.size => Ok(DocumentContent { view, bytes }),
            _ => Err(self.integrity_failure(records, Some(patient_id)).await),
        }
    }
}

fn unsupported() -> ServiceError {
    ServiceError::Invalid {
        field: "file",
        message: "Type de fichier refusé : PDF, JPEG ou PNG uniquement (reconnu d'après son \
                  contenu)."
            .into(),
    }
}

/// Opens every chunk of a sealed blob, in order, the last one marked as last; none if
/// anything is altered, reordered, missing or cut off. Each chunk is opened where it lies
/// and its plaintext moved to the front of the same buffer (no copy per chunk).
fn open_chunks(key: &SealingKey, version_id: &Uuid, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
    let full = sealed_len(CHUNK);
    let mut offset = 0;
    let mut written = 0;
    let mut index: u64 = 0;
    loop {
        let remaining = sealed.len().checked_sub(offset)?;
        let last = remaining <= full;
        let take = if last { remaining } else { full };
        let place = chunk_nonce_aad(version_id, index, last);
        let opened = key
            .open_in_place(
                &mut sealed[offset..offset + take],
                SealContext {
                    table: "document_chunks",
                    column: "bytes",
                    row: &place,
                },
            )
            .ok()?;
        let length = opened.len();
        sealed.copy_within(offset + opened.start..offset + opened.end, written);
        written += length;
        offset += take;
        if last {
            sealed.truncate(written);
            return Some(sealed);
        }
        index += 1;
    }
}
