//! The IndexedDB database of one storage: its object stores, keys, and the transactions that
//! change them. Every function here runs whole in one IndexedDB transaction, so each is atomic
//! and a closed tab leaves the database as it was before or after it, never between.
//!
//! Object stores (database version 1):
//!
//! * `files`: file name → file id (a number). The file list.
//! * `lengths`: file id → durable length in bytes.
//! * `chunks`: `[file id, chunk index]` → the chunk's bytes (a `Uint8Array` of
//!   [`CHUNK_SIZE`] bytes; only the last chunk of a file may be shorter).
//! * `meta`: `"next_id"` → the next file id to hand out.
//!
//! Chunks are keyed by a file *id* rather than by the name so that `rename` only moves one
//! `files` entry (plus deleting the replaced target's chunks) instead of copying every chunk
//! of the file inside the transaction, and so that open handles keep their file across a
//! rename, like an inode.

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{
    Transaction, TransactionDurability, TransactionMode, TransactionOptions,
};
use indexed_db_futures::{KeyRange, object_store::ObjectStore};
use js_sys::{Array, Uint8Array};
use kv_api::{Error, Result};
use wasm_bindgen::{JsCast, JsValue};

pub use crate::chunks::CHUNK_SIZE;
use crate::chunks::{full_chunks, partial_chunk};

const FILES: &str = "files";
const LENGTHS: &str = "lengths";
const CHUNKS: &str = "chunks";
const META: &str = "meta";
const NEXT_ID: &str = "next_id";
const SCHEMA_VERSION: u8 = 1;

/// An IndexedDB error as [`Error::Io`].
pub(super) fn idb_err(op: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::io(op, std::io::Error::other(format!("IndexedDB: {e}")))
}

/// Key of chunk `index` of file `id`. Numbers, not `u64` (which would become a BigInt, not a
/// valid IndexedDB key); ids and chunk indexes stay far below 2^53.
fn chunk_key(id: u64, index: u64) -> JsValue {
    Array::of2(&(id as f64).into(), &(index as f64).into()).into()
}

/// Every chunk of file `id` from `from_index` on.
fn chunks_from(id: u64, from_index: u64) -> KeyRange<JsValue> {
    KeyRange::Bound(
        chunk_key(id, from_index),
        false,
        Array::of2(&(id as f64).into(), &f64::INFINITY.into()).into(),
        false,
    )
}

fn as_u64(v: &JsValue) -> Option<u64> {
    crate::chunks::as_u64(v.as_f64())
}

/// The open database of one storage.
#[derive(Clone)]
pub(super) struct Db {
    db: Database,
    name: String,
}

/// What [`Db::load`] returns for an existing file.
pub(super) struct Loaded {
    pub id: u64,
    pub len: u64,
    /// The bytes of the last, partial chunk (empty when the length is a chunk multiple).
    pub partial: Vec<u8>,
}

impl Db {
    /// Opens (creating it on first use) the database `name`.
    pub async fn open(name: &str) -> Result<Db> {
        let db = Database::open(name)
            .with_version(SCHEMA_VERSION)
            .with_on_upgrade_needed(|event, db| {
                if event.old_version() < 1.0 {
                    for store in [FILES, LENGTHS, CHUNKS, META] {
                        db.create_object_store(store).build()?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| idb_err(format!("open IndexedDB database {name}"), e))?;
        Ok(Db {
            db,
            name: name.to_string(),
        })
    }

    /// Closes the connection (pending transactions still finish).
    pub fn close(&self) {
        self.db.clone().close();
    }

    fn tx(&self, stores: &[&str], write: bool) -> Result<Transaction<'_>> {
        let mode = if write {
            TransactionMode::Readwrite
        } else {
            TransactionMode::Readonly
        };
        let builder = self.db.transaction(stores).with_mode(mode);
        let tx = if write {
            // `strict`: the commit event means the data reached the disk, which is what
            // `sync` promises. Without it a browser may use `relaxed` (OS buffers only).
            builder
                .with_options(
                    TransactionOptions::new().with_durability(TransactionDurability::Strict),
                )
                .build()
        } else {
            builder.build()
        };
        tx.map_err(|e| self.err("begin transaction", e))
    }

    fn err(&self, op: &str, e: impl std::fmt::Display) -> Error {
        idb_err(format!("{op} in IndexedDB database {}", self.name), e)
    }

    fn store<'a>(&self, tx: &'a Transaction<'a>, name: &str) -> Result<ObjectStore<'a>> {
        tx.object_store(name)
            .map_err(|e| self.err("open object store", e))
    }

    async fn get(&self, store: &ObjectStore<'_>, key: JsValue) -> Result<Option<JsValue>> {
        store
            .get::<JsValue, _, _>(key)
            .primitive()
            .map_err(|e| self.err("get", e))?
            .await
            .map_err(|e| self.err("get", e))
    }

    async fn file_id(&self, files: &ObjectStore<'_>, name: &str) -> Result<Option<u64>> {
        match self.get(files, JsValue::from_str(name)).await? {
            None => Ok(None),
            Some(v) => as_u64(&v).map(Some).ok_or_else(|| {
                Error::corruption(name, 0, format!("file id is not a number: {v:?}"))
            }),
        }
    }

    async fn commit(&self, tx: Transaction<'_>, op: &str) -> Result<()> {
        tx.commit().await.map_err(|e| self.err(op, e))
    }

    /// Names of all files.
    pub async fn list(&self) -> Result<Vec<String>> {
        let tx = self.tx(&[FILES], false)?;
        let files = self.store(&tx, FILES)?;
        let keys = files
            .get_all_keys::<String>()
            .primitive()
            .map_err(|e| self.err("list", e))?
            .await
            .map_err(|e| self.err("list", e))?;
        keys.map(|k| k.map_err(|e| self.err("list", e))).collect()
    }

    /// True if `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        let tx = self.tx(&[FILES], false)?;
        let files = self.store(&tx, FILES)?;
        Ok(self.file_id(&files, name).await?.is_some())
    }

    /// The id, durable length and partial last chunk of file `name`; `None` if it is missing.
    pub async fn load(&self, name: &str) -> Result<Option<Loaded>> {
        let tx = self.tx(&[FILES, LENGTHS, CHUNKS], false)?;
        let files = self.store(&tx, FILES)?;
        let Some(id) = self.file_id(&files, name).await? else {
            return Ok(None);
        };
        let lengths = self.store(&tx, LENGTHS)?;
        let len = self
            .get(&lengths, (id as f64).into())
            .await?
            .ok_or_else(|| Error::corruption(name, 0, "file has no length record"))?;
        let len = as_u64(&len).ok_or_else(|| {
            Error::corruption(name, 0, format!("file length is not a number: {len:?}"))
        })?;
        let keep = (len % CHUNK_SIZE) as usize;
        let mut partial = Vec::new();
        if keep > 0 {
            let chunks = self.store(&tx, CHUNKS)?;
            let index = len / CHUNK_SIZE;
            let at = index * CHUNK_SIZE;
            let chunk = self.get(&chunks, chunk_key(id, index)).await?;
            partial = partial_chunk(name, len, chunk_bytes(name, at, chunk)?)?;
        }
        Ok(Some(Loaded { id, len, partial }))
    }

    /// Chunks `first..=last` of file `id`, which must all exist and be full.
    pub async fn read_chunks(
        &self,
        name: &str,
        id: u64,
        first: u64,
        last: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let tx = self.tx(&[CHUNKS], false)?;
        let chunks = self.store(&tx, CHUNKS)?;
        let values = if first == last {
            vec![self.get(&chunks, chunk_key(id, first)).await?]
        } else {
            let range = KeyRange::Bound(chunk_key(id, first), false, chunk_key(id, last), false);
            chunks
                .get_all::<JsValue>()
                .with_query::<JsValue, _>(range)
                .primitive()
                .map_err(|e| self.err("read chunks", e))?
                .await
                .map_err(|e| self.err("read chunks", e))?
                .map(|v| v.map(Some).map_err(|e| self.err("read chunks", e)))
                .collect::<Result<Vec<_>>>()?
        };
        full_chunks(name, first, last, values, |at, v| chunk_bytes(name, at, v))
    }

    /// One transaction: writes `tail` as the chunks from `tail_start` (a chunk boundary) on,
    /// drops every chunk past `len` when `cut`, and records `len` as the durable length.
    pub async fn write_tail(
        &self,
        id: u64,
        tail_start: u64,
        tail: &[u8],
        len: u64,
        cut: bool,
    ) -> Result<()> {
        let tx = self.tx(&[LENGTHS, CHUNKS], true)?;
        let chunks = self.store(&tx, CHUNKS)?;
        let lengths = self.store(&tx, LENGTHS)?;
        let first = tail_start / CHUNK_SIZE;
        // Requests are queued without awaiting each: one that fails aborts the transaction,
        // and then `commit` fails.
        for (index, piece) in (first..).zip(tail.chunks(CHUNK_SIZE as usize)) {
            self.put(
                &chunks,
                chunk_key(id, index),
                Uint8Array::from(piece).into(),
            )?;
        }
        if cut {
            let end = len.div_ceil(CHUNK_SIZE);
            chunks
                .delete::<JsValue, _>(chunks_from(id, end))
                .primitive()
                .map_err(|e| self.err("drop truncated chunks", e))?;
        }
        self.put(&lengths, (id as f64).into(), (len as f64).into())?;
        self.commit(tx, "sync").await
    }

    /// Creates an empty file `name`, replacing any file of that name; returns the new id and
    /// the replaced file's id.
    pub async fn create(&self, name: &str) -> Result<(u64, Option<u64>)> {
        let tx = self.tx(&[FILES, LENGTHS, CHUNKS, META], true)?;
        let (files, lengths, chunks, meta) = (
            self.store(&tx, FILES)?,
            self.store(&tx, LENGTHS)?,
            self.store(&tx, CHUNKS)?,
            self.store(&tx, META)?,
        );
        let id = match self.get(&meta, NEXT_ID.into()).await? {
            None => 1,
            Some(v) => as_u64(&v)
                .ok_or_else(|| Error::corruption(NEXT_ID, 0, "next file id is not a number"))?,
        };
        self.put(&meta, NEXT_ID.into(), ((id + 1) as f64).into())?;
        let old = self.file_id(&files, name).await?;
        if let Some(old) = old {
            self.drop_file(&lengths, &chunks, old)?;
        }
        self.put(&files, name.into(), (id as f64).into())?;
        self.put(&lengths, (id as f64).into(), 0.0.into())?;
        self.commit(tx, &format!("create {name}")).await?;
        Ok((id, old))
    }

    /// Removes file `name`; returns its id if it existed.
    pub async fn remove(&self, name: &str) -> Result<Option<u64>> {
        let tx = self.tx(&[FILES, LENGTHS, CHUNKS], true)?;
        let (files, lengths, chunks) = (
            self.store(&tx, FILES)?,
            self.store(&tx, LENGTHS)?,
            self.store(&tx, CHUNKS)?,
        );
        let Some(id) = self.file_id(&files, name).await? else {
            return Ok(None);
        };
        self.delete(&files, name.into())?;
        self.drop_file(&lengths, &chunks, id)?;
        self.commit(tx, &format!("remove {name}")).await?;
        Ok(Some(id))
    }

    /// Renames `from` to `to`, dropping the file `to` named before. Returns `from`'s id and
    /// the replaced file's id, or `None` if `from` does not exist (nothing changed).
    pub async fn rename(&self, from: &str, to: &str) -> Result<Option<(u64, Option<u64>)>> {
        let tx = self.tx(&[FILES, LENGTHS, CHUNKS], true)?;
        let (files, lengths, chunks) = (
            self.store(&tx, FILES)?,
            self.store(&tx, LENGTHS)?,
            self.store(&tx, CHUNKS)?,
        );
        let Some(id) = self.file_id(&files, from).await? else {
            return Ok(None);
        };
        if from == to {
            return Ok(Some((id, None)));
        }
        let old = self.file_id(&files, to).await?;
        if let Some(old) = old {
            self.drop_file(&lengths, &chunks, old)?;
        }
        self.delete(&files, from.into())?;
        self.put(&files, to.into(), (id as f64).into())?;
        self.commit(tx, &format!("rename {from} to {to}")).await?;
        Ok(Some((id, old)))
    }

    /// Queues the deletion of file `id`'s length and chunks in the current transaction.
    fn drop_file(
        &self,
        lengths: &ObjectStore<'_>,
        chunks: &ObjectStore<'_>,
        id: u64,
    ) -> Result<()> {
        self.delete(lengths, (id as f64).into())?;
        chunks
            .delete::<JsValue, _>(chunks_from(id, 0))
            .primitive()
            .map_err(|e| self.err("delete chunks", e))?;
        Ok(())
    }

    fn put(&self, store: &ObjectStore<'_>, key: JsValue, value: JsValue) -> Result<()> {
        store
            .put(value)
            .with_key(key)
            .primitive()
            .map_err(|e| self.err("put", e))?;
        Ok(())
    }

    fn delete(&self, store: &ObjectStore<'_>, key: JsValue) -> Result<()> {
        store
            .delete(key)
            .primitive()
            .map_err(|e| self.err("delete", e))?;
        Ok(())
    }
}

/// The bytes of a stored chunk, or `Corruption` if it is missing or not bytes.
fn chunk_bytes(name: &str, at: u64, value: Option<JsValue>) -> Result<Vec<u8>> {
    match value {
        None => Err(Error::corruption(name, at, "chunk is missing")),
        Some(v) => v
            .dyn_into::<Uint8Array>()
            .map(|a| a.to_vec())
            .map_err(|v| Error::corruption(name, at, format!("chunk is not bytes: {v:?}"))),
    }
}
