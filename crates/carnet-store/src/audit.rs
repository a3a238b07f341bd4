//! Audit trail storage: appending an entry inside the caller's transaction, reading a
//! chain back for verification, reading filtered events for people, and checkpoints.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use carnet_audit::{
    Action, ActorKind, AuditActor, ChainId, Checkpoint, Entry, Event, Hash, Outcome, Targets,
    seal_next,
};
use carnet_domain::{Role, Timestamp};
use uuid::Uuid;

use crate::tx::on_tx;
use crate::{BackendKind, Store, StoreError, Tx, on_backend};

/// Filters for reading a chain's events (all optional).
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Events by this account (member or administrator).
    pub actor_account: Option<Uuid>,
    pub action: Option<Action>,
    /// From this time (inclusive).
    pub from: Option<Timestamp>,
    /// Until this time (exclusive).
    pub until: Option<Timestamp>,
    /// Events about this patient ("who opened my record").
    pub patient: Option<Uuid>,
    /// Only entries with a sequence number below this one (paging backwards).
    pub before_seq: Option<u64>,
    /// At most this many entries, newest first.
    pub limit: u32,
}

const ENTRY_COLUMNS: &str = "chain_id, seq, prev_hash, hash, at, actor_kind, actor_account, \
     actor_role, actor_device, actor_session, action, target_patient, target_record, \
     target_document, target_member, outcome, request_id, client_address";

/// Decodes an audit entry row; `Err(seq)` when a stored value is not readable.
macro_rules! audit_entry {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        let seq: i64 = row.try_get("seq").unwrap_or(-1);
        let decoded: Result<Option<Entry>, sqlx::Error> = (|| {
            Ok($crate::audit::entry_from_columns(
                $crate::audit::EntryColumns {
                    chain_id: row.try_get("chain_id")?,
                    seq,
                    prev_hash: row.try_get("prev_hash")?,
                    hash: row.try_get("hash")?,
                    at: row.try_get("at")?,
                    actor_kind: row.try_get("actor_kind")?,
                    actor_account: row.try_get("actor_account")?,
                    actor_role: row.try_get("actor_role")?,
                    actor_device: row.try_get("actor_device")?,
                    actor_session: row.try_get("actor_session")?,
                    action: row.try_get("action")?,
                    target_patient: row.try_get("target_patient")?,
                    target_record: row.try_get("target_record")?,
                    target_document: row.try_get("target_document")?,
                    target_member: row.try_get("target_member")?,
                    outcome: row.try_get("outcome")?,
                    request_id: row.try_get("request_id")?,
                    client_address: row.try_get("client_address")?,
                },
            ))
        })();
        match decoded {
            Ok(Some(entry)) => Ok(entry),
            _ => Err(u64::try_from(seq).unwrap_or(0)),
        }
    }};
}

/// The audit entries of a transaction, sealed as they are appended and written at commit.
#[derive(Debug, Default)]
pub(crate) struct AuditBuffer {
    /// Each touched chain's head as this transaction sees it.
    heads: HashMap<ChainId, (u64, Hash)>,
    /// Chains whose head row was read (and, on PostgreSQL, locked) in this transaction.
    loaded: HashSet<ChainId>,
    pending: Vec<Entry>,
}

/// Where a job started, to undo its appends if it fails.
#[derive(Debug)]
pub(crate) struct AuditMark {
    pending: usize,
    heads: HashMap<ChainId, (u64, Hash)>,
}

impl AuditBuffer {
    pub(crate) fn mark(&self) -> AuditMark {
        AuditMark {
            pending: self.pending.len(),
            heads: self.heads.clone(),
        }
    }

    pub(crate) fn restore(&mut self, mark: AuditMark) {
        self.pending.truncate(mark.pending);
        self.heads = mark.heads;
    }
}

/// Rows per multi-row INSERT (18 parameters each; well under SQLite's limit).
const ROWS_PER_INSERT: usize = 100;

impl Tx {
    /// Appends `event` to its chain, after the chain's current head, in this transaction.
    /// The head is read once per chain and transaction — on PostgreSQL with `FOR UPDATE`,
    /// so concurrent appends from several nodes queue instead of forking the chain;
    /// SQLite has a single writer anyway. The entry is sealed now and written with the
    /// transaction's other entries at commit.
    pub async fn append_audit(&mut self, event: Event) -> Result<Entry, StoreError> {
        let chain = event.chain;
        if !self.audit.loaded.contains(&chain) {
            let head_query = match self.kind() {
                BackendKind::Sqlite => {
                    "SELECT head_seq, head_hash FROM audit_chains WHERE chain_id = $1"
                }
                BackendKind::Postgres => {
                    "SELECT head_seq, head_hash FROM audit_chains WHERE chain_id = $1 FOR UPDATE"
                }
            };
            let head: Option<(i64, Vec<u8>)> = on_tx!(self, |conn| {
                sqlx::query_as(head_query)
                    .bind(chain.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
            });
            if let Some((seq, hash)) = head {
                let seq =
                    u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit head sequence"))?;
                let hash = Hash::try_from(hash.as_slice())
                    .map_err(|_| StoreError::Corrupt("audit head hash"))?;
                self.audit.heads.insert(chain, (seq, hash));
            }
            self.audit.loaded.insert(chain);
        }
        let entry = seal_next(self.audit.heads.get(&chain).copied(), event);
        i64::try_from(entry.seq).map_err(|_| StoreError::Corrupt("audit sequence"))?;
        self.audit.heads.insert(chain, (entry.seq, entry.hash));
        self.audit.pending.push(entry.clone());
        Ok(entry)
    }

    /// Writes the buffered entries (a few multi-row statements) and the new chain heads.
    pub(crate) async fn flush_audit(&mut self) -> Result<(), StoreError> {
        if self.audit.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.audit.pending);
        for chunk in pending.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO audit_entries (chain_id, seq, prev_hash, hash, at, actor_kind, \
                 actor_account, actor_role, actor_device, actor_session, action, \
                 target_patient, target_record, target_document, target_member, outcome, \
                 request_id, client_address) VALUES {}",
                crate::tx::values_rows(self.kind(), chunk.len(), 18)
            );
            on_tx!(self, |conn| {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for entry in chunk {
                    let event = &entry.event;
                    query = query
                        .bind(event.chain.to_string())
                        .bind(i64::try_from(entry.seq).unwrap_or(i64::MAX))
                        .bind(entry.prev_hash.to_vec())
                        .bind(entry.hash.to_vec())
                        .bind(event.at.unix_millis())
                        .bind(event.actor.kind.code())
                        .bind(event.actor.account)
                        .bind(event.actor.role)
                        .bind(event.actor.device)
                        .bind(event.actor.session)
                        .bind(event.action.code())
                        .bind(event.targets.patient)
                        .bind(event.targets.record)
                        .bind(event.targets.document)
                        .bind(event.targets.member)
                        .bind(event.outcome.code())
                        .bind(event.request_id.clone())
                        .bind(event.client_address.map(|address| address.to_string()));
                }
                query.execute(&mut *conn).await?;
            });
        }
        let touched: BTreeSet<ChainId> = pending.iter().map(|entry| entry.event.chain).collect();
        for chain in touched {
            let Some((seq, hash)) = self.audit.heads.get(&chain).copied() else {
                continue;
            };
            on_tx!(self, |conn| {
                sqlx::query(
                    "INSERT INTO audit_chains (chain_id, head_seq, head_hash) VALUES ($1, $2, $3) \
                     ON CONFLICT (chain_id) DO UPDATE \
                     SET head_seq = excluded.head_seq, head_hash = excluded.head_hash",
                )
                .bind(chain.to_string())
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(hash.to_vec())
                .execute(&mut *conn)
                .await?;
            });
        }
        Ok(())
    }

    /// Reads a chain's events, newest first, with filters (for the trail pages and API).
    ///
    /// The statement names only the filters given, so each can use its index: written as
    /// `($n IS NULL OR target_patient = $n)`, neither SQLite nor a generic PostgreSQL plan
    /// can, and a patient's access history scanned the whole chain (measured on SQLite,
    /// 300,000 entries: 300 ms per query instead of 0.15 ms).
    ///
    /// A patient's events are indexed within buckets of [`PATIENT_BUCKET`] sequence
    /// numbers (migration 0016), so they are read bucket by bucket, newest first, a
    /// growing run of buckets per statement, until the limit is reached.
    pub async fn audit_events(
        &mut self,
        chain: ChainId,
        query: &AuditQuery,
    ) -> Result<Vec<Entry>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let filters = AuditFilters::of(query);
        if query.patient.is_none() {
            return self
                .audit_events_where(chain, query, &filters, None, query.limit)
                .await;
        }
        // The walk starts at the chain's newest entry, never above it: a `before_seq`
        // from a request can be any number, and starting from it would probe buckets that
        // cannot exist (from u64::MAX, about 10^16 of them, inside the writer's batch).
        let Some(head) = self.audit_newest_seq(chain).await? else {
            return Ok(Vec::new());
        };
        let newest = match filters.before {
            Some(before) => head.min(before.saturating_sub(1)),
            None => head,
        };
        if newest < 0 {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        for buckets in PatientBuckets::down_from(newest) {
            // Below the limit here: each statement returns at most what remains.
            let remaining = query
                .limit
                .saturating_sub(u32::try_from(events.len()).unwrap_or(u32::MAX));
            let found = self
                .audit_events_where(chain, query, &filters, Some(buckets), remaining)
                .await?;
            events.extend(found);
            if events.len() >= query.limit as usize {
                break;
            }
        }
        Ok(events)
    }

    /// The sequence number of a chain's newest entry, as this transaction sees it.
    async fn audit_newest_seq(&mut self, chain: ChainId) -> Result<Option<i64>, StoreError> {
        Ok(on_tx!(self, |conn| {
            sqlx::query_scalar("SELECT MAX(seq) FROM audit_entries WHERE chain_id = $1")
                .bind(chain.to_string())
                .fetch_one(&mut *conn)
                .await?
        }))
    }

    /// One statement of [`Tx::audit_events`], over some buckets of a patient's entries.
    async fn audit_events_where(
        &mut self,
        chain: ChainId,
        query: &AuditQuery,
        filters: &AuditFilters,
        buckets: Option<PatientBuckets>,
        limit: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        let sql = filters.sql(buckets);
        // The bucket runs make the text of a patient's statements vary: not cached.
        let persistent = buckets.is_none();
        on_tx!(self, |conn| {
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql))
                .persistent(persistent)
                .bind(chain.to_string());
            if let Some(account) = query.actor_account {
                statement = statement.bind(account);
            }
            if let Some(action) = query.action {
                statement = statement.bind(action.code());
            }
            for time in [query.from, query.until].into_iter().flatten() {
                statement = statement.bind(time.unix_millis());
            }
            if let Some(patient) = query.patient {
                statement = statement.bind(patient);
            }
            if let Some(before) = filters.before {
                statement = statement.bind(before);
            }
            let rows = statement
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(|row| audit_entry!(row).map_err(|_| StoreError::Corrupt("audit entry")))
                .collect()
        })
    }
}

/// How many consecutive sequence numbers of a chain share a bucket of the by-patient
/// index, `(chain_id, seq / 512, target_patient, seq)` (migration 0016; the number is
/// written there too). Led by the bucket, the index grows at its end: the entries of a
/// commit (a search shows up to 50 patients, one entry each) land on the few pages of
/// the current bucket instead of one page per patient across the whole trail, and a
/// durable commit writes those pages. The price is on the reading side: a patient's
/// history probes every bucket of the chain, newest first (one B-tree descent each).
pub const PATIENT_BUCKET: i64 = 512;

/// The buckets probed by one statement: the first statements probe few (a recent
/// event is found at once), then each run doubles, up to [`PatientBuckets::WIDEST`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PatientBuckets {
    newest: i64,
    oldest: i64,
}

impl PatientBuckets {
    const FIRST: i64 = 16;
    const WIDEST: i64 = 1024;

    /// The runs of buckets from the one holding `seq` down to bucket 0.
    fn down_from(seq: i64) -> impl Iterator<Item = Self> {
        let mut next = Some(seq / PATIENT_BUCKET);
        let mut width = Self::FIRST;
        std::iter::from_fn(move || {
            let newest = next?;
            let oldest = newest.saturating_sub(width - 1).max(0);
            next = if oldest > 0 { Some(oldest - 1) } else { None };
            width = (width * 2).min(Self::WIDEST);
            Some(Self { newest, oldest })
        })
    }

    /// ` AND seq / 512 IN (n, …) AND seq >= …`: each bucket an equality the index can
    /// seek to, and the run's first sequence number, which bounds the range another
    /// index would walk (SQLite reads the actor's index when the actor is also asked).
    /// The numbers are computed here, never taken from a request.
    fn condition(self) -> String {
        use std::fmt::Write as _;

        let mut condition = format!(" AND seq / {PATIENT_BUCKET} IN (");
        for bucket in (self.oldest..=self.newest).rev() {
            if bucket != self.newest {
                condition.push_str(", ");
            }
            // Writing to a `String` cannot fail.
            let _ = write!(condition, "{bucket}");
        }
        let _ = write!(condition, ") AND seq >= {}", self.oldest * PATIENT_BUCKET);
        condition
    }
}

/// The `AND` conditions of an audit query, numbered from `$2` in the order
/// [`Tx::audit_events`] binds their values.
struct AuditFilters {
    conditions: String,
    count: usize,
    before: Option<i64>,
}

impl AuditFilters {
    fn of(query: &AuditQuery) -> Self {
        use std::fmt::Write as _;

        let before = query
            .before_seq
            .map(|seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let given = [
            ("actor_account =", query.actor_account.is_some()),
            ("action =", query.action.is_some()),
            ("at >=", query.from.is_some()),
            ("at <", query.until.is_some()),
            ("target_patient =", query.patient.is_some()),
            ("seq <", before.is_some()),
        ];
        let mut conditions = String::new();
        let mut count = 0;
        for (condition, _) in given.iter().filter(|(_, present)| *present) {
            count += 1;
            // Writing to a `String` cannot fail.
            let _ = write!(conditions, " AND {condition} ${}", count + 1);
        }
        Self {
            conditions,
            count,
            before,
        }
    }

    /// The statement: the chain, the conditions, the buckets of a patient's entries, the
    /// limit last.
    ///
    /// With buckets, the order is written `+seq` so SQLite does not walk the chain's
    /// primary key to save a sort (its plan without statistics did, scanning the chain):
    /// a patient's entries in a few buckets are few, and sorted in memory.
    fn sql(&self, buckets: Option<PatientBuckets>) -> String {
        let (buckets, order) = match buckets {
            Some(buckets) => (buckets.condition(), "+seq"),
            None => (String::new(), "seq"),
        };
        format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE chain_id = $1{}{buckets} \
             ORDER BY {order} DESC LIMIT ${}",
            self.conditions,
            self.count + 2
        )
    }
}

impl Store {
    /// Every chain that has entries.
    pub async fn audit_chains(&self) -> Result<Vec<ChainId>, StoreError> {
        let names: Vec<String> = on_backend!(self, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT chain_id FROM audit_entries \
                 UNION SELECT DISTINCT chain_id FROM audit_checkpoints ORDER BY 1",
            )
            .fetch_all(pool)
            .await?
        });
        names
            .iter()
            .map(|name| {
                name.parse()
                    .map_err(|()| StoreError::Corrupt("audit chain id"))
            })
            .collect()
    }

    /// A whole chain in sequence order, for verification: undecodable rows come back as
    /// `Err(seq)` so the verifier can name them.
    pub async fn audit_chain_entries(
        &self,
        chain: ChainId,
    ) -> Result<Vec<Result<Entry, u64>>, StoreError> {
        let sql =
            format!("SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE chain_id = $1 ORDER BY seq");
        on_backend!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(chain.to_string())
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(|row| audit_entry!(row)).collect())
        })
    }

    /// The current head (sequence, hash) of a chain, from its newest entry.
    pub async fn audit_head(&self, chain: ChainId) -> Result<Option<(u64, Hash)>, StoreError> {
        let head: Option<(i64, Vec<u8>)> = on_backend!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, hash FROM audit_entries WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(chain.to_string())
            .fetch_optional(pool)
            .await?
        });
        head.map(|(seq, hash)| {
            Ok((
                u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit sequence"))?,
                Hash::try_from(hash.as_slice()).map_err(|_| StoreError::Corrupt("audit hash"))?,
            ))
        })
        .transpose()
    }

    pub async fn insert_audit_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        on_backend!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_checkpoints (chain_id, seq, head_hash, at, signature) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(checkpoint.chain.to_string())
            .bind(
                i64::try_from(checkpoint.seq)
                    .map_err(|_| StoreError::Corrupt("checkpoint sequence"))?,
            )
            .bind(checkpoint.head_hash.as_slice())
            .bind(checkpoint.at.unix_millis())
            .bind(checkpoint.signature.as_slice())
            .execute(pool)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The checkpoints stored in the database for a chain, oldest first.
    pub async fn audit_checkpoints(&self, chain: ChainId) -> Result<Vec<Checkpoint>, StoreError> {
        self.checkpoints_of(
            chain,
            "SELECT seq, head_hash, at, signature FROM audit_checkpoints \
             WHERE chain_id = $1 ORDER BY seq",
        )
        .await
    }

    /// The newest checkpoint of a chain (the checkpoint job asks every minute).
    pub async fn latest_audit_checkpoint(
        &self,
        chain: ChainId,
    ) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self
            .checkpoints_of(
                chain,
                "SELECT seq, head_hash, at, signature FROM audit_checkpoints \
                 WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1",
            )
            .await?
            .pop())
    }

    async fn checkpoints_of(
        &self,
        chain: ChainId,
        sql: &'static str,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = on_backend!(self, |pool| {
            sqlx::query_as(sql)
                .bind(chain.to_string())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(seq, hash, at, signature)| {
                Ok(Checkpoint {
                    chain,
                    seq: u64::try_from(seq)
                        .map_err(|_| StoreError::Corrupt("checkpoint sequence"))?,
                    head_hash: Hash::try_from(hash.as_slice())
                        .map_err(|_| StoreError::Corrupt("checkpoint hash"))?,
                    at: Timestamp::from_unix_millis(at),
                    signature,
                })
            })
            .collect()
    }
}

pub(crate) struct EntryColumns {
    pub chain_id: String,
    pub seq: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub at: i64,
    pub actor_kind: String,
    pub actor_account: Option<Uuid>,
    pub actor_role: Option<String>,
    pub actor_device: Option<Uuid>,
    pub actor_session: Option<Uuid>,
    pub action: String,
    pub target_patient: Option<Uuid>,
    pub target_record: Option<Uuid>,
    pub target_document: Option<Uuid>,
    pub target_member: Option<Uuid>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
}

/// Builds an entry from stored columns; `None` when a value is not one Carnet writes.
pub(crate) fn entry_from_columns(columns: EntryColumns) -> Option<Entry> {
    let role = match columns.actor_role.as_deref() {
        None => None,
        Some(text) => Some(Role::parse(text).ok()?.as_str()),
    };
    let client_address = match columns.client_address.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<IpAddr>().ok()?),
    };
    Some(Entry {
        seq: u64::try_from(columns.seq).ok()?,
        prev_hash: Hash::try_from(columns.prev_hash.as_slice()).ok()?,
        hash: Hash::try_from(columns.hash.as_slice()).ok()?,
        event: Event {
            chain: columns.chain_id.parse().ok()?,
            at: Timestamp::from_unix_millis(columns.at),
            actor: AuditActor {
                kind: ActorKind::parse(&columns.actor_kind)?,
                account: columns.actor_account,
                role,
                device: columns.actor_device,
                session: columns.actor_session,
            },
            action: Action::parse(&columns.action)?,
            targets: Targets {
                patient: columns.target_patient,
                record: columns.target_record,
                document: columns.target_document,
                member: columns.target_member,
            },
            outcome: Outcome::parse(&columns.outcome)?,
            request_id: columns.request_id,
            client_address,
        },
    })
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection as _, Row as _};

    use super::{AuditFilters, AuditQuery, PATIENT_BUCKET, PatientBuckets};

    /// SQLite's plan for an audit query, on the audit tables of the real migrations.
    async fn plan(query: &AuditQuery, buckets: Option<PatientBuckets>) -> String {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        for migration in [
            include_str!("../migrations/sqlite/0002_audit.sql"),
            include_str!("../migrations/sqlite/0016_audit_by_patient_in_buckets.sql"),
        ] {
            sqlx::raw_sql(migration)
                .execute(&mut conn)
                .await
                .expect("audit tables");
        }
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            AuditFilters::of(query).sql(buckets)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .expect("plan");
        rows.iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn a_patients_history_and_an_actors_events_are_read_through_their_index() {
        let patient = AuditQuery {
            patient: Some(uuid::Uuid::from_bytes([1; 16])),
            before_seq: Some(100),
            limit: 50,
            ..AuditQuery::default()
        };
        let buckets = PatientBuckets {
            newest: 40,
            oldest: 25,
        };
        let plan_of_patient = plan(&patient, Some(buckets)).await;
        // Seeks each bucket and the patient in it: no scan of a bucket's entries.
        assert!(
            plan_of_patient.contains(
                "USING INDEX audit_entries_by_patient \
                 (chain_id=? AND <expr>=? AND target_patient=? AND seq>? AND seq<?)"
            ),
            "{plan_of_patient}"
        );
        let actor = AuditQuery {
            actor_account: Some(uuid::Uuid::from_bytes([2; 16])),
            limit: 50,
            ..AuditQuery::default()
        };
        let plan_of_actor = plan(&actor, None).await;
        assert!(
            plan_of_actor.contains("audit_entries_by_actor"),
            "{plan_of_actor}"
        );
    }

    #[test]
    fn a_patients_buckets_are_probed_once_each_newest_first_in_growing_runs() {
        let runs: Vec<PatientBuckets> =
            PatientBuckets::down_from(5_000 * PATIENT_BUCKET + 7).collect();
        let probed: Vec<i64> = runs
            .iter()
            .flat_map(|run| (run.oldest..=run.newest).rev())
            .collect();
        assert_eq!(probed, (0..=5_000).rev().collect::<Vec<i64>>());
        let widths: Vec<i64> = runs.iter().map(|run| run.newest - run.oldest + 1).collect();
        assert_eq!(widths[..7], [16, 32, 64, 128, 256, 512, 1024]);
        assert!(widths[7..].iter().all(|width| *width <= 1024));
        assert_eq!(
            PatientBuckets::down_from(0).collect::<Vec<_>>(),
            [PatientBuckets {
                newest: 0,
                oldest: 0
            }]
        );
        assert_eq!(
            PatientBuckets {
                newest: 3,
                oldest: 1
            }
            .condition(),
            " AND seq / 512 IN (3, 2, 1) AND seq >= 512"
        );
    }

    #[test]
    fn conditions_are_numbered_in_the_order_their_values_are_bound() {
        let every = AuditQuery {
            actor_account: Some(uuid::Uuid::from_bytes([2; 16])),
            action: Some(carnet_audit::Action::RecordRead),
            from: Some(carnet_domain::Timestamp::from_unix_millis(1)),
            until: Some(carnet_domain::Timestamp::from_unix_millis(2)),
            patient: Some(uuid::Uuid::from_bytes([1; 16])),
            before_seq: Some(9),
            limit: 5,
        };
        let sql = AuditFilters::of(&every).sql(None);
        assert!(
            sql.contains(
                "chain_id = $1 AND actor_account = $2 AND action = $3 AND at >= $4 \
                 AND at < $5 AND target_patient = $6 AND seq < $7"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT $8"), "{sql}");
        let none = AuditFilters::of(&AuditQuery::default()).sql(None);
        assert!(
            none.contains("WHERE chain_id = $1 ORDER BY seq DESC LIMIT $2"),
            "{none}"
        );
    }
}
