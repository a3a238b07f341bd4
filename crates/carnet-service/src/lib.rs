//! Carnet's use cases. Each public method of [`Services`] is one thing a person or the
//! operator can do; it decides who may do it (from the [`Actor`]) before it touches the
//! store, and it is the only path from the outside world to the store.
//!
//! Authorization is a type: the practice-scoped operations take a [`PracticeScope`],
//! which only [`Services::authorize`] creates, from an actor and the practice it wants.

mod actor;
mod admin;
mod audit;
mod auth;
mod backups;
mod blobs;
mod clinical;
mod device_certificates;
mod devices;
mod documents;
mod import;
mod instance;
mod passkeys;
mod pin;
mod practices;
mod records;
mod rotation;

use std::sync::Arc;

use carnet_crypto::RandomSource;
use carnet_domain::{Clock, Timestamp};
use carnet_store::{BoxFuture, GroupCommitter, Store, StoreError, Tx};

pub use actor::{Actor, Caller, PracticeAction, PracticeScope};
pub use admin::{SETUP_LINK_VALIDITY, SetupLink};
pub use audit::{AuditFilter, ChainReport};
pub use auth::{
    ActiveSession, AuthSettings, IssuedSession, SessionState, SessionSummary, TotpEnrolment,
};
pub use backups::{BackupPlan, BackupRun, BackupTargetStatus};
pub use blobs::{Blobs, BlobsError, S3Settings, Stored, is_blob_name};
pub use clinical::ClinicalView;
pub use device_certificates::{CertificatePickup, CertificateStatus, DEVICE_CERTIFICATE_DAYS};
pub use devices::{DeviceBinding, DeviceDecision, DeviceStanding, DeviceSummary, browser_summary};
pub use documents::{DocumentContent, DocumentView, MediaType};
pub use import::{ImportFormat, ImportScope};
pub use instance::{InstanceKeyCheck, Readiness};
pub use passkeys::{
    PasskeyChallenge, PasskeyRegistered, PasskeySettings, PasskeySignedIn, PasskeySummary,
    SecondFactorOptions,
};
pub use pin::{PIN_LENGTH, PracticePin};
pub use practices::{NewMemberInput, NewPracticeInput, ProfessionalIdDecision};
pub use records::{
    ClinicalScope, PatientMatches, PatientQuery, PatientRevisionView, PatientView, RecordsScope,
    SEARCH_LIMIT,
};
pub use rotation::REENCRYPTION_BATCH;

/// What a use case can answer instead of a result. Every variant maps to one stable
/// error code on the wire; messages are French and never contain stored values.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The actor may not do this (or may not know the thing exists).
    #[error("Vous n'avez pas accès à cette ressource.")]
    Forbidden,
    #[error("Ressource introuvable.")]
    NotFound,
    /// An input was refused; the message says which rule, in French.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("Cette ressource existe déjà.")]
    Conflict,
    /// Storage failed: the request is refused and nothing is served.
    #[error("Le service est momentanément indisponible.")]
    Unavailable(#[source] StoreError),
    /// The random source failed: nothing is created with weak randomness.
    #[error("Le service est momentanément indisponible.")]
    Randomness,
    /// Sign-in refused (wrong login, password, code); the message says no more.
    #[error("{message}")]
    Authentication { message: String },
    /// Too many failed passwords in 24 hours: the password path is locked.
    #[error(
        "Trop d'échecs : la connexion par mot de passe est bloquée. Un titulaire peut la \
         débloquer ; sinon elle se débloque au bout de 24 heures."
    )]
    AccountLocked,
    /// Wait before trying again.
    #[error("Trop de tentatives : réessayez dans {retry_after_seconds} secondes.")]
    TooManyAttempts { retry_after_seconds: i64 },
    /// An upload is larger than allowed.
    #[error("Fichier trop volumineux : {max_bytes} octets au plus.")]
    TooLarge { max_bytes: u64 },
    /// The care records are locked in this session: the practice PIN is due.
    #[error("Saisissez le code PIN du cabinet pour ouvrir les dossiers de soins.")]
    PinRequired,
    /// A sealed value did not open (altered, moved, or the wrong key): audited, nothing
    /// served.
    #[error("Ces données sont altérées ou illisibles ; l'incident est enregistré.")]
    Integrity,
}

/// Why the services could not be set up from configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("clés dérivées impossibles : {0}")]
    Crypto(#[from] carnet_crypto::CryptoError),
    #[error("{0}")]
    Passkeys(String),
}

impl ServiceError {
    pub fn invalid(field: &'static str, error: &impl std::fmt::Display) -> Self {
        Self::Invalid {
            field,
            message: error.to_string(),
        }
    }

    /// The stable, snake_case code for the API's error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Invalid { .. } => "invalid_input",
            Self::Conflict => "conflict",
            Self::Unavailable(_) | Self::Randomness => "unavailable",
            Self::Authentication { .. } => "authentication_failed",
            Self::AccountLocked => "account_locked",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::PinRequired => "pin_required",
            Self::TooLarge { .. } => "payload_too_large",
            Self::Integrity => "integrity_failure",
        }
    }
}

/// Checks a name people give to a thing (a passkey, a device): 1 to 60 characters, no
/// control characters; trimmed.
pub(crate) fn label(name: &str, of_what: &str, example: &str) -> Result<String, ServiceError> {
    const MAX_CHARS: usize = 60;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_CHARS || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid {
            field: "name",
            message: format!(
                "Donnez un nom {of_what} (1 à {MAX_CHARS} caractères), par exemple « {example} »."
            ),
        });
    }
    Ok(name.to_owned())
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => Self::Conflict,
            StoreError::MissingReference => Self::NotFound,
            other => Self::Unavailable(other),
        }
    }
}

/// The use cases, with their injected store, clock and randomness. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    store: Store,
    committer: GroupCommitter,
    auth: auth::SharedAuthKit,
    /// Where documents are kept (none: documents are unavailable).
    blobs: Option<Arc<blobs::Blobs>>,
    /// The configured backups (for the monitoring page; the binary runs them).
    backup_plan: Arc<backups::BackupPlan>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store.kind())
            .finish_non_exhaustive()
    }
}

impl Services {
    /// The largest number of units of work committed together (see `GroupCommitter`).
    pub const GROUP_COMMIT_BATCH: usize = 64;

    /// Builds the services and starts the audited writer on the current tokio runtime.
    ///
    /// Authentication starts with default settings and a throw-away key (fine for tests):
    /// the server calls [`Services::with_auth`] with the configured settings and the
    /// instance key.
    pub fn new(store: Store, clock: Arc<dyn Clock>, random: Arc<dyn RandomSource>) -> Self {
        let root = carnet_crypto::KeyMaterial::generate(random.as_ref())
            .expect("the operating system's random source works at start");
        let auth = auth::AuthKit::new(auth::AuthSettings::default(), &root, random.as_ref())
            .expect("default authentication settings are valid");
        Self {
            committer: GroupCommitter::start(store.clone(), Self::GROUP_COMMIT_BATCH),
            auth: Arc::new(auth),
            blobs: None,
            backup_plan: Arc::default(),
            store,
            clock,
            random,
        }
    }

    /// Configures authentication: settings from configuration, keys derived from the
    /// instance root ([`Services::instance_root`]), so activation codes, TOTP secrets and
    /// the practices' keys open across restarts and on every node.
    pub fn with_auth(
        mut self,
        settings: AuthSettings,
        root: &carnet_crypto::KeyMaterial,
    ) -> Result<Self, SetupError> {
        self.auth = Arc::new(auth::AuthKit::new(settings, root, self.random.as_ref())?);
        Ok(self)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs `work` and appends `events` in one transaction of the group committer: the
    /// work's changes and its audit entries commit together, or neither does (and the
    /// caller gets "unavailable"). This is how every use case touching practice data
    /// reaches the store.
    pub(crate) async fn audited<T, F>(
        &self,
        events: Vec<carnet_audit::Event>,
        work: F,
    ) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        Ok(self
            .committer
            .run(move |tx| {
                Box::pin(async move {
                    let value = work(tx).await?;
                    for event in events {
                        tx.append_audit(event).await?;
                    }
                    Ok(value)
                })
            })
            .await?)
    }

    /// Runs read-only `work` on a transaction of its own, beside the writer: reads that
    /// need no audit entry (sessions, sign-in state) must not queue behind audited jobs.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, ServiceError>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>>,
    {
        read_in(self.store.transaction().await?, work).await
    }

    /// Like [`Services::read`], on a connection outside any transaction: each statement
    /// sees the latest commit, and the BEGIN and ROLLBACK round trips are saved. For the
    /// reads every request makes (its session; the records capability's checks), whose
    /// statements need not see one snapshot: each decides on its own row.
    pub(crate) async fn read_latest<T, F>(&self, work: F) -> Result<T, ServiceError>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>>,
    {
        read_in(self.store.reads().await?, work).await
    }

    /// The parts of a new time-ordered id: the current time and ten random bytes.
    fn new_id_parts(&self) -> Result<(u64, [u8; 10]), ServiceError> {
        let mut random = [0u8; 10];
        self.random
            .fill(&mut random)
            .map_err(|_| ServiceError::Randomness)?;
        let millis = u64::try_from(self.clock.now().unix_millis()).unwrap_or_default();
        Ok((millis, random))
    }
}

/// Runs read-only `work` in `tx`, then lets `tx` go without committing anything.
async fn read_in<T, F>(mut tx: Tx, work: F) -> Result<T, ServiceError>
where
    F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>>,
{
    let value = work(&mut tx).await;
    tx.rollback().await?;
    Ok(value?)
}
