//! Accounts and sessions: activation with a one-time code, passwords (policy, Argon2id,
//! throttling and lockout), the mandatory second factor (TOTP, recovery codes), and
//! server-side sessions that lock when idle, expire, and can be revoked at once.
//!
//! Every attempt — good or bad — is in the audit trail. Secrets never leave this module
//! except once, to the person they belong to: the session token (as a cookie), the TOTP
//! secret at enrolment, the recovery codes when they are made, the activation code to
//! the holder who asked for it.

use std::sync::Arc;
use std::time::Duration;

use carnet_audit::{Action, ChainId, Outcome, Targets};
use carnet_crypto::{
    ActivationCode, CodeKey, HashingCost, KeyMaterial, PasswordCheck, PasswordHashing, SealContext,
    SealingKey, SecretToken, TotpSecret,
};
use carnet_domain::{MemberId, Password, Timestamp};
use carnet_store::{
    AccountHolder, AccountRecord, RecordsGate, SessionRecord, SignedInRecord, StoreError,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::practices::member_target;
use crate::{Actor, Caller, PracticeAction, PracticeScope, ServiceError, Services};

/// How accounts and sessions behave (from configuration).
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub hashing_cost: HashingCost,
    /// Idle time before a session locks (1 to 30 minutes).
    pub idle_lock: Duration,
    /// Absolute lifetime of a session.
    pub session_lifetime: Duration,
    /// Validity of an activation code.
    pub activation_validity: Duration,
    /// Password hashes computed at once, at most (a login flood must not starve the rest).
    pub max_concurrent_hashes: usize,
    /// Where passkeys are bound (the public address); without it, no passkeys.
    pub passkeys: Option<crate::PasskeySettings>,
    /// Age after which a platform administrator's password must be changed.
    pub admin_password_max_age: Option<Duration>,
    /// Age after which a practice member's password must be changed (none by default).
    pub member_password_max_age: Option<Duration>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            hashing_cost: HashingCost::MINIMUM,
            idle_lock: Duration::from_mins(15),
            session_lifetime: Duration::from_hours(12),
            activation_validity: Duration::from_hours(72),
            max_concurrent_hashes: 1,
            passkeys: None,
            admin_password_max_age: Some(Duration::from_hours(365 * 24)),
            member_password_max_age: None,
        }
    }
}

/// The keys and tools of authentication, built once.
pub(crate) struct AuthKit {
    pub settings: AuthSettings,
    pub hashing: PasswordHashing,
    pub codes: CodeKey,
    pub totp_key: SealingKey,
    pub pin_key: SealingKey,
    /// Wraps the practices' data keys (care records, ADR 0009).
    pub records_kek: SealingKey,
    /// Seals the device authority's private key.
    pub device_authority_key: SealingKey,
    /// The device authority, read (or made) on first use.
    pub device_authority: tokio::sync::OnceCell<std::sync::Arc<carnet_crypto::DeviceAuthority>>,
    pub hashing_slots: Semaphore,
    /// The WebAuthn verifier, when a public address is configured.
    pub webauthn: Option<webauthn_rs::Webauthn>,
    /// Failed attempts on logins that match no account, so that they are throttled and
    /// locked exactly like real accounts (otherwise a 429 would reveal that a login
    /// exists). Per node, in memory: (attempt times within the last 24 hours).
    pub unknown_failures: std::sync::Mutex<std::collections::HashMap<[u8; 32], Vec<i64>>>,
}

impl std::fmt::Debug for AuthKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthKit")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AuthKit {
    /// Builds the kit from the instance's secret material (or a throw-away one in tests).
    pub(crate) fn new(
        settings: AuthSettings,
        root: &KeyMaterial,
        random: &dyn carnet_crypto::RandomSource,
    ) -> Result<Self, crate::SetupError> {
        let codes = carnet_crypto::derive(root, "carnet/activation-codes/v1")?;
        let webauthn = settings
            .passkeys
            .as_ref()
            .map(crate::passkeys::webauthn_for)
            .transpose()
            .map_err(crate::SetupError::Passkeys)?;
        Ok(Self {
            webauthn,
            hashing: PasswordHashing::new(settings.hashing_cost, random)?,
            codes: CodeKey::new(codes.expose()),
            totp_key: SealingKey::derived(1, root, "carnet/totp-secrets/v1")?,
            pin_key: SealingKey::derived(1, root, "carnet/practice-pin/v1")?,
            device_authority_key: SealingKey::derived(1, root, "carnet/device-authority/v1")?,
            records_kek: SealingKey::derived(1, root, "carnet/practice-keys/v1")?,
            device_authority: tokio::sync::OnceCell::new(),
            hashing_slots: Semaphore::new(settings.max_concurrent_hashes.max(1)),
            unknown_failures: std::sync::Mutex::default(),
            settings,
        })
    }
}

/// Failures after which each further attempt must wait (growing delay).
const DELAY_AFTER_FAILURES: i64 = 5;
/// Failures in 24 hours after which the password path is locked.
const LOCK_AFTER_FAILURES: i64 = 20;
const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;
/// Wrong activation codes after which a code is dead.
const ACTIVATION_TRIES: i64 = 5;
/// TOTP tries allowed per 30-second step in a session.
const TOTP_TRIES_PER_STEP: i64 = 3;
/// Recovery codes made at enrolment.
const RECOVERY_CODES: usize = 10;
/// Re-authentication no older than this for sensitive actions.
const REAUTHENTICATION_WINDOW_MILLIS: i64 = 5 * 60 * 1000;
/// `last_seen_at` is written at most this often for an active session.
const TOUCH_EVERY_MILLIS: i64 = 10_000;

/// A session token handed to the browser (as a cookie) and never kept by the server.
#[derive(Debug)]
pub struct IssuedSession {
    pub token: SecretToken,
    pub session_id: Uuid,
    /// The account must still enrol its second factor (TOTP or passkey; a passkey for
    /// platform administrators).
    pub needs_enrolment: bool,
}

/// What a presented session token is worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Signed in with both factors, active: the actor may act (practice data only from
    /// an approved device).
    Active {
        actor: Actor,
        session_id: Uuid,
        account_id: Uuid,
        device: crate::DeviceStanding,
        /// What was read to decide so, for the capabilities this request may ask.
        active: ActiveSession,
    },
    /// The session's device was blocked: the browser must forget everything of Carnet.
    DeviceBlocked,
    /// Password checked; the second factor (or its enrolment) is still due.
    SecondFactorRequired {
        session_id: Uuid,
        account_id: Uuid,
        needs_enrolment: bool,
    },
    /// Idle for too long: nothing is served until the password is typed again.
    Locked { session_id: Uuid },
    /// Signed in, but the password is older than allowed: only changing it is served.
    PasswordExpired {
        actor: Actor,
        session_id: Uuid,
        account_id: Uuid,
    },
    /// Unknown, forged, expired or revoked: sign in again.
    Invalid,
}

/// A session found active at the start of a request (live, both factors verified, not
/// idle-locked, password current), with its account, its device's standing and, for a
/// member, the records gate of the member's practice (PIN version, professional number,
/// wrapped practice keys), all read then in one statement. Only
/// [`Services::resolve_session`] makes one; the records capabilities are granted from it,
/// so a records request reads nothing more before its audited work.
#[derive(Clone, PartialEq, Eq)]
pub struct ActiveSession(Arc<ActiveParts>);

#[derive(PartialEq, Eq)]
struct ActiveParts {
    session: SessionRecord,
    account: AccountRecord,
    device: crate::DeviceStanding,
    /// For a member, the records gate of the member's own practice, read with the session.
    gate: RecordsGate,
}

impl ActiveSession {
    pub(crate) fn session(&self) -> &SessionRecord {
        &self.0.session
    }

    pub(crate) fn account(&self) -> &AccountRecord {
        &self.0.account
    }

    pub(crate) fn device(&self) -> crate::DeviceStanding {
        self.0.device
    }

    pub(crate) fn gate(&self) -> &RecordsGate {
        &self.0.gate
    }
}

impl std::fmt::Debug for ActiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSession")
            .field("session", &self.0.session.id)
            .field("device", &self.0.device)
            .finish_non_exhaustive()
    }
}

/// A TOTP enrolment in progress: what the person types into an authenticator app.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// Base32 secret, for manual entry.
    pub secret_base32: String,
    /// `otpauth://` URI, for a QR code.
    pub uri: String,
}

/// One of the caller's sessions, for "my sessions".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub current: bool,
    pub revoked: bool,
}

/// The session of a token's hash and its account, if both exist (whatever their state),
/// read in `tx`.
async fn session_in(
    tx: &mut carnet_store::Tx,
    token_hash: &[u8],
) -> Result<Option<(SessionRecord, AccountRecord)>, StoreError> {
    let Some(session) = tx.session_by_token_hash(token_hash).await? else {
        return Ok(None);
    };
    Ok(tx
        .account(session.account_id)
        .await?
        .map(|account| (session, account)))
}

pub(crate) fn auth_error(message: &str) -> ServiceError {
    ServiceError::Authentication {
        message: message.to_owned(),
    }
}

/// The refusal of a sensitive action without an authentication in the last 5 minutes.
pub(crate) fn reauthentication_required() -> ServiceError {
    auth_error(
        "Confirmez d'abord votre identité (mot de passe) : la dernière date de plus de 5 minutes.",
    )
}

const BAD_CREDENTIALS: &str = "Identifiant ou mot de passe incorrect.";

impl Services {
    // ---- activation ----------------------------------------------------------------------

    /// Issues an activation code for a member of the scope's practice (replacing any
    /// earlier one). Shown once to the caller, to be given by telephone.
    pub async fn issue_activation_code(
        &self,
        scope: &PracticeScope,
        member_id: MemberId,
    ) -> Result<(String, Timestamp), ServiceError> {
        if scope.action() != PracticeAction::AddMember {
            return Err(ServiceError::Forbidden);
        }
        let code =
            ActivationCode::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let shown = code.display();
        let hash = code.stored_hash(&self.auth.codes);
        let prefix: String = shown.chars().take(4).collect();
        let now = self.now();
        let expires_at = later(now, self.auth.settings.activation_validity);
        let practice_id = scope.practice_id();
        let platform_side = matches!(scope.actor(), Actor::Operator | Actor::PlatformAdmin(_));
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::MemberChanged,
            member_target(member_id),
            Outcome::Success,
        );
        let issued = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    let Some(member) = tx.member(practice_id, member_id).await? else {
                        return Ok(Err(ServiceError::NotFound));
                    };
                    if platform_side && member.role != carnet_domain::Role::Holder {
                        return Ok(Err(ServiceError::Forbidden));
                    }
                    tx.put_activation_code(member_id, practice_id, &prefix, &hash, now, expires_at)
                        .await?;
                    Ok(Ok(()))
                })
            })
            .await?;
        issued?;
        Ok((shown, expires_at))
    }

    /// Activates a member's account with the code given by telephone: sets the login and
    /// the password, and opens a session whose second factor must be enrolled next.
    pub async fn activate(
        &self,
        caller: &Caller,
        typed_code: &str,
        login: &str,
        password: &str,
    ) -> Result<IssuedSession, ServiceError> {
        let login = normalize_login(login)?;
        let now = self.now();
        let code = self.usable_activation_code(caller, typed_code, now).await?;
        let member = self
            .read(move |tx| {
                Box::pin(async move { tx.member(code.practice_id, code.member_id).await })
            })
            .await?
            .ok_or(ServiceError::NotFound)?;
        let password = Password::new(password, &[member.name.as_str(), &login])
            .map_err(|error| ServiceError::invalid("password", &error))?;
        let password_hash = self.hash_password(&password).await?;
        let account_id = self.new_uuid()?;
        let holder = AccountHolder::Member {
            member_id: member.id,
            practice_id: member.practice_id,
            role: member.role,
        };
        let session_caller = Caller {
            actor: Actor::Member {
                practice_id: member.practice_id,
                member_id: member.id,
                role: member.role,
            },
            ..caller.clone()
        };
        let event = self.audit_event(
            &session_caller,
            ChainId::Practice(member.practice_id),
            Action::MemberChanged,
            member_target(member.id),
            Outcome::Success,
        );
        let token =
            SecretToken::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let token_hash = token.stored_hash();
        let session_id = self.new_uuid()?;
        let expires_at = later(now, self.auth.settings.session_lifetime);
        let member_id = member.id;
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.insert_account(account_id, &holder, &login, &password_hash, now)
                    .await?;
                tx.activation_code_used(member_id, now).await?;
                tx.insert_session(session_id, &token_hash, account_id, now, expires_at)
                    .await?;
                Ok(())
            })
        })
        .await
        .map_err(|error| match error {
            ServiceError::Conflict => ServiceError::Invalid {
                field: "login",
                message: "Cet identifiant est déjà utilisé ou ce compte est déjà activé.".into(),
            },
            other => other,
        })?;
        Ok(IssuedSession {
            token,
            session_id,
            needs_enrolment: true,
        })
    }

    // ---- password login ------------------------------------------------------------------

    /// Checks a login and password. Unknown logins get the same answer after the same
    /// work (a dummy hash). Failures are counted per account in the database: from the
    /// 5th, each attempt must wait longer; after 20 in 24 hours the password path is
    /// locked until a holder unlocks it or 24 hours pass.
    pub async fn login(
        &self,
        caller: &Caller,
        login: &str,
        password: &str,
    ) -> Result<IssuedSession, ServiceError> {
        let login = normalize_login(login).unwrap_or_default();
        let now = self.now();
        let found = self
            .read({
                let login = login.clone();
                move |tx| {
                    Box::pin(async move {
                        let Some(account) = tx.account_by_login(&login).await? else {
                            return Ok(None);
                        };
                        let failures = tx
                            .password_failures_since(
                                account.id,
                                Timestamp::from_unix_millis(now.unix_millis() - DAY_MILLIS),
                            )
                            .await?;
                        Ok(Some((account, failures)))
                    })
                }
            })
            .await?;
        let Some((account, (failures, last_failure))) = found else {
            return Err(self
                .refuse_unknown_login(caller, &login, password, now)
                .await);
        };
        let chain = account_chain(&account);
        let account_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        self.check_throttle(&account_caller, chain, failures, last_failure, now)
            .await?;
        let check = self
            .verify_password(password, &account.password_hash)
            .await?;
        let account_id = account.id;
        if check == PasswordCheck::Mismatch {
            let event = self.audit_event(
                &account_caller,
                chain,
                Action::LoginFailed,
                Targets::default(),
                Outcome::Failure,
            );
            self.audited(vec![event], move |tx| {
                Box::pin(async move { tx.record_auth_failure(account_id, "password", now).await })
            })
            .await?;
            return Err(auth_error(BAD_CREDENTIALS));
        }
        let rehash = if check == PasswordCheck::MatchesNeedsRehash {
            Some(self.hash_password_text(password).await?)
        } else {
            None
        };
        let token =
            SecretToken::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let token_hash = token.stored_hash();
        let session_id = self.new_uuid()?;
        let expires_at = later(now, self.auth.settings.session_lifetime);
        let event = self.audit_event(
            &account_caller,
            chain,
            Action::LoginSucceeded,
            Targets::default(),
            Outcome::Success,
        );
        let admin = matches!(account.holder, AccountHolder::Admin(_));
        let needs_enrolment = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    if let Some(hash) = rehash {
                        tx.rehash_password(account_id, &hash).await?;
                    }
                    tx.insert_session(session_id, &token_hash, account_id, now, expires_at)
                        .await?;
                    crate::passkeys::needs_enrolment_in(tx, account_id, admin).await
                })
            })
            .await?;
        Ok(IssuedSession {
            token,
            session_id,
            needs_enrolment,
        })
    }

    // ---- second factor -------------------------------------------------------------------

    /// Starts (or restarts) the TOTP enrolment of a session's account that has none
    /// confirmed yet.
    pub async fn start_totp_enrolment(&self, token: &str) -> Result<TotpEnrolment, ServiceError> {
        let (session, account) = self.password_session(token).await?;
        refuse_totp_for_admins(&account)?;
        let secret =
            TotpSecret::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let row = account.id.into_bytes();
        let sealed = self
            .auth
            .totp_key
            .seal(secret.expose(), totp_context(&row), self.random.as_ref())
            .map_err(|_| ServiceError::Randomness)?;
        let now = self.now();
        let account_id = account.id;
        let enrolled = self
            .committer
            .run(move |tx| {
                Box::pin(async move {
                    if tx
                        .totp(account_id)
                        .await?
                        .is_some_and(|totp| totp.confirmed_at.is_some())
                    {
                        return Ok(false);
                    }
                    tx.put_totp(account_id, &sealed, now).await?;
                    Ok(true)
                })
            })
            .await?;
        if !enrolled {
            return Err(ServiceError::Invalid {
                field: "totp",
                message: "Un second facteur est déjà enregistré pour ce compte.".into(),
            });
        }
        let _ = session;
        Ok(enrolment_for(&account.login, &secret))
    }

    /// Starts replacing the TOTP second factor of a signed-in account (after a fresh
    /// authentication): the new secret only takes over once a code from it is verified.
    pub async fn start_totp_replacement(&self, token: &str) -> Result<TotpEnrolment, ServiceError> {
        let (session, account) = self.session_and_account(token).await?;
        if session.second_factor_at.is_none() || !self.recently_authenticated(token).await? {
            return Err(reauthentication_required());
        }
        let secret =
            TotpSecret::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?;
        let row = account.id.into_bytes();
        let sealed = self
            .auth
            .totp_key
            .seal(
                secret.expose(),
                replacement_context(&row),
                self.random.as_ref(),
            )
            .map_err(|_| ServiceError::Randomness)?;
        let (account_id, now) = (account.id, self.now());
        self.committer
            .run(move |tx| {
                Box::pin(async move { tx.put_totp_replacement(account_id, &sealed, now).await })
            })
            .await?;
        Ok(enrolment_for(&account.login, &secret))
    }

    /// Confirms a TOTP replacement with a code from the new secret: the new secret takes
    /// over, new recovery codes are made (returned once), every other session is revoked.
    pub async fn confirm_totp_replacement(
        &self,
        caller: &Caller,
        token: &str,
        code: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let (session, account) = self.session_and_account(token).await?;
        if session.second_factor_at.is_none() {
            return Err(auth_error(
                "Connectez-vous d'abord avec votre second facteur.",
            ));
        }
        let account_id = account.id;
        let sealed = self
            .read(move |tx| Box::pin(async move { tx.totp_replacement(account_id).await }))
            .await?
            .ok_or_else(|| auth_error("Aucun remplacement de second facteur en cours."))?;
        let row = account.id.into_bytes();
        let secret = self
            .auth
            .totp_key
            .open(&sealed, replacement_context(&row))
            .map_err(|_| ServiceError::Unavailable(StoreError::Corrupt("sealed TOTP secret")))?;
        let secret = TotpSecret::from_bytes(secret.to_vec());
        let now = self.now();
        let seconds = u64::try_from(now.unix_millis() / 1000).unwrap_or_default();
        let account_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        let chain = account_chain(&account);
        let Ok(step) = secret.verify(code, seconds, None) else {
            let event = self.audit_event(
                &account_caller,
                chain,
                Action::SecondFactorFailed,
                Targets::default(),
                Outcome::Failure,
            );
            self.audited(vec![event], move |tx| {
                Box::pin(async move { tx.record_auth_failure(account_id, "totp", now).await })
            })
            .await?;
            return Err(auth_error("Code de vérification incorrect."));
        };
        let resealed = self
            .auth
            .totp_key
            .seal(secret.expose(), totp_context(&row), self.random.as_ref())
            .map_err(|_| ServiceError::Randomness)?;
        let recovery = self.new_recovery_codes()?;
        let hashes = self.recovery_hashes(&recovery);
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let keep = session.id;
        let event = self.audit_event(
            &account_caller,
            chain,
            Action::MemberChanged,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.put_totp(account_id, &resealed, now).await?;
                tx.totp_used(account_id, step, now).await?;
                tx.delete_totp_replacement(account_id).await?;
                tx.put_recovery_codes(account_id, &hashes, now).await?;
                tx.revoke_sessions_of(account_id, Some(keep), now).await?;
                Ok(())
            })
        })
        .await?;
        Ok(recovery)
    }

    /// Checks a TOTP code for a session whose second factor is due (confirming the
    /// enrolment on first success, and then returning the recovery codes, once).
    pub async fn verify_totp(
        &self,
        caller: &Caller,
        token: &str,
        code: &str,
    ) -> Result<Option<Vec<String>>, ServiceError> {
        let (mut session, account) = self.password_session(token).await?;
        refuse_totp_for_admins(&account)?;
        let now = self.now();
        let account_id = account.id;
        let totp = self
            .read(move |tx| Box::pin(async move { tx.totp(account_id).await }))
            .await?
            .ok_or_else(|| {
                auth_error("Aucun second facteur n'est enregistré : commencez l'enrôlement.")
            })?;
        let row = account.id.into_bytes();
        let secret = self
            .auth
            .totp_key
            .open(&totp.sealed_secret, totp_context(&row))
            .map_err(|_| ServiceError::Unavailable(StoreError::Corrupt("sealed TOTP secret")))?;
        let secret = TotpSecret::from_bytes(secret.to_vec());
        let seconds = u64::try_from(now.unix_millis() / 1000).unwrap_or_default();
        let step = i64::try_from(seconds / carnet_crypto::TOTP_STEP_SECONDS).unwrap_or(i64::MAX);
        if session.totp_step == Some(step) && session.totp_tries >= TOTP_TRIES_PER_STEP {
            return Err(ServiceError::TooManyAttempts {
                retry_after_seconds: 30,
            });
        }
        let last_used = totp
            .last_used_step
            .and_then(|step| u64::try_from(step).ok());
        let chain = account_chain(&account);
        let account_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        let Ok(matched) = secret.verify(code, seconds, last_used) else {
            if session.totp_step == Some(step) {
                session.totp_tries += 1;
            } else {
                session.totp_step = Some(step);
                session.totp_tries = 1;
            }
            let event = self.audit_event(
                &account_caller,
                chain,
                Action::SecondFactorFailed,
                Targets::default(),
                Outcome::Failure,
            );
            self.audited(vec![event], move |tx| {
                Box::pin(async move {
                    tx.record_auth_failure(account_id, "totp", now).await?;
                    tx.update_session(&session).await
                })
            })
            .await?;
            return Err(auth_error("Code de vérification incorrect."));
        };
        let first_confirmation = totp.confirmed_at.is_none();
        let recovery = if first_confirmation {
            Some(self.new_recovery_codes()?)
        } else {
            None
        };
        let hashes = self.recovery_hashes(recovery.as_deref().unwrap_or_default());
        session.second_factor_at = Some(now);
        session.second_factor_kind = Some("totp".into());
        session.last_seen_at = now;
        session.authenticated_at = now;
        let matched = i64::try_from(matched).unwrap_or(i64::MAX);
        let event = self.audit_event(
            &account_caller,
            chain,
            Action::LoginSucceeded,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.totp_used(account_id, matched, now).await?;
                if !hashes.is_empty() {
                    tx.put_recovery_codes(account_id, &hashes, now).await?;
                }
                tx.update_session(&session).await
            })
        })
        .await?;
        Ok(recovery)
    }

    /// Completes the second factor with a single-use recovery code.
    pub async fn use_recovery_code(
        &self,
        caller: &Caller,
        token: &str,
        code: &str,
    ) -> Result<(), ServiceError> {
        let (mut session, account) = self.password_session(token).await?;
        let now = self.now();
        let hash = self.auth.codes.hash_typed(code);
        let account_id = account.id;
        let chain = account_chain(&account);
        let account_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        session.second_factor_at = Some(now);
        session.second_factor_kind = Some("recovery".into());
        session.last_seen_at = now;
        session.authenticated_at = now;
        let succeeded = self.audit_event(
            &account_caller,
            chain,
            Action::LoginSucceeded,
            Targets::default(),
            Outcome::Success,
        );
        let failed = self.audit_event(
            &account_caller,
            chain,
            Action::SecondFactorFailed,
            Targets::default(),
            Outcome::Failure,
        );
        // The outcome and its audit entry commit together.
        let used = self
            .audited(Vec::new(), move |tx| {
                Box::pin(async move {
                    let used = tx.use_recovery_code(account_id, &hash, now).await?;
                    if used {
                        tx.update_session(&session).await?;
                        tx.append_audit(succeeded).await?;
                    } else {
                        tx.record_auth_failure(account_id, "recovery", now).await?;
                        tx.append_audit(failed).await?;
                    }
                    Ok(used)
                })
            })
            .await?;
        if used {
            Ok(())
        } else {
            Err(auth_error("Code de secours invalide ou déjà utilisé."))
        }
    }

    // ---- sessions ------------------------------------------------------------------------

    /// What a presented session token is worth now, on a connection that presented the
    /// certificate of `certified_device` (if any). Touches an active session's activity
    /// (at most every 10 seconds); a locked session is not touched.
    ///
    /// A session opened on a certified connection is worth nothing without that
    /// device's certificate, and a connection's certificate never carries another
    /// device's session (ADR 0008).
    pub async fn resolve_session(
        &self,
        token: &str,
        certified_device: Option<Uuid>,
    ) -> Result<SessionState, ServiceError> {
        let token_hash = SecretToken::hash_of(token);
        // One statement for the session, its account, its device's standing and its
        // practice's records gate: this runs on every signed-in request.
        let loaded = self
            .read_latest(move |tx| Box::pin(async move { tx.signed_in(&token_hash).await }))
            .await?;
        let Some(SignedInRecord {
            mut session,
            account,
            grant_state,
            gate,
        }) = loaded
        else {
            return Ok(SessionState::Invalid);
        };
        let connection_fits = match certified_device {
            Some(device) => session.device_id == Some(device),
            None => !session.certified_device,
        };
        if !connection_fits {
            return Ok(SessionState::Invalid);
        }
        let device = crate::devices::standing_of(grant_state.as_deref());
        let now = self.now();
        if session.revoked_at.is_some() || now >= session.expires_at {
            if device == crate::DeviceStanding::Blocked {
                return Ok(SessionState::DeviceBlocked);
            }
            return Ok(SessionState::Invalid);
        }
        if session.second_factor_at.is_none() {
            return Ok(SessionState::SecondFactorRequired {
                session_id: session.id,
                account_id: account.id,
                needs_enrolment: self.needs_enrolment(&account).await?,
            });
        }
        let idle = i64::try_from(self.auth.settings.idle_lock.as_millis()).unwrap_or(i64::MAX);
        if now.unix_millis() - session.last_seen_at.unix_millis() > idle {
            return Ok(SessionState::Locked {
                session_id: session.id,
            });
        }
        let session_id = session.id;
        if now.unix_millis() - session.last_seen_at.unix_millis() > TOUCH_EVERY_MILLIS {
            session.last_seen_at = now;
            let touched = session.clone();
            self.committer
                .run(move |tx| Box::pin(async move { tx.update_session(&touched).await }))
                .await?;
        }
        if self.password_expired(&account, now) {
            return Ok(SessionState::PasswordExpired {
                actor: actor_of(&account),
                session_id,
                account_id: account.id,
            });
        }
        Ok(SessionState::Active {
            actor: actor_of(&account),
            session_id,
            account_id: account.id,
            device,
            active: ActiveSession(Arc::new(ActiveParts {
                session,
                account,
                device,
                gate,
            })),
        })
    }

    /// Whether the account's password is older than its kind of account allows.
    fn password_expired(&self, account: &AccountRecord, now: Timestamp) -> bool {
        let max_age = match account.holder {
            AccountHolder::Admin(_) => self.auth.settings.admin_password_max_age,
            AccountHolder::Member { .. } => self.auth.settings.member_password_max_age,
        };
        max_age.is_some_and(|age| later(account.password_changed_at, age) <= now)
    }

    /// Unlocks an idle-locked session with the password.
    pub async fn unlock_session(
        &self,
        caller: &Caller,
        token: &str,
        password: &str,
    ) -> Result<(), ServiceError> {
        let (mut session, account) = self.session_and_account(token).await?;
        if session.second_factor_at.is_none() {
            return Err(auth_error(
                "Connectez-vous d'abord avec votre second facteur.",
            ));
        }
        let now = self.now();
        let chain = account_chain(&account);
        let account_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        let account_id = account.id;
        if self
            .verify_password(password, &account.password_hash)
            .await?
            == PasswordCheck::Mismatch
        {
            let event = self.audit_event(
                &account_caller,
                chain,
                Action::LoginFailed,
                Targets::default(),
                Outcome::Failure,
            );
            self.audited(vec![event], move |tx| {
                Box::pin(async move { tx.record_auth_failure(account_id, "password", now).await })
            })
            .await?;
            return Err(auth_error(BAD_CREDENTIALS));
        }
        let idle = i64::try_from(self.auth.settings.idle_lock.as_millis()).unwrap_or(i64::MAX);
        if now.unix_millis() - session.last_seen_at.unix_millis() > idle {
            // After an idle lock the care records need the practice PIN again.
            session.pin_version = None;
        }
        session.last_seen_at = now;
        session.authenticated_at = now;
        let event = self.audit_event(
            &account_caller,
            chain,
            Action::LoginSucceeded,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move { tx.update_session(&session).await })
        })
        .await
    }

    /// Ends the session of `token` (logout).
    pub async fn logout(&self, caller: &Caller, token: &str) -> Result<(), ServiceError> {
        let (mut session, account) = self.session_and_account(token).await?;
        session.revoked_at = Some(self.now());
        let event = self.audit_event(
            &Caller {
                actor: actor_of(&account),
                ..caller.clone()
            },
            account_chain(&account),
            Action::SessionRevoked,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move { tx.update_session(&session).await })
        })
        .await
    }

    /// The sessions of the account behind `token`, newest first.
    pub async fn my_sessions(&self, token: &str) -> Result<Vec<SessionSummary>, ServiceError> {
        let (current, account) = self.session_and_account(token).await?;
        let account_id = account.id;
        let sessions = self
            .read(move |tx| Box::pin(async move { tx.sessions_of(account_id).await }))
            .await?;
        Ok(sessions
            .into_iter()
            .map(|session| SessionSummary {
                id: session.id,
                created_at: session.created_at,
                last_seen_at: session.last_seen_at,
                expires_at: session.expires_at,
                current: session.id == current.id,
                revoked: session.revoked_at.is_some(),
            })
            .collect())
    }

    /// Revokes one of the caller's own sessions: refused on its very next request.
    pub async fn revoke_my_session(
        &self,
        caller: &Caller,
        token: &str,
        session_id: Uuid,
    ) -> Result<(), ServiceError> {
        let (_, account) = self.session_and_account(token).await?;
        let account_id = account.id;
        let now = self.now();
        let event = self.audit_event(
            &Caller {
                actor: actor_of(&account),
                ..caller.clone()
            },
            account_chain(&account),
            Action::SessionRevoked,
            Targets::default(),
            Outcome::Success,
        );
        let found = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    let mut sessions = tx.sessions_of(account_id).await?;
                    let Some(session) =
                        sessions.iter_mut().find(|session| session.id == session_id)
                    else {
                        return Ok(false);
                    };
                    session.revoked_at.get_or_insert(now);
                    tx.update_session(session).await?;
                    Ok(true)
                })
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// Changes the password (the current one is required); every other session of the
    /// account is revoked.
    pub async fn change_password(
        &self,
        caller: &Caller,
        token: &str,
        current: &str,
        new: &str,
    ) -> Result<(), ServiceError> {
        let (session, account) = self.complete_session(token).await?;
        if self
            .verify_password(current, &account.password_hash)
            .await?
            == PasswordCheck::Mismatch
        {
            return Err(ServiceError::Invalid {
                field: "current_password",
                message: "Le mot de passe actuel est incorrect.".into(),
            });
        }
        if current == new {
            return Err(ServiceError::Invalid {
                field: "new_password",
                message: "Le nouveau mot de passe doit être différent de l'actuel.".into(),
            });
        }
        let password = Password::new(new, &[account.name.as_str(), &account.login])
            .map_err(|error| ServiceError::invalid("password", &error))?;
        let hash = self.hash_password(&password).await?;
        let now = self.now();
        let account_id = account.id;
        let keep = session.id;
        let event = self.audit_event(
            &Caller {
                actor: actor_of(&account),
                ..caller.clone()
            },
            account_chain(&account),
            Action::MemberChanged,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.change_password(account_id, &hash, now).await?;
                tx.revoke_sessions_of(account_id, Some(keep), now).await?;
                Ok(())
            })
        })
        .await
    }

    /// Whether the session re-authenticated (password, unlock, second factor) in the last
    /// five minutes: required before sensitive actions.
    pub async fn recently_authenticated(&self, token: &str) -> Result<bool, ServiceError> {
        let (session, _) = self.session_and_account(token).await?;
        Ok(self.recently_authenticated_session(&session))
    }

    pub(crate) fn recently_authenticated_session(&self, session: &SessionRecord) -> bool {
        self.now().unix_millis() - session.authenticated_at.unix_millis()
            <= REAUTHENTICATION_WINDOW_MILLIS
    }

    /// The activation code matching `typed_code`, if it is usable; otherwise counts a
    /// wrong try against the codes sharing its first characters and refuses.
    async fn usable_activation_code(
        &self,
        caller: &Caller,
        typed_code: &str,
        now: Timestamp,
    ) -> Result<carnet_store::ActivationRecord, ServiceError> {
        let hash = self.auth.codes.hash_typed(typed_code);
        let prefix: String = typed_code
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .flat_map(char::to_uppercase)
            .take(4)
            .collect();
        let candidates = self
            .read({
                let prefix = prefix.clone();
                move |tx| Box::pin(async move { tx.activation_codes_with_prefix(&prefix).await })
            })
            .await?;
        let usable = candidates.into_iter().find(|code| {
            carnet_crypto::constant_time_eq(&code.code_hash, &hash)
                && code.used_at.is_none()
                && code.expires_at > now
                && code.failures < ACTIVATION_TRIES
        });
        let Some(code) = usable else {
            let event = self.audit_event(
                caller,
                ChainId::Instance,
                Action::LoginFailed,
                Targets::default(),
                Outcome::Failure,
            );
            self.audited(vec![event], move |tx| {
                Box::pin(async move { tx.activation_code_failed(&prefix).await })
            })
            .await?;
            return Err(auth_error(
                "Code d'activation invalide, expiré ou déjà utilisé.",
            ));
        };
        Ok(code)
    }

    /// Refuses a password attempt while the account is locked (20 failures in 24 hours)
    /// or before the growing delay after the 5th failure has passed.
    async fn check_throttle(
        &self,
        account_caller: &Caller,
        chain: ChainId,
        failures: i64,
        last_failure: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        if failures >= LOCK_AFTER_FAILURES {
            let event = self.audit_event(
                account_caller,
                chain,
                Action::LoginFailed,
                Targets::default(),
                Outcome::Denied,
            );
            self.audit_alone(event).await?;
            return Err(ServiceError::AccountLocked);
        }
        if failures >= DELAY_AFTER_FAILURES {
            let wait = delay_after(failures);
            if let Some(last) = last_failure
                && now.unix_millis() < last.unix_millis() + wait
            {
                return Err(ServiceError::TooManyAttempts {
                    retry_after_seconds: (last.unix_millis() + wait - now.unix_millis() + 999)
                        / 1000,
                });
            }
        }
        Ok(())
    }

    /// Lifts the password lockout of a member's account (a holder of the practice, or a
    /// platform administrator; the audit entry names who).
    pub async fn unlock_member_account(
        &self,
        scope: &PracticeScope,
        member_id: MemberId,
    ) -> Result<(), ServiceError> {
        let by = match scope.actor() {
            Actor::Member {
                role: carnet_domain::Role::Holder,
                member_id: by,
                ..
            } => Some(*by),
            Actor::PlatformAdmin(_) => None,
            _ => return Err(ServiceError::Forbidden),
        };
        if scope.action() != PracticeAction::AddMember {
            return Err(ServiceError::Forbidden);
        }
        let practice_id = scope.practice_id();
        let now = self.now();
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::MemberChanged,
            member_target(member_id),
            Outcome::Success,
        );
        let found = self
            .audited(vec![event], move |tx| {
                Box::pin(async move {
                    let Some(account) = tx.account_of_member(member_id).await? else {
                        return Ok(false);
                    };
                    let same_practice = matches!(
                        account.holder,
                        AccountHolder::Member { practice_id: practice, .. } if practice == practice_id
                    );
                    if !same_practice {
                        return Ok(false);
                    }
                    tx.unlock_account(account.id, by, now).await?;
                    Ok(true)
                })
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// The answer to a login that matches no account: the same throttling, the same
    /// work (a dummy hash), the same audit entry and message as a wrong password.
    async fn refuse_unknown_login(
        &self,
        caller: &Caller,
        login: &str,
        password: &str,
        now: Timestamp,
    ) -> ServiceError {
        let outcome: Result<(), ServiceError> = async {
            // No such account: the same throttling, the same work, the same answers.
            let key = carnet_crypto::sha256(login.as_bytes());
            let (failures, last_failure) = self.unknown_login_failures(key, now);
            self.check_throttle(caller, ChainId::Instance, failures, last_failure, now)
                .await?;
            self.verify_dummy(password).await?;
            self.record_unknown_login_failure(key, now);
            let event = self.audit_event(
                caller,
                ChainId::Instance,
                Action::LoginFailed,
                Targets::default(),
                Outcome::Failure,
            );
            self.audit_alone(event).await?;
            Ok(())
        }
        .await;
        outcome.err().unwrap_or_else(|| auth_error(BAD_CREDENTIALS))
    }

    /// Failures on an unknown login in the last 24 hours, and the latest.
    fn unknown_login_failures(&self, key: [u8; 32], now: Timestamp) -> (i64, Option<Timestamp>) {
        let Ok(mut failures) = self.auth.unknown_failures.lock() else {
            return (LOCK_AFTER_FAILURES, Some(now)); // A poisoned lock fails closed.
        };
        let since = now.unix_millis() - DAY_MILLIS;
        let Some(times) = failures.get_mut(&key) else {
            return (0, None);
        };
        times.retain(|at| *at >= since);
        let count = i64::try_from(times.len()).unwrap_or(i64::MAX);
        (
            count,
            times.last().copied().map(Timestamp::from_unix_millis),
        )
    }

    fn record_unknown_login_failure(&self, key: [u8; 32], now: Timestamp) {
        if let Ok(mut failures) = self.auth.unknown_failures.lock() {
            if failures.len() > 100_000 {
                let since = now.unix_millis() - DAY_MILLIS;
                failures.retain(|_, times| times.last().is_some_and(|at| *at >= since));
            }
            failures.entry(key).or_default().push(now.unix_millis());
        }
    }

    // ---- helpers -------------------------------------------------------------------------

    /// A live (not revoked, not expired) session and its account.
    pub(crate) async fn session_and_account(
        &self,
        token: &str,
    ) -> Result<(SessionRecord, AccountRecord), ServiceError> {
        self.live_session(self.load_session(token).await?)
    }

    /// The loaded session and its account, if the session is live (not revoked, not
    /// expired).
    fn live_session(
        &self,
        loaded: Option<(SessionRecord, AccountRecord)>,
    ) -> Result<(SessionRecord, AccountRecord), ServiceError> {
        let (session, account) =
            loaded.ok_or_else(|| auth_error("Session inconnue : connectez-vous."))?;
        if session.revoked_at.is_some() || self.now() >= session.expires_at {
            return Err(auth_error("Session terminée : connectez-vous."));
        }
        Ok((session, account))
    }

    /// The loaded session and its account, if the session is live with both factors
    /// verified.
    fn completed_session(
        &self,
        loaded: Option<(SessionRecord, AccountRecord)>,
    ) -> Result<(SessionRecord, AccountRecord), ServiceError> {
        let (session, account) = self.live_session(loaded)?;
        if session.second_factor_at.is_none() {
            return Err(auth_error(
                "Connectez-vous d'abord avec votre second facteur.",
            ));
        }
        Ok((session, account))
    }

    /// The session of a presented token and its account, if both exist (whatever their
    /// state). Read on a plain transaction, not through the group-committing writer:
    /// this runs on every signed-in request and writes nothing.
    pub(crate) async fn load_session(
        &self,
        token: &str,
    ) -> Result<Option<(SessionRecord, AccountRecord)>, ServiceError> {
        let token_hash = SecretToken::hash_of(token);
        self.read(move |tx| Box::pin(async move { session_in(tx, &token_hash).await }))
            .await
    }

    /// A live session with both factors verified (idle-locked or not: callers that serve
    /// pages get here only through an active session).
    pub(crate) async fn complete_session(
        &self,
        token: &str,
    ) -> Result<(SessionRecord, AccountRecord), ServiceError> {
        self.completed_session(self.load_session(token).await?)
    }

    /// A live session whose password step is done and whose second factor is due.
    pub(crate) async fn password_session(
        &self,
        token: &str,
    ) -> Result<(SessionRecord, AccountRecord), ServiceError> {
        let (session, account) = self.session_and_account(token).await?;
        if session.second_factor_at.is_some() {
            return Err(auth_error(
                "Le second facteur de cette session est déjà vérifié.",
            ));
        }
        Ok((session, account))
    }

    async fn hash_password(&self, password: &Password) -> Result<String, ServiceError> {
        self.hash_password_text(password.expose()).await
    }

    /// Hashes under the concurrency limit, off the async threads.
    pub(crate) async fn hash_password_text(&self, password: &str) -> Result<String, ServiceError> {
        let random = self.random.clone();
        let password = zeroize::Zeroizing::new(password.to_owned());
        self.run_hashing(move |kit| kit.hashing.hash(password.as_bytes(), random.as_ref()))
            .await?
            .map_err(|_| ServiceError::Randomness)
    }

    async fn verify_password(
        &self,
        password: &str,
        stored: &str,
    ) -> Result<PasswordCheck, ServiceError> {
        let password = zeroize::Zeroizing::new(password.to_owned());
        let stored = stored.to_owned();
        self.run_hashing(move |kit| kit.hashing.verify(password.as_bytes(), &stored))
            .await
    }

    async fn verify_dummy(&self, password: &str) -> Result<(), ServiceError> {
        let password = zeroize::Zeroizing::new(password.to_owned());
        self.run_hashing(move |kit| kit.hashing.verify_dummy(password.as_bytes()))
            .await
    }

    /// Runs one password hash off the async threads, under the concurrency limit (at
    /// most half the cores, from configuration), so a flood of sign-in attempts queues
    /// instead of taking all the CPU from signed-in people. (Also tried: keeping the slot
    /// idle as long as the hash took; measured worse for signed-in p99, 2.8× vs 2.2×.)
    async fn run_hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce(&AuthKit) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let _slot = self
            .auth
            .hashing_slots
            .acquire()
            .await
            .map_err(|_| ServiceError::Randomness)?;
        let kit = self.auth.clone();
        tokio::task::spawn_blocking(move || work(&kit))
            .await
            .map_err(|_| ServiceError::Randomness)
    }

    pub(crate) fn recovery_hashes(&self, codes: &[String]) -> Vec<[u8; 32]> {
        codes
            .iter()
            .map(|code| self.auth.codes.hash_typed(code))
            .collect()
    }

    pub(crate) fn new_recovery_codes(&self) -> Result<Vec<String>, ServiceError> {
        (0..RECOVERY_CODES)
            .map(|_| {
                ActivationCode::generate(self.random.as_ref())
                    .map(|code| code.display())
                    .map_err(|_| ServiceError::Randomness)
            })
            .collect()
    }

    pub(crate) fn new_uuid(&self) -> Result<Uuid, ServiceError> {
        let (millis, random) = self.new_id_parts()?;
        Ok(*carnet_domain::MemberId::new_v7(millis, &random).as_uuid())
    }
}

/// Platform administrators sign in with a passkey as second factor (PGSSI-S: the
/// strongest factor for the widest access), never with TOTP.
fn refuse_totp_for_admins(account: &AccountRecord) -> Result<(), ServiceError> {
    if matches!(account.holder, AccountHolder::Admin(_)) {
        return Err(auth_error(
            "Les administrateurs utilisent une clé d'accès comme second facteur.",
        ));
    }
    Ok(())
}

/// The actor an account acts as.
pub(crate) fn actor_of(account: &AccountRecord) -> Actor {
    match &account.holder {
        AccountHolder::Member {
            member_id,
            practice_id,
            role,
        } => Actor::Member {
            practice_id: *practice_id,
            member_id: *member_id,
            role: *role,
        },
        AccountHolder::Admin(admin) => Actor::PlatformAdmin(*admin),
    }
}

/// The chain an account's authentication events go to.
pub(crate) fn account_chain(account: &AccountRecord) -> ChainId {
    match &account.holder {
        AccountHolder::Member { practice_id, .. } => ChainId::Practice(*practice_id),
        AccountHolder::Admin(_) => ChainId::Instance,
    }
}

/// What a person types into an authenticator app for `secret`.
fn enrolment_for(login: &str, secret: &TotpSecret) -> TotpEnrolment {
    let issuer = "Carnet";
    TotpEnrolment {
        secret_base32: secret.base32().to_string(),
        uri: format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
            percent_encode(login),
            secret.base32().as_str()
        ),
    }
}

fn replacement_context(row: &[u8; 16]) -> SealContext<'_> {
    SealContext {
        table: "totp_replacements",
        column: "sealed_secret",
        row,
    }
}

fn totp_context(row: &[u8; 16]) -> SealContext<'_> {
    SealContext {
        table: "totp_credentials",
        column: "sealed_secret",
        row,
    }
}

/// Logins are e-mail addresses, compared in lower case.
pub(crate) fn normalize_login(login: &str) -> Result<String, ServiceError> {
    let login = login.trim().to_lowercase();
    let valid = login.len() <= 254
        && login
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !login.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(login)
    } else {
        Err(ServiceError::Invalid {
            field: "login",
            message: "L'identifiant doit être une adresse e-mail.".into(),
        })
    }
}

/// The wait imposed after `failures` failed attempts: 1 s after the 5th, doubling, at
/// most 15 minutes.
fn delay_after(failures: i64) -> i64 {
    let exponent = u32::try_from((failures - DELAY_AFTER_FAILURES).clamp(0, 20)).unwrap_or(20);
    (1000_i64 << exponent).min(15 * 60 * 1000)
}

pub(crate) fn later(now: Timestamp, duration: Duration) -> Timestamp {
    Timestamp::from_unix_millis(
        now.unix_millis()
            .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub(crate) type SharedAuthKit = Arc<AuthKit>;
