//! Backends for the conformance suite.

use carnet_store::Store;

/// A store on a fresh backend, and what must live as long as it.
pub struct Harness {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, sqlx_admin::Admin)>,
    /// How the store connects (PostgreSQL): a test can open a raw connection as Carnet.
    pub app_options: Option<sqlx::postgres::PgConnectOptions>,
}

impl Harness {
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((schema, admin)) = self.schema {
            admin.drop_schema(&schema).await;
        }
    }
}

pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_sqlite(&dir.path().join("carnet.sqlite3"))
        .await
        .expect("open SQLite");
    store
        .migrate(Some(dir.path()))
        .await
        .expect("migrate SQLite");
    Harness {
        store,
        _dir: Some(dir),
        schema: None,
        app_options: None,
    }
}

/// The PostgreSQL URL for tests, or `None` (then the PostgreSQL half does not run).
pub fn postgres_url() -> Option<String> {
    std::env::var("CARNET_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

pub fn postgres_required() -> bool {
    std::env::var("CARNET_REQUIRE_POSTGRES").is_ok_and(|value| value == "1")
}

/// The role the PostgreSQL half runs as: no superuser, no BYPASSRLS, owner of its test
/// schema (created once per server, idempotently: tests run in parallel processes).
pub const APP_ROLE: &str = "carnet_app_test";

static NEXT_SCHEMA: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub async fn postgres() -> Option<Harness> {
    let Some(url) = postgres_url() else {
        assert!(
            !postgres_required(),
            "CARNET_REQUIRE_POSTGRES=1 but CARNET_TEST_POSTGRES_URL is not set"
        );
        return None;
    };
    let admin = sqlx_admin::Admin::connect(&url).await;
    // The process id and a counter name the schema uniquely among running tests (under
    // nextest or `cargo test`); a leftover from a crashed earlier run is replaced.
    let serial = NEXT_SCHEMA.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let schema = format!("carnet_test_{}_{serial}", std::process::id());
    admin.create_schema(&schema).await;
    // Carnet runs as the schema's owner, not as the superuser of the test URL: row-level
    // security (migration 0014) never applies to a superuser, and the suite must see it.
    let options = carnet_store::postgres_options_in_schema(&url, &schema)
        .expect("URL parses")
        .username(APP_ROLE);
    let store = Store::connect_postgres_with(options.clone())
        .await
        .expect("connect PostgreSQL");
    store.migrate(None).await.expect("migrate PostgreSQL");
    Some(Harness {
        store,
        _dir: None,
        schema: Some((schema, admin)),
        app_options: Some(options),
    })
}

/// Schema management on a separate connection pool.
mod sqlx_admin {
    pub struct Admin(sqlx::PgPool);

    impl Admin {
        pub async fn connect(url: &str) -> Self {
            Self(
                sqlx::PgPool::connect(url)
                    .await
                    .expect("connect PostgreSQL for schema management"),
            )
        }

        pub async fn create_schema(&self, schema: &str) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(carnet_store::owned_schema_sql(
                super::APP_ROLE,
                schema,
            )))
            .execute(&self.0)
            .await
            .expect("create schema");
        }

        pub async fn drop_schema(&self, schema: &str) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&self.0)
            .await
            .expect("drop schema");
            self.0.close().await;
        }
    }
}

/// Declares a conformance test: `$name` is an `async fn(&Store)` run on both backends.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let harness = crate::support::sqlite().await;
                    super::$name(&harness.store).await;
                    harness.finish().await;
                }

                #[tokio::test]
                async fn postgres() {
                    let Some(harness) = crate::support::postgres().await else {
                        return;
                    };
                    super::$name(&harness.store).await;
                    harness.finish().await;
                }
            }
        )*
    };
}
pub(crate) use conformance;

/// Says whether the PostgreSQL half of the suite runs (shown on every run by the
/// nextest configuration) and fails when it is required but not configured.
#[test]
fn postgres_half_ran() {
    let Some(_) = postgres_url() else {
        eprintln!(
            "PostgreSQL half of the storage conformance suite: DID NOT RUN \
             (set CARNET_TEST_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        assert!(
            !postgres_required(),
            "CARNET_REQUIRE_POSTGRES=1 but CARNET_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    eprintln!("PostgreSQL half of the storage conformance suite: RUN");
}
