//! Typed range and prefix scans over a transaction: the snapshot's entries merged with the
//! transaction's own writes, paged from the engine so memory stays bounded.

use std::collections::{BTreeMap, VecDeque};
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::pin::Pin;
use std::task::{Context, Poll};

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
    let range = KeyRange {
        start: enc(range.start_bound())?,
        end: enc(range.end_bound())?,
    };
    if let (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) =
        (&range.start, &range.end)
        && s > e
    {
        return Err(crate::Error::InvalidArgument(
            "inverted range: its start is after its end".into(),
        ));
    }
    Ok(range)
}

/// A typed scan being set up: shape it with [`reverse`](Self::reverse) and
/// [`limit`](Self::limit), then `.await` it for a `Vec<(K, V)>` or [`stream`](Self::stream) it.
///
/// A range whose start lies after its end (`10..5`) is [`crate::Error::InvalidArgument`]
/// (an empty range such as `5..5` is not: it yields nothing). Both bounds are compared as
/// encoded keys, which order as the key type does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_db::Result<()> {
/// # use kv_db::{KvStore, backends::MemoryStorage};
/// # let store = KvStore::open(MemoryStorage::new()).await?;
/// # let mut txn = store.current();
/// # for id in 1..=30u32 {
/// #     txn.insert(0, &id, format!("row {id}"))?;
/// # }
/// # txn.commit().await?;
/// // Slot 0 holds u32 ids 1..=30, each with a String.
/// let txn = store.snapshot();
/// let rows: Vec<(u32, String)> = txn.range(0, 10..13).await?;
/// assert_eq!(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [10, 11, 12]);
/// let inverted = txn.range::<u32, String>(0, 13..10).await;
/// assert!(matches!(inverted, Err(kv_db::Error::InvalidArgument(_))));
/// # Ok(())
/// # }
/// ```
#[must_use = "a range query does nothing until awaited or streamed"]
pub struct RangeQuery<'t, E: Engine, K, V> {
    txn: &'t Transaction<E>,
    slot: Slot,
    range: Result<KeyRange>,
    reverse: bool,
    limit: Option<usize>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<E: Engine, K, V> std::fmt::Debug for RangeQuery<'_, E, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeQuery")
            .field("slot", &self.slot)
            .field("reverse", &self.reverse)
            .field("limit", &self.limit)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// # let mut txn = store.current();
    /// # for id in 1..=30u32 {
    /// #     txn.insert(0, &id, format!("row {id}"))?;
    /// # }
    /// # txn.commit().await?;
    /// let txn = store.snapshot();
    /// let newest: Vec<(u32, String)> = txn.range(0, ..=20).reverse().await?;
    /// assert_eq!(newest[0].0, 20);
    /// assert_eq!(newest.last().map(|(id, _)| *id), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// Returns at most `n` entries.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// # let mut txn = store.current();
    /// # for id in 1..=30u32 {
    /// #     txn.insert(0, &id, format!("row {id}"))?;
    /// # }
    /// # txn.commit().await?;
    /// let txn = store.snapshot();
    /// let page: Vec<(u32, String)> = txn.range(0, 5..).limit(3).await?;
    /// assert_eq!(page.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [5, 6, 7]);
    /// let last_two = txn.range::<u32, String>(0, ..).reverse().limit(2).await?;
    /// assert_eq!(last_two.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [30, 29]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// A cursor that fetches entries page by page, for a range too large to collect: memory
    /// stays bounded by one page.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// # let mut txn = store.current();
    /// # for id in 1..=30u32 {
    /// #     txn.insert(0, &id, format!("row {id}"))?;
    /// # }
    /// # txn.commit().await?;
    /// let txn = store.snapshot();
    /// let mut rows = txn.range::<u32, String>(0, ..).stream();
    /// let mut sum = 0;
    /// while let Some((id, value)) = rows.next().await? {
    ///     assert_eq!(value, format!("row {id}"));
    ///     sum += id;
    /// }
    /// assert_eq!(sum, (1..=30).sum::<u32>());
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream(self) -> RangeStream<'t, E, K, V> {
        let (range, error) = match self.range {
            Ok(r) => (r, None),
            Err(e) => (KeyRange::all(), Some(e)),
        };
        if error.is_none() {
            self.txn.note_range(self.slot, &range);
        }
        RangeStream {
            cursor: Some(Cursor {
                txn: self.txn,
                slot: self.slot,
                lower: range.start,
                upper: range.end,
                reverse: self.reverse,
                remaining: self.limit,
                buf: VecDeque::new(),
                exhausted: false,
                error,
            }),
            fetch: None,
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
            let want = stream.cursor.as_ref().and_then(|c| c.remaining);
            let mut out = Vec::with_capacity(want.map_or(0, |n| n.min(PAGE)));
            while let Some(entry) = stream.next().await? {
                out.push(entry);
            }
            Ok(out)
        })
    }
}

/// A paging cursor over a typed range. Holds at most one page of entries in memory.
///
/// Call [`next`](Self::next) in a loop, or use it as a [`futures_core::Stream`] of
/// `Result<(K, V)>` (with `StreamExt` of `futures` or `tokio-stream`); the stream ends after
/// the first error.
///
/// ```
/// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
/// let txn = store.snapshot();
/// let mut rows = txn.range::<u32, String>(0, 10..20).stream();
/// while let Some((id, name)) = rows.next().await? {
///     println!("{id}: {name}");
/// }
/// # Ok(())
/// # }
/// ```
pub struct RangeStream<'t, E: Engine, K, V> {
    /// `None` only while a page is being fetched by `fetch`.
    cursor: Option<Cursor<'t, E>>,
    /// The fetch of the next page, when the buffer ran dry inside `poll_next`.
    fetch: Option<BoxFuture<'t, (Cursor<'t, E>, Result<()>)>>,
    _types: PhantomData<fn() -> (K, V)>,
}

/// The untyped part of a [`RangeStream`]: the bounds still to scan and one page of entries.
struct Cursor<'t, E: Engine> {
    txn: &'t Transaction<E>,
    slot: Slot,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    remaining: Option<usize>,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    exhausted: bool,
    error: Option<crate::Error>,
}

/// A key with its value, if the value was asked for.
type Polled<K, V> = (K, Option<V>);

/// What one step of a [`Cursor`] gives without waiting.
enum Step {
    Entry(Vec<u8>, Vec<u8>),
    End,
    Refill,
}

impl<E: Engine, K, V> std::fmt::Debug for RangeStream<'_, E, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RangeStream");
        if let Some(c) = &self.cursor {
            d.field("slot", &c.slot)
                .field("reverse", &c.reverse)
                .field("remaining", &c.remaining)
                .field("buffered", &c.buf.len())
                .field("exhausted", &c.exhausted);
        }
        d.field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<E: Engine, K: DeserializeOwned, V: DeserializeOwned> RangeStream<'_, E, K, V> {
    /// The next entry, `Ok(None)` at the end. Keys of other types are skipped; a value of
    /// another type is [`crate::Error::Decode`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// # let mut txn = store.current();
    /// # for id in 1..=30u32 {
    /// #     txn.insert(0, &id, format!("row {id}"))?;
    /// # }
    /// # txn.commit().await?;
    /// let txn = store.snapshot();
    /// let mut rows = txn.range::<u32, String>(0, 29..).stream();
    /// assert_eq!(rows.next().await?, Some((29, "row 29".to_string())));
    /// assert_eq!(rows.next().await?, Some((30, "row 30".to_string())));
    /// assert_eq!(rows.next().await?, None);
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Result<Option<(K, V)>> {
        // `poll_entry(.., true)` gives every entry its value.
        Ok(std::future::poll_fn(|cx| self.poll_entry(cx, true))
            .await?
            .and_then(|(k, v)| Some((k, v?))))
    }

    /// The next key only (values are not decoded).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// # let mut txn = store.current();
    /// # for id in 1..=30u32 {
    /// #     txn.insert(0, &id, format!("row {id}"))?;
    /// # }
    /// # txn.commit().await?;
    /// let txn = store.snapshot();
    /// let mut ids = txn.range::<u32, String>(0, ..3).stream();
    /// assert_eq!(ids.next_key().await?, Some(1));
    /// assert_eq!(ids.next_key().await?, Some(2));
    /// assert_eq!(ids.next_key().await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_key(&mut self) -> Result<Option<K>> {
        std::future::poll_fn(|cx| self.poll_entry(cx, false))
            .await
            .map(|e| e.map(|(k, _)| k))
    }

    /// Polls for the next entry of key type `K` (decoding its value if `values`).
    fn poll_entry(
        &mut self,
        cx: &mut Context<'_>,
        values: bool,
    ) -> Poll<Result<Option<Polled<K, V>>>> {
        loop {
            if let Some(fetch) = &mut self.fetch {
                let (cursor, outcome) = std::task::ready!(fetch.as_mut().poll(cx));
                self.fetch = None;
                self.cursor = Some(cursor);
                if let Err(e) = outcome {
                    return Poll::Ready(Err(e));
                }
            }
            let Some(cursor) = &mut self.cursor else {
                return Poll::Ready(Ok(None));
            };
            match cursor.step() {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(Step::End) => return Poll::Ready(Ok(None)),
                Ok(Step::Entry(k, v)) => {
                    let Ok(key) = decode_key::<K>(&k) else {
                        continue; // a key of another type
                    };
                    cursor.count();
                    let value = if values {
                        match decode_value(&v) {
                            Ok(v) => Some(v),
                            Err(e) => return Poll::Ready(Err(e)),
                        }
                    } else {
                        None
                    };
                    return Poll::Ready(Ok(Some((key, value))));
                }
                Ok(Step::Refill) => {
                    if let Some(mut cursor) = self.cursor.take() {
                        self.fetch = Some(Box::pin(async move {
                            let outcome = cursor.refill().await;
                            (cursor, outcome)
                        }));
                    }
                }
            }
        }
    }
}

impl<E, K, V> futures_core::Stream for RangeStream<'_, E, K, V>
where
    E: Engine,
    K: DeserializeOwned,
    V: DeserializeOwned,
{
    type Item = Result<(K, V)>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is `Unpin` (the fetch is boxed).
        let this = self.get_mut();
        match std::task::ready!(this.poll_entry(cx, true)) {
            Ok(Some((k, Some(v)))) => Poll::Ready(Some(Ok((k, v)))),
            Ok(Some((_, None))) | Ok(None) => Poll::Ready(None),
            Err(e) => {
                // The stream ends after its first error.
                if let Some(c) = &mut this.cursor {
                    c.exhausted = true;
                    c.buf.clear();
                }
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl<'t, E: Engine> Cursor<'t, E> {
    fn count(&mut self) {
        if let Some(n) = &mut self.remaining {
            // Never 0 here: `step` yields nothing once the limit is reached.
            *n = n.saturating_sub(1);
        }
    }

    /// The next raw entry if one is at hand, the end, or that a page must be fetched.
    fn step(&mut self) -> Result<Step> {
        if let Some(e) = self.error.take() {
            self.exhausted = true;
            return Err(e);
        }
        if self.remaining == Some(0) {
            return Ok(Step::End);
        }
        if let Some((k, v)) = self.buf.pop_front() {
            return Ok(Step::Entry(k, v));
        }
        if self.exhausted {
            return Ok(Step::End);
        }
        Ok(Step::Refill)
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
        let fresh: Vec<(Vec<u8>, Vec<u8>)> = {
            let mut own = self
                .txn
                .writes
                .range((slot, Vec::new())..)
                .take_while(|((s, _), _)| *s == slot)
                .filter(|((_, k), _)| covered.contains(k))
                .peekable();
            let removed = self
                .txn
                .range_tombstones
                .iter()
                .any(|(s, r)| *s == slot && r.overlaps(&covered));
            if own.peek().is_none() && !removed {
                // Nothing of our own to overlay (always so in a snapshot): the page as it came,
                // already in the order asked for.
                page.into_iter().map(|e| (e.key, e.value)).collect()
            } else {
                // Keys of ranges this transaction removed are gone, unless it wrote them since.
                let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = page
                    .into_iter()
                    .filter(|e| !(removed && self.txn.in_removed_range(slot, &e.key)))
                    .map(|e| (e.key, e.value))
                    .collect();
                for ((_, k), v) in own {
                    match v {
                        Some(v) => merged.insert(k.clone(), v.clone()),
                        None => merged.remove(k),
                    };
                }
                if self.reverse {
                    merged.into_iter().rev().collect()
                } else {
                    merged.into_iter().collect()
                }
            }
        };
        // Values expired at this view's time read as absent (`crate::expiry`).
        let fresh = self.txn.drop_expired(slot, fresh).await?;
        self.buf.extend(fresh);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    #[allow(clippy::reversed_empty_ranges, reason = "inverted on purpose")]
    fn inverted_ranges_are_invalid_arguments() {
        assert!(matches!(
            encode_range(&(10u32..5)),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            encode_range(&("b"..="a")),
            Err(Error::InvalidArgument(_))
        ));
        // Empty is not inverted.
        assert!(encode_range(&(5u32..5)).is_ok_and(|r| r.is_empty()));
        assert!(encode_range(&(5u32..=5)).is_ok_and(|r| !r.is_empty()));
        assert!(encode_range(&(5u32..)).is_ok());
        // Order is the type's, not the bytes' of a naive encoding: -1 < 1.
        assert!(encode_range(&(-1i32..1)).is_ok());
        assert!(encode_range(&(1i32..-1)).is_err());
    }
}
