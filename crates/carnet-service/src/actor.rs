//! Who is acting, and the capability that scopes an action to one practice.

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
}

/// Proof that an actor may perform an action in one practice. Only
/// [`Services::authorize`] creates it; practice-scoped use cases take it, and read the
/// practice id from it, so no query can run against a practice that was not authorized.
#[derive(Debug)]
pub struct PracticeScope {
    practice_id: PracticeId,
    action: PracticeAction,
    actor: Actor,
}

impl PracticeScope {
    pub fn practice_id(&self) -> PracticeId {
        self.practice_id
    }

    pub fn action(&self) -> PracticeAction {
        self.action
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

impl Services {
    /// The one authorization function for practice-scoped actions.
    pub async fn authorize(
        &self,
        actor: &Actor,
        practice_id: PracticeId,
        action: PracticeAction,
    ) -> Result<PracticeScope, ServiceError> {
        let allowed = match (actor, action) {
            (Actor::Operator, PracticeAction::ViewMembers | PracticeAction::AddMember) => true,
            (Actor::Operator, PracticeAction::DecideProfessionalId) => false,
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
                        PracticeAction::AddMember => *role == carnet_domain::Role::Holder,
                        PracticeAction::DecideProfessionalId => false,
                    }
            }
        };
        if !allowed {
            return Err(ServiceError::Forbidden);
        }
        if self.store.practice(practice_id).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        Ok(PracticeScope {
            practice_id,
            action,
            actor: actor.clone(),
        })
    }
}
