//! Carnet's cryptography, pure: no file or network I/O happens here.
//!
//! For now it owns the instance key (the root of the key hierarchy, kept outside the
//! database), the key check value that proves a key belongs to a database, and the
//! injected source of randomness. One provider everywhere: aws-lc-rs.

mod device_ca;
mod passwords;
mod records;
mod sealing;
mod tokens;
mod totp;

use std::fmt;

use aws_lc_rs::{constant_time, hmac, rand as lc_rand};
use zeroize::Zeroizing;

pub use device_ca::{
    CertificateError, DeviceAuthority, IssuedCertificate, certificate_pem, check_signing_request,
    new_device_key,
};
pub use passwords::{HashingCost, PasswordCheck, PasswordHashing};
pub use records::{BLIND_INDEX_LEN, BlindIndexKey, DataKey};
pub use sealing::{OpenError, SEALED_VERSION, SealContext, SealingKey, derive, sealed_key_id};
pub use tokens::{ActivationCode, CODE_ALPHABET, CodeKey, SecretToken, base64url, random_code};
pub use totp::{TOTP_DIGITS, TOTP_STEP_SECONDS, TotpError, TotpSecret};

/// Why key material or randomness could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random source failed")]
    Random,
    #[error("the instance key file must hold exactly 64 hexadecimal characters (256 bits)")]
    KeyEncoding,
    #[error("password hashing parameters are below the minimum or invalid")]
    HashingParameters,
}

/// The source of randomness, injected so tests can be deterministic where they need to be.
pub trait RandomSource: Send + Sync + 'static {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), CryptoError>;
}

/// The operating system's CSPRNG through aws-lc-rs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), CryptoError> {
        lc_rand::fill(buffer).map_err(|_| CryptoError::Random)
    }
}

/// 256 bits of secret key material as kept in a key file (64 hex characters). Zeroed on
/// drop, never printed. The instance key and the audit key's seed are both kept this way.
pub struct KeyMaterial(Zeroizing<[u8; 32]>);

impl KeyMaterial {
    /// Draws fresh material from `random`.
    pub fn generate(random: &dyn RandomSource) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        random.fill(bytes.as_mut())?;
        Ok(Self(bytes))
    }

    /// Reads the text of a key file: 64 hex characters, surrounding whitespace ignored.
    pub fn from_file_text(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(CryptoError::KeyEncoding);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        for (index, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let high = hex_value(pair[0]).ok_or(CryptoError::KeyEncoding)?;
            let low = hex_value(pair[1]).ok_or(CryptoError::KeyEncoding)?;
            bytes[index] = (high << 4) | low;
        }
        Ok(Self(bytes))
    }

    /// The text to write in a key file (64 lower-case hex characters and a newline).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(65));
        for byte in self.0.iter() {
            text.push(hex_digit(byte >> 4));
            text.push(hex_digit(byte & 0x0f));
        }
        text.push('\n');
        text
    }

    /// Wraps bytes obtained elsewhere (a derivation).
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(bytes)
    }

    /// The raw bytes, for building a key from them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

/// Where the wrapped instance root is kept (bound into its seal).
const ROOT_CONTEXT: SealContext<'static> = SealContext {
    table: "instance_meta",
    column: "value",
    row: b"instance_root",
};

/// The 256-bit instance key (key-encryption key). Zeroed on drop, never printed.
pub struct InstanceKey(KeyMaterial);

impl InstanceKey {
    /// Draws a fresh key from `random`.
    pub fn generate(random: &dyn RandomSource) -> Result<Self, CryptoError> {
        KeyMaterial::generate(random).map(Self)
    }

    pub fn from_material(material: KeyMaterial) -> Self {
        Self(material)
    }

    /// Reads the key from the text of a key file.
    pub fn from_file_text(text: &str) -> Result<Self, CryptoError> {
        KeyMaterial::from_file_text(text).map(Self)
    }

    /// The text to write in a key file.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        self.0.to_file_text()
    }

    /// Key material derived from the instance key for one purpose (HKDF-SHA-256).
    pub fn derive(&self, purpose: &str) -> Result<KeyMaterial, CryptoError> {
        sealing::derive(&self.0, purpose)
    }

    /// Seals the instance root — the secret every instance-level key is derived from —
    /// under this key. The root never changes; rotating the instance key re-wraps it.
    pub fn wrap_root(
        &self,
        root: &KeyMaterial,
        random: &dyn RandomSource,
    ) -> Result<Vec<u8>, CryptoError> {
        self.root_wrapping()?
            .seal(root.expose(), ROOT_CONTEXT, random)
    }

    /// Opens the instance root wrapped by this key.
    pub fn unwrap_root(&self, wrapped: &[u8]) -> Result<KeyMaterial, OpenError> {
        let wrapping = self.root_wrapping().map_err(|_| OpenError::Malformed)?;
        let opened = wrapping.open(wrapped, ROOT_CONTEXT)?;
        let bytes: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| OpenError::Malformed)?;
        Ok(KeyMaterial::from_bytes(Zeroizing::new(bytes)))
    }

    fn root_wrapping(&self) -> Result<SealingKey, CryptoError> {
        SealingKey::derived(1, &self.0, "carnet/instance-root-wrap/v1")
    }

    /// A value derived from the key that proves, without revealing it, which key a
    /// database was created with. Stored in the database at creation and compared at
    /// every start, so a server never runs on a key that cannot open its data.
    pub fn check_value(&self) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.expose());
        let tag = hmac::sign(&key, b"carnet/instance-key-check/v1");
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Compares this key's check value with a stored one, in constant time.
    pub fn matches_check_value(&self, stored: &[u8]) -> bool {
        constant_time::verify_slices_are_equal(&self.check_value(), stored).is_ok()
    }
}

impl fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InstanceKey(<redacted>)")
    }
}

/// Compares two byte strings in constant time (for their common length).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// SHA-256 of `data`, for hashing tokens and certificates before they are stored.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(value: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(value & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic source for tests: repeats one byte.
    struct Repeating(u8);

    impl RandomSource for Repeating {
        fn fill(&self, buffer: &mut [u8]) -> Result<(), CryptoError> {
            buffer.fill(self.0);
            Ok(())
        }
    }

    #[test]
    fn key_file_text_round_trips() {
        let key = InstanceKey::generate(&SystemRandom).expect("random");
        let text = key.to_file_text();
        assert_eq!(text.len(), 65);
        let again = InstanceKey::from_file_text(&text).expect("parses");
        assert_eq!(key.check_value(), again.check_value());
    }

    #[test]
    fn key_file_text_is_refused_when_malformed() {
        assert!(InstanceKey::from_file_text("abc").is_err());
        assert!(InstanceKey::from_file_text(&"g".repeat(64)).is_err());
        assert!(InstanceKey::from_file_text(&"é".repeat(32)).is_err());
    }

    #[test]
    fn check_values_tell_keys_apart() {
        let one = InstanceKey::generate(&Repeating(1)).expect("random");
        let two = InstanceKey::generate(&Repeating(2)).expect("random");
        assert!(one.matches_check_value(&one.check_value()));
        assert!(!one.matches_check_value(&two.check_value()));
        assert!(!one.matches_check_value(&[]));
    }

    #[test]
    fn debug_never_prints_the_key() {
        let key = InstanceKey::generate(&Repeating(0xab)).expect("random");
        assert_eq!(format!("{key:?}"), "InstanceKey(<redacted>)");
    }

    #[test]
    fn the_root_opens_only_with_the_key_that_wrapped_it() {
        let root = KeyMaterial::generate(&Repeating(7)).expect("random");
        let one = InstanceKey::generate(&Repeating(1)).expect("random");
        let two = InstanceKey::generate(&Repeating(2)).expect("random");
        let wrapped = one.wrap_root(&root, &SystemRandom).expect("wraps");
        let opened = one.unwrap_root(&wrapped).expect("opens");
        assert_eq!(opened.expose(), root.expose());
        assert!(matches!(
            two.unwrap_root(&wrapped),
            Err(OpenError::Integrity)
        ));
        let mut flipped = wrapped.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(one.unwrap_root(&flipped).is_err());
    }
}
