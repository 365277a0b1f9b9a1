//! The gateway's Ed25519 signing key (checkpoints, annotations, audit log).
//! Keys are PKCS#8 PEM; public keys SubjectPublicKeyInfo PEM, so that
//! `openssl pkeyutl -verify -rawin` can check signatures without custody.

use rcgen::{KeyPair, PKCS_ED25519, SigningKey as _};
use rustls_pki_types::pem::PemObject;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("not an Ed25519 key")]
    NotEd25519,
    #[error("public key PEM: {0}")]
    Pem(String),
}

pub struct SigningKey {
    key: KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", hex::encode(self.public_raw()))
    }
}

impl SigningKey {
    pub fn generate() -> Result<Self, SigningError> {
        Ok(SigningKey {
            key: KeyPair::generate_for(&PKCS_ED25519)?,
        })
    }

    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        let key = KeyPair::from_pem(pem)?;
        if key.algorithm() != &PKCS_ED25519 {
            return Err(SigningError::NotEd25519);
        }
        Ok(SigningKey { key })
    }

    pub fn to_pkcs8_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub fn public_key_pem(&self) -> String {
        self.key.public_key_pem()
    }

    pub fn public_raw(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.key.public_key_raw());
        out
    }

    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        // Ed25519 signing with a valid key cannot fail.
        self.key.sign(msg).expect("ed25519 signing")
    }
}

/// Extracts the raw 32-byte key from an Ed25519 public key PEM (SPKI).
pub fn public_from_pem(pem: &str) -> Result<[u8; 32], SigningError> {
    let der = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| SigningError::Pem(e.to_string()))?;
    let der = der.as_ref();
    if der.len() != 44 || der[..12] != ED25519_SPKI_PREFIX {
        return Err(SigningError::NotEd25519);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&der[12..]);
    Ok(out)
}

pub fn verify(public: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(msg, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_through_pem() {
        let k = SigningKey::generate().unwrap();
        let k2 = SigningKey::from_pem(&k.to_pkcs8_pem()).unwrap();
        assert_eq!(k.public_raw(), k2.public_raw());
        let public = public_from_pem(&k.public_key_pem()).unwrap();
        assert_eq!(public, k.public_raw());
        let sig = k2.sign(b"checkpoint");
        assert!(verify(&public, b"checkpoint", &sig));
        assert!(!verify(&public, b"checkpoinT", &sig));
        let other = SigningKey::generate().unwrap();
        assert!(!verify(&other.public_raw(), b"checkpoint", &sig));
    }

    #[test]
    fn rejects_non_ed25519() {
        let p256 = KeyPair::generate().unwrap();
        assert!(matches!(
            SigningKey::from_pem(&p256.serialize_pem()),
            Err(SigningError::NotEd25519)
        ));
        assert!(public_from_pem(&p256.public_key_pem()).is_err());
    }
}
