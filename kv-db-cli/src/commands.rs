//! The subcommands, each generic over the engine (`with_store!` picks it).

use std::ops::Bound;
use std::path::Path;

use kv_db::engine::{Entry, KeyRange, Snapshot};
use kv_db::{Engine, ExportScope, Store, Version};

use crate::cli::{Cli, Command, ReadArgs};
use crate::open::{self, Mode};
use crate::progress::Bar;
use crate::values::Printer;
use crate::{Coded, Failure, keys, outln, port, with_store, write_line};

/// Runs one command: `Ok(None)` on success, `Ok(Some(failure))` for an outcome with its own
/// exit code that is not an error (damage found by `verify`).
pub async fn run(cli: Cli) -> anyhow::Result<Option<Failure>> {
    match cli.command {
        Command::Info { dir } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            with_store!(opened, |store| info(&store, &dir).await)?;
        }
        Command::Verify { dir } => {
            let opened = match open::open(&dir, Mode::ReadOnly).await {
                Ok(opened) => opened,
                // Damage the open itself meets is reported like the damage verify finds.
                Err(e) => return open_damage(e),
            };
            return with_store!(opened, |store| verify(&store).await);
        }
        Command::Slots { dir } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            with_store!(opened, |store| slots(&store).await)?;
        }
        Command::Keys {
            dir,
            slot,
            prefix,
            partial,
            limit,
            values,
            read,
        } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            let list = KeyList {
                slot: &slot,
                prefix: prefix.as_deref(),
                partial,
                limit,
                values,
                read: &read,
            };
            with_store!(opened, |store| list_keys(&store, &list).await)?;
        }
        Command::Get {
            dir,
            slot,
            key,
            read,
        } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            with_store!(opened, |store| get(&store, &slot, &key, &read).await)?;
        }
        Command::Versions {
            dir,
            slot,
            key,
            values,
            read,
        } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            with_store!(opened, |store| versions(&store, &slot, &key, values, &read)
                .await)?;
        }
        Command::Export { dir, file, latest } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            with_store!(opened, |store| port::export(&store, &file, scope(latest))
                .await)?;
        }
        Command::Import { dir, file, engine } => port::import(&dir, &file, engine).await?,
        Command::Backup { dir, dest } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            with_store!(opened, |store| port::backup(&store, &dest).await)?;
        }
        Command::Convert {
            dir,
            dest,
            to,
            latest,
        } => {
            let opened = open::open(&dir, Mode::ReadOnly).await?;
            with_store!(opened, |store| port::convert(
                &store,
                &dest,
                to,
                scope(latest)
            )
            .await)?;
        }
        Command::Merge { dir } => {
            let opened = open::open(&dir, Mode::Write).await?;
            with_store!(opened, |store| merge(&store).await)?;
        }
    }
    Ok(None)
}

fn scope(latest: bool) -> ExportScope {
    if latest {
        ExportScope::Latest
    } else {
        ExportScope::AllVersions
    }
}

/// A commit time as RFC 3339 (UTC, milliseconds).
pub fn time(version: Version) -> String {
    version.time().map_or_else(
        || format!("{} ms", version.time_ms()),
        |t| humantime::format_rfc3339_millis(t).to_string(),
    )
}

/// The view a read command reads: the latest commit, or `--at SEQ`.
fn view<E: Engine>(store: &Store<E>, at: Option<u64>) -> anyhow::Result<Snapshot> {
    Ok(match at {
        // Versions compare by sequence number alone: the time is not needed to find one.
        Some(seq) => store
            .engine()
            .snapshot_at(Version::new(seq, 0))
            .map_err(|e| match e {
                kv_db::Error::VersionNotFound { .. } => {
                    Coded(Failure::NotFound, format!("no readable commit {seq}: {e}")).into()
                }
                e => anyhow::Error::from(e),
            })?,
        None => store.engine().snapshot()?,
    })
}

/// Calls `f` with every live entry of `range` in `slot` at `at`, in key order, until it returns
/// `false`; reads in pages so that a large slot is never held whole. Without `values` the
/// engine lists keys only ([`Engine::scan_keys`]: no value is read) and every entry's value
/// is empty.
async fn scan<E: Engine>(
    store: &Store<E>,
    (slot, mut range): (u8, KeyRange),
    at: u64,
    values: bool,
    mut f: impl FnMut(Entry) -> bool,
) -> anyhow::Result<()> {
    const PAGE: usize = 1024;
    let engine = store.engine();
    loop {
        let page = if values {
            engine.scan(slot, &range, at, false, PAGE).await?
        } else {
            let keys = engine.scan_keys(slot, &range, at, false, PAGE).await?;
            let entry = |(key, version)| Entry {
                key,
                value: Vec::new(),
                version,
            };
            keys.into_iter().map(entry).collect()
        };
        let full = page.len() == PAGE;
        let mut last = None;
        for entry in page {
            last = Some(entry.key.clone());
            if !f(entry) {
                return Ok(());
            }
        }
        match last {
            Some(key) if full => range.start = Bound::Excluded(key),
            _ => return Ok(()),
        }
    }
}

async fn info<E: Engine>(store: &Store<E>, dir: &Path) -> anyhow::Result<()> {
    let id = open::identity(dir)?;
    let stats = store.stats().await?;
    let catalog = store.slots().await?;
    outln!("store         {}", dir.display());
    outln!("engine        {}", id.engine);
    outln!("format        {}", id.format);
    outln!("store id      {}", id.store);
    outln!("created       {}", time(Version::new(0, id.created_ms)));
    match stats.last_version.seq() {
        0 => outln!("last commit   none"),
        seq => outln!("last commit   {seq} at {}", time(stats.last_version)),
    }
    outln!("live keys     {}", stats.live_keys);
    outln!("versions      {}", stats.versions);
    outln!("files         {}", stats.files);
    outln!("bytes         {}", stats.bytes_on_storage);
    outln!(
        "garbage       {} bytes ({:.1}%)",
        stats.garbage_bytes,
        stats.garbage_ratio() * 100.0
    );
    outln!("typed slots   {}", catalog.len());
    let recovery = store.recovery();
    if recovery.is_clean() {
        outln!("recovery      clean");
    }
    for d in &recovery.dropped {
        // Read-only beside a writer, this may be a commit being written right now.
        outln!(
            "recovery      left out {} bytes of {} at offset {}: {}",
            d.bytes,
            d.file,
            d.offset,
            d.reason
        );
    }
    Ok(())
}

async fn slots<E: Engine>(store: &Store<E>) -> anyhow::Result<()> {
    let catalog = store.slots().await?;
    let at = store.engine().snapshot()?;
    outln!("slot\tname\tkeys\tkey type -> value type");
    for slot in 0..kv_db::CATALOG_SLOT {
        let mut count = 0u64;
        scan(store, (slot, KeyRange::all()), at.seq(), false, |_| {
            count = count.saturating_add(1);
            true
        })
        .await?;
        let info = catalog.iter().find(|s| s.slot == slot);
        match info {
            Some(s) => outln!(
                "{slot}\t{}\t{count}\t{} -> {}",
                s.name,
                s.key_type,
                s.value_type
            ),
            None if count > 0 => outln!("{slot}\t-\t{count}\t(not in the catalog)"),
            None => {}
        }
    }
    Ok(())
}

/// The arguments of `kv keys`.
struct KeyList<'a> {
    slot: &'a str,
    prefix: Option<&'a str>,
    partial: bool,
    limit: Option<usize>,
    values: bool,
    read: &'a ReadArgs,
}

async fn list_keys<E: Engine>(store: &Store<E>, list: &KeyList<'_>) -> anyhow::Result<()> {
    let (slot, info) = keys::slot(store, list.slot).await?;
    let printer = Printer::new(list.read, info.as_ref().map(|s| s.value_type.as_str()))?;
    let range = match list.prefix {
        Some(prefix) => KeyRange::prefix(&keys::parse_prefix(prefix, list.partial, info.as_ref())?),
        None => KeyRange::all(),
    };
    let at = view(store, list.read.at)?;
    let mut left = list.limit.unwrap_or(usize::MAX);
    let mut written = Ok(());
    scan(store, (slot, range), at.seq(), list.values, |entry| {
        let Some(rest) = left.checked_sub(1) else {
            return false;
        };
        left = rest;
        let key = keys::show(&entry.key);
        written = if list.values {
            write_line(format_args!("{key}\t{}", printer.show(&entry.value)))
        } else {
            write_line(format_args!("{key}"))
        };
        written.is_ok() && left > 0
    })
    .await?;
    written
}

/// What `get` and `versions` read: the slot, how its values print, the key, the view.
struct KeyRead {
    slot: u8,
    printer: Printer,
    key: Vec<u8>,
    at: Snapshot,
}

impl KeyRead {
    async fn new<E: Engine>(
        store: &Store<E>,
        slot: &str,
        key: &str,
        read: &ReadArgs,
    ) -> anyhow::Result<KeyRead> {
        let (slot, info) = keys::slot(store, slot).await?;
        Ok(KeyRead {
            slot,
            printer: Printer::new(read, info.as_ref().map(|s| s.value_type.as_str()))?,
            key: keys::parse(key, info.as_ref())?,
            at: view(store, read.at)?,
        })
    }

    /// The key is not there (exit code 4).
    fn not_found(&self, what: &str) -> anyhow::Error {
        let key = keys::show(&self.key);
        Coded(
            Failure::NotFound,
            format!("{what} {key} in slot {}", self.slot),
        )
        .into()
    }
}

async fn get<E: Engine>(
    store: &Store<E>,
    slot: &str,
    key: &str,
    read: &ReadArgs,
) -> anyhow::Result<()> {
    let r = KeyRead::new(store, slot, key, read).await?;
    match store.engine().get(r.slot, &r.key, r.at.seq()).await? {
        Some(value) => {
            outln!("{}", r.printer.show(&value));
            Ok(())
        }
        None => Err(r.not_found("no key")),
    }
}

async fn versions<E: Engine>(
    store: &Store<E>,
    slot: &str,
    key: &str,
    values: bool,
    read: &ReadArgs,
) -> anyhow::Result<()> {
    let r = KeyRead::new(store, slot, key, read).await?;
    let versions = store.engine().versions(r.slot, &r.key, r.at.seq()).await?;
    if versions.is_empty() {
        return Err(r.not_found("no versions of key"));
    }
    outln!("seq\ttime\twrite{}", if values { "\tvalue" } else { "" });
    for v in versions {
        let what = if v.is_removal() { "removed" } else { "put" };
        let mut line = format!("{}\t{}\t{what}", v.seq(), time(v));
        if values && !v.is_removal() {
            let value = store.engine().get_version(r.slot, &r.key, v).await?;
            if let Some(value) = value {
                line.push('\t');
                line.push_str(&r.printer.show(&value));
            }
        }
        outln!("{line}");
    }
    Ok(())
}

async fn merge<E: Engine>(store: &Store<E>) -> anyhow::Result<()> {
    let before = store.stats().await?;
    let bar = Bar::new("merge");
    let merged = store.merge_with(&|p| bar.report(p)).await;
    bar.finish();
    merged?;
    let after = store.stats().await?;
    store.close().await?;
    outln!(
        "merged: {} -> {} bytes, {} -> {} versions, {} live keys",
        before.bytes_on_storage,
        after.bytes_on_storage,
        before.versions,
        after.versions,
        after.live_keys
    );
    Ok(())
}

/// A failed open for `verify`: its corruption as a damage line (exit 1), other errors as
/// they are.
fn open_damage(err: anyhow::Error) -> anyhow::Result<Option<Failure>> {
    let corruption = err
        .chain()
        .find_map(|cause| match cause.downcast_ref::<kv_db::Error>() {
            Some(kv_db::Error::Corruption {
                file,
                offset,
                reason,
            }) => Some(kv_db::Damage::new(file, Some(*offset), reason)),
            _ => None,
        });
    let Some(damage) = corruption else {
        return Err(err);
    };
    outln!("damage: {damage}");
    outln!("the store does not open: nothing more was checked");
    Ok(Some(Failure::Damage))
}

async fn verify<E: Engine>(store: &Store<E>) -> anyhow::Result<Option<Failure>> {
    let bar = Bar::new("verify");
    let report = store.verify_with(&|p| bar.report(p)).await;
    bar.finish();
    let report = report?;
    for damage in &report.damage {
        outln!("damage: {damage}");
    }
    for note in &report.notes {
        outln!("note: {note}");
    }
    outln!(
        "{}: {} files, {} records, {} bytes checked: {}",
        report.engine,
        report.files,
        report.records,
        report.bytes,
        match report.damage.len() {
            0 => "no damage".to_string(),
            n => format!("{n} damaged places"),
        }
    );
    Ok((!report.is_clean()).then_some(Failure::Damage))
}
