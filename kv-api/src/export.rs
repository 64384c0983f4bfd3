//! Export, import and backup (issue #13): a portable, engine-neutral stream of a store's
//! commits, and version-preserving copies between stores of any engines.
//!
//! The stream (drawn byte by byte in `docs/format.md`, "Export stream") is a sequence of CRC
//! frames ([`crate::frame`]): a header (magic, stream format, source engine and store id,
//! scope, the version it was taken at, creation time), one frame per commit in increasing
//! sequence order (its sequence number, time and writes), and a trailer with the counts, so
//! that a truncated stream is an error, never a silent partial import. Structured parts are
//! postcard.
//!
//! Every copy reads one pinned snapshot of the source ([`Store::export`], [`Store::copy_into`],
//! [`Store::backup_to`]) and writes through [`Engine::import_commit`], which keeps each commit's
//! sequence number and time: Bitcask -> LSM -> Bitcask gives back every version.

use std::collections::HashSet;
use std::io::{Read, Write as IoWrite};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::frame;
use crate::{
    Engine, Error, KeyRange, MaybeSend, Progress, ProgressFn, Result, Slot, Snapshot, Storage,
    Store, Version, Write,
};

/// What an export or a copy carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportScope {
    /// Every version readable at the snapshot (values and removals), each at its commit.
    AllVersions,
    /// Each key's newest version at the snapshot, if it is a value, at the commit that wrote
    /// it (sequence numbers then skip the commits left out).
    Latest,
}

/// The header of an export stream: where and when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportHeader {
    /// The source's engine ([`Engine::NAME`]).
    pub engine: String,
    /// The source's store id, if its engine has one ([`Engine::store_id`]).
    pub store_id: Option<[u8; 16]>,
    /// What the stream carries.
    pub scope: ExportScope,
    /// The snapshot the stream was taken at: an import ends at this version.
    pub version: Version,
    /// When the export started, ms since the Unix epoch (the source's clock).
    pub created_ms: u64,
}

/// One commit of an export stream: its version and the writes in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCommit {
    /// The commit's sequence number and time, as the source recorded them.
    pub version: Version,
    /// Its writes (`value: None` is a removal), at most one per key.
    pub writes: Vec<Write>,
}

/// What an export, an import or a copy moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopySummary {
    /// The version the copy equals: the source's snapshot.
    pub version: Version,
    /// Commits moved.
    pub commits: u64,
    /// Versions moved (writes of those commits, removals included).
    pub versions: u64,
    /// Bytes of the stream written or read (0 for a copy between stores).
    pub bytes: u64,
}

/// What [`Store::export`] wrote.
pub type ExportSummary = CopySummary;
/// What [`Store::import`] applied.
pub type ImportSummary = CopySummary;
/// What [`Store::backup_to`] copied.
pub type BackupSummary = CopySummary;

/// The stream's magic, at the start of its header frame.
pub const STREAM_MAGIC: [u8; 8] = *b"KVEXPORT";
/// The stream format this build writes and reads.
pub const STREAM_FORMAT: u16 = 1;

const HEADER: u8 = 1;
const COMMIT: u8 = 2;
const TRAILER: u8 = 3;

/// The name errors give the stream (as [`Error::Corruption`]'s file).
const STREAM: &str = "export stream";

#[derive(Serialize, Deserialize)]
struct HeaderWire {
    engine: String,
    store_id: Option<[u8; 16]>,
    scope: ExportScope,
    seq: u64,
    time_ms: u64,
    created_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct WriteWire {
    slot: Slot,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct CommitWire {
    seq: u64,
    time_ms: u64,
    writes: Vec<WriteWire>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct TrailerWire {
    commits: u64,
    versions: u64,
}

impl TrailerWire {
    /// Counts one commit of `writes` writes.
    fn add(&mut self, writes: usize) {
        self.commits = self.commits.saturating_add(1);
        self.versions = self.versions.saturating_add(writes as u64);
    }
}

/// Writes an export stream: [`StreamWriter::new`] writes the header, [`StreamWriter::commit`]
/// each commit in increasing sequence order, [`StreamWriter::finish`] the trailer.
///
/// ```
/// use kv_api::export::{ExportCommit, ExportHeader, ExportScope, StreamReader, StreamWriter};
/// use kv_api::{Version, Write};
/// let header = ExportHeader {
///     engine: "bitcask".into(),
///     store_id: None,
///     scope: ExportScope::AllVersions,
///     version: Version::new(1, 1_000),
///     created_ms: 2_000,
/// };
/// let commit = ExportCommit {
///     version: Version::new(1, 1_000),
///     writes: vec![Write { slot: 0, key: b"k".to_vec(), value: Some(b"v".to_vec()) }],
/// };
/// let mut out = Vec::new();
/// let mut w = StreamWriter::new(&mut out, &header)?;
/// w.commit(&commit)?;
/// w.finish()?;
/// let mut r = StreamReader::new(out.as_slice())?;
/// assert_eq!(r.header(), &header);
/// assert_eq!(r.next_commit()?, Some(commit));
/// assert_eq!(r.next_commit()?, None);
/// # Ok::<(), kv_api::Error>(())
/// ```
pub struct StreamWriter<W: IoWrite> {
    out: W,
    buf: Vec<u8>,
    last: Version,
    limit: Version,
    counts: TrailerWire,
    bytes: u64,
}

impl<W: IoWrite> StreamWriter<W> {
    /// Writes the header of a stream to `out`.
    pub fn new(out: W, header: &ExportHeader) -> Result<Self> {
        let mut w = StreamWriter {
            out,
            buf: Vec::new(),
            last: Version::ZERO,
            limit: header.version,
            counts: TrailerWire {
                commits: 0,
                versions: 0,
            },
            bytes: 0,
        };
        let wire = HeaderWire {
            engine: header.engine.clone(),
            store_id: header.store_id,
            scope: header.scope,
            seq: header.version.seq(),
            time_ms: header.version.time_ms(),
            created_ms: header.created_ms,
        };
        let mut body = STREAM_MAGIC.to_vec();
        body.extend_from_slice(&STREAM_FORMAT.to_le_bytes());
        body.extend(encode(&wire)?);
        w.frame(HEADER, &body)?;
        Ok(w)
    }

    /// Writes one commit: after the previous one, at or below the header's version, with at
    /// least one write ([`Error::InvalidArgument`] otherwise, nothing written).
    pub fn commit(&mut self, commit: &ExportCommit) -> Result<()> {
        let v = commit.version;
        if v <= self.last || v > self.limit || commit.writes.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "export commit {v}: commits must be in increasing order (after {}), at or \
                 below the stream's version {}, and have writes",
                self.last, self.limit
            )));
        }
        let wire = CommitWire {
            seq: v.seq(),
            time_ms: v.time_ms(),
            writes: commit
                .writes
                .iter()
                .map(|w| WriteWire {
                    slot: w.slot,
                    key: w.key.clone(),
                    value: w.value.clone(),
                })
                .collect(),
        };
        self.frame(COMMIT, &encode(&wire)?)?;
        self.last = v;
        self.counts.add(commit.writes.len());
        Ok(())
    }

    /// Writes the trailer and flushes; returns the counts and the bytes written.
    pub fn finish(mut self) -> Result<CopySummary> {
        let trailer = encode(&self.counts)?;
        self.frame(TRAILER, &trailer)?;
        self.out
            .flush()
            .map_err(|e| Error::io("export stream flush", e))?;
        Ok(CopySummary {
            version: self.limit,
            commits: self.counts.commits,
            versions: self.counts.versions,
            bytes: self.bytes,
        })
    }

    fn frame(&mut self, kind: u8, body: &[u8]) -> Result<()> {
        if body.len() >= frame::MAX_PAYLOAD {
            return Err(Error::TooLarge {
                what: "export record",
                size: body.len(),
                max: frame::MAX_PAYLOAD.saturating_sub(1),
            });
        }
        self.buf.clear();
        frame::encode_with(&mut self.buf, |b| {
            b.push(kind);
            b.extend_from_slice(body);
        });
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io("export stream write", e))?;
        self.bytes = self.bytes.saturating_add(self.buf.len() as u64);
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Encode {
        what: "export record",
        reason: e.to_string(),
    })
}

/// Reads and checks an export stream frame by frame: [`StreamReader::new`] reads the header,
/// [`StreamReader::next_commit`] each commit, and returns `None` only after a trailer whose
/// counts match and the end of the input. Damage, a truncated stream, commits out of order
/// or bytes after the trailer are [`Error::Corruption`] (file `"export stream"`, the offset
/// of the bad frame); a newer stream format is [`Error::Incompatible`]. Never panics; reads
/// no more than the frame lengths it is given, in bounded steps.
///
/// See [`StreamWriter`] for an example.
pub struct StreamReader<R: Read> {
    input: R,
    header: ExportHeader,
    last: Version,
    counts: TrailerWire,
    offset: u64,
    done: bool,
}

impl<R: Read> StreamReader<R> {
    /// Reads and checks the header.
    pub fn new(mut input: R) -> Result<Self> {
        let Some(payload) = read_frame(&mut input, 0)? else {
            return Err(Error::corruption(STREAM, 0, "empty: no header"));
        };
        let bad = |reason: &str| Error::corruption(STREAM, 0, reason);
        let body = match payload.split_first() {
            Some((&HEADER, body)) => body,
            _ => return Err(bad("the first frame is not a header")),
        };
        let (magic, rest) = body
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("no magic"))?;
        if *magic != STREAM_MAGIC {
            return Err(bad("not a kv export stream (magic)"));
        }
        let (format, rest) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| bad("no format"))?;
        let format = u16::from_le_bytes(*format);
        if format != STREAM_FORMAT {
            return Err(Error::Incompatible {
                engine: "import",
                found: format!("export stream format {format}; this build reads {STREAM_FORMAT}"),
            });
        }
        let wire: HeaderWire = decode(rest, 0)?;
        let header = ExportHeader {
            engine: wire.engine,
            store_id: wire.store_id,
            scope: wire.scope,
            version: Version::new(wire.seq, wire.time_ms),
            created_ms: wire.created_ms,
        };
        Ok(StreamReader {
            input,
            header,
            last: Version::ZERO,
            counts: TrailerWire {
                commits: 0,
                versions: 0,
            },
            offset: frame_len(&payload),
            done: false,
        })
    }

    /// The stream's header.
    pub fn header(&self) -> &ExportHeader {
        &self.header
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.offset
    }

    /// Commits and versions read so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.counts.commits, self.counts.versions)
    }

    /// The next commit, or `None` after a trailer that matches and the end of the input.
    pub fn next_commit(&mut self) -> Result<Option<ExportCommit>> {
        if self.done {
            return Ok(None);
        }
        let at = self.offset;
        let bad = |reason: String| Error::corruption(STREAM, at, reason);
        let Some(payload) = read_frame(&mut self.input, at)? else {
            return Err(bad("the stream ends before its trailer (truncated)".into()));
        };
        self.offset = at.saturating_add(frame_len(&payload));
        match payload.split_first() {
            Some((&COMMIT, body)) => {
                let wire: CommitWire = decode(body, at)?;
                let version = Version::new(wire.seq, wire.time_ms);
                let limit = self.header.version;
                if version <= self.last
                    || version.time_ms() < self.last.time_ms()
                    || version > limit
                    || version.time_ms() > limit.time_ms()
                {
                    return Err(bad(format!(
                        "commit {version} at {} ms out of order (after {} at {} ms, up to \
                         {limit} at {} ms)",
                        version.time_ms(),
                        self.last,
                        self.last.time_ms(),
                        limit.time_ms()
                    )));
                }
                if wire.writes.is_empty() {
                    return Err(bad(format!("commit {version} has no writes")));
                }
                let mut keys = HashSet::with_capacity(wire.writes.len());
                if !wire.writes.iter().all(|w| keys.insert((w.slot, &w.key))) {
                    return Err(bad(format!("commit {version} writes a key twice")));
                }
                drop(keys);
                self.last = version;
                self.counts.add(wire.writes.len());
                let writes = wire
                    .writes
                    .into_iter()
                    .map(|w| Write {
                        slot: w.slot,
                        key: w.key,
                        value: w.value,
                    })
                    .collect();
                Ok(Some(ExportCommit { version, writes }))
            }
            Some((&TRAILER, body)) => {
                let trailer: TrailerWire = decode(body, at)?;
                if trailer != self.counts {
                    return Err(bad(format!(
                        "the trailer counts {} commits and {} versions, the stream held {} \
                         and {}",
                        trailer.commits,
                        trailer.versions,
                        self.counts.commits,
                        self.counts.versions
                    )));
                }
                let mut extra = [0u8; 1];
                match self.input.read(&mut extra) {
                    Ok(0) => {}
                    Ok(_) => {
                        return Err(Error::corruption(
                            STREAM,
                            self.offset,
                            "bytes after the trailer",
                        ));
                    }
                    Err(e) => return Err(Error::io("export stream read", e)),
                }
                self.done = true;
                Ok(None)
            }
            _ => Err(bad("unknown record kind".into())),
        }
    }
}

/// Bytes of the frame that carried `payload`.
fn frame_len(payload: &[u8]) -> u64 {
    (payload.len() as u64).saturating_add(frame::HEADER_LEN as u64)
}

fn decode<'de, T: Deserialize<'de>>(body: &'de [u8], at: u64) -> Result<T> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(Error::corruption(
            STREAM,
            at,
            format!("{} bytes left over in a record", rest.len()),
        )),
        Err(e) => Err(Error::corruption(STREAM, at, format!("bad record: {e}"))),
    }
}

/// Reads one frame at stream offset `at` and returns its checked payload; `None` at a clean
/// end of the input. The payload is read in bounded steps (`Read::take`), so a forged length
/// costs no more memory than the bytes really there.
fn read_frame(input: &mut impl Read, at: u64) -> Result<Option<Vec<u8>>> {
    let bad = |reason: &str| Error::corruption(STREAM, at, reason);
    let mut buf = Vec::with_capacity(frame::HEADER_LEN);
    input
        .by_ref()
        .take(frame::HEADER_LEN as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("export stream read", e))?;
    if buf.is_empty() {
        return Ok(None);
    }
    let len = crate::bytes::u32_at(&buf, 4).ok_or_else(|| bad("truncated frame header"))?;
    if usize::try_from(len).map_or(true, |n| n > frame::MAX_PAYLOAD) {
        return Err(bad("frame longer than the format allows"));
    }
    input
        .by_ref()
        .take(u64::from(len))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("export stream read", e))?;
    let payload = frame::decode_exact(&buf).map_err(bad)?;
    Ok(Some(payload.to_vec()))
}

/// Keys read from a source per `scan_versions` call.
const PAGE: usize = 1024;

/// One version of the plan: the key and what the commit did to it.
struct Planned {
    version: Version,
    slot: Slot,
    key: Vec<u8>,
    removal: bool,
}

/// The commits to copy from one pinned snapshot, in sequence order; values are read as each
/// commit is produced, so memory is O(versions x key size), not values.
struct Plan {
    header: ExportHeader,
    entries: std::vec::IntoIter<Planned>,
    next: Option<Planned>,
    commits: u64,
    /// Pins what the copy reads: the snapshot, and for every version the oldest readable.
    _pins: Vec<Snapshot>,
}

impl Plan {
    async fn new<E: Engine>(
        engine: &E,
        scope: ExportScope,
        maintenance: &tokio::sync::RwLock<()>,
        progress: &ProgressFn<'_>,
    ) -> Result<Plan> {
        // No merge runs while the plan pins and lists: one that started earlier computed its
        // horizon without the pins, and any merge drops removal markers at or below its
        // horizon, which the listing would show before the merge and not after. Once listed,
        // what the plan reads (values above the floor, each key's newest at or below it) is
        // held by the pins.
        let _no_merge = maintenance.read().await;
        let snap = engine.snapshot()?;
        let at = snap.version();
        let mut pins = vec![snap];
        // Every version: pin the oldest readable one too, so that a merge running meanwhile
        // keeps every version this plan lists (it keeps all above the oldest pin).
        let floor = match scope {
            ExportScope::AllVersions => {
                let (floor, pin) = pin_horizon(engine, at)?;
                pins.push(pin);
                floor
            }
            ExportScope::Latest => at.seq(),
        };
        let mut entries = Vec::new();
        let mut keys: u64 = 0;
        for slot in 0..=Slot::MAX {
            let mut range = KeyRange::all();
            loop {
                let page = engine.scan_versions(slot, &range, at.seq(), PAGE).await?;
                let full = page.len() >= PAGE;
                let Some((last, _)) = page.last() else { break };
                range.start = Bound::Excluded(last.clone());
                keys = keys.saturating_add(page.len() as u64);
                for (key, versions) in page {
                    // Below the floor only each key's newest version is readable for sure.
                    let newest_old = versions.iter().rposition(|v| v.seq() <= floor);
                    let keep = versions.iter().enumerate().filter(|(i, v)| match scope {
                        ExportScope::AllVersions => v.seq() > floor || Some(*i) == newest_old,
                        ExportScope::Latest => {
                            Some(*i) == versions.len().checked_sub(1) && !v.is_removal()
                        }
                    });
                    let kept: Vec<Version> = keep.map(|(_, v)| *v).collect();
                    for v in kept {
                        entries.push(Planned {
                            version: v,
                            slot,
                            key: key.clone(),
                            removal: v.is_removal(),
                        });
                    }
                }
                progress(Progress {
                    stage: "keys",
                    done: keys,
                    total: 0,
                });
                if !full {
                    break;
                }
            }
        }
        // Stable: the writes of one commit stay in slot and key order.
        entries.sort_by_key(|p| p.version.seq());
        let mut commits: u64 = 0;
        let mut prev = None;
        for p in &entries {
            if prev != Some(p.version.seq()) {
                commits = commits.saturating_add(1);
                prev = Some(p.version.seq());
            }
        }
        let mut entries = entries.into_iter();
        let next = entries.next();
        Ok(Plan {
            header: ExportHeader {
                engine: E::NAME.to_string(),
                store_id: engine.store_id(),
                scope,
                version: at,
                created_ms: engine.options().clock.now_ms(),
            },
            entries,
            next,
            commits,
            _pins: pins,
        })
    }

    /// The next commit, with its values read from `engine`.
    async fn next_commit<E: Engine>(&mut self, engine: &E) -> Result<Option<ExportCommit>> {
        let Some(first) = self.next.take() else {
            return Ok(None);
        };
        let version = Version::new(first.version.seq(), first.version.time_ms());
        let mut writes = Vec::new();
        let mut p = Some(first);
        while let Some(cur) = p.take() {
            if cur.version.seq() != version.seq() {
                self.next = Some(cur);
                break;
            }
            let value = if cur.removal {
                None
            } else {
                engine.get_version(cur.slot, &cur.key, cur.version).await?
            };
            writes.push(Write {
                slot: cur.slot,
                key: cur.key,
                value,
            });
            p = self.entries.next();
        }
        Ok(Some(ExportCommit { version, writes }))
    }
}

/// Pins the oldest readable version at or below `at` (the horizon): found by bisection with
/// `snapshot_at`, which refuses a version below it. Returns it with its pin.
fn pin_horizon<E: Engine>(engine: &E, at: Version) -> Result<(u64, Snapshot)> {
    // Each round is beaten only by a merge finishing in between; an engine whose
    // `snapshot_at` refuses what it just accepted would loop forever.
    for _ in 0..64 {
        let (mut lo, mut hi) = (0u64, at.seq());
        // `hi` is readable (the snapshot pins it); find the smallest readable.
        while lo < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            match engine.snapshot_at(Version::new(mid, 0)) {
                Ok(_) => hi = mid,
                Err(Error::VersionNotFound { .. }) => lo = mid.saturating_add(1),
                Err(e) => return Err(e),
            }
        }
        // A merge may have raised the horizon since: then search again.
        match engine.snapshot_at(Version::new(lo, 0)) {
            Ok(pin) => return Ok((lo, pin)),
            Err(Error::VersionNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::VersionNotFound {
        seq: at.seq(),
        reason: "no version stayed readable long enough to pin the export's oldest version",
    })
}

// --- Store methods -------------------------------------------------------------------------

impl<E: Engine> Store<E> {
    /// Writes every commit of the store up to now (one pinned snapshot, taken while writers
    /// go on committing) to `out` as a portable export stream (`docs/format.md`, "Export
    /// stream"): every readable version with its commit time ([`ExportScope::AllVersions`]),
    /// or each key's latest value ([`ExportScope::Latest`]). The catalog (slot 255) is
    /// included, so typed slots carry over. `out` may be a `Vec<u8>` (on wasm32 too) or a
    /// file. Progress goes to `progress` (`"keys"` listed, then `"commits"` written).
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// use kv_api::export::ExportScope;
    /// let mut stream = Vec::new();
    /// let summary = store.export(&mut stream, ExportScope::AllVersions, &|_| {}).await?;
    /// println!("{} commits, {} bytes", summary.commits, summary.bytes);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn export<W: IoWrite + MaybeSend>(
        &self,
        out: W,
        scope: ExportScope,
        progress: &ProgressFn<'_>,
    ) -> Result<ExportSummary> {
        let engine = self.engine();
        let mut plan = Plan::new(engine, scope, &self.auto_merge.exclusion, progress).await?;
        let mut writer = StreamWriter::new(out, &plan.header)?;
        let mut done: u64 = 0;
        while let Some(commit) = plan.next_commit(engine).await? {
            writer.commit(&commit)?;
            done = done.saturating_add(1);
            progress(Progress {
                stage: "commits",
                done,
                total: plan.commits,
            });
        }
        writer.finish()
    }

    /// Applies an export stream to this store, keeping every commit's sequence number and
    /// time ([`Engine::import_commit`]), and flushes at the end. The store then ends at the
    /// stream's version (an empty commit marks it if the stream's last commit is older).
    ///
    /// Import into a new store: a store whose last commit is at or after the stream's first is
    /// [`Error::InvalidArgument`]. Every frame is checked before its commit is applied; a
    /// damaged or truncated stream is [`Error::Corruption`] and nothing after the bad frame is
    /// applied, but the commits before it were: discard the store and import again.
    ///
    /// ```
    /// # async fn demo(
    /// #     source: kv_api::Store<impl kv_api::Engine>,
    /// #     target: kv_api::Store<impl kv_api::Engine>,
    /// # ) -> kv_api::Result<()> {
    /// let mut stream = Vec::new();
    /// source.export(&mut stream, kv_api::export::ExportScope::AllVersions, &|_| {}).await?;
    /// target.import(stream.as_slice(), &|_| {}).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn import<R: Read + MaybeSend>(
        &self,
        input: R,
        progress: &ProgressFn<'_>,
    ) -> Result<ImportSummary> {
        let mut reader = StreamReader::new(input)?;
        let to = reader.header().version;
        let mut importer = Importer::new(self)?;
        while let Some(commit) = reader.next_commit()? {
            importer.apply(commit).await?;
            progress(Progress {
                stage: "commits",
                done: importer.summary.commits,
                total: 0,
            });
        }
        let mut summary = importer.finish(to).await?;
        summary.bytes = reader.bytes();
        Ok(summary)
    }

    /// Copies this store into `target`, a store of any engine (a new one: see
    /// [`Store::import`]), from one pinned snapshot, keeping every commit's sequence number
    /// and time; `target` ends at the snapshot's version and is flushed. What [`Store::backup_to`]
    /// and a conversion between engines use.
    ///
    /// ```
    /// # async fn demo(
    /// #     source: kv_api::Store<impl kv_api::Engine>,
    /// #     target: kv_api::Store<impl kv_api::Engine>,
    /// # ) -> kv_api::Result<()> {
    /// let summary = source.copy_into(&target, kv_api::export::ExportScope::AllVersions, &|_| {}).await?;
    /// assert_eq!(target.version()?, summary.version);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn copy_into<T: Engine>(
        &self,
        target: &Store<T>,
        scope: ExportScope,
        progress: &ProgressFn<'_>,
    ) -> Result<CopySummary> {
        let engine = self.engine();
        let mut plan = Plan::new(engine, scope, &self.auto_merge.exclusion, progress).await?;
        let mut importer = Importer::new(target)?;
        while let Some(commit) = plan.next_commit(engine).await? {
            importer.apply(commit).await?;
            progress(Progress {
                stage: "commits",
                done: importer.summary.commits,
                total: plan.commits,
            });
        }
        importer.finish(plan.header.version).await
    }

    /// Backs the store up into `target`, a storage of the same kind that holds nothing yet
    /// (a directory, memory): opens a new store of this engine there with the same options
    /// and tuning, copies every readable version from one pinned snapshot (writers go on
    /// committing meanwhile), flushes and closes it. The copy opens as a normal store and
    /// equals a snapshot of this one at the returned version. A target that holds files is
    /// [`Error::InvalidArgument`]. Only for engines on a [`crate::Storage`]; a store on a
    /// remote location copies with [`Store::copy_into`] into a store opened there.
    ///
    /// ```
    /// # async fn demo<E: kv_api::Engine<Storage: kv_api::Storage>>(store: kv_api::Store<E>, target: E::Storage) -> kv_api::Result<()> {
    /// let backup = store.backup_to(target, &|_| {}).await?;
    /// println!("backed up as of {}", backup.version);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn backup_to(
        &self,
        target: E::Storage,
        progress: &ProgressFn<'_>,
    ) -> Result<BackupSummary>
    where
        E::Storage: crate::Storage,
    {
        let files = target.list().await?;
        if !files.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "the backup target is not empty ({} files, first {:?}): back up into an \
                 empty storage",
                files.len(),
                files.first().map(String::as_str).unwrap_or_default()
            )));
        }
        let engine = self.engine();
        let options = engine.options().clone().read_only(false);
        let copy = Store::<E>::open_tuned(target, options, engine.tuning().clone()).await?;
        let copied = self
            .copy_into(&copy, ExportScope::AllVersions, progress)
            .await;
        let closed = copy.close().await;
        let summary = copied?;
        closed?;
        Ok(summary)
    }
}

/// Applies commits to a store: [`Engine::import_commit`] for each, then the final version
/// and a flush.
struct Importer<'a, T: Engine> {
    target: &'a Store<T>,
    summary: CopySummary,
}

impl<'a, T: Engine> Importer<'a, T> {
    fn new(target: &'a Store<T>) -> Result<Self> {
        let last = target.version()?;
        Ok(Importer {
            target,
            summary: CopySummary {
                version: last,
                ..CopySummary::default()
            },
        })
    }

    async fn apply(&mut self, commit: ExportCommit) -> Result<()> {
        let last = self.summary.version;
        if self.summary.commits == 0 && commit.version <= last {
            return Err(Error::InvalidArgument(format!(
                "the target store is at {last}, the imported commits start at {}: import \
                 into a new store",
                commit.version
            )));
        }
        let n = commit.writes.len() as u64;
        self.target
            .engine()
            .import_commit(commit.version, commit.writes)
            .await?;
        self.summary.version = commit.version;
        self.summary.commits = self.summary.commits.saturating_add(1);
        self.summary.versions = self.summary.versions.saturating_add(n);
        Ok(())
    }

    /// Marks the source's snapshot version (an empty commit, if the last copied commit is
    /// older), flushes, and reloads the target's catalog.
    async fn finish(mut self, to: Version) -> Result<CopySummary> {
        let engine = self.target.engine();
        if to > self.summary.version {
            engine.import_commit(to, Vec::new()).await?;
            self.summary.version = to;
        }
        engine.flush().await?;
        let slots = self.target.catalog.refresh(engine).await?;
        self.target.catalog.record(slots);
        // Expiry records came in with slot 255: reads must look them up from now on.
        self.target.catalog.expiry.refresh(engine).await?;
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ExportHeader {
        ExportHeader {
            engine: "lsm".into(),
            store_id: Some([7; 16]),
            scope: ExportScope::Latest,
            version: Version::new(10, 5_000),
            created_ms: 6_000,
        }
    }

    fn commit(seq: u64, time_ms: u64, keys: &[&[u8]]) -> ExportCommit {
        ExportCommit {
            version: Version::new(seq, time_ms),
            writes: keys
                .iter()
                .map(|k| Write {
                    slot: k.len() as u8,
                    key: k.to_vec(),
                    value: (k.len() % 2 == 0).then(|| k.repeat(3)),
                })
                .collect(),
        }
    }

    fn stream(commits: &[ExportCommit]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = StreamWriter::new(&mut out, &header()).unwrap();
        for c in commits {
            w.commit(c).unwrap();
        }
        let summary = w.finish().unwrap();
        assert_eq!(summary.bytes, out.len() as u64);
        out
    }

    fn read_all(bytes: &[u8]) -> Result<(ExportHeader, Vec<ExportCommit>)> {
        let mut r = StreamReader::new(bytes)?;
        let mut commits = Vec::new();
        while let Some(c) = r.next_commit()? {
            commits.push(c);
        }
        assert_eq!(r.bytes(), bytes.len() as u64);
        Ok((r.header().clone(), commits))
    }

    fn sample() -> Vec<ExportCommit> {
        vec![
            commit(2, 1_000, &[b"a", b"bb"]),
            commit(3, 1_000, &[b"", b"c"]),
            commit(9, 5_000, &[b"dd"]),
        ]
    }

    #[test]
    fn round_trip_keeps_everything() {
        let commits = sample();
        let (h, got) = read_all(&stream(&commits)).unwrap();
        assert_eq!(h, header());
        assert_eq!(got, commits);
        // Times are kept, not just sequence numbers (`Version` compares by seq alone).
        let times: Vec<u64> = got.iter().map(|c| c.version.time_ms()).collect();
        assert_eq!(times, vec![1_000, 1_000, 5_000]);
        // An empty stream is a header and a trailer.
        assert_eq!(read_all(&stream(&[])).unwrap().1, vec![]);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error() {
        let bytes = stream(&sample());
        for cut in 0..bytes.len() {
            match read_all(&bytes[..cut]) {
                Err(Error::Corruption { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            assert!(read_all(&bad).is_err(), "flip at {at} read as whole");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(read_all(&longer), Err(Error::Corruption { .. })));
    }

    /// Frames that are whole but say the wrong thing: re-framed with valid CRCs.
    #[test]
    fn well_framed_nonsense_is_an_error() {
        let framed = |kind: u8, body: &[u8]| {
            let mut out = Vec::new();
            frame::encode_with(&mut out, |b| {
                b.push(kind);
                b.extend_from_slice(body);
            });
            out
        };
        let good = stream(&sample());
        let Some(frame::Decoded::Frame {
            next: header_end, ..
        }) = Some(frame::decode(&good, 0))
        else {
            unreachable!()
        };
        let head = &good[..header_end];
        let trailer = |commits: u64, versions: u64| {
            framed(
                TRAILER,
                &encode(&TrailerWire { commits, versions }).unwrap(),
            )
        };
        let commit_frame = |seq: u64, time_ms: u64, keys: &[&[u8]]| {
            let c = commit(seq, time_ms, keys);
            let wire = CommitWire {
                seq,
                time_ms,
                writes: c
                    .writes
                    .into_iter()
                    .map(|w| WriteWire {
                        slot: w.slot,
                        key: w.key,
                        value: w.value,
                    })
                    .collect(),
            };
            framed(COMMIT, &encode(&wire).unwrap())
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("wrong counts", [head, &trailer(1, 1)].concat()),
            (
                "out of order",
                [
                    head,
                    &commit_frame(3, 1, &[b"a"]),
                    &commit_frame(2, 1, &[b"b"]),
                    &trailer(2, 2),
                ]
                .concat(),
            ),
            (
                "time backwards",
                [
                    head,
                    &commit_frame(2, 9, &[b"a"]),
                    &commit_frame(3, 1, &[b"b"]),
                ]
                .concat(),
            ),
            (
                "past the header's version",
                [head, &commit_frame(11, 1, &[b"a"])].concat(),
            ),
            (
                "no writes",
                [head, &commit_frame(2, 1, &[]), &trailer(1, 0)].concat(),
            ),
            (
                "a key twice",
                [head, &commit_frame(2, 1, &[b"a", b"a"]), &trailer(1, 2)].concat(),
            ),
            ("unknown kind", [head, &framed(9, b"")].concat()),
            ("header twice", [head, head].concat()),
            ("no header", trailer(0, 0)),
            (
                "bytes left over",
                [head, &framed(TRAILER, &[0, 0, 0])].concat(),
            ),
        ];
        for (what, bytes) in cases {
            assert!(
                matches!(read_all(&bytes), Err(Error::Corruption { .. })),
                "{what}: {:?}",
                read_all(&bytes)
            );
        }
        // A newer stream format is refused as such.
        let mut body = STREAM_MAGIC.to_vec();
        body.extend_from_slice(&2u16.to_le_bytes());
        assert!(matches!(
            StreamReader::new(framed(HEADER, &body).as_slice()),
            Err(Error::Incompatible { .. })
        ));
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would() {
        let mut out = Vec::new();
        let mut w = StreamWriter::new(&mut out, &header()).unwrap();
        w.commit(&commit(4, 1, &[b"a"])).unwrap();
        for bad in [
            commit(4, 1, &[b"b"]),
            commit(11, 1, &[b"b"]),
            commit(5, 1, &[]),
        ] {
            assert!(matches!(w.commit(&bad), Err(Error::InvalidArgument(_))));
        }
    }
}
