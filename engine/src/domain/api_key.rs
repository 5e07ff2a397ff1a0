use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::WorkspaceId;
use crate::error::{Error, Result};

/// What a key may do. `admin` implies `write` implies `read`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(Error::invalid(
                "scopes",
                format!("unknown scope '{other}' (read, write, admin)"),
            )),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's set of scopes, stored as comma-separated text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(mut scopes: Vec<Scope>) -> Result<Self> {
        if scopes.is_empty() {
            return Err(Error::invalid("scopes", "at least one scope is required"));
        }
        scopes.sort();
        scopes.dedup();
        Ok(Scopes(scopes))
    }

    pub fn all() -> Self {
        Scopes(vec![Scope::Read, Scope::Write, Scope::Admin])
    }

    /// True if the key may perform an operation that needs `needed`.
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.iter().any(|s| *s >= needed)
    }

    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    pub fn to_db(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn from_db(s: &str) -> Result<Self> {
        let v = s
            .split(',')
            .filter(|p| !p.is_empty())
            .map(Scope::from_str)
            .collect::<Result<Vec<_>>>()?;
        Scopes::new(v)
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// An API key as the store keeps it: never the key itself, only its SHA-256 and a display prefix.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: uuid::Uuid,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The first characters of the key, to tell keys apart in lists.
    pub prefix: String,
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl ApiKey {
    /// Why this key cannot be used at `now`, if it cannot.
    pub fn unusable_reason(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("API key has been revoked")
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some("API key has expired")
        } else {
            None
        }
    }
}

/// What the store needs to insert a key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
}

const KEY_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of the random body: 40 base-62 characters ≈ 238 bits.
const KEY_BODY_LEN: usize = 40;
/// Characters of the key kept for display ("vs_" + 9).
pub const KEY_PREFIX_LEN: usize = 12;

/// A freshly generated key: `vs_` + 40 unbiased base-62 characters (uniform sampling, no modulo
/// bias), with its hash and display prefix.
pub struct GeneratedKey {
    pub key: String,
    pub hash: String,
    pub prefix: String,
}

pub fn generate_key() -> GeneratedKey {
    let mut rng = rand::rng();
    let body: String = (0..KEY_BODY_LEN)
        .map(|_| KEY_ALPHABET[rng.random_range(0..KEY_ALPHABET.len())] as char)
        .collect();
    let key = format!("vs_{body}");
    GeneratedKey {
        hash: hash_key(&key),
        prefix: key_prefix(&key),
        key,
    }
}

/// SHA-256 of the key, lowercase hex. Keys carry ~238 bits of entropy, so a plain hash is enough
/// (no salt or slow KDF needed), and lookup stays one indexed equality.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX_LEN).collect()
}

/// A key supplied from outside (bootstrap) must be long enough to be unguessable.
pub fn validate_external_key(key: &str) -> Result<()> {
    if key.len() < 24 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Config(
            "VITASYNC_BOOTSTRAP_API_KEY must be at least 24 printable characters without spaces"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_imply_lower_ones() {
        let admin = Scopes::new(vec![Scope::Admin]).unwrap();
        assert!(
            admin.allows(Scope::Read) && admin.allows(Scope::Write) && admin.allows(Scope::Admin)
        );
        let read = Scopes::new(vec![Scope::Read]).unwrap();
        assert!(read.allows(Scope::Read) && !read.allows(Scope::Write));
        assert_eq!(
            Scopes::from_db(&Scopes::all().to_db()).unwrap(),
            Scopes::all()
        );
        assert!(Scopes::new(vec![]).is_err());
    }

    #[test]
    fn generated_keys_are_distinct_and_hash_to_hex() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a.key, b.key);
        assert_eq!(a.key.len(), 3 + KEY_BODY_LEN);
        assert_eq!(a.hash.len(), 64);
        assert!(a.key.starts_with(&a.prefix));
        assert_eq!(hash_key(&a.key), a.hash);
    }
}
