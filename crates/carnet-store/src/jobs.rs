//! Background jobs: leases (exactly one node runs a job) and the backup runs log.

use carnet_domain::Timestamp;

use crate::tx::on_tx;
use crate::{Store, StoreError, Tx, on_backend};

/// One backup, check or drill outcome for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRunRecord {
    pub target: String,
    /// `backup`, `check`, `data_check` or `drill`.
    pub kind: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub ok: bool,
    pub snapshot: Option<String>,
    pub bytes_added: Option<i64>,
    pub message: String,
}

type RunRow = (
    String,
    String,
    i64,
    i64,
    bool,
    Option<String>,
    Option<i64>,
    String,
);

impl Store {
    /// Takes (or renews) the lease of job `name` for `holder` until `until`, if nobody
    /// else holds an unexpired one. Returns whether `holder` now holds it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let taken = on_backend!(self, |pool| {
            sqlx::query(
                "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4",
            )
            .bind(name)
            .bind(holder)
            .bind(until.unix_millis())
            .bind(now.unix_millis())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(taken == 1)
    }

    /// Gives the lease back (only if `holder` holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        on_backend!(self, |pool| {
            sqlx::query("DELETE FROM job_leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records one run (in a transaction of its own; see [`Tx::record_backup_run`]).
    pub async fn record_backup_run(&self, run: &BackupRunRecord) -> Result<(), StoreError> {
        let mut tx = self.transaction().await?;
        tx.record_backup_run(run).await?;
        tx.commit().await
    }

    /// For each target and kind: the latest run, and the latest successful one (when it
    /// is not the latest). Ordered by target, kind, then time.
    pub async fn latest_backup_runs(&self) -> Result<Vec<BackupRunRecord>, StoreError> {
        let runs = on_backend!(self, |pool| {
            sqlx::query_as::<_, RunRow>(
                "SELECT target, kind, started_at, finished_at, ok, snapshot, bytes_added, \
                 message FROM backup_runs WHERE seq IN ( \
                     SELECT MAX(seq) FROM backup_runs GROUP BY target, kind \
                     UNION SELECT MAX(seq) FROM backup_runs WHERE ok GROUP BY target, kind) \
                 ORDER BY target, kind, seq",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(runs
            .into_iter()
            .map(
                |(target, kind, started_at, finished_at, ok, snapshot, bytes_added, message)| {
                    BackupRunRecord {
                        target,
                        kind,
                        started_at,
                        finished_at,
                        ok,
                        snapshot,
                        bytes_added,
                        message,
                    }
                },
            )
            .collect())
    }
}

impl Tx {
    /// Records one run in this transaction (with its audit event, when it has one).
    pub async fn record_backup_run(&mut self, run: &BackupRunRecord) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO backup_runs (target, kind, started_at, finished_at, ok, snapshot, \
                 bytes_added, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&run.target)
            .bind(&run.kind)
            .bind(run.started_at)
            .bind(run.finished_at)
            .bind(run.ok)
            .bind(&run.snapshot)
            .bind(run.bytes_added)
            .bind(&run.message)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }
}
