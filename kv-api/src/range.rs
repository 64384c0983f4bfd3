//! Typed range and prefix scans over a transaction: the snapshot's entries merged with the
//! transaction's own writes, paged from the engine so memory stays bounded.

use std::collections::{BTreeMap, VecDeque};
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode_key, decode_value, encode_key};
use crate::{BoxFuture, Engine, KeyRange, MaybeSend, Result, Slot, Transaction};

/// Entries fetched from the engine per page.
const PAGE: usize = 256;

pub(crate) fn encode_range<K: Serialize, R: RangeBounds<K>>(range: &R) -> Result<KeyRange> {
    let enc = |b: Bound<&K>| -> Result<Bound<Vec<u8>>> {
        Ok(match b {
            Bound::Included(k) => Bound::Included(encode_key(k)?),
            Bound::Excluded(k) => Bound::Excluded(encode_key(k)?),
            Bound::Unbounded => Bound::Unbounded,
        })
    };
    Ok(KeyRange {
        start: enc(range.start_bound())?,
        end: enc(range.end_bound())?,
    })
}

/// A typed scan being set up: shape it with [`reverse`](Self::reverse) and
/// [`limit`](Self::limit), then `.await` it for a `Vec<(K, V)>` or [`stream`](Self::stream) it.
#[must_use = "a range query does nothing until awaited or streamed"]
pub struct RangeQuery<'t, E: Engine, K, V> {
    txn: &'t Transaction<E>,
    slot: Slot,
    range: Result<KeyRange>,
    reverse: bool,
    limit: Option<usize>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'t, E: Engine, K, V> RangeQuery<'t, E, K, V>
where
    K: DeserializeOwned,
    V: DeserializeOwned,
{
    pub(crate) fn new(txn: &'t Transaction<E>, slot: Slot, range: Result<KeyRange>) -> Self {
        RangeQuery {
            txn,
            slot,
            range,
            reverse: false,
            limit: None,
            _types: PhantomData,
        }
    }

    /// Returns entries in descending key order.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// Returns at most `n` entries.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// A cursor that fetches entries page by page.
    pub fn stream(self) -> RangeStream<'t, E, K, V> {
        let (range, error) = match self.range {
            Ok(r) => (r, None),
            Err(e) => (KeyRange::all(), Some(e)),
        };
        if error.is_none() {
            self.txn.note_range(self.slot, &range);
        }
        RangeStream {
            txn: self.txn,
            slot: self.slot,
            lower: range.start,
            upper: range.end,
            reverse: self.reverse,
            remaining: self.limit,
            buf: VecDeque::new(),
            exhausted: false,
            error,
            _types: PhantomData,
        }
    }
}

impl<'t, E, K, V> IntoFuture for RangeQuery<'t, E, K, V>
where
    E: Engine,
    K: DeserializeOwned + MaybeSend + 't,
    V: DeserializeOwned + MaybeSend + 't,
{
    type Output = Result<Vec<(K, V)>>;
    type IntoFuture = BoxFuture<'t, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let mut stream = self.stream();
        Box::pin(async move {
            let mut out = Vec::with_capacity(stream.remaining.map_or(0, |n| n.min(PAGE)));
            while let Some(entry) = stream.next().await? {
                out.push(entry);
            }
            Ok(out)
        })
    }
}

/// A paging cursor over a typed range. Holds at most one page of entries in memory.
pub struct RangeStream<'t, E: Engine, K, V> {
    txn: &'t Transaction<E>,
    slot: Slot,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    remaining: Option<usize>,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    exhausted: bool,
    error: Option<crate::Error>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<E: Engine, K: DeserializeOwned, V: DeserializeOwned> RangeStream<'_, E, K, V> {
    /// The next entry, `Ok(None)` at the end. Keys of other types are skipped; a value of
    /// another type is [`crate::Error::Decode`].
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Result<Option<(K, V)>> {
        while let Some((k, v)) = self.next_raw().await? {
            if let Ok(key) = decode_key::<K>(&k) {
                self.count();
                return Ok(Some((key, decode_value(&v)?)));
            }
        }
        Ok(None)
    }

    /// The next key only (values are not decoded).
    pub async fn next_key(&mut self) -> Result<Option<K>> {
        while let Some((k, _)) = self.next_raw().await? {
            if let Ok(key) = decode_key::<K>(&k) {
                self.count();
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    fn count(&mut self) {
        if let Some(n) = &mut self.remaining {
            // Never 0 here: `next_raw` yields nothing once the limit is reached.
            *n = n.saturating_sub(1);
        }
    }

    async fn next_raw(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if let Some(e) = self.error.take() {
            self.exhausted = true;
            return Err(e);
        }
        loop {
            if self.remaining == Some(0) {
                return Ok(None);
            }
            if let Some(entry) = self.buf.pop_front() {
                return Ok(Some(entry));
            }
            if self.exhausted {
                return Ok(None);
            }
            self.refill().await?;
        }
    }

    /// Fetches the next page from the engine and overlays the transaction's own writes on
    /// the key interval that page covers.
    async fn refill(&mut self) -> Result<()> {
        self.txn.check_open()?;
        let range = KeyRange {
            start: self.lower.clone(),
            end: self.upper.clone(),
        };
        if range.is_empty() {
            self.exhausted = true;
            return Ok(());
        }
        // A limited scan asks for no more than it still needs (a 100-row scan reads 100 rows),
        // but for a few at least, so that keys of other types are not skipped one by one.
        let want = self.remaining.map_or(PAGE, |n| n.clamp(16, PAGE));
        let page = self
            .txn
            .engine()
            .scan(
                self.slot,
                &range,
                self.txn.snapshot_seq(),
                self.reverse,
                want,
            )
            .await?;
        let last = page.last().map(|e| e.key.clone());
        let full = page.len() == want;
        let covered = match (&last, full, self.reverse) {
            (Some(l), true, false) => KeyRange {
                start: self.lower.clone(),
                end: Bound::Included(l.clone()),
            },
            (Some(l), true, true) => KeyRange {
                start: Bound::Included(l.clone()),
                end: self.upper.clone(),
            },
            _ => range,
        };
        let slot = self.slot;
        let mut own = self
            .txn
            .writes
            .range((slot, Vec::new())..)
            .take_while(|((s, _), _)| *s == slot)
            .filter(|((_, k), _)| covered.contains(k))
            .peekable();
        if own.peek().is_none() {
            // Nothing of our own to overlay (always so in a snapshot): the page as it came,
            // already in the order asked for.
            self.buf.extend(page.into_iter().map(|e| (e.key, e.value)));
        } else {
            let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
                page.into_iter().map(|e| (e.key, e.value)).collect();
            for ((_, k), v) in own {
                match v {
                    Some(v) => merged.insert(k.clone(), v.clone()),
                    None => merged.remove(k),
                };
            }
            if self.reverse {
                self.buf.extend(merged.into_iter().rev());
            } else {
                self.buf.extend(merged);
            }
        }
        match last {
            Some(l) if full => {
                if self.reverse {
                    self.upper = Bound::Excluded(l);
                } else {
                    self.lower = Bound::Excluded(l);
                }
            }
            _ => self.exhausted = true,
        }
        Ok(())
    }
}
