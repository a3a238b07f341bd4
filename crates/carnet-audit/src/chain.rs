//! The hash chain: each entry carries its sequence number, the previous entry's hash and
//! its own hash, SHA-256 over the canonical encoding (which includes both). The verifier
//! walks a chain in sequence order and names the first damaged sequence number.

use std::collections::BTreeMap;
use std::fmt;

use crate::{ChainId, Checkpoint, CheckpointVerifier, Event};

pub type Hash = [u8; 32];

/// The "previous hash" of the first entry of every chain.
pub const ZERO_HASH: Hash = [0; 32];

/// One stored link of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub prev_hash: Hash,
    pub hash: Hash,
    pub event: Event,
}

impl Entry {
    /// The hash this entry's content should have.
    pub fn recomputed_hash(&self) -> Hash {
        sha256(&self.event.canonical_bytes(self.seq, &self.prev_hash))
    }
}

/// Seals `event` as the entry after `previous` (`None` for the first entry of a chain).
pub fn seal_next(previous: Option<(u64, Hash)>, event: Event) -> Entry {
    let (seq, prev_hash) = match previous {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, ZERO_HASH),
    };
    let hash = sha256(&event.canonical_bytes(seq, &prev_hash));
    Entry {
        seq,
        prev_hash,
        hash,
        event,
    }
}

/// What kind of damage the verifier found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// The entry's content no longer matches its hash: a field was edited (or the entry
    /// was moved, renumbered or swapped with another).
    AlteredEntry,
    /// The entry is intact but does not follow the previous one: an entry before it was
    /// removed, inserted or replaced with a re-sealed forgery.
    BrokenLink,
    /// Sequence numbers jump: entries were deleted.
    MissingEntries,
    /// A sequence number repeats or goes backwards: an entry was inserted or reordered.
    DuplicateSequence,
    /// A signed checkpoint names a sequence beyond the chain's end: the tail was cut.
    TruncatedTail,
    /// The chain's entry at a checkpoint's sequence differs from the signed head: the
    /// chain was rewritten (re-sealed) at or before that sequence.
    RewrittenChain,
    /// A checkpoint's signature is not valid for the audit key: it was forged or edited.
    ForgedCheckpoint,
    /// A stored entry could not even be read (unknown code, wrong hash length, …).
    Malformed,
}

impl DamageKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::AlteredEntry => "entry altered (its content no longer matches its hash)",
            Self::BrokenLink => {
                "broken link (an entry before this one was removed, inserted or replaced)"
            }
            Self::MissingEntries => "entries missing (deleted) from this sequence number",
            Self::DuplicateSequence => "sequence repeated or out of order (entry inserted)",
            Self::TruncatedTail => "tail truncated (a signed checkpoint goes beyond the end)",
            Self::RewrittenChain => {
                "chain rewritten at or before this entry (differs from a signed checkpoint)"
            }
            Self::ForgedCheckpoint => "checkpoint signature invalid (forged or edited)",
            Self::Malformed => "entry unreadable (malformed stored values)",
        }
    }
}

/// The first damage found in a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub chain: ChainId,
    pub seq: u64,
    pub kind: DamageKind,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seq {}: {}",
            self.chain,
            self.seq,
            self.kind.describe()
        )
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChain {
    pub chain: ChainId,
    /// The number of entries (= the head's sequence number).
    pub entries: u64,
    pub head_hash: Hash,
    pub checkpoints_checked: usize,
}

/// Verifies one chain: `entries` in stored sequence order (an `Err(seq)` stands for a row
/// that could not be decoded), against the signed `checkpoints` of that chain. Returns
/// the damage with the lowest sequence number, or what was verified.
pub fn verify_chain(
    chain: ChainId,
    entries: impl IntoIterator<Item = Result<Entry, u64>>,
    checkpoints: &[Checkpoint],
    verifier: &CheckpointVerifier,
) -> Result<VerifiedChain, Damage> {
    let damage = |seq, kind| Damage { chain, seq, kind };
    let mut hashes_at_checkpoints: BTreeMap<u64, Hash> = BTreeMap::new();
    let wanted: std::collections::BTreeSet<u64> = checkpoints.iter().map(|c| c.seq).collect();

    let mut chain_damage = None;
    let mut expected_seq: u64 = 1;
    let mut prev_hash = ZERO_HASH;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(seq) => {
                chain_damage = Some(damage(seq, DamageKind::Malformed));
                break;
            }
        };
        if entry.seq < expected_seq {
            chain_damage = Some(damage(expected_seq, DamageKind::DuplicateSequence));
            break;
        }
        if entry.seq > expected_seq {
            chain_damage = Some(damage(expected_seq, DamageKind::MissingEntries));
            break;
        }
        if entry.event.chain != chain || entry.recomputed_hash() != entry.hash {
            chain_damage = Some(damage(entry.seq, DamageKind::AlteredEntry));
            break;
        }
        if entry.prev_hash != prev_hash {
            chain_damage = Some(damage(entry.seq, DamageKind::BrokenLink));
            break;
        }
        if wanted.contains(&entry.seq) {
            hashes_at_checkpoints.insert(entry.seq, entry.hash);
        }
        prev_hash = entry.hash;
        expected_seq += 1;
    }
    let head = expected_seq - 1;

    let mut checkpoint_damage: Option<Damage> = None;
    let mut keep_lowest = |found: Damage| {
        if checkpoint_damage
            .as_ref()
            .is_none_or(|current| found.seq < current.seq)
        {
            checkpoint_damage = Some(found);
        }
    };
    for checkpoint in checkpoints {
        if checkpoint.chain != chain || !verifier.verify(checkpoint) {
            keep_lowest(damage(checkpoint.seq, DamageKind::ForgedCheckpoint));
            continue;
        }
        if chain_damage
            .as_ref()
            .is_some_and(|found| found.seq <= checkpoint.seq)
        {
            continue; // Already damaged before this checkpoint: that damage comes first.
        }
        if checkpoint.seq > head {
            keep_lowest(damage(head + 1, DamageKind::TruncatedTail));
        } else if hashes_at_checkpoints.get(&checkpoint.seq) != Some(&checkpoint.head_hash) {
            keep_lowest(damage(checkpoint.seq, DamageKind::RewrittenChain));
        }
    }

    match (chain_damage, checkpoint_damage) {
        (Some(a), Some(b)) => Err(if b.seq < a.seq { b } else { a }),
        (Some(found), None) | (None, Some(found)) => Err(found),
        (None, None) => Ok(VerifiedChain {
            chain,
            entries: head,
            head_hash: prev_hash,
            checkpoints_checked: checkpoints.len(),
        }),
    }
}

pub(crate) fn sha256(data: &[u8]) -> Hash {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = ZERO_HASH;
    out.copy_from_slice(digest.as_ref());
    out
}
