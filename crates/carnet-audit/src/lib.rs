//! Carnet's audit trail, pure: what an event is, its canonical bytes, the hash chain
//! that links events, the signed checkpoints that pin a chain's head, and the verifier
//! that finds the first damaged entry. No I/O: storage and files are the callers' job.
//!
//! An event names **ids only** — never a name, a birth date, a NIR or any content.

mod chain;
mod checkpoint;
mod event;

pub use chain::{
    Damage, DamageKind, Entry, Hash, VerifiedChain, ZERO_HASH, seal_next, verify_chain,
};
pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier, SignerError};
pub use event::{Action, ActorKind, AuditActor, ChainId, Event, Outcome, Targets};

/// Lower-case hexadecimal, for hashes and signatures in files, exports and messages.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}
