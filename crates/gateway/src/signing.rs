//! The gateway's Ed25519 signing key (checkpoints, annotations, audit log).
//! Keys are PKCS#8 PEM; public keys SubjectPublicKeyInfo PEM, so that
//! `openssl pkeyutl -verify -rawin` can check signatures without custody.

use rcgen::{KeyPair, PKCS_ED25519, SigningKey as _};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("not an Ed25519 key")]
    NotEd25519,
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

pub use custody_verify::signature::{public_from_pem, verify};

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
