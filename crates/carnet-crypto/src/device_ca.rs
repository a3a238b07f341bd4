//! The instance's device certificate authority (rcgen on aws-lc-rs): it certifies the
//! keys of command-line and API clients, so the TLS listener can tell a registered device
//! by its certificate. The authority's key is sealed by the caller before it is stored;
//! this module only makes, reads and uses it.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
    SignatureAlgorithm,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{RandomSource, sha256};

/// Why a certificate could not be made or a signing request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the signing request is not a valid PEM certificate request")]
    UnreadableRequest,
    #[error("the signing request's signature does not verify")]
    BadRequestSignature,
    #[error("the key type is not accepted (ECDSA P-256 or P-384, or Ed25519)")]
    UnsupportedKey,
    #[error("the device authority could not be read or used: {0}")]
    Authority(String),
    #[error("the operating system's random source failed")]
    Random,
}

/// The key algorithms a device may use: what every TLS client library can sign with.
const ACCEPTED_KEYS: [&SignatureAlgorithm; 3] = [
    &rcgen::PKCS_ECDSA_P256_SHA256,
    &rcgen::PKCS_ECDSA_P384_SHA384,
    &rcgen::PKCS_ED25519,
];

/// How long the authority's own certificate is valid.
const AUTHORITY_YEARS: i64 = 20;
/// Validity starts this much before "now", for clients whose clock is a little behind.
const CLOCK_SKEW_SECONDS: i64 = 3600;

/// A certificate issued to a device.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub der: Vec<u8>,
    pub pem: String,
    /// SHA-256 of the DER: how the TLS listener finds the device.
    pub fingerprint: [u8; 32],
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IssuedCertificate({})",
            crate::base64url(&self.fingerprint)
        )
    }
}

/// The device certificate authority: its certificate and its signing key.
pub struct DeviceAuthority {
    certificate_pem: String,
    certificate_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for DeviceAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceAuthority(<key redacted>)")
    }
}

fn at(unix_seconds: i64) -> Result<OffsetDateTime, CertificateError> {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .map_err(|error| CertificateError::Authority(error.to_string()))
}

fn serial(random: &dyn RandomSource) -> Result<SerialNumber, CertificateError> {
    let mut bytes = [0_u8; 16];
    random
        .fill(&mut bytes)
        .map_err(|_| CertificateError::Random)?;
    // Positive and of a fixed length, as RFC 5280 asks of serial numbers.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn authority_error(error: &rcgen::Error) -> CertificateError {
    CertificateError::Authority(error.to_string())
}

impl DeviceAuthority {
    /// A new authority; returns it with its private key in PEM (to be sealed before it
    /// is stored).
    pub fn generate(
        now_unix: i64,
        random: &dyn RandomSource,
    ) -> Result<(Self, Zeroizing<String>), CertificateError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|error| authority_error(&error))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Carnet - autorité des appareils");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = at(now_unix - CLOCK_SKEW_SECONDS)?;
        params.not_after = at(now_unix + AUTHORITY_YEARS * 365 * 86_400)?;
        params.serial_number = Some(serial(random)?);
        let certificate = params
            .self_signed(&key)
            .map_err(|error| authority_error(&error))?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        let authority = Self::from_parts(&certificate.pem(), &key_pem)?;
        Ok((authority, key_pem))
    }

    /// The authority from its stored certificate and (opened) key.
    pub fn from_parts(certificate_pem: &str, key_pem: &str) -> Result<Self, CertificateError> {
        let key = KeyPair::from_pem(key_pem).map_err(|error| authority_error(&error))?;
        let certificate_der = pem_contents(certificate_pem)
            .ok_or_else(|| CertificateError::Authority("unreadable certificate".into()))?;
        let issuer = Issuer::from_ca_cert_pem(certificate_pem, key)
            .map_err(|error| authority_error(&error))?;
        Ok(Self {
            certificate_pem: certificate_pem.to_owned(),
            certificate_der,
            issuer,
        })
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// Certifies the key of a signing request for TLS client authentication, for
    /// `valid_days` from `now_unix`. Only the request's key is taken (its proof of
    /// possession checked); the name and extensions are ours.
    pub fn issue(
        &self,
        request_pem: &str,
        subject: &str,
        now_unix: i64,
        valid_days: i64,
        random: &dyn RandomSource,
    ) -> Result<IssuedCertificate, CertificateError> {
        let request = check_signing_request(request_pem)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, subject);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = at(now_unix - CLOCK_SKEW_SECONDS)?;
        params.not_after = at(now_unix + valid_days * 86_400)?;
        params.serial_number = Some(serial(random)?);
        params.use_authority_key_identifier_extension = true;
        let certificate = params
            .signed_by(&request.public_key, &self.issuer)
            .map_err(|error| authority_error(&error))?;
        let der = certificate.der().to_vec();
        Ok(IssuedCertificate {
            fingerprint: sha256(&der),
            pem: certificate.pem(),
            der,
        })
    }
}

/// Parses a PEM signing request, checks its signature (proof that the requester holds
/// the key) and its key type.
pub fn check_signing_request(
    request_pem: &str,
) -> Result<CertificateSigningRequestParams, CertificateError> {
    let request = CertificateSigningRequestParams::from_pem(request_pem).map_err(|error| {
        if matches!(error, rcgen::Error::InvalidCertificationRequestSignature) {
            CertificateError::BadRequestSignature
        } else {
            CertificateError::UnreadableRequest
        }
    })?;
    if !ACCEPTED_KEYS.contains(&request.public_key.algorithm()) {
        return Err(CertificateError::UnsupportedKey);
    }
    Ok(request)
}

/// A new device key (ECDSA P-256) and its signing request, for `carnet device enroll`:
/// returns (private key PEM, request PEM).
pub fn new_device_key(label: &str) -> Result<(Zeroizing<String>, String), CertificateError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|error| authority_error(&error))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, label);
    params.distinguished_name = name;
    let request = params
        .serialize_request(&key)
        .and_then(|request| request.pem())
        .map_err(|error| authority_error(&error))?;
    Ok((Zeroizing::new(key.serialize_pem()), request))
}

/// A DER certificate as PEM.
pub fn certificate_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// The DER of the first certificate in `text`.
fn pem_contents(text: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(text.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    const NOW: i64 = 1_795_429_020;

    #[test]
    fn a_request_is_certified_by_an_authority_read_back_from_its_parts() {
        let (authority, key_pem) =
            DeviceAuthority::generate(NOW, &SystemRandom).expect("authority");
        let reread =
            DeviceAuthority::from_parts(authority.certificate_pem(), &key_pem).expect("reread");
        assert_eq!(reread.certificate_der(), authority.certificate_der());
        let (_, request) = new_device_key("poste").expect("device key");
        let issued = reread
            .issue(&request, "Carnet appareil 1", NOW, 730, &SystemRandom)
            .expect("issued");
        assert_eq!(issued.fingerprint, sha256(&issued.der));
        assert!(issued.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let again = reread
            .issue(&request, "Carnet appareil 1", NOW, 730, &SystemRandom)
            .expect("issued again");
        assert_ne!(again.der, issued.der, "a fresh serial every time");
    }

    #[test]
    fn an_altered_or_unreadable_request_is_refused() {
        let (_, request) = new_device_key("poste").expect("device key");
        let der = pem_body(&request);
        // Flip one bit of the signature (the last bytes of the DER).
        let mut altered = der.clone();
        let last = altered.len() - 2;
        altered[last] ^= 0x01;
        let altered_pem = to_pem(&altered);
        assert_eq!(
            check_signing_request(&altered_pem).err(),
            Some(CertificateError::BadRequestSignature)
        );
        assert_eq!(
            check_signing_request("not a request").err(),
            Some(CertificateError::UnreadableRequest)
        );
        assert!(check_signing_request(&request).is_ok());
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        use rustls_pki_types::CertificateSigningRequestDer;
        use rustls_pki_types::pem::PemObject as _;
        CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
            .expect("PEM")
            .as_ref()
            .to_vec()
    }

    fn to_pem(der: &[u8]) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der.to_vec()))
    }
}
