//! The manifest: which tables make up the store, per level, and what the WAL no longer needs.
//!
//! **Format choice: a snapshot file replaced by rename**, not an append-only edit log. The
//! manifest is small (one line per table; a few hundred tables for a large store) and changes
//! only once per flush or compaction, each of which already writes megabytes, so rewriting it
//! costs nothing measurable. In exchange there is no edit-log replay, no log compaction and no
//! `CURRENT` pointer: `MANIFEST.tmp` is written and synced, then renamed over `MANIFEST`, which
//! [`Storage::rename`] makes atomic, so after a crash `MANIFEST` is either the old or the new
//! state, never a mix. The content is the file header (kind [`KIND_MANIFEST`], the store's id,
//! file id 0: a manifest of another store is refused), then one CRC frame
//! ([`kv_engine_kit::frame`]):
//!
//! ```text
//! magic "KVLSMMF1" | format u32 (2) | next_file_id u64 | last_flushed_seq u64
//! | last_flushed_time u64 | wal_floor u64 | wal_newest u64 | horizon u64 | table_count u32
//! | table* = level u8 | id u64 | size u64 | entries u64 | min_seq u64 | max_seq u64
//!            | smallest (len u32, ukey, seq u64) | largest (len u32, ukey, seq u64)
//! [format 3 only: | tomb_count u32 | tomb* = slot u8 | seq u64 | time_ms u64 | start | end]
//! ```
//!
//! [format 4 only: | tomb_count u32 | tomb* | blob_count u32 (> 0)
//!                  | blob* = id u64 | size u64 | values u64 | value_bytes u64]
//!
//! Format 4 adds the live blob files ([`crate::blob`]; ids ascending, each below
//! `next_file_id`) after a tombstone list that may be empty; it is written only while blob
//! files exist, so a store without them stays readable by earlier builds, which refuse a
//! format-4 manifest rather than read table entries they do not know.
//!
//! Format 3 is format 2 with the range tombstones of flushed commits ([`crate::rtomb`]; a
//! bound is `tag u8 | len u32 | key`, as in the WAL's range removal record). A manifest
//! without tombstones is written as format 2, byte for byte as before; builds without range
//! tombstones refuse a format-3 manifest rather than misread it.
//!
//! * `last_flushed_seq`/`_time`: the last commit whose writes are all in tables; WAL
//!   transactions at or below it are not replayed.
//! * `wal_floor`: WAL files with a smaller id hold only flushed commits (deleted).
//! * `wal_newest`: the newest WAL file created (0 before the first). A WAL roll writes it
//!   after the new file exists with its header, and before any commit goes there, so the
//!   newest WAL file, the only one continuity cannot vouch for (nothing follows it), is
//!   known: its loss is corruption naming it, not commits dropped without a word.
//! * `tomb*`: every range tombstone of a commit at or below `last_flushed_seq` that no merge
//!   has turned into per-key removals yet, oldest first.
//! * `horizon`: the oldest sequence number whose whole state is readable (raised by `merge`),
//!   so `snapshot_at` of a merged-away version fails after a reopen too.

use kv_api::{Error, Result, Storage};
use kv_engine_kit::bytes::Reader;
use kv_engine_kit::header::{self, StoreId};
use kv_engine_kit::{files, frame};

use crate::blob::BlobMeta;
use crate::key::cmp_ikey;
#[cfg(doc)]
use crate::names::KIND_MANIFEST;
use crate::names::manifest_header;
use crate::rtomb::RangeTomb;
use crate::sstable::TableMeta;
use kv_engine_kit::txlog;

/// The manifest's file name.
pub(crate) const MANIFEST: &str = "MANIFEST";
/// The file a new manifest is written to before it is renamed over [`MANIFEST`].
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";
const MAGIC: &[u8; 8] = b"KVLSMMF1";
const FORMAT: u32 = 2;
/// Format 2 with range tombstones.
const FORMAT_TOMBS: u32 = 3;
/// Format 3 with blob files: the tombstone list (perhaps empty), then the blob file list.
const FORMAT_BLOBS: u32 = 4;

/// The persisted state of the tree (besides the WAL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Ids below this are taken (tables and WAL files share one id space).
    pub next_file_id: u64,
    /// The last commit whose writes are all in tables.
    pub last_flushed_seq: u64,
    /// Its commit time.
    pub last_flushed_time: u64,
    /// WAL files below this id are not needed.
    pub wal_floor: u64,
    /// The newest WAL file created (0: none yet).
    pub wal_newest: u64,
    /// Oldest sequence number whose whole state is readable.
    pub horizon: u64,
    /// Tables with their levels.
    pub tables: Vec<(usize, TableMeta)>,
    /// Range tombstones of flushed commits, oldest first.
    pub tombs: Vec<RangeTomb>,
    /// Live blob files, by id.
    pub blobs: Vec<BlobMeta>,
}

/// The kit's [`Reader`], with a read past the end as corruption at its offset in the file.
struct Fields<'a>(Reader<'a>);

impl<'a> Fields<'a> {
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "the payload read lies after the header and frame header of a buffer in memory: \
                  the sum is an offset in that buffer"
    )]
    fn offset(&self) -> u64 {
        (header::LEN + frame::HEADER_LEN + self.0.position()) as u64
    }

    fn truncated(&self) -> Error {
        Error::corruption(MANIFEST, self.offset(), "truncated manifest")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        self.0.take(n).ok_or_else(|| self.truncated())
    }

    fn u8(&mut self) -> Result<u8> {
        self.0.u8().ok_or_else(|| self.truncated())
    }

    fn u32(&mut self) -> Result<u32> {
        self.0.u32().ok_or_else(|| self.truncated())
    }

    fn u64(&mut self) -> Result<u64> {
        self.0.u64().ok_or_else(|| self.truncated())
    }

    fn ikey(&mut self) -> Result<(Vec<u8>, u64)> {
        let k = self
            .0
            .len_prefixed()
            .ok_or_else(|| self.truncated())?
            .to_vec();
        Ok((k, self.u64()?))
    }
}

/// A manifest too large for its format: [`Error::TooLarge`].
fn too_large(what: &'static str, size: usize, max: usize) -> Error {
    Error::TooLarge { what, size, max }
}

fn put_ikey(out: &mut Vec<u8>, (k, seq): &(Vec<u8>, u64)) -> Result<()> {
    let len = u32::try_from(k.len())
        .map_err(|_| too_large("manifest key", k.len(), u32::MAX as usize))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(k);
    out.extend_from_slice(&seq.to_le_bytes());
    Ok(())
}

impl Manifest {
    /// Encodes the manifest of `store`: its header, then one frame. More tables than its
    /// `u32` count, or a payload past [`frame::MAX_PAYLOAD`], is [`Error::TooLarge`].
    pub fn encode(&self, store: StoreId) -> Result<Vec<u8>> {
        let count = u32::try_from(self.tables.len())
            .map_err(|_| too_large("manifest table list", self.tables.len(), u32::MAX as usize))?;
        // The payload is built apart and framed once its length is known to fit (a manifest is
        // small, and written once per flush or compaction: the copy costs nothing measurable).
        let mut b = Vec::new();
        {
            b.extend_from_slice(MAGIC);
            let format = if !self.blobs.is_empty() {
                FORMAT_BLOBS
            } else if !self.tombs.is_empty() {
                FORMAT_TOMBS
            } else {
                FORMAT
            };
            b.extend_from_slice(&format.to_le_bytes());
            for v in [
                self.next_file_id,
                self.last_flushed_seq,
                self.last_flushed_time,
                self.wal_floor,
                self.wal_newest,
                self.horizon,
            ] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&count.to_le_bytes());
            for (level, t) in &self.tables {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "levels come from a LevelSet (`LevelSet::all`): below NUM_LEVELS, 7"
                )]
                b.push(*level as u8);
                for v in [t.id, t.size, t.entries, t.min_seq, t.max_seq] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
                put_ikey(&mut b, &t.smallest)?;
                put_ikey(&mut b, &t.largest)?;
            }
            if format != FORMAT {
                let count = u32::try_from(self.tombs.len()).map_err(|_| {
                    too_large(
                        "manifest tombstone list",
                        self.tombs.len(),
                        u32::MAX as usize,
                    )
                })?;
                b.extend_from_slice(&count.to_le_bytes());
                for t in &self.tombs {
                    let len = txlog::range_len(&t.range);
                    if len > frame::MAX_PAYLOAD {
                        return Err(too_large("manifest tombstone", len, frame::MAX_PAYLOAD));
                    }
                    b.push(t.slot);
                    b.extend_from_slice(&t.version.seq().to_le_bytes());
                    b.extend_from_slice(&t.version.time_ms().to_le_bytes());
                    txlog::put_range(&mut b, &t.range);
                }
            }
            if format == FORMAT_BLOBS {
                let count = u32::try_from(self.blobs.len()).map_err(|_| {
                    too_large("manifest blob list", self.blobs.len(), u32::MAX as usize)
                })?;
                b.extend_from_slice(&count.to_le_bytes());
                for f in &self.blobs {
                    for v in [f.id, f.size, f.values, f.value_bytes] {
                        b.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
        if b.len() > frame::MAX_PAYLOAD {
            return Err(too_large("manifest", b.len(), frame::MAX_PAYLOAD));
        }
        let mut out = Vec::with_capacity(
            header::LEN
                .saturating_add(frame::HEADER_LEN)
                .saturating_add(b.len()),
        );
        manifest_header(store).encode(&mut out);
        frame::encode(&b, &mut out);
        Ok(out)
    }

    /// Decodes the bytes of the manifest file of `store`.
    pub fn decode(buf: &[u8], store: StoreId) -> Result<Manifest> {
        manifest_header(store).check(buf, MANIFEST)?;
        // The header was checked: the body is there (perhaps empty).
        let body = buf
            .get(header::LEN..)
            .ok_or_else(|| Error::corruption(MANIFEST, 0, "truncated manifest"))?;
        let payload = frame::decode_exact(body)
            .map_err(|r| Error::corruption(MANIFEST, header::LEN as u64, r))?;
        let mut r = Fields(Reader::new(payload));
        let start = r.offset();
        if r.take(8)? != MAGIC {
            return Err(Error::corruption(
                MANIFEST,
                start,
                "bad magic: not a manifest",
            ));
        }
        let format_at = r.offset();
        let format = r.u32()?;
        if ![FORMAT, FORMAT_TOMBS, FORMAT_BLOBS].contains(&format) {
            return Err(Error::corruption(
                MANIFEST,
                format_at,
                format!("unsupported manifest format {format}"),
            ));
        }
        let mut m = Manifest {
            next_file_id: r.u64()?,
            last_flushed_seq: r.u64()?,
            last_flushed_time: r.u64()?,
            wal_floor: r.u64()?,
            wal_newest: r.u64()?,
            horizon: r.u64()?,
            tables: Vec::new(),
            tombs: Vec::new(),
            blobs: Vec::new(),
        };
        let n = r.u32()?;
        for _ in 0..n {
            let level = r.u8()? as usize;
            if level >= crate::levels::NUM_LEVELS {
                return Err(Error::corruption(MANIFEST, r.offset(), "impossible level"));
            }
            let (id, size, entries, min_seq, max_seq) =
                (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
            let smallest = r.ikey()?;
            let largest = r.ikey()?;
            m.tables.push((
                level,
                TableMeta {
                    id,
                    size,
                    entries,
                    smallest,
                    largest,
                    min_seq,
                    max_seq,
                },
            ));
        }
        if format != FORMAT {
            let n = r.u32()?;
            if n == 0 && format == FORMAT_TOMBS {
                return Err(Error::corruption(
                    MANIFEST,
                    r.offset(),
                    "empty tombstone list",
                ));
            }
            for _ in 0..n {
                let at = r.offset();
                let (slot, seq, time) = (r.u8()?, r.u64()?, r.u64()?);
                let (start, end) = txlog::read_range(&mut r.0).ok_or_else(|| r.truncated())?;
                if seq == 0 || seq > m.last_flushed_seq {
                    return Err(Error::corruption(
                        MANIFEST,
                        at,
                        format!("tombstone of commit {seq}, not a flushed commit"),
                    ));
                }
                m.tombs.push(RangeTomb {
                    slot,
                    range: kv_api::KeyRange {
                        start: start.map(<[u8]>::to_vec),
                        end: end.map(<[u8]>::to_vec),
                    },
                    version: kv_api::Version::new(seq, time),
                });
            }
        }
        if format == FORMAT_BLOBS {
            let n = r.u32()?;
            if n == 0 {
                return Err(Error::corruption(
                    MANIFEST,
                    r.offset(),
                    "empty blob file list",
                ));
            }
            for _ in 0..n {
                let at = r.offset();
                let meta = BlobMeta {
                    id: r.u64()?,
                    size: r.u64()?,
                    values: r.u64()?,
                    value_bytes: r.u64()?,
                };
                if meta.id >= m.next_file_id
                    || m.blobs.last().is_some_and(|b: &BlobMeta| b.id >= meta.id)
                {
                    return Err(Error::corruption(
                        MANIFEST,
                        at,
                        format!("blob file {} out of order or not allocated", meta.id),
                    ));
                }
                m.blobs.push(meta);
            }
        }
        if !r.0.is_empty() {
            return Err(Error::corruption(
                MANIFEST,
                r.offset(),
                "trailing bytes in manifest",
            ));
        }
        check_ranges(&m.tables).map_err(|reason| Error::corruption(MANIFEST, 0, reason))?;
        Ok(m)
    }

    /// Reads the manifest of store `store` in `storage`; `None` if there is none yet.
    pub async fn read<S: Storage>(storage: &S, store: StoreId) -> Result<Option<Manifest>> {
        if !storage.exists(MANIFEST).await? {
            return Ok(None);
        }
        let buf = files::read_all(&storage.open(MANIFEST).await?, MANIFEST).await?;
        Manifest::decode(&buf, store).map(Some)
    }

    /// The manifest's bytes as they are now (`None`: no manifest), undecoded: what a
    /// read-only open compares to tell a writer's progress from damage.
    pub async fn raw<S: Storage>(storage: &S) -> Result<Option<Vec<u8>>> {
        if !storage.exists(MANIFEST).await? {
            return Ok(None);
        }
        match storage.open(MANIFEST).await {
            Ok(file) => files::read_all(&file, MANIFEST).await.map(Some),
            // Replaced between the two calls: absent for this look.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces the manifest of `store` atomically and durably.
    pub async fn write<S: Storage>(&self, storage: &S, store: StoreId) -> Result<()> {
        files::replace(storage, MANIFEST_TMP, MANIFEST, &self.encode(store)?).await
    }
}

/// Reads rely on the tables' key ranges: each table's smallest key is at most its largest,
/// and below level 0 the tables of a level do not overlap (a level is read as one sorted run).
fn check_ranges(tables: &[(usize, TableMeta)]) -> std::result::Result<(), String> {
    use std::cmp::Ordering;
    let before = |a: &(Vec<u8>, u64), b: &(Vec<u8>, u64)| cmp_ikey(&a.0, a.1, &b.0, b.1);
    for (_, t) in tables {
        if before(&t.smallest, &t.largest) == Ordering::Greater {
            return Err(format!("table {} ends before it starts", t.id));
        }
    }
    let mut levels: Vec<(usize, &TableMeta)> = tables
        .iter()
        .filter(|(l, _)| *l > 0)
        .map(|(l, t)| (*l, t))
        .collect();
    levels.sort_by(|(la, a), (lb, b)| la.cmp(lb).then(before(&a.smallest, &b.smallest)));
    for pair in levels.windows(2) {
        if let [(la, a), (lb, b)] = pair
            && la == lb
            && before(&a.largest, &b.smallest) != Ordering::Less
        {
            return Err(format!(
                "tables {} and {} of level {la} overlap",
                a.id, b.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            next_file_id: 9,
            last_flushed_seq: 120,
            last_flushed_time: 1_700_000_000_000,
            wal_floor: 7,
            wal_newest: 8,
            horizon: 100,
            tables: vec![
                (
                    0,
                    TableMeta {
                        id: 5,
                        size: 4096,
                        entries: 10,
                        smallest: (vec![0, 1], 3),
                        largest: (vec![0, 9, 9], 4),
                        min_seq: 3,
                        max_seq: 120,
                    },
                ),
                (
                    2,
                    TableMeta {
                        id: 3,
                        size: 1,
                        entries: 1,
                        smallest: (vec![], 1),
                        largest: (vec![], 1),
                        min_seq: 1,
                        max_seq: 1,
                    },
                ),
            ],
            tombs: Vec::new(),
            blobs: Vec::new(),
        }
    }

    fn with_blobs(tombs: bool) -> Manifest {
        let blob = |id| BlobMeta {
            id,
            size: 70_000,
            values: 1,
            value_bytes: 65_536,
        };
        let base = if tombs { with_tombs() } else { sample() };
        Manifest {
            blobs: vec![blob(4), blob(6)],
            ..base
        }
    }

    fn with_tombs() -> Manifest {
        use std::ops::Bound;
        let tomb = |start, end, seq| RangeTomb {
            slot: 3,
            range: kv_api::KeyRange { start, end },
            version: kv_api::Version::new(seq, 1_700_000_000_000 + seq),
        };
        Manifest {
            tombs: vec![
                tomb(
                    Bound::Included(b"a".to_vec()),
                    Bound::Excluded(b"b".to_vec()),
                    101,
                ),
                tomb(Bound::Unbounded, Bound::Included(b"zz".to_vec()), 102),
                tomb(Bound::Excluded(vec![]), Bound::Unbounded, 120),
            ],
            ..sample()
        }
    }

    const STORE: StoreId = StoreId::from_bytes([5; 16]);

    #[test]
    fn round_trip_and_damage() {
        for m in [sample(), with_tombs(), with_blobs(false), with_blobs(true)] {
            round_trip_and_damage_of(m);
        }
    }

    /// Without tombstones a manifest is format 2 (what builds before range tombstones read);
    /// with them, format 3, which those builds refuse. A tombstone of an unflushed commit is
    /// corruption.
    #[test]
    fn tombstones_make_format_3() {
        let format = |m: &Manifest| {
            let raw = m.encode(STORE).expect("encode");
            let at = header::LEN + frame::HEADER_LEN + 8;
            u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"))
        };
        assert_eq!(format(&sample()), 2);
        assert_eq!(format(&with_tombs()), 3);
        // Blob files: format 4, with or without tombstones; ids listed ascending, allocated.
        assert_eq!(format(&with_blobs(false)), 4);
        assert_eq!(format(&with_blobs(true)), 4);
        for bad in [vec![6, 4], vec![4, 4], vec![4, 9]] {
            let mut m = with_blobs(false);
            for (b, id) in m.blobs.iter_mut().zip(&bad) {
                b.id = *id;
            }
            let raw = m.encode(STORE).expect("encode");
            assert!(matches!(
                Manifest::decode(&raw, STORE),
                Err(Error::Corruption { .. })
            ));
        }
        let mut late = with_tombs();
        late.last_flushed_seq = 110;
        let raw = late.encode(STORE).expect("encode");
        assert!(matches!(
            Manifest::decode(&raw, STORE),
            Err(Error::Corruption { reason, .. }) if reason.contains("not a flushed commit")
        ));
    }

    fn round_trip_and_damage_of(m: Manifest) {
        let raw = m.encode(STORE).expect("encode");
        assert_eq!(Manifest::decode(&raw, STORE).expect("decode"), m);
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x20;
            assert!(
                matches!(Manifest::decode(&bad, STORE), Err(Error::Corruption { .. })),
                "byte {i}"
            );
        }
        for cut in 0..raw.len() {
            assert!(matches!(
                Manifest::decode(&raw[..cut], STORE),
                Err(Error::Corruption { .. })
            ));
        }
    }

    #[test]
    fn a_manifest_of_another_store_is_refused() {
        let raw = sample().encode(STORE).expect("encode");
        let other = StoreId::from_bytes([6; 16]);
        assert!(matches!(
            Manifest::decode(&raw, other),
            Err(Error::Corruption { file, offset: 0, reason }) if file == MANIFEST
                && reason.contains("another store")
        ));
    }

    /// Found by fuzzing (`dir_image`): reads trust the tables' key ranges, so a manifest whose
    /// ranges are impossible (a table ending before it starts, two tables of a level below 0
    /// overlapping) is corruption, not scans out of order.
    #[test]
    fn impossible_key_ranges_are_corruption() {
        let table = |id, level, from: &[u8], to: &[u8]| {
            (
                level,
                TableMeta {
                    id,
                    size: 100,
                    entries: 2,
                    smallest: (from.to_vec(), 9),
                    largest: (to.to_vec(), 3),
                    min_seq: 3,
                    max_seq: 9,
                },
            )
        };
        let with = |tables| {
            let m = Manifest { tables, ..sample() };
            Manifest::decode(&m.encode(STORE).expect("encode"), STORE)
        };
        assert!(with(vec![table(3, 1, b"a", b"c"), table(4, 1, b"d", b"f")]).is_ok());
        // Level 0 tables may overlap.
        assert!(with(vec![table(3, 0, b"a", b"e"), table(4, 0, b"b", b"f")]).is_ok());
        for bad in [
            vec![table(3, 1, b"c", b"a")],
            vec![table(3, 2, b"a", b"e"), table(4, 2, b"d", b"f")],
            vec![table(3, 1, b"a", b"d"), table(4, 1, b"d", b"f")],
        ] {
            assert!(matches!(with(bad), Err(Error::Corruption { .. })));
        }
    }
}
