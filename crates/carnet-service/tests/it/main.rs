//! Service rules: who may do what with practices and members (on SQLite; the storage
//! contract itself is checked on both backends by the store's conformance suite).

use std::sync::Arc;

use carnet_crypto::{InstanceKey, SystemRandom};
use carnet_domain::{ManualClock, MemberId, PracticeId, Role, Timestamp};
use carnet_service::{
    Actor, Caller, InstanceKeyCheck, NewMemberInput, NewPracticeInput, PracticeAction,
    ProfessionalIdDecision, ServiceError, Services,
};
use carnet_store::Store;

struct World {
    services: Services,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_sqlite(&dir.path().join("db.sqlite3"))
        .await
        .expect("open");
    store.migrate(None).await.expect("migrate");
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_795_429_020_000,
    )));
    let services = Services::new(store, clock.clone(), Arc::new(SystemRandom));
    World {
        services,
        clock,
        _dir: dir,
    }
}

fn practice_input(name: &str) -> NewPracticeInput {
    NewPracticeInput {
        name: name.into(),
        address: "3 rue des Lilas, 69003 Lyon".into(),
        profession: "nurse".into(),
    }
}

fn member_input(role: &str, number: Option<&str>) -> NewMemberInput {
    NewMemberInput {
        name: "Anne Martin".into(),
        role: role.into(),
        phone: "06 12 34 56 78".into(),
        professional_id_kind: None,
        professional_id_number: number.map(Into::into),
    }
}

/// A practice with a holder and a staff member, and its actors.
async fn practice_with_members(services: &Services, name: &str) -> (PracticeId, Caller, Caller) {
    let practice = services
        .create_practice(&Caller::operator(), &practice_input(name))
        .await
        .expect("create");
    let scope = services
        .authorize(&Caller::operator(), practice.id, PracticeAction::AddMember)
        .await
        .expect("operator adds the first holder");
    let holder = services
        .add_member(&scope, &member_input("holder", Some("10000005479")))
        .await
        .expect("holder");
    let holder_actor = Caller::new(Actor::Member {
        practice_id: practice.id,
        member_id: holder.id,
        role: Role::Holder,
    });
    let scope = services
        .authorize(&holder_actor, practice.id, PracticeAction::AddMember)
        .await
        .expect("holder adds");
    let staff = services
        .add_member(&scope, &member_input("staff", None))
        .await
        .expect("staff");
    let staff_actor = Caller::new(Actor::Member {
        practice_id: practice.id,
        member_id: staff.id,
        role: Role::Staff,
    });
    (practice.id, holder_actor, staff_actor)
}

#[tokio::test]
async fn only_the_platform_side_creates_and_lists_practices() {
    let w = world().await;
    let (practice_id, holder, staff) = practice_with_members(&w.services, "Cabinet A").await;
    for actor in [
        &holder,
        &staff,
        &Caller::new(Actor::PlatformAdmin(carnet_domain::AdminId::new_v7(
            1, &[0; 10],
        ))),
    ] {
        assert!(matches!(
            w.services
                .create_practice(actor, &practice_input("Cabinet X"))
                .await,
            Err(ServiceError::Forbidden)
        ));
        assert!(matches!(
            w.services.list_practices(actor).await,
            Err(ServiceError::Forbidden)
        ));
    }
    let admin = w
        .services
        .create_platform_admin(&Caller::operator(), "Admin")
        .await
        .expect("admin");
    let listed = w
        .services
        .list_practices(&Caller::new(Actor::PlatformAdmin(admin)))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![practice_id]
    );
}

#[tokio::test]
async fn practice_input_is_checked_with_french_messages() {
    let w = world().await;
    let mut input = practice_input("   ");
    let Err(ServiceError::Invalid { field, message }) = w
        .services
        .create_practice(&Caller::operator(), &input)
        .await
    else {
        panic!("an empty name is refused");
    };
    assert_eq!(field, "name");
    assert!(message.contains("obligatoire"), "{message}");
    input = practice_input("Cabinet");
    input.profession = "plombier".into();
    assert!(matches!(
        w.services
            .create_practice(&Caller::operator(), &input)
            .await,
        Err(ServiceError::Invalid {
            field: "profession",
            ..
        })
    ));
    assert!(
        w.services
            .list_practices(&Caller::operator())
            .await
            .expect("list")
            .is_empty(),
        "nothing half-created"
    );
}

#[tokio::test]
async fn members_see_only_their_practice_and_only_holders_add_members() {
    let w = world().await;
    let (a, holder_a, staff_a) = practice_with_members(&w.services, "Cabinet A").await;
    let (b, holder_b, _) = practice_with_members(&w.services, "Cabinet B").await;

    for (actor, practice, action, allowed) in [
        (&holder_a, a, PracticeAction::ViewMembers, true),
        (&staff_a, a, PracticeAction::ViewMembers, true),
        (&holder_a, a, PracticeAction::AddMember, true),
        (&staff_a, a, PracticeAction::AddMember, false),
        (&holder_a, b, PracticeAction::ViewMembers, false),
        (&holder_b, a, PracticeAction::AddMember, false),
        (&holder_a, a, PracticeAction::DecideProfessionalId, false),
        (
            &Caller::operator(),
            a,
            PracticeAction::DecideProfessionalId,
            false,
        ),
    ] {
        let result = w.services.authorize(actor, practice, action).await;
        assert_eq!(
            result.is_ok(),
            allowed,
            "{actor:?} {action:?} on {practice}"
        );
        if !allowed {
            assert!(matches!(result, Err(ServiceError::Forbidden)));
        }
    }
    let scope = w
        .services
        .authorize(&holder_a, a, PracticeAction::ViewMembers)
        .await
        .expect("view");
    let members = w.services.list_members(&scope).await.expect("list");
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m.practice_id == a));
    assert!(
        matches!(
            w.services
                .add_member(&scope, &member_input("staff", None))
                .await,
            Err(ServiceError::Forbidden)
        ),
        "a view scope does not add"
    );
}

#[tokio::test]
async fn the_platform_side_creates_holders_only_and_roles_need_the_right_numbers() {
    let w = world().await;
    let (a, holder, _) = practice_with_members(&w.services, "Cabinet A").await;
    let operator_scope = w
        .services
        .authorize(&Caller::operator(), a, PracticeAction::AddMember)
        .await
        .expect("scope");
    assert!(matches!(
        w.services
            .add_member(&operator_scope, &member_input("staff", None))
            .await,
        Err(ServiceError::Invalid { field: "role", .. })
    ));
    let scope = w
        .services
        .authorize(&holder, a, PracticeAction::AddMember)
        .await
        .expect("scope");
    let Err(ServiceError::Invalid { message, .. }) = w
        .services
        .add_member(&scope, &member_input("professional", Some("10101201234")))
        .await
    else {
        panic!("the FR Core example number fails its key");
    };
    assert!(message.contains("clé de contrôle"), "{message}");
    assert!(matches!(
        w.services
            .add_member(&scope, &member_input("professional", None))
            .await,
        Err(ServiceError::Invalid {
            field: "professional_id",
            ..
        })
    ));
    assert!(matches!(
        w.services
            .add_member(&scope, &member_input("staff", Some("10000005479")))
            .await,
        Err(ServiceError::Invalid {
            field: "professional_id",
            ..
        })
    ));
    let adeli = w
        .services
        .add_member(&scope, &member_input("professional", Some("012807590")))
        .await
        .expect("ADELI");
    assert_eq!(
        adeli
            .professional_id
            .as_ref()
            .map(carnet_domain::ProfessionalId::kind),
        Some("adeli")
    );
    assert!(
        !adeli.professional_id_state.is_validated(),
        "a new number is pending"
    );
}

#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one story, read top to bottom")]
async fn a_platform_administrator_validates_with_who_when_and_why() {
    let w = world().await;
    let (a, holder, staff) = practice_with_members(&w.services, "Cabinet A").await;
    let Actor::Member {
        member_id: holder_id,
        ..
    } = holder.actor
    else {
        unreachable!()
    };
    let Actor::Member {
        member_id: staff_id,
        ..
    } = staff.actor
    else {
        unreachable!()
    };
    let admin = w
        .services
        .create_platform_admin(&Caller::operator(), "Admin")
        .await
        .expect("admin");
    let admin_actor = Caller::new(Actor::PlatformAdmin(admin));
    let scope = w
        .services
        .authorize(&admin_actor, a, PracticeAction::DecideProfessionalId)
        .await
        .expect("scope");

    assert!(matches!(
        w.services
            .decide_professional_id(&scope, holder_id, ProfessionalIdDecision::Validate, "  ")
            .await,
        Err(ServiceError::Invalid {
            field: "reason",
            ..
        })
    ));
    assert!(matches!(
        w.services
            .decide_professional_id(&scope, staff_id, ProfessionalIdDecision::Validate, "ok")
            .await,
        Err(ServiceError::Invalid {
            field: "member",
            ..
        })
    ));
    assert!(matches!(
        w.services
            .decide_professional_id(
                &scope,
                MemberId::new_v7(1, &[0; 10]),
                ProfessionalIdDecision::Validate,
                "ok"
            )
            .await,
        Err(ServiceError::NotFound)
    ));

    w.clock.advance_millis(60_000);
    let rejected = w
        .services
        .decide_professional_id(
            &scope,
            holder_id,
            ProfessionalIdDecision::Reject,
            "Introuvable dans l'Annuaire Santé",
        )
        .await
        .expect("reject");
    assert!(!rejected.professional_id_state.is_validated());
    w.clock.advance_millis(60_000);
    let validated = w
        .services
        .decide_professional_id(
            &scope,
            holder_id,
            ProfessionalIdDecision::Validate,
            "Vérifié",
        )
        .await
        .expect("validate");
    let carnet_domain::ProfessionalIdState::Decided { by, at, reason, .. } =
        &validated.professional_id_state
    else {
        panic!("decided");
    };
    assert_eq!(
        (*by, *at, reason.as_str()),
        (admin, w.clock.now_for_test(), "Vérifié")
    );
    let history = w
        .services
        .professional_id_history(&scope, holder_id)
        .await
        .expect("history");
    assert_eq!(history.len(), 2, "the rejection is kept in the history");

    let unknown_admin = Caller::new(Actor::PlatformAdmin(carnet_domain::AdminId::new_v7(
        1, &[9; 10],
    )));
    assert!(matches!(
        w.services
            .authorize(&unknown_admin, a, PracticeAction::DecideProfessionalId)
            .await,
        Err(ServiceError::Forbidden)
    ));
}

#[tokio::test]
async fn the_instance_key_is_recorded_once_and_then_checked() {
    let w = world().await;
    let key = InstanceKey::generate(&SystemRandom).expect("key");
    let other = InstanceKey::generate(&SystemRandom).expect("key");
    assert!(!w.services.has_recorded_instance_key().await.expect("read"));
    assert_eq!(
        w.services.check_instance_key(&key).await.expect("check"),
        InstanceKeyCheck::Recorded
    );
    assert_eq!(
        w.services.check_instance_key(&key).await.expect("check"),
        InstanceKeyCheck::Matches
    );
    assert_eq!(
        w.services.check_instance_key(&other).await.expect("check"),
        InstanceKeyCheck::Mismatch
    );
    assert!(w.services.readiness().await.is_ready());
}

trait NowForTest {
    fn now_for_test(&self) -> Timestamp;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> Timestamp {
        carnet_domain::Clock::now(self)
    }
}
