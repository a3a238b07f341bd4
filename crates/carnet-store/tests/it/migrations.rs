use carnet_store::{BackendKind, Store};

use crate::support::conformance;

conformance!(a_migrated_store_is_current, migrating_twice_changes_nothing);

async fn a_migrated_store_is_current(store: &Store) {
    let status = store.migration_status().await.expect("status");
    assert!(status.is_current(), "{status:?}");
    assert_eq!(
        status.applied,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    );
    store.ping().await.expect("ping");
}

async fn migrating_twice_changes_nothing(store: &Store) {
    let copy = store.migrate(None).await.expect("second migrate");
    assert_eq!(copy, None, "nothing pending, so no copy and no change");
    assert!(store.migration_status().await.expect("status").is_current());
}

#[tokio::test]
async fn a_fresh_sqlite_database_is_migrated_without_a_copy_and_reports_pending_first() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_sqlite(&dir.path().join("db.sqlite3"))
        .await
        .expect("open");
    assert_eq!(store.kind(), BackendKind::Sqlite);
    let status = store.migration_status().await.expect("status");
    assert_eq!(
        status.pending,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    );
    assert!(!status.is_current());
    let copy = store
        .migrate(Some(&dir.path().join("copies")))
        .await
        .expect("migrate");
    assert_eq!(copy, None, "an empty database has nothing to protect");
}

#[tokio::test]
async fn an_existing_sqlite_database_is_copied_before_a_pending_migration() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("db.sqlite3");
    let store = Store::open_sqlite(&path).await.expect("open");
    store.migrate(None).await.expect("migrate");
    // Simulate a database left at an older version by forgetting the newest migration.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("side connection");
    sqlx::query("INSERT INTO instance_meta (key, value, created_at) VALUES ('canary', x'01', 1)")
        .execute(&pool)
        .await
        .expect("insert");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 1")
        .execute(&pool)
        .await
        .expect("forget");
    for table in [
        "professional_id_decisions",
        "members",
        "practices",
        "platform_admins",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&pool)
            .await
            .expect("drop");
    }
    sqlx::query("ALTER TABLE instance_meta RENAME TO instance_meta_old")
        .execute(&pool)
        .await
        .expect("rename");
    pool.close().await;

    let copies = dir.path().join("copies");
    let copy = store.migrate(Some(&copies)).await.expect("migrate again");
    let copy = copy.expect("a copy is taken before migrating a database that has data");
    assert!(copy.starts_with(&copies));
    let copy_pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", copy.display()))
        .await
        .expect("open the copy");
    let kept: Vec<u8> =
        sqlx::query_scalar("SELECT value FROM instance_meta_old WHERE key = 'canary'")
            .fetch_one(&copy_pool)
            .await
            .expect("the copy holds the data as it was before migrating");
    assert_eq!(kept, vec![1]);
}
