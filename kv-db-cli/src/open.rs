//! Opening a store directory with the engine its `IDENTITY` names.

use std::path::Path;

use anyhow::Context;
use kv_db::backends::FileStorage;
use kv_db::{Bitcask, Engine, Lsm, Store};
use kv_engine_kit::identity::{IDENTITY, Identity};

use crate::cli::EngineName;

/// A store of either engine.
pub enum Opened {
    /// A Bitcask store.
    Bitcask(Store<Bitcask<FileStorage>>),
    /// An LSM store.
    Lsm(Store<Lsm<FileStorage>>),
}

/// Runs `$body` with `$store` bound to the store, whichever its engine: the commands are
/// generic over the engine, and this is where the two meet.
#[macro_export]
macro_rules! with_store {
    ($opened:expr, |$store:ident| $body:expr) => {
        match $opened {
            $crate::open::Opened::Bitcask($store) => $body,
            $crate::open::Opened::Lsm($store) => $body,
        }
    };
}

/// Read-only (no lock, works beside a writer) or for writing (takes the writer lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Store::open_read_only`.
    ReadOnly,
    /// `Store::open`.
    Write,
}

/// The identity of the store in `dir`, read with the engines' own decoder.
pub fn identity(dir: &Path) -> anyhow::Result<Identity> {
    let path = dir.join(IDENTITY);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{} is not a kv store (cannot read {})",
            dir.display(),
            path.display()
        )
    })?;
    Identity::decode(&bytes).context("reading the store's identity")
}

/// Opens the store in `dir` with the engine its `IDENTITY` names.
pub async fn open(dir: &Path, mode: Mode) -> anyhow::Result<Opened> {
    let id = identity(dir)?;
    let what = || format!("opening the {} store {}", id.engine, dir.display());
    Ok(match EngineName::named(&id.engine)? {
        EngineName::Bitcask => Opened::Bitcask(open_as(dir, mode).await.with_context(what)?),
        EngineName::Lsm => Opened::Lsm(open_as(dir, mode).await.with_context(what)?),
    })
}

/// Opens the store in `dir` as engine `E`, creating it (for writing) if `dir` holds none.
pub async fn open_as<E: Engine<Storage = FileStorage>>(
    dir: &Path,
    mode: Mode,
) -> kv_db::Result<Store<E>> {
    match mode {
        Mode::ReadOnly => Store::open_read_only(FileStorage::open_read_only(dir).await?).await,
        Mode::Write => Store::open(FileStorage::open(dir).await?).await,
    }
}
