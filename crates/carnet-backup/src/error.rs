//! Why a backup operation failed, in French sentences for the operator.

use rustic_core::RusticError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "le mot de passe des sauvegardes ne correspond pas au dépôt « {target} » : utilisez \
         celui du kit de secours de cette instance"
    )]
    WrongPassword { target: String },
    #[error("la cible de sauvegarde « {target} » est injoignable : {detail}")]
    Unreachable { target: String, detail: String },
    #[error(
        "le dépôt de sauvegarde « {target} » est endommagé ({detail}) : lancez \
         `carnet backup check --target {target} --read-data` et restaurez depuis une autre cible"
    )]
    Corrupted { target: String, detail: String },
    #[error("la cible « {target} » n'a pas encore de dépôt de sauvegarde")]
    NotInitialised { target: String },
    #[error("aucune sauvegarde « {snapshot} » sur la cible « {target} »")]
    NoSnapshot { target: String, snapshot: String },
    #[error("le fichier {path} n'est dans aucune sauvegarde de la cible « {target} »")]
    NoSuchFile { target: String, path: String },
    #[error("{context} : {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("sauvegarde de la base de données : {0}")]
    Database(String),
    #[error("copie des documents du stockage S3 : {0}")]
    Documents(String),
    #[error("dépôt de sauvegarde « {target} » : {detail}")]
    Repository { target: String, detail: String },
}

impl BackupError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Maps an error of the repository library, as precisely as it lets us: a wrong
    /// password (error code C002), a failed authentication of stored data (C001: a
    /// corrupted or tampered pack), otherwise the library's own sentence.
    pub(crate) fn from_rustic(target: &str, error: &RusticError) -> Self {
        let target = target.to_owned();
        if error.is_incorrect_password() {
            Self::WrongPassword { target }
        } else if has_code(error, "C001") {
            Self::Corrupted {
                target,
                detail: "une donnée chiffrée ne s'authentifie plus".into(),
            }
        } else {
            Self::Repository {
                target,
                detail: error.display_log(),
            }
        }
    }
}

/// Whether `error`, or an error it was caused by, carries `code` (rustic_core wraps the
/// failed authentication of a blob in an error about its pack, sometimes only as text:
/// its documentation link names the code).
fn has_code(error: &RusticError, code: &str) -> bool {
    if error.to_string().contains(&format!("/errors/{code}")) {
        return true;
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if error
            .downcast_ref::<RusticError>()
            .is_some_and(|rustic| rustic.is_code(code))
        {
            return true;
        }
        current = error.source();
    }
    false
}
