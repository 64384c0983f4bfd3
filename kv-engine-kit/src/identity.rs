//! `IDENTITY`: the file that makes a storage a store, and says whose.
//!
//! Written first when a store is created (atomically: `IDENTITY.tmp`, synced, renamed), never
//! changed after. One CRC frame ([`crate::frame`]) whose payload is, little-endian:
//!
//! `magic "KVSTORE\0" (8) | format u16 | store id (16) | created_ms u64 | engine_len u8 |
//! engine (UTF-8)`
//!
//! An open reads it before anything else ([`check`]) and refuses, before it takes the writer
//! lock and so before it creates or deletes anything:
//!
//! * a store of another engine or of a newer format: [`Error::Incompatible`] naming it;
//! * a storage with files but no `IDENTITY`: files the engine never writes are
//!   [`Error::Foreign`]; a store of this engine from before `IDENTITY` existed (format 1, known
//!   by a manifest without a file header) is [`Error::Incompatible`]; other files of its own
//!   (a store whose `IDENTITY` was lost) are [`Error::Corruption`] naming `IDENTITY`, the
//!   file that should be there.
//!
//! Only an empty storage (or one holding nothing but an `IDENTITY.tmp`, what a crash during
//! creation leaves) is a new store ([`Found::Empty`]).

use kv_api::{Error, Result, Storage, StorageFile};

use crate::bytes::Reader;
use crate::files;
use crate::frame;
use crate::header::{self, BadHeader, FORMAT, FileHeader, MAGIC, StoreId};

/// The identity file's name.
pub const IDENTITY: &str = "IDENTITY";

/// The name `IDENTITY` is written under before it is renamed into place.
pub const IDENTITY_TMP: &str = "IDENTITY.tmp";

/// True for the names of the identity file and its replacement in progress: files of every
/// engine's store.
pub fn is_identity_file(name: &str) -> bool {
    name == IDENTITY || name == IDENTITY_TMP
}

/// What a store's `IDENTITY` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The engine that created the store ([`kv_api::Engine::NAME`]).
    pub engine: String,
    /// The on-disk format ([`FORMAT`] for every store this build opens).
    pub format: u16,
    /// The store's id, repeated in every file's header.
    pub store: StoreId,
    /// When the store was created, ms since the Unix epoch.
    pub created_ms: u64,
}

impl Identity {
    /// A new identity for a store of `engine` created at `now_ms`.
    pub fn new(engine: &str, now_ms: u64) -> Self {
        Identity {
            engine: engine.to_string(),
            format: FORMAT,
            store: StoreId::generate(now_ms),
            created_ms: now_ms,
        }
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        frame::encode_with(&mut out, |b| {
            b.extend_from_slice(&MAGIC);
            b.extend_from_slice(&self.format.to_le_bytes());
            b.extend_from_slice(&self.store.bytes());
            b.extend_from_slice(&self.created_ms.to_le_bytes());
            // Engine names are short constants; a longer one is cut, never wrapped.
            let name = self.engine.as_bytes();
            let name = name.get(..usize::from(u8::MAX)).unwrap_or(name);
            b.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            b.extend_from_slice(name);
        });
        out
    }

    /// Decodes the bytes of an `IDENTITY` file. Damage is [`Error::Corruption`]; a format
    /// newer than this build's is decoded (so the caller can name it) and checked by
    /// [`check`].
    pub fn decode(buf: &[u8]) -> Result<Identity> {
        let bad = |reason: &str| Error::corruption(IDENTITY, 0, reason);
        let p = frame::decode_exact(buf).map_err(bad)?;
        let mut r = Reader::new(p);
        if r.take(8) != Some(MAGIC.as_slice()) {
            return Err(bad("not a store identity"));
        }
        let malformed = || bad("malformed identity");
        let format = r.u16().ok_or_else(malformed)?;
        let store = r
            .take(16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(malformed)?;
        let created_ms = r.u64().ok_or_else(malformed)?;
        let len = r.u8().ok_or_else(malformed)?;
        let engine = r.take(usize::from(len)).ok_or_else(malformed)?;
        let engine = std::str::from_utf8(engine).map_err(|_| malformed())?;
        if !r.is_empty() {
            return Err(malformed());
        }
        Ok(Identity {
            engine: engine.to_string(),
            format,
            store: StoreId::from_bytes(store),
            created_ms,
        })
    }

    /// Writes the identity of a new store, atomically and durably.
    pub async fn write<S: Storage>(&self, storage: &S) -> Result<()> {
        files::replace(storage, IDENTITY_TMP, IDENTITY, &self.encode()).await
    }
}

/// What [`check`] found in a storage it did not refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A store of this engine and format.
    Store(Identity),
    /// No store yet: nothing, or what a crash while writing `IDENTITY` leaves.
    Empty,
}

/// Reads the identity of the storage whose files are `names`, for an open by `engine`, and
/// refuses what is not a store of `engine` (see the module docs). `is_own` tells the engine's
/// own file names; `manifest` is the name of its manifest, by which a store written before
/// `IDENTITY` existed is recognised.
pub async fn check<S: Storage>(
    storage: &S,
    engine: &'static str,
    names: &[String],
    is_own: impl Fn(&str) -> bool,
    manifest: &str,
) -> Result<Found> {
    if names.iter().any(|n| n == IDENTITY) {
        let id =
            Identity::decode(&files::read_all(&storage.open(IDENTITY).await?, IDENTITY).await?)?;
        if id.format > FORMAT {
            return Err(Error::Incompatible {
                engine,
                found: format!(
                    "a {} store of format {}, newer than this build's format {FORMAT}",
                    id.engine, id.format
                ),
            });
        }
        if id.format < FORMAT {
            return Err(Error::corruption(
                IDENTITY,
                0,
                format!("identity of format {}, which had none", id.format),
            ));
        }
        if id.engine != engine {
            return Err(Error::Incompatible {
                engine,
                found: format!(
                    "a {} store (its IDENTITY names engine {:?})",
                    id.engine, id.engine
                ),
            });
        }
        return Ok(Found::Store(id));
    }
    let rest: Vec<&String> = names.iter().filter(|n| !is_identity_file(n)).collect();
    if rest.is_empty() {
        return Ok(Found::Empty);
    }
    let foreign: Vec<&String> = rest.iter().copied().filter(|n| !is_own(n)).collect();
    if !foreign.is_empty() {
        return Err(Error::foreign(engine, &foreign));
    }
    if rest.iter().any(|n| *n == manifest) && !has_header(storage, manifest).await? {
        return Err(Error::Incompatible {
            engine,
            found: format!(
                "a {engine} store of format 1 (it has a {manifest} but no IDENTITY): written \
                 before stores carried an identity; this build reads format {FORMAT} only \
                 (see docs/format.md, \"Upgrades\")"
            ),
        });
    }
    if storage.exists(IDENTITY).await? {
        // Created since the listing, by a writer beside this read-only open.
        let id =
            Identity::decode(&files::read_all(&storage.open(IDENTITY).await?, IDENTITY).await?)?;
        return Ok(Found::Store(id));
    }
    Err(Error::corruption(
        IDENTITY,
        0,
        format!(
            "IDENTITY is missing, but the storage holds {}",
            rest.iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// Whether file `name` begins with a file header (format 2 or later), which no file of a
/// format-1 store does.
async fn has_header<S: Storage>(storage: &S, name: &str) -> Result<bool> {
    let file = storage.open(name).await?;
    let len = file.len().await?;
    if len < header::LEN as u64 {
        return Ok(false);
    }
    let head = file.read_at(0, header::LEN).await?;
    Ok(!matches!(
        FileHeader::decode(&head),
        Err(BadHeader::Short | BadHeader::Damaged)
    ))
}

/// For a writable open that [`check`] let through, after the writer lock is taken: the
/// store's identity, written now for a new store. A leftover `IDENTITY.tmp` is removed.
pub async fn establish<S: Storage>(
    storage: &S,
    engine: &'static str,
    found: Found,
    now_ms: u64,
) -> Result<Identity> {
    match found {
        Found::Store(id) => {
            if storage.exists(IDENTITY_TMP).await? {
                storage.remove(IDENTITY_TMP).await?;
                storage.sync().await?;
            }
            Ok(id)
        }
        Found::Empty => {
            let id = Identity::new(engine, now_ms);
            id.write(storage).await?;
            Ok(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let id = Identity::new("bitcask", 1_700_000_000_000);
        let buf = id.encode();
        assert_eq!(Identity::decode(&buf).expect("decode"), id);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x04;
            assert!(Identity::decode(&bad).is_err(), "flip at {i}");
        }
        for cut in 0..buf.len() {
            assert!(Identity::decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        assert_ne!(Identity::new("bitcask", 1).store, id.store);
    }
}
