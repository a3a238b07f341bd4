//! Registered devices. A browser gets a random secret in its own long-lived cookie the
//! first time someone signs in on it; per account, the device is then pending, approved
//! or blocked. The first device of an account (the one it was activated on) is approved;
//! any other stays pending until a holder approves it — or, for one's own device, until
//! one approves it oneself right after a passkey or recovery-code sign-in (ADR 0007).
//! Blocking ends the device's sessions at once; a blocked device is never approved again.

use carnet_audit::{Action, Outcome, Targets};
use carnet_crypto::SecretToken;
use carnet_domain::{PracticeId, Role, Timestamp};
use carnet_store::{AccountHolder, AccountRecord, GrantRecord, SessionRecord, StoreError, Tx};
use uuid::Uuid;

use crate::auth::{account_chain, actor_of, auth_error, reauthentication_required};
use crate::{Caller, ServiceError, Services};

/// What a device is for the account using it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStanding {
    Approved,
    /// Signed in, but nothing of the practice is served until a holder approves it.
    Pending,
    Blocked,
}

impl DeviceStanding {
    fn parse(state: &str) -> Self {
        match state {
            "approved" => Self::Approved,
            "pending" => Self::Pending,
            // Anything else (including an unknown value) fails closed.
            _ => Self::Blocked,
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Approved => "approuvé",
            Self::Pending => "en attente d'approbation",
            Self::Blocked => "bloqué",
        }
    }
}

/// The refusal of a decision on a device that is not in the state it needs.
fn not_in_state_for(decision: DeviceDecision) -> ServiceError {
    ServiceError::Invalid {
        field: "state",
        message: match decision {
            DeviceDecision::Approve => {
                "Seul un appareil en attente peut être approuvé (un appareil bloqué ne l'est jamais)."
            }
            DeviceDecision::Block => "Cet appareil est déjà bloqué.",
            DeviceDecision::Delete => "Seul un appareil bloqué peut être supprimé.",
        }
        .into(),
    }
}

/// The standing a grant's state gives (no grant, or no device: pending).
pub(crate) fn standing_of(state: Option<&str>) -> DeviceStanding {
    state.map_or(DeviceStanding::Pending, DeviceStanding::parse)
}

/// The outcome of binding a new session to the device it was opened on.
#[derive(Debug)]
pub struct DeviceBinding {
    /// A new device: its secret, for the device cookie (shown once, stored hashed).
    pub new_secret: Option<SecretToken>,
    pub standing: DeviceStanding,
}

/// A device as its user or a holder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSummary {
    pub device_id: Uuid,
    pub account_id: Uuid,
    pub login: String,
    pub name: String,
    pub browser: String,
    pub standing: DeviceStanding,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The device of the asking session.
    pub current: bool,
}

/// What can be done to a device grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceDecision {
    Approve,
    Block,
    Delete,
}

/// Self-approval needs a passkey or recovery-code sign-in this recent.
const SELF_APPROVAL_WINDOW_MILLIS: i64 = 5 * 60 * 1000;

/// A short, readable summary of a User-Agent ("Firefox sur Linux").
pub fn browser_summary(user_agent: &str) -> String {
    let browser = [
        ("carnet-cli/", "Client Carnet (certificat)"),
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map_or("Navigateur inconnu", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} sur {system}"),
        None => browser.to_owned(),
    }
}

fn practice_of(account: &AccountRecord) -> Option<PracticeId> {
    match account.holder {
        AccountHolder::Member { practice_id, .. } => Some(practice_id),
        AccountHolder::Admin(_) => None,
    }
}

impl Services {
    /// Binds the session of `token` (just opened) to the presented device, creating the
    /// device if the browser has none. A device blocked for this account ends the
    /// session at once.
    pub async fn bind_device(
        &self,
        caller: &Caller,
        token: &str,
        device_secret: Option<&str>,
        user_agent: &str,
    ) -> Result<DeviceBinding, ServiceError> {
        let (session, account) = self.session_and_account(token).await?;
        let now = self.now();
        // A connection authenticated by a device certificate names its device; otherwise
        // the browser's device cookie does.
        let presented = device_secret.map(SecretToken::hash_of);
        let known = match (caller.certified_device, presented) {
            (Some(device_id), _) => Some(device_id),
            (None, Some(hash)) => self
                .read(move |tx| Box::pin(async move { tx.device_by_secret_hash(&hash).await }))
                .await?
                .map(|device| device.id),
            (None, None) => None,
        };
        let (device_id, new_secret) = if let Some(device_id) = known {
            (device_id, None)
        } else {
            let secret = SecretToken::generate(self.random.as_ref())
                .map_err(|_| ServiceError::Randomness)?;
            (self.new_uuid()?, Some(secret))
        };
        let secret_hash = new_secret.as_ref().map(SecretToken::stored_hash);
        let browser = browser_summary(user_agent);
        let account_id = account.id;
        let practice_id = practice_of(&account);
        // Only the session that created the account (activation, setup) approves its
        // device by itself: a later sign-in never does, even on an account without any
        // device yet (a password alone must not approve an attacker's browser).
        let creating_session = session.created_at == account.created_at;
        let notice_base = self.new_uuid()?;
        let pending_notice = format!(
            "Un nouvel appareil ({browser}) attend votre approbation pour {}.",
            account.login
        );
        let actor_caller = Caller {
            actor: actor_of(&account),
            ..caller.clone()
        };
        let approved_event = self.audit_event(
            &actor_caller,
            account_chain(&account),
            Action::DeviceApproved,
            Targets::default(),
            Outcome::Success,
        );
        let session_id = session.id;
        let certified = caller.certified_device.is_some();
        let standing = self
            .audited(Vec::new(), move |tx| {
                Box::pin(async move {
                    if let Some(hash) = secret_hash {
                        tx.insert_device(device_id, &hash, &browser, now).await?;
                    }
                    let standing = if let Some(grant) = tx.grant(device_id, account_id).await? {
                        DeviceStanding::parse(&grant.state)
                    } else {
                        {
                            // The first device of an account is the one it was activated
                            // (or set up) on: approved. Any later one waits for a holder.
                            let first =
                                creating_session && !tx.account_has_grants(account_id).await?;
                            let standing = if first {
                                DeviceStanding::Approved
                            } else {
                                DeviceStanding::Pending
                            };
                            tx.insert_grant(&GrantRecord {
                                device_id,
                                account_id,
                                practice_id,
                                name: browser.clone(),
                                state: if first { "approved" } else { "pending" }.into(),
                                created_at: now,
                                decided_at: first.then_some(now),
                                decided_by: first.then_some(account_id),
                                browser: browser.clone(),
                                last_seen_at: now,
                                login: String::new(),
                            })
                            .await?;
                            if first {
                                tx.append_audit(approved_event).await?;
                            } else if let Some(practice) = practice_id {
                                notify_holders(tx, practice, notice_base, &pending_notice, now)
                                    .await?;
                            }
                            standing
                        }
                    };
                    tx.attach_session_device(session_id, device_id, certified, now)
                        .await?;
                    if standing == DeviceStanding::Blocked {
                        // The new session ends with the device's others.
                        tx.revoke_device_sessions(device_id, account_id, now)
                            .await?;
                    }
                    Ok(standing)
                })
            })
            .await?;
        Ok(DeviceBinding {
            new_secret,
            standing,
        })
    }

    /// The standing of the device a session was opened on (none: pending).
    pub(crate) async fn session_device_standing(
        &self,
        session: &SessionRecord,
    ) -> Result<DeviceStanding, ServiceError> {
        let Some(device_id) = session.device_id else {
            return Ok(DeviceStanding::Pending);
        };
        let account_id = session.account_id;
        let grant = self
            .read(move |tx| Box::pin(async move { tx.grant(device_id, account_id).await }))
            .await?;
        Ok(standing_of(
            grant.as_ref().map(|grant| grant.state.as_str()),
        ))
    }

    /// The devices of the signed-in account.
    pub async fn my_devices(&self, token: &str) -> Result<Vec<DeviceSummary>, ServiceError> {
        let (session, account) = self.complete_session(token).await?;
        let account_id = account.id;
        let grants = self
            .read(move |tx| Box::pin(async move { tx.grants_of_account(account_id).await }))
            .await?;
        Ok(summaries(grants, &session))
    }

    /// The devices of every member of the holder's practice.
    pub async fn practice_devices(&self, token: &str) -> Result<Vec<DeviceSummary>, ServiceError> {
        let (session, account) = self.complete_session(token).await?;
        let practice_id = holder_practice(&account).ok_or(ServiceError::Forbidden)?;
        let grants = self
            .read(move |tx| Box::pin(async move { tx.grants_of_practice(practice_id).await }))
            .await?;
        Ok(summaries(grants, &session))
    }

    /// Approves, blocks or deletes a device grant. One's own devices: block and delete;
    /// approve only right after a passkey or recovery-code sign-in. A holder: any device
    /// of the practice's members (approving after a fresh authentication; blocking at
    /// once, whatever the session's age: a lost device must be cut off now).
    pub async fn decide_device(
        &self,
        caller: &Caller,
        token: &str,
        device_id: Uuid,
        account_id: Uuid,
        decision: DeviceDecision,
    ) -> Result<(), ServiceError> {
        let (session, account) = self.complete_session(token).await?;
        let grant = self
            .read(move |tx| Box::pin(async move { tx.grant(device_id, account_id).await }))
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.may_decide(&session, &account, &grant, decision)?;
        let now = self.now();
        let (from, to, action): (&[&str], &str, Action) = match decision {
            DeviceDecision::Approve => (&["pending"], "approved", Action::DeviceApproved),
            DeviceDecision::Block => (&["pending", "approved"], "blocked", Action::DeviceBlocked),
            DeviceDecision::Delete => (&["blocked"], "blocked", Action::MemberChanged),
        };
        let event = self.audit_event(
            &Caller {
                actor: actor_of(&account),
                ..caller.clone()
            },
            account_chain(&account),
            action,
            Targets::default(),
            Outcome::Success,
        );
        let by = account.id;
        let practice_id = grant.practice_id;
        let notice_base = self.new_uuid()?;
        // Approving a client's device issues the certificate it asked for (ADR 0008).
        let certificate = if decision == DeviceDecision::Approve {
            self.certificate_to_issue(device_id, account_id).await?
        } else {
            None
        };
        let mut events = vec![event];
        if certificate.is_some() {
            events.push(self.audit_event(
                &Caller {
                    actor: actor_of(&account),
                    ..caller.clone()
                },
                account_chain(&account),
                Action::DeviceCertificateIssued,
                Targets::default(),
                Outcome::Success,
            ));
        }
        let message = match decision {
            DeviceDecision::Approve => format!("L'appareil « {} » est approuvé.", grant.name),
            DeviceDecision::Block => format!(
                "L'appareil « {} » de {} a été bloqué : ses sessions sont terminées.",
                grant.name, grant.login
            ),
            DeviceDecision::Delete => String::new(),
        };
        let changed = self
            .audited(events, move |tx| {
                Box::pin(async move {
                    let changed = if decision == DeviceDecision::Delete {
                        tx.delete_blocked_grant(device_id, account_id, now).await?
                    } else {
                        tx.decide_grant(device_id, account_id, from, to, by, now)
                            .await?
                    };
                    if !changed {
                        // Nothing done: the job fails alone, with its audit entry.
                        return Err(StoreError::Conflict);
                    }
                    if decision == DeviceDecision::Block {
                        tx.revoke_device_sessions(device_id, account_id, now)
                            .await?;
                        // A blocked device is presumed lost: its certificate goes too,
                        // whoever's grant was blocked.
                        tx.revoke_device_certificate(device_id, now).await?;
                    }
                    if let Some((issued, not_after)) = &certificate
                        && !tx
                            .issue_device_certificate(
                                device_id,
                                &issued.der,
                                &issued.fingerprint,
                                now,
                                *not_after,
                            )
                            .await?
                    {
                        return Err(StoreError::Conflict);
                    }
                    if !message.is_empty() {
                        tx.insert_notice(notice_id(notice_base, 0), account_id, &message, now)
                            .await?;
                        if decision == DeviceDecision::Block
                            && let Some(practice) = practice_id
                        {
                            notify_holders(tx, practice, notice_base, &message, now).await?;
                        }
                    }
                    Ok(())
                })
            })
            .await;
        match changed {
            Err(ServiceError::Conflict) => Err(not_in_state_for(decision)),
            other => other,
        }
    }

    /// Whether the signed-in account may take `decision` on `grant` (see `decide_device`).
    fn may_decide(
        &self,
        session: &SessionRecord,
        account: &AccountRecord,
        grant: &GrantRecord,
        decision: DeviceDecision,
    ) -> Result<(), ServiceError> {
        if !may_manage(account, grant) {
            return Err(ServiceError::NotFound);
        }
        let own = grant.account_id == account.id;
        if decision == DeviceDecision::Approve && grant.state == "blocked" {
            return Err(ServiceError::Invalid {
                field: "state",
                message: "Un appareil bloqué n'est jamais approuvé à nouveau.".into(),
            });
        }
        if decision == DeviceDecision::Approve {
            let self_approval_ok = matches!(
                session.second_factor_kind.as_deref(),
                Some("passkey" | "recovery")
            ) && session.second_factor_at.is_some_and(|at| {
                self.now().unix_millis() - at.unix_millis() <= SELF_APPROVAL_WINDOW_MILLIS
            });
            if own && !self_approval_ok {
                return Err(auth_error(
                    "Pour approuver votre propre appareil, connectez-vous sur cet appareil avec une clé d'accès ou un code de secours (il y a moins de 5 minutes), ou demandez à un autre titulaire.",
                ));
            }
            if !own && !self.recently_authenticated_session(session) {
                return Err(reauthentication_required());
            }
        }
        Ok(())
    }

    /// Renames one of one's devices, or (a holder) one of the practice's.
    pub async fn rename_device(
        &self,
        caller: &Caller,
        token: &str,
        device_id: Uuid,
        account_id: Uuid,
        name: &str,
    ) -> Result<(), ServiceError> {
        let name = crate::label(name, "à l'appareil", "Poste accueil")?;
        let (_, account) = self.complete_session(token).await?;
        let grant = self
            .read(move |tx| Box::pin(async move { tx.grant(device_id, account_id).await }))
            .await?
            .ok_or(ServiceError::NotFound)?;
        if !may_manage(&account, &grant) {
            return Err(ServiceError::NotFound);
        }
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
                if tx.rename_grant(device_id, account_id, &name).await? {
                    Ok(())
                } else {
                    Err(StoreError::MissingReference)
                }
            })
        })
        .await
    }

    /// Marks the signed-in account's notices as read (they stay in the database).
    pub async fn dismiss_notices(&self, token: &str) -> Result<(), ServiceError> {
        let (_, account) = self.complete_session(token).await?;
        let (account_id, now) = (account.id, self.now());
        self.committer
            .run(move |tx| Box::pin(async move { tx.mark_notices_read(account_id, now).await }))
            .await?;
        Ok(())
    }

    /// The unread notices of the signed-in account.
    pub async fn my_notices(&self, token: &str) -> Result<Vec<(Timestamp, String)>, ServiceError> {
        let (_, account) = self.complete_session(token).await?;
        let account_id = account.id;
        let notices = self
            .read(move |tx| Box::pin(async move { tx.notices_of(account_id).await }))
            .await?;
        Ok(notices
            .into_iter()
            .map(|notice| (notice.created_at, notice.message))
            .collect())
    }
}

/// Whether the account may act on the grant: its own device, or (a holder) a device of
/// the practice's members.
fn may_manage(account: &AccountRecord, grant: &GrantRecord) -> bool {
    grant.account_id == account.id
        || holder_practice(account).is_some_and(|practice| grant.practice_id == Some(practice))
}

/// The practice the account is a holder of.
fn holder_practice(account: &AccountRecord) -> Option<PracticeId> {
    match account.holder {
        AccountHolder::Member {
            practice_id,
            role: Role::Holder,
            ..
        } => Some(practice_id),
        _ => None,
    }
}

fn summaries(grants: Vec<GrantRecord>, session: &SessionRecord) -> Vec<DeviceSummary> {
    grants
        .into_iter()
        .map(|grant| DeviceSummary {
            current: session.device_id == Some(grant.device_id)
                && session.account_id == grant.account_id,
            device_id: grant.device_id,
            account_id: grant.account_id,
            login: grant.login,
            name: grant.name,
            browser: grant.browser,
            standing: DeviceStanding::parse(&grant.state),
            created_at: grant.created_at,
            last_seen_at: grant.last_seen_at,
        })
        .collect()
}

/// The `index`-th id derived from a fresh random one (one job, several notices).
pub(crate) fn notice_id(base: Uuid, index: u32) -> Uuid {
    let mut bytes = base.into_bytes();
    for (byte, add) in bytes[12..].iter_mut().zip(index.to_be_bytes()) {
        *byte ^= add;
    }
    Uuid::from_bytes(bytes)
}

/// Leaves `message` for each of the practice's holders (ids from `base`, index 1 on:
/// index 0 is left for a notice to one person in the same job).
pub(crate) async fn notify_holders(
    tx: &mut Tx,
    practice_id: PracticeId,
    base: Uuid,
    message: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let holders = tx.holder_accounts(practice_id).await?;
    for (index, holder) in (1_u32..).zip(holders) {
        tx.insert_notice(notice_id(base, index), holder, message, now)
            .await?;
    }
    Ok(())
}
