//! Password hashing with Argon2id (PHC strings), parameters from configuration, never
//! below the OWASP minimum (m = 19 MiB, t = 2, p = 1). A hash made with other parameters
//! verifies and asks to be re-hashed. Unknown accounts are answered after verifying a
//! dummy hash, so timing does not tell whether an account exists.

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::password_hash::{CustomizedPasswordHasher, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

use crate::{CryptoError, RandomSource};

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashingCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashingCost {
    /// The OWASP minimum for Argon2id.
    pub const MINIMUM: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Whether these parameters are at least the minimum (checked in configuration).
    pub fn is_acceptable(self) -> bool {
        self.memory_kib >= Self::MINIMUM.memory_kib
            && self.iterations >= Self::MINIMUM.iterations
            && self.parallelism >= 1
            && self.memory_kib <= 4 * 1024 * 1024
            && self.iterations <= 64
            && self.parallelism <= 16
    }

    fn params(self) -> Result<Params, CryptoError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|_| CryptoError::HashingParameters)
    }
}

/// The result of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    Mismatch,
    Matches,
    /// Matches, but was hashed with other parameters: store a new hash.
    MatchesNeedsRehash,
}

/// Hashes and verifies passwords with one set of parameters.
#[derive(Clone, Debug)]
pub struct PasswordHashing {
    cost: HashingCost,
    /// A hash of a random password, verified for unknown accounts.
    dummy: String,
}

impl PasswordHashing {
    pub fn new(cost: HashingCost, random: &dyn RandomSource) -> Result<Self, CryptoError> {
        if !cost.is_acceptable() {
            return Err(CryptoError::HashingParameters);
        }
        let mut secret = [0u8; 24];
        random.fill(&mut secret)?;
        let mut hashing = Self {
            cost,
            dummy: String::new(),
        };
        hashing.dummy = hashing.hash(&secret, random)?;
        Ok(hashing)
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
    pub fn hash(&self, password: &[u8], random: &dyn RandomSource) -> Result<String, CryptoError> {
        let mut salt = [0u8; 16];
        random.fill(&mut salt)?;
        Unmapped
            .hash_password_with_params(password, &salt, self.cost.params()?)
            .map(|hash| hash.to_string())
            .map_err(|_| CryptoError::HashingParameters)
    }

    /// Checks `password` against a stored PHC string. A malformed stored value is a
    /// mismatch (never a panic).
    pub fn verify(&self, password: &[u8], stored: &str) -> PasswordCheck {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return PasswordCheck::Mismatch;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return PasswordCheck::Mismatch;
        };
        if Unmapped.verify_password(password, &parsed).is_err() {
            return PasswordCheck::Mismatch;
        }
        let current = (params.m_cost(), params.t_cost(), params.p_cost());
        let wanted = (
            self.cost.memory_kib,
            self.cost.iterations,
            self.cost.parallelism,
        );
        if parsed.algorithm.as_str() == "argon2id" && current == wanted {
            PasswordCheck::Matches
        } else {
            PasswordCheck::MatchesNeedsRehash
        }
    }

    /// Spends the time of one verification, for an account that does not exist.
    pub fn verify_dummy(&self, password: &[u8]) {
        let _ = self.verify(password, &self.dummy);
    }
}

/// Argon2 computed in working memory that goes back to the system once freed.
///
/// The `argon2` crate allocates its working memory (`m` KiB, 19 MiB by default) for each
/// hash. glibc serves an allocation that large with a mapping of its own and unmaps it
/// when freed, but that first free also raises its mapping threshold to the freed size
/// (dynamically, up to 32 MiB): the next 19 MiB then come from the heap, and the heap
/// keeps them resident for the life of the process. Measured on `carnet serve` (release,
/// new SQLite instance, after the dummy hash of its start): 19.8 MB of heap out of a
/// 39.3 MB resident size; 1.9 MB with the threshold pinned (`MALLOC_MMAP_THRESHOLD_`).
/// Asking for more than that 32 MiB ceiling keeps every hash in a mapping of its own
/// (no threshold change either): the pages past the `m` KiB used are never touched, so
/// they cost address space, not memory, and the password-derived blocks do not linger in
/// the heap once a hash is done. Everything else (PHC encoding, parameters,
/// constant-time comparison of the outputs) is the crates' own.
struct Unmapped;

/// Bytes asked for Argon2's working memory at least: above glibc's 32 MiB ceiling.
const ALWAYS_MAPPED_BYTES: usize = 33 * 1024 * 1024;

impl CustomizedPasswordHasher<PasswordHash> for Unmapped {
    type Params = Params;

    fn hash_password_customized(
        &self,
        password: &[u8],
        salt: &[u8],
        algorithm: Option<&str>,
        version: Option<u32>,
        params: Params,
    ) -> argon2::password_hash::Result<PasswordHash> {
        let algorithm = algorithm
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = Salt::new(salt)?;
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let out = buffer
            .get_mut(..params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN))
            .ok_or(argon2::password_hash::Error::OutputSize)?;
        let blocks = params.block_count();
        let mut memory: Vec<Block> =
            Vec::with_capacity(blocks.max(ALWAYS_MAPPED_BYTES / size_of::<Block>()));
        memory.resize(blocks, Block::default());
        Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
            password,
            &salt,
            &mut *out,
            memory.as_mut_slice(),
        )?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(Output::new(out)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    fn cheap() -> HashingCost {
        HashingCost::MINIMUM
    }

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let hashing = PasswordHashing::new(cheap(), &SystemRandom).expect("hashing");
        let first = hashing
            .hash(b"Tilleul-Maree-42!", &SystemRandom)
            .expect("hash");
        let second = hashing
            .hash(b"Tilleul-Maree-42!", &SystemRandom)
            .expect("hash");
        assert_ne!(first, second, "salted");
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_eq!(
            hashing.verify(b"Tilleul-Maree-42!", &first),
            PasswordCheck::Matches
        );
        assert_eq!(
            hashing.verify(b"tilleul-maree-42!", &first),
            PasswordCheck::Mismatch
        );
        assert_eq!(hashing.verify(b"x", "not a hash"), PasswordCheck::Mismatch);
        hashing.verify_dummy(b"anything");
    }

    /// The working-memory wrapper computes what the `argon2` crate computes: each
    /// verifies the other's hash, and with the same salt they write the same string.
    #[test]
    fn hashes_agree_with_the_argon2_crate() {
        use argon2::PasswordHasher as _;
        let params = cheap().params().expect("params");
        let salt = *b"sixteen-byte-slt";
        let upstream = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_with_salt(b"Tilleul-Maree-42!", &salt)
            .expect("hash");
        let ours = Unmapped
            .hash_password_with_params(b"Tilleul-Maree-42!", &salt, params)
            .expect("hash");
        assert_eq!(ours.to_string(), upstream.to_string());
        let hashing = PasswordHashing::new(cheap(), &SystemRandom).expect("hashing");
        assert_eq!(
            hashing.verify(b"Tilleul-Maree-42!", &upstream.to_string()),
            PasswordCheck::Matches
        );
        assert_eq!(
            hashing.verify(b"Tilleul-Maree-43!", &upstream.to_string()),
            PasswordCheck::Mismatch
        );
        // Another Argon2 variant and version still verify (and ask for a re-hash).
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            cheap().params().expect("params"),
        )
        .hash_password_with_salt(b"Tilleul-Maree-42!", &salt)
        .expect("hash")
        .to_string();
        assert_eq!(
            hashing.verify(b"Tilleul-Maree-42!", &argon2i),
            PasswordCheck::MatchesNeedsRehash
        );
    }

    #[test]
    fn a_hash_with_other_parameters_asks_for_a_rehash() {
        let old = PasswordHashing::new(cheap(), &SystemRandom).expect("hashing");
        let stored = old.hash(b"Tilleul-Maree-42!", &SystemRandom).expect("hash");
        let stronger = HashingCost {
            iterations: 3,
            ..cheap()
        };
        let new = PasswordHashing::new(stronger, &SystemRandom).expect("hashing");
        assert_eq!(
            new.verify(b"Tilleul-Maree-42!", &stored),
            PasswordCheck::MatchesNeedsRehash
        );
    }

    #[test]
    fn parameters_below_the_minimum_are_refused() {
        let weak = HashingCost {
            memory_kib: 4096,
            ..cheap()
        };
        assert!(PasswordHashing::new(weak, &SystemRandom).is_err());
    }
}
