//! Practices, their members, and the validation of professional numbers.

use carnet_domain::{
    Address, AdminId, Member, MemberId, MemberName, NewMember, Phone, Practice, PracticeId,
    PracticeName, Profession, ProfessionalId, ProfessionalIdState, ProfessionalIdStatus, Role,
};

use carnet_audit::{Action, ChainId, Outcome, Targets};

use crate::{Actor, Caller, PracticeAction, PracticeScope, ServiceError, Services};

/// A practice as typed by a person, before checking.
#[derive(Clone, Debug, Default)]
pub struct NewPracticeInput {
    pub name: String,
    pub address: String,
    pub profession: String,
}

/// A member as typed by a person, before checking.
#[derive(Clone, Debug, Default)]
pub struct NewMemberInput {
    pub name: String,
    pub role: String,
    pub phone: String,
    /// `"rpps"` or `"adeli"`, with `professional_id_number`; both empty for staff.
    pub professional_id_kind: Option<String>,
    pub professional_id_number: Option<String>,
}

/// A platform administrator's decision on a member's professional number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfessionalIdDecision {
    Validate,
    Reject,
}

/// The longest reason an administrator may give for a decision.
const REASON_MAX_CHARS: usize = 500;

impl Services {
    /// Creates a practice. Operator and platform administrators only.
    pub async fn create_practice(
        &self,
        caller: &Caller,
        input: &NewPracticeInput,
    ) -> Result<Practice, ServiceError> {
        self.require_platform_side(&caller.actor).await?;
        let name =
            PracticeName::parse(&input.name).map_err(|e| ServiceError::invalid("name", &e))?;
        let address =
            Address::parse(&input.address).map_err(|e| ServiceError::invalid("address", &e))?;
        let profession = Profession::parse(input.profession.trim())
            .map_err(|e| ServiceError::invalid("profession", &e))?;
        let (millis, random) = self.new_id_parts()?;
        let practice = Practice {
            id: PracticeId::new_v7(millis, &random),
            name,
            address,
            profession,
            created_at: self.now(),
        };
        let events = [ChainId::Practice(practice.id), ChainId::Instance].map(|chain| {
            self.audit_event(
                caller,
                chain,
                Action::PracticeCreated,
                Targets::default(),
                Outcome::Success,
            )
        });
        let stored = practice.clone();
        self.audited(events.to_vec(), move |tx| {
            Box::pin(async move { tx.insert_practice(&stored).await })
        })
        .await?;
        tracing::info!(practice.id = %practice.id, "practice created");
        Ok(practice)
    }

    /// Every practice of the instance. Operator and platform administrators only.
    pub async fn list_practices(&self, caller: &Caller) -> Result<Vec<Practice>, ServiceError> {
        self.require_platform_side(&caller.actor).await?;
        Ok(self.store.list_practices().await?)
    }

    /// Adds a member to the practice of `scope`. The platform side adds holders only (the
    /// practice's first holders); a holder adds anyone.
    pub async fn add_member(
        &self,
        scope: &PracticeScope,
        input: &NewMemberInput,
    ) -> Result<Member, ServiceError> {
        if scope.action() != PracticeAction::AddMember {
            return Err(ServiceError::Forbidden);
        }
        let name = MemberName::parse(&input.name).map_err(|e| ServiceError::invalid("name", &e))?;
        let role = Role::parse(input.role.trim()).map_err(|e| ServiceError::invalid("role", &e))?;
        let platform_side = matches!(scope.actor(), Actor::Operator | Actor::PlatformAdmin(_));
        if platform_side && role != Role::Holder {
            return Err(ServiceError::Invalid {
                field: "role",
                message: "L'administration de la plateforme crée les titulaires ; \
                          les titulaires créent ensuite les autres membres."
                    .into(),
            });
        }
        let phone = Phone::parse(&input.phone).map_err(|e| ServiceError::invalid("phone", &e))?;
        let kind = input
            .professional_id_kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let number = input
            .professional_id_number
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let professional_id = match (kind, number) {
            (None, None) => None,
            (Some(kind), Some(number)) => Some(
                ProfessionalId::parse(kind, number)
                    .map_err(|e| ServiceError::invalid("professional_id", &e))?,
            ),
            (None, Some(number)) => {
                // A number alone: its length tells RPPS (11) from ADELI (9).
                let kind = if number.chars().filter(char::is_ascii_digit).count() == 9 {
                    "adeli"
                } else {
                    "rpps"
                };
                Some(
                    ProfessionalId::parse(kind, number)
                        .map_err(|e| ServiceError::invalid("professional_id", &e))?,
                )
            }
            (Some(_), None) => {
                return Err(ServiceError::Invalid {
                    field: "professional_id",
                    message: "Indiquez le numéro RPPS ou ADELI.".into(),
                });
            }
        };
        let new_member = NewMember::new(name, role, phone, professional_id)
            .map_err(|e| ServiceError::invalid("professional_id", &e))?;
        let (millis, random) = self.new_id_parts()?;
        let member = Member {
            id: MemberId::new_v7(millis, &random),
            practice_id: scope.practice_id(),
            name: new_member.name,
            role: new_member.role,
            phone: new_member.phone,
            professional_id: new_member.professional_id,
            professional_id_state: ProfessionalIdState::Pending,
            created_at: self.now(),
        };
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::MemberAdded,
            member_target(member.id),
            Outcome::Success,
        );
        let stored = member.clone();
        self.audited(vec![event], move |tx| {
            Box::pin(async move { tx.insert_member(&stored).await })
        })
        .await?;
        tracing::info!(practice.id = %member.practice_id, member.id = %member.id, "member added");
        Ok(member)
    }

    /// The members of the practice of `scope`.
    pub async fn list_members(&self, scope: &PracticeScope) -> Result<Vec<Member>, ServiceError> {
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::MembersListed,
            Targets::default(),
            Outcome::Success,
        );
        let practice_id = scope.practice_id();
        self.audited(vec![event], move |tx| {
            Box::pin(async move { tx.list_members(practice_id).await })
        })
        .await
    }

    /// Records a platform administrator's decision on a member's professional number,
    /// with the reason; earlier decisions stay in the history.
    pub async fn decide_professional_id(
        &self,
        scope: &PracticeScope,
        member_id: MemberId,
        decision: ProfessionalIdDecision,
        reason: &str,
    ) -> Result<Member, ServiceError> {
        let (PracticeAction::DecideProfessionalId, Actor::PlatformAdmin(admin)) =
            (scope.action(), scope.actor())
        else {
            return Err(ServiceError::Forbidden);
        };
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > REASON_MAX_CHARS {
            return Err(ServiceError::Invalid {
                field: "reason",
                message: format!(
                    "Indiquez le motif de la décision (au plus {REASON_MAX_CHARS} caractères)."
                ),
            });
        }
        let status = match decision {
            ProfessionalIdDecision::Validate => ProfessionalIdStatus::Validated,
            ProfessionalIdDecision::Reject => ProfessionalIdStatus::Rejected,
        };
        let state = ProfessionalIdState::Decided {
            status,
            by: *admin,
            at: self.now(),
            reason: reason.to_owned(),
        };
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::ProfessionalIdDecided,
            member_target(member_id),
            Outcome::Success,
        );
        let practice_id = scope.practice_id();
        let decided = state.clone();
        let found = self
            .committer
            .run(move |tx| {
                Box::pin(async move {
                    let Some(member) = tx.member(practice_id, member_id).await? else {
                        return Ok(Decided::NoSuchMember);
                    };
                    if member.professional_id.is_none() {
                        return Ok(Decided::NoNumber);
                    }
                    tx.append_professional_id_decision(practice_id, member_id, &decided)
                        .await?;
                    tx.append_audit(event).await?;
                    Ok(Decided::Done(member))
                })
            })
            .await?;
        let member = match found {
            Decided::Done(member) => member,
            Decided::NoSuchMember => return Err(ServiceError::NotFound),
            Decided::NoNumber => {
                return Err(ServiceError::Invalid {
                    field: "member",
                    message: "Ce membre n'a pas déclaré de numéro RPPS ou ADELI.".into(),
                });
            }
        };
        tracing::info!(
            practice.id = %practice_id,
            member.id = %member_id,
            decision = status.as_str(),
            "professional number decided"
        );
        Ok(Member {
            professional_id_state: state,
            ..member
        })
    }

    /// The history of decisions on a member's professional number, oldest first.
    pub async fn professional_id_history(
        &self,
        scope: &PracticeScope,
        member_id: MemberId,
    ) -> Result<Vec<ProfessionalIdState>, ServiceError> {
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::MembersListed,
            member_target(member_id),
            Outcome::Success,
        );
        let practice_id = scope.practice_id();
        self.audited(vec![event], move |tx| {
            Box::pin(async move { tx.professional_id_history(practice_id, member_id).await })
        })
        .await
    }

    /// Registers a platform administrator. Only the operator at the console may; accounts,
    /// passwords and passkeys for administrators arrive with the accounts capability.
    pub async fn create_platform_admin(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<AdminId, ServiceError> {
        if caller.actor != Actor::Operator {
            return Err(ServiceError::Forbidden);
        }
        let name = MemberName::parse(name).map_err(|e| ServiceError::invalid("name", &e))?;
        let (millis, random) = self.new_id_parts()?;
        let id = AdminId::new_v7(millis, &random);
        let (name, now) = (name.as_str().to_owned(), self.now());
        let event = self.audit_event(
            caller,
            ChainId::Instance,
            Action::AdminCreated,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move { tx.insert_admin(id, &name, now).await })
        })
        .await?;
        Ok(id)
    }

    async fn require_platform_side(&self, actor: &Actor) -> Result<(), ServiceError> {
        match actor {
            Actor::Operator => Ok(()),
            Actor::PlatformAdmin(admin) if self.store.admin_exists(*admin).await? => Ok(()),
            _ => Err(ServiceError::Forbidden),
        }
    }
}

/// What the decision's unit of work found.
enum Decided {
    Done(Member),
    NoSuchMember,
    NoNumber,
}

/// The audit target of an event about one member.
pub(crate) fn member_target(member_id: MemberId) -> Targets {
    Targets {
        member: Some(*member_id.as_uuid()),
        ..Targets::default()
    }
}
