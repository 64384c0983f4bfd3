//! Reading records back by their keydir locations: through the page cache (see
//! [`crate::pages`]), scans reading the records they need in file order with nearby ones
//! joined into one read, and the retry of a read that lost its file to a merge.

use kv_api::{Error, Result, Slot, Storage, StorageFile, ValueVisitor};

use crate::engine::Bitcask;
use crate::key::Key;
use crate::keydir::Loc;
use crate::merged;
use crate::pages::{PageCache, page_span};
use crate::segment::segment_name;

/// Scans join reads of records at most this far apart (a read costs about what copying this
/// much does)...
const READ_GAP: u64 = 4 << 10;
/// ...into reads of at most this many bytes.
const READ_SPAN: u64 = 256 << 10;

impl<S: Storage> Bitcask<S> {
    /// The handle of segment `id` and the bytes readable in it.
    fn segment(&self, id: u32) -> Option<(S::File, u64)> {
        self.handles
            .read()
            .get(&id)
            .map(|s| (s.file.clone(), s.readable()))
    }

    /// Reads `offset .. end` of segment `id` (`end` past `offset`; records of at most
    /// `record_len` bytes): the pages around it when they lie within what is readable and the
    /// cache admits them (see [`Span::keep`]); otherwise exactly those bytes (a location past
    /// the end then fails as a read past the end).
    async fn read_span(&self, id: u32, offset: u64, end: u64, record_len: usize) -> Result<Span> {
        let (file, readable) = self
            .segment(id)
            .ok_or_else(|| Error::corruption(segment_name(id), offset, "segment is not open"))?;
        if end > readable || !self.pages.admit(id, offset, record_len) {
            let buf = file.read_at(offset, span_len(id, offset, end)?).await?;
            return Ok(Span {
                id,
                start: offset,
                buf,
                pages: false,
            });
        }
        let (start, stop) = page_span(offset, end, readable);
        let buf = file.read_at(start, span_len(id, start, stop)?).await?;
        Ok(Span {
            id,
            start,
            buf,
            pages: true,
        })
    }

    /// Reads the record at `loc`, checks it belongs to `key` of `slot`, and hands its value to
    /// `f` where it lies (in a cached page, under the cache shard's lock) instead of copying
    /// it out. `f` is called once, on success.
    pub(crate) async fn read_frame_with(
        &self,
        slot: Slot,
        key: &[u8],
        loc: &Loc,
        f: &mut ValueVisitor<'_>,
    ) -> Result<()> {
        let len = loc.len as usize;
        if let Some(r) = self.pages.read(loc.file(), loc.offset, len, |frame| {
            decode_record(frame, slot, key, loc).map(&mut *f)
        }) {
            return r;
        }
        let span = self
            .read_span(loc.file(), loc.offset, loc_end(loc)?, len)
            .await?;
        f(decode_record(span.frame(loc)?, slot, key, loc)?);
        span.keep(&self.pages);
        Ok(())
    }

    /// Reads the value of version `loc` of `key` in `slot`, found at keydir generation
    /// `generation`. If a merge moved the version meanwhile (and deleted its old file), looks
    /// it up again.
    pub(crate) async fn read_value(
        &self,
        slot: Slot,
        key: &[u8],
        loc: Loc,
        generation: u64,
    ) -> Result<Option<Vec<u8>>> {
        let mut value = None;
        let mut copy = |v: Option<&[u8]>| value = v.map(<[u8]>::to_vec);
        self.read_value_with(slot, key, loc, generation, &mut copy)
            .await?;
        Ok(value)
    }

    /// [`Bitcask::read_value`], handing the value to `f` (see [`Bitcask::read_frame_with`]).
    pub(crate) async fn read_value_with(
        &self,
        slot: Slot,
        key: &[u8],
        mut loc: Loc,
        mut generation: u64,
        f: &mut ValueVisitor<'_>,
    ) -> Result<()> {
        loop {
            let err = match self.read_frame_with(slot, key, &loc, f).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            self.pipeline.check_open()?;
            let full = Key::new(slot, key);
            let (again, now) = self.lookup(|kd| kd.exact(&full, loc.seq));
            if now == generation {
                return Err(err);
            }
            match again {
                Some(l) => {
                    loc = l;
                    generation = now;
                }
                None => {
                    return Err(Error::VersionNotFound {
                        seq: loc.seq,
                        reason: "dropped by merge",
                    });
                }
            }
        }
    }

    /// The values of live versions `found` (keys of `slot`, found at keydir generation
    /// `generation`), in the same order. Cached records first; the others are read in file
    /// order, nearby ones joined into one read.
    pub(crate) async fn read_live_values<K: AsRef<[u8]>>(
        &self,
        slot: Slot,
        found: &[(K, Loc)],
        generation: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let live = |frame: &[u8], key: &[u8], loc: &Loc| -> Result<Vec<u8>> {
            decode_record(frame, slot, key, loc)?
                .map(<[u8]>::to_vec)
                .ok_or_else(|| expected_value(loc))
        };
        let ranges: Vec<(u32, u64, usize)> = found
            .iter()
            .map(|(_, l)| (l.file(), l.offset, l.len as usize))
            .collect();
        let mut cached: Vec<Option<Result<Vec<u8>>>> = (0..found.len()).map(|_| None).collect();
        self.pages.read_many(&ranges, |i, frame| {
            if let (Some((key, loc)), Some(v)) = (found.get(i), cached.get_mut(i)) {
                *v = Some(live(frame, key.as_ref(), loc));
            }
        });
        let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(found.len());
        let mut missed = Vec::new();
        for (i, v) in cached.into_iter().enumerate() {
            match v {
                Some(value) => values.push(Some(value?)),
                None => {
                    values.push(None);
                    missed.push(i);
                }
            }
        }
        missed.sort_unstable_by_key(|&i| found.get(i).map(|(_, l)| (l.file(), l.offset)));
        let mut rest = missed.as_slice();
        while let Some((_, l)) = rest.first().and_then(|&i| found.get(i)) {
            let (file, start) = (l.file(), l.offset);
            let sorted = rest.iter().map_while(|&j| found.get(j).map(|(_, l)| l));
            let (n, end) = joined_read(sorted, READ_GAP, READ_SPAN)?;
            let (group, after) = rest.split_at(n);
            rest = after;
            let longest = group
                .iter()
                .filter_map(|&j| found.get(j))
                .map(|(_, l)| l.len as usize)
                .max()
                .unwrap_or(0);
            match self.read_span(file, start, end, longest).await {
                Ok(span) => {
                    for &j in group {
                        let (Some((key, loc)), Some(slot_value)) =
                            (found.get(j), values.get_mut(j))
                        else {
                            continue;
                        };
                        *slot_value = Some(live(span.frame(loc)?, key.as_ref(), loc)?);
                    }
                    span.keep(&self.pages);
                }
                Err(_) => {
                    // The file may have gone with a merge: each record on its own, looked up
                    // again if so.
                    for &j in group {
                        let (Some((key, loc)), Some(slot_value)) =
                            (found.get(j), values.get_mut(j))
                        else {
                            continue;
                        };
                        let value = self
                            .read_value(slot, key.as_ref(), *loc, generation)
                            .await?;
                        *slot_value = Some(value.ok_or_else(|| expected_value(loc))?);
                    }
                }
            }
        }
        values
            .into_iter()
            .zip(found)
            .map(|(v, (_, loc))| v.ok_or_else(|| expected_value(loc)))
            .collect()
    }
}

/// Bytes read from a segment.
struct Span {
    id: u32,
    /// Offset of `buf` in the segment.
    start: u64,
    buf: Vec<u8>,
    /// Page-aligned, within the readable length: its whole pages may be cached.
    pages: bool,
}

impl Span {
    /// The frame of `loc`, which lies in this span.
    fn frame(&self, loc: &Loc) -> Result<&[u8]> {
        frame_in(&self.buf, self.start, loc)
    }

    /// Hands the whole pages to the cache (after the reader decoded what it needed).
    fn keep(self, pages: &PageCache) {
        if self.pages {
            pages.keep(self.id, self.start, self.buf);
        }
    }
}

fn out_of_range(file: u32, offset: u64) -> Error {
    Error::corruption(segment_name(file), offset, "record out of range")
}

/// The frame of `loc` in `buf`, bytes read at offset `start` of its segment.
pub(crate) fn frame_in<'a>(buf: &'a [u8], start: u64, loc: &Loc) -> Result<&'a [u8]> {
    let rel = loc.offset.checked_sub(start);
    rel.and_then(|r| usize::try_from(r).ok())
        .and_then(|r| buf.get(r..r.checked_add(loc.len as usize)?))
        .ok_or_else(|| out_of_range(loc.file(), loc.offset))
}

/// How many of the records at `sorted` (sorted by file and offset) one read serves together
/// with the first, and where that read ends: records of the first one's file, each at most
/// `gap` bytes after the read so far, the whole read within `span` bytes of its start. `(0, 0)`
/// for no records.
pub(crate) fn joined_read<'a>(
    mut sorted: impl Iterator<Item = &'a Loc>,
    gap: u64,
    span: u64,
) -> Result<(usize, u64)> {
    let Some(first) = sorted.next() else {
        return Ok((0, 0));
    };
    let (file, start) = (first.file(), first.offset);
    let mut end = loc_end(first)?;
    let mut n: usize = 1;
    for l in sorted {
        // Sorted by place: `l` lies at or after `start` in the same file.
        let Ok(l_end) = loc_end(l) else {
            break;
        };
        if l.file() != file
            || l.offset > end.saturating_add(gap)
            || l_end > start.saturating_add(span)
        {
            break;
        }
        end = end.max(l_end);
        n = n.saturating_add(1);
    }
    Ok((n, end))
}

/// Where the record of `loc` ends in its file.
pub(crate) fn loc_end(loc: &Loc) -> Result<u64> {
    loc.offset
        .checked_add(u64::from(loc.len))
        .ok_or_else(|| out_of_range(loc.file(), loc.offset))
}

/// The length of bytes `offset .. end` of segment `id`, as a `usize` (on 32-bit targets, a
/// long record's may not be one).
pub(crate) fn span_len(id: u32, offset: u64, end: u64) -> Result<usize> {
    end.checked_sub(offset)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| out_of_range(id, offset))
}

/// A live version whose record is not a value: the keydir and the file disagree.
fn expected_value(loc: &Loc) -> Error {
    Error::corruption(segment_name(loc.file()), loc.offset, "expected a value")
}

/// Decodes the whole frame `buf` of version `loc` of `key` in `slot` (CRC checked) and returns
/// its value (`None` for a removal). A frame that is damaged, or holds another key, another
/// kind of write or another version (a file copied over another passes its CRC), is
/// [`Error::Corruption`] at that place.
pub(crate) fn decode_record<'a>(
    buf: &'a [u8],
    slot: Slot,
    key: &[u8],
    loc: &Loc,
) -> Result<Option<&'a [u8]>> {
    let here = |reason: String| Error::corruption(segment_name(loc.file()), loc.offset, reason);
    let (seq, s, k, value) =
        merged::decode_write_frame(buf, "", loc.offset).map_err(|e| match e {
            Error::Corruption { reason, .. } => here(reason),
            other => other,
        })?;
    if s != slot || k != key {
        return Err(here("record of another key".into()));
    }
    if value.is_none() != loc.is_removal() {
        return Err(here("record of another kind".into()));
    }
    if seq != loc.seq {
        return Err(here(format!(
            "record of version {seq} where the index has version {}",
            loc.seq
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use kv_api::{Engine, KeyRange, Options, WriteBatch};
    use kv_backends::MemoryStorage;

    use super::*;

    fn value(k: u32, round: u32) -> Vec<u8> {
        let len = 50 + (k * 7 + round) as usize % 150;
        (0..len).map(|i| (i as u32 ^ k ^ round) as u8).collect()
    }

    async fn check_all(e: &Bitcask<MemoryStorage>, n: u32, round_of: impl Fn(u32) -> u32) {
        let at = e.snapshot().expect("snapshot").seq();
        for k in 0..n {
            let got = e.get(0, &k.to_be_bytes(), at).await.expect("get");
            assert_eq!(got, Some(value(k, round_of(k))), "key {k}");
        }
        let rows = e
            .scan(0, &KeyRange::all(), at, false, n as usize)
            .await
            .expect("scan");
        assert_eq!(rows.len(), n as usize);
        for (k, row) in (0..n).zip(&rows) {
            assert_eq!(row.key, k.to_be_bytes());
            assert_eq!(row.value, value(k, round_of(k)), "scanned key {k}");
        }
        let from = KeyRange {
            start: Bound::Included(7u32.to_be_bytes().to_vec()),
            end: Bound::Unbounded,
        };
        let back = e.scan(0, &from, at, true, 5).await.expect("reverse scan");
        assert_eq!(back.len(), 5);
        assert_eq!(back[0].key, (n - 1).to_be_bytes());
    }

    /// Reads between appends (the active segment's pages are read while it grows), over
    /// rolled segments, after overwrites and after a merge deleted the old segments, with a
    /// cache that holds everything and one that holds three pages.
    #[tokio::test]
    async fn cached_reads_follow_appends_rolls_and_merges() -> Result<()> {
        for cache in [1 << 20, 3 * 4300, 0] {
            let options = Options::default().segment_size(64 << 10).cache_size(cache);
            let e = Bitcask::open(MemoryStorage::new(), options, ()).await?;
            let n: u32 = 1500;
            for k in 0..n {
                let batch = WriteBatch::new(e.snapshot()?).write(
                    0,
                    k.to_be_bytes().to_vec(),
                    Some(value(k, 0)),
                );
                e.commit(batch).await?;
                // Read a few written just before, often from the active segment's last page.
                let at = e.snapshot()?.seq();
                for j in k.saturating_sub(3)..=k {
                    assert_eq!(e.get(0, &j.to_be_bytes(), at).await?, Some(value(j, 0)));
                }
            }
            check_all(&e, n, |_| 0).await;
            for k in (0..n).step_by(2) {
                let batch = WriteBatch::new(e.snapshot()?).write(
                    0,
                    k.to_be_bytes().to_vec(),
                    Some(value(k, 1)),
                );
                e.commit(batch).await?;
            }
            let round = |k: u32| u32::from(k.is_multiple_of(2));
            check_all(&e, n, round).await;
            e.merge().await?;
            check_all(&e, n, round).await;
            let stats = e.stats().await?;
            if cache > 0 {
                assert!(stats.cache_hits > 0 && stats.cache_misses > 0, "{stats:?}");
            } else {
                assert_eq!(stats.cache_hits, 0);
            }
        }
        Ok(())
    }

    /// Point reads through the newest-version table: versions newer than the read, removals,
    /// re-inserts, merges, reopens, and a table slot pointing at another key's record.
    /// A record found where the index points must be the version the index names: a file
    /// copied over another passes every CRC, but not this.
    #[test]
    fn a_record_of_another_version_is_corruption() {
        let mut buf = Vec::new();
        let at = kv_engine_kit::txlog::encode_write(&mut buf, 9, 3, b"key", Some(b"value"));
        let frame = &buf[at.offset as usize..];
        let loc = |seq| Loc::new(seq, 1, 7, at.offset, at.len, false);
        assert_eq!(
            decode_record(frame, 3, b"key", &loc(9)).expect("right version"),
            Some(&b"value"[..])
        );
        let err = decode_record(frame, 3, b"key", &loc(8)).err();
        assert!(
            matches!(&err, Some(Error::Corruption { reason, .. }) if reason.contains("version 9")),
            "{err:?}"
        );
    }

    /// A place that does not lie in the bytes read (or past the end of any file) is
    /// corruption, never an overflow.
    #[test]
    fn places_out_of_range_are_corruption() {
        let span = Span {
            id: 7,
            start: 4096,
            buf: vec![0; 100],
            pages: false,
        };
        let at = |offset, len| Loc::new(1, 1, 7, offset, len, false);
        assert_eq!(span.frame(&at(4100, 10)).expect("inside").len(), 10);
        for loc in [at(4000, 10), at(4190, 10), at(u64::MAX - 2, 10_000)] {
            assert!(
                matches!(span.frame(&loc), Err(Error::Corruption { .. })),
                "{loc:?}"
            );
        }
        assert!(loc_end(&at(u64::MAX - 2, 10)).is_err());
        assert_eq!(loc_end(&at(43, 10)).expect("end"), 53);
        assert!(span_len(7, 50, 40).is_err());
        assert_eq!(span_len(7, 40, 50).expect("len"), 10);
    }

    #[tokio::test]
    async fn point_reads_never_trust_a_wrong_guess() -> Result<()> {
        let storage = MemoryStorage::new();
        let options = Options::default().segment_size(16 << 10);
        let e = Bitcask::open(storage.clone(), options.clone(), ()).await?;
        let r = &e;
        let put = |k: u32, v: Option<Vec<u8>>| async move {
            let batch = WriteBatch::new(r.snapshot()?).write(0, k.to_be_bytes().to_vec(), v);
            r.commit(batch).await
        };
        let get = |k: u32, at: u64| async move { r.get(0, &k.to_be_bytes(), at).await };
        let first = put(1, Some(value(1, 0))).await?;
        put(2, Some(value(2, 0))).await?;
        let second = put(1, Some(value(1, 1))).await?;
        assert_eq!(
            get(1, first.seq()).await?,
            Some(value(1, 0)),
            "older snapshot"
        );
        assert_eq!(get(1, second.seq()).await?, Some(value(1, 1)));
        let removed = put(1, None).await?;
        assert_eq!(get(1, removed.seq()).await?, None);
        assert_eq!(get(1, second.seq()).await?, Some(value(1, 1)));
        // The slot of key 2 pointing at key 1's record: the record's key tells.
        {
            let mut kd = e.keydir.write();
            let loc = kd.get(&Key::new(0, &1u32.to_be_bytes()), second.seq());
            let loc = loc.expect("key 1 at the second commit");
            kd.set_newest_for_test(&Key::new(0, &2u32.to_be_bytes()), &loc);
        }
        assert_eq!(get(2, u64::MAX).await?, Some(value(2, 0)));
        // A batch holding the wrongly guessed key is located again through the map.
        let keys = [2u32, 1, 2, 9].map(u32::to_be_bytes);
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let many = e.get_many(0, &refs, second.seq()).await?;
        assert_eq!(
            many,
            [
                Some(value(2, 0)),
                Some(value(1, 1)),
                Some(value(2, 0)),
                None
            ]
        );
        put(1, Some(value(1, 2))).await?;
        for k in 3..400 {
            put(k, Some(value(k, 0))).await?;
        }
        e.merge().await?;
        let at = e.snapshot()?.seq();
        assert_eq!(get(1, at).await?, Some(value(1, 2)));
        for k in 2..400 {
            assert_eq!(get(k, at).await?, Some(value(k, 0)), "key {k} after merge");
        }
        e.close().await?;
        let e = Bitcask::open(storage, options, ()).await?;
        let at = e.snapshot()?.seq();
        assert_eq!(e.get(0, &1u32.to_be_bytes(), at).await?, Some(value(1, 2)));
        for k in 2..400u32 {
            let got = e.get(0, &k.to_be_bytes(), at).await?;
            assert_eq!(got, Some(value(k, 0)), "key {k} after reopen");
        }
        Ok(())
    }
}
