//! The page cache of segment files: 4 KiB pages keyed by `(segment id, page index)` in the
//! shared [`kv_engine_kit::cache::Cache`], bounded by [`kv_api::Options::cache_size`].
//!
//! Pages rather than whole records: a page of small records costs one entry's bookkeeping for
//! about thirty records, so a budget holds more of the data (about 45% more records of 138
//! bytes than a cache of records; more hits for reads spread over the store), and records
//! written next to each other (a transaction, a merged segment in key order) are read
//! together. A record spanning pages is assembled from them. Every read still checks the
//! record's CRC on the bytes it got, cached or not.
//!
//! Staleness: segments are append-only and file ids are never reused, so bytes below a
//! segment's readable length never change. Only complete pages are cached; the last, partial
//! page of a segment (where the active segment grows) is read from the file each time. Pages
//! of segments deleted by merge are dropped with the files.

use kv_engine_kit::cache::Cache;

/// Page size, in bytes.
const PAGE_BYTES: usize = 4096;
/// Page size, as an offset in a segment.
pub(crate) const PAGE: u64 = PAGE_BYTES as u64;
/// What a cached page costs: its bytes plus the cache's bookkeeping and the allocations.
const PAGE_CHARGE: usize = PAGE_BYTES + 128;
/// Records longer than this are neither looked up nor cached: one read of a long record costs
/// about what assembling it from its pages does, and caching it would evict the pages of
/// dozens of small records.
pub(crate) const MAX_CACHED_RECORD: usize = 4 * PAGE_BYTES;
/// Once the cache is full, one missed page in this many is read whole and cached; the other
/// misses read just their record (see [`kv_engine_kit::cache::Cache::admit`]).
const ADMIT_ONE_IN: u32 = 8;

type Page = Box<[u8]>;

/// The page cache; see the module docs.
pub(crate) struct PageCache {
    cache: Cache<(u32, u64), Page>,
}

impl PageCache {
    /// A cache of up to `capacity` bytes; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        PageCache {
            cache: Cache::new(capacity),
        }
    }

    /// False if the cache holds nothing ever (reads then fetch only what they need).
    pub fn enabled(&self) -> bool {
        self.cache.capacity() >= PAGE_CHARGE
    }

    /// Calls `f` with bytes `offset .. offset + len` of segment `file` if every page they lie
    /// on is cached. Within one page, `f` runs on the cached bytes, under the cache shard's
    /// lock (no copy, no reference count: a hit touches only the bytes `f` reads); bytes
    /// spanning pages are copied together first. `None`, without a lookup, past
    /// [`MAX_CACHED_RECORD`].
    pub fn read<R>(
        &self,
        file: u32,
        offset: u64,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        if !self.enabled() || len == 0 || len > MAX_CACHED_RECORD {
            return None;
        }
        let end = offset.checked_add(len as u64)?;
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`len > 0`: `end` is past `offset`"
        )]
        let last = (end - 1) / PAGE;
        let first = offset / PAGE;
        let rel = (offset % PAGE) as usize;
        if first == last {
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`rel < PAGE_BYTES`, `len <= MAX_CACHED_RECORD`"
            )]
            let within = rel..rel + len;
            return self
                .cache
                .get_with(&(file, first), |page| page.get(within).map(f))
                .flatten();
        }
        let mut buf = Vec::with_capacity(len);
        for p in first..=last {
            let from = if p == first { rel } else { 0 };
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`buf` holds the bytes of the pages before `p`, fewer than `len`; \
                          `from < PAGE_BYTES`, `len <= MAX_CACHED_RECORD`"
            )]
            let to = PAGE_BYTES.min(from + (len - buf.len()));
            self.cache
                .get_with(&(file, p), |page| {
                    page.get(from..to).map(|b| buf.extend_from_slice(b))
                })
                .flatten()?;
        }
        Some(f(&buf))
    }

    /// [`PageCache::read`] for many ranges `(file, offset, len)` (a scan's records): calls
    /// `f(i, bytes)` for every range `i` found whole in the cache, in no particular order. The
    /// lookups are batched (see [`kv_engine_kit::cache::Cache::get_many_with`]): the records of a
    /// scan lie on pages all over the store, and fetching them one after the other would wait
    /// for one memory read at a time.
    pub fn read_many(&self, ranges: &[(u32, u64, usize)], mut f: impl FnMut(usize, &[u8])) {
        if !self.enabled() {
            return;
        }
        let mut keys = Vec::with_capacity(ranges.len());
        let mut within = Vec::with_capacity(ranges.len());
        for (i, &(file, offset, len)) in ranges.iter().enumerate() {
            let rel = (offset % PAGE) as usize;
            match rel.checked_add(len) {
                Some(end) if len > 0 && end <= PAGE_BYTES => {
                    keys.push((file, offset / PAGE));
                    within.push((i, rel..end));
                }
                // Spans pages: looked up on its own.
                _ => {
                    self.read(file, offset, len, |b| f(i, b));
                }
            }
        }
        let touch = |k: usize, page: &Page| {
            if let Some((_, r)) = within.get(k) {
                // One byte of each cache line the record covers, and its last.
                for at in r.clone().step_by(64).chain(r.clone().last()) {
                    std::hint::black_box(page.get(at).copied());
                }
            }
        };
        self.cache.get_many_with(&keys, touch, |k, page| {
            if let (Some(page), Some((i, r))) = (page, within.get(k))
                && let Some(bytes) = page.get(r.clone())
            {
                f(*i, bytes);
            }
        });
    }

    /// Whether the page holding `offset` of segment `file`, just missed by a record of
    /// `record_len` bytes, should be read whole and cached: never past [`MAX_CACHED_RECORD`];
    /// always while the cache has room; then one miss in [`ADMIT_ONE_IN`]. For data larger
    /// than the cache, read at random, the hit rate is what fits either way, and a refused miss
    /// costs a read of its record only, not a page, an insert and an eviction.
    pub fn admit(&self, file: u32, offset: u64, record_len: usize) -> bool {
        self.enabled()
            && record_len <= MAX_CACHED_RECORD
            && self
                .cache
                .admit(&(file, offset / PAGE), PAGE_CHARGE, ADMIT_ONE_IN)
    }

    /// Keeps the complete pages of `span`, read from segment `file` at the page boundary
    /// `start`.
    pub fn keep(&self, file: u32, start: u64, span: Vec<u8>) {
        if !self.enabled() || !start.is_multiple_of(PAGE) {
            return;
        }
        if span.len() as u64 == PAGE {
            // The common case, one page: the buffer itself goes into the cache (no copy when
            // the read allocated exactly a page).
            self.cache
                .insert((file, start / PAGE), span.into_boxed_slice(), PAGE_CHARGE);
            return;
        }
        for (index, chunk) in (start / PAGE..).zip(span.chunks_exact(PAGE_BYTES)) {
            self.cache
                .insert((file, index), Box::from(chunk), PAGE_CHARGE);
        }
    }

    /// Drops the pages of segment `file` (`len` bytes long), deleted by a merge.
    pub fn forget(&self, file: u32, len: u64) {
        if self.enabled() {
            for p in 0..len.div_ceil(PAGE) {
                self.cache.remove(&(file, p));
            }
        }
    }

    /// (hits, misses) of page lookups.
    pub fn counters(&self) -> (u64, u64) {
        self.cache.counters()
    }
}

/// The page-aligned span to read for bytes `offset .. end` of a segment with `readable` bytes:
/// from the page holding `offset` to the end of the page holding `end - 1`, cut at `readable`.
pub(crate) fn page_span(offset: u64, end: u64, readable: u64) -> (u64, u64) {
    #[expect(clippy::arithmetic_side_effects, reason = "`offset % PAGE <= offset`")]
    let start = offset - offset % PAGE;
    let stop = end.div_ceil(PAGE).saturating_mul(PAGE).min(readable);
    (start, stop.max(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_in_and_out() {
        let cache = PageCache::new(1 << 20);
        let data: Vec<u8> = (0..3 * PAGE + 100).map(|i| i as u8).collect();
        // A read of pages 0..=2 plus a partial tail: only whole pages are kept.
        let (start, stop) = page_span(10, 3 * PAGE + 50, data.len() as u64);
        assert_eq!((start, stop), (0, data.len() as u64));
        cache.keep(7, start, data.clone());
        let n = 2 * PAGE as usize + 5;
        let whole = cache.read(7, 100, n, <[u8]>::to_vec);
        assert_eq!(whole.as_deref(), Some(&data[100..100 + n]));
        let one = cache.read(7, PAGE + 3, 4, <[u8]>::to_vec);
        assert_eq!(
            one.as_deref(),
            Some(&data[PAGE as usize + 3..PAGE as usize + 7])
        );
        assert!(cache.read(7, 3 * PAGE - 5, 10, |_| ()).is_none()); // tail page not cached
        assert!(cache.read(8, 0, 10, |_| ()).is_none()); // another segment
        cache.keep(8, 4 * PAGE, vec![9; PAGE as usize]);
        assert_eq!(
            cache.read(8, 4 * PAGE + 1, 3, <[u8]>::to_vec),
            Some(vec![9; 3])
        );
        let mut got = Vec::new();
        let ranges = [(7, 5, 3), (9, 0, 1), (7, PAGE - 1, 2), (8, 4 * PAGE, 2)];
        cache.read_many(&ranges, |i, b| got.push((i, b.to_vec())));
        got.sort();
        let at = |o: usize, n: usize| data[o..o + n].to_vec();
        let page = PAGE as usize;
        assert_eq!(got, [(0, at(5, 3)), (2, at(page - 1, 2)), (3, vec![9; 2])]);
        // A length no page holds (on 32-bit targets, a record's u32 length and its place in
        // the page may not fit a usize) is looked up on its own, and missed.
        let mut none = Vec::new();
        cache.read_many(&[(8, 4 * PAGE + 1, usize::MAX)], |i, _| none.push(i));
        assert!(none.is_empty());
        cache.forget(7, 3 * PAGE + 100);
        assert!(cache.read(7, 0, 1, |_| ()).is_none());
        assert!(cache.read(8, 4 * PAGE, 1, |_| ()).is_some());
        // Disabled: nothing kept, nothing found.
        // Long records are left to the file.
        let long = MAX_CACHED_RECORD + 1;
        assert!(!cache.admit(7, 0, long) && cache.admit(7, 0, 10));
        assert!(cache.read(7, 0, long, |_| ()).is_none());
        let off = PageCache::new(0);
        off.keep(1, 0, vec![0; PAGE as usize]);
        assert!(off.read(1, 0, 1, |_| ()).is_none());
        // The span never ends before the bytes asked for (a location past the end is left
        // for the read to report).
        assert_eq!(page_span(PAGE + 1, PAGE + 9, PAGE + 4), (PAGE, PAGE + 9));
    }
}
