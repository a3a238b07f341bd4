//! Passkeys (WebAuthn, with `webauthn-rs`): registering several named passkeys per
//! account, signing in with one alone (discoverable credential, user verification
//! required: possession and a PIN or biometric in one gesture), or using one as the
//! second factor after the password. Mandatory for platform administrators.
//!
//! The ceremony state (the challenge) is kept in the database under the hash of an
//! identifier given to the client, single use and valid five minutes, so any node can
//! finish a ceremony another node started. A passkey sign-in does not go through the
//! password lockout: the lock protects the password path against guessing, and a
//! passkey cannot be guessed.

use std::time::Duration;

use carnet_audit::{Action, ChainId, Outcome, Targets};
use carnet_crypto::SecretToken;
use carnet_store::{AccountRecord, CeremonyRecord, PasskeyRecord, SessionRecord, StoreError, Tx};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use crate::auth::{
    IssuedSession, account_chain, actor_of, auth_error, later, reauthentication_required,
};
use crate::{Caller, ServiceError, Services};

/// How long a started ceremony may be finished.
const CEREMONY_VALIDITY: Duration = Duration::from_mins(5);

/// Where passkeys are bound: the relying party id (a domain) and the origin the browser
/// shows. Passkeys registered for one domain never work on another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeySettings {
    /// The public address of Carnet, e.g. `https://carnet.example.fr` (or
    /// `http://localhost:8080` on a single machine).
    pub origin: String,
}

/// Builds the WebAuthn verifier for the configured origin.
pub(crate) fn webauthn_for(settings: &PasskeySettings) -> Result<Webauthn, String> {
    let origin = Url::parse(&settings.origin)
        .map_err(|error| format!("adresse publique invalide ({}) : {error}", settings.origin))?;
    let rp_id = origin
        .host_str()
        .ok_or_else(|| format!("adresse publique sans nom d'hôte : {}", settings.origin))?
        .to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|builder| builder.rp_name("Carnet").build())
        .map_err(|error| format!("clés d'accès impossibles pour {}: {error}", settings.origin))
}

/// A started ceremony: the identifier to send back, and the options for the browser's
/// `navigator.credentials` (JSON, as `PublicKeyCredential.parse…OptionsFromJSON` reads).
#[derive(Debug)]
pub struct PasskeyChallenge {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// One of the caller's passkeys, for "my passkeys".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeySummary {
    pub id: Uuid,
    pub name: String,
    pub created_at: carnet_domain::Timestamp,
    pub last_used_at: Option<carnet_domain::Timestamp>,
}

/// What a password session may use as its second factor.
#[expect(
    clippy::struct_excessive_bools,
    reason = "four independent facts, each deciding one part of a page"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecondFactorOptions {
    /// A platform administrator: passkeys only (and recovery codes).
    pub admin: bool,
    /// Nothing enrolled yet: enrolment comes first.
    pub needs_enrolment: bool,
    /// A confirmed TOTP.
    pub totp: bool,
    /// At least one passkey (and passkeys configured on this server).
    pub passkeys: bool,
}

/// What finishing a registration did.
#[derive(Debug)]
pub enum PasskeyRegistered {
    /// Added to an account that already had its second factor.
    Added,
    /// It was the account's first second factor: the session is complete, and here are
    /// the recovery codes (shown once).
    Enrolled { recovery_codes: Vec<String> },
}

/// What finishing a passkey sign-in did.
#[derive(Debug)]
pub enum PasskeySignedIn {
    /// A new session (sign-in with the passkey alone).
    NewSession(IssuedSession),
    /// The presented session's second factor is now verified.
    SecondFactorVerified,
}

#[derive(Serialize, Deserialize)]
enum CeremonyState {
    Registration {
        name: String,
        state: PasskeyRegistration,
    },
    SignIn {
        state: DiscoverableAuthentication,
    },
}

const KIND_REGISTRATION: &str = "registration";
const KIND_SIGN_IN: &str = "sign-in";

fn unavailable_passkeys() -> ServiceError {
    ServiceError::Invalid {
        field: "passkey",
        message:
            "Les clés d'accès ne sont pas configurées sur ce serveur (adresse publique manquante)."
                .into(),
    }
}

fn passkey_refused() -> ServiceError {
    auth_error("Clé d'accès refusée.")
}

fn corrupt(_: serde_json::Error) -> ServiceError {
    ServiceError::Unavailable(StoreError::Corrupt("stored passkey"))
}

impl Services {
    fn webauthn(&self) -> Result<&Webauthn, ServiceError> {
        self.auth.webauthn.as_ref().ok_or_else(unavailable_passkeys)
    }

    /// Stores a ceremony and returns its identifier for the client.
    async fn put_ceremony(
        &self,
        state: &CeremonyState,
        kind: &'static str,
        account_id: Option<Uuid>,
        session_id: Option<Uuid>,
    ) -> Result<String, ServiceError> {
        let id =
            SecretToken::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let id_hash = id.stored_hash();
        let now = self.now();
        let record = CeremonyRecord {
            kind: kind.to_owned(),
            account_id,
            session_id,
            state: serde_json::to_string(state).map_err(corrupt)?,
            expires_at: later(now, CEREMONY_VALIDITY),
        };
        self.committer
            .run(move |tx| Box::pin(async move { tx.put_ceremony(&id_hash, &record, now).await }))
            .await?;
        Ok(id.expose().to_owned())
    }

    /// Takes (single use) a ceremony of `kind` started by the client.
    async fn take_ceremony(
        &self,
        ceremony: &str,
        kind: &'static str,
    ) -> Result<(CeremonyRecord, CeremonyState), ServiceError> {
        let id_hash = SecretToken::hash_of(ceremony);
        let now = self.now();
        let record = self
            .committer
            .run(move |tx| Box::pin(async move { tx.take_ceremony(&id_hash, now).await }))
            .await?
            .filter(|record| record.kind == kind)
            .ok_or_else(|| auth_error("Opération expirée : recommencez."))?;
        let state = serde_json::from_str(&record.state).map_err(corrupt)?;
        Ok((record, state))
    }

    /// Whether passkeys are configured on this server (a public address is set).
    pub fn passkeys_enabled(&self) -> bool {
        self.auth.webauthn.is_some()
    }

    /// What the password session of `token` may use as its second factor.
    pub async fn second_factor_options(
        &self,
        token: &str,
    ) -> Result<SecondFactorOptions, ServiceError> {
        let (_, account) = self.password_session(token).await?;
        let account_id = account.id;
        let admin = matches!(account.holder, carnet_store::AccountHolder::Admin(_));
        let (passkeys, totp) = self
            .read(move |tx| {
                Box::pin(async move {
                    Ok((
                        tx.passkeys_of(account_id).await?,
                        tx.totp(account_id).await?,
                    ))
                })
            })
            .await?;
        let totp = totp.is_some_and(|totp| totp.confirmed_at.is_some());
        Ok(SecondFactorOptions {
            admin,
            needs_enrolment: passkeys.is_empty() && (admin || !totp),
            totp: totp && !admin,
            passkeys: !passkeys.is_empty() && self.passkeys_enabled(),
        })
    }

    // ---- registration --------------------------------------------------------------------

    /// Starts registering a passkey named `name` for the session's account: as the first
    /// second factor of an account that has none yet (enrolment), or as one more passkey
    /// of a fully signed-in account that re-authenticated in the last five minutes.
    pub async fn start_passkey_registration(
        &self,
        token: &str,
        name: &str,
    ) -> Result<PasskeyChallenge, ServiceError> {
        let name = crate::label(name, "à la clé d'accès", "Téléphone d'Anne")?;
        let webauthn = self.webauthn()?;
        let (session, account) = self.session_and_account(token).await?;
        self.may_register_passkey(&session, &account).await?;
        let account_id = account.id;
        let existing = self
            .read(move |tx| Box::pin(async move { tx.passkeys_of(account_id).await }))
            .await?;
        let exclude = existing
            .iter()
            .map(|passkey| passkey.credential_id.clone())
            .collect::<Vec<_>>();
        let (options, state) = webauthn
            .start_passkey_registration(account.id, &account.login, &account.name, Some(exclude))
            .map_err(|_| passkey_refused())?;
        let mut options = serde_json::to_value(&options).map_err(corrupt)?;
        // A discoverable credential, so that the passkey alone can sign in (no login typed).
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let ceremony = self
            .put_ceremony(
                &CeremonyState::Registration { name, state },
                KIND_REGISTRATION,
                Some(account.id),
                Some(session.id),
            )
            .await?;
        Ok(PasskeyChallenge { ceremony, options })
    }

    /// Refuses a registration unless the session is either complete and freshly
    /// authenticated, or a password session of an account with no second factor yet.
    async fn may_register_passkey(
        &self,
        session: &SessionRecord,
        account: &AccountRecord,
    ) -> Result<(), ServiceError> {
        if session.second_factor_at.is_some() {
            if !self.recently_authenticated_session(session) {
                return Err(reauthentication_required());
            }
            return Ok(());
        }
        if self.needs_enrolment(account).await? {
            Ok(())
        } else {
            Err(auth_error(
                "Connectez-vous d'abord avec votre second facteur.",
            ))
        }
    }

    /// Finishes a registration with the browser's answer (JSON of the credential).
    pub async fn finish_passkey_registration(
        &self,
        caller: &Caller,
        token: &str,
        ceremony: &str,
        credential: &str,
    ) -> Result<PasskeyRegistered, ServiceError> {
        let webauthn = self.webauthn()?;
        let (mut session, account) = self.session_and_account(token).await?;
        let (record, state) = self.take_ceremony(ceremony, KIND_REGISTRATION).await?;
        let CeremonyState::Registration { name, state } = state else {
            return Err(passkey_refused());
        };
        if record.account_id != Some(account.id) || record.session_id != Some(session.id) {
            return Err(passkey_refused());
        }
        // Checked again at the end: the session may have changed in between.
        self.may_register_passkey(&session, &account).await?;
        let account_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        let chain = account_chain(&account);
        let credential: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| ServiceError::Invalid {
                field: "credential",
                message: "Réponse du navigateur illisible.".into(),
            })?;
        let passkey = match webauthn.finish_passkey_registration(&credential, &state) {
            Ok(passkey) => passkey,
            Err(error) => {
                tracing::info!(%error, "passkey registration refused");
                self.audit_only(
                    &account_caller,
                    chain,
                    Action::SecondFactorFailed,
                    Outcome::Failure,
                )
                .await?;
                return Err(passkey_refused());
            }
        };
        let now = self.now();
        let stored = PasskeyRecord {
            id: self.new_uuid()?,
            account_id: account.id,
            credential_id: passkey.cred_id().clone(),
            name,
            credential: serde_json::to_string(&passkey).map_err(corrupt)?,
            created_at: now,
            last_used_at: None,
        };
        let enrolment = session.second_factor_at.is_none();
        let recovery = if enrolment {
            self.new_recovery_codes()?
        } else {
            Vec::new()
        };
        let hashes = self.recovery_hashes(&recovery);
        let event = self.audit_event(
            &account_caller,
            chain,
            Action::SecondFactorChanged,
            Targets::default(),
            Outcome::Success,
        );
        if session.second_factor_at.is_none() {
            session.second_factor_at = Some(now);
            session.second_factor_kind = Some("passkey".into());
        }
        session.last_seen_at = now;
        session.authenticated_at = now;
        let (account_id, keep) = (account.id, session.id);
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.insert_passkey(&stored).await?;
                if !hashes.is_empty() {
                    tx.put_recovery_codes(account_id, &hashes, now).await?;
                }
                tx.update_session(&session).await?;
                // A new factor: every other session of the account ends.
                tx.revoke_sessions_of(account_id, Some(keep), now).await?;
                Ok(())
            })
        })
        .await
        .map_err(|error| match error {
            ServiceError::Conflict => ServiceError::Invalid {
                field: "credential",
                message: "Cette clé d'accès est déjà enregistrée.".into(),
            },
            other => other,
        })?;
        Ok(if enrolment {
            PasskeyRegistered::Enrolled {
                recovery_codes: recovery,
            }
        } else {
            PasskeyRegistered::Added
        })
    }

    // ---- sign-in -------------------------------------------------------------------------

    /// Starts a passkey sign-in. With a password session whose second factor is due, the
    /// browser is asked for one of that account's passkeys (second factor); otherwise for
    /// any passkey of this site (sign-in with the passkey alone).
    pub async fn start_passkey_sign_in(
        &self,
        token: Option<&str>,
    ) -> Result<PasskeyChallenge, ServiceError> {
        let webauthn = self.webauthn()?;
        let pending = match token {
            Some(token) => self.pending_second_factor(token).await?,
            None => None,
        };
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|_| passkey_refused())?;
        let mut options = serde_json::to_value(&options).map_err(corrupt)?;
        if let Some(object) = options.as_object_mut() {
            // A button starts the ceremony: the browser's usual dialog, not autofill.
            object.remove("mediation");
        }
        let (account_id, session_id) = match &pending {
            Some((session, account)) => {
                let account_id = account.id;
                let passkeys = self
                    .read(move |tx| Box::pin(async move { tx.passkeys_of(account_id).await }))
                    .await?;
                if passkeys.is_empty() {
                    return Err(auth_error(
                        "Aucune clé d'accès n'est enregistrée pour ce compte.",
                    ));
                }
                // The second factor of a known account: only its passkeys are offered.
                let allowed: Vec<serde_json::Value> = passkeys
                    .iter()
                    .filter_map(|passkey| serde_json::from_str::<Passkey>(&passkey.credential).ok())
                    .map(|passkey| {
                        let id = carnet_crypto::base64url(passkey.cred_id());
                        serde_json::json!({ "type": "public-key", "id": id })
                    })
                    .collect();
                if let Some(public_key) = options
                    .get_mut("publicKey")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    public_key.insert("allowCredentials".into(), allowed.into());
                }
                (Some(account.id), Some(session.id))
            }
            None => (None, None),
        };
        let ceremony = self
            .put_ceremony(
                &CeremonyState::SignIn { state },
                KIND_SIGN_IN,
                account_id,
                session_id,
            )
            .await?;
        Ok(PasskeyChallenge { ceremony, options })
    }

    /// The session of `token` if its password step is done and its second factor due.
    async fn pending_second_factor(
        &self,
        token: &str,
    ) -> Result<Option<(SessionRecord, AccountRecord)>, ServiceError> {
        let Some((session, account)) = self.load_session(token).await? else {
            return Ok(None);
        };
        let live = session.revoked_at.is_none() && self.now() < session.expires_at;
        Ok((live && session.second_factor_at.is_none()).then_some((session, account)))
    }

    /// Finishes a passkey sign-in: a new session, or the presented session's second
    /// factor (when the ceremony was started for it).
    pub async fn finish_passkey_sign_in(
        &self,
        caller: &Caller,
        token: Option<&str>,
        ceremony: &str,
        credential: &str,
    ) -> Result<PasskeySignedIn, ServiceError> {
        let webauthn = self.webauthn()?;
        let (record, state) = self.take_ceremony(ceremony, KIND_SIGN_IN).await?;
        let CeremonyState::SignIn { state } = state else {
            return Err(passkey_refused());
        };
        let pending = match (record.session_id, token) {
            (Some(session_id), Some(token)) => Some(
                self.pending_second_factor(token)
                    .await?
                    .filter(|(session, _)| session.id == session_id)
                    .ok_or_else(passkey_refused)?,
            ),
            (Some(_), None) => return Err(passkey_refused()),
            (None, _) => None,
        };
        let credential: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| ServiceError::Invalid {
                field: "credential",
                message: "Réponse du navigateur illisible.".into(),
            })?;
        let expected = pending.as_ref().map(|(_, account)| account.id);
        let accepted = self
            .verify_assertion(webauthn, &credential, state, expected)
            .await?;
        let Some((account, passkey_row, mut passkey, result)) = accepted else {
            let (refused_caller, chain) = match &pending {
                Some((_, account)) => (
                    Caller {
                        actor: actor_of(account),
                        ..caller.clone()
                    },
                    account_chain(account),
                ),
                None => (caller.clone(), ChainId::Instance),
            };
            self.audit_only(
                &refused_caller,
                chain,
                Action::LoginFailed,
                Outcome::Failure,
            )
            .await?;
            return Err(passkey_refused());
        };
        passkey.update_credential(&result);
        let updated = serde_json::to_string(&passkey).map_err(corrupt)?;
        let now = self.now();
        let account_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        let event = self.audit_event(
            &account_caller,
            account_chain(&account),
            Action::LoginSucceeded,
            Targets::default(),
            Outcome::Success,
        );
        let passkey_id = passkey_row.id;
        if let Some((mut session, _)) = pending {
            session.second_factor_at = Some(now);
            session.second_factor_kind = Some("passkey".into());
            session.last_seen_at = now;
            session.authenticated_at = now;
            self.audited(vec![event], move |tx| {
                Box::pin(async move {
                    tx.passkey_used(passkey_id, &updated, now).await?;
                    tx.update_session(&session).await
                })
            })
            .await?;
            return Ok(PasskeySignedIn::SecondFactorVerified);
        }
        let issued = self
            .open_passkey_session(event, account.id, passkey_id, updated, now)
            .await?;
        Ok(PasskeySignedIn::NewSession(issued))
    }

    /// A new session, complete at once (the passkey was both factors), and the passkey's
    /// new counter, with the sign-in's audit entry.
    async fn open_passkey_session(
        &self,
        event: carnet_audit::Event,
        account_id: Uuid,
        passkey_id: Uuid,
        updated: String,
        now: carnet_domain::Timestamp,
    ) -> Result<IssuedSession, ServiceError> {
        let token =
            SecretToken::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let token_hash = token.stored_hash();
        let session_id = self.new_uuid()?;
        let expires_at = later(now, self.auth.settings.session_lifetime);
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.passkey_used(passkey_id, &updated, now).await?;
                tx.insert_session(session_id, &token_hash, account_id, now, expires_at)
                    .await?;
                tx.update_session(&SessionRecord {
                    id: session_id,
                    account_id,
                    created_at: now,
                    last_seen_at: now,
                    expires_at,
                    second_factor_at: Some(now),
                    authenticated_at: now,
                    revoked_at: None,
                    totp_step: None,
                    totp_tries: 0,
                    device_id: None,
                    second_factor_kind: Some("passkey".into()),
                    pin_version: None,
                    pin_failures: 0,
                    // Not written by `update_session`: set when the device is bound.
                    certified_device: false,
                })
                .await
            })
        })
        .await?;
        Ok(IssuedSession {
            token,
            session_id,
            needs_enrolment: false,
        })
    }

    /// The account, stored passkey and verification result of a sign-in assertion: the
    /// credential must exist, belong to the account its user handle names (and to
    /// `expected`, for a second factor), and its signature must verify.
    async fn verify_assertion(
        &self,
        webauthn: &Webauthn,
        credential: &PublicKeyCredential,
        state: DiscoverableAuthentication,
        expected: Option<Uuid>,
    ) -> Result<Option<(AccountRecord, PasskeyRecord, Passkey, AuthenticationResult)>, ServiceError>
    {
        let Ok((user, credential_id)) = webauthn.identify_discoverable_authentication(credential)
        else {
            return Ok(None);
        };
        let credential_id = credential_id.to_vec();
        let found = self
            .read(move |tx| Box::pin(async move { signing_key(tx, user, &credential_id).await }))
            .await?;
        let Some((account, row, passkey)) = found else {
            return Ok(None);
        };
        if expected.is_some_and(|expected| expected != account.id) {
            return Ok(None);
        }
        match webauthn.finish_discoverable_authentication_v2(credential, state, &passkey) {
            Ok(result) => Ok(Some((account, row, passkey, result))),
            Err(error) => {
                tracing::info!(%error, "passkey assertion refused");
                Ok(None)
            }
        }
    }

    // ---- managing ------------------------------------------------------------------------

    /// The passkeys of the signed-in account.
    pub async fn my_passkeys(&self, token: &str) -> Result<Vec<PasskeySummary>, ServiceError> {
        let (_, account) = self.complete_session(token).await?;
        let account_id = account.id;
        let passkeys = self
            .read(move |tx| Box::pin(async move { tx.passkeys_of(account_id).await }))
            .await?;
        Ok(passkeys
            .into_iter()
            .map(|passkey| PasskeySummary {
                id: passkey.id,
                name: passkey.name,
                created_at: passkey.created_at,
                last_used_at: passkey.last_used_at,
            })
            .collect())
    }

    /// Renames one of the signed-in account's passkeys.
    pub async fn rename_passkey(
        &self,
        caller: &Caller,
        token: &str,
        passkey_id: Uuid,
        name: &str,
    ) -> Result<(), ServiceError> {
        let name = crate::label(name, "à la clé d'accès", "Téléphone d'Anne")?;
        let (_, account) = self.complete_session(token).await?;
        let event = self.audit_event(
            &Caller {
                actor: actor_of(&account),
                ..caller.clone()
            },
            account_chain(&account),
            Action::SecondFactorChanged,
            Targets::default(),
            Outcome::Success,
        );
        let account_id = account.id;
        let found = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    let found = tx.rename_passkey(account_id, passkey_id, &name).await?;
                    if found {
                        Ok(true)
                    } else {
                        Err(StoreError::MissingReference)
                    }
                })
            })
            .await;
        found.map(|_| ())
    }

    /// Removes one of the signed-in account's passkeys (after a fresh authentication).
    /// A platform administrator's last passkey cannot be removed, nor the last second
    /// factor of anyone.
    pub async fn remove_passkey(
        &self,
        caller: &Caller,
        token: &str,
        passkey_id: Uuid,
    ) -> Result<(), ServiceError> {
        let (session, account) = self.complete_session(token).await?;
        if !self.recently_authenticated_session(&session) {
            return Err(reauthentication_required());
        }
        let account_id = account.id;
        let (passkeys, totp) = self
            .read(move |tx| {
                Box::pin(async move {
                    Ok((
                        tx.passkeys_of(account_id).await?,
                        tx.totp(account_id).await?,
                    ))
                })
            })
            .await?;
        if !passkeys.iter().any(|passkey| passkey.id == passkey_id) {
            return Err(ServiceError::NotFound);
        }
        let totp_confirmed = totp.is_some_and(|totp| totp.confirmed_at.is_some());
        let admin = matches!(account.holder, carnet_store::AccountHolder::Admin(_));
        if passkeys.len() == 1 && (admin || !totp_confirmed) {
            return Err(ServiceError::Invalid {
                field: "passkey",
                message: if admin {
                    "Un administrateur garde au moins une clé d'accès : enregistrez-en une autre avant de retirer celle-ci."
                } else {
                    "C'est votre seul second facteur : enregistrez-en un autre avant de la retirer."
                }
                .into(),
            });
        }
        let now = self.now();
        let keep = session.id;
        let event = self.audit_event(
            &Caller {
                actor: actor_of(&account),
                ..caller.clone()
            },
            account_chain(&account),
            Action::SecondFactorChanged,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                if !tx.remove_passkey(account_id, passkey_id, now).await? {
                    return Err(StoreError::MissingReference);
                }
                tx.revoke_sessions_of(account_id, Some(keep), now).await?;
                Ok(())
            })
        })
        .await
    }

    /// Whether the account still has to enrol a second factor: administrators need a
    /// passkey; members a confirmed TOTP or a passkey.
    pub(crate) async fn needs_enrolment(
        &self,
        account: &AccountRecord,
    ) -> Result<bool, ServiceError> {
        let account_id = account.id;
        let admin = matches!(account.holder, carnet_store::AccountHolder::Admin(_));
        self.read(move |tx| {
            Box::pin(async move { needs_enrolment_in(tx, account_id, admin).await })
        })
        .await
    }

    /// Appends one audit entry on its own.
    pub(crate) async fn audit_only(
        &self,
        caller: &Caller,
        chain: ChainId,
        action: Action,
        outcome: Outcome,
    ) -> Result<(), ServiceError> {
        self.audit_alone(self.audit_event(caller, chain, action, Targets::default(), outcome))
            .await
    }
}

/// Whether the account still has to enrol a second factor (see `needs_enrolment`).
pub(crate) async fn needs_enrolment_in(
    tx: &mut Tx,
    account_id: Uuid,
    admin: bool,
) -> Result<bool, StoreError> {
    if !tx.passkeys_of(account_id).await?.is_empty() {
        return Ok(false);
    }
    if admin {
        return Ok(true);
    }
    Ok(tx
        .totp(account_id)
        .await?
        .is_none_or(|totp| totp.confirmed_at.is_none()))
}

/// The account and passkey a sign-in assertion names, if the credential exists and
/// belongs to the account its user handle names.
async fn signing_key(
    tx: &mut Tx,
    user: Uuid,
    credential_id: &[u8],
) -> Result<Option<(AccountRecord, PasskeyRecord, Passkey)>, StoreError> {
    let Some(row) = tx.passkey_by_credential_id(credential_id).await? else {
        return Ok(None);
    };
    if row.account_id != user {
        return Ok(None);
    }
    let Some(account) = tx.account(row.account_id).await? else {
        return Ok(None);
    };
    let passkey: Passkey =
        serde_json::from_str(&row.credential).map_err(|_| StoreError::Corrupt("stored passkey"))?;
    Ok(Some((account, row, passkey)))
}
