//! Durable audit appends per second: group commit against one commit (one fsync) per
//! append, on SQLite and — when `CARNET_TEST_POSTGRES_URL` is set — PostgreSQL.
//!
//! `cargo bench -p carnet-store --bench group_commit`. Each configuration runs 64
//! concurrent clients; the two modes alternate (A, B, A, B, …) and the report gives the
//! median of the per-pair ratios. Nothing is asserted: the numbers go in the notes.

#![expect(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

use std::time::{Duration, Instant};

use carnet_audit::{Action, ActorKind, AuditActor, ChainId, Event, Outcome, Targets};
use carnet_domain::{PracticeId, Timestamp};
use carnet_store::{GroupCommitter, Store};

const CLIENTS: usize = 64;
const PAIRS: usize = 3;

fn event(n: usize) -> Event {
    Event {
        chain: ChainId::Practice(PracticeId::new_v7(1, &[1; 10])),
        at: Timestamp::from_unix_millis(n as i64),
        actor: AuditActor::of_kind(ActorKind::System),
        action: Action::RecordRead,
        targets: Targets::default(),
        outcome: Outcome::Success,
        request_id: Some(format!("bench-{n}")),
        client_address: None,
    }
}

/// Appends `total` entries from `CLIENTS` concurrent clients; returns appends per second.
async fn run(store: &Store, max_batch: usize, total: usize) -> f64 {
    let committer = GroupCommitter::start(store.clone(), max_batch);
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let committer = committer.clone();
        clients.push(tokio::spawn(async move {
            for n in (client..total).step_by(CLIENTS) {
                committer
                    .run(move |tx| {
                        Box::pin(async move {
                            tx.append_audit(event(n)).await?;
                            Ok(())
                        })
                    })
                    .await
                    .expect("append");
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn compare(name: &str, store: &Store, per_append_total: usize, grouped_total: usize) {
    let mut per_append = Vec::new();
    let mut grouped = Vec::new();
    for _ in 0..PAIRS {
        per_append.push(run(store, 1, per_append_total).await);
        grouped.push(run(store, 64, grouped_total).await);
    }
    let ratios: Vec<f64> = grouped
        .iter()
        .zip(&per_append)
        .map(|(g, p)| g / p)
        .collect();
    println!(
        "{name}: one commit per append {:.0}/s, group commit {:.0}/s, ratio (median of {PAIRS} pairs) {:.1}x",
        median(per_append),
        median(grouped),
        median(ratios)
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_sqlite(&dir.path().join("bench.sqlite3"))
        .await
        .expect("open");
    store.migrate(None).await.expect("migrate");
    compare("SQLite (WAL, synchronous=FULL)", &store, 1_000, 10_000).await;
    store.close().await;

    match std::env::var("CARNET_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let admin = sqlx::PgPool::connect(&url).await.expect("connect");
            let schema = format!("carnet_bench_{}", std::process::id());
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await
                .expect("schema");
            let options = carnet_store::postgres_options_in_schema(&url, &schema).expect("URL");
            let store = Store::connect_postgres_with(options)
                .await
                .expect("connect");
            store.migrate(None).await.expect("migrate");
            compare("PostgreSQL (synchronous_commit=on)", &store, 2_000, 20_000).await;
            store.close().await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .expect("drop schema");
        }
        _ => println!("PostgreSQL: not measured (set CARNET_TEST_POSTGRES_URL)"),
    }
    let _ = Duration::ZERO;
}
