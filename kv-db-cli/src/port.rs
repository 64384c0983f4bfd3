//! Moving versions between stores: export, import, backup, convert (the library's
//! `Store::export`, `import`, `backup_to` and `copy_into`, which keep every version's commit).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::Path;

use anyhow::Context as _;
use kv_db::backends::FileStorage;
use kv_db::export::StreamReader;
use kv_db::{Bitcask, CopySummary, Engine, ExportScope, Lsm, Store};

use crate::cli::EngineName;
use crate::commands::time;
use crate::open::{self, Mode};
use crate::progress::Bar;
use crate::usage;

/// `-` is stdout or stdin.
fn is_std(file: &Path) -> bool {
    file.as_os_str() == "-"
}

/// What a copy moved, on stderr (stdout may carry the stream).
fn summarize(what: &str, s: &CopySummary) {
    // A copy between stores has no stream, so no bytes to count.
    let bytes = match s.bytes {
        0 => String::new(),
        n => format!(", {n} bytes"),
    };
    eprintln!(
        "{what}: {} commits, {} versions{bytes}, up to commit {} of {}",
        s.commits,
        s.versions,
        s.version.seq(),
        time(s.version)
    );
}

/// A new store goes into a missing or empty directory only.
fn ensure_empty(dir: &Path) -> anyhow::Result<()> {
    let empty = std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none());
    if empty {
        Ok(())
    } else {
        Err(usage(format!(
            "{} is not empty: the copy goes into a new store",
            dir.display()
        )))
    }
}

pub async fn export<E: Engine>(
    store: &Store<E>,
    file: &Path,
    scope: ExportScope,
) -> anyhow::Result<()> {
    let bar = Bar::new("export");
    let report = |p| bar.report(p);
    let summary = if is_std(file) {
        let mut out = BufWriter::new(std::io::stdout());
        let summary = store.export(&mut out, scope, &report).await;
        out.flush().context("writing the stream to stdout")?;
        summary
    } else {
        let out = File::create(file).with_context(|| format!("creating {}", file.display()))?;
        let mut out = BufWriter::new(out);
        let summary = store.export(&mut out, scope, &report).await;
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("writing {}", file.display()))?;
        summary
    };
    bar.finish();
    summarize("exported", &summary?);
    Ok(())
}

pub async fn import(dir: &Path, file: &Path, engine: Option<EngineName>) -> anyhow::Result<()> {
    let engine = match (open::identity(dir), engine) {
        // An existing store: its own engine.
        (Ok(id), named) => {
            let own = EngineName::named(&id.engine)?;
            if named.is_some_and(|named| named != own) {
                return Err(usage(format!(
                    "{} is a {} store: --engine names another",
                    dir.display(),
                    id.engine
                )));
            }
            own
        }
        (Err(_), Some(engine)) => engine,
        (Err(_), None) if is_std(file) => {
            return Err(usage(
                "importing stdin into a new store: name its engine with --engine",
            ));
        }
        (Err(_), None) => {
            let input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
            EngineName::named(&StreamReader::new(BufReader::new(input))?.header().engine)?
        }
    };
    match engine {
        EngineName::Bitcask => import_as::<Bitcask<FileStorage>>(dir, file).await,
        EngineName::Lsm => import_as::<Lsm<FileStorage>>(dir, file).await,
    }
}

async fn import_as<E: Engine<Storage = FileStorage>>(
    dir: &Path,
    file: &Path,
) -> anyhow::Result<()> {
    let store = open::open_as::<E>(dir, Mode::Write)
        .await
        .with_context(|| format!("opening {} for writing", dir.display()))?;
    let bar = Bar::new("import");
    let report = |p| bar.report(p);
    let summary = if is_std(file) {
        store
            .import(BufReader::new(std::io::stdin()), &report)
            .await
    } else {
        let input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        store.import(BufReader::new(input), &report).await
    };
    bar.finish();
    let closed = store.close().await;
    summarize("imported", &summary?);
    Ok(closed?)
}

pub async fn backup<E: Engine<Storage = FileStorage>>(
    store: &Store<E>,
    dest: &Path,
) -> anyhow::Result<()> {
    ensure_empty(dest)?;
    let target = FileStorage::open(dest).await?;
    let bar = Bar::new("backup");
    let summary = store.backup_to(target, &|p| bar.report(p)).await;
    bar.finish();
    summarize("backed up", &summary?);
    Ok(())
}

pub async fn convert<E: Engine>(
    store: &Store<E>,
    dest: &Path,
    to: EngineName,
    scope: ExportScope,
) -> anyhow::Result<()> {
    ensure_empty(dest)?;
    match to {
        EngineName::Bitcask => copy::<E, Bitcask<FileStorage>>(store, dest, scope).await,
        EngineName::Lsm => copy::<E, Lsm<FileStorage>>(store, dest, scope).await,
    }
}

async fn copy<E: Engine, T: Engine<Storage = FileStorage>>(
    store: &Store<E>,
    dest: &Path,
    scope: ExportScope,
) -> anyhow::Result<()> {
    let target = open::open_as::<T>(dest, Mode::Write).await?;
    let bar = Bar::new("convert");
    let summary = store.copy_into(&target, scope, &|p| bar.report(p)).await;
    bar.finish();
    let closed = target.close().await;
    let summary = summary?;
    closed?;
    summarize(&format!("converted {} -> {}", E::NAME, T::NAME), &summary);
    Ok(())
}
