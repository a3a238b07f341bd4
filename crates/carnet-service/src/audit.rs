//! Reading the audit trail (holders for their practice, the platform side for the
//! instance), exporting a patient's access history, checkpointing and verifying chains.
//! Reading the trail is itself audited, in the same transaction.

use std::collections::BTreeSet;

use carnet_audit::{
    Action, ChainId, Checkpoint, CheckpointSigner, CheckpointVerifier, Damage, Entry, Outcome,
    Targets, VerifiedChain, verify_chain,
};
use carnet_domain::{MemberId, Timestamp};
use carnet_store::{AuditQuery, StoreError};
use uuid::Uuid;

use crate::{Actor, Caller, PracticeAction, PracticeScope, ServiceError, Services};

/// Filters on a chain's events, as a person sets them.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub member: Option<MemberId>,
    pub action: Option<Action>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub patient: Option<Uuid>,
    pub before_seq: Option<u64>,
    pub limit: Option<u32>,
}

/// The verification result of one chain.
#[derive(Clone, Debug)]
pub struct ChainReport {
    pub chain: ChainId,
    pub result: Result<VerifiedChain, Damage>,
}

/// The most events one page returns.
const PAGE_MAX: u32 = 500;
/// The most events one export returns.
const EXPORT_MAX: u32 = 100_000;

impl AuditFilter {
    fn to_query(&self, limit_max: u32) -> AuditQuery {
        AuditQuery {
            actor_account: self.member.map(|member| *member.as_uuid()),
            action: self.action,
            from: self.from,
            until: self.until,
            patient: self.patient,
            before_seq: self.before_seq,
            limit: self.limit.unwrap_or(100).clamp(1, limit_max),
        }
    }
}

impl Services {
    /// The practice's events, newest first (holders only).
    pub async fn practice_audit(
        &self,
        scope: &PracticeScope,
        filter: &AuditFilter,
    ) -> Result<Vec<Entry>, ServiceError> {
        if scope.action() != PracticeAction::ReadAudit {
            return Err(ServiceError::Forbidden);
        }
        let targets = Targets {
            patient: filter.patient,
            ..Targets::default()
        };
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::AuditRead,
            targets,
            Outcome::Success,
        );
        self.read_chain(scope.chain(), filter.to_query(PAGE_MAX), event)
            .await
    }

    /// Everything the trail says about one patient ("who opened my record"), oldest
    /// first, for an export to the patient. Holders only; the export is audited.
    pub async fn patient_access_history(
        &self,
        scope: &PracticeScope,
        patient: Uuid,
    ) -> Result<Vec<Entry>, ServiceError> {
        if scope.action() != PracticeAction::ReadAudit {
            return Err(ServiceError::Forbidden);
        }
        let targets = Targets {
            patient: Some(patient),
            ..Targets::default()
        };
        let event = self.audit_event(
            scope.caller(),
            scope.chain(),
            Action::AuditExported,
            targets,
            Outcome::Success,
        );
        let filter = AuditFilter {
            patient: Some(patient),
            limit: Some(EXPORT_MAX),
            ..AuditFilter::default()
        };
        let mut entries = self
            .read_chain(scope.chain(), filter.to_query(EXPORT_MAX), event)
            .await?;
        entries.reverse();
        Ok(entries)
    }

    /// The instance's events (operator and platform administrators; never a practice's).
    pub async fn instance_audit(
        &self,
        caller: &Caller,
        filter: &AuditFilter,
    ) -> Result<Vec<Entry>, ServiceError> {
        let allowed = match &caller.actor {
            Actor::Operator => true,
            Actor::PlatformAdmin(admin) => self.store.admin_exists(*admin).await?,
            Actor::Member { .. } | Actor::Anonymous => false,
        };
        if !allowed {
            return Err(ServiceError::Forbidden);
        }
        let event = self.audit_event(
            caller,
            ChainId::Instance,
            Action::AuditRead,
            Targets::default(),
            Outcome::Success,
        );
        self.read_chain(ChainId::Instance, filter.to_query(PAGE_MAX), event)
            .await
    }

    async fn read_chain(
        &self,
        chain: ChainId,
        query: AuditQuery,
        event: carnet_audit::Event,
    ) -> Result<Vec<Entry>, ServiceError> {
        self.audited(vec![event], move |tx| {
            Box::pin(async move { tx.audit_events(chain, &query).await })
        })
        .await
    }

    /// Signs and stores a checkpoint for every chain whose head moved since its last
    /// checkpoint, when `min_new_entries` were appended since, or the last one is older
    /// than `max_age_millis`, or `force`. Returns the new checkpoints (to be carried off
    /// the database: file, backups).
    pub async fn checkpoint_chains(
        &self,
        signer: &CheckpointSigner,
        min_new_entries: u64,
        max_age_millis: i64,
        force: bool,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let now = self.now();
        let mut created = Vec::new();
        for chain in self.store.audit_chains().await? {
            let Some((seq, hash)) = self.store.audit_head(chain).await? else {
                continue;
            };
            let last = self.store.latest_audit_checkpoint(chain).await?;
            let due = match &last {
                None => true,
                Some(last) if last.seq >= seq => false,
                Some(last) => {
                    force
                        || seq - last.seq >= min_new_entries
                        || now.unix_millis() - last.at.unix_millis() >= max_age_millis
                }
            };
            if due || (force && last.is_none()) {
                let checkpoint = signer.sign(chain, seq, hash, now);
                self.store.insert_audit_checkpoint(&checkpoint).await?;
                created.push(checkpoint);
            }
        }
        Ok(created)
    }

    /// Verifies every chain (or one) against the checkpoints stored in the database and
    /// `external` ones (the checkpoint file), with the audit public key.
    pub async fn verify_audit(
        &self,
        verifier: &CheckpointVerifier,
        external: &[Checkpoint],
        only: Option<ChainId>,
    ) -> Result<Vec<ChainReport>, StoreError> {
        let mut chains: BTreeSet<ChainId> = self.store.audit_chains().await?.into_iter().collect();
        chains.extend(external.iter().map(|checkpoint| checkpoint.chain));
        let mut reports = Vec::new();
        for chain in chains
            .into_iter()
            .filter(|chain| only.is_none_or(|wanted| wanted == *chain))
        {
            let mut checkpoints = self.store.audit_checkpoints(chain).await?;
            for checkpoint in external
                .iter()
                .filter(|checkpoint| checkpoint.chain == chain)
            {
                if !checkpoints.contains(checkpoint) {
                    checkpoints.push(checkpoint.clone());
                }
            }
            let entries = self.store.audit_chain_entries(chain).await?;
            reports.push(ChainReport {
                chain,
                result: verify_chain(chain, entries, &checkpoints, verifier),
            });
        }
        Ok(reports)
    }
}
