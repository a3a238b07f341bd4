//! Transactions: every unit of work that reads or changes practice data runs in a [`Tx`],
//! so its audit event is appended in the same transaction (see `audit.rs`) and the two
//! commit or roll back together.

use carnet_domain::{
    AdminId, Member, MemberId, Practice, PracticeId, ProfessionalIdState, ProfessionalIdStatus,
    Timestamp,
};

use crate::{BackendKind, StoreError, members_query, rows};

pub(crate) enum TxInner {
    Sqlite(Held<sqlx::Sqlite>),
    Postgres(Held<sqlx::Postgres>),
}

/// What a [`Tx`] runs its statements on.
pub(crate) enum Held<DB: sqlx::Database> {
    Transaction(sqlx::Transaction<'static, DB>),
    /// A pooled connection for reads only ([`crate::Store::reads`]). Every write is
    /// refused.
    Reads(ReadConnection<DB>),
}

/// A pooled connection for reads only: outside any transaction (each statement sees the
/// latest commit, and no BEGIN or ROLLBACK is sent) until a row-level security scope is
/// set ([`Tx::scope_rows`], PostgreSQL). That scope is a setting local to a transaction,
/// so the first one opens a transaction, rolled back at the end: the scope never
/// outlives the reads nor reaches the connection's next user. A connection let go with
/// that transaction still open (a cancelled request) is closed, never pooled again.
pub(crate) struct ReadConnection<DB: sqlx::Database> {
    connection: sqlx::pool::PoolConnection<DB>,
    in_transaction: bool,
}

impl<DB: sqlx::Database> ReadConnection<DB> {
    pub(crate) fn new(connection: sqlx::pool::PoolConnection<DB>) -> Self {
        Self {
            connection,
            in_transaction: false,
        }
    }

    /// Opens the transaction the row-level security scope needs, once.
    async fn open_transaction(&mut self) -> Result<(), StoreError>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        if !self.in_transaction {
            // Marked first: cancelled during the BEGIN, the connection is closed too.
            self.in_transaction = true;
            sqlx::raw_sql("BEGIN READ ONLY")
                .execute(&mut *self.connection)
                .await?;
        }
        Ok(())
    }

    async fn release(mut self) -> Result<(), StoreError>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        if self.in_transaction {
            sqlx::raw_sql("ROLLBACK")
                .execute(&mut *self.connection)
                .await?;
            self.in_transaction = false;
        }
        Ok(())
    }
}

impl<DB: sqlx::Database> Drop for ReadConnection<DB> {
    fn drop(&mut self) {
        if self.in_transaction {
            self.connection.close_on_drop();
        }
    }
}

impl<DB: sqlx::Database> Held<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        match self {
            Self::Transaction(transaction) => transaction,
            Self::Reads(reads) => &mut reads.connection,
        }
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Transaction(transaction) => Ok(transaction.commit().await?),
            Self::Reads(_) => Err(StoreError::ReadOnly),
        }
    }

    async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Self::Transaction(transaction) => Ok(transaction.rollback().await?),
            Self::Reads(reads) => reads.release().await,
        }
    }
}

/// An open database transaction on either backend (or, from [`crate::Store::reads`], a
/// connection for reads only). Dropped without `commit`, it rolls back.
pub struct Tx {
    pub(crate) inner: TxInner,
    /// Audit entries sealed in this transaction, written in one statement at commit.
    pub(crate) audit: crate::audit::AuditBuffer,
    /// Inside a group-commit job: whether the job's savepoint was opened (it is opened
    /// lazily, before the job's first data write).
    job: Option<bool>,
    /// The row-level security scope last set in this transaction (PostgreSQL only).
    scope: Option<RowScope>,
}

/// Which care-record rows a PostgreSQL transaction may see and write under row-level
/// security (migration 0014, ADR 0013): the second wall behind each query's own practice
/// filter. SQLite has no such wall; there the scope costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowScope {
    /// One practice's rows: every care-records statement done for a capability.
    Practice(PracticeId),
    /// Every practice's rows: named instance-wide maintenance only (the re-encryption
    /// job's work list, the operator's blob listings, the tests' direct edits).
    Instance,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tx({:?})", self.kind())
    }
}

/// Runs `$body` with `$conn` bound to the transaction's connection, once per backend.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::tx::TxInner::Sqlite(held) => {
                let $conn: &mut sqlx::SqliteConnection = held.connection();
                $body
            }
            $crate::tx::TxInner::Postgres(held) => {
                let $conn: &mut sqlx::PgConnection = held.connection();
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// `VALUES` rows for a multi-row insert of `rows` rows of `columns` values each:
/// `(?, ?), (?, ?)` on SQLite (with `$N`, sqlx looks every parameter up by name:
/// measured, a quarter of the CPU of a 64-row audit batch), `($1, $2), ($3, $4)` on
/// PostgreSQL.
pub(crate) fn values_rows(kind: BackendKind, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match kind {
                BackendKind::Sqlite => sql.push('?'),
                BackendKind::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

impl Tx {
    pub fn kind(&self) -> BackendKind {
        match self.inner {
            TxInner::Sqlite(_) => BackendKind::Sqlite,
            TxInner::Postgres(_) => BackendKind::Postgres,
        }
    }

    pub(crate) fn new(inner: TxInner) -> Self {
        Self {
            inner,
            audit: crate::audit::AuditBuffer::default(),
            job: None,
            scope: None,
        }
    }

    /// Writes the buffered audit entries, then commits: the data and its audit entries
    /// become durable together, or neither does.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if self.reads_only() {
            return Err(StoreError::ReadOnly);
        }
        self.flush_audit().await?;
        match self.inner {
            TxInner::Sqlite(held) => held.commit().await,
            TxInner::Postgres(held) => held.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(held) => held.rollback().await,
            TxInner::Postgres(held) => held.rollback().await,
        }
    }

    /// Whether this runs on a connection for reads only ([`crate::Store::reads`]).
    fn reads_only(&self) -> bool {
        matches!(
            self.inner,
            TxInner::Sqlite(Held::Reads(_)) | TxInner::Postgres(Held::Reads(_))
        )
    }

    /// Sets the row-level security scope for the statements that follow (PostgreSQL;
    /// nothing on SQLite), once per change: a transaction-local setting, so it ends with
    /// the transaction. Called by every method that reads or writes care records.
    pub(crate) async fn scope_rows(&mut self, scope: RowScope) -> Result<(), StoreError> {
        if self.scope == Some(scope) {
            return Ok(());
        }
        let TxInner::Postgres(held) = &mut self.inner else {
            return Ok(());
        };
        if let Held::Reads(reads) = held {
            reads.open_transaction().await?;
        }
        let (practice, instance_wide) = match scope {
            RowScope::Practice(id) => (id.as_uuid().to_string(), ""),
            RowScope::Instance => (String::new(), "on"),
        };
        sqlx::query(
            "SELECT set_config('carnet.practice', $1, true), \
             set_config('carnet.instance_wide', $2, true)",
        )
        .bind(practice)
        .bind(instance_wide)
        .execute(held.connection())
        .await?;
        self.scope = Some(scope);
        Ok(())
    }

    /// Runs a statement without arguments (savepoints, tests' direct edits).
    pub(crate) async fn execute_plain(
        &mut self,
        statement: &'static str,
    ) -> Result<(), StoreError> {
        on_tx!(self, |conn| {
            sqlx::query(statement).execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// Called by every method that changes data: inside a group-commit job, opens the
    /// job's savepoint first so a failing job can be rolled back alone.
    pub(crate) async fn before_write(&mut self) -> Result<(), StoreError> {
        if self.reads_only() {
            return Err(StoreError::ReadOnly);
        }
        if self.job == Some(false) {
            self.execute_plain("SAVEPOINT carnet_job").await?;
            self.job = Some(true);
        }
        Ok(())
    }

    /// Marks the start of a group-commit job.
    pub(crate) fn begin_job(&mut self) -> crate::audit::AuditMark {
        self.job = Some(false);
        self.audit.mark()
    }

    /// Ends a job: keeps its changes, or undoes them (data and buffered audit entries).
    pub(crate) async fn end_job(
        &mut self,
        mark: crate::audit::AuditMark,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        let savepoint = self.job.take() == Some(true);
        if !succeeded {
            // A rollback to the savepoint also undoes a scope set inside it.
            self.scope = None;
            self.audit.restore(mark);
            if savepoint {
                self.execute_plain("ROLLBACK TO SAVEPOINT carnet_job")
                    .await?;
            }
        }
        if savepoint {
            self.execute_plain("RELEASE SAVEPOINT carnet_job").await?;
        }
        Ok(())
    }

    // ---- platform administrators ---------------------------------------------------------

    /// A value of the instance metadata, read inside the transaction.
    pub async fn instance_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM instance_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(value)
    }

    /// Replaces a value of the instance metadata, only if it still holds `previous`
    /// (key rotation): otherwise [`StoreError::Conflict`] and nothing changes.
    pub async fn replace_instance_meta(
        &mut self,
        key: &str,
        previous: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        let changed = on_tx!(self, |conn| {
            sqlx::query("UPDATE instance_meta SET value = $1 WHERE key = $2 AND value = $3")
                .bind(value)
                .bind(key)
                .bind(previous)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    pub async fn insert_admin(
        &mut self,
        id: AdminId,
        name: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query("INSERT INTO platform_admins (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id.as_uuid())
                .bind(name)
                .bind(now.unix_millis())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    // ---- practices and members ------------------------------------------------------------

    pub async fn insert_practice(&mut self, practice: &Practice) -> Result<(), StoreError> {
        self.before_write().await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO practices (id, name, address, profession, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(practice.id.as_uuid())
            .bind(practice.name.as_str())
            .bind(practice.address.as_str())
            .bind(practice.profession.as_str())
            .bind(practice.created_at.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    // ---- members -----------------------------------------------------------------------

    /// Adds a member. Its professional number (if any) starts pending.
    pub async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.before_write().await?;
        let (kind, number) = match &member.professional_id {
            Some(id) => (Some(id.kind()), Some(id.number())),
            None => (None, None),
        };
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO members (id, practice_id, name, role, phone, \
                 professional_id_kind, professional_id_number, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(member.id.as_uuid())
            .bind(member.practice_id.as_uuid())
            .bind(member.name.as_str())
            .bind(member.role.as_str())
            .bind(member.phone.as_str())
            .bind(kind)
            .bind(number)
            .bind(member.created_at.unix_millis())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The members of one practice, oldest first, each with its latest decision.
    pub async fn list_members(
        &mut self,
        practice_id: PracticeId,
    ) -> Result<Vec<Member>, StoreError> {
        on_tx!(self, |conn| {
            let rows = sqlx::query(members_query!("m.practice_id = $1"))
                .bind(practice_id.as_uuid())
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|row| rows::member!(row)).collect()
        })
    }

    /// One member, looked up within its practice: a member id from another practice finds
    /// nothing.
    pub async fn member(
        &mut self,
        practice_id: PracticeId,
        member_id: MemberId,
    ) -> Result<Option<Member>, StoreError> {
        on_tx!(self, |conn| {
            let row = sqlx::query(members_query!("m.practice_id = $1 AND m.id = $2"))
                .bind(practice_id.as_uuid())
                .bind(member_id.as_uuid())
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|row| rows::member!(row)).transpose()
        })
    }

    /// Appends a decision on a member's professional number. Earlier decisions are kept.
    pub async fn append_professional_id_decision(
        &mut self,
        practice_id: PracticeId,
        member_id: MemberId,
        decision: &ProfessionalIdState,
    ) -> Result<(), StoreError> {
        self.before_write().await?;
        let ProfessionalIdState::Decided {
            status,
            by,
            at,
            reason,
        } = decision
        else {
            return Err(StoreError::Corrupt("a decision must validate or reject"));
        };
        if *status == ProfessionalIdStatus::Pending {
            return Err(StoreError::Corrupt("a decision must validate or reject"));
        }
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO professional_id_decisions \
                 (practice_id, member_id, status, decided_by, decided_at, reason) \
                 SELECT $1, $2, $3, $4, $5, $6 \
                 WHERE EXISTS (SELECT 1 FROM members WHERE id = $2 AND practice_id = $1)",
            )
            .bind(practice_id.as_uuid())
            .bind(member_id.as_uuid())
            .bind(status.as_str())
            .bind(by.as_uuid())
            .bind(at.unix_millis())
            .bind(reason.as_str())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)
            .and_then(|done| {
                if done.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err(StoreError::MissingReference)
                }
            })
        })
    }

    /// Every decision on a member's number, oldest first (the history behind the state).
    pub async fn professional_id_history(
        &mut self,
        practice_id: PracticeId,
        member_id: MemberId,
    ) -> Result<Vec<ProfessionalIdState>, StoreError> {
        on_tx!(self, |conn| {
            let rows = sqlx::query(
                "SELECT status AS decision_status, decided_by, decided_at, reason \
                 FROM professional_id_decisions \
                 WHERE practice_id = $1 AND member_id = $2 ORDER BY seq",
            )
            .bind(practice_id.as_uuid())
            .bind(member_id.as_uuid())
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(|row| rows::decision!(row)).collect()
        })
    }
}
