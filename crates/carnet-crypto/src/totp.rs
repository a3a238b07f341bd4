//! Time-based one-time passwords (RFC 6238): HMAC-SHA-1 (what authenticator apps use),
//! 30-second steps, 6 digits, accepting the previous and next step for clock drift, and
//! refusing any code of a step already used (replay). Pure: the caller gives the time
//! and the last used step, and stores the step returned.

use aws_lc_rs::{constant_time, hmac};
use zeroize::Zeroizing;

use crate::{CryptoError, RandomSource};

pub const TOTP_STEP_SECONDS: u64 = 30;
pub const TOTP_DIGITS: u32 = 6;

/// A TOTP shared secret (160 bits, as RFC 4226 recommends).
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Why a code was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the code is not 6 digits")]
    Malformed,
    #[error("the code does not match")]
    Mismatch,
    #[error("this code (or an earlier one) was already used")]
    Replayed,
}

impl TotpSecret {
    pub fn generate(random: &dyn RandomSource) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new(vec![0u8; 20]);
        random.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Reads a base32 secret (as shown at enrolment); `None` if it is not base32.
    pub fn from_base32(text: &str) -> Option<Self> {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut bytes = Vec::new();
        let (mut buffer, mut bits) = (0u32, 0u32);
        for symbol in text.trim_end_matches('=').bytes() {
            let value = ALPHABET
                .iter()
                .position(|c| *c == symbol.to_ascii_uppercase())?;
            buffer = (buffer << 5) | u32::try_from(value).ok()?;
            bits += 5;
            if bits >= 8 {
                bytes.push(u8::try_from((buffer >> (bits - 8)) & 0xff).ok()?);
                bits -= 8;
            }
        }
        Some(Self::from_bytes(bytes))
    }

    /// The raw secret, to be sealed before storage.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret in base32 (RFC 4648, no padding), as authenticator apps take it.
    pub fn base32(&self) -> Zeroizing<String> {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut out = Zeroizing::new(String::new());
        let (mut buffer, mut bits) = (0u32, 0u32);
        for byte in self.0.iter() {
            buffer = (buffer << 8) | u32::from(*byte);
            bits += 8;
            while bits >= 5 {
                out.push(char::from(ALPHABET[((buffer >> (bits - 5)) & 31) as usize]));
                bits -= 5;
            }
        }
        if bits > 0 {
            out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
        }
        out
    }

    /// The code for the step containing `unix_seconds`.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.code_for_step(unix_seconds / TOTP_STEP_SECONDS)
    }

    fn code_for_step(&self, step: u64) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = hmac::sign(&key, &step.to_be_bytes());
        let digest = tag.as_ref();
        let offset = usize::from(digest[digest.len() - 1] & 0x0f);
        let binary = (u32::from(digest[offset] & 0x7f) << 24)
            | (u32::from(digest[offset + 1]) << 16)
            | (u32::from(digest[offset + 2]) << 8)
            | u32::from(digest[offset + 3]);
        format!("{:06}", binary % 10u32.pow(TOTP_DIGITS))
    }

    /// Checks `typed` at `unix_seconds`, accepting the previous, current and next step,
    /// but never a step at or before `last_used_step`. Returns the matched step, which
    /// the caller must store as the new last used step.
    pub fn verify(
        &self,
        typed: &str,
        unix_seconds: u64,
        last_used_step: Option<u64>,
    ) -> Result<u64, TotpError> {
        let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if typed.len() != TOTP_DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpError::Malformed);
        }
        let current = unix_seconds / TOTP_STEP_SECONDS;
        let mut matched = None;
        for step in [current.saturating_sub(1), current, current + 1] {
            // Compare every candidate in constant time, whatever matched before.
            let candidate = self.code_for_step(step);
            if constant_time::verify_slices_are_equal(candidate.as_bytes(), typed.as_bytes())
                .is_ok()
            {
                matched.get_or_insert(step);
            }
        }
        let step = matched.ok_or(TotpError::Mismatch)?;
        if last_used_step.is_some_and(|last| step <= last) {
            return Err(TotpError::Replayed);
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::SystemRandom;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn matches_the_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B (8 digits); the 6-digit codes are their last six digits.
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(rfc_secret().code_at(time), code, "at {time}");
        }
        assert_eq!(
            rfc_secret().base32().as_str(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn accepts_one_step_of_drift_and_refuses_replays() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let step = now / TOTP_STEP_SECONDS;
        assert_eq!(secret.verify(&secret.code_at(now), now, None), Ok(step));
        assert_eq!(
            secret.verify(&secret.code_at(now - 30), now, None),
            Ok(step - 1)
        );
        assert_eq!(
            secret.verify(&secret.code_at(now + 30), now, None),
            Ok(step + 1)
        );
        assert_eq!(
            secret.verify(&secret.code_at(now - 60), now, None),
            Err(TotpError::Mismatch)
        );
        assert_eq!(
            secret.verify(&secret.code_at(now), now, Some(step)),
            Err(TotpError::Replayed)
        );
        assert_eq!(
            secret.verify(&secret.code_at(now - 30), now, Some(step)),
            Err(TotpError::Replayed)
        );
        assert_eq!(secret.verify("12345", now, None), Err(TotpError::Malformed));
        assert_eq!(
            secret.verify("abcdef", now, None),
            Err(TotpError::Malformed)
        );
        assert_eq!(
            secret.verify(" 005 924 ", now, None),
            Ok(step),
            "spaces are ignored"
        );
    }

    proptest! {
        #[test]
        fn a_fresh_secret_verifies_its_own_code_once(time in 60u64..4_000_000_000) {
            let secret = TotpSecret::generate(&SystemRandom).expect("secret");
            let step = secret.verify(&secret.code_at(time), time, None).expect("own code");
            prop_assert_eq!(secret.verify(&secret.code_at(time), time, Some(step)), Err(TotpError::Replayed));
        }

        #[test]
        fn typed_garbage_never_panics(typed in any::<String>(), time in any::<u64>()) {
            let _ = rfc_secret().verify(&typed, time, None);
        }
    }
}
