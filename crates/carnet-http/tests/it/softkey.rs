//! A software passkey for tests: a P-256 key in memory that answers WebAuthn ceremonies
//! the way an authenticator and a browser do together (`none` attestation, user present
//! and verified), so the server's real verification (webauthn-rs) runs end to end. The
//! browser tests use Chromium's own virtual authenticator instead.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

pub struct SoftKey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    /// The user handle given at registration (the account id).
    user_handle: Vec<u8>,
    counter: u32,
    origin: String,
}

impl SoftKey {
    /// Creates a credential from registration options (`{"publicKey": …}`) and returns
    /// the key and the browser's answer (`PublicKeyCredential.toJSON()`).
    pub fn register(options: &Value, origin: &str) -> (Self, Value) {
        let public_key = &options["publicKey"];
        let rp_id = public_key["rp"]["id"].as_str().expect("rp id");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let user_handle = decode(public_key["user"]["id"].as_str().expect("user id"));
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key");
        let mut credential_id = vec![0_u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).expect("random");
        let point = key.public_key().as_ref(); // 0x04 ‖ x ‖ y
        let mut cose = Vec::new();
        cbor_map_header(&mut cose, 5);
        cbor_int(&mut cose, 1);
        cbor_int(&mut cose, 2); // kty: EC2
        cbor_int(&mut cose, 3);
        cbor_int(&mut cose, -7); // alg: ES256
        cbor_int(&mut cose, -1);
        cbor_int(&mut cose, 1); // crv: P-256
        cbor_int(&mut cose, -2);
        cbor_bytes(&mut cose, &point[1..33]);
        cbor_int(&mut cose, -3);
        cbor_bytes(&mut cose, &point[33..65]);
        let mut auth_data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(0x45); // user present, user verified, attested credential data
        auth_data.extend_from_slice(&0_u32.to_be_bytes());
        auth_data.extend_from_slice(&[0; 16]); // AAGUID
        auth_data.extend_from_slice(
            &u16::try_from(credential_id.len())
                .expect("short")
                .to_be_bytes(),
        );
        auth_data.extend_from_slice(&credential_id);
        auth_data.extend_from_slice(&cose);
        let mut attestation = Vec::new();
        cbor_map_header(&mut attestation, 3);
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        cbor_map_header(&mut attestation, 0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        let client_data = json!({
            "type": "webauthn.create", "challenge": challenge, "origin": origin, "crossOrigin": false
        })
        .to_string();
        let answer = json!({
            "id": encode(&credential_id),
            "rawId": encode(&credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": encode(client_data.as_bytes()),
                "attestationObject": encode(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        });
        let soft = Self {
            key,
            credential_id,
            user_handle,
            counter: 0,
            origin: origin.to_owned(),
        };
        (soft, answer)
    }

    /// Signs a sign-in challenge (`{"publicKey": …}`): the browser's answer.
    pub fn sign_in(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let public_key = &options["publicKey"];
        let rp_id = public_key["rpId"].as_str().expect("rp id");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let mut auth_data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(0x05); // user present, user verified
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        let client_data = json!({
            "type": "webauthn.get", "challenge": challenge, "origin": self.origin, "crossOrigin": false
        })
        .to_string();
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, client_data.as_bytes()).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).expect("sign");
        json!({
            "id": encode(&self.credential_id),
            "rawId": encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": encode(&auth_data),
                "clientDataJSON": encode(client_data.as_bytes()),
                "signature": encode(signature.as_ref()),
                "userHandle": encode(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    carnet_crypto::base64url(bytes)
}

/// Base64url (with or without padding) to bytes.
pub fn decode(text: &str) -> Vec<u8> {
    let mut bits = 0_u32;
    let mut count = 0;
    let mut out = Vec::new();
    for char in text.bytes().filter(|byte| *byte != b'=') {
        let value = ALPHABET
            .iter()
            .position(|candidate| *candidate == char)
            .expect("base64url");
        bits = bits << 6 | u32::try_from(value).expect("small");
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).expect("byte"));
        }
    }
    out
}

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | u8::try_from(value).expect("small")),
        24..=0xff => out.extend([major | 0x18, u8::try_from(value).expect("byte")]),
        _ => {
            out.push(major | 0x19);
            out.extend_from_slice(&u16::try_from(value).expect("short").to_be_bytes());
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        cbor_head(out, 0, value.unsigned_abs());
    } else {
        cbor_head(out, 1, (-1 - value).unsigned_abs());
    }
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn cbor_map_header(out: &mut Vec<u8>, entries: u64) {
    cbor_head(out, 5, entries);
}

#[test]
fn base64url_round_trips() {
    for length in 0..40_u8 {
        let bytes: Vec<u8> = (0..length).map(|i| i.wrapping_mul(37)).collect();
        assert_eq!(decode(&encode(&bytes)), bytes);
    }
    assert_eq!(encode(b"\xfb\xff"), "-_8");
}
