//! Checking the gateway's signatures (checkpoints, deletion records, the
//! export bundle) with its public key alone. A deployment signs with
//! Ed25519 or with SM2 (GB/T 32918, SM3 digest, the standard's default
//! distinguishing identifier); the key says which. Signing is the
//! gateway's (`custody_gateway::signing`); a verifier needs only this.

use custody_format::checkpoint::Checkpoint;
use rustls_pki_types::pem::PemObject;
use sm2::pkcs8::DecodePublicKey;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The SM2 distinguishing identifier custody signs with: the default of
/// GB/T 35276. OpenSSL 3.0's `pkeyutl` hashes an empty identifier unless
/// given `-pkeyopt distid:1234567812345678`.
pub const SM2_DISTID: &str = "1234567812345678";

/// A gateway's public signing key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// The raw 32-byte key (RFC 8032).
    Ed25519([u8; 32]),
    /// The uncompressed SEC1 point `04 ‖ x ‖ y` on the SM2 curve.
    Sm2([u8; 65]),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.algorithm(), self.to_hex())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    #[error("not an Ed25519 or SM2 public key")]
    Unsupported,
    #[error("public key PEM: {0}")]
    Pem(String),
}

impl PublicKey {
    /// `ed25519` or `sm2`, as `docs/manifest.md` names them.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::Sm2(_) => "sm2",
        }
    }

    /// The key's bytes: 32 (Ed25519) or 65 (SM2, uncompressed).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(k) => k,
            PublicKey::Sm2(k) => k,
        }
    }

    /// Lowercase hex of [`Self::as_bytes`]: how headers, manifests and
    /// checkpoints name the key (64 digits Ed25519, 130 digits SM2).
    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }

    /// The key a header or checkpoint names; its length says its algorithm.
    pub fn from_hex(s: &str) -> Option<PublicKey> {
        match s.len() {
            64 => custody_format::chain::parse_hex(s).map(PublicKey::Ed25519),
            130 if !s.bytes().any(|b| b.is_ascii_uppercase()) => {
                let mut k = [0u8; 65];
                hex::decode_to_slice(s, &mut k).ok()?;
                sm2::PublicKey::from_sec1_bytes(&k).ok()?;
                (k[0] == 4).then_some(PublicKey::Sm2(k))
            }
            _ => None,
        }
    }

    /// A public key PEM (SubjectPublicKeyInfo), as `openssl pkey -pubout`
    /// writes it.
    pub fn from_pem(pem: &str) -> Result<PublicKey, PublicKeyError> {
        let der = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| PublicKeyError::Pem(e.to_string()))?;
        let der = der.as_ref();
        if der.len() == 44 && der[..12] == ED25519_SPKI_PREFIX {
            let mut out = [0u8; 32];
            out.copy_from_slice(&der[12..]);
            return Ok(PublicKey::Ed25519(out));
        }
        let sm2 =
            sm2::PublicKey::from_public_key_der(der).map_err(|_| PublicKeyError::Unsupported)?;
        Ok(PublicKey::sm2(&sm2))
    }

    pub fn sm2(key: &sm2::PublicKey) -> PublicKey {
        let mut out = [0u8; 65];
        out.copy_from_slice(&key.to_sec1_bytes());
        PublicKey::Sm2(out)
    }

    /// Whether `sig` is this key's signature of `msg`: raw 64 bytes for
    /// Ed25519; DER `SEQUENCE { r, s }` for SM2 (as OpenSSL writes it).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(k) => {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k)
                    .verify(msg, sig)
                    .is_ok()
            }
            PublicKey::Sm2(k) => {
                use sm2::dsa::signature::Verifier;
                let Ok(key) = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DISTID, k) else {
                    return false;
                };
                let Ok(sig) = sm2::dsa::Signature::from_der(sig) else {
                    return false;
                };
                key.verify(msg, &sig).is_ok()
            }
        }
    }
}

/// The key of a public key PEM (SPKI).
pub fn public_from_pem(pem: &str) -> Result<PublicKey, PublicKeyError> {
    PublicKey::from_pem(pem)
}

/// Whether `sig` is `public`'s signature of `msg`.
pub fn verify(public: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    public.verify(msg, sig)
}

/// Checks a stored checkpoint's signature against `public` and parses it.
pub fn open_checkpoint(
    bytes: &[u8],
    signature: &[u8],
    public: &PublicKey,
) -> Result<Checkpoint, String> {
    if !verify(public, bytes, signature) {
        return Err("signature does not verify with the trusted public key".into());
    }
    serde_json::from_slice(bytes).map_err(|e| format!("checkpoint is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_by_their_hex_whose_length_gives_the_algorithm() {
        let ed = PublicKey::Ed25519([0xab; 32]);
        assert_eq!(PublicKey::from_hex(&ed.to_hex()), Some(ed));
        let secret = sm2::SecretKey::from_slice(&[5; 32]).unwrap();
        let sm = PublicKey::sm2(&secret.public_key());
        assert_eq!(sm.to_hex().len(), 130);
        assert!(sm.to_hex().starts_with("04"));
        assert_eq!(PublicKey::from_hex(&sm.to_hex()), Some(sm));
        for bad in [
            String::new(),
            "ab".repeat(31),
            ed.to_hex().to_uppercase(),
            // 65 bytes that are not a point on the curve.
            format!("04{}", "11".repeat(64)),
            // Compressed or garbage prefixes are not how custody names keys.
            format!("05{}", &sm.to_hex()[2..]),
        ] {
            assert_eq!(PublicKey::from_hex(&bad), None, "{bad}");
        }
    }

    /// The example of docs/manifest.md §11.6: a key and a signature made by
    /// OpenSSL 3.0 (`genpkey -algorithm SM2`; `pkeyutl -sign -rawin -digest
    /// sm3 -pkeyopt distid:1234567812345678`).
    #[test]
    fn an_openssl_sm2_signature_verifies() {
        let pem = "-----BEGIN PUBLIC KEY-----\n\
            MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAE/Nn6k6ZfVE+4d6ennNS2oJRXtVkZ\n\
            Tm3khjMXIOPGlibgsw5clPS/68RxEKm+MDCpT9r53Wupvlv/oYFFNKDElw==\n\
            -----END PUBLIC KEY-----\n";
        let key = PublicKey::from_pem(pem).unwrap();
        assert_eq!(
            key.to_hex(),
            "04fcd9fa93a65f544fb877a7a79cd4b6a09457b559194e6de486331720e3c69626\
             e0b30e5c94f4bfebc47110a9be3030a94fdaf9dd6ba9be5bffa1814534a0c497"
        );
        let msg = b"{\"format\":\"custody-checkpoint/2\",\"seq\":0}\n";
        let sig = hex::decode(
            "3045022100c55dc2037bc3410c8956adc0e9fceb99079526e172c7702ad6c8e917f0d63417\
             022025bc56d1d636ffc79587e3b87e1288178ee6321f1b0bb32db1b2993987620c3b",
        )
        .unwrap();
        assert!(key.verify(msg, &sig));
        assert!(!key.verify(b"{\"format\":\"custody-checkpoint/2\",\"seq\":1}\n", &sig));
    }

    #[test]
    fn sm2_signatures_check_against_the_message_and_the_key() {
        use sm2::dsa::signature::Signer;
        let secret = sm2::SecretKey::from_slice(&[5; 32]).unwrap();
        let signer = sm2::dsa::SigningKey::new(SM2_DISTID, &secret).unwrap();
        let public = PublicKey::sm2(&secret.public_key());
        let sig: sm2::dsa::Signature = signer.sign(b"checkpoint");
        let der = sig.to_der().to_vec();
        assert!(public.verify(b"checkpoint", &der));
        assert!(!public.verify(b"checkpoinT", &der));
        // The raw r ‖ s form is not what custody stores.
        assert!(!public.verify(b"checkpoint", &sig.to_bytes()));
        let other = sm2::SecretKey::from_slice(&[6; 32]).unwrap();
        assert!(!PublicKey::sm2(&other.public_key()).verify(b"checkpoint", &der));
        // An Ed25519 key never accepts an SM2 signature, nor the reverse.
        assert!(!PublicKey::Ed25519([7; 32]).verify(b"checkpoint", &der));
    }
}
