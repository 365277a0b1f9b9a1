//! The gateway's signing key (checkpoints, annotations, audit log, deletion
//! records, requests between gateways): Ed25519, or SM2 (GB/T 32918) where
//! a deployment must use the Chinese national algorithms. The key file
//! decides which. Keys are PKCS#8 PEM; public keys SubjectPublicKeyInfo
//! PEM, so that `openssl pkeyutl -verify` checks signatures without custody
//! (`-rawin` for Ed25519; `-rawin -digest sm3 -pkeyopt
//! distid:1234567812345678` for SM2).

use rcgen::{KeyPair, PKCS_ED25519, SigningKey as _};
use sm2::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

pub use custody_verify::signature::{PublicKey, SM2_DISTID, public_from_pem, verify};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("not an Ed25519 or SM2 private key (PKCS#8 PEM)")]
    Unsupported,
    #[error("SM2 key: {0}")]
    Sm2(String),
}

/// Which algorithm a new key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Ed25519,
    Sm2,
}

pub enum SigningKey {
    Ed25519(Box<KeyPair>),
    Sm2 {
        signer: Box<sm2::dsa::SigningKey>,
        /// Worked out once: every checkpoint and header names it.
        public: PublicKey,
    },
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?})", self.public())
    }
}

impl SigningKey {
    /// A new Ed25519 key.
    pub fn generate() -> Result<Self, SigningError> {
        Self::generate_for(Algorithm::Ed25519)
    }

    pub fn generate_for(algorithm: Algorithm) -> Result<Self, SigningError> {
        match algorithm {
            Algorithm::Ed25519 => Ok(SigningKey::Ed25519(Box::new(KeyPair::generate_for(
                &PKCS_ED25519,
            )?))),
            Algorithm::Sm2 => {
                use sm2::elliptic_curve::Generate;
                Self::sm2(sm2::SecretKey::generate())
            }
        }
    }

    fn sm2(secret: sm2::SecretKey) -> Result<Self, SigningError> {
        let signer = sm2::dsa::SigningKey::new(SM2_DISTID, &secret)
            .map_err(|e| SigningError::Sm2(e.to_string()))?;
        Ok(SigningKey::Sm2 {
            public: PublicKey::sm2(&secret.public_key()),
            signer: Box::new(signer),
        })
    }

    /// A PKCS#8 private key PEM: Ed25519, or an EC key on the SM2 curve
    /// (as `openssl genpkey -algorithm SM2` writes it).
    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        if let Ok(secret) = sm2::SecretKey::from_pkcs8_pem(pem) {
            return Self::sm2(secret);
        }
        let key = KeyPair::from_pem(pem).map_err(|_| SigningError::Unsupported)?;
        if key.algorithm() != &PKCS_ED25519 {
            return Err(SigningError::Unsupported);
        }
        Ok(SigningKey::Ed25519(Box::new(key)))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Ed25519(_) => Algorithm::Ed25519,
            SigningKey::Sm2 { .. } => Algorithm::Sm2,
        }
    }

    pub fn to_pkcs8_pem(&self) -> String {
        match self {
            SigningKey::Ed25519(k) => k.serialize_pem(),
            SigningKey::Sm2 { signer, .. } => sm2::SecretKey::from(*signer.as_nonzero_scalar())
                .to_pkcs8_pem(LineEnding::LF)
                .expect("an SM2 secret key encodes")
                .to_string(),
        }
    }

    pub fn public_key_pem(&self) -> String {
        match self {
            SigningKey::Ed25519(k) => k.public_key_pem(),
            SigningKey::Sm2 { signer, .. } => signer
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("an SM2 public key encodes"),
        }
    }

    pub fn public(&self) -> PublicKey {
        match self {
            SigningKey::Ed25519(k) => {
                let mut out = [0u8; 32];
                out.copy_from_slice(k.public_key_raw());
                PublicKey::Ed25519(out)
            }
            SigningKey::Sm2 { public, .. } => *public,
        }
    }

    /// The signature of `msg`: 64 raw bytes (Ed25519) or DER (SM2).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            // Ed25519 signing with a valid key cannot fail.
            SigningKey::Ed25519(k) => k.sign(msg).expect("ed25519 signing"),
            SigningKey::Sm2 { signer, .. } => {
                use sm2::dsa::signature::Signer;
                let sig: sm2::dsa::Signature = signer.sign(msg);
                sig.to_der().to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_through_pem() {
        for algorithm in [Algorithm::Ed25519, Algorithm::Sm2] {
            let k = SigningKey::generate_for(algorithm).unwrap();
            let k2 = SigningKey::from_pem(&k.to_pkcs8_pem()).unwrap();
            assert_eq!(k2.algorithm(), algorithm);
            assert_eq!(k.public(), k2.public());
            let public = public_from_pem(&k.public_key_pem()).unwrap();
            assert_eq!(public, k.public());
            let sig = k2.sign(b"checkpoint");
            assert!(verify(&public, b"checkpoint", &sig));
            assert!(!verify(&public, b"checkpoinT", &sig));
            let other = SigningKey::generate_for(algorithm).unwrap();
            assert!(!verify(&other.public(), b"checkpoint", &sig));
        }
    }

    #[test]
    fn rejects_keys_of_other_algorithms() {
        let p256 = KeyPair::generate().unwrap();
        assert!(matches!(
            SigningKey::from_pem(&p256.serialize_pem()),
            Err(SigningError::Unsupported)
        ));
        assert!(public_from_pem(&p256.public_key_pem()).is_err());
    }

    /// OpenSSL's option for the distinguishing identifier: its `pkeyutl`
    /// (3.0) otherwise hashes an empty one.
    const DISTID_OPT: &str = "distid:1234567812345678";

    /// OpenSSL, which knows nothing of custody, checks custody's SM2
    /// signature, custody checks OpenSSL's, and custody reads a key OpenSSL
    /// made.
    #[test]
    fn openssl_checks_sm2_signatures_and_makes_keys_custody_reads() {
        let dir = tempfile::tempdir().unwrap();
        let k = SigningKey::generate_for(Algorithm::Sm2).unwrap();
        let (msg, sig, public) = (
            dir.path().join("msg"),
            dir.path().join("sig"),
            dir.path().join("pub.pem"),
        );
        std::fs::write(&msg, b"{\"format\":\"custody-checkpoint/2\"}").unwrap();
        std::fs::write(&sig, k.sign(&std::fs::read(&msg).unwrap())).unwrap();
        std::fs::write(&public, k.public_key_pem()).unwrap();
        let check = |m: &std::path::Path| {
            std::process::Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
                .arg(&public)
                .args(["-rawin", "-digest", "sm3", "-pkeyopt", DISTID_OPT, "-in"])
                .arg(m)
                .arg("-sigfile")
                .arg(&sig)
                .output()
                .expect("openssl")
        };
        let ok = check(&msg);
        assert!(
            ok.status.success(),
            "openssl: {}{}",
            String::from_utf8_lossy(&ok.stdout),
            String::from_utf8_lossy(&ok.stderr)
        );
        let other = dir.path().join("other");
        std::fs::write(&other, b"{\"format\":\"custody-checkpoint/3\"}").unwrap();
        assert!(!check(&other).status.success());

        let key = dir.path().join("openssl.key");
        let made = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "SM2", "-out"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        let theirs = SigningKey::from_pem(&std::fs::read_to_string(&key).unwrap()).unwrap();
        assert_eq!(theirs.algorithm(), Algorithm::Sm2);
        let pubout = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .output()
            .unwrap();
        let their_public = public_from_pem(&String::from_utf8(pubout.stdout).unwrap()).unwrap();
        assert_eq!(their_public, theirs.public());
        let their_sig = dir.path().join("their.sig");
        let signed = std::process::Command::new("openssl")
            .args(["pkeyutl", "-sign", "-inkey"])
            .arg(&key)
            .args(["-rawin", "-digest", "sm3", "-pkeyopt", DISTID_OPT, "-in"])
            .arg(&msg)
            .arg("-out")
            .arg(&their_sig)
            .status()
            .unwrap();
        assert!(signed.success());
        let their_sig = std::fs::read(&their_sig).unwrap();
        assert!(verify(
            &their_public,
            &std::fs::read(&msg).unwrap(),
            &their_sig
        ));
        assert!(!verify(&their_public, b"something else", &their_sig));
    }
}
