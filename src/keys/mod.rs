//! Virtual keys: their format (`sk-lp-{id}_{secret}`), minting, and checking a presented key
//! against a stored hash in constant time.
//!
//! The id is public (it names the key in logs, the ledger and the admin API); the secret is
//! 190 random bits from the OS. Only the SHA-256 of the whole key is stored: a fast hash is
//! right here because the secret is random, not a password, and must be checked per request.

pub mod ring;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every virtual key starts with this.
pub const PREFIX: &str = "sk-lp-";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 32;
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A key just minted: the full key is shown once and never stored.
#[derive(Debug)]
pub struct Minted {
    /// The public id.
    pub id: String,
    /// The whole key, `sk-lp-{id}_{secret}`.
    pub key: secrecy::SecretString,
    /// Hex SHA-256 of the whole key, what the store keeps.
    pub hash: String,
}

/// Random characters from [`ALPHABET`], by rejection sampling so each is uniform.
fn random_text(len: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        // 248 = 4 × 62: bytes above it would favour the first characters.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

/// Mints a new key with a fresh id.
pub fn mint() -> Result<Minted, getrandom::Error> {
    let id = random_text(ID_LEN)?.to_ascii_lowercase();
    mint_for(&id)
}

/// Mints a new secret for an existing id (rotation keeps the id, so the ledger and spend
/// carry on under it).
pub fn mint_for(id: &str) -> Result<Minted, getrandom::Error> {
    let key = format!("{PREFIX}{id}_{}", random_text(SECRET_LEN)?);
    let hash = hash(&key);
    Ok(Minted { id: id.to_string(), key: key.into(), hash })
}

/// Hex SHA-256 of a whole key.
pub fn hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    hex
}

/// The id of a presented virtual key, if it has the shape of one.
pub fn id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let valid =
        |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (valid(id) && valid(secret)).then_some(id)
}

/// Whether `key` hashes to `stored` (hex), compared in constant time.
pub fn matches(key: &str, stored: &str) -> bool {
    bool::from(hash(key).as_bytes().ct_eq(stored.as_bytes()))
}

/// Whether an id is fit to name a key or a team: `[A-Za-z0-9._-]`, 1 to 64 long.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_minted_key_names_its_id_and_matches_its_hash() {
        let minted = mint().unwrap();
        let key = minted.key.expose_secret();
        assert!(key.starts_with("sk-lp-"));
        assert_eq!(key.len(), PREFIX.len() + ID_LEN + 1 + SECRET_LEN);
        assert_eq!(id_of(key), Some(minted.id.as_str()));
        assert!(matches(key, &minted.hash));
        assert!(!matches(&format!("{key}x"), &minted.hash));
        let rotated = mint_for(&minted.id).unwrap();
        assert_eq!(id_of(rotated.key.expose_secret()), Some(minted.id.as_str()));
        assert_ne!(rotated.hash, minted.hash);
    }

    #[test]
    fn only_key_shaped_text_has_an_id() {
        assert_eq!(id_of("sk-lp-abc_def"), Some("abc"));
        for bad in ["sk-abc", "sk-lp-abc", "sk-lp-_x", "sk-lp-a_", "sk-lp-a b_c", "Bearer sk-lp-a_b"] {
            assert_eq!(id_of(bad), None, "{bad}");
        }
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
