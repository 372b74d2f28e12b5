//! Secrets at rest: the master key, authenticated encryption of every secret value, and key rotation.
//!
//! # How a secret is stored
//!
//! Each value (an API key, an access token, a refresh token, a PKCE verifier) is sealed with
//! XChaCha20-Poly1305 under the current master key, with a fresh random 192-bit nonce, and with
//! *associated data* naming the connection id and the secret's key:
//!
//! ```text
//! aad = "claribi/secret/v1" 0x00 <connection id> 0x00 <secret key>
//! row = (connection id, secret key, master key id, nonce, ciphertext+tag)
//! ```
//!
//! A ciphertext copied to another connection (or to another key of the same connection) fails
//! authentication instead of decrypting. The master key id stored with each row lets
//! [`MasterKeys::rotate`] and `claribi-host rotate-key` re-encrypt everything under a new key.
//!
//! # Where the master key comes from
//!
//! 1. `CLARIBI_MASTER_KEY`: one or more base64-encoded 32-byte keys, comma-separated; the first
//!    encrypts, all decrypt (so a rotation is: put the new key first, run `rotate-key`, drop the old).
//! 2. Otherwise `<data-dir>/master.key`, created on first use with mode 0600: one
//!    `<key-id> <base64 key>` line per key, the first being current.
//!
//! ```
//! use claribi_host::vault::sealing::MasterKeys;
//! let keys = MasterKeys::generate();
//! let sealed = keys.seal("conn_1", "api-key", b"sk_live_123").unwrap();
//! assert_eq!(keys.open("conn_1", "api-key", &sealed).unwrap().as_slice(), b"sk_live_123");
//! assert!(keys.open("conn_2", "api-key", &sealed).is_err()); // bound to the connection
//! ```

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Environment variable that can hold the master key(s) instead of the key file.
pub const MASTER_KEY_ENV: &str = "CLARIBI_MASTER_KEY";

/// One sealed secret value, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the master key that sealed it.
    pub key_id: String,
    /// The 24-byte nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with the Poly1305 tag appended.
    pub ciphertext: Vec<u8>,
}

#[derive(Clone)]
struct MasterKey {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
}

/// Where the keys came from, so rotation knows what it can write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The key file at this path.
    File(PathBuf),
    /// The environment variable.
    Env,
    /// In memory only (tests, docs).
    Memory,
}

/// The master keys: one seals (the first, unless a fleet's database names another, see
/// [`MasterKeys::seal_under`]), all of them open. A clone is zeroized when dropped, as the original is.
pub struct MasterKeys {
    keys: Vec<MasterKey>,
    source: KeySource,
    /// Which of `keys` seals.
    sealing: std::sync::atomic::AtomicUsize,
}

impl Clone for MasterKeys {
    fn clone(&self) -> MasterKeys {
        MasterKeys { keys: self.keys.clone(), source: self.source.clone(), sealing: self.sealing_index().into() }
    }
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key bytes.
        f.debug_struct("MasterKeys")
            .field("ids", &self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .field("source", &self.source)
            .finish()
    }
}

fn key_id(bytes: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"claribi-master-key-id\0");
    h.update(bytes);
    hex::encode(&h.finalize()[..8])
}

/// The associated data of a sealed value. Format 1 (hosts before credentials were kept out of
/// connectors) binds the connection and the name; format 2 also binds `meta`: for a credential its
/// kind and binding, so that a row whose binding was edited in the database no longer opens.
fn aad(connection_id: &str, name: &str, meta: Option<&[u8]>) -> Vec<u8> {
    let mut a = match meta {
        None => b"claribi/secret/v1\0".to_vec(),
        Some(_) => b"claribi/secret/v2\0".to_vec(),
    };
    a.extend_from_slice(connection_id.as_bytes());
    a.push(0);
    a.extend_from_slice(name.as_bytes());
    if let Some(m) = meta {
        a.push(0);
        a.extend_from_slice(m);
    }
    a
}

fn decode_key(text: &str) -> Result<MasterKey, String> {
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| "a master key is not valid base64".to_string())?,
    );
    let bytes: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| format!("a master key must be 32 bytes, this one is {}", raw.len()))?;
    let bytes = Zeroizing::new(bytes);
    Ok(MasterKey { id: key_id(&bytes), bytes })
}

fn random_key() -> MasterKey {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    MasterKey { id: key_id(&bytes), bytes }
}

impl MasterKeys {
    /// A fresh random key held in memory only.
    pub fn generate() -> MasterKeys {
        MasterKeys { keys: vec![random_key()], source: KeySource::Memory, sealing: 0.into() }
    }

    /// The keys of a `CLARIBI_MASTER_KEY` value: base64 32-byte keys, comma-separated, the first
    /// current.
    pub fn from_list(value: &str) -> Result<MasterKeys, String> {
        let keys = value
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(decode_key)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{MASTER_KEY_ENV}: {e}; generate one with `openssl rand -base64 32`"))?;
        if keys.is_empty() {
            return Err(format!("{MASTER_KEY_ENV} is set but empty; unset it or give a base64 32-byte key"));
        }
        Ok(MasterKeys { keys, source: KeySource::Env, sealing: 0.into() })
    }

    /// Load the keys from `CLARIBI_MASTER_KEY`, else from an existing `<data_dir>/master.key`; never
    /// create one (a fleet's processes must all hold the fleet's key, which a new random key is not).
    pub fn load_existing(data_dir: &Path) -> Result<MasterKeys, String> {
        if std::env::var_os(MASTER_KEY_ENV).is_none() && !data_dir.join("master.key").exists() {
            return Err(format!(
                "a process of a fleet (--database) needs the fleet's master key: set {MASTER_KEY_ENV} (the same on every replica) or put the fleet's master.key in {}",
                data_dir.display()
            ));
        }
        MasterKeys::load_or_create(data_dir)
    }

    /// Load the keys from `CLARIBI_MASTER_KEY`, else from `<data_dir>/master.key`, creating the file
    /// (mode 0600) with a new random key on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<MasterKeys, String> {
        if let Ok(value) = std::env::var(MASTER_KEY_ENV) {
            return MasterKeys::from_list(&value);
        }
        let path = data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut keys = Vec::new();
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let b64 = line.split_whitespace().last().unwrap_or("");
                    keys.push(decode_key(b64).map_err(|e| {
                        format!("{} line {}: {e}; restore the key file from backup", path.display(), n + 1)
                    })?);
                }
                if keys.is_empty() {
                    return Err(format!("{} holds no key; restore it from backup", path.display()));
                }
                check_private(&path)?;
                Ok(MasterKeys { keys, source: KeySource::File(path), sealing: 0.into() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = MasterKeys { keys: vec![random_key()], source: KeySource::File(path.clone()), sealing: 0.into() };
                keys.write_file(&path, true)?;
                Ok(keys)
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn sealing_index(&self) -> usize {
        self.sealing.load(std::sync::atomic::Ordering::Relaxed).min(self.keys.len() - 1)
    }

    /// Id of the key new secrets are sealed with.
    pub fn current_id(&self) -> &str {
        &self.keys[self.sealing_index()].id
    }

    /// Seal from now on under the held key `id` (the key a fleet's database names). `false`, changing
    /// nothing, when this process does not hold it.
    pub fn seal_under(&self, id: &str) -> bool {
        match self.keys.iter().position(|k| k.id == id) {
            Some(i) => {
                self.sealing.store(i, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Whether this process holds the key `id`.
    pub fn holds(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Ids of all keys that can open secrets.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// Where the keys came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Seal a secret value for `(connection_id, name)` under the current key (format 1).
    pub fn seal(&self, connection_id: &str, name: &str, plaintext: &[u8]) -> Result<Sealed, String> {
        self.seal_with(connection_id, name, None, plaintext)
    }

    /// Open a format-1 sealed value (see [`Self::open_with`]).
    pub fn open(&self, connection_id: &str, name: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, String> {
        self.open_with(connection_id, name, None, sealed)
    }

    /// Seal a value for `(connection_id, name)` and, in format 2, `meta` (what the value is and where
    /// it may go), under the current key.
    pub fn seal_with(&self, connection_id: &str, name: &str, meta: Option<&[u8]>, plaintext: &[u8]) -> Result<Sealed, String> {
        let key = &self.keys[self.sealing_index()];
        let cipher = XChaCha20Poly1305::new(key.bytes.as_ref().into());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad(connection_id, name, meta) })
            .map_err(|_| "encryption failed".to_string())?;
        Ok(Sealed { key_id: key.id.clone(), nonce: nonce.to_vec(), ciphertext })
    }

    /// Open a sealed value for `(connection_id, name, meta)`. Fails if the key is unknown, the value
    /// was tampered with, or it belongs to another connection, name or meta.
    pub fn open_with(&self, connection_id: &str, name: &str, meta: Option<&[u8]>, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, String> {
        let key = self.keys.iter().find(|k| k.id == sealed.key_id).ok_or_else(|| {
            format!(
                "secret `{name}` was sealed with master key {} which is not available; restore that key (file or {MASTER_KEY_ENV})",
                sealed.key_id
            )
        })?;
        if sealed.nonce.len() != 24 {
            return Err(format!("secret `{name}` is corrupt (bad nonce); reconnect the connection"));
        }
        let cipher = XChaCha20Poly1305::new(key.bytes.as_ref().into());
        cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload { msg: &sealed.ciphertext, aad: &aad(connection_id, name, meta) },
            )
            .map(Zeroizing::new)
            .map_err(|_| format!("secret `{name}` failed authentication (tampered, or copied from another connection); reconnect the connection"))
    }

    /// Start a rotation: a new random key becomes current, old ones stay for decryption. For a key
    /// file, the file is rewritten (atomically, 0600) before anything is re-encrypted; for the
    /// environment, the operator must have put the new key first already, and nothing changes here.
    pub fn rotate(&mut self) -> Result<(), String> {
        match &self.source {
            KeySource::Env => Ok(()),
            KeySource::Memory => {
                self.keys.insert(0, random_key());
                self.sealing = 0.into();
                Ok(())
            }
            KeySource::File(path) => {
                let path = path.clone();
                self.keys.insert(0, random_key());
                self.sealing = 0.into();
                self.write_file(&path, false)
            }
        }
    }

    /// Finish a rotation once every secret is sealed with the current key: forget the old keys (and
    /// drop them from the key file).
    pub fn retire_old_keys(&mut self) -> Result<(), String> {
        let sealing = self.keys.remove(self.sealing_index());
        self.keys = vec![sealing];
        self.sealing = 0.into();
        if let KeySource::File(path) = &self.source {
            let path = path.clone();
            self.write_file(&path, false)?;
        }
        Ok(())
    }

    fn write_file(&self, path: &Path, create_new: bool) -> Result<(), String> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".master.key.{}.tmp", std::process::id()));
        let mut text = Zeroizing::new(String::new());
        for k in &self.keys {
            text.push_str(&format!(
                "{} {}\n",
                k.id,
                base64::engine::general_purpose::STANDARD.encode(k.bytes.as_ref())
            ));
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let _ = std::fs::remove_file(&tmp);
        let mut f = opts.open(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        if create_new && path.exists() {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{} appeared while creating it; run the command again", path.display()));
        }
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
        Ok(())
    }
}

fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| format!("cannot stat {}: {e}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_connection_and_key() {
        let keys = MasterKeys::generate();
        let s = keys.seal("c1", "access-token", b"tok").unwrap();
        assert_eq!(&*keys.open("c1", "access-token", &s).unwrap(), b"tok");
        assert!(keys.open("c2", "access-token", &s).is_err());
        assert!(keys.open("c1", "refresh-token", &s).is_err());
        let mut tampered = s.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(keys.open("c1", "access-token", &tampered).is_err());
    }

    #[test]
    fn format_2_binds_what_the_value_is_and_where_it_may_go() {
        let keys = MasterKeys::generate();
        let s = keys.seal_with("c1", "refresh-token", Some(b"refresh-token\0[{\"url\":\"https://a/token\"}]"), b"rt").unwrap();
        assert_eq!(&*keys.open_with("c1", "refresh-token", Some(b"refresh-token\0[{\"url\":\"https://a/token\"}]"), &s).unwrap(), b"rt");
        assert!(keys.open_with("c1", "refresh-token", Some(b"refresh-token\0[{\"url\":\"https://evil/token\"}]"), &s).is_err());
        assert!(keys.open("c1", "refresh-token", &s).is_err(), "format 1 does not open format 2");
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let keys = MasterKeys::generate();
        let a = keys.seal("c", "k", b"same").unwrap();
        let b = keys.seal("c", "k", b"same").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(!a.ciphertext.windows(4).any(|w| w == b"same"));
    }

    #[test]
    fn the_key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MasterKeys::load_or_create(dir.path()).unwrap();
        let sealed = keys.seal("c", "k", b"v").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = MasterKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(again.current_id(), keys.current_id());
        assert_eq!(&*again.open("c", "k", &sealed).unwrap(), b"v");
    }

    #[test]
    fn a_world_readable_key_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        MasterKeys::load_or_create(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join("master.key");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = MasterKeys::load_or_create(dir.path()).unwrap_err();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn rotation_keeps_old_secrets_readable_until_retired() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = MasterKeys::load_or_create(dir.path()).unwrap();
        let old = keys.seal("c", "k", b"v").unwrap();
        let old_id = keys.current_id().to_string();
        keys.rotate().unwrap();
        assert_ne!(keys.current_id(), old_id);
        let reloaded = MasterKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(reloaded.ids().len(), 2);
        assert_eq!(&*reloaded.open("c", "k", &old).unwrap(), b"v");
        keys.retire_old_keys().unwrap();
        let reloaded = MasterKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(reloaded.ids(), vec![keys.current_id().to_string()]);
        assert!(reloaded.open("c", "k", &old).is_err());
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let keys = MasterKeys::generate();
        let dbg = format!("{keys:?}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(keys.keys[0].bytes.as_ref());
        assert!(!dbg.contains(&b64));
    }

}
