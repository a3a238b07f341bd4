use carnet_domain::{
    Address, AdminId, Member, MemberId, MemberName, Phone, Practice, PracticeId, PracticeName,
    Profession, ProfessionalId, ProfessionalIdState, ProfessionalIdStatus, Role, Rpps, Timestamp,
};
use carnet_store::{GroupCommitter, Store, StoreError, Tx};

use crate::support::conformance;

conformance!(
    practices_round_trip_in_creation_order,
    members_are_scoped_by_their_practice,
    decisions_are_appended_and_the_latest_decides,
    a_decision_for_a_member_of_another_practice_is_refused,
    instance_meta_is_written_once,
    instance_meta_is_replaced_only_from_the_value_read,
    decisions_cannot_be_updated_or_deleted_in_the_database,
    a_failing_job_alone_in_its_batch_leaves_nothing,
);

fn id(n: u64) -> [u8; 10] {
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&n.to_be_bytes());
    random
}

fn practice(n: u64, name: &str) -> Practice {
    Practice {
        id: PracticeId::new_v7(1_000 + n, &id(n)),
        name: PracticeName::parse(name).expect("valid"),
        address: Address::parse("3 rue des Lilas, 69003 Lyon").expect("valid"),
        profession: Profession::Nurse,
        created_at: Timestamp::from_unix_millis(1_000 + n as i64),
    }
}

fn member(n: u64, practice_id: PracticeId, role: Role) -> Member {
    let professional_id = role
        .requires_professional_id()
        .then(|| ProfessionalId::Rpps(Rpps::parse("10000005479").expect("valid")));
    Member {
        id: MemberId::new_v7(2_000 + n, &id(n)),
        practice_id,
        name: MemberName::parse(&format!("Membre {n}")).expect("valid"),
        role,
        phone: Phone::parse("0612345678").expect("valid"),
        professional_id,
        professional_id_state: ProfessionalIdState::Pending,
        created_at: Timestamp::from_unix_millis(2_000 + n as i64),
    }
}

async fn practices_round_trip_in_creation_order(store: &Store) {
    let second = practice(2, "Cabinet B");
    let first = practice(1, "Cabinet A");
    insert_practice(store, &second).await.expect("insert");
    insert_practice(store, &first).await.expect("insert");
    assert_eq!(
        store.list_practices().await.expect("list"),
        vec![first.clone(), second]
    );
    assert_eq!(
        store.practice(first.id).await.expect("get"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .practice(PracticeId::new_v7(9, &id(9)))
            .await
            .expect("get"),
        None
    );
    assert!(matches!(
        insert_practice(store, &first).await,
        Err(StoreError::Conflict)
    ));
}

async fn members_are_scoped_by_their_practice(store: &Store) {
    let a = practice(1, "Cabinet A");
    let b = practice(2, "Cabinet B");
    insert_practice(store, &a).await.expect("insert");
    insert_practice(store, &b).await.expect("insert");
    let holder = member(1, a.id, Role::Holder);
    let staff = member(2, a.id, Role::Staff);
    let other = member(3, b.id, Role::Professional);
    for m in [&holder, &staff, &other] {
        insert_member(store, m).await.expect("insert member");
    }
    assert_eq!(
        list_members(store, a.id).await.expect("list"),
        vec![holder.clone(), staff]
    );
    assert_eq!(
        list_members(store, b.id).await.expect("list"),
        vec![other.clone()]
    );
    assert_eq!(
        member_of(store, a.id, holder.id).await.expect("get"),
        Some(holder)
    );
    assert_eq!(
        member_of(store, a.id, other.id).await.expect("get"),
        None,
        "a member of practice B is invisible through practice A"
    );
    let orphan = member(4, PracticeId::new_v7(9, &id(9)), Role::Staff);
    assert!(matches!(
        insert_member(store, &orphan).await,
        Err(StoreError::MissingReference)
    ));
}

async fn decisions_are_appended_and_the_latest_decides(store: &Store) {
    let a = practice(1, "Cabinet A");
    insert_practice(store, &a).await.expect("insert");
    let pro = member(1, a.id, Role::Professional);
    insert_member(store, &pro).await.expect("insert");
    let admin = AdminId::new_v7(5, &id(5));
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_admin(admin, "Admin", Timestamp::from_unix_millis(5))
        .await
        .expect("admin");
    tx.commit().await.expect("commit");
    assert!(store.admin_exists(admin).await.expect("exists"));

    let rejected = ProfessionalIdState::Decided {
        status: ProfessionalIdStatus::Rejected,
        by: admin,
        at: Timestamp::from_unix_millis(10),
        reason: "Numéro introuvable dans l'Annuaire Santé".into(),
    };
    let validated = ProfessionalIdState::Decided {
        status: ProfessionalIdStatus::Validated,
        by: admin,
        at: Timestamp::from_unix_millis(20),
        reason: "Vérifié dans l'Annuaire Santé".into(),
    };
    append_decision(store, a.id, pro.id, &rejected)
        .await
        .expect("reject");
    let after_reject = member_of(store, a.id, pro.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(after_reject.professional_id_state, rejected);
    append_decision(store, a.id, pro.id, &validated)
        .await
        .expect("validate");
    let after_validate = member_of(store, a.id, pro.id)
        .await
        .expect("get")
        .expect("exists");
    assert!(after_validate.professional_id_state.is_validated());
    assert_eq!(
        history(store, a.id, pro.id).await.expect("history"),
        vec![rejected, validated],
        "the earlier decision is kept"
    );
    assert!(matches!(
        append_decision(store, a.id, pro.id, &ProfessionalIdState::Pending).await,
        Err(StoreError::Corrupt(_))
    ));
}

async fn a_decision_for_a_member_of_another_practice_is_refused(store: &Store) {
    let a = practice(1, "Cabinet A");
    let b = practice(2, "Cabinet B");
    insert_practice(store, &a).await.expect("insert");
    insert_practice(store, &b).await.expect("insert");
    let pro = member(1, b.id, Role::Professional);
    insert_member(store, &pro).await.expect("insert");
    let admin = AdminId::new_v7(5, &id(5));
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_admin(admin, "Admin", Timestamp::from_unix_millis(5))
        .await
        .expect("admin");
    tx.commit().await.expect("commit");
    let decision = ProfessionalIdState::Decided {
        status: ProfessionalIdStatus::Validated,
        by: admin,
        at: Timestamp::from_unix_millis(10),
        reason: "ok".into(),
    };
    assert!(matches!(
        append_decision(store, a.id, pro.id, &decision).await,
        Err(StoreError::MissingReference)
    ));
    let unchanged = member_of(store, b.id, pro.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        unchanged.professional_id_state,
        ProfessionalIdState::Pending
    );
}

/// Key rotation's compare-and-set: a replacement from a stale value changes nothing.
async fn instance_meta_is_replaced_only_from_the_value_read(store: &Store) {
    let now = Timestamp::from_unix_millis(1);
    store
        .insert_instance_meta("root", &[1], now)
        .await
        .expect("write");
    let mut tx = store.transaction().await.expect("tx");
    assert_eq!(tx.instance_meta("root").await.expect("read"), Some(vec![1]));
    tx.replace_instance_meta("root", &[1], &[2])
        .await
        .expect("replace");
    assert!(matches!(
        tx.replace_instance_meta("root", &[1], &[3]).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        tx.replace_instance_meta("absent", &[1], &[3]).await,
        Err(StoreError::Conflict)
    ));
    tx.commit().await.expect("commit");
    assert_eq!(
        store.instance_meta("root").await.expect("read"),
        Some(vec![2])
    );
}

async fn instance_meta_is_written_once(store: &Store) {
    assert_eq!(store.instance_meta("key_check").await.expect("read"), None);
    let now = Timestamp::from_unix_millis(1);
    store
        .insert_instance_meta("key_check", &[1, 2, 3], now)
        .await
        .expect("write");
    assert_eq!(
        store.instance_meta("key_check").await.expect("read"),
        Some(vec![1, 2, 3])
    );
    assert!(matches!(
        store.insert_instance_meta("key_check", &[9], now).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.instance_meta("key_check").await.expect("read"),
        Some(vec![1, 2, 3])
    );
}

async fn decisions_cannot_be_updated_or_deleted_in_the_database(store: &Store) {
    decisions_are_appended_and_the_latest_decides(store).await;
    for statement in [
        "UPDATE professional_id_decisions SET reason = 'rewritten'",
        "DELETE FROM professional_id_decisions",
    ] {
        let refused = store.danger_execute(statement).await;
        assert!(
            refused.is_err(),
            "{statement} must be refused by the database"
        );
    }
    let a = practice(1, "Cabinet A");
    let pro = member(1, a.id, Role::Professional);
    assert_eq!(
        history(store, a.id, pro.id).await.expect("history").len(),
        2
    );
}

// Each helper runs one operation in its own transaction, as a unit of work would.

async fn committed<T>(tx: Tx, result: Result<T, StoreError>) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            tx.rollback().await?;
            Err(error)
        }
    }
}

async fn insert_practice(store: &Store, practice: &Practice) -> Result<(), StoreError> {
    let mut tx = store.transaction().await?;
    let result = tx.insert_practice(practice).await;
    committed(tx, result).await
}

async fn insert_member(store: &Store, member: &Member) -> Result<(), StoreError> {
    let mut tx = store.transaction().await?;
    let result = tx.insert_member(member).await;
    committed(tx, result).await
}

async fn list_members(store: &Store, practice_id: PracticeId) -> Result<Vec<Member>, StoreError> {
    let mut tx = store.transaction().await?;
    let result = tx.list_members(practice_id).await;
    committed(tx, result).await
}

async fn member_of(
    store: &Store,
    practice_id: PracticeId,
    member_id: MemberId,
) -> Result<Option<Member>, StoreError> {
    let mut tx = store.transaction().await?;
    let result = tx.member(practice_id, member_id).await;
    committed(tx, result).await
}

async fn append_decision(
    store: &Store,
    practice_id: PracticeId,
    member_id: MemberId,
    decision: &ProfessionalIdState,
) -> Result<(), StoreError> {
    let mut tx = store.transaction().await?;
    let result = tx
        .append_professional_id_decision(practice_id, member_id, decision)
        .await;
    committed(tx, result).await
}

async fn history(
    store: &Store,
    practice_id: PracticeId,
    member_id: MemberId,
) -> Result<Vec<ProfessionalIdState>, StoreError> {
    let mut tx = store.transaction().await?;
    let result = tx.professional_id_history(practice_id, member_id).await;
    committed(tx, result).await
}

/// A job alone in its batch runs without a savepoint: when it fails, the whole
/// transaction is rolled back, and the next job finds a clean connection.
async fn a_failing_job_alone_in_its_batch_leaves_nothing(store: &Store) {
    // Batches of one: every job is alone.
    let committer = GroupCommitter::start(store.clone(), 1);
    let (lost, kept) = (practice(70, "Cabinet perdu"), practice(71, "Cabinet gardé"));
    let written = lost.clone();
    let failed = committer
        .run(move |tx| {
            Box::pin(async move {
                tx.insert_practice(&written).await?;
                Err::<(), _>(StoreError::Corrupt("the work failed after writing"))
            })
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Corrupt(_))), "{failed:?}");
    assert_eq!(store.practice(lost.id).await.expect("read"), None);
    let written = kept.clone();
    committer
        .run(move |tx| Box::pin(async move { tx.insert_practice(&written).await }))
        .await
        .expect("the next job commits");
    assert_eq!(store.practice(kept.id).await.expect("read"), Some(kept));
    assert_eq!(store.practice(lost.id).await.expect("read"), None);
}
