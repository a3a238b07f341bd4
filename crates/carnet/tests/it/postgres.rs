//! The real binary on PostgreSQL (a fresh schema per test), when
//! `CARNET_TEST_POSTGRES_URL` is set; with `CARNET_REQUIRE_POSTGRES=1` its absence fails.

use crate::support::{Instance, assert_refused, http_client, stderr_of, stdout_of};

/// A fresh schema and the database URL confined to it, or `None` without PostgreSQL.
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
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    )))
    .execute(&pool)
    .await
    .expect("schema");
    pool.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
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
}
