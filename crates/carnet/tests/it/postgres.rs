//! The real binary on PostgreSQL (a fresh schema per test), when
//! `CARNET_TEST_POSTGRES_URL` is set; with `CARNET_REQUIRE_POSTGRES=1` its absence fails.

use crate::support::{Instance, assert_refused, http_client, stderr_of, stdout_of};

/// The role the binary runs as on PostgreSQL: not the test URL's superuser, so the care
/// records' row-level security applies (migration 0014) as it does for an operator who
/// follows the documentation. It may create databases (the backup's restore drill) and
/// schemas (a restore from a dump).
const APP_ROLE: &str = "carnet_app_test";

/// A fresh schema owned by [`APP_ROLE`] and the database URL (as that role) confined to
/// it, or `None` without PostgreSQL.
#[expect(
    clippy::print_stderr,
    reason = "tells that the PostgreSQL case did not run"
)]
async fn fresh_schema(name: &str) -> Option<String> {
    let Some(url) = std::env::var("CARNET_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("CARNET_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "CARNET_REQUIRE_POSTGRES=1 but CARNET_TEST_POSTGRES_URL is not set"
        );
        eprintln!("PostgreSQL end-to-end test {name}: DID NOT RUN (set CARNET_TEST_POSTGRES_URL)");
        return None;
    };
    let schema = format!("carnet_e2e_{name}_{}", std::process::id());
    let mut app = url::Url::parse(&url).expect("URL");
    let database = app.path().trim_start_matches('/').to_owned();
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    // One test at a time: two sessions altering the same role or granting on the same
    // database at once make one fail ("tuple concurrently updated").
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT pg_advisory_xact_lock(2026120701); {}; ALTER ROLE {APP_ROLE} CREATEDB; \
         GRANT CREATE ON DATABASE \"{database}\" TO {APP_ROLE}; COMMIT",
        carnet_store::owned_schema_sql(APP_ROLE, &schema)
    )))
    .execute(&pool)
    .await
    .expect("schema");
    pool.close().await;
    app.set_username(APP_ROLE).expect("a user name");
    app.set_password(None).expect("no password");
    let app = app.to_string();
    let separator = if app.contains('?') { '&' } else { '?' };
    Some(format!(
        "{app}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// Drops the schema [`fresh_schema`] made for `name` (once the binary has stopped).
async fn drop_schema(name: &str) {
    let url = std::env::var("CARNET_TEST_POSTGRES_URL").expect("url");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS carnet_e2e_{name}_{} CASCADE",
        std::process::id()
    )))
    .execute(&pool)
    .await
    .expect("drop schema");
    pool.close().await;
}

#[tokio::test]
async fn the_binary_runs_on_postgresql_with_its_audit_trail() {
    let Some(database_url) = fresh_schema("serve").await else {
        return;
    };
    let instance = Instance::new();
    let run = |args: &[&str]| {
        instance
            .command()
            .args(args)
            .env("CARNET_DATABASE_URL", &database_url)
            .output()
            .expect("run")
    };
    let migrated = run(&["migrate"]);
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    assert!(
        !instance.data_dir().join("carnet.sqlite3").exists(),
        "no SQLite file on PostgreSQL"
    );
    let created = run(&[
        "practice",
        "create",
        "--name",
        "Cabinet PG",
        "--address",
        "2 rue Neuve, 67000 Strasbourg",
        "--profession",
        "physiotherapist",
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    assert!(stdout_of(&run(&["practice", "list"])).contains("Cabinet PG"));
    assert!(run(&["audit", "checkpoint"]).status.success());
    let verified = run(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout_of(&verified));
    assert!(
        stdout_of(&verified).contains("intact   instance  1 entrée(s), 1 point(s) de contrôle")
    );

    let server = instance.serve_with(|command| {
        command.env("CARNET_DATABASE_URL", &database_url);
    });
    let ready = http_client()
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(ready.status(), 200);
    drop(server);

    std::fs::remove_file(instance.data_dir().join("instance.key")).expect("remove key");
    let refused = run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_refused(&refused, "fichier de clé de l'instance");
    drop_schema("serve").await;
}

/// Every row of every table of `schema` (but the backup job's own), as text.
async fn schema_rows(url: &str, schema: &str) -> Vec<(String, Vec<String>)> {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 \
         AND table_name NOT IN ('backup_runs', 'job_leases') ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&pool)
    .await
    .expect("tables");
    let mut all = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT r::text FROM {schema}.\"{table}\" r ORDER BY 1"
        )))
        .fetch_all(&pool)
        .await
        .expect("rows");
        all.push((table, rows));
    }
    pool.close().await;
    all
}

/// The first run's drill loaded the dump into a scratch database, opened a record in
/// it, and dropped it.
async fn assert_drilled_on_a_scratch_database(said: &str, base: &str) {
    assert!(
        said.contains("chargée dans une base temporaire")
            && said.contains("tables aux bons comptes")
            && said.contains("journal d'audit intact")
            && said.contains("1 dossier(s) ouverts avec les clés"),
        "the first run drills on a scratch database: {said}"
    );
    let tables: usize = said
        .split(" tables aux bons comptes")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
        .expect("a number of tables");
    assert!(tables > 20, "every table compared: {said}");
    let pool = sqlx::PgPool::connect(base).await.expect("connect");
    let leftovers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname LIKE 'carnet_drill_%'")
            .fetch_one(&pool)
            .await
            .expect("databases");
    pool.close().await;
    assert_eq!(leftovers, 0, "the drill's scratch database is dropped");
}

#[tokio::test]
async fn a_postgresql_instance_comes_back_from_its_dump_in_a_backup() {
    let Some(database_url) = fresh_schema("backup").await else {
        return;
    };
    let schema = format!("carnet_e2e_backup_{}", std::process::id());
    let instance = Instance::new();
    let repository = instance.dir.path().join("depot");
    let targets = format!("disque={}", repository.display());
    let run = |args: &[&str]| {
        instance
            .command()
            .args(args)
            .env("CARNET_DATABASE_URL", &database_url)
            .env("CARNET_BACKUP_TARGETS", &targets)
            .output()
            .expect("run")
    };
    assert!(run(&["migrate"]).status.success());
    let created = run(&[
        "practice",
        "create",
        "--name",
        "Cabinet PG",
        "--address",
        "2 rue Neuve, 67000 Strasbourg",
        "--profession",
        "physiotherapist",
    ]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    let practice = stdout_of(&created).trim().to_owned();
    let export = instance.dir.path().join("export.csv");
    std::fs::write(
        &export,
        format!(
            "{}\nLefort;;Anne;;1961-02-28;F;;;;;;;;\n",
            carnet_domain::CSV_COLUMNS.join(";")
        ),
    )
    .expect("export");
    let imported = run(&[
        "import",
        "--practice",
        &practice,
        export.to_str().expect("UTF-8"),
    ]);
    assert!(imported.status.success(), "{}", stderr_of(&imported));
    let backed_up = run(&["backup", "run"]);
    assert!(
        backed_up.status.success(),
        "{}{}",
        stdout_of(&backed_up),
        stderr_of(&backed_up)
    );
    let base = std::env::var("CARNET_TEST_POSTGRES_URL").expect("url");
    assert_drilled_on_a_scratch_database(&stdout_of(&backed_up), &base).await;
    let before = schema_rows(&base, &schema).await;
    assert!(
        before
            .iter()
            .any(|(table, rows)| table == "practices" && rows.len() == 1)
    );

    // The database and the data directory are lost.
    drop_schema("backup").await;
    crate::backup::lose_the_disk_and_put_the_kit_back(&instance);

    let data = instance.data_dir();
    let restored = run(&[
        "restore",
        "--target",
        "disque",
        "--to",
        data.to_str().expect("utf-8"),
    ]);
    assert!(restored.status.success(), "{}", stderr_of(&restored));
    assert!(stdout_of(&restored).contains("pg_restore"));
    let pg_restore = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &database_url])
        .arg(data.join("carnet.pgdump"))
        .output()
        .expect("pg_restore (postgresql-client)");
    assert!(
        pg_restore.status.success(),
        "{}",
        String::from_utf8_lossy(&pg_restore.stderr)
    );
    crate::backup::assert_rows_back(schema_rows(&base, &schema).await, before);
    let verified = run(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout_of(&verified));
    let server = instance.serve_with(|command| {
        command.env("CARNET_DATABASE_URL", &database_url);
    });
    let ready = http_client()
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(ready.status(), 200);
    drop(server);
    drop_schema("backup").await;
}
