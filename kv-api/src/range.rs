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
use crate::{BoxFuture, Engine, Error, KeyRange, MaybeSend, Result, Slot, Transaction, Version};

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
        RangeStream {
            pager: self.pager(true),
            _types: PhantomData,
        }
    }

    /// The keys of the range only, in the same order and with the same limit, read without
    /// their values: the engine lists keys ([`Engine::scan_keys`]) and never reads, decodes or
    /// copies a value. Records the scanned range for conflicts exactly as a scan does.
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
    /// let ids: Vec<u32> = txn.range::<u32, String>(0, 10..).reverse().limit(3).keys().await?;
    /// assert_eq!(ids, [30, 29, 28]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn keys(self) -> Result<Vec<K>> {
        let mut rows = self.rows();
        let mut out = Vec::new();
        while let Some((key, _, _)) =
            std::future::poll_fn(|cx| rows.pager.poll_row::<K>(cx)).await?
        {
            out.push(key);
        }
        Ok(out)
    }

    /// A cursor of value-lazy rows: each [`LazyRow`] has its key and version, read as
    /// [`keys`](Self::keys) reads them (no value touched), and fetches its value only when
    /// asked ([`LazyRow::value`]), at this transaction's snapshot: for scans that need the
    /// values of a few rows only (filter on the key or version, read the values needed).
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
    /// let mut rows = txn.range::<u32, String>(0, ..).rows();
    /// let mut tens = Vec::new();
    /// while let Some(row) = rows.next().await? {
    ///     if row.key % 10 == 0 {
    ///         tens.push(row.value().await?); // only these three values are read
    ///     }
    /// }
    /// assert_eq!(tens, ["row 10", "row 20", "row 30"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn rows(self) -> RowStream<'t, E, K, V> {
        RowStream {
            pager: self.pager(false),
            _types: PhantomData,
        }
    }

    /// The paging state of this query, fetching values or (`values` false) keys only; the
    /// range is recorded for conflicts here, once, whatever is fetched.
    fn pager(self, values: bool) -> Pager<'t, E> {
        let (range, error) = match self.range {
            Ok(r) => (r, None),
            Err(e) => (KeyRange::all(), Some(e)),
        };
        if error.is_none() {
            self.txn.note_range(self.slot, &range);
        }
        Pager {
            cursor: Some(Cursor {
                txn: self.txn,
                slot: self.slot,
                lower: range.start,
                upper: range.end,
                reverse: self.reverse,
                remaining: self.limit,
                values,
                buf: VecDeque::new(),
                exhausted: false,
                error,
            }),
            fetch: None,
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
            let want = stream.pager.cursor.as_ref().and_then(|c| c.remaining);
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
    pager: Pager<'t, E>,
    _types: PhantomData<fn() -> (K, V)>,
}

/// A paging cursor of value-lazy rows ([`RangeQuery::rows`]): pages of keys and versions
/// from the engine ([`Engine::scan_keys`]), each row fetching its value only when asked.
/// Holds at most one page of keys in memory.
///
/// Call [`next`](Self::next) in a loop, or use it as a [`futures_core::Stream`] of
/// `Result<LazyRow>`; the stream ends after the first error.
///
/// ```
/// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
/// let txn = store.snapshot();
/// let mut rows = txn.range::<u32, String>(0, ..).rows();
/// while let Some(row) = rows.next().await? {
///     let written = row.version.map(|v| v.time_ms());
///     if row.key > 100 {
///         println!("{}: {} (written at {written:?})", row.key, row.value().await?);
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct RowStream<'t, E: Engine, K, V> {
    pager: Pager<'t, E>,
    _types: PhantomData<fn() -> (K, V)>,
}

/// One row of a [`RowStream`]: a key and its version, read without the value, which
/// [`value`](Self::value) fetches at the scan's snapshot when asked.
pub struct LazyRow<'t, E: Engine, K, V> {
    /// The key.
    pub key: K,
    /// The commit that wrote the row's value; `None` for the transaction's own pending write.
    pub version: Option<Version>,
    txn: &'t Transaction<E>,
    slot: Slot,
    /// The encoded key.
    encoded: Vec<u8>,
    /// The transaction's own pending value, if the row is one of its writes.
    own: Option<Vec<u8>>,
    _value: PhantomData<fn() -> V>,
}

impl<E: Engine, K: std::fmt::Debug, V> std::fmt::Debug for LazyRow<'_, E, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyRow")
            .field("key", &self.key)
            .field("version", &self.version)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl<E: Engine, K, V: DeserializeOwned> LazyRow<'_, E, K, V> {
    /// The row's value as the scan's snapshot holds it (or the transaction's own pending
    /// write), read now with one point read: a commit made since the scan started does not
    /// change it. A value of another type is [`crate::Error::Decode`]. No read is recorded
    /// for conflicts: the scan recorded the whole range.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |t| t.insert(0, &1u32, "old")).await?;
    /// let txn = store.snapshot();
    /// let mut rows = txn.range::<u32, String>(0, ..).rows();
    /// let row = rows.next().await?.expect("a row");
    /// store.transact(async |t| t.insert(0, &1u32, "new")).await?;
    /// assert_eq!(row.value().await?, "old"); // the snapshot's value
    /// # Ok(())
    /// # }
    /// ```
    pub async fn value(&self) -> Result<V> {
        if let Some(own) = &self.own {
            return decode_value(own);
        }
        self.txn.check_open()?;
        let at = self.txn.snapshot_seq();
        match self.txn.engine().get(self.slot, &self.encoded, at).await? {
            Some(bytes) => decode_value(&bytes),
            // The snapshot pins what it listed: only a damaged or misbehaving engine gets here.
            None => Err(Error::VersionNotFound {
                seq: self.version.map_or(at, |v| v.seq()),
                reason: "a scanned key has no value at the scan's snapshot",
            }),
        }
    }
}

/// The paging state shared by [`RangeStream`] and [`RowStream`].
struct Pager<'t, E: Engine> {
    /// `None` only while a page is being fetched by `fetch`.
    cursor: Option<Cursor<'t, E>>,
    /// The fetch of the next page, when the buffer ran dry inside a poll.
    fetch: Option<BoxFuture<'t, (Cursor<'t, E>, Result<()>)>>,
}

/// The untyped part of a stream: the bounds still to scan and one page of rows.
struct Cursor<'t, E: Engine> {
    txn: &'t Transaction<E>,
    slot: Slot,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    remaining: Option<usize>,
    /// Whether pages hold values (`Engine::scan`) or keys only (`Engine::scan_keys`).
    values: bool,
    buf: VecDeque<(Vec<u8>, Held)>,
    exhausted: bool,
    error: Option<crate::Error>,
}

/// What a page holds of a row besides its encoded key.
#[derive(Debug, Clone)]
struct Held {
    /// The value: read by a value scan, or the transaction's own pending write (also in a
    /// key-only page: it is at hand).
    value: Option<Vec<u8>>,
    /// The commit that wrote it; `None` for the transaction's own write.
    version: Option<Version>,
}

/// What one step of a [`Cursor`] gives without waiting.
enum Step {
    Entry(Vec<u8>, Held),
    End,
    Refill,
}

/// A key with its value, if the value was asked for.
type Polled<K, V> = (K, Option<V>);

/// A row whose key decoded as `K`: the key, its encoding, and what the page held of it.
type Decoded<K> = (K, Vec<u8>, Held);

impl<E: Engine, K, V> std::fmt::Debug for RangeStream<'_, E, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RangeStream");
        self.pager.fields(&mut d);
        d.field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<E: Engine, K, V> std::fmt::Debug for RowStream<'_, E, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RowStream");
        self.pager.fields(&mut d);
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

    /// The next key only (its value is not decoded; the page read it, though: for keys
    /// without values read from the engine, use [`RangeQuery::keys`] or
    /// [`RangeQuery::rows`]).
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
        let (key, _, held) = match std::task::ready!(self.pager.poll_row::<K>(cx)) {
            Ok(Some(row)) => row,
            Ok(None) => return Poll::Ready(Ok(None)),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if !values {
            return Poll::Ready(Ok(Some((key, None))));
        }
        // A value scan's pages hold every value (`Cursor::values`).
        let value = match held.value.as_deref().map(decode_value) {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Poll::Ready(Err(e)),
            None => {
                return Poll::Ready(Err(Error::InvalidArgument(
                    "the engine's scan returned a row without its value".into(),
                )));
            }
        };
        Poll::Ready(Ok(Some((key, Some(value)))))
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
                this.pager.end();
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl<'t, E: Engine, K: DeserializeOwned, V> RowStream<'t, E, K, V> {
    /// The next row, `Ok(None)` at the end. Keys of other types are skipped.
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
    /// # let written = txn.commit().await?;
    /// let txn = store.snapshot();
    /// let mut rows = txn.range::<u32, String>(0, 30..).rows();
    /// let row = rows.next().await?.expect("row 30");
    /// assert_eq!((row.key, row.version), (30, Some(written)));
    /// assert!(rows.next().await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Result<Option<LazyRow<'t, E, K, V>>> {
        std::future::poll_fn(|cx| self.poll_row(cx)).await
    }

    fn poll_row(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<LazyRow<'t, E, K, V>>>> {
        let (key, encoded, held) = match std::task::ready!(self.pager.poll_row::<K>(cx)) {
            Ok(Some(row)) => row,
            Ok(None) => return Poll::Ready(Ok(None)),
            Err(e) => return Poll::Ready(Err(e)),
        };
        let Some(cursor) = &self.pager.cursor else {
            return Poll::Ready(Ok(None));
        };
        Poll::Ready(Ok(Some(LazyRow {
            key,
            version: held.version,
            txn: cursor.txn,
            slot: cursor.slot,
            encoded,
            own: held.value,
            _value: PhantomData,
        })))
    }
}

impl<'t, E, K, V> futures_core::Stream for RowStream<'t, E, K, V>
where
    E: Engine,
    K: DeserializeOwned,
{
    type Item = Result<LazyRow<'t, E, K, V>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is `Unpin` (the fetch is boxed).
        let this = self.get_mut();
        match std::task::ready!(this.poll_row(cx)) {
            Ok(row) => Poll::Ready(row.map(Ok)),
            Err(e) => {
                this.pager.end();
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl<'t, E: Engine> Pager<'t, E> {
    /// Polls for the next row whose key decodes as `K`.
    fn poll_row<K: DeserializeOwned>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Decoded<K>>>> {
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
                Ok(Step::Entry(k, held)) => {
                    let Ok(key) = decode_key::<K>(&k) else {
                        continue; // a key of another type
                    };
                    cursor.count();
                    return Poll::Ready(Ok(Some((key, k, held))));
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

    /// Ends the stream (after an error: a stream ends after its first).
    fn end(&mut self) {
        if let Some(c) = &mut self.cursor {
            c.exhausted = true;
            c.buf.clear();
        }
    }

    fn fields(&self, d: &mut std::fmt::DebugStruct<'_, '_>) {
        if let Some(c) = &self.cursor {
            d.field("slot", &c.slot)
                .field("reverse", &c.reverse)
                .field("remaining", &c.remaining)
                .field("values", &c.values)
                .field("buffered", &c.buf.len())
                .field("exhausted", &c.exhausted);
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
        if let Some((k, held)) = self.buf.pop_front() {
            return Ok(Step::Entry(k, held));
        }
        if self.exhausted {
            return Ok(Step::End);
        }
        Ok(Step::Refill)
    }

    /// Fetches the next page from the engine (values, or keys only) and overlays the
    /// transaction's own writes on the key interval that page covers.
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
        let (engine, slot, at) = (self.txn.engine(), self.slot, self.txn.snapshot_seq());
        let page: Vec<(Vec<u8>, Held)> = if self.values {
            let entries = engine.scan(slot, &range, at, self.reverse, want).await?;
            let held = |e: crate::Entry| {
                let (value, version) = (Some(e.value), Some(e.version));
                (e.key, Held { value, version })
            };
            entries.into_iter().map(held).collect()
        } else {
            let keys = engine
                .scan_keys(slot, &range, at, self.reverse, want)
                .await?;
            let held = |(key, version): (Vec<u8>, Version)| {
                let version = Some(version);
                (
                    key,
                    Held {
                        value: None,
                        version,
                    },
                )
            };
            keys.into_iter().map(held).collect()
        };
        let last = page.last().map(|(k, _)| k.clone());
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
        let fresh: Vec<(Vec<u8>, Held)> = {
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
                page
            } else {
                // Keys of ranges this transaction removed are gone, unless it wrote them since.
                let mut merged: BTreeMap<Vec<u8>, Held> = page
                    .into_iter()
                    .filter(|(k, _)| !(removed && self.txn.in_removed_range(slot, k)))
                    .collect();
                for ((_, k), v) in own {
                    match v {
                        Some(v) => merged.insert(
                            k.clone(),
                            Held {
                                value: Some(v.clone()),
                                version: None,
                            },
                        ),
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

    /// Compiles only if key-only and value-lazy scans, and a lazy row's value, are `Send`
    /// futures natively, so that the tasks of a multi-threaded runtime can await them.
    #[cfg(not(target_arch = "wasm32"))]
    #[expect(dead_code, reason = "a compile-time check: type-checked, never run")]
    fn scans_are_send<E: Engine>(txn: &Transaction<E>) {
        fn send<T: Send>(_: &T) {}
        send(&txn.range::<u32, String>(0, ..).keys());
        let mut rows = txn.range::<u32, String>(0, ..).rows();
        send(&rows);
        let lazy = async move {
            if let Ok(Some(row)) = rows.next().await {
                let _ = row.value().await;
            }
        };
        send(&lazy);
    }

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
