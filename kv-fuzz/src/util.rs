//! What the targets share: running a future without a runtime, reading a fuzz input as
//! fields, and rewriting the checksums of an input so that mutations reach the parsers behind
//! them.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use kv_engine_kit::header::{FileHeader, StoreId};

/// The store id a decoder is asked to expect when the input has no header to take it from.
pub(crate) const FIXED_STORE: StoreId = StoreId::from_bytes(*b"kv-fuzz store id");

/// The store id and file id of the input's own header ([`FileHeader::decode`]), or
/// [`FIXED_STORE`] and 0 if it has none: decoders that check a file's header against the
/// store (and file) expected are asked for the ones the input names, so that mutations get
/// past the header into the records behind it.
pub(crate) fn header_ids(buf: &[u8]) -> (StoreId, u64) {
    FileHeader::decode(buf).map_or((FIXED_STORE, 0), |h| (h.store, h.file_id))
}

/// Where the records of a file held in `buf` begin: after its header, or (for inputs too
/// short to hold one) at 0, as a caller that passed a header would leave none.
pub(crate) fn records_from(buf: &[u8]) -> usize {
    if buf.len() >= kv_engine_kit::header::LEN {
        kv_engine_kit::header::LEN
    } else {
        0
    }
}

/// Polls `f` to completion on this thread. Everything the targets run is in memory
/// (`MemoryStorage`, uncontended locks, no runtime so the LSM works inline), so a future that
/// stays pending is a hang: it panics instead, which the fuzzer reports.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
    panic!("a future over in-memory storage is still pending: hang");
}

/// Reads fixed-width fields off the front of a fuzz input; past its end, fields read as
/// zero and byte strings as empty, so every input means something.
pub(crate) struct Fields<'a>(pub &'a [u8]);

impl<'a> Fields<'a> {
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let b = self.bytes(N);
        a[..b.len()].copy_from_slice(b);
        a
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
}

/// `buf` with the CRC of every frame (`crc32 | len | payload`, [`kv_engine_kit::frame`])
/// recomputed, walking frame by frame from the start until one does not fit. A CRC stops
/// almost every mutation of a framed file; with it fixed, they reach the record parsers.
/// Targets run on the input as it is and, when it differs, on this copy.
pub(crate) fn fix_frames(buf: &[u8]) -> Vec<u8> {
    let mut out = buf.to_vec();
    let mut at = 0usize;
    while let Some(len) = out.get(at + 4..at + 8) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e <= out.len()) else {
            break;
        };
        let crc = crc32fast::hash(&out[at + 4..end]);
        out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
    out
}

/// `buf` with its last 4 bytes replaced by the CRC of the bytes before them (SST blocks and
/// filters); unchanged if it is shorter than that.
pub(crate) fn fix_trailing_crc(buf: &[u8]) -> Vec<u8> {
    let mut out = buf.to_vec();
    if let Some(at) = out.len().checked_sub(4) {
        let crc = crc32fast::hash(&out[..at]);
        out[at..].copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// Calls `f` on `buf`, then on `fixed` if it differs.
pub(crate) fn both(buf: &[u8], fixed: Vec<u8>, mut f: impl FnMut(&[u8])) {
    f(buf);
    if fixed != buf {
        f(&fixed);
    }
}
