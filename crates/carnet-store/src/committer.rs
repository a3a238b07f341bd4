//! Group commit: durable transactions for many concurrent requests at the cost of one
//! commit (one fsync) per batch.
//!
//! Every audited unit of work is a job sent to one writer task. The writer takes the jobs
//! waiting in its queue (up to a limit), runs each in one transaction — inside a
//! savepoint, opened before the job's first data write, so a failing job rolls back
//! alone; a job alone in its batch needs none (the transaction is rolled back instead) —
//! writes all the batch's audit entries in one statement, commits once, and only then
//! answers every job.
//! A job's data changes and its audit entry therefore commit together, are on disk before
//! the caller hears back (SQLite `synchronous = FULL`, PostgreSQL `synchronous_commit`),
//! and concurrent requests share the fsync instead of queueing for one each.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use crate::{Store, StoreError, Tx};

/// A boxed future, as returned by the work closures given to [`GroupCommitter::run`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The handle to the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GroupCommitter {
    sender: mpsc::Sender<Box<dyn Job>>,
}

trait Job: Send {
    /// Runs the work in `tx`; true when it succeeded (its savepoint is kept).
    fn run<'t>(&'t mut self, tx: &'t mut Tx) -> BoxFuture<'t, bool>;
    /// Answers the caller once the batch's fate is known.
    fn deliver(self: Box<Self>, committed: Result<(), String>);
}

impl std::fmt::Debug for dyn Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

struct Pending<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
{
    fn run<'t>(&'t mut self, tx: &'t mut Tx) -> BoxFuture<'t, bool> {
        Box::pin(async move {
            let outcome = match self.work.take() {
                Some(work) => work(tx).await,
                None => Err(StoreError::WriterStopped),
            };
            let succeeded = outcome.is_ok();
            self.outcome = Some(outcome);
            succeeded
        })
    }

    fn deliver(self: Box<Self>, committed: Result<(), String>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)) | None, Err(message)) => Err(StoreError::CommitFailed(message)),
            (None, Ok(())) => Err(StoreError::WriterStopped),
        };
        // The caller may have gone (request cancelled): nothing to tell then.
        let _ = self.reply.send(answer);
    }
}

impl GroupCommitter {
    /// Starts the writer task on the current tokio runtime. `max_batch` = 1 disables
    /// grouping (one commit per job), for comparison in benchmarks.
    pub fn start(store: Store, max_batch: usize) -> Self {
        let (sender, receiver) = mpsc::channel(4096);
        tokio::spawn(writer(store, receiver, max_batch.max(1)));
        Self { sender }
    }

    /// Runs `work` in the next batch's transaction and returns its result once the batch
    /// is committed. If `work` fails, its changes are rolled back and its error returned;
    /// if the commit fails, every job of the batch gets [`StoreError::CommitFailed`].
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            outcome: None,
            reply,
        });
        self.sender
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn writer(store: Store, mut receiver: mpsc::Receiver<Box<dyn Job>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        // Let the callers that were just answered submit their next job, so batches stay
        // full under load; costs microseconds when nobody else is waiting.
        tokio::task::yield_now().await;
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&store, &mut batch).await;
        if let Err(message) = &committed {
            tracing::error!(jobs = batch.len(), error = %message, "audited batch not committed");
        }
        for job in batch.drain(..) {
            job.deliver(committed.clone());
        }
    }
}

async fn run_batch(store: &Store, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    let describe = |error: StoreError| error.describe_without_secrets();
    let mut tx = store.transaction().await.map_err(describe)?;
    // A job alone in its batch needs no savepoint: if it fails, the whole transaction,
    // which holds nothing else, is rolled back. (A savepoint makes SQLite copy every page
    // the job changes into a statement journal first: 20-25 % of the CPU samples of an
    // import, profiled with perf.)
    if let [job] = batch {
        if job.run(&mut tx).await {
            return tx.commit().await.map_err(describe);
        }
        return tx.rollback().await.map_err(describe);
    }
    for job in batch.iter_mut() {
        let mark = tx.begin_job();
        let succeeded = job.run(&mut tx).await;
        tx.end_job(mark, succeeded).await.map_err(describe)?;
    }
    tx.commit().await.map_err(describe)
}
