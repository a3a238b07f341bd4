//! Mutation tests: every single-entry edit, deletion, insertion, swap, truncation and
//! rewrite of a chain is detected at the right sequence number; property tests on large
//! chains; the verifier never panics on garbage.

use std::net::{IpAddr, Ipv4Addr};

use carnet_audit::{
    Action, ActorKind, AuditActor, ChainId, Checkpoint, CheckpointSigner, CheckpointVerifier,
    DamageKind, Entry, Event, Outcome, Targets, seal_next, verify_chain,
};
use carnet_domain::{PracticeId, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

fn practice() -> ChainId {
    ChainId::Practice(PracticeId::new_v7(1, &[3; 10]))
}

fn uuid(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn event(chain: ChainId, n: u64) -> Event {
    Event {
        chain,
        at: Timestamp::from_unix_millis(1_795_429_020_000 + n as i64),
        actor: AuditActor {
            kind: ActorKind::Member,
            account: Some(uuid(1)),
            role: Some("professional"),
            device: Some(uuid(2)),
            session: Some(uuid(3)),
        },
        action: Action::ALL[n as usize % Action::ALL.len()],
        targets: Targets {
            patient: Some(uuid(4)),
            record: Some(uuid(5)),
            document: None,
            member: None,
        },
        outcome: Outcome::Success,
        request_id: Some(format!("req-{n}")),
        client_address: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
    }
}

fn chain_of(chain: ChainId, length: u64) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for n in 1..=length {
        let previous = entries.last().map(|entry| (entry.seq, entry.hash));
        entries.push(seal_next(previous, event(chain, n)));
    }
    entries
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[42; 32]).expect("seed")
}

fn checkpoint_at(entries: &[Entry], seq: u64) -> Checkpoint {
    let entry = &entries[(seq - 1) as usize];
    signer().sign(
        entry.event.chain,
        seq,
        entry.hash,
        Timestamp::from_unix_millis(9),
    )
}

/// Verifies entries as the database would hand them over: ordered by sequence number.
fn verify(mut entries: Vec<Entry>, checkpoints: &[Checkpoint]) -> Result<u64, (u64, DamageKind)> {
    entries.sort_by_key(|entry| entry.seq);
    verify_chain(
        practice(),
        entries.into_iter().map(Ok),
        checkpoints,
        &signer().verifier(),
    )
    .map(|verified| verified.entries)
    .map_err(|damage| (damage.seq, damage.kind))
}

/// Every way to edit one stored field of an entry.
type FieldEdit = (&'static str, fn(&mut Entry));

fn field_edits() -> Vec<FieldEdit> {
    vec![
        ("at", |e| {
            e.event.at = Timestamp::from_unix_millis(e.event.at.unix_millis() + 1);
        }),
        ("actor kind", |e| e.event.actor.kind = ActorKind::Operator),
        ("actor account", |e| e.event.actor.account = Some(uuid(99))),
        ("actor role", |e| e.event.actor.role = Some("holder")),
        ("actor device", |e| e.event.actor.device = None),
        ("actor session", |e| e.event.actor.session = Some(uuid(98))),
        ("action", |e| {
            e.event.action = if e.event.action == Action::RecordRead {
                Action::Export
            } else {
                Action::RecordRead
            };
        }),
        ("target patient", |e| {
            e.event.targets.patient = Some(uuid(97));
        }),
        ("target record", |e| e.event.targets.record = None),
        ("target document", |e| {
            e.event.targets.document = Some(uuid(96));
        }),
        ("target member", |e| e.event.targets.member = Some(uuid(95))),
        ("outcome", |e| e.event.outcome = Outcome::Denied),
        ("request id", |e| {
            e.event.request_id = Some("req-forged".into());
        }),
        ("client address", |e| e.event.client_address = None),
        ("chain", |e| e.event.chain = ChainId::Instance),
        ("prev hash", |e| e.prev_hash[0] ^= 1),
        ("hash", |e| e.hash[31] ^= 0x80),
    ]
}

const LENGTH: u64 = 6;

#[test]
fn an_intact_chain_verifies_with_its_checkpoints() {
    let entries = chain_of(practice(), LENGTH);
    let checkpoints = [checkpoint_at(&entries, 3), checkpoint_at(&entries, LENGTH)];
    assert_eq!(verify(entries, &checkpoints), Ok(LENGTH));
    assert_eq!(verify(Vec::new(), &[]), Ok(0), "an empty chain is intact");
}

#[test]
fn every_single_field_edit_of_every_entry_is_found_at_its_sequence() {
    for index in 0..LENGTH as usize {
        for (field, edit) in field_edits() {
            let mut entries = chain_of(practice(), LENGTH);
            edit(&mut entries[index]);
            let seq = index as u64 + 1;
            assert_eq!(
                verify(entries, &[]),
                Err((seq, DamageKind::AlteredEntry)),
                "{field} at {seq}"
            );
        }
    }
}

#[test]
fn every_renumbering_of_an_entry_is_found_at_its_sequence() {
    for index in 0..LENGTH as usize {
        let seq = index as u64 + 1;
        for new_seq in [seq + 1, seq.saturating_sub(1), seq + 10, 0] {
            let mut entries = chain_of(practice(), LENGTH);
            entries[index].seq = new_seq;
            let found = verify(
                entries,
                &[checkpoint_at(&chain_of(practice(), LENGTH), LENGTH)],
            );
            // Renumbered to 0 it sorts first and spoils position 1; otherwise its own.
            let first = if new_seq == 0 { 1 } else { seq };
            assert!(
                matches!(found, Err((at, _)) if at == first),
                "seq {seq} renumbered {new_seq}: {found:?}"
            );
        }
    }
}

#[test]
fn every_deletion_is_found_and_a_deleted_tail_needs_a_checkpoint() {
    for index in 0..LENGTH as usize {
        let mut entries = chain_of(practice(), LENGTH);
        let all = entries.clone();
        entries.remove(index);
        let seq = index as u64 + 1;
        if seq < LENGTH {
            assert_eq!(verify(entries, &[]), Err((seq, DamageKind::MissingEntries)));
        } else {
            assert_eq!(
                verify(entries.clone(), &[]),
                Ok(LENGTH - 1),
                "undetectable without a checkpoint"
            );
            assert_eq!(
                verify(entries, &[checkpoint_at(&all, LENGTH)]),
                Err((LENGTH, DamageKind::TruncatedTail))
            );
        }
    }
}

#[test]
fn every_insertion_is_found_at_the_inserted_entry_or_the_one_it_displaced() {
    for index in 0..=LENGTH as usize {
        let seq = index as u64 + 1;
        // A naive forgery: a new entry with a made-up hash, later entries renumbered.
        let mut entries = chain_of(practice(), LENGTH);
        let mut forged = entries[index.min(LENGTH as usize - 1)].clone();
        forged.seq = seq;
        forged.event.request_id = Some("req-inserted".into());
        for later in entries.iter_mut().skip(index) {
            later.seq += 1;
        }
        entries.insert(index, forged);
        assert_eq!(
            verify(entries, &[]),
            Err((seq, DamageKind::AlteredEntry)),
            "naive at {seq}"
        );

        // A careful forgery: the inserted entry is properly sealed after its predecessor.
        let mut entries = chain_of(practice(), LENGTH);
        let previous = index
            .checked_sub(1)
            .map(|i| (entries[i].seq, entries[i].hash));
        let mut forged_event = event(practice(), 1000);
        forged_event.request_id = Some("req-sealed-insert".into());
        let forged = seal_next(previous, forged_event);
        for later in entries.iter_mut().skip(index) {
            later.seq += 1;
        }
        entries.insert(index, forged);
        let found = verify(entries, &[]);
        if seq <= LENGTH {
            assert_eq!(
                found,
                Err((seq + 1, DamageKind::AlteredEntry)),
                "sealed at {seq}"
            );
        } else {
            assert_eq!(
                found,
                Ok(LENGTH + 1),
                "an appended, sealed entry is a valid append"
            );
        }
    }
}

#[test]
fn every_swap_of_two_entries_is_found_at_the_first_of_them() {
    for first in 0..LENGTH as usize {
        for second in first + 1..LENGTH as usize {
            let mut entries = chain_of(practice(), LENGTH);
            // Swap everything but the sequence numbers (the rows change places in order).
            let (a, b) = (entries[first].clone(), entries[second].clone());
            entries[first] = Entry { seq: a.seq, ..b };
            entries[second] = Entry {
                seq: entries[second].seq,
                ..a
            };
            assert_eq!(
                verify(entries, &[]),
                Err((first as u64 + 1, DamageKind::AlteredEntry)),
                "swap {first} {second}"
            );
        }
    }
}

#[test]
fn every_truncation_is_found_against_the_last_checkpoint() {
    let all = chain_of(practice(), LENGTH);
    for kept in 0..LENGTH as usize {
        let entries = all[..kept].to_vec();
        assert_eq!(
            verify(entries, &[checkpoint_at(&all, LENGTH)]),
            Err((kept as u64 + 1, DamageKind::TruncatedTail)),
            "kept {kept}"
        );
    }
}

#[test]
fn a_rewritten_chain_is_found_at_the_checkpoint_it_contradicts() {
    let all = chain_of(practice(), LENGTH);
    for from in 0..LENGTH as usize {
        // Re-seal everything from `from` on with an edited event: internally consistent.
        let mut entries = all[..from].to_vec();
        for n in from as u64 + 1..=LENGTH {
            let previous = entries.last().map(|entry| (entry.seq, entry.hash));
            let mut rewritten = event(practice(), n);
            rewritten.outcome = Outcome::Failure;
            entries.push(seal_next(previous, rewritten));
        }
        assert_eq!(
            verify(entries.clone(), &[]),
            Ok(LENGTH),
            "without checkpoints it looks intact"
        );
        assert_eq!(
            verify(entries, &[checkpoint_at(&all, LENGTH)]),
            Err((LENGTH, DamageKind::RewrittenChain))
        );
    }
}

#[test]
fn a_forged_or_edited_checkpoint_is_found() {
    let entries = chain_of(practice(), LENGTH);
    let good = checkpoint_at(&entries, 4);
    let edits: Vec<fn(&mut Checkpoint)> = vec![
        |c| c.signature[0] ^= 1,
        |c| c.seq = 5,
        |c| c.head_hash[0] ^= 1,
        |c| c.at = Timestamp::from_unix_millis(10),
        |c| c.signature.truncate(10),
    ];
    for edit in edits {
        let mut forged = good.clone();
        edit(&mut forged);
        let found = verify(entries.clone(), &[forged.clone()]);
        assert_eq!(found, Err((forged.seq, DamageKind::ForgedCheckpoint)));
    }
    let other_key = CheckpointSigner::from_seed(&[7; 32]).expect("seed");
    let foreign = other_key.sign(
        practice(),
        4,
        entries[3].hash,
        Timestamp::from_unix_millis(9),
    );
    assert_eq!(
        verify(entries, &[foreign]),
        Err((4, DamageKind::ForgedCheckpoint))
    );
}

#[test]
fn the_first_damage_wins_when_there_are_several() {
    let all = chain_of(practice(), LENGTH);
    let mut entries = all.clone();
    entries[4].event.outcome = Outcome::Denied;
    entries[1].event.outcome = Outcome::Denied;
    assert_eq!(
        verify(entries, &[checkpoint_at(&all, 6)]),
        Err((2, DamageKind::AlteredEntry))
    );
}

#[test]
fn an_undecodable_row_is_reported_at_its_sequence() {
    let entries = chain_of(practice(), 3);
    let rows = vec![Ok(entries[0].clone()), Err(2), Ok(entries[2].clone())];
    let damage = verify_chain(practice(), rows, &[], &signer().verifier()).expect_err("malformed");
    assert_eq!((damage.seq, damage.kind), (2, DamageKind::Malformed));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_single_edit_in_a_large_chain_is_found_where_it_was_made(
        length in 50u64..400, position in any::<prop::sample::Index>(), field in 0usize..17
    ) {
        let mut entries = chain_of(practice(), length);
        let index = position.index(length as usize);
        (field_edits()[field].1)(&mut entries[index]);
        prop_assert_eq!(verify(entries, &[]), Err((index as u64 + 1, DamageKind::AlteredEntry)));
    }

    #[test]
    fn the_verifier_never_panics_on_garbage(
        rows in prop::collection::vec(
            (any::<u64>(), any::<[u8; 32]>(), any::<[u8; 32]>(), any::<i64>(), any::<bool>()), 0..40),
        checkpoint in (any::<u64>(), any::<[u8; 32]>(), prop::collection::vec(any::<u8>(), 0..80)),
        public_key in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let entries = rows.into_iter().map(|(seq, prev_hash, hash, at, ok)| {
            let mut event = event(practice(), 1);
            event.at = Timestamp::from_unix_millis(at);
            if ok { Ok(Entry { seq, prev_hash, hash, event }) } else { Err(seq) }
        });
        let checkpoint = Checkpoint {
            chain: practice(),
            seq: checkpoint.0,
            head_hash: checkpoint.1,
            at: Timestamp::from_unix_millis(0),
            signature: checkpoint.2,
        };
        let verifier = CheckpointVerifier::from_public_key(&public_key);
        let _ = verify_chain(practice(), entries, &[checkpoint], &verifier);
    }
}
