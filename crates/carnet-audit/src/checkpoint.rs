//! Signed checkpoints: (chain, sequence, head hash, time) signed with the audit key
//! (Ed25519). Kept outside the database too, they make a truncated or rewritten chain
//! detectable even by someone who can edit every row.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use carnet_domain::Timestamp;

use crate::{ChainId, Hash};

/// A signed statement that `chain` had `head_hash` at `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub chain: ChainId,
    pub seq: u64,
    pub head_hash: Hash,
    pub at: Timestamp,
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// The bytes that are signed (versioned, fixed layout).
    pub fn signed_bytes(chain: ChainId, seq: u64, head_hash: &Hash, at: Timestamp) -> Vec<u8> {
        let chain = chain.to_string();
        let mut out = Vec::with_capacity(96 + chain.len());
        out.extend_from_slice(b"carnet-audit-checkpoint");
        out.push(1);
        out.extend_from_slice(&u32::try_from(chain.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(chain.as_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(head_hash);
        out.extend_from_slice(&at.unix_millis().to_be_bytes());
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the audit key is not a valid Ed25519 seed")]
    InvalidSeed,
}

/// Signs checkpoints with the audit key.
pub struct CheckpointSigner {
    key_pair: Ed25519KeyPair,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointSigner(<redacted>)")
    }
}

impl CheckpointSigner {
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, SignerError> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(|key_pair| Self { key_pair })
            .map_err(|_| SignerError::InvalidSeed)
    }

    pub fn sign(&self, chain: ChainId, seq: u64, head_hash: Hash, at: Timestamp) -> Checkpoint {
        let signature = self
            .key_pair
            .sign(&Checkpoint::signed_bytes(chain, seq, &head_hash, at))
            .as_ref()
            .to_vec();
        Checkpoint {
            chain,
            seq,
            head_hash,
            at,
            signature,
        }
    }

    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            public_key: self.key_pair.public_key().as_ref().to_vec(),
        }
    }
}

/// Checks checkpoint signatures with the audit public key.
#[derive(Clone, Debug)]
pub struct CheckpointVerifier {
    public_key: Vec<u8>,
}

impl CheckpointVerifier {
    pub fn from_public_key(public_key: &[u8]) -> Self {
        Self {
            public_key: public_key.to_vec(),
        }
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    pub fn verify(&self, checkpoint: &Checkpoint) -> bool {
        let message = Checkpoint::signed_bytes(
            checkpoint.chain,
            checkpoint.seq,
            &checkpoint.head_hash,
            checkpoint.at,
        );
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(&message, &checkpoint.signature)
            .is_ok()
    }
}
