//! A key holder's durable state: its threshold key share, encrypted at
//! rest, in a redb store next to its share ledger.
//!
//! The storage key is HKDF-SHA3-256 over the holder's key file (the secret
//! seeds in `sealing.key`), salt "ringsum/v1 holder store", info = the
//! federation id and the holder's point; the share is sealed with
//! ChaCha20-Poly1305 under a random 96-bit nonce, with the federation id
//! and point as associated data. Whoever copies the store without the key
//! file learns nothing; a store of another federation or holder, or one
//! whose bytes were changed, does not open.

use std::path::{Path, PathBuf};

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use hkdf::SimpleHkdf;
use redb::{Database, ReadableDatabase, TableDefinition};
use ringsum_pq::FederationId;
use ringsum_threshold::HolderId;
use sha3::Sha3_256;
use zeroize::Zeroizing;

use crate::error::{NetError, Result, store_error};

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("holder");
const SALT: &[u8] = b"ringsum/v1 holder store";
const KEY_SHARE: &str = "key_share";

/// Creates `path` empty with mode 0600 if it does not exist (a store is
/// then opened on it), so that no umask makes it readable by others.
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The holder's store.
pub struct HolderStore {
    path: PathBuf,
    db: Database,
    cipher: ChaCha20Poly1305,
    aad: Vec<u8>,
}

impl std::fmt::Debug for HolderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HolderStore {
    /// Opens (or creates) the store at `path` for `federation` and holder
    /// `me`, with the storage key derived from `key_file`'s contents.
    ///
    /// # Errors
    /// [`NetError::Io`] for an unreadable key file, [`NetError::Store`].
    pub fn open(
        path: &Path,
        key_file: &Path,
        federation: FederationId,
        me: HolderId,
    ) -> Result<Self> {
        let secret = Zeroizing::new(std::fs::read(key_file).map_err(|source| NetError::Io {
            path: key_file.display().to_string(),
            source,
        })?);
        let mut aad = federation.0.to_vec();
        aad.extend_from_slice(&me.0.to_be_bytes());
        let kdf = SimpleHkdf::<Sha3_256>::new(Some(SALT), &secret);
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF's limit.
        let _ = kdf.expand(&aad, key.as_mut());
        let cipher = ChaCha20Poly1305::new(&(*key).into());
        let fail = |e: &dyn std::fmt::Display| store_error(path, e);
        create_private(path).map_err(|e| fail(&e))?;
        let db = Database::create(path).map_err(|e| fail(&e))?;
        let txn = db.begin_write().map_err(|e| fail(&e))?;
        txn.open_table(META).map_err(|e| fail(&e))?;
        txn.commit().map_err(|e| fail(&e))?;
        Ok(Self {
            path: path.to_path_buf(),
            db,
            cipher,
            aad,
        })
    }

    /// The stored key share (decrypted, in a zeroized buffer), if any.
    ///
    /// # Errors
    /// [`NetError::Store`] when the store cannot be read or the share does
    /// not decrypt (another key file, federation or holder, or tampering).
    pub fn key_share(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let fail = |e: &dyn std::fmt::Display| store_error(&self.path, e);
        let read = self.db.begin_read().map_err(|e| fail(&e))?;
        let table = read.open_table(META).map_err(|e| fail(&e))?;
        let Some(value) = table.get(KEY_SHARE).map_err(|e| fail(&e))? else {
            return Ok(None);
        };
        let sealed = value.value();
        let (nonce, body) = sealed
            .split_at_checked(12)
            .ok_or_else(|| fail(&"the stored key share is truncated"))?;
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| fail(&"the stored key share is truncated"))?;
        let plain = self
            .cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: &self.aad,
                },
            )
            .map_err(|_| {
                fail(&"the stored key share does not decrypt: another key file, federation or holder, or the store was altered")
            })?;
        Ok(Some(Zeroizing::new(plain)))
    }

    /// Stores the key share, encrypted, durably.
    ///
    /// # Errors
    /// [`NetError::Store`].
    pub fn set_key_share(&self, share: &[u8]) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| store_error(&self.path, e);
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| fail(&e))?;
        let body = self
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: share,
                    aad: &self.aad,
                },
            )
            .map_err(|_| fail(&"the key share could not be encrypted"))?;
        let sealed = [nonce.as_slice(), &body].concat();
        let txn = self.db.begin_write().map_err(|e| fail(&e))?;
        {
            let mut table = txn.open_table(META).map_err(|e| fail(&e))?;
            table
                .insert(KEY_SHARE, sealed.as_slice())
                .map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| fail(&e))
    }
}
