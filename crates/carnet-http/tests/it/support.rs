use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use carnet_crypto::SystemRandom;
use carnet_domain::{ManualClock, Timestamp};
use carnet_http::{AppState, HttpSettings};
use carnet_service::{Actor, Services};
use carnet_store::Store;
use tower::ServiceExt as _;

pub struct TestApp {
    pub state: AppState,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

pub async fn test_app(settings: HttpSettings) -> TestApp {
    test_app_with_auth(settings, None).await
}

pub use carnet_testkit::S3Server;

/// A test application whose documents go to `blobs` (an S3 store, say).
pub async fn test_app_with_blobs(settings: HttpSettings, blobs: carnet_service::Blobs) -> TestApp {
    let mut test = test_app(settings).await;
    test.state.services = (*test.state.services).clone().with_blobs(blobs).into();
    test
}

/// A test application with these authentication settings (and a fresh instance key).
pub async fn test_app_with_auth(
    settings: HttpSettings,
    auth: Option<carnet_service::AuthSettings>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_sqlite(&dir.path().join("db.sqlite3"))
        .await
        .expect("open");
    store.migrate(None).await.expect("migrate");
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_795_429_020_000,
    )));
    let mut services = Services::new(store.clone(), clock.clone(), Arc::new(SystemRandom))
        .with_blobs(carnet_service::Blobs::local(&dir.path().join("blobs")).expect("blobs"));
    if let Some(auth) = auth {
        let root = carnet_crypto::KeyMaterial::generate(&SystemRandom).expect("key");
        services = services
            .with_auth(auth, &root)
            .expect("authentication settings");
    }
    TestApp {
        state: AppState::new(services, settings),
        store,
        clock,
        dir,
    }
}

/// The role the PostgreSQL test applications run as (see `carnet_store::owned_schema_sql`).
pub const APP_ROLE: &str = "carnet_app_test";

/// A test application on a fresh PostgreSQL schema (and its connection URL and schema),
/// when `CARNET_TEST_POSTGRES_URL` names a server; `None` otherwise (refused when
/// `CARNET_REQUIRE_POSTGRES=1`).
pub async fn test_app_on_postgres(settings: HttpSettings) -> Option<(TestApp, String, String)> {
    let url = std::env::var("CARNET_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let Some(url) = url else {
        assert!(
            std::env::var("CARNET_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "CARNET_REQUIRE_POSTGRES=1 but CARNET_TEST_POSTGRES_URL is not set"
        );
        return None;
    };
    let schema = format!("carnet_http_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("connect PostgreSQL");
    // Carnet runs as the schema's owner, not as the test URL's superuser, so row-level
    // security (migration 0014) applies as in production.
    sqlx::raw_sql(sqlx::AssertSqlSafe(carnet_store::owned_schema_sql(
        APP_ROLE, &schema,
    )))
    .execute(&admin)
    .await
    .expect("schema");
    admin.close().await;
    let options = carnet_store::postgres_options_in_schema(&url, &schema)
        .expect("URL")
        .username(APP_ROLE);
    let store = Store::connect_postgres_with(options)
        .await
        .expect("connect");
    store.migrate(None).await.expect("migrate");
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_795_429_020_000,
    )));
    let services = Services::new(store.clone(), clock.clone(), Arc::new(SystemRandom))
        .with_blobs(carnet_service::Blobs::local(&dir.path().join("blobs")).expect("blobs"));
    Some((
        TestApp {
            state: AppState::new(services, settings),
            store,
            clock,
            dir,
        },
        url,
        schema,
    ))
}

/// Closes `store` and drops its test schema (from [`test_app_on_postgres`]).
pub async fn drop_postgres_schema(store: &Store, url: &str, schema: &str) {
    store.close().await;
    let admin = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await
    .expect("drop schema");
    admin.close().await;
}

pub fn short_settings() -> HttpSettings {
    HttpSettings {
        https: false,
        body_limit_bytes: 4096,
        request_timeout: Duration::from_millis(200),
        ..HttpSettings::default()
    }
}

impl TestApp {
    /// The application as an anonymous visitor sees it.
    pub fn anonymous(&self) -> Router {
        carnet_http::app(self.state.clone())
    }

    /// The application with `actor` authenticated (what the accounts layer will provide).
    pub fn as_actor(&self, actor: Actor) -> Router {
        carnet_http::with_middleware(
            carnet_http::routes(self.state.clone()).layer(axum::Extension(actor)),
            &self.state.settings,
        )
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> (Response<Body>, Vec<u8>) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    (Response::from_parts(parts, Body::empty()), bytes.to_vec())
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

pub fn post_json(uri: &str, json: &serde_json::Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(json.to_string()))
        .expect("request")
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("JSON body")
}

/// Asserts the error envelope with `code`.
pub fn assert_envelope(bytes: &[u8], code: &str) {
    let body = json(bytes);
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
