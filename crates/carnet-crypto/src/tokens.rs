//! Secrets handed to people and browsers: opaque session and setup tokens (256 bits,
//! stored as SHA-256), and activation codes (readable, typed by a person, stored as an
//! HMAC under a server key so a stolen database does not let anyone brute-force them).

use std::fmt;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::{CryptoError, RandomSource, sha256};

/// An opaque 256-bit token in URL-safe base64 (43 characters), and its stored hash.
pub struct SecretToken {
    text: Zeroizing<String>,
}

impl SecretToken {
    pub fn generate(random: &dyn RandomSource) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        random.fill(bytes.as_mut())?;
        Ok(Self {
            text: Zeroizing::new(base64url(bytes.as_ref())),
        })
    }

    /// The token to give out (cookie value, link). Never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// What the server stores: the SHA-256 of the token text.
    pub fn stored_hash(&self) -> [u8; 32] {
        Self::hash_of(&self.text)
    }

    /// The stored hash of a token presented by a client (any text; never panics).
    pub fn hash_of(presented: &str) -> [u8; 32] {
        sha256(presented.as_bytes())
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// The alphabet of activation codes: no 0/O, 1/I/L, no vowels that spell words.
pub const CODE_ALPHABET: &[u8] = b"23456789BCDFGHJKMNPQRSTVWXYZ";

/// An activation code: 12 characters from [`CODE_ALPHABET`] (~57.7 bits), shown as
/// `XXXX-XXXX-XXXX` to be read over the telephone.
pub struct ActivationCode {
    text: Zeroizing<String>,
}

/// `length` characters drawn uniformly from [`CODE_ALPHABET`] (no 0/O, 1/I/L, no
/// vowels): activation codes, recovery codes, the practice PIN.
pub fn random_code(
    length: usize,
    random: &dyn RandomSource,
) -> Result<Zeroizing<String>, CryptoError> {
    let mut text = Zeroizing::new(String::with_capacity(length));
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % CODE_ALPHABET.len());
    while text.len() < length {
        let mut byte = [0u8; 1];
        random.fill(&mut byte)?;
        if usize::from(byte[0]) < limit {
            text.push(char::from(
                CODE_ALPHABET[usize::from(byte[0]) % CODE_ALPHABET.len()],
            ));
        }
    }
    Ok(text)
}

impl ActivationCode {
    pub const LENGTH: usize = 12;

    pub fn generate(random: &dyn RandomSource) -> Result<Self, CryptoError> {
        Ok(Self {
            text: random_code(Self::LENGTH, random)?,
        })
    }

    /// The code grouped for reading aloud: `BCDF-2345-GHJK`.
    pub fn display(&self) -> String {
        let chars: Vec<char> = self.text.chars().collect();
        chars
            .chunks(4)
            .map(|chunk| chunk.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// What the server stores for this code.
    pub fn stored_hash(&self, key: &CodeKey) -> [u8; 32] {
        key.hash_normalized(&self.text)
    }
}

impl fmt::Debug for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActivationCode(<redacted>)")
    }
}

/// The server key under which activation codes are stored (derived from the instance
/// key by the caller).
pub struct CodeKey(hmac::Key);

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

impl CodeKey {
    pub fn new(secret: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The stored hash of a code typed by a person: case, spaces and dashes ignored,
    /// and the look-alikes O→0… are not accepted (the alphabet has none).
    pub fn hash_typed(&self, typed: &str) -> [u8; 32] {
        let normalized: String = typed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .flat_map(char::to_uppercase)
            .collect();
        self.hash_normalized(&normalized)
    }

    fn hash_normalized(&self, code: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.0, code.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// Base64url without padding (RFC 4648 §5).
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for index in 0..symbols {
            out.push(char::from(
                ALPHABET[((n >> (18 - 6 * index)) & 0x3f) as usize],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::SystemRandom;

    #[test]
    fn tokens_are_256_bits_url_safe_and_stored_hashed() {
        let token = SecretToken::generate(&SystemRandom).expect("token");
        assert_eq!(token.expose().len(), 43);
        assert!(
            token
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(token.stored_hash(), SecretToken::hash_of(token.expose()));
        assert_ne!(token.stored_hash(), SecretToken::hash_of("forged"));
        assert_eq!(format!("{token:?}"), "SecretToken(<redacted>)");
    }

    #[test]
    fn activation_codes_are_readable_and_typed_loosely() {
        let key = CodeKey::new(&[7; 32]);
        let code = ActivationCode::generate(&SystemRandom).expect("code");
        let shown = code.display();
        assert_eq!(shown.len(), 14);
        assert!(
            shown
                .bytes()
                .all(|b| b == b'-' || CODE_ALPHABET.contains(&b))
        );
        assert_eq!(key.hash_typed(&shown), code.stored_hash(&key));
        assert_eq!(
            key.hash_typed(&shown.to_lowercase().replace('-', " ")),
            code.stored_hash(&key)
        );
        assert_ne!(
            CodeKey::new(&[8; 32]).hash_typed(&shown),
            code.stored_hash(&key),
            "keyed"
        );
    }

    #[test]
    fn many_tokens_and_codes_never_repeat() {
        let tokens: HashSet<String> = (0..2000)
            .map(|_| {
                SecretToken::generate(&SystemRandom)
                    .expect("token")
                    .expose()
                    .to_owned()
            })
            .collect();
        assert_eq!(tokens.len(), 2000);
        let codes: HashSet<String> = (0..2000)
            .map(|_| {
                ActivationCode::generate(&SystemRandom)
                    .expect("code")
                    .display()
            })
            .collect();
        assert_eq!(codes.len(), 2000);
    }

    #[test]
    fn code_characters_are_spread_evenly() {
        let mut counts = [0usize; CODE_ALPHABET.len()];
        for _ in 0..2000 {
            for byte in ActivationCode::generate(&SystemRandom)
                .expect("code")
                .display()
                .bytes()
            {
                if let Some(index) = CODE_ALPHABET.iter().position(|c| *c == byte) {
                    counts[index] += 1;
                }
            }
        }
        // 24 000 draws over 28 symbols: ~857 each; a biased generator would be far off.
        assert!(
            counts.iter().all(|count| (650..1070).contains(count)),
            "{counts:?}"
        );
    }

    proptest! {
        #[test]
        fn base64url_has_the_right_length_and_alphabet(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            let text = base64url(&bytes);
            prop_assert_eq!(text.len(), (bytes.len() * 4).div_ceil(3));
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }

        #[test]
        fn typed_codes_never_panic(typed in any::<String>()) {
            let _ = CodeKey::new(&[1; 32]).hash_typed(&typed);
            let _ = SecretToken::hash_of(&typed);
        }
    }
}
