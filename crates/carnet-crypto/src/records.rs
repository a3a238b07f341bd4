//! The keys of care records (DESIGN.md, key hierarchy): a data key per practice, wrapped
//! by a key derived from the instance key; a data key per patient, wrapped by its
//! practice's key (erasing it erases the patient, backups included); blind-index keys
//! derived from the practice key per field. Wrapping is sealing (AES-256-GCM) with the
//! key's place as associated data, so a wrapped key moved to another row fails to open.

use std::fmt;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::sealing::derive;
use crate::{CryptoError, KeyMaterial, OpenError, RandomSource, SealContext, SealingKey};

/// Blind indexes keep this many bytes of the HMAC: enough to make collisions between
/// different values negligible; the candidates are opened and compared anyway.
pub const BLIND_INDEX_LEN: usize = 16;

/// A 256-bit data key (a practice's or a patient's). Zeroed on drop, never printed.
pub struct DataKey(KeyMaterial);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn generate(random: &dyn RandomSource) -> Result<Self, CryptoError> {
        KeyMaterial::generate(random).map(Self)
    }

    /// This key sealed by `wrapping` for the place `context` names.
    pub fn wrap(
        &self,
        wrapping: &SealingKey,
        context: SealContext<'_>,
        random: &dyn RandomSource,
    ) -> Result<Vec<u8>, CryptoError> {
        wrapping.seal(self.0.expose(), context, random)
    }

    /// Opens a key wrapped by `wrapping` for `context`.
    pub fn unwrap(
        wrapping: &SealingKey,
        wrapped: &[u8],
        context: SealContext<'_>,
    ) -> Result<Self, OpenError> {
        let opened = wrapping.open(wrapped, context)?;
        let bytes: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| OpenError::Malformed)?;
        Ok(Self(KeyMaterial::from_bytes(Zeroizing::new(bytes))))
    }

    /// The AEAD key that seals values (and wraps keys) under this key, as version `id`.
    pub fn sealing_key(&self, id: u32) -> Result<SealingKey, CryptoError> {
        SealingKey::new(id, &self.0)
    }

    /// The blind-index key of one field (HKDF from this key).
    pub fn blind_index_key(&self, field: &str) -> Result<BlindIndexKey, CryptoError> {
        let material = derive(&self.0, &format!("carnet/blind-index/{field}/v1"))?;
        Ok(BlindIndexKey(hmac::Key::new(
            hmac::HMAC_SHA256,
            material.expose(),
        )))
    }
}

/// Computes blind indexes of one field: HMAC-SHA-256 of the normalised value, truncated.
pub struct BlindIndexKey(hmac::Key);

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}

impl BlindIndexKey {
    pub fn digest(&self, normalized: &str) -> [u8; BLIND_INDEX_LEN] {
        let tag = hmac::sign(&self.0, normalized.as_bytes());
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&tag.as_ref()[..BLIND_INDEX_LEN]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    const PLACE: SealContext<'static> = SealContext {
        table: "patients",
        column: "wrapped_key",
        row: b"patient-1",
    };

    #[test]
    fn a_wrapped_key_opens_only_in_its_place_and_under_its_wrapping_key() {
        let practice = DataKey::generate(&SystemRandom).expect("key");
        let wrapping = practice.sealing_key(1).expect("sealing");
        let patient = DataKey::generate(&SystemRandom).expect("key");
        let wrapped = patient.wrap(&wrapping, PLACE, &SystemRandom).expect("wrap");
        let opened = DataKey::unwrap(&wrapping, &wrapped, PLACE).expect("unwrap");
        assert_eq!(opened.0.expose(), patient.0.expose());
        let elsewhere = SealContext {
            row: b"patient-2",
            ..PLACE
        };
        assert_eq!(
            DataKey::unwrap(&wrapping, &wrapped, elsewhere).err(),
            Some(OpenError::Integrity)
        );
        let other_practice = DataKey::generate(&SystemRandom)
            .expect("key")
            .sealing_key(1)
            .expect("sealing");
        assert_eq!(
            DataKey::unwrap(&other_practice, &wrapped, PLACE).err(),
            Some(OpenError::Integrity)
        );
    }

    #[test]
    fn blind_indexes_differ_per_field_and_per_practice() {
        let practice = DataKey::generate(&SystemRandom).expect("key");
        let names = practice.blind_index_key("birth_name").expect("key");
        let used = practice.blind_index_key("used_name").expect("key");
        assert_eq!(names.digest("DUPONT"), names.digest("DUPONT"));
        assert_ne!(names.digest("DUPONT"), used.digest("DUPONT"));
        let other = DataKey::generate(&SystemRandom)
            .expect("key")
            .blind_index_key("birth_name")
            .expect("key");
        assert_ne!(names.digest("DUPONT"), other.digest("DUPONT"));
    }
}
