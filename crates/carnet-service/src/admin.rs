//! The first platform administrator: a one-time setup link (valid one hour, single use,
//! stored as a hash) printed by `carnet serve` on an instance without administrator,
//! or by `carnet admin bootstrap`. Following it, the person chooses a login and a
//! password, then must register a passkey before anything else.

use std::time::Duration;

use carnet_audit::{Action, ChainId, Outcome, Targets};
use carnet_crypto::SecretToken;
use carnet_domain::{AdminId, MemberName, Password};
use carnet_store::AccountHolder;

use crate::auth::{IssuedSession, auth_error, later, normalize_login};
use crate::{Actor, Caller, ServiceError, Services};

/// How long a setup link works.
pub const SETUP_LINK_VALIDITY: Duration = Duration::from_hours(1);

/// A setup link's secret part, shown once.
#[derive(Debug)]
pub struct SetupLink {
    pub token: SecretToken,
    pub expires_at: carnet_domain::Timestamp,
}

impl Services {
    /// Issues a setup link for the first platform administrator, retiring any unused one;
    /// `None` when an administrator account already exists (the link is then useless).
    pub async fn issue_setup_link(
        &self,
        caller: &Caller,
    ) -> Result<Option<SetupLink>, ServiceError> {
        let token =
            SecretToken::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let token_hash = token.stored_hash();
        let now = self.now();
        let expires_at = later(now, SETUP_LINK_VALIDITY);
        let event = self.audit_event(
            caller,
            ChainId::Instance,
            Action::SetupLinkIssued,
            Targets::default(),
            Outcome::Success,
        );
        let issued = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    if tx.admin_account_exists().await? {
                        // Nothing written: the job fails alone, the entry goes with it.
                        return Err(carnet_store::StoreError::Conflict);
                    }
                    tx.insert_setup_link(&token_hash, now, expires_at).await
                })
            })
            .await;
        match issued {
            Ok(()) => Ok(Some(SetupLink { token, expires_at })),
            Err(ServiceError::Conflict) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Creates the first platform administrator from a setup link: name, login, password.
    /// Opens a session whose second factor (a passkey) must be registered next.
    pub async fn complete_setup(
        &self,
        caller: &Caller,
        link: &str,
        name: &str,
        login: &str,
        password: &str,
    ) -> Result<IssuedSession, ServiceError> {
        let name =
            MemberName::parse(name).map_err(|error| ServiceError::invalid("name", &error))?;
        let login = normalize_login(login)?;
        let password = Password::new(password, &[name.as_str(), &login])
            .map_err(|error| ServiceError::invalid("password", &error))?;
        let link_hash = SecretToken::hash_of(link);
        let now = self.now();
        // No hashing at all once an administrator exists; the link is checked below.
        let admin_exists = self
            .read(move |tx| Box::pin(async move { tx.admin_account_exists().await }))
            .await?;
        if admin_exists {
            return Err(invalid_link());
        }
        let password_hash = self.hash_password_text(password.expose()).await?;
        let (millis, random) = self.new_id_parts()?;
        let admin = AdminId::new_v7(millis, &random);
        let account_id = self.new_uuid()?;
        let token =
            SecretToken::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let token_hash = token.stored_hash();
        let session_id = self.new_uuid()?;
        let expires_at = later(now, self.auth.settings.session_lifetime);
        let event = self.audit_event(
            &Caller {
                actor: Actor::PlatformAdmin(admin),
                ..caller.clone()
            },
            ChainId::Instance,
            Action::AdminCreated,
            Targets::default(),
            Outcome::Success,
        );
        let created = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    if !tx.use_setup_link(&link_hash, now).await?
                        || tx.admin_account_exists().await?
                    {
                        // The job fails alone: nothing of it (nor its entry) is kept.
                        return Err(carnet_store::StoreError::MissingReference);
                    }
                    tx.insert_admin(admin, name.as_str(), now).await?;
                    tx.insert_account(
                        account_id,
                        &AccountHolder::Admin(admin),
                        &login,
                        &password_hash,
                        now,
                    )
                    .await?;
                    tx.insert_session(session_id, &token_hash, account_id, now, expires_at)
                        .await
                })
            })
            .await;
        match created {
            Ok(()) => {}
            Err(ServiceError::NotFound) => {
                let event = self.audit_event(
                    caller,
                    ChainId::Instance,
                    Action::LoginFailed,
                    Targets::default(),
                    Outcome::Failure,
                );
                self.audit_alone(event).await?;
                return Err(invalid_link());
            }
            Err(ServiceError::Conflict) => {
                return Err(ServiceError::Invalid {
                    field: "login",
                    message: "Cet identifiant est déjà utilisé.".into(),
                });
            }
            Err(other) => return Err(other),
        }
        Ok(IssuedSession {
            token,
            session_id,
            needs_enrolment: true,
        })
    }
}

fn invalid_link() -> ServiceError {
    auth_error(
        "Lien d'installation invalide, expiré ou déjà utilisé. Demandez-en un nouveau avec « carnet admin bootstrap ».",
    )
}
