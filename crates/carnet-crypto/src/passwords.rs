//! Password hashing with Argon2id (PHC strings), parameters from configuration, never
//! below the OWASP minimum (m = 19 MiB, t = 2, p = 1). A hash made with other parameters
//! verifies and asks to be re-hashed. Unknown accounts are answered after verifying a
//! dummy hash, so timing does not tell whether an account exists.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};

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
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.cost.params()?);
        hasher
            .hash_password_with_salt(password, &salt)
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
        let verifier = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        if verifier.verify_password(password, &parsed).is_err() {
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
