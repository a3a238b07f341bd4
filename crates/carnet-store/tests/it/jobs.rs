use carnet_domain::Timestamp;
use carnet_store::{BackupRunRecord, Store};

use crate::support::conformance;

conformance!(
    one_holder_at_a_time_holds_a_lease,
    backup_runs_give_the_latest_and_the_latest_success,
);

fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis)
}

async fn one_holder_at_a_time_holds_a_lease(store: &Store) {
    assert!(
        store
            .take_lease("backup", "node-a", at(0), at(100))
            .await
            .expect("take")
    );
    assert!(
        !store
            .take_lease("backup", "node-b", at(50), at(150))
            .await
            .expect("take"),
        "held by another node until it expires"
    );
    assert!(
        store
            .take_lease("backup", "node-a", at(60), at(160))
            .await
            .expect("renew"),
        "the holder renews"
    );
    assert!(
        !store
            .take_lease("backup", "node-b", at(159), at(259))
            .await
            .expect("take")
    );
    assert!(
        store
            .take_lease("backup", "node-b", at(160), at(260))
            .await
            .expect("take"),
        "an expired lease goes to the next node"
    );
    assert!(
        store
            .take_lease("other-job", "node-a", at(160), at(260))
            .await
            .expect("take")
    );
    store
        .release_lease("backup", "node-a")
        .await
        .expect("release");
    assert!(
        !store
            .take_lease("backup", "node-a", at(170), at(270))
            .await
            .expect("take"),
        "releasing a lease one does not hold changes nothing"
    );
    store
        .release_lease("backup", "node-b")
        .await
        .expect("release");
    assert!(
        store
            .take_lease("backup", "node-a", at(170), at(270))
            .await
            .expect("take")
    );
}

fn run(target: &str, kind: &str, at: i64, ok: bool) -> BackupRunRecord {
    BackupRunRecord {
        target: target.into(),
        kind: kind.into(),
        started_at: at,
        finished_at: at + 5,
        ok,
        snapshot: ok.then(|| format!("snap-{at}")),
        bytes_added: ok.then_some(at * 10),
        message: if ok { "ok".into() } else { "échec".into() },
    }
}

async fn backup_runs_give_the_latest_and_the_latest_success(store: &Store) {
    for record in [
        run("disque", "backup", 1, true),
        run("disque", "backup", 2, true),
        run("disque", "backup", 3, false),
        run("disque", "check", 4, true),
        run("hors-site", "backup", 5, true),
    ] {
        store.record_backup_run(&record).await.expect("record");
    }
    let latest = store.latest_backup_runs().await.expect("latest");
    assert_eq!(
        latest,
        vec![
            run("disque", "backup", 2, true),
            run("disque", "backup", 3, false),
            run("disque", "check", 4, true),
            run("hors-site", "backup", 5, true),
        ]
    );
}
