//! The hash chain over a recording's objects (`docs/manifest.md`):
//! `c_0 = SHA-256(32 zero bytes ‖ h_0)`, `c_i = SHA-256(c_{i−1} ‖ h_i)`,
//! where `h_i` is the SHA-256 of object `i`'s bytes.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// The chain value that follows `prev` (or the zero value for the first
/// object) when an object with hash `h` is appended.
pub fn link(prev: Option<&Hash>, h: &Hash) -> Hash {
    let mut d = Sha256::new();
    d.update(prev.unwrap_or(&[0u8; 32]));
    d.update(h);
    d.finalize().into()
}

/// A chain being extended one object at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    head: Option<Hash>,
    len: u64,
}

impl Chain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an object's hash and returns its chain value.
    pub fn push(&mut self, h: &Hash) -> Hash {
        let c = link(self.head.as_ref(), h);
        self.head = Some(c);
        self.len += 1;
        c
    }

    pub fn head(&self) -> Option<&Hash> {
        self.head.as_ref()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Serde for a [`Hash`] stored as lowercase hex, as every hash in the
/// storage format is: `#[serde(with = "custody_format::chain::hex_hash")]`.
/// A value that is not 64 lowercase hex digits is refused when read, so a
/// damaged file fails to parse instead of reaching the code that trusts it.
pub mod hex_hash {
    use super::{Hash, parse_hex};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_hex(&s).ok_or_else(|| D::Error::custom("not a SHA-256 in lowercase hex"))
    }
}

/// Parses a lowercase 64-digit hex SHA-256.
pub fn parse_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct WithHash {
        #[serde(with = "hex_hash")]
        h: Hash,
    }

    #[test]
    fn hashes_are_stored_as_lowercase_hex_and_nothing_else_is_read() {
        let v = WithHash { h: sha256(b"abc") };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"h":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#
        );
        assert_eq!(serde_json::from_str::<WithHash>(&json).unwrap(), v);
        for bad in [
            r#"{"h":"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}"#,
            r#"{"h":"ba7816bf"}"#,
            r#"{"h":"zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#,
            r#"{"h":""}"#,
            r#"{"h":7}"#,
        ] {
            assert!(serde_json::from_str::<WithHash>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_link_uses_zero_prefix() {
        let h = sha256(b"header");
        let mut pre = vec![0u8; 32];
        pre.extend_from_slice(&h);
        assert_eq!(link(None, &h), sha256(&pre));
    }

    #[test]
    fn chain_matches_definition() {
        let hs = [sha256(b"a"), sha256(b"b"), sha256(b"c")];
        let mut chain = Chain::new();
        let cs: Vec<Hash> = hs.iter().map(|h| chain.push(h)).collect();
        let mut buf = cs[0].to_vec();
        buf.extend_from_slice(&hs[1]);
        assert_eq!(cs[1], sha256(&buf));
        let mut buf = cs[1].to_vec();
        buf.extend_from_slice(&hs[2]);
        assert_eq!(cs[2], sha256(&buf));
        assert_eq!(chain.head(), Some(&cs[2]));
        assert_eq!(chain.len(), 3);
    }

    #[test]
    fn order_matters() {
        let (a, b) = (sha256(b"a"), sha256(b"b"));
        let mut x = Chain::new();
        x.push(&a);
        x.push(&b);
        let mut y = Chain::new();
        y.push(&b);
        y.push(&a);
        assert_ne!(x.head(), y.head());
    }

    #[test]
    fn spec_worked_example() {
        // docs/manifest.md §4.1, value for value.
        let mut c = Chain::new();
        let h0 = sha256(b"header");
        let h1 = sha256(b"original");
        assert_eq!(
            hex::encode(h0),
            "1e0584a25d9f43bf5cbd0aec01eb1af2220ed085b4e7f1837b0d89958cae353a"
        );
        assert_eq!(
            hex::encode(c.push(&h0)),
            "e6ec11cdfa969aac8396f8dd23c5e91dd7dc83d7f9d7686e026cb131c84a1076"
        );
        assert_eq!(
            hex::encode(h1),
            "0682c5f2076f099c34cfdd15a9e063849ed437a49677e6fcc5b4198c76575be5"
        );
        assert_eq!(
            hex::encode(c.push(&h1)),
            "1a16fabe1082089768decbd0c5adcf1a1210192ccbcaa06f6ea08637257f6e6a"
        );
        assert_eq!(
            hex::encode(link(None, &sha256(b""))),
            "1c9ecec90e28d2461650418635878a5c91e49f47586ecf75f2b0cbb94e897112"
        );
    }

    #[test]
    fn known_vector() {
        // c_0 for the SHA-256 of the empty string; fixed so the spec's
        // example in docs/manifest.md stays true.
        let c0 = link(None, &sha256(b""));
        assert_eq!(
            hex::encode(c0),
            hex::encode(sha256(
                &hex::decode(
                    "0000000000000000000000000000000000000000000000000000000000000000\
                     e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                )
                .unwrap()
            ))
        );
    }

    #[test]
    fn hex_parsing_is_strict() {
        let h = sha256(b"x");
        assert_eq!(parse_hex(&hex::encode(h)), Some(h));
        assert_eq!(parse_hex(&hex::encode(h).to_uppercase()), None);
        assert_eq!(parse_hex("abc"), None);
    }
}
