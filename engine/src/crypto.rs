//! Secrets at rest: AES-256-GCM under a key id, so keys can be rotated.
//!
//! Ciphertexts are `v1.<key id>.<base64url(nonce ‖ ciphertext+tag)>`. The key id is the first 8
//! hex digits of SHA-256 of the key, so it identifies a key without revealing it. Encryption always
//! uses the current key; decryption accepts any key in the ring (current plus retired ones), which
//! is what makes rotation possible without re-encrypting everything at once.

use std::collections::HashMap;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct KeyRing {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

/// Decodes a base64 (standard or url-safe) 32-byte key.
pub fn decode_key(b64: &str) -> Result<[u8; 32]> {
    let b64 = b64.trim();
    let bytes = STANDARD
        .decode(b64)
        .or_else(|_| URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')))
        .map_err(|_| Error::Config("encryption key is not valid base64".into()))?;
    bytes
        .try_into()
        .map_err(|_| Error::Config("encryption key must decode to exactly 32 bytes".into()))
}

/// A new random key, base64-encoded.
pub fn generate_key_b64() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    STANDARD.encode(k)
}

impl KeyRing {
    /// `current` encrypts; `retired` only decrypt.
    pub fn new(current: [u8; 32], retired: &[[u8; 32]]) -> Self {
        let mut keys = HashMap::new();
        for k in retired.iter().chain(std::iter::once(&current)) {
            keys.insert(key_id(k), Aes256Gcm::new(k.into()));
        }
        KeyRing {
            current: key_id(&current),
            keys,
        }
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String> {
        let cipher = &self.keys[&self.current];
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!(
            "v1.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    pub fn decrypt(&self, sealed: &str) -> Result<Vec<u8>> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::internal("sealed secret has an unknown format"));
        };
        let cipher = self
            .keys
            .get(kid)
            .ok_or_else(|| Error::internal(format!("no key with id {kid} in the key ring")))?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Error::internal("sealed secret is not base64"))?;
        if blob.len() < 12 + 16 {
            return Err(Error::internal("sealed secret is truncated"));
        }
        let (nonce, ct) = blob.split_at(12);
        cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| Error::internal("decryption failed (wrong key or tampered data)"))
    }

    pub fn encrypt_str(&self, s: &str) -> Result<String> {
        self.encrypt(s.as_bytes())
    }

    pub fn decrypt_str(&self, sealed: &str) -> Result<String> {
        String::from_utf8(self.decrypt(sealed)?)
            .map_err(|_| Error::internal("decrypted secret is not UTF-8"))
    }

    /// Reads the key file in `data_dir`, creating it (0600) with a fresh key on first start.
    /// Returns the ring and whether the key was just generated.
    pub fn load_or_create_file(data_dir: &Path) -> Result<(Self, bool)> {
        let path = data_dir.join("encryption.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
            return Ok((KeyRing::new(decode_key(&text)?, &[]), false));
        }
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", data_dir.display())))?;
        let b64 = generate_key_b64();
        write_private(&path, &b64)?;
        Ok((KeyRing::new(decode_key(&b64)?, &[]), true))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Config(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_rotation_and_tamper() {
        let k1 = decode_key(&generate_key_b64()).unwrap();
        let k2 = decode_key(&generate_key_b64()).unwrap();
        let old = KeyRing::new(k1, &[]);
        let sealed = old.encrypt_str("refresh-token").unwrap();
        assert_eq!(old.decrypt_str(&sealed).unwrap(), "refresh-token");

        let rotated = KeyRing::new(k2, &[k1]);
        assert_eq!(rotated.decrypt_str(&sealed).unwrap(), "refresh-token");
        let resealed = rotated.encrypt_str("refresh-token").unwrap();
        assert!(resealed.contains(rotated.current_key_id()));
        assert!(
            old.decrypt_str(&resealed).is_err(),
            "a retired ring cannot read the new key's data"
        );

        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(old.decrypt_str(&tampered).is_err());
    }

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = KeyRing::load_or_create_file(dir.path()).unwrap();
        assert!(created);
        let (b, created) = KeyRing::load_or_create_file(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(a.current_key_id(), b.current_key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("encryption.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
