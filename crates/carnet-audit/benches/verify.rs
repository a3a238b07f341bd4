//! Verification speed of a one-million-entry chain on one core, beside the raw SHA-256
//! throughput over the same bytes measured in the same run.
//!
//! `cargo bench -p carnet-audit --bench verify`. Nothing is asserted.

#![expect(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use carnet_audit::{
    Action, ActorKind, AuditActor, ChainId, CheckpointSigner, Entry, Event, Outcome, Targets,
    ZERO_HASH, seal_next, verify_chain,
};
use carnet_domain::{PracticeId, Timestamp};
use uuid::Uuid;

const ENTRIES: u64 = 1_000_000;

fn main() {
    let chain = ChainId::Practice(PracticeId::new_v7(1, &[1; 10]));
    let started = Instant::now();
    let mut entries: Vec<Entry> = Vec::with_capacity(ENTRIES as usize);
    for n in 0..ENTRIES {
        let event = Event {
            chain,
            at: Timestamp::from_unix_millis(1_795_429_020_000 + n as i64),
            actor: AuditActor {
                kind: ActorKind::Member,
                account: Some(Uuid::from_u128(u128::from(n % 7))),
                role: Some("professional"),
                device: Some(Uuid::from_u128(3)),
                session: Some(Uuid::from_u128(u128::from(n / 50))),
            },
            action: Action::RecordRead,
            targets: Targets {
                patient: Some(Uuid::from_u128(u128::from(n % 1000))),
                ..Targets::default()
            },
            outcome: Outcome::Success,
            request_id: Some(format!("{n:036}")),
            client_address: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        };
        let previous = entries.last().map(|entry| (entry.seq, entry.hash));
        entries.push(seal_next(previous, event));
    }
    let sealing = started.elapsed();
    let encodings: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| e.event.canonical_bytes(e.seq, &e.prev_hash))
        .collect();
    let bytes: usize = encodings.iter().map(Vec::len).sum();

    let signer = CheckpointSigner::from_seed(&[9; 32]).expect("seed");
    let last = entries.last().expect("entries");
    let checkpoint = signer.sign(chain, last.seq, last.hash, Timestamp::from_unix_millis(0));
    let verifier = signer.verifier();

    let mut verify_times = Vec::new();
    let mut hash_times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let input = entries.iter().cloned().map(Ok);
        let outcome = verify_chain(chain, input, std::slice::from_ref(&checkpoint), &verifier)
            .expect("intact");
        assert_eq!(outcome.entries, ENTRIES);
        verify_times.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let mut acc = ZERO_HASH;
        for encoding in &encodings {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, encoding);
            acc[0] ^= digest.as_ref()[0];
        }
        std::hint::black_box(acc);
        hash_times.push(started.elapsed().as_secs_f64());
    }
    verify_times.sort_by(f64::total_cmp);
    hash_times.sort_by(f64::total_cmp);
    let (verify_median, hash_median) = (verify_times[1], hash_times[1]);
    println!(
        "entries: {ENTRIES}, canonical bytes: {bytes} ({:.0} B/entry)",
        bytes as f64 / ENTRIES as f64
    );
    println!(
        "sealing (encode + SHA-256 + build): {:.2} s",
        sealing.as_secs_f64()
    );
    println!(
        "verification (median of 3, one core, includes cloning entries): {verify_median:.3} s ({:.2} M entries/s)",
        ENTRIES as f64 / verify_median / 1e6
    );
    println!(
        "raw SHA-256 over the same bytes: {hash_median:.3} s ({:.0} MB/s); verification / raw hashing = {:.1}x",
        bytes as f64 / hash_median / 1e6,
        verify_median / hash_median
    );
}
