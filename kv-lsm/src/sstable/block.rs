//! Blocks: runs of sorted internal entries with prefix-compressed keys and a CRC.
//!
//! Data blocks hold the entries of a table; the index block uses the same format (one entry per
//! data block: its last internal key, and the block's location as the value).
//!
//! ```text
//! entry*  restart (u32 LE)*  restart_count (u32 LE)  crc32 (u32 LE)
//! entry = shared varint | unshared varint | kind u8 | seq varint | time varint
//!         | [value_len varint, if kind = value] | key suffix (unshared bytes) | value
//! ```
//!
//! Every `restart_interval`-th entry is a *restart point*: it stores its whole key (`shared` =
//! 0) and absolute `seq`/`time`. Other entries share a key prefix with the entry before and
//! store `seq`/`time` as zigzag deltas from it, which keeps neighbouring versions small. The
//! restart offsets allow a binary search without decoding: point lookups search the cached raw
//! block in place (restart points, then at most one interval of entries); iterators decode one
//! interval at a time into reused buffers ([`Run`]), so a short scan decodes only what it
//! reads. The CRC covers everything before it.

use std::cmp::Ordering;

use std::sync::Arc;

use kv_api::{Error, Result};
use kv_engine_kit::bytes::u32_at;

#[cfg(test)]
use crate::key::Entry;
use crate::key::{EntryRef, cmp_ikey};

const KIND_REMOVAL: u8 = 0;
const KIND_VALUE: u8 = 1;
/// Trailer after the restarts: count + CRC.
const TRAILER: usize = 8;

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint at `*at`, advancing it. `None` if truncated or overlong.
#[inline(always)]
pub(crate) fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    // Most fields fit in one byte: decide that case first.
    let b = *buf.get(*at)?;
    *at += 1;
    if b < 0x80 {
        return Some(u64::from(b));
    }
    let mut v = u64::from(b & 0x7f);
    let mut shift = 7;
    while shift < 64 {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
    }
    None
}

fn zigzag(delta: i64) -> u64 {
    ((delta << 1) ^ (delta >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Builds one block.
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    last_seq: u64,
    last_time: u64,
    count: usize,
}

impl BlockBuilder {
    /// A builder with a restart point every `restart_interval` entries (at least 1).
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            last_seq: 0,
            last_time: 0,
            count: 0,
        }
    }

    /// True if no entry was added since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the block if finished now.
    pub fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + TRAILER
    }

    /// Adds an entry; entries must come in internal key order.
    pub fn add(&mut self, ukey: &[u8], seq: u64, time_ms: u64, value: Option<&[u8]>) {
        debug_assert!(
            self.count == 0 || cmp_ikey(&self.last_key, self.last_seq, ukey, seq) == Ordering::Less,
            "block entries out of order"
        );
        let restart = self.since_restart == 0;
        let shared = if restart {
            self.restarts.push(self.buf.len() as u32);
            0
        } else {
            self.last_key
                .iter()
                .zip(ukey)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (ukey.len() - shared) as u64);
        self.buf.push(if value.is_some() {
            KIND_VALUE
        } else {
            KIND_REMOVAL
        });
        if restart {
            put_varint(&mut self.buf, seq);
            put_varint(&mut self.buf, time_ms);
        } else {
            put_varint(
                &mut self.buf,
                zigzag(seq.wrapping_sub(self.last_seq) as i64),
            );
            put_varint(
                &mut self.buf,
                zigzag(time_ms.wrapping_sub(self.last_time) as i64),
            );
        }
        if let Some(v) = value {
            put_varint(&mut self.buf, v.len() as u64);
        }
        self.buf.extend_from_slice(&ukey[shared..]);
        if let Some(v) = value {
            self.buf.extend_from_slice(v);
        }
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(&ukey[shared..]);
        self.last_seq = seq;
        self.last_time = time_ms;
        self.count += 1;
        self.since_restart = (self.since_restart + 1) % self.restart_interval;
    }

    /// Returns the encoded block and resets the builder.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.estimated_size());
        self.finish_into(&mut out);
        out
    }

    /// Appends the encoded block to `out` and resets the builder (keeping its buffers, so a
    /// table writer reuses them block after block).
    pub fn finish_into(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(out.get(start..).unwrap_or_default());
        out.extend_from_slice(&crc.to_le_bytes());
        self.buf.clear();
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.count = 0;
    }
}

/// The fixed fields of one entry, parsed without touching its key or value bytes.
struct Header {
    shared: usize,
    unshared: usize,
    /// `seq` and `time` as stored: absolute at restart points, zigzag deltas elsewhere.
    seq: u64,
    time: u64,
    value_len: Option<usize>,
    /// Offset of the key suffix; the value follows it.
    key_at: usize,
}

impl Header {
    fn parse(data: &[u8], mut at: usize) -> Option<Header> {
        let shared = get_varint(data, &mut at)? as usize;
        let unshared = get_varint(data, &mut at)? as usize;
        let kind = *data.get(at)?;
        at += 1;
        let seq = get_varint(data, &mut at)?;
        let time = get_varint(data, &mut at)?;
        let value_len = match kind {
            KIND_VALUE => Some(get_varint(data, &mut at)? as usize),
            KIND_REMOVAL => None,
            _ => return None,
        };
        // Key and value must lie inside the entries region.
        let end = at
            .checked_add(unshared)?
            .checked_add(value_len.unwrap_or(0))?;
        (end <= data.len()).then_some(Header {
            shared,
            unshared,
            seq,
            time,
            value_len,
            key_at: at,
        })
    }

    fn value_at(&self) -> usize {
        self.key_at + self.unshared
    }

    fn end(&self) -> usize {
        self.value_at() + self.value_len.unwrap_or(0)
    }
}

/// Decodes entries one after another from a restart point, undoing prefix compression and the
/// delta encoding of `seq`/`time` (point lookups).
struct Walker<'a> {
    block: &'a Block,
    at: usize,
    next_restart: usize,
    key: Vec<u8>,
    seq: u64,
    time: u64,
}

impl<'a> Walker<'a> {
    fn new(block: &'a Block, restart: usize) -> Self {
        let at = block.restart(restart).unwrap_or(block.data_end);
        Walker {
            block,
            at,
            next_restart: restart,
            key: Vec::with_capacity(64),
            seq: 0,
            time: 0,
        }
    }

    /// Decodes the next entry, with the key in `self.key`.
    fn next(&mut self, file: &str) -> Result<Option<Header>> {
        let data = self.block.data();
        let start = self.at;
        if start >= data.len() {
            return Ok(None);
        }
        let bad = |why: &str| Error::corruption(file, self.block.offset + start as u64, why);
        let h = Header::parse(data, start).ok_or_else(|| bad("malformed entry"))?;
        if self.block.restart(self.next_restart) == Some(start) {
            if h.shared != 0 {
                return Err(bad("restart entry shares a key prefix"));
            }
            self.next_restart += 1;
            (self.seq, self.time) = (h.seq, h.time);
        } else {
            if start == 0 {
                return Err(bad("block does not start at a restart point"));
            }
            self.seq = self.seq.wrapping_add(unzigzag(h.seq) as u64);
            self.time = self.time.wrapping_add(unzigzag(h.time) as u64);
        }
        if h.shared > self.key.len() {
            return Err(bad("shared prefix longer than the previous key"));
        }
        self.key.truncate(h.shared);
        self.key
            .extend_from_slice(data.get(h.key_at..h.value_at()).unwrap_or_default());
        self.at = h.end();
        Ok(Some(h))
    }
}

/// A block as read from a table: CRC and restart array checked. The cache holds these; point
/// lookups search them in place ([`Block::find_with`]), iterators decode one restart interval
/// at a time ([`Block::decode_run`]), the index is decoded whole ([`Block::decode`]).
#[derive(Debug)]
pub(crate) struct Block {
    raw: Vec<u8>,
    /// End of the entries; the restart array follows.
    data_end: usize,
    restart_count: usize,
    /// File offset of the block, for error messages.
    offset: u64,
}

impl Block {
    /// Checks the CRC and the restart array of a block read from `file` at `offset`. Damage
    /// is [`Error::Corruption`] naming the byte where it was found.
    pub fn load(raw: Vec<u8>, file: &str, offset: u64) -> Result<Block> {
        let bad = |at: usize, why: &str| Error::corruption(file, offset + at as u64, why);
        if raw.len() < TRAILER {
            return Err(bad(0, "block shorter than its trailer"));
        }
        let crc_at = raw.len() - 4;
        let stored = u32_at(&raw, crc_at).ok_or_else(|| bad(crc_at, "truncated block"))?;
        if crc32fast::hash(raw.get(..crc_at).unwrap_or_default()) != stored {
            return Err(bad(crc_at, "block crc mismatch"));
        }
        let count_at = crc_at - 4;
        let count =
            u32_at(&raw, count_at).ok_or_else(|| bad(count_at, "truncated block"))? as usize;
        let data_end = count
            .checked_mul(4)
            .and_then(|n| count_at.checked_sub(n))
            .ok_or_else(|| bad(count_at, "impossible restart count"))?;
        let mut prev: Option<u32> = None;
        for i in 0..count {
            let r =
                u32_at(&raw, data_end + 4 * i).ok_or_else(|| bad(count_at, "truncated block"))?;
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p,
            };
            if !ok || r as usize >= data_end {
                return Err(bad(data_end + 4 * i, "impossible restart point"));
            }
            prev = Some(r);
        }
        if data_end > 0 && count == 0 {
            return Err(bad(count_at, "entries without restart points"));
        }
        Ok(Block {
            raw,
            data_end,
            restart_count: count,
            offset,
        })
    }

    fn data(&self) -> &[u8] {
        self.raw.get(..self.data_end).unwrap_or_default()
    }

    /// Offset of restart point `i` (checked by `load`: increasing, inside the entries).
    fn restart(&self, i: usize) -> Option<usize> {
        if i >= self.restart_count {
            return None;
        }
        u32_at(&self.raw, self.data_end + 4 * i).map(|r| r as usize)
    }

    /// File offset of the block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of restart intervals ([`Run`]s).
    pub fn runs(&self) -> usize {
        self.restart_count
    }

    /// Memory held, for the cache's accounting.
    pub fn charge(&self) -> usize {
        self.raw.capacity() + 64
    }

    /// The number of restart entries that lie before the position (`before` must be monotone
    /// over the entries): a binary search that decodes only restart entries.
    pub fn restarts_before(
        &self,
        file: &str,
        before: impl Fn(&[u8], u64) -> bool,
    ) -> Result<usize> {
        let data = self.data();
        let restart_key = |i: usize| -> Result<(&[u8], u64)> {
            let at = self.restart(i).unwrap_or(0);
            let h = Header::parse(data, at)
                .filter(|h| h.shared == 0)
                .ok_or_else(|| {
                    Error::corruption(file, self.offset + at as u64, "malformed restart entry")
                })?;
            Ok((data.get(h.key_at..h.value_at()).unwrap_or_default(), h.seq))
        };
        let (mut lo, mut hi) = (0, self.restart_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, seq) = restart_key(mid)?;
            if before(k, seq) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The first entry for which `before(ukey, seq)` is false, passed to `f`: a binary search
    /// over the restart points, then a short walk.
    pub fn find_with<T>(
        &self,
        file: &str,
        before: impl Fn(&[u8], u64) -> bool,
        f: impl FnOnce(EntryRef<'_>) -> T,
    ) -> Result<Option<T>> {
        let data = self.data();
        // Restart points whose entry lies before the position: the answer is in the interval
        // after the last of them (or is the next restart entry).
        let lo = self.restarts_before(file, &before)?;
        let mut walker = Walker::new(self, lo.saturating_sub(1));
        while let Some(h) = walker.next(file)? {
            if !before(&walker.key, walker.seq) {
                let value = h
                    .value_len
                    .map(|_| data.get(h.value_at()..h.end()).unwrap_or_default());
                return Ok(Some(f(EntryRef {
                    ukey: &walker.key,
                    seq: walker.seq,
                    time_ms: walker.time,
                    value,
                })));
            }
        }
        Ok(None)
    }

    /// The first entry for which `before(ukey, seq)` is false, owned.
    #[cfg(test)]
    pub fn find(&self, file: &str, before: impl Fn(&[u8], u64) -> bool) -> Result<Option<Entry>> {
        self.find_with(file, before, |e| e.to_entry())
    }

    /// Decodes restart interval `r` into `out` whole (replacing what it held).
    #[cfg(test)]
    pub fn decode_run(&self, file: &str, r: usize, out: &mut Run) -> Result<()> {
        out.start(self, file, r)?;
        while out.decode_next(self, file)? {}
        Ok(())
    }

    /// Decodes every entry (checking order and restart points): the index block, which a
    /// table keeps decoded while it is open.
    pub fn decode(self: &Arc<Self>, file: &str) -> Result<Decoded> {
        let data_len = self.data_end;
        let mut entries: Vec<Slot> =
            Vec::with_capacity(self.restart_count.saturating_mul(16).min(data_len / 4 + 1));
        let mut keys = Vec::with_capacity(entries.capacity() * 16);
        let mut walker = Walker::new(self, 0);
        let mut start = 0;
        while let Some(h) = walker.next(file)? {
            if let Some(last) = entries.last() {
                let prev = keys
                    .get(last.key.0 as usize..(last.key.0 + last.key.1) as usize)
                    .unwrap_or_default();
                if cmp_ikey(prev, last.seq, &walker.key, walker.seq) != Ordering::Less {
                    return Err(Error::corruption(
                        file,
                        self.offset + start as u64,
                        "entries out of order",
                    ));
                }
            }
            let key = (keys.len() as u32, walker.key.len() as u32);
            keys.extend_from_slice(&walker.key);
            entries.push(Slot {
                key,
                seq: walker.seq,
                time_ms: walker.time,
                value: h.value_len.map(|n| (h.value_at() as u32, n as u32)),
            });
            start = walker.at;
        }
        if walker.next_restart != self.restart_count {
            return Err(Error::corruption(
                file,
                self.offset + data_len as u64,
                "restart points do not match the entries",
            ));
        }
        Ok(Decoded {
            block: self.clone(),
            keys,
            entries,
        })
    }
}

/// Initial capacities of a [`Run`]'s buffers (a restart interval of data blocks is 8 entries;
/// the key arena stays below the allocator's large-request size).
const RUN_KEY_BYTES: usize = 512;
const RUN_ENTRIES: usize = 16;

/// One entry of a [`Run`].
#[derive(Debug, Clone, Copy)]
struct RunEntry {
    /// Its key in the run's arena.
    key: (usize, usize),
    seq: u64,
    time_ms: u64,
    /// Its value as a range of the raw block.
    value: Option<(usize, usize)>,
}

/// The entries of one restart interval of a block, decoded on demand: whole keys in a reused
/// arena, values left in the block. A forward cursor decodes only the entries it reaches (a
/// seek stops at its target, a short scan at its last entry), a reverse one decodes the
/// interval whole. Iterators keep one per cursor, so walking a block allocates nothing once
/// the buffers have grown. Decoding checks that entries are in order and that the interval
/// ends exactly at the next restart point.
#[derive(Debug, Default)]
pub(crate) struct Run {
    keys: Vec<u8>,
    entries: Vec<RunEntry>,
    /// Offset of the next entry to decode, and where the interval ends.
    at: usize,
    end: usize,
    /// `seq`/`time` of the last entry decoded (the base of the next one's deltas).
    seq: u64,
    time: u64,
}

impl Run {
    /// Starts decoding interval `r` of `block` (nothing decoded yet).
    pub fn start(&mut self, block: &Block, file: &str, r: usize) -> Result<()> {
        self.keys.clear();
        self.entries.clear();
        // First use: room for a typical interval at once rather than growing step by step.
        self.keys.reserve(RUN_KEY_BYTES);
        self.entries.reserve(RUN_ENTRIES);
        let Some(start) = block.restart(r) else {
            return Err(Error::corruption(
                file,
                block.offset,
                format!("restart interval {r} out of range"),
            ));
        };
        self.at = start;
        self.end = block.restart(r + 1).unwrap_or(block.data_end);
        Ok(())
    }

    /// Decodes the next entry of the interval; false if there is none.
    pub fn decode_next(&mut self, block: &Block, file: &str) -> Result<bool> {
        let at = self.at;
        if at >= self.end {
            if at > self.end {
                return Err(Error::corruption(
                    file,
                    block.offset + self.end as u64,
                    "restart points do not match the entries",
                ));
            }
            return Ok(false);
        }
        let data = block.data();
        let bad = |why: &str| Error::corruption(file, block.offset + at as u64, why);
        let h = Header::parse(data, at).ok_or_else(|| bad("malformed entry"))?;
        let prev = self.entries.last().copied();
        let (seq, time) = match prev {
            None => {
                if h.shared != 0 {
                    return Err(bad("restart entry shares a key prefix"));
                }
                (h.seq, h.time)
            }
            Some(_) => (
                self.seq.wrapping_add(unzigzag(h.seq) as u64),
                self.time.wrapping_add(unzigzag(h.time) as u64),
            ),
        };
        let (prev_start, prev_end) = prev.map_or((0, 0), |p| p.key);
        if h.shared > prev_end - prev_start {
            return Err(bad("shared prefix longer than the previous key"));
        }
        let key_start = self.keys.len();
        self.keys
            .extend_from_within(prev_start..prev_start + h.shared);
        self.keys
            .extend_from_slice(data.get(h.key_at..h.value_at()).unwrap_or_default());
        let key = (key_start, self.keys.len());
        if let Some(p) = prev {
            let pk = self.keys.get(p.key.0..p.key.1).unwrap_or_default();
            let k = self.keys.get(key.0..key.1).unwrap_or_default();
            if cmp_ikey(pk, p.seq, k, seq) != Ordering::Less {
                return Err(bad("entries out of order"));
            }
        }
        self.entries.push(RunEntry {
            key,
            seq,
            time_ms: time,
            value: h.value_len.map(|n| (h.value_at(), h.value_at() + n)),
        });
        (self.seq, self.time) = (seq, time);
        self.at = h.end();
        if self.at > self.end {
            return Err(Error::corruption(
                file,
                block.offset + self.end as u64,
                "restart points do not match the entries",
            ));
        }
        Ok(true)
    }

    /// Number of entries decoded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`; `block` must be the block the run was decoded from.
    #[inline]
    pub fn get<'a>(&'a self, i: usize, block: &'a Block) -> Option<EntryRef<'a>> {
        let e = self.entries.get(i)?;
        Some(EntryRef {
            ukey: self.keys.get(e.key.0..e.key.1)?,
            seq: e.seq,
            time_ms: e.time_ms,
            value: e
                .value
                .map(|(s, end)| block.raw.get(s..end).unwrap_or_default()),
        })
    }

    /// `(ukey, seq)` of entry `i`, without the value.
    pub fn ikey(&self, i: usize) -> Option<(&[u8], u64)> {
        let e = self.entries.get(i)?;
        Some((self.keys.get(e.key.0..e.key.1)?, e.seq))
    }

    /// Number of leading decoded entries for which `before(ukey, seq)` holds (it must be
    /// monotone).
    pub fn partition(&self, before: impl Fn(&[u8], u64) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.entries.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.ikey(mid) {
                Some((k, s)) if before(k, s) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Decodes entries until one for which `before(ukey, seq)` is false; returns its index
    /// (`len()` if the interval ends first).
    pub fn decode_until(
        &mut self,
        block: &Block,
        file: &str,
        before: impl Fn(&[u8], u64) -> bool,
    ) -> Result<usize> {
        loop {
            let n = self.entries.len();
            if let Some((k, s)) = n.checked_sub(1).and_then(|i| self.ikey(i))
                && !before(k, s)
            {
                return Ok(n - 1);
            }
            if !self.decode_next(block, file)? {
                return Ok(self.entries.len());
            }
        }
    }
}

/// One decoded entry: its whole key in the key arena, its value in the raw block.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: (u32, u32),
    seq: u64,
    // Read by the tests, which compare whole entries.
    #[cfg_attr(not(test), allow(dead_code))]
    time_ms: u64,
    value: Option<(u32, u32)>,
}

/// A block decoded whole (the index): keys in one arena (prefix compression undone), values
/// read in place from the raw block.
#[derive(Debug)]
pub(crate) struct Decoded {
    block: Arc<Block>,
    keys: Vec<u8>,
    entries: Vec<Slot>,
}

impl Decoded {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn key(&self, (start, len): (u32, u32)) -> &[u8] {
        self.keys
            .get(start as usize..(start + len) as usize)
            .unwrap_or_default()
    }

    fn raw(&self, (start, len): (u32, u32)) -> &[u8] {
        self.block
            .raw
            .get(start as usize..(start + len) as usize)
            .unwrap_or_default()
    }

    /// User key of entry `i` (empty if out of range).
    pub fn ukey(&self, i: usize) -> &[u8] {
        self.entries.get(i).map_or(&[][..], |e| self.key(e.key))
    }

    /// Value of entry `i` (`None` for a removal).
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        self.entries
            .get(i)
            .and_then(|e| e.value)
            .map(|v| self.raw(v))
    }

    /// Entry `i`, owned.
    #[cfg(test)]
    pub fn entry(&self, i: usize) -> Option<Entry> {
        let e = self.entries.get(i)?;
        Some(Entry {
            ukey: self.key(e.key).to_vec(),
            seq: e.seq,
            time_ms: e.time_ms,
            value: e.value.map(|v| self.raw(v).to_vec()),
        })
    }

    /// Number of leading entries for which `before(ukey, seq)` holds (it must be monotone).
    #[cfg(test)]
    pub fn partition(&self, before: impl Fn(&[u8], u64) -> bool) -> usize {
        self.partition_in(0, self.entries.len(), before)
    }

    /// As [`Decoded::partition`], knowing that every entry below `lo` is before the position
    /// and none from `hi` on is.
    pub fn partition_in(&self, lo: usize, hi: usize, before: impl Fn(&[u8], u64) -> bool) -> usize {
        let within = self.entries.get(lo..hi).unwrap_or_default();
        lo + within.partition_point(|e| before(self.key(e.key), e.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Seek;

    fn decode(raw: Vec<u8>, offset: u64) -> Result<Decoded> {
        Arc::new(Block::load(raw, "t", offset)?).decode("t")
    }

    fn sample(n: usize, interval: usize) -> (Vec<u8>, Vec<crate::key::Entry>) {
        let mut b = BlockBuilder::new(interval);
        let mut want = Vec::new();
        for i in 0..n {
            let ukey = format!("key-{:05}", i / 3).into_bytes();
            let seq = 1000 - (i % 3) as u64 * 7 + (i / 3) as u64;
            let value = (i % 4 != 0).then(|| vec![i as u8; i % 9]);
            b.add(
                &ukey,
                seq,
                1_700_000_000_000 + (i as u64 * 13) % 50,
                value.as_deref(),
            );
            want.push(crate::key::Entry {
                ukey,
                seq,
                time_ms: 1_700_000_000_000 + (i as u64 * 13) % 50,
                value,
            });
        }
        (b.finish(), want)
    }

    /// Calls `f` with every block that the block `raw` becomes with one bit flipped (0x01, 0x40
    /// or 0x80 of a byte before the CRC) and the CRC fixed, if it still loads.
    fn for_each_flipped_under_valid_crc(raw: &[u8], mut f: impl FnMut(Block)) {
        let body = &raw[..raw.len() - 4];
        for i in 0..body.len() {
            for bit in [0x01u8, 0x40, 0x80] {
                let mut bad = body.to_vec();
                bad[i] ^= bit;
                let crc = crc32fast::hash(&bad);
                bad.extend_from_slice(&crc.to_le_bytes());
                if let Ok(block) = Block::load(bad, "t", 0) {
                    f(block);
                }
            }
        }
    }

    #[test]
    fn round_trip() {
        for interval in [1, 2, 16] {
            let (raw, want) = sample(100, interval);
            let block = decode(raw.clone(), 0).expect("decode");
            assert_eq!(block.len(), want.len());
            for (i, w) in want.iter().enumerate() {
                assert_eq!(block.entry(i).as_ref(), Some(w), "entry {i}");
            }
            let k = b"key-00010";
            let first = block.partition(|u, _| u < &k[..]);
            assert_eq!(block.ukey(first), k);
        }
        let empty = BlockBuilder::new(16).finish();
        assert_eq!(decode(empty.clone(), 0).expect("empty").len(), 0);
        let block = Block::load(empty, "t", 0).expect("load");
        assert_eq!(block.find("t", |_, _| false).expect("find"), None);
    }

    /// Decoding run by run yields the entries in order, and a damaged run is corruption.
    #[test]
    fn runs_cover_the_block() {
        for interval in [1, 3, 16] {
            let (raw, want) = sample(100, interval);
            let block = Block::load(raw, "t", 0).expect("load");
            let mut run = Run::default();
            let mut got = Vec::new();
            for r in 0..block.runs() {
                block.decode_run("t", r, &mut run).expect("run");
                assert!(run.len() <= interval);
                got.extend(
                    (0..run.len())
                        .filter_map(|i| run.get(i, &block))
                        .map(|e| e.to_entry()),
                );
            }
            assert_eq!(got, want);
            assert!(block.decode_run("t", block.runs(), &mut run).is_err());
        }
        // Under a valid CRC: decoding either works or is corruption, never a panic.
        let (raw, _) = sample(60, 4);
        for_each_flipped_under_valid_crc(&raw, |block| {
            let mut run = Run::default();
            for r in 0..block.runs() {
                let _ = block.decode_run("t", r, &mut run);
                let _ = run.partition(|u, _| u < &b"key-00005"[..]);
            }
            let _ = block.restarts_before("t", |u, _| u < &b"key-00005"[..]);
        });
    }

    /// `find` on the raw block agrees with a search over the decoded entries, for every
    /// position kind and restart interval.
    #[test]
    fn find_agrees_with_decoded_search() {
        for interval in [1, 3, 16] {
            let (raw, want) = sample(120, interval);
            let block = Block::load(raw, "t", 0).expect("load");
            let mut targets: Vec<(Vec<u8>, u64)> =
                want.iter().map(|e| (e.ukey.clone(), e.seq)).collect();
            targets.push((b"key-".to_vec(), 0));
            targets.push((b"key-99999".to_vec(), 0));
            targets.push((b"key-00007x".to_vec(), 5));
            for (k, seq) in &targets {
                for seek in [
                    Seek::Ge(k),
                    Seek::Gt(k),
                    Seek::At(k, *seq),
                    Seek::At(k, seq + 3),
                    Seek::At(k, seq.saturating_sub(3)),
                ] {
                    let expected = want.iter().find(|e| !seek.is_before(&e.ukey, e.seq));
                    let got = block.find("t", |u, s| seek.is_before(u, s)).expect("find");
                    assert_eq!(got.as_ref(), expected, "interval {interval}, {seek:?}");
                }
            }
        }
    }

    #[test]
    fn every_flipped_byte_and_cut_is_corruption() {
        let (raw, _) = sample(40, 4);
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = raw.clone();
                bad[i] ^= bit;
                assert!(
                    matches!(decode(bad, 100), Err(Error::Corruption { offset, .. }) if offset >= 100),
                    "flip at {i}"
                );
            }
        }
        for cut in 0..raw.len() {
            assert!(matches!(
                decode(raw[..cut].to_vec(), 0),
                Err(Error::Corruption { .. })
            ));
        }
    }

    #[test]
    fn damage_under_a_valid_crc_is_still_caught() {
        // Garbage with a correct CRC (a bug or a forged block) must not panic either.
        for seed in 0..2000u32 {
            let mut body: Vec<u8> = (0..(seed % 64))
                .map(|i| (seed.wrapping_mul(2654435761) >> (i % 24)) as u8)
                .collect();
            body.extend_from_slice(&(seed % 3).to_le_bytes());
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            let _ = decode(body, 0);
        }
        // Valid blocks with bytes flipped and the CRC fixed: decoding and searching either
        // succeed or report corruption, never panic.
        let (raw, want) = sample(60, 4);
        for_each_flipped_under_valid_crc(&raw, |block| {
            let block = Arc::new(block);
            let _ = block.decode("t");
            for e in want.iter().step_by(7) {
                let _ = block.find("t", |u, s| Seek::At(&e.ukey, e.seq).is_before(u, s));
            }
        });
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut at = 0;
            assert_eq!(get_varint(&buf, &mut at), Some(v));
            assert_eq!(at, buf.len());
            assert_eq!(get_varint(&buf[..buf.len() - 1], &mut 0), None);
            assert_eq!(get_varint(&[0x80; 11], &mut 0), None);
        }
        for d in [0i64, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
    }
}
