use carnet_domain::{
    Address, AdminId, Member, MemberId, MemberName, Phone, Practice, PracticeId, PracticeName,
    Profession, ProfessionalIdState, ProfessionalIdStatus, Role, Timestamp,
};
use carnet_store::{
    AccountHolder, CeremonyRecord, GrantRecord, GroupCommitter, PasskeyRecord, RecordsGate,
    SignedInRecord, Store, StoreError, Tx,
};
use uuid::Uuid;

use crate::support::conformance;

conformance!(
    accounts_of_members_and_admins_are_found_by_login_and_id,
    activation_codes_are_replaced_counted_and_used,
    sessions_are_stored_updated_and_revoked,
    a_signed_in_read_gives_the_session_account_grant_and_own_records_gate,
    recovery_codes_work_once_and_totp_steps_are_kept,
    password_failures_count_since_the_last_unlock,
    passkeys_are_listed_used_renamed_and_removed,
    ceremonies_are_taken_once_and_expire,
    setup_links_work_once_and_retire_older_ones,
    a_failing_account_job_rolls_back_alone,
);

const T0: i64 = 1_795_429_020_000;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + offset)
}

/// A nurses' practice, its id made from `n`.
fn a_practice(n: u8, name: &str) -> Practice {
    Practice {
        id: PracticeId::new_v7(u64::from(n), &[n; 10]),
        name: PracticeName::parse(name).expect("valid"),
        address: Address::parse("1 rue Haute").expect("valid"),
        profession: Profession::Nurse,
        created_at: at(0),
    }
}

/// A practice with one holder, and a platform administrator.
async fn world(store: &Store) -> (PracticeId, MemberId, AdminId) {
    let practice = a_practice(1, "Cabinet");
    let member = Member {
        id: MemberId::new_v7(2, &[2; 10]),
        practice_id: practice.id,
        name: MemberName::parse("Anne Martin").expect("valid"),
        role: Role::Holder,
        phone: Phone::parse("0612345678").expect("valid"),
        professional_id: Some(
            carnet_domain::ProfessionalId::parse("rpps", "10000005479").expect("valid"),
        ),
        professional_id_state: ProfessionalIdState::Pending,
        created_at: at(0),
    };
    let admin = AdminId::new_v7(3, &[3; 10]);
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_practice(&practice).await.expect("practice");
    tx.insert_member(&member).await.expect("member");
    tx.insert_admin(admin, "Admin", at(0)).await.expect("admin");
    tx.commit().await.expect("commit");
    (practice.id, member.id, admin)
}

fn holder(practice_id: PracticeId, member_id: MemberId) -> AccountHolder {
    AccountHolder::Member {
        member_id,
        practice_id,
        role: Role::Holder,
    }
}

/// The holder's account (10) and the administrator's (11), in `tx`.
async fn both_accounts(
    tx: &mut Tx,
    practice: PracticeId,
    member: MemberId,
    admin: AdminId,
) -> (Uuid, Uuid) {
    let (member_account, admin_account) = (Uuid::from_u128(10), Uuid::from_u128(11));
    tx.insert_account(
        member_account,
        &holder(practice, member),
        "anne@example.fr",
        "$argon2id$x",
        at(1),
    )
    .await
    .expect("member account");
    tx.insert_account(
        admin_account,
        &AccountHolder::Admin(admin),
        "admin@example.fr",
        "$argon2id$y",
        at(1),
    )
    .await
    .expect("admin account");
    (member_account, admin_account)
}

async fn accounts_of_members_and_admins_are_found_by_login_and_id(store: &Store) {
    let (practice, member, admin) = world(store).await;
    let mut tx = store.transaction().await.expect("begin");
    let (member_account, admin_account) = both_accounts(&mut tx, practice, member, admin).await;
    let duplicate = tx
        .insert_account(
            Uuid::from_u128(12),
            &AccountHolder::Admin(admin),
            "other@example.fr",
            "h",
            at(1),
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict)),
        "one account per admin"
    );
    tx.rollback().await.expect("rollback");

    let mut tx = store.transaction().await.expect("begin");
    tx.insert_account(
        member_account,
        &holder(practice, member),
        "anne@example.fr",
        "$argon2id$x",
        at(1),
    )
    .await
    .expect("member account");
    tx.insert_account(
        admin_account,
        &AccountHolder::Admin(admin),
        "admin@example.fr",
        "$argon2id$y",
        at(1),
    )
    .await
    .expect("admin account");
    let found = tx
        .account_by_login("anne@example.fr")
        .await
        .expect("query")
        .expect("found");
    assert_eq!(found.holder, holder(practice, member));
    assert_eq!(found.name, "Anne Martin");
    let admin_found = tx
        .account(admin_account)
        .await
        .expect("query")
        .expect("found");
    assert_eq!(admin_found.holder, AccountHolder::Admin(admin));
    assert_eq!(admin_found.name, "Admin");
    assert!(
        tx.account_by_login("nobody@example.fr")
            .await
            .expect("query")
            .is_none()
    );
    tx.change_password(member_account, "$argon2id$new", at(5))
        .await
        .expect("change");
    tx.rehash_password(admin_account, "$argon2id$rehashed")
        .await
        .expect("rehash");
    let changed = tx
        .account(member_account)
        .await
        .expect("query")
        .expect("found");
    assert_eq!(
        (changed.password_hash.as_str(), changed.password_changed_at),
        ("$argon2id$new", at(5))
    );
    let rehashed = tx
        .account(admin_account)
        .await
        .expect("query")
        .expect("found");
    assert_eq!(
        (
            rehashed.password_hash.as_str(),
            rehashed.password_changed_at
        ),
        ("$argon2id$rehashed", at(1))
    );
    tx.commit().await.expect("commit");
}

async fn activation_codes_are_replaced_counted_and_used(store: &Store) {
    let (practice, member, _) = world(store).await;
    let mut tx = store.transaction().await.expect("begin");
    tx.put_activation_code(member, practice, "BCDF", &[1; 32], at(0), at(100))
        .await
        .expect("code");
    tx.put_activation_code(member, practice, "GHJK", &[2; 32], at(1), at(101))
        .await
        .expect("replace");
    assert!(
        tx.activation_codes_with_prefix("BCDF")
            .await
            .expect("query")
            .is_empty(),
        "replaced"
    );
    tx.activation_code_failed("GHJK").await.expect("fail");
    tx.activation_code_failed("GHJK").await.expect("fail");
    let codes = tx
        .activation_codes_with_prefix("GHJK")
        .await
        .expect("query");
    assert_eq!(codes.len(), 1);
    assert_eq!(
        (codes[0].failures, codes[0].expires_at, codes[0].used_at),
        (2, at(101), None)
    );
    assert_eq!(codes[0].code_hash, vec![2; 32]);
    tx.activation_code_used(member, at(3)).await.expect("use");
    assert_eq!(
        tx.activation_codes_with_prefix("GHJK")
            .await
            .expect("query")[0]
            .used_at,
        Some(at(3))
    );
    tx.commit().await.expect("commit");
}

async fn sessions_are_stored_updated_and_revoked(store: &Store) {
    let (practice, member, _) = world(store).await;
    let account = Uuid::from_u128(10);
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_account(
        account,
        &holder(practice, member),
        "anne@example.fr",
        "h",
        at(0),
    )
    .await
    .expect("account");
    for n in 1..=3u8 {
        tx.insert_session(
            Uuid::from_u128(u128::from(n)),
            &[n; 32],
            account,
            at(i64::from(n)),
            at(1000),
        )
        .await
        .expect("session");
    }
    let mut first = tx
        .session_by_token_hash(&[1; 32])
        .await
        .expect("query")
        .expect("found");
    assert_eq!(
        (first.last_seen_at, first.second_factor_at, first.revoked_at),
        (at(1), None, None)
    );
    first.last_seen_at = at(50);
    first.second_factor_at = Some(at(40));
    first.totp_step = Some(7);
    first.totp_tries = 2;
    tx.update_session(&first).await.expect("update");
    assert_eq!(
        tx.session_by_token_hash(&[1; 32]).await.expect("query"),
        Some(first.clone())
    );
    assert!(
        tx.session_by_token_hash(&[9; 32])
            .await
            .expect("query")
            .is_none()
    );
    assert_eq!(
        tx.revoke_sessions_of(account, Some(first.id), at(60))
            .await
            .expect("revoke"),
        2
    );
    let sessions = tx.sessions_of(account).await.expect("list");
    assert_eq!(sessions.len(), 3);
    assert_eq!(
        sessions.iter().filter(|s| s.revoked_at.is_some()).count(),
        2
    );
    assert_eq!(
        tx.revoke_sessions_of(account, None, at(70))
            .await
            .expect("revoke"),
        1
    );
    tx.commit().await.expect("commit");
}

/// The sign-in read of the session whose token hash is `n` repeated, which must exist.
async fn found_signed_in(reads: &mut Tx, n: u8) -> SignedInRecord {
    reads
        .signed_in(&[n; 32])
        .await
        .expect("query")
        .expect("found")
}

/// The read every signed-in request makes: the session and its account as their own
/// lookups give them, the grant of the session's device, and, for a member, the PIN
/// version, professional number and every key version of the member's own practice only.
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: a bare session, then device, keys, PIN and decision added"
)]
async fn a_signed_in_read_gives_the_session_account_grant_and_own_records_gate(store: &Store) {
    let (practice, member, admin) = world(store).await;
    let other = a_practice(4, "Autre cabinet");
    let (member_session, admin_session) = (Uuid::from_u128(20), Uuid::from_u128(21));
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_practice(&other).await.expect("practice");
    let (member_account, admin_account) = both_accounts(&mut tx, practice, member, admin).await;
    tx.insert_session(member_session, &[1; 32], member_account, at(1), at(1000))
        .await
        .expect("session");
    tx.insert_session(admin_session, &[2; 32], admin_account, at(1), at(1000))
        .await
        .expect("session");
    // The other practice's PIN and key must never show in this member's gate.
    tx.insert_practice_key(other.id, 7, b"other key", at(2))
        .await
        .expect("key");
    tx.put_practice_pin(other.id, 5, b"other pin", Uuid::from_u128(9), at(2))
        .await
        .expect("pin");
    tx.commit().await.expect("commit");

    let empty = RecordsGate {
        pin_version: None,
        professional_id: ProfessionalIdStatus::Pending,
        wrapped_keys: Vec::new(),
    };
    let mut reads = store.reads().await.expect("reads");
    let found = found_signed_in(&mut reads, 1).await;
    assert_eq!(
        Some(found.session.clone()),
        reads.session_by_token_hash(&[1; 32]).await.expect("query")
    );
    assert_eq!(
        Some(found.account.clone()),
        reads.account(member_account).await.expect("query")
    );
    assert_eq!((found.grant_state, found.gate), (None, empty.clone()));
    assert!(
        reads.signed_in(&[9; 32]).await.expect("query").is_none(),
        "an unknown token"
    );

    let device = Uuid::from_u128(30);
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_device(device, &[3; 32], "Firefox", at(3))
        .await
        .expect("device");
    tx.attach_session_device(member_session, device, false, at(3))
        .await
        .expect("attach");
    tx.insert_grant(&GrantRecord {
        device_id: device,
        account_id: member_account,
        practice_id: Some(practice),
        name: "Poste".to_owned(),
        state: "approved".to_owned(),
        created_at: at(3),
        decided_at: Some(at(3)),
        decided_by: Some(member_account),
        browser: "Firefox".to_owned(),
        last_seen_at: at(3),
        login: "anne@example.fr".to_owned(),
    })
    .await
    .expect("grant");
    for version in [1, 2] {
        tx.insert_practice_key(
            practice,
            version,
            format!("key-{version}").as_bytes(),
            at(4),
        )
        .await
        .expect("key");
        tx.put_practice_pin(practice, version, b"pin", Uuid::from_u128(9), at(4))
            .await
            .expect("pin");
    }
    tx.append_professional_id_decision(
        practice,
        member,
        &ProfessionalIdState::Decided {
            status: ProfessionalIdStatus::Validated,
            by: admin,
            at: at(5),
            reason: "RPPS vérifié".to_owned(),
        },
    )
    .await
    .expect("decision");
    tx.commit().await.expect("commit");

    let found = found_signed_in(&mut reads, 1).await;
    assert_eq!(found.session.device_id, Some(device));
    assert_eq!(
        Some(found.account),
        reads.account(member_account).await.expect("query"),
        "the account, once, whatever the number of keys"
    );
    assert_eq!(found.grant_state.as_deref(), Some("approved"));
    assert_eq!(
        found.gate,
        RecordsGate {
            pin_version: Some(2),
            professional_id: ProfessionalIdStatus::Validated,
            wrapped_keys: vec![(2, b"key-2".to_vec()), (1, b"key-1".to_vec())],
        },
        "the current PIN, the latest decision, each key once, newest first"
    );

    let found = found_signed_in(&mut reads, 2).await;
    assert_eq!(
        Some(found.account),
        reads.account(admin_account).await.expect("query")
    );
    assert_eq!(
        (found.grant_state, found.gate),
        (None, empty),
        "an administrator has no practice, hence no gate"
    );
}

async fn recovery_codes_work_once_and_totp_steps_are_kept(store: &Store) {
    let (practice, member, _) = world(store).await;
    let account = Uuid::from_u128(10);
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_account(
        account,
        &holder(practice, member),
        "anne@example.fr",
        "h",
        at(0),
    )
    .await
    .expect("account");
    tx.put_recovery_codes(account, &[[1; 32], [2; 32]], at(0))
        .await
        .expect("codes");
    assert!(
        tx.use_recovery_code(account, &[1; 32], at(1))
            .await
            .expect("use")
    );
    assert!(
        !tx.use_recovery_code(account, &[1; 32], at(2))
            .await
            .expect("use"),
        "single use"
    );
    assert!(
        !tx.use_recovery_code(account, &[3; 32], at(2))
            .await
            .expect("use"),
        "unknown"
    );
    tx.put_totp(account, b"sealed", at(0)).await.expect("totp");
    let fresh = tx.totp(account).await.expect("query").expect("found");
    assert_eq!((fresh.confirmed_at, fresh.last_used_step), (None, None));
    tx.totp_used(account, 42, at(5)).await.expect("used");
    tx.totp_used(account, 43, at(6)).await.expect("used");
    let used = tx.totp(account).await.expect("query").expect("found");
    assert_eq!(
        (used.confirmed_at, used.last_used_step),
        (Some(at(5)), Some(43))
    );
    tx.commit().await.expect("commit");
}

async fn password_failures_count_since_the_last_unlock(store: &Store) {
    let (practice, member, _) = world(store).await;
    let account = Uuid::from_u128(10);
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_account(
        account,
        &holder(practice, member),
        "anne@example.fr",
        "h",
        at(0),
    )
    .await
    .expect("account");
    for n in 1..=5 {
        tx.record_auth_failure(account, "password", at(n))
            .await
            .expect("failure");
    }
    tx.record_auth_failure(account, "totp", at(6))
        .await
        .expect("failure");
    assert_eq!(
        tx.password_failures_since(account, at(0))
            .await
            .expect("count"),
        (5, Some(at(5)))
    );
    assert_eq!(
        tx.password_failures_since(account, at(3))
            .await
            .expect("count")
            .0,
        3
    );
    tx.unlock_account(account, Some(member), at(10))
        .await
        .expect("unlock");
    assert_eq!(
        tx.password_failures_since(account, at(0))
            .await
            .expect("count"),
        (0, None)
    );
    tx.record_auth_failure(account, "password", at(11))
        .await
        .expect("failure");
    assert_eq!(
        tx.password_failures_since(account, at(0))
            .await
            .expect("count")
            .0,
        1
    );
    tx.commit().await.expect("commit");
}

/// The member's account, created on its own.
async fn member_account(store: &Store) -> Uuid {
    let (practice, member, _) = world(store).await;
    let account = Uuid::from_u128(10);
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_account(
        account,
        &holder(practice, member),
        "anne@example.fr",
        "$argon2id$x",
        at(1),
    )
    .await
    .expect("account");
    tx.commit().await.expect("commit");
    account
}

fn passkey(id: u128, account_id: Uuid, credential_id: &[u8], name: &str) -> PasskeyRecord {
    PasskeyRecord {
        id: Uuid::from_u128(id),
        account_id,
        credential_id: credential_id.to_vec(),
        name: name.into(),
        credential: format!("{{\"counter\":{id}}}"),
        created_at: at(i64::try_from(id).expect("small")),
        last_used_at: None,
    }
}

async fn passkeys_are_listed_used_renamed_and_removed(store: &Store) {
    let account = member_account(store).await;
    let mut tx = store.transaction().await.expect("begin");
    let first = passkey(100, account, b"cred-1", "Téléphone");
    let second = passkey(101, account, b"cred-2", "Clé USB");
    tx.insert_passkey(&first).await.expect("first");
    tx.insert_passkey(&second).await.expect("second");
    assert!(
        matches!(
            tx.insert_passkey(&passkey(102, account, b"cred-1", "Copie"))
                .await,
            Err(StoreError::Conflict)
        ),
        "a credential is registered once"
    );
    tx.rollback().await.expect("rollback");

    let mut tx = store.transaction().await.expect("begin");
    tx.insert_passkey(&first).await.expect("first");
    tx.insert_passkey(&second).await.expect("second");
    assert_eq!(
        tx.passkeys_of(account).await.expect("list"),
        vec![first.clone(), second.clone()]
    );
    tx.passkey_used(first.id, "{\"counter\":7}", at(50))
        .await
        .expect("used");
    let found = tx
        .passkey_by_credential_id(b"cred-1")
        .await
        .expect("query")
        .expect("found");
    assert_eq!(found.credential, "{\"counter\":7}");
    assert_eq!(found.last_used_at, Some(at(50)));
    assert!(
        tx.rename_passkey(account, second.id, "Clé du bureau")
            .await
            .expect("rename")
    );
    assert!(
        !tx.rename_passkey(Uuid::from_u128(99), second.id, "Vol")
            .await
            .expect("rename"),
        "another account cannot rename it"
    );
    assert!(
        !tx.remove_passkey(Uuid::from_u128(99), first.id, at(60))
            .await
            .expect("remove"),
        "another account cannot remove it"
    );
    assert!(
        tx.remove_passkey(account, first.id, at(60))
            .await
            .expect("remove")
    );
    assert!(
        !tx.remove_passkey(account, first.id, at(61))
            .await
            .expect("again")
    );
    let left = tx.passkeys_of(account).await.expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "Clé du bureau");
    assert_eq!(
        tx.passkey_by_credential_id(b"cred-1").await.expect("query"),
        None,
        "a removed passkey no longer signs in"
    );
    tx.commit().await.expect("commit");
}

async fn ceremonies_are_taken_once_and_expire(store: &Store) {
    let account = member_account(store).await;
    let ceremony = CeremonyRecord {
        kind: "registration".into(),
        account_id: Some(account),
        session_id: None,
        state: "{}".into(),
        expires_at: at(300_000),
    };
    let mut tx = store.transaction().await.expect("begin");
    tx.put_ceremony(&[1; 32], &ceremony, at(0))
        .await
        .expect("put");
    tx.put_ceremony(&[2; 32], &ceremony, at(0))
        .await
        .expect("put");
    assert_eq!(
        tx.take_ceremony(&[1; 32], at(1000)).await.expect("take"),
        Some(ceremony.clone())
    );
    assert_eq!(
        tx.take_ceremony(&[1; 32], at(1000)).await.expect("take"),
        None,
        "single use"
    );
    assert_eq!(
        tx.take_ceremony(&[2; 32], at(300_000)).await.expect("take"),
        None,
        "expired"
    );
    tx.put_ceremony(&[3; 32], &ceremony, at(0))
        .await
        .expect("put");
    tx.put_ceremony(&[4; 32], &ceremony, at(400_000))
        .await
        .expect("put sweeps the expired");
    assert_eq!(
        tx.take_ceremony(&[3; 32], at(0)).await.expect("take"),
        None,
        "swept when expired"
    );
    tx.commit().await.expect("commit");
}

async fn setup_links_work_once_and_retire_older_ones(store: &Store) {
    let mut tx = store.transaction().await.expect("begin");
    assert!(!tx.admin_account_exists().await.expect("query"));
    tx.insert_setup_link(&[1; 32], at(0), at(3_600_000))
        .await
        .expect("first");
    tx.insert_setup_link(&[2; 32], at(10), at(3_600_010))
        .await
        .expect("second");
    assert!(
        !tx.use_setup_link(&[1; 32], at(20)).await.expect("use"),
        "retired by the newer link"
    );
    assert!(
        !tx.use_setup_link(&[2; 32], at(3_600_010))
            .await
            .expect("use"),
        "expired after one hour"
    );
    assert!(tx.use_setup_link(&[2; 32], at(30)).await.expect("use"));
    assert!(
        !tx.use_setup_link(&[2; 32], at(40)).await.expect("use"),
        "single use"
    );
    tx.commit().await.expect("commit");
    let (_, _, admin) = world(store).await;
    let mut tx = store.transaction().await.expect("begin");
    tx.insert_account(
        Uuid::from_u128(11),
        &AccountHolder::Admin(admin),
        "admin@example.fr",
        "$argon2id$y",
        at(1),
    )
    .await
    .expect("admin account");
    assert!(tx.admin_account_exists().await.expect("query"));
    tx.commit().await.expect("commit");
}

/// A job that writes, then fails on a conflict, is undone alone: on PostgreSQL a failed
/// statement outside a savepoint would abort the whole batch.
async fn a_failing_account_job_rolls_back_alone(store: &Store) {
    let account = member_account(store).await;
    let committer = GroupCommitter::start(store.clone(), 16);
    let jobs = (0..8_u8).map(|index| {
        let committer = committer.clone();
        tokio::spawn(async move {
            committer
                .run(move |tx| {
                    Box::pin(async move {
                        tx.record_auth_failure(account, "password", at(i64::from(index)))
                            .await?;
                        if index % 2 == 0 {
                            // The same login again: a conflict after a write.
                            tx.insert_account(
                                Uuid::from_u128(500 + u128::from(index)),
                                &AccountHolder::Admin(carnet_domain::AdminId::new_v7(3, &[3; 10])),
                                "anne@example.fr",
                                "h",
                                at(2),
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
                .await
        })
    });
    let mut failed = 0;
    for job in jobs.collect::<Vec<_>>() {
        match job.await.expect("join") {
            Ok(()) => {}
            Err(StoreError::Conflict) => failed += 1,
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(failed, 4);
    let mut tx = store.transaction().await.expect("begin");
    let (count, _) = tx
        .password_failures_since(account, at(-1))
        .await
        .expect("count");
    assert_eq!(count, 4, "only the succeeding jobs' writes remain");
}
