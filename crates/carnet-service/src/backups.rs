//! What the backup monitoring page shows: per target, the last backup, the last success,
//! the last checks and restore drill, the next run, and whether to alert.
//!
//! The runs themselves are recorded by the binary's backup job (`carnet-backup` does
//! the work); this module only reads them. No patient data is involved: holders and
//! platform administrators may look; only administrators see target addresses and the
//! text of failures.

use carnet_audit::{Action, Outcome, Targets};
use carnet_domain::Timestamp;
use carnet_store::BackupRunRecord;

use crate::{Actor, Caller, ServiceError, Services};

/// The configured backups, as the page needs them.
#[derive(Clone, Debug, Default)]
pub struct BackupPlan {
    /// (name, address without secrets) of each target, in configuration order.
    pub targets: Vec<(String, String)>,
    pub interval_minutes: u32,
}

/// One run, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRun {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub ok: bool,
    pub snapshot: Option<String>,
    pub bytes_added: Option<i64>,
    pub message: String,
}

impl From<&BackupRunRecord> for BackupRun {
    fn from(record: &BackupRunRecord) -> Self {
        Self {
            started_at: Timestamp::from_unix_millis(record.started_at),
            finished_at: Timestamp::from_unix_millis(record.finished_at),
            ok: record.ok,
            snapshot: record.snapshot.clone(),
            bytes_added: record.bytes_added,
            message: record.message.clone(),
        }
    }
}

/// The state of one target.
#[derive(Clone, Debug)]
pub struct BackupTargetStatus {
    pub name: String,
    /// Only for platform administrators and the operator.
    pub address: Option<String>,
    pub last_backup: Option<BackupRun>,
    pub last_success: Option<BackupRun>,
    pub last_check: Option<BackupRun>,
    pub last_data_check: Option<BackupRun>,
    pub last_drill: Option<BackupRun>,
    pub next_run: Option<Timestamp>,
    /// Why this target needs attention (French), if it does.
    pub alerts: Vec<String>,
}

impl Services {
    /// Declares the configured backups (the binary, from its configuration).
    #[must_use]
    pub fn with_backup_plan(mut self, plan: BackupPlan) -> Self {
        self.backup_plan = std::sync::Arc::new(plan);
        self
    }

    /// Records one backup operation of the binary's job (or of `carnet backup run`): its
    /// row for the monitoring page and, for a backup and a restore drill, an event in the
    /// instance's audit trail, in one transaction (a backup exports the whole instance,
    /// sealed; a drill opens sealed records in a scratch copy). Structure and data checks
    /// read only the repository's ciphertext and leave no event. The operator only.
    pub async fn record_backup_run(
        &self,
        caller: &Caller,
        record: &BackupRunRecord,
    ) -> Result<(), ServiceError> {
        let outcome = if record.ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let event = self.operator_event(caller, Action::Backup, Targets::default(), outcome)?;
        let events = if matches!(record.kind.as_str(), "backup" | "drill") {
            vec![event]
        } else {
            Vec::new()
        };
        let record = record.clone();
        self.audited(events, move |tx| {
            Box::pin(async move { tx.record_backup_run(&record).await })
        })
        .await
    }

    /// Records in the instance's audit trail that one version of `document` was put back
    /// into the document store from a backup (`carnet restore document`). The operator
    /// only.
    pub async fn record_document_restored(
        &self,
        caller: &Caller,
        document: uuid::Uuid,
    ) -> Result<(), ServiceError> {
        let targets = Targets {
            document: Some(document),
            ..Targets::default()
        };
        let event = self.operator_event(caller, Action::Restored, targets, Outcome::Success)?;
        self.audit_alone(event).await
    }

    /// The backup state of every configured target, for holders and administrators.
    pub async fn backup_status(
        &self,
        caller: &Caller,
    ) -> Result<Vec<BackupTargetStatus>, ServiceError> {
        let plan = &self.backup_plan;
        let sees_addresses = match &caller.actor {
            Actor::Operator | Actor::PlatformAdmin(_) => true,
            Actor::Member { role, .. } if *role == carnet_domain::Role::Holder => false,
            _ => return Err(ServiceError::Forbidden),
        };
        let mut runs = self.store.latest_backup_runs().await?;
        if !sees_addresses {
            // A failure's text can name paths, buckets or hosts of the operator's
            // infrastructure: holders see that it failed, administrators see why.
            for run in runs.iter_mut().filter(|run| !run.ok) {
                run.message = "détails réservés à l'administrateur de la plateforme".into();
            }
        }
        let now = self.now();
        Ok(plan
            .targets
            .iter()
            .map(|(name, address)| {
                status(
                    name,
                    sees_addresses.then(|| address.clone()),
                    &runs,
                    plan,
                    now,
                )
            })
            .collect())
    }
}

fn status(
    name: &str,
    address: Option<String>,
    runs: &[BackupRunRecord],
    plan: &BackupPlan,
    now: Timestamp,
) -> BackupTargetStatus {
    let of_kind = |kind: &'static str| {
        runs.iter()
            .filter(move |r| r.target == name && r.kind == kind)
    };
    let latest = |kind: &'static str| of_kind(kind).next_back().map(BackupRun::from);
    let last_success = of_kind("backup").rfind(|r| r.ok).map(BackupRun::from);
    let interval_ms = i64::from(plan.interval_minutes) * 60_000;
    let last_backup = latest("backup");
    let next_run = Some(match &last_backup {
        Some(run) => Timestamp::from_unix_millis(run.started_at.unix_millis() + interval_ms),
        None => now,
    });
    let mut alerts = Vec::new();
    let stale = last_success
        .as_ref()
        .is_none_or(|run| now.unix_millis() - run.finished_at.unix_millis() > 2 * interval_ms);
    if stale {
        alerts.push(match &last_success {
            Some(_) => "la dernière sauvegarde réussie date de plus de deux intervalles".into(),
            None => "aucune sauvegarde réussie".into(),
        });
    }
    for (kind, what) in [
        ("check", "la vérification de structure"),
        ("data_check", "la relecture des données"),
        ("drill", "l'exercice de restauration"),
    ] {
        if latest(kind).is_some_and(|run| !run.ok) {
            alerts.push(format!("{what} a échoué"));
        }
    }
    BackupTargetStatus {
        name: name.to_owned(),
        address,
        last_check: latest("check"),
        last_data_check: latest("data_check"),
        last_drill: latest("drill"),
        last_backup,
        last_success,
        next_run,
        alerts,
    }
}

#[cfg(test)]
mod tests {
    use super::{BackupPlan, status};
    use carnet_domain::Timestamp;
    use carnet_store::BackupRunRecord;

    fn run(kind: &str, at_minutes: i64, ok: bool) -> BackupRunRecord {
        BackupRunRecord {
            target: "disque".into(),
            kind: kind.into(),
            started_at: at_minutes * 60_000,
            finished_at: at_minutes * 60_000 + 1_000,
            ok,
            snapshot: None,
            bytes_added: None,
            message: String::new(),
        }
    }

    fn plan() -> BackupPlan {
        BackupPlan {
            targets: vec![("disque".into(), "/mnt".into())],
            interval_minutes: 60,
        }
    }

    #[test]
    fn a_stale_success_or_a_failed_check_raises_an_alert() {
        let runs = vec![run("backup", 0, true), run("check", 0, true)];
        let fresh = status(
            "disque",
            None,
            &runs,
            &plan(),
            Timestamp::from_unix_millis(119 * 60_000),
        );
        assert!(fresh.alerts.is_empty(), "{:?}", fresh.alerts);
        assert_eq!(
            fresh.next_run,
            Some(Timestamp::from_unix_millis(60 * 60_000))
        );
        let stale = status(
            "disque",
            None,
            &runs,
            &plan(),
            Timestamp::from_unix_millis(121 * 60_000),
        );
        assert_eq!(stale.alerts.len(), 1, "{:?}", stale.alerts);

        let runs = vec![
            run("backup", 0, true),
            run("check", 0, true),
            run("drill", 1, false),
        ];
        let failed = status(
            "disque",
            None,
            &runs,
            &plan(),
            Timestamp::from_unix_millis(60_000),
        );
        assert_eq!(
            failed.alerts,
            vec!["l'exercice de restauration a échoué".to_owned()]
        );

        let none = status("disque", None, &[], &plan(), Timestamp::from_unix_millis(0));
        assert_eq!(none.alerts, vec!["aucune sauvegarde réussie".to_owned()]);
    }
}
