//! Benchmarks over HTTP on loopback (issue #6); they print a report and assert nothing
//! about time. Selected by `CARNET_BENCH` (skipped when unset): `full` for the measures
//! (release build), `smoke` for a few seconds of each (CI runs it, so the harness keeps
//! working):
//!
//! ```sh
//! CARNET_BENCH=full cargo nextest run --release --workspace -E 'test(benchmark_)' --no-capture
//! ```
//!
//! The application is the real router behind the real accept loop (`serve::accept_until`),
//! on SQLite, in this process; the load comes from `wrk` (Debian package) in another
//! process: one thread, 32 connections. Each measure alternates the baseline (A) and
//! Carnet's route (B), three pairs, and reports each pair and the median ratio.
//!
//! - Record read. A: an unauthenticated read of the same patient's identity, kept in
//!   clear in a table of the same database, returned as stored. B: `GET
//!   /api/v1/practices/{p}/patients/{id}` with a session cookie — session and device
//!   checked, PIN state, practice and patient keys unwrapped, identity opened, and a
//!   `record_read` audit entry committed durably (group commit) before the answer.
//!   Between the two, each pair also measures A behind the layers every response of the
//!   server passes through (`with_middleware`: security headers, request id, trace span,
//!   timeout; no session), reported as a second ratio: how much of the gap is the
//!   server's common HTTP handling rather than authentication, audit and decryption.
//! - Record read on PostgreSQL (when `CARNET_TEST_POSTGRES_URL` is set): the same A/B
//!   with Carnet on a fresh schema as its own role, the baseline a table of that schema.
//! - Memory: this process's resident size (server, plus the test harness and a second
//!   SQLite pool for the baseline) when idle after setup, and its largest sample (every
//!   50 ms) under the record-read load.
//! - Documents, 1, 10 and 50 MB. A: the same kind of route without encryption (body
//!   streamed to a file, synced; the file read whole and returned). B: Carnet's upload
//!   (sniffed, sealed in 64 KiB chunks) and download (every chunk opened before the
//!   first byte). Client: reqwest, one request at a time, each side timed over about
//!   32 MB of requests (32 of 1 MB, 3 of 10, one of 50).

#![expect(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::IntoResponse as _;
use axum::routing::{get, post};
use carnet_http::HttpSettings;
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::patients::call;
use crate::support::test_app;

const CONNECTIONS: u32 = 32;

/// How much each benchmark does.
struct Scale {
    /// A/B pairs per measure.
    pairs: usize,
    /// Seconds of each wrk load.
    load_seconds: u32,
    /// Rows per import, and imports of each kind.
    import_rows: usize,
    imports: usize,
    /// Document sizes, in MB.
    document_mb: &'static [usize],
    /// MB of requests each document measure is timed over (at least one request).
    document_total_mb: usize,
}

/// The scale `CARNET_BENCH` asks for; none when unset (the benchmarks are skipped).
fn scale() -> Option<&'static Scale> {
    static FULL: Scale = Scale {
        pairs: 3,
        load_seconds: 5,
        import_rows: 20_000,
        imports: 5,
        document_mb: &[1, 10, 50],
        document_total_mb: 32,
    };
    static SMOKE: Scale = Scale {
        pairs: 1,
        load_seconds: 1,
        import_rows: 300,
        imports: 2,
        document_mb: &[1],
        document_total_mb: 2,
    };
    match std::env::var("CARNET_BENCH").as_deref() {
        Ok("full") => Some(&FULL),
        Ok("smoke") => Some(&SMOKE),
        Ok(other) => panic!("CARNET_BENCH is full or smoke, not {other:?}"),
        Err(_) => None,
    }
}

/// The scale in force (the benchmarks only run when one is set).
fn current() -> &'static Scale {
    scale().expect("CARNET_BENCH is set")
}

#[derive(Clone)]
struct Plain {
    pool: sqlx::SqlitePool,
    dir: std::path::PathBuf,
}

async fn plain_record(
    State(plain): State<Plain>,
    Path(id): Path<String>,
) -> axum::response::Response {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM bench_plain WHERE id = $1")
        .bind(id)
        .fetch_optional(&plain.pool)
        .await
        .unwrap_or_default();
    stored_body(body)
}

async fn plain_record_postgres(
    State(pool): State<sqlx::PgPool>,
    Path(id): Path<String>,
) -> axum::response::Response {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM bench_plain WHERE id = $1")
        .bind(id)
        .fetch_optional(&pool)
        .await
        .unwrap_or_default();
    stored_body(body)
}

/// A baseline row's body as the answer, or 404.
fn stored_body(body: Option<String>) -> axum::response::Response {
    match body {
        Some(body) => ([("content-type", "application/json")], body).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn plain_upload(
    State(plain): State<Plain>,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> axum::http::StatusCode {
    let path = plain.dir.join(name);
    let Ok(mut file) = tokio::fs::File::create(&path).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    };
    let mut stream = body.into_data_stream();
    while let Some(Ok(piece)) = stream.next().await {
        if file.write_all(&piece).await.is_err() {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    if file.sync_all().await.is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    }
    axum::http::StatusCode::CREATED
}

async fn plain_download(
    State(plain): State<Plain>,
    Path(name): Path<String>,
) -> axum::response::Response {
    match tokio::fs::read(plain.dir.join(name)).await {
        Ok(bytes) => ([("content-type", "application/pdf")], bytes).into_response(),
        Err(_) => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The plaintext import: the same parsing and checks, rows and prefixes in clear, one
/// transaction.
async fn plain_import(State(plain): State<Plain>, body: String) -> axum::http::StatusCode {
    let Ok(identities) = carnet_domain::patients_from_csv(&body, None) else {
        return axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    };
    let Ok(mut tx) = plain.pool.begin().await else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    };
    for identity in &identities {
        let prefix = |name: &str| {
            carnet_domain::name_prefix(&carnet_domain::normalize_name(name)).unwrap_or_default()
        };
        let inserted = sqlx::query(
            "INSERT INTO bench_plain_patients (birth_prefix, used_prefix, body) VALUES ($1, $2, $3)",
        )
        .bind(prefix(&identity.birth_name))
        .bind(prefix(identity.used_name.as_deref().unwrap_or_default()))
        .bind(serde_json::to_string(identity).unwrap_or_default())
        .execute(&mut *tx)
        .await;
        if inserted.is_err() {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    match tx.commit().await {
        Ok(()) => axum::http::StatusCode::CREATED,
        Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[derive(serde::Deserialize)]
struct PlainQuery {
    name: String,
}

/// The plaintext search: the prefix looked up in clear, candidates parsed, filtered,
/// sorted and cut like Carnet's.
async fn plain_search(
    State(plain): State<Plain>,
    axum::extract::Query(query): axum::extract::Query<PlainQuery>,
) -> axum::response::Response {
    let name = carnet_domain::normalize_name(&query.name);
    let Some(prefix) = carnet_domain::name_prefix(&name) else {
        return axum::http::StatusCode::UNPROCESSABLE_ENTITY.into_response();
    };
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM bench_plain_patients WHERE birth_prefix = $1 OR used_prefix = $1",
    )
    .bind(&prefix)
    .fetch_all(&plain.pool)
    .await
    .unwrap_or_default();
    let mut found: Vec<carnet_domain::PatientIdentity> = rows
        .iter()
        .filter_map(|row| serde_json::from_str::<carnet_domain::PatientIdentity>(row).ok())
        .filter(|identity| carnet_domain::normalize_name(&identity.birth_name).starts_with(&name))
        .collect();
    // Shown like Carnet's: in name and birth date order, the first fifty, and the count.
    found.sort_by_cached_key(|identity| {
        (
            carnet_domain::normalize_name(&identity.birth_name),
            identity.birth_date,
        )
    });
    let total = found.len();
    found.truncate(carnet_service::SEARCH_LIMIT);
    ([("x-total-count", total.to_string())], axum::Json(found)).into_response()
}

/// What wrk measured.
#[derive(Debug, Clone, Copy)]
struct Load {
    p99_ms: f64,
    requests_per_second: f64,
}

fn parse_duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(us) = text.strip_suffix("us") {
        (us, 0.001)
    } else if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|value| value * factor)
}

fn wrk(url: &str, cookie: Option<&str>) -> Load {
    run_wrk(url, cookie, None, CONNECTIONS)
}

fn wrk_script(
    base: &str,
    cookie: Option<&str>,
    script: &std::path::Path,
    connections: u32,
) -> Load {
    run_wrk(base, cookie, Some(script), connections)
}

fn run_wrk(
    url: &str,
    cookie: Option<&str>,
    script: Option<&std::path::Path>,
    connections: u32,
) -> Load {
    let mut command = std::process::Command::new("wrk");
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    command.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{}s", current().load_seconds),
        "--latency",
    ]);
    if let Some(cookie) = cookie {
        command.args(["-H", &format!("Cookie: {cookie}")]);
    }
    let output = command
        .arg(url)
        .output()
        .expect("wrk (Debian package) runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        !text.contains("Non-2xx"),
        "every answer must succeed:\n{text}"
    );
    let p99 = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("99%"))
        .and_then(|rest| parse_duration_ms(rest.trim()))
        .expect("a 99th percentile");
    let rps = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rest| rest.trim().parse::<f64>().ok())
        .expect("a request rate");
    Load {
        p99_ms: p99,
        requests_per_second: rps,
    }
}

fn resident_kib() -> u64 {
    carnet_testkit::proc_status_kib("self", "VmRSS:").unwrap_or(0)
}

/// This process's largest resident size, sampled every 50 ms while it runs.
struct PeakSampler {
    sampling: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl PeakSampler {
    fn start() -> Self {
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let task = {
            let sampling = sampling.clone();
            tokio::spawn(async move {
                let mut peak = 0;
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(resident_kib());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                peak
            })
        };
        Self { sampling, task }
    }

    /// Stops sampling; the largest sample, in KiB.
    async fn peak_kib(self) -> u64 {
        self.sampling
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.task.await.expect("sampler")
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The application and the baseline routes behind the real accept loop, with a holder
/// signed in (professional number validated, PIN unlocked) and one patient.
struct Bench {
    test: crate::support::TestApp,
    base: String,
    practice: String,
    holder: String,
    id: String,
    record_uri: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<hyper_util::server::graceful::GracefulShutdown>,
    _plain_dir: Option<tempfile::TempDir>,
}

async fn bench() -> Option<Bench> {
    scale_and_wrk()?;
    let test = test_app(bench_settings()).await;
    let signed_in = SignedIn::new(&test).await;

    // The baselines: the same identity, in clear, in tables of the same database.
    let database = test.dir.path().join("db.sqlite3");
    // Connected as Carnet's own pool (same pragmas and page cache, no ping before each
    // use), so the two sides differ only by what Carnet does.
    let pool = carnet_store::sqlite_pool_options()
        .connect_with(carnet_store::sqlite_connect_options(&database))
        .await
        .expect("baseline pool");
    // The record, then the patients the import and search baselines fill.
    let tables = signed_in.plain_table_sql()
        + "CREATE TABLE bench_plain_patients (id INTEGER PRIMARY KEY,
               birth_prefix TEXT NOT NULL, used_prefix TEXT NOT NULL, body TEXT NOT NULL);
           CREATE INDEX bench_plain_birth ON bench_plain_patients (birth_prefix);
           CREATE INDEX bench_plain_used ON bench_plain_patients (used_prefix);";
    sqlx::raw_sql(sqlx::AssertSqlSafe(tables))
        .execute(&pool)
        .await
        .expect("baseline tables");
    let plain_dir = tempfile::tempdir().expect("baseline files");
    let plain = axum::Router::new()
        .route("/bench/plain/{id}", get(plain_record))
        .route(
            "/bench/plain-documents/{name}",
            post(plain_upload).get(plain_download),
        )
        .route("/bench/plain-import", post(plain_import))
        .route("/bench/plain-search", get(plain_search))
        .with_state(Plain {
            pool,
            dir: plain_dir.path().to_path_buf(),
        });
    Some(Bench::serve(test, signed_in, plain, Some(plain_dir)).await)
}

/// The benchmarks run at all (`CARNET_BENCH` set), and wrk is there.
fn scale_and_wrk() -> Option<()> {
    if scale().is_none() {
        println!("CARNET_BENCH is not set (full or smoke): benchmark skipped");
        return None;
    }
    assert!(
        std::process::Command::new("wrk").arg("-v").output().is_ok(),
        "the benchmarks need wrk (apt-get install wrk)"
    );
    Some(())
}

fn bench_settings() -> HttpSettings {
    HttpSettings {
        document_max_bytes: 64 * 1024 * 1024,
        // A 20,000-row import takes longer than the default 30 s (measured; reported).
        request_timeout: Duration::from_mins(5),
        ..HttpSettings::default()
    }
}

/// A holder signed in (professional number validated, PIN unlocked), one patient, and
/// that patient's record as Carnet returns it.
struct SignedIn {
    practice: String,
    holder: String,
    id: String,
    record_uri: String,
    record: String,
}

impl SignedIn {
    async fn new(test: &crate::support::TestApp) -> Self {
        let (practice, session, id) = crate::patients::holder_with_patient(test).await;
        // The whole Cookie header a browser would send: session and device cookies.
        let holder = crate::auth::request("GET", "/", Some(&session), None)
            .headers()
            .get("cookie")
            .expect("cookies")
            .to_str()
            .expect("ASCII")
            .to_owned();
        let record_uri = format!("/api/v1/practices/{practice}/patients/{id}");
        let (status, record) = call(test, "GET", &record_uri, &session, None).await;
        assert_eq!(status, axum::http::StatusCode::OK, "{record}");
        Self {
            practice,
            holder,
            id,
            record_uri,
            record: record.to_string(),
        }
    }

    /// The baseline table with the patient's record in clear, as SQL both backends run
    /// (string literals with their quotes doubled).
    fn plain_table_sql(&self) -> String {
        let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
        format!(
            "CREATE TABLE bench_plain (id TEXT PRIMARY KEY, body TEXT NOT NULL);
             INSERT INTO bench_plain (id, body) VALUES ({}, {});",
            literal(&self.id),
            literal(&self.record)
        )
    }
}

impl Bench {
    /// Carnet's router and the baseline routes behind the real accept loop.
    async fn serve(
        test: crate::support::TestApp,
        signed_in: SignedIn,
        plain: axum::Router,
        plain_dir: Option<tempfile::TempDir>,
    ) -> Self {
        // The record-read baseline a second time behind the layers every response of the
        // server passes through (security headers, request id, trace span, timeout), but
        // none of the session, CSRF or sign-in limiter middleware.
        let layered = carnet_http::with_middleware(plain.clone(), &test.state.settings);
        let app = carnet_http::app(test.state.clone())
            .merge(plain)
            .nest("/bench/layered", layered);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(carnet_http::serve::accept_until(
            listener,
            None,
            app,
            (*test.state.services).clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            test,
            base,
            practice: signed_in.practice,
            holder: signed_in.holder,
            id: signed_in.id,
            record_uri: signed_in.record_uri,
            stop,
            server,
            _plain_dir: plain_dir,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        drop(self.test);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_record_read_and_documents_over_http() {
    let Some(bench) = bench().await else { return };
    let base = bench.base.clone();
    record_read_load(&base, &bench.id, &bench.record_uri, &bench.holder).await;
    document_throughput(
        &base,
        &format!("{base}{}/documents", bench.record_uri),
        &bench.holder,
    )
    .await;
    bench.stop().await;
}

/// The record read on PostgreSQL, the hosts' backend: the same measure, Carnet on a
/// fresh schema as its own role (row-level security in force), the baseline a table of
/// that schema read through a pool of the same size. Memory is this process's only (the
/// database server's is not counted). Runs when `CARNET_TEST_POSTGRES_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_record_read_on_postgresql_over_http() {
    if scale_and_wrk().is_none() {
        return;
    }
    let Some((test, url, schema)) = crate::support::test_app_on_postgres(bench_settings()).await
    else {
        println!("record read on PostgreSQL: DID NOT RUN (set CARNET_TEST_POSTGRES_URL)");
        return;
    };
    let signed_in = SignedIn::new(&test).await;
    let options = carnet_store::postgres_options_in_schema(&url, &schema)
        .expect("URL")
        .username(crate::support::APP_ROLE);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await
        .expect("baseline pool");
    sqlx::raw_sql(sqlx::AssertSqlSafe(signed_in.plain_table_sql()))
        .execute(&pool)
        .await
        .expect("baseline record");
    let durability: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')",
    )
    .fetch_all(&pool)
    .await
    .expect("settings");
    let plain = axum::Router::new()
        .route("/bench/plain/{id}", get(plain_record_postgres))
        .with_state(pool.clone());
    let store = test.store.clone();
    let bench = Bench::serve(test, signed_in, plain, None).await;
    println!("on PostgreSQL (server settings {durability:?}):");
    record_read_load(&bench.base, &bench.id, &bench.record_uri, &bench.holder).await;
    bench.stop().await;
    pool.close().await;
    crate::support::drop_postgres_schema(&store, &url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_import_and_search_over_http() {
    let Some(bench) = bench().await else { return };
    let client = reqwest::Client::new();
    let imports = format!(
        "{}/api/v1/practices/{}/imports?format=csv",
        bench.base, bench.practice
    );
    println!(
        "import, {} rows per file, rows per CPU-second of this process \
         (target: Carnet >= 0.75x plaintext):",
        current().import_rows
    );
    let mut ratios = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    for round in 0..current().imports {
        let (csv, names) = synthetic_csv(round);
        prefixes.extend(names);
        let (plain_cpu, plain_wall) = measure(|| async {
            let response = client
                .post(format!("{}/bench/plain-import", bench.base))
                .body(csv.clone())
                .send()
                .await
                .expect("plain import");
            assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        })
        .await;
        let (carnet_cpu, carnet_wall) = measure(|| async {
            let response = client
                .post(&imports)
                .header("cookie", &bench.holder)
                .header("content-type", "text/csv")
                .body(csv.clone())
                .send()
                .await
                .expect("import");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, reqwest::StatusCode::CREATED, "{text}");
        })
        .await;
        let rows = current().import_rows as f64;
        let ratio = (rows / carnet_cpu) / (rows / plain_cpu);
        println!(
            "  pair {}: plaintext {:.0} rows/CPU-s ({:.1} s), Carnet {:.0} rows/CPU-s ({:.1} s) \
             | ratio {ratio:.2}",
            round + 1,
            rows / plain_cpu,
            plain_wall,
            rows / carnet_cpu,
            carnet_wall
        );
        ratios.push(ratio);
    }
    println!("  median ratio {:.2}", median(&mut ratios));
    search_load(&bench, &prefixes).await;
    bench.stop().await;
}

/// CPU seconds of this process (user + system), from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// (CPU seconds of this process, wall seconds) spent in `work`.
async fn measure<F, Fut>(work: F) -> (f64, f64)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    work().await;
    (process_cpu_seconds() - cpu, started.elapsed().as_secs_f64())
}

/// A CSV export of `Scale::import_rows` synthetic patients (names from random syllables, so
/// about 720 different 3-letter prefixes), and the search term of each row.
fn synthetic_csv(round: usize) -> (String, Vec<String>) {
    const CONSONANTS: &[u8] = b"BCDFGLMNPRST";
    const VOWELS: &[u8] = b"AEIOU";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ (round as u64 + 1);
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % bound as u64).unwrap_or(0)
    };
    let mut csv = carnet_domain::CSV_COLUMNS.join(";");
    csv.push('\n');
    let mut prefixes = Vec::with_capacity(current().import_rows);
    for _ in 0..current().import_rows {
        let mut name = String::new();
        for _ in 0..3 {
            name.push(char::from(CONSONANTS[next(CONSONANTS.len())]));
            name.push(char::from(VOWELS[next(VOWELS.len())]));
        }
        name.push(char::from(CONSONANTS[next(CONSONANTS.len())]));
        let first = ["Anne", "Paul", "Marie", "Louis", "Jeanne", "Pierre"][next(6)];
        let day = 1 + next(28);
        let month = 1 + next(12);
        let year = 1930 + next(80);
        let sex = if next(2) == 0 { "F" } else { "M" };
        prefixes.push(name[..3].to_owned());
        let _ = writeln!(
            csv,
            "{name};;{first};;{year}-{month:02}-{day:02};{sex};;;PROV;\
             12 rue des Lilas 17000 La Rochelle;0612345678;;;"
        );
    }
    (csv, prefixes)
}

/// The record-read load, with the process's memory sampled meanwhile.
async fn record_read_load(base: &str, id: &str, record_uri: &str, holder: &str) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = resident_kib();
    let sampler = PeakSampler::start();
    let mut p99_ratios = Vec::new();
    let mut throughput_ratios = Vec::new();
    let mut layered_p99_ratios = Vec::new();
    let mut layered_throughput_ratios = Vec::new();
    let mut carnet_p99 = Vec::new();
    println!(
        "record read, {CONNECTIONS} connections, {} s each:",
        current().load_seconds
    );
    for pair in 1..=current().pairs {
        let plain_url = format!("{base}/bench/plain/{id}");
        let a = tokio::task::spawn_blocking(move || wrk(&plain_url, None))
            .await
            .expect("wrk");
        let layered_url = format!("{base}/bench/layered/bench/plain/{id}");
        let layered = tokio::task::spawn_blocking(move || wrk(&layered_url, None))
            .await
            .expect("wrk");
        let url = format!("{base}{record_uri}");
        let cookie = holder.to_owned();
        let cpu = process_cpu_seconds();
        let b = tokio::task::spawn_blocking(move || wrk(&url, Some(&cookie)))
            .await
            .expect("wrk");
        let b_cpu_ms = (process_cpu_seconds() - cpu) * 1000.0
            / (b.requests_per_second * f64::from(current().load_seconds));
        println!(
            "  pair {pair}: plaintext p99 {:.2} ms, {:.0} req/s | plaintext behind the common \
             layers p99 {:.2} ms, {:.0} req/s | Carnet p99 {:.2} ms, {:.0} req/s \
             ({b_cpu_ms:.2} ms CPU/request) | p99 ratio {:.2} ({:.2} to the layered), \
             throughput ratio {:.2} ({:.2} to the layered)",
            a.p99_ms,
            a.requests_per_second,
            layered.p99_ms,
            layered.requests_per_second,
            b.p99_ms,
            b.requests_per_second,
            b.p99_ms / a.p99_ms,
            b.p99_ms / layered.p99_ms,
            b.requests_per_second / a.requests_per_second,
            b.requests_per_second / layered.requests_per_second,
        );
        p99_ratios.push(b.p99_ms / a.p99_ms);
        throughput_ratios.push(b.requests_per_second / a.requests_per_second);
        layered_p99_ratios.push(b.p99_ms / layered.p99_ms);
        layered_throughput_ratios.push(b.requests_per_second / layered.requests_per_second);
        carnet_p99.push(b.p99_ms);
    }
    let peak_kib = sampler.peak_kib().await;
    println!(
        "  median: p99 ratio {:.2} (target <= 2), Carnet p99 {:.2} ms (target <= 15), \
         throughput ratio {:.2} (target >= 0.5)",
        median(&mut p99_ratios),
        median(&mut carnet_p99),
        median(&mut throughput_ratios)
    );
    println!(
        "  against the plaintext read behind the common layers: p99 ratio {:.2}, \
         throughput ratio {:.2}",
        median(&mut layered_p99_ratios),
        median(&mut layered_throughput_ratios)
    );
    println!(
        "memory (this process): idle {:.1} MB, peak under load {:.1} MB",
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
}

/// Uploads and downloads of 1, 10 and 50 MB, plain then Carnet.
async fn document_throughput(base: &str, documents_uri: &str, holder: &str) {
    let client = reqwest::Client::new();
    println!(
        "documents, one request at a time, each timed over about {} MB of requests \
         (MB/s; ratio Carnet / plain, target >= 0.8):",
        current().document_total_mb
    );
    for &size_mb in current().document_mb {
        let body = crate::documents::pdf("banc", size_mb * 1024 * 1024);
        // A 1 MB request takes a few milliseconds: one alone is mostly noise.
        let repeats = (current().document_total_mb / size_mb).max(1);
        let mut upload_ratios = Vec::new();
        let mut download_ratios = Vec::new();
        for pair in 0..current().pairs {
            let plain_uri =
                |n: usize| format!("{base}/bench/plain-documents/{size_mb}-{pair}-{n}.pdf");
            let started = Instant::now();
            for n in 0..repeats {
                let response = client
                    .post(plain_uri(n))
                    .body(body.clone())
                    .send()
                    .await
                    .expect("plain upload");
                assert_eq!(response.status(), reqwest::StatusCode::CREATED);
            }
            let plain_up = started.elapsed();
            let started = Instant::now();
            let mut document = String::new();
            for _ in 0..repeats {
                let response = client
                    .post(format!("{documents_uri}?name=bilan.pdf"))
                    .header("cookie", holder)
                    .header("content-type", "application/pdf")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("upload");
                assert_eq!(response.status(), reqwest::StatusCode::CREATED);
                let created: Value = response.json().await.expect("document");
                created["id"]
                    .as_str()
                    .expect("id")
                    .clone_into(&mut document);
            }
            let carnet_up = started.elapsed();

            let started = Instant::now();
            for n in 0..repeats {
                let bytes = client
                    .get(plain_uri(n))
                    .send()
                    .await
                    .expect("plain download")
                    .bytes()
                    .await
                    .expect("bytes");
                // The same check as Carnet's side below, so both are timed doing it.
                assert!(bytes == body, "the plain file comes back byte for byte");
            }
            let plain_down = started.elapsed();
            let started = Instant::now();
            for _ in 0..repeats {
                let bytes = client
                    .get(format!("{documents_uri}/{document}/content"))
                    .header("cookie", holder)
                    .send()
                    .await
                    .expect("download")
                    .bytes()
                    .await
                    .expect("bytes");
                assert!(bytes == body, "the document comes back byte for byte");
            }
            let carnet_down = started.elapsed();
            upload_ratios.push(plain_up.as_secs_f64() / carnet_up.as_secs_f64());
            download_ratios.push(plain_down.as_secs_f64() / carnet_down.as_secs_f64());
            let rate = |elapsed: Duration| (size_mb * repeats) as f64 / elapsed.as_secs_f64();
            println!(
                "  {size_mb} MB x {repeats}, pair {}: upload plain {:.0} / Carnet {:.0}; \
                 download plain {:.0} / Carnet {:.0}",
                pair + 1,
                rate(plain_up),
                rate(carnet_up),
                rate(plain_down),
                rate(carnet_down)
            );
        }
        println!(
            "  {size_mb} MB median ratio: upload {:.2}, download {:.2}",
            median(&mut upload_ratios),
            median(&mut download_ratios)
        );
    }
}

/// Name-prefix searches over the imported patients: the terms are the prefixes of the
/// patients themselves (a frequent prefix is searched as often as it occurs), cycled by a
/// wrk script.
async fn search_load(bench: &Bench, prefixes: &[String]) {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for prefix in prefixes {
        *counts.entry(prefix.as_str()).or_default() += 1;
    }
    let largest = counts.values().max().copied().unwrap_or(0);
    println!(
        "search by 3-letter name prefix over {} patients ({} prefixes, {:.0} patients per prefix \
         on average, {largest} at most), {} s each:",
        prefixes.len() + 1,
        counts.len(),
        prefixes.len() as f64 / counts.len() as f64,
        current().load_seconds
    );
    let terms: Vec<&String> = prefixes.iter().step_by(50).collect();
    let script = |path: &dyn Fn(&str) -> String| {
        let mut lua = String::from("local paths = {\n");
        for term in &terms {
            let _ = writeln!(lua, "  \"{}\",", path(term));
        }
        lua.push_str(
            "}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  \
             return wrk.format(nil, paths[(i % #paths) + 1])\nend\n",
        );
        let file = tempfile::NamedTempFile::new().expect("script");
        std::fs::write(file.path(), lua).expect("write script");
        file
    };
    let plain_script = script(&|term| format!("/bench/plain-search?name={term}"));
    let practice = bench.practice.clone();
    let carnet_script =
        script(&|term| format!("/api/v1/practices/{practice}/patients?name={term}"));
    let before_kib = resident_kib();
    let sampler = PeakSampler::start();
    // At 32 connections (a host's load), and at one (a person typing in the search box).
    for connections in [CONNECTIONS, 1] {
        println!("  {connections} connection(s):");
        let mut p99_ratios = Vec::new();
        let mut cpu_ratios = Vec::new();
        let mut carnet_p99 = Vec::new();
        for pair in 1..=current().pairs {
            let url = bench.base.clone();
            let path = plain_script.path().to_owned();
            let cpu = process_cpu_seconds();
            let a = tokio::task::spawn_blocking(move || wrk_script(&url, None, &path, connections))
                .await
                .expect("wrk");
            let a_cpu = (process_cpu_seconds() - cpu)
                / (a.requests_per_second * f64::from(current().load_seconds));
            let url = bench.base.clone();
            let path = carnet_script.path().to_owned();
            let cookie = bench.holder.clone();
            let cpu = process_cpu_seconds();
            let b = tokio::task::spawn_blocking(move || {
                wrk_script(&url, Some(&cookie), &path, connections)
            })
            .await
            .expect("wrk");
            let b_cpu = (process_cpu_seconds() - cpu)
                / (b.requests_per_second * f64::from(current().load_seconds));
            println!(
                "    pair {pair}: plaintext p99 {:.2} ms, {:.0} req/s, {:.3} ms CPU/search | \
                 Carnet p99 {:.2} ms, {:.0} req/s, {:.3} ms CPU/search | CPU ratio {:.2}",
                a.p99_ms,
                a.requests_per_second,
                a_cpu * 1000.0,
                b.p99_ms,
                b.requests_per_second,
                b_cpu * 1000.0,
                b_cpu / a_cpu
            );
            p99_ratios.push(b.p99_ms / a.p99_ms);
            cpu_ratios.push(b_cpu / a_cpu);
            carnet_p99.push(b.p99_ms);
        }
        println!(
            "    median: CPU ratio {:.2} (target <= 1.4), Carnet p99 {:.2} ms (target <= 20), \
             p99 ratio {:.2}",
            median(&mut cpu_ratios),
            median(&mut carnet_p99),
            median(&mut p99_ratios)
        );
    }
    println!(
        "  memory (this process, both sides' pools): {:.1} MB before the searches, peak {:.1} MB",
        before_kib as f64 / 1024.0,
        sampler.peak_kib().await as f64 / 1024.0
    );
}
