//! Who is acting, from where, and the capability that scopes an action to one practice.

use std::net::IpAddr;

use carnet_audit::{Action, ActorKind, AuditActor, ChainId, Event, Outcome, Targets};
use carnet_domain::{AdminId, MemberId, PracticeId, Role};

use crate::{ServiceError, Services};

/// Who is asking. Built by the edge (CLI or HTTP authentication), never from input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The operator at the machine's console: whoever can read the data directory and
    /// its keys already holds the instance. Manages practices; never reads care records.
    Operator,
    /// A platform administrator: creates practices, validates professional numbers.
    /// Never reads care records.
    PlatformAdmin(AdminId),
    /// A member of one practice, acting in it.
    Member {
        practice_id: PracticeId,
        member_id: MemberId,
        role: Role,
    },
    /// Nobody signed in (sign-in and activation attempts): may do nothing else.
    Anonymous,
}

/// An actor and the request it came with: what the audit trail records about "who".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub actor: Actor,
    /// Our request id (never one chosen by the client).
    pub request_id: Option<String>,
    /// The client's address as seen by the server (or declared by a trusted proxy).
    pub client_address: Option<IpAddr>,
    /// The registered device whose certificate the connection presented (mutual TLS),
    /// checked against the device authority and the device's standing at the handshake.
    pub certified_device: Option<uuid::Uuid>,
}

impl Caller {
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            request_id: None,
            client_address: None,
            certified_device: None,
        }
    }

    /// The operator at the console.
    pub fn operator() -> Self {
        Self::new(Actor::Operator)
    }

    /// How the audit trail names this caller.
    pub fn audit_actor(&self) -> AuditActor {
        match &self.actor {
            Actor::Operator => AuditActor::of_kind(ActorKind::Operator),
            Actor::PlatformAdmin(admin) => AuditActor {
                account: Some(*admin.as_uuid()),
                ..AuditActor::of_kind(ActorKind::PlatformAdmin)
            },
            Actor::Member {
                member_id, role, ..
            } => AuditActor {
                account: Some(*member_id.as_uuid()),
                role: Some(role.as_str()),
                ..AuditActor::of_kind(ActorKind::Member)
            },
            Actor::Anonymous => AuditActor::of_kind(ActorKind::Anonymous),
        }
    }
}

/// What an actor wants to do in a practice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PracticeAction {
    /// See the practice and its member list.
    ViewMembers,
    /// Add members (holders add anyone; the platform side adds the first holders).
    AddMember,
    /// Decide on a member's professional number (platform administrators only).
    DecideProfessionalId,
    /// Read and export the practice's audit trail (holders only).
    ReadAudit,
}

/// Proof that a caller may perform an action in one practice. Only
/// [`Services::authorize`] creates it; practice-scoped use cases take it, and read the
/// practice id from it, so no query can run against a practice that was not authorized.
#[derive(Debug)]
pub struct PracticeScope {
    practice_id: PracticeId,
    action: PracticeAction,
    caller: Caller,
}

impl PracticeScope {
    pub fn practice_id(&self) -> PracticeId {
        self.practice_id
    }

    pub fn action(&self) -> PracticeAction {
        self.action
    }

    pub fn actor(&self) -> &Actor {
        &self.caller.actor
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn chain(&self) -> ChainId {
        ChainId::Practice(self.practice_id)
    }
}

impl Services {
    /// The one authorization function for practice-scoped actions. A refusal is itself
    /// audited (on the practice's chain when the practice exists); if that cannot be
    /// written, the answer is "unavailable", never a silent refusal.
    pub async fn authorize(
        &self,
        caller: &Caller,
        practice_id: PracticeId,
        action: PracticeAction,
    ) -> Result<PracticeScope, ServiceError> {
        let allowed = match (&caller.actor, action) {
            (Actor::Operator, PracticeAction::ViewMembers | PracticeAction::AddMember) => true,
            (Actor::Operator, PracticeAction::DecideProfessionalId | PracticeAction::ReadAudit)
            | (Actor::PlatformAdmin(_), PracticeAction::ReadAudit)
            | (Actor::Anonymous, _) => false,
            (Actor::PlatformAdmin(admin), _) => self.store.admin_exists(*admin).await?,
            (
                Actor::Member {
                    practice_id: own,
                    role,
                    ..
                },
                action,
            ) => {
                *own == practice_id
                    && match action {
                        PracticeAction::ViewMembers => true,
                        PracticeAction::AddMember | PracticeAction::ReadAudit => {
                            *role == Role::Holder
                        }
                        PracticeAction::DecideProfessionalId => false,
                    }
            }
        };
        let exists = self.store.practice(practice_id).await?.is_some();
        if !allowed {
            let chain = if exists {
                ChainId::Practice(practice_id)
            } else {
                ChainId::Instance
            };
            let event = self.audit_event(
                caller,
                chain,
                denied_action(action),
                Targets::default(),
                Outcome::Denied,
            );
            self.audit_alone(event).await?;
            return Err(ServiceError::Forbidden);
        }
        if !exists {
            return Err(ServiceError::NotFound);
        }
        Ok(PracticeScope {
            practice_id,
            action,
            caller: caller.clone(),
        })
    }

    /// An audit event by `caller`, now.
    pub(crate) fn audit_event(
        &self,
        caller: &Caller,
        chain: ChainId,
        action: Action,
        targets: Targets,
        outcome: Outcome,
    ) -> Event {
        Event {
            chain,
            at: self.now(),
            actor: caller.audit_actor(),
            action,
            targets,
            outcome,
            request_id: caller.request_id.clone(),
            client_address: caller.client_address,
        }
    }
}

impl Services {
    /// An event of the instance's chain by the operator at the console; anyone else is
    /// refused (the operator-only actions: recovery kit, backups, restores).
    pub(crate) fn operator_event(
        &self,
        caller: &Caller,
        action: Action,
        targets: Targets,
        outcome: Outcome,
    ) -> Result<Event, ServiceError> {
        if caller.actor != Actor::Operator {
            return Err(ServiceError::Forbidden);
        }
        Ok(self.audit_event(caller, ChainId::Instance, action, targets, outcome))
    }

    /// Appends one audit entry that accompanies no data change (refusals, failures).
    pub(crate) async fn audit_alone(&self, event: Event) -> Result<(), ServiceError> {
        self.audited(vec![event], |_| Box::pin(async { Ok(()) }))
            .await
    }
}

/// The action a refused attempt is recorded as.
fn denied_action(action: PracticeAction) -> Action {
    match action {
        PracticeAction::ViewMembers => Action::MembersListed,
        PracticeAction::AddMember => Action::MemberAdded,
        PracticeAction::DecideProfessionalId => Action::ProfessionalIdDecided,
        PracticeAction::ReadAudit => Action::AuditRead,
    }
}
