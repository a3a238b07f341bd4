//! Sealing values with AES-256-GCM (aws-lc-rs) before they reach the database, a blob,
//! a log or a backup. Layout: `version (1) ‖ key id (4, big-endian) ‖ nonce (12) ‖
//! ciphertext ‖ tag (16)`. The associated data binds (table, column, row id, key
//! version), so a ciphertext moved to another row or column, or opened with another key
//! version, fails to open. Every failure is an error, never a panic.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use crate::{CryptoError, KeyMaterial, RandomSource};

/// The layout version written in every sealed value.
pub const SEALED_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;

/// Where a sealed value lives: bound into the ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealContext<'a> {
    pub table: &'a str,
    pub column: &'a str,
    /// The row's id, as bytes (a UUID's 16 bytes, a chain id, …).
    pub row: &'a [u8],
}

impl SealContext<'_> {
    fn aad(&self, key_id: u32) -> Vec<u8> {
        let mut aad =
            Vec::with_capacity(32 + self.table.len() + self.column.len() + self.row.len());
        for part in [self.table.as_bytes(), self.column.as_bytes(), self.row] {
            aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad.extend_from_slice(&key_id.to_be_bytes());
        aad
    }
}

/// Why a sealed value could not be opened. Callers audit it as an integrity failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the sealed value is too short or has an unknown layout version")]
    Malformed,
    #[error("the sealed value was made with key {0}, which this key is not")]
    WrongKey(u32),
    #[error("the sealed value does not authenticate (altered, moved or wrong key)")]
    Integrity,
}

/// An AES-256-GCM key with its id (its version): seals and opens values.
pub struct SealingKey {
    id: u32,
    key: LessSafeKey,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingKey(id {}, <redacted>)", self.id)
    }
}

impl SealingKey {
    pub fn new(id: u32, material: &KeyMaterial) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, material.expose())
            .map_err(|_| CryptoError::KeyEncoding)?;
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
        })
    }

    /// A key derived from `material` for one purpose (HKDF-SHA-256, `purpose` as info):
    /// one root key serves several uses without any two sharing a key.
    pub fn derived(id: u32, material: &KeyMaterial, purpose: &str) -> Result<Self, CryptoError> {
        let derived = derive(material, purpose)?;
        Self::new(id, &derived)
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Seals `plaintext` for `context`, with a fresh random nonce.
    pub fn seal(
        &self,
        plaintext: &[u8],
        context: SealContext<'_>,
        random: &dyn RandomSource,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        self.seal_into(plaintext, context, random, &mut out)?;
        Ok(out)
    }

    /// Like [`SealingKey::seal`], the sealed value appended to `out` (bulk data: many
    /// values gathered in one buffer, no allocation per value). On an error, `out` is
    /// left as it was.
    pub fn seal_into(
        &self,
        plaintext: &[u8],
        context: SealContext<'_>,
        random: &dyn RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random.fill(&mut nonce)?;
        let start = out.len();
        out.reserve(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(SEALED_VERSION);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        // Encrypted where it lies in the output (bulk data: one copy of the plaintext).
        let sealed = self.key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.aad(self.id)),
            &mut out[start + HEADER_LEN..],
        );
        if let Ok(tag) = sealed {
            out.extend_from_slice(tag.as_ref());
            Ok(())
        } else {
            out.truncate(start);
            Err(CryptoError::Random)
        }
    }

    /// Opens a value sealed for `context` by this key.
    pub fn open(
        &self,
        sealed: &[u8],
        context: SealContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let mut body = Zeroizing::new(sealed.to_vec());
        let plaintext = self.open_in_place(&mut body, context)?;
        body.copy_within(plaintext.clone(), 0);
        body.truncate(plaintext.len());
        Ok(body)
    }

    /// Opens a value sealed for `context` by this key where it lies (bulk data: no copy);
    /// returns the part of `sealed` that now holds the plaintext. On an error, `sealed`
    /// holds nothing of the plaintext.
    pub fn open_in_place(
        &self,
        sealed: &mut [u8],
        context: SealContext<'_>,
    ) -> Result<std::ops::Range<usize>, OpenError> {
        let key_id = sealed_key_id(sealed).ok_or(OpenError::Malformed)?;
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        if key_id != self.id {
            return Err(OpenError::WrongKey(key_id));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[5..HEADER_LEN]);
        let plaintext_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.aad(key_id)),
                &mut sealed[HEADER_LEN..],
            )
            .map_err(|_| OpenError::Integrity)?
            .len();
        Ok(HEADER_LEN..HEADER_LEN + plaintext_len)
    }
}

/// The key id of a sealed value, if its layout is known (to pick the key to open it).
pub fn sealed_key_id(sealed: &[u8]) -> Option<u32> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != SEALED_VERSION {
        return None;
    }
    Some(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ]))
}

/// HKDF-SHA-256 of `material` for `purpose`.
pub fn derive(material: &KeyMaterial, purpose: &str) -> Result<KeyMaterial, CryptoError> {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"carnet/hkdf/v1");
    let info = [purpose.as_bytes()];
    let prk = salt.extract(material.expose());
    let okm = prk
        .expand(&info, Len32)
        .map_err(|_| CryptoError::KeyEncoding)?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    okm.fill(bytes.as_mut())
        .map_err(|_| CryptoError::KeyEncoding)?;
    Ok(KeyMaterial::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::SystemRandom;

    fn key(id: u32, byte: u8) -> SealingKey {
        SealingKey::new(id, &KeyMaterial::from_bytes(Zeroizing::new([byte; 32]))).expect("key")
    }

    const CONTEXT: SealContext<'static> = SealContext {
        table: "accounts",
        column: "totp_secret",
        row: b"row-1",
    };

    #[test]
    fn seals_and_opens_with_the_documented_layout() {
        let key = key(7, 1);
        let sealed = key
            .seal(b"JBSWY3DPEHPK3PXP", CONTEXT, &SystemRandom)
            .expect("seal");
        assert_eq!(sealed[0], SEALED_VERSION);
        assert_eq!(sealed_key_id(&sealed), Some(7));
        assert_eq!(sealed.len(), 1 + 4 + 12 + 16 + 16);
        assert_eq!(
            key.open(&sealed, CONTEXT).expect("open").as_slice(),
            b"JBSWY3DPEHPK3PXP"
        );
        let again = key
            .seal(b"JBSWY3DPEHPK3PXP", CONTEXT, &SystemRandom)
            .expect("seal");
        assert_ne!(sealed, again, "fresh nonce every time");
    }

    /// A random source that has run dry: sealing must fail and leave nothing behind.
    struct Failing;

    impl RandomSource for Failing {
        fn fill(&self, _buffer: &mut [u8]) -> Result<(), CryptoError> {
            Err(CryptoError::Random)
        }
    }

    #[test]
    fn values_sealed_into_one_buffer_open_one_by_one() {
        let key = key(7, 1);
        let mut out = b"already there".to_vec();
        key.seal_into(b"first", CONTEXT, &SystemRandom, &mut out)
            .expect("seal");
        let first_end = out.len();
        key.seal_into(b"second value", CONTEXT, &SystemRandom, &mut out)
            .expect("seal");
        assert_eq!(&out[..13], b"already there");
        let first = &out[13..first_end];
        let second = &out[first_end..];
        assert_eq!(first.len(), HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(key.open(first, CONTEXT).expect("open").as_slice(), b"first");
        assert_eq!(
            key.open(second, CONTEXT).expect("open").as_slice(),
            b"second value"
        );
        let before = out.clone();
        assert!(key.seal_into(b"lost", CONTEXT, &Failing, &mut out).is_err());
        assert_eq!(out, before, "a failed seal appends nothing");
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let key = key(7, 1);
        let sealed = key.seal(b"secret", CONTEXT, &SystemRandom).expect("seal");
        for index in 0..sealed.len() {
            for bit in 0..8 {
                let mut altered = sealed.clone();
                altered[index] ^= 1 << bit;
                assert!(
                    key.open(&altered, CONTEXT).is_err(),
                    "byte {index} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_or_key_does_not_open() {
        let key = key(7, 1);
        let sealed = key.seal(b"secret", CONTEXT, &SystemRandom).expect("seal");
        let other_row = SealContext {
            row: b"row-2",
            ..CONTEXT
        };
        let other_column = SealContext {
            column: "recovery",
            ..CONTEXT
        };
        let other_table = SealContext {
            table: "patients",
            ..CONTEXT
        };
        for context in [other_row, other_column, other_table] {
            assert_eq!(key.open(&sealed, context), Err(OpenError::Integrity));
        }
        assert_eq!(
            self::key(7, 2).open(&sealed, CONTEXT),
            Err(OpenError::Integrity),
            "same id, other key"
        );
        assert_eq!(
            self::key(8, 1).open(&sealed, CONTEXT),
            Err(OpenError::WrongKey(7))
        );
        assert_eq!(key.open(&sealed[..10], CONTEXT), Err(OpenError::Malformed));
    }

    #[test]
    fn opening_in_place_leaves_the_plaintext_in_the_buffer_or_refuses() {
        let key = key(7, 1);
        let sealed = key
            .seal(b"bulk chunk", CONTEXT, &SystemRandom)
            .expect("seal");
        let mut buffer = sealed.clone();
        let plaintext = key.open_in_place(&mut buffer, CONTEXT).expect("open");
        assert_eq!(&buffer[plaintext], b"bulk chunk");
        let mut altered = sealed.clone();
        *altered.last_mut().expect("tag") ^= 1;
        assert_eq!(
            key.open_in_place(&mut altered, CONTEXT),
            Err(OpenError::Integrity)
        );
        let other_row = SealContext {
            row: b"row-2",
            ..CONTEXT
        };
        assert_eq!(
            key.open_in_place(&mut sealed.clone(), other_row),
            Err(OpenError::Integrity)
        );
        assert_eq!(
            key.open_in_place(&mut sealed.clone()[..10], CONTEXT),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let root = KeyMaterial::from_bytes(Zeroizing::new([3; 32]));
        let totp = SealingKey::derived(1, &root, "totp").expect("derive");
        let other = SealingKey::derived(1, &root, "recovery").expect("derive");
        let sealed = totp.seal(b"x", CONTEXT, &SystemRandom).expect("seal");
        assert!(other.open(&sealed, CONTEXT).is_err());
        assert!(totp.open(&sealed, CONTEXT).is_ok());
    }

    proptest! {
        #[test]
        fn any_value_round_trips(plaintext in prop::collection::vec(any::<u8>(), 0..2000), row in prop::collection::vec(any::<u8>(), 0..40)) {
            let key = key(1, 9);
            let context = SealContext { table: "t", column: "c", row: &row };
            let sealed = key.seal(&plaintext, context, &SystemRandom).expect("seal");
            let opened = key.open(&sealed, context).expect("open");
            prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        }

        #[test]
        fn garbage_never_panics(garbage in prop::collection::vec(any::<u8>(), 0..100)) {
            let _ = key(1, 9).open(&garbage, CONTEXT);
            let _ = sealed_key_id(&garbage);
        }
    }
}
