//! Typed slots: a slot number with its key and value types, checked by the compiler in every
//! call and against the store's catalog when a slot is opened.
//!
//! ```
//! use kv_api::SlotDef;
//! # #[derive(serde::Serialize, serde::Deserialize)]
//! # struct User { name: String }
//! const USERS: SlotDef<(String, u32), User> = SlotDef::new(1, "users");
//! # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
//! let mut txn = store.current();
//! txn.slot_mut(&USERS)?.insert(&("org1", 3), &User { name: "Ada".into() })?;
//! txn.commit().await?;
//!
//! let snap = store.snapshot();
//! let ada: Option<User> = snap.slot(&USERS)?.get(&("org1", 3)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Why a handle
//!
//! `txn.slot(&DEF)` / `txn.slot_mut(&DEF)` return a [`SlotHandle`] whose methods are those of
//! [`Transaction`] without the slot argument and with the types fixed, so a wrong key or value
//! type is a compile error, not a silent miss. It borrows the transaction (shared for
//! `slot`, exclusive for `slot_mut`, like `iter`/`iter_mut`), so read-only views need no
//! `mut`, and a one-line `txn.slot_mut(&A)?.insert(..)?` followed by
//! `txn.slot_mut(&B)?.insert(..)?` borrows nothing across statements. The catalog check runs
//! once per handle (an in-memory lookup), not once per call.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, RangeBounds};

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{decode_key, decode_value, encode_key};
use crate::range::{RangeQuery, encode_range};
use crate::{Engine, Error, KeyRange, Result, Slot, Transaction, Version};

/// The slot where the store keeps its catalog of typed slots: one entry per slot opened
/// through a [`SlotDef`], keyed by the slot number, naming the slot and its key and value
/// types. It is written in ordinary transactions, so it is versioned, transactional and
/// durable like any data, on every engine and backend. The untyped API may read it but
/// refuses to write it ([`Error::InvalidArgument`]), and no [`SlotDef`] may use it.
pub const CATALOG_SLOT: Slot = 255;

/// A slot with its key type `K`, value type `V` and a name, usable as a constant (in the
/// spirit of redb's `TableDefinition`). Open it in a transaction with
/// [`Transaction::slot`] (reads) or [`Transaction::slot_mut`] (reads and writes).
///
/// ```
/// use kv_api::SlotDef;
/// const COUNTERS: SlotDef<String, u64> = SlotDef::new(2, "counters");
/// assert_eq!((COUNTERS.slot(), COUNTERS.name()), (2, "counters"));
/// ```
///
/// The catalog records the name and the key and value type names
/// ([`std::any::type_name`]); opening the slot with other types (or another name) is
/// [`Error::SlotTypeMismatch`] until [`crate::Store::redefine_slot`] records the new
/// definition. Type names may change between compiler versions for the same type; if one
/// does, `redefine_slot` records the new name.
pub struct SlotDef<K, V> {
    slot: Slot,
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

/// A typed slot where a slot number is taken ([`crate::Store::watch`]).
///
/// ```
/// const NAMES: kv_api::SlotDef<u32, String> = kv_api::SlotDef::new(7, "names");
/// assert_eq!(kv_api::Slot::from(&NAMES), 7);
/// ```
impl<K, V> From<&SlotDef<K, V>> for Slot {
    fn from(def: &SlotDef<K, V>) -> Slot {
        def.slot
    }
}

impl<K, V> SlotDef<K, V> {
    /// The definition of slot `slot`, called `name`. Slot [`CATALOG_SLOT`] (255) is the
    /// store's own: opening a definition of it is [`Error::InvalidArgument`].
    ///
    /// ```
    /// const NAMES: kv_api::SlotDef<u32, String> = kv_api::SlotDef::new(0, "names");
    /// ```
    pub const fn new(slot: Slot, name: &'static str) -> Self {
        SlotDef {
            slot,
            name,
            _types: PhantomData,
        }
    }

    /// The slot number.
    ///
    /// ```
    /// const NAMES: kv_api::SlotDef<u32, String> = kv_api::SlotDef::new(7, "names");
    /// assert_eq!(NAMES.slot(), 7);
    /// ```
    pub const fn slot(&self) -> Slot {
        self.slot
    }

    /// The slot's name.
    ///
    /// ```
    /// const NAMES: kv_api::SlotDef<u32, String> = kv_api::SlotDef::new(7, "names");
    /// assert_eq!(NAMES.name(), "names");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// What the catalog records for this definition.
    pub(crate) fn info(&self) -> SlotInfo {
        SlotInfo {
            slot: self.slot,
            name: self.name.to_string(),
            key_type: std::any::type_name::<K>().to_string(),
            value_type: std::any::type_name::<V>().to_string(),
        }
    }

    /// `Ok` if `recorded` (the catalog's entry of this slot) is this definition.
    fn check(&self, recorded: &SlotInfo) -> Result<()> {
        let mismatch = |what, recorded: &str, requested: &str| Error::SlotTypeMismatch {
            slot: self.slot,
            name: self.name.to_string(),
            what,
            recorded: recorded.to_string(),
            requested: requested.to_string(),
        };
        if recorded.name != self.name {
            return Err(mismatch("name", &recorded.name, self.name));
        }
        let key = std::any::type_name::<K>();
        if recorded.key_type != key {
            return Err(mismatch("key type", &recorded.key_type, key));
        }
        let value = std::any::type_name::<V>();
        if recorded.value_type != value {
            return Err(mismatch("value type", &recorded.value_type, value));
        }
        Ok(())
    }

    fn reserved(&self) -> Result<()> {
        if self.slot == CATALOG_SLOT {
            return Err(Error::InvalidArgument(format!(
                "slot {CATALOG_SLOT} is the store's catalog; define {:?} in another slot",
                self.name
            )));
        }
        Ok(())
    }
}

impl<K, V> Clone for SlotDef<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for SlotDef<K, V> {}

impl<K, V> std::fmt::Debug for SlotDef<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotDef")
            .field("slot", &self.slot)
            .field("name", &self.name)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

/// A slot as the catalog records it: see [`crate::Store::slots`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// The slot number.
    pub slot: Slot,
    /// Its name.
    pub name: String,
    /// Its key type ([`std::any::type_name`]).
    pub key_type: String,
    /// Its value type ([`std::any::type_name`]).
    pub value_type: String,
}

/// A catalog entry as stored (the slot number is its key).
#[derive(Serialize, Deserialize)]
struct Record<'a> {
    name: Cow<'a, str>,
    key_type: Cow<'a, str>,
    value_type: Cow<'a, str>,
}

impl SlotInfo {
    /// The catalog entry's key and value.
    pub(crate) fn encode(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let record = Record {
            name: Cow::Borrowed(&self.name),
            key_type: Cow::Borrowed(&self.key_type),
            value_type: Cow::Borrowed(&self.value_type),
        };
        Ok((
            encode_key(&self.slot)?,
            crate::codec::encode_value(&record)?,
        ))
    }

    /// A catalog entry, `None` if it is none (bytes the untyped API wrote to slot 255 before
    /// it was reserved).
    fn decode(key: &[u8], value: &[u8]) -> Option<SlotInfo> {
        let slot = decode_key::<Slot>(key).ok()?;
        let record = decode_value::<Record<'static>>(value).ok()?;
        Some(SlotInfo {
            slot,
            name: record.name.into_owned(),
            key_type: record.key_type.into_owned(),
            value_type: record.value_type.into_owned(),
        })
    }
}

/// The catalog as of the latest commit, shared by a store and its transactions: loaded when
/// the store opens, updated by every commit that records a slot. (Only one store writes a
/// storage at a time, so this copy is the truth for the writer.)
#[derive(Default)]
pub(crate) struct Catalog {
    slots: RwLock<BTreeMap<Slot, SlotInfo>>,
    /// Whether the store holds expiry records (`crate::expiry`), kept here because the
    /// catalog is what a store shares with all its transactions.
    pub(crate) expiry: crate::expiry::ExpiryState,
}

impl Catalog {
    /// Reads the catalog slot of `engine` at its latest commit.
    pub(crate) async fn load<E: Engine>(engine: &E) -> Result<Catalog> {
        let catalog = Catalog {
            expiry: crate::expiry::ExpiryState::load(engine).await?,
            ..Catalog::default()
        };
        let found = catalog.refresh(engine).await?;
        catalog.record(found);
        Ok(catalog)
    }

    /// Reads the catalog slot at the latest commit. The copy in memory is replaced only on a
    /// read-only store (which sees the slots a writer beside it records): a writer's copy is
    /// kept up to date by its own commits, which a read racing with one could undo.
    pub(crate) async fn refresh<E: Engine>(&self, engine: &E) -> Result<Vec<SlotInfo>> {
        let at = engine.snapshot()?.seq();
        // At most 255 entries: one page.
        let entries = engine
            .scan(CATALOG_SLOT, &KeyRange::all(), at, false, 256)
            .await?;
        let found: BTreeMap<Slot, SlotInfo> = entries
            .iter()
            .filter_map(|e| SlotInfo::decode(&e.key, &e.value))
            .map(|info| (info.slot, info))
            .collect();
        let list = found.values().cloned().collect();
        if engine.options().read_only {
            *self.slots.write() = found;
        }
        Ok(list)
    }

    /// Checks `def` against the recorded entry; `Ok(true)` if the slot is not recorded yet.
    pub(crate) fn check<K, V>(&self, def: &SlotDef<K, V>) -> Result<bool> {
        match self.slots.read().get(&def.slot) {
            Some(recorded) => def.check(recorded).map(|()| false),
            None => Ok(true),
        }
    }

    pub(crate) fn record(&self, infos: Vec<SlotInfo>) {
        if infos.is_empty() {
            return;
        }
        let mut slots = self.slots.write();
        for info in infos {
            slots.insert(info.slot, info);
        }
    }
}

/// A borrowed form of key type `K` that the key codec encodes byte for byte as the `K` it
/// stands for, so a typed slot can be read and written without building an owned key:
/// `&str` for `String`, `(&str, u32)` for `(String, u32)`, `&[T]` for `Vec<T>`.
///
/// Implemented for the primitive types (each for itself), `str` and `&str` for `String`,
/// `Vec<Q>` and `[Q]` for `Vec<T>`, `Option<Q>` for `Option<T>`, tuples of up to eight
/// elements field by field, and references. For a key type of your own, implement it for
/// the type itself (`impl kv_api::KeyLike for MyKey {}`), and for another type only if it
/// serializes exactly as `MyKey` does (the same serde calls, in the same order).
///
/// ```
/// use kv_api::{KeyLike, codec::encode_key};
/// fn same<K: serde::Serialize, Q: KeyLike<K> + ?Sized>(owned: &K, borrowed: &Q) -> bool {
///     encode_key(owned).ok() == encode_key(borrowed).ok()
/// }
/// assert!(same(&("org1".to_string(), 3u32), &("org1", 3u32)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a key of type `{K}`",
    label = "the slot's keys are `{K}`",
    note = "a typed slot takes keys of its key type, or borrowed forms that encode identically (`KeyLike`)"
)]
pub trait KeyLike<K: ?Sized = Self>: Serialize {}

macro_rules! key_like_itself {
    ($($t:ty),*) => { $(impl KeyLike for $t {})* };
}
key_like_itself!(
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    ()
);

impl KeyLike<String> for str {}
impl<K: ?Sized, Q: KeyLike<K> + ?Sized> KeyLike<K> for &Q {}
impl<T, Q: KeyLike<T>> KeyLike<Vec<T>> for Vec<Q> {}
impl<T, Q: KeyLike<T>> KeyLike<Vec<T>> for [Q] {}
impl<T, Q: KeyLike<T>> KeyLike<Option<T>> for Option<Q> {}

macro_rules! key_like_tuple {
    ($(($t:ident, $q:ident)),+) => {
        impl<$($t, $q: KeyLike<$t>),+> KeyLike<($($t,)+)> for ($($q,)+) {}
    };
}
key_like_tuple!((A, QA));
key_like_tuple!((A, QA), (B, QB));
key_like_tuple!((A, QA), (B, QB), (C, QC));
key_like_tuple!((A, QA), (B, QB), (C, QC), (D, QD));
key_like_tuple!((A, QA), (B, QB), (C, QC), (D, QD), (E, QE));
key_like_tuple!((A, QA), (B, QB), (C, QC), (D, QD), (E, QE), (F, QF));
key_like_tuple!(
    (A, QA),
    (B, QB),
    (C, QC),
    (D, QD),
    (E, QE),
    (F, QF),
    (G, QG)
);
key_like_tuple!(
    (A, QA),
    (B, QB),
    (C, QC),
    (D, QD),
    (E, QE),
    (F, QF),
    (G, QG),
    (H, QH)
);

/// A transaction opened on one typed slot: [`Transaction::slot`] gives one that reads
/// (`T = &Transaction`), [`Transaction::slot_mut`] one that also writes
/// (`T = &mut Transaction`). Its methods are the transaction's, without the slot argument and
/// with the key type `K` and value type `V` of the [`SlotDef`]; keys may be passed in any
/// form that encodes as `K` ([`KeyLike`]).
pub struct SlotHandle<T, K, V> {
    txn: T,
    slot: Slot,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<T, K, V> std::fmt::Debug for SlotHandle<T, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotHandle")
            .field("slot", &self.slot)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl<E: Engine> Transaction<E> {
    /// Opens the typed slot `def` for reading: [`Error::SlotTypeMismatch`] if the catalog
    /// records other types for it, [`Error::InvalidArgument`] for slot [`CATALOG_SLOT`].
    /// A slot the catalog does not know yet opens (and reads nothing).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// const USERS: kv_db::SlotDef<(String, u32), String> = kv_db::SlotDef::new(1, "users");
    /// # let mut txn = store.current();
    /// # txn.slot_mut(&USERS)?.insert(&("org1", 3), &"Ada".to_string())?;
    /// # txn.commit().await?;
    /// let snap = store.snapshot();
    /// let users = snap.slot(&USERS)?;
    /// let name: Option<String> = users.get(&("org1", 3)).await?; // borrowed key: &str
    /// assert_eq!(name.as_deref(), Some("Ada"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn slot<K, V>(&self, def: &SlotDef<K, V>) -> Result<SlotHandle<&Self, K, V>> {
        self.check_slot(def)?;
        Ok(SlotHandle {
            txn: self,
            slot: def.slot,
            _types: PhantomData,
        })
    }

    /// Opens the typed slot `def` for reading and writing. Checks it as [`Self::slot`] does,
    /// and if the catalog does not know the slot yet, records it with this transaction's
    /// commit (so two transactions that both record a new slot conflict, as any two writes of
    /// one key do).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// const USERS: kv_db::SlotDef<(String, u32), String> = kv_db::SlotDef::new(1, "users");
    /// let mut txn = store.current();
    /// txn.slot_mut(&USERS)?.insert(&("org1", 3), &"Ada".to_string())?;
    /// txn.commit().await?;
    /// assert_eq!(store.slots().await?[0].name, "users"); // recorded in the catalog
    /// # Ok(())
    /// # }
    /// ```
    pub fn slot_mut<K, V>(&mut self, def: &SlotDef<K, V>) -> Result<SlotHandle<&mut Self, K, V>> {
        if self.check_slot(def)? {
            self.check_write("slot_mut")?;
            self.record_slot(def.info())?;
        }
        Ok(SlotHandle {
            txn: self,
            slot: def.slot,
            _types: PhantomData,
        })
    }

    /// Records `def` in the catalog with this transaction's commit, whatever it recorded
    /// before ([`crate::Store::redefine_slot`] in a transaction of your own, to rewrite the
    /// slot's values in the same commit).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// const OLD: kv_db::SlotDef<u32, u32> = kv_db::SlotDef::new(4, "scores");
    /// const NEW: kv_db::SlotDef<u32, u64> = kv_db::SlotDef::new(4, "scores");
    /// # let mut txn = store.current();
    /// # txn.slot_mut(&OLD)?.insert(&1, &7)?;
    /// # txn.commit().await?;
    /// let mut txn = store.current();
    /// let old = txn.slot(&OLD)?.all().await?;
    /// txn.redefine_slot(&NEW)?;
    /// let mut scores = txn.slot_mut(&NEW)?;
    /// for (k, v) in old {
    ///     scores.insert(&k, &u64::from(v))?;
    /// }
    /// txn.commit().await?;
    /// assert_eq!(store.snapshot().slot(&NEW)?.get(&1).await?, Some(7u64));
    /// # Ok(())
    /// # }
    /// ```
    pub fn redefine_slot<K, V>(&mut self, def: &SlotDef<K, V>) -> Result<()> {
        self.check()?;
        def.reserved()?;
        self.record_slot(def.info())
    }

    /// Checks `def` against this transaction's own catalog writes, else the store's catalog;
    /// `Ok(true)` if neither records the slot.
    fn check_slot<K, V>(&self, def: &SlotDef<K, V>) -> Result<bool> {
        self.check()?;
        def.reserved()?;
        match self.catalog_writes.iter().rfind(|i| i.slot == def.slot) {
            Some(own) => def.check(own).map(|()| false),
            None => self.catalog.check(def),
        }
    }
}

impl<E, T, K, V> SlotHandle<T, K, V>
where
    E: Engine,
    T: Deref<Target = Transaction<E>>,
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The value of `key`, `None` if absent or removed ([`Transaction::get`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let name = txn.slot(&USERS)?.get(&("org1", 3)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get<Q: KeyLike<K> + ?Sized>(&self, key: &Q) -> Result<Option<V>> {
        self.txn.get(self.slot, key).await
    }

    /// The values of `keys`, in their order ([`Transaction::get_many`]): one batched read.
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let names = txn.slot(&USERS)?.get_many(&[("org1", 3), ("org2", 1)]).await?;
    /// assert_eq!(names.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_many<Q: KeyLike<K>>(&self, keys: &[Q]) -> Result<Vec<Option<V>>> {
        self.txn.get_many(self.slot, keys).await
    }

    /// The latest value of `key` that was not a removal ([`Transaction::get_unremoved`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let last_name = txn.slot(&USERS)?.get_unremoved(&("org1", 3)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_unremoved<Q: KeyLike<K> + ?Sized>(&self, key: &Q) -> Result<Option<V>> {
        self.txn.get_unremoved(self.slot, key).await
    }

    /// Every committed version of `key`, oldest first ([`Transaction::versions`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let users = txn.slot(&USERS)?;
    /// for v in users.versions(&("org1", 3)).await? {
    ///     println!("{v:?}: {:?}", users.get_version(&("org1", 3), v).await?);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn versions<Q: KeyLike<K> + ?Sized>(&self, key: &Q) -> Result<Vec<Version>> {
        self.txn.versions(self.slot, key).await
    }

    /// The value `key` had in commit `version` ([`Transaction::get_version`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let users = txn.slot(&USERS)?;
    /// if let Some(first) = users.versions(&("org1", 3)).await?.first() {
    ///     let original = users.get_version(&("org1", 3), *first).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_version<Q: KeyLike<K> + ?Sized>(
        &self,
        key: &Q,
        version: Version,
    ) -> Result<Option<V>> {
        self.txn.get_version(self.slot, key, version).await
    }

    /// Entries whose keys lie in `range`, in `K`'s order ([`Transaction::range`]); the bounds
    /// may be borrowed forms of `K`. An inverted range is [`Error::InvalidArgument`].
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let org1: Vec<((String, u32), String)> =
    ///     txn.slot(&USERS)?.range(("org1", 0)..("org1", 100)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn range<Q: KeyLike<K>>(&self, range: impl RangeBounds<Q>) -> RangeQuery<'_, E, K, V> {
        RangeQuery::new(&self.txn, self.slot, encode_range(&range))
    }

    /// Every entry of the slot, in `K`'s order.
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let newest_ten = txn.slot(&USERS)?.all().reverse().limit(10).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn all(&self) -> RangeQuery<'_, E, K, V> {
        RangeQuery::new(&self.txn, self.slot, Ok(KeyRange::all()))
    }

    /// Entries whose keys start with `prefix` ([`Transaction::prefix`]): for a tuple key, its
    /// leading fields.
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let org1 = txn.slot(&USERS)?.prefix(&("org1",)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix<P: Serialize + ?Sized>(&self, prefix: &P) -> RangeQuery<'_, E, K, V> {
        self.txn.prefix(self.slot, prefix)
    }

    /// Every live key of the slot, in `K`'s order ([`Transaction::keys`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let ids: Vec<(String, u32)> = txn.slot(&USERS)?.keys().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn keys(&self) -> Result<Vec<K>>
    where
        K: crate::MaybeSend,
    {
        self.txn.keys(self.slot).await
    }
}

impl<E, T, K, V> SlotHandle<T, K, V>
where
    E: Engine,
    T: DerefMut<Target = Transaction<E>>,
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Sets `key` to `value` (buffered until commit; [`Transaction::insert`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # fn demo(mut txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// txn.slot_mut(&USERS)?.insert(&("org1", 3), &"Ada".to_string())?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert<Q: KeyLike<K> + ?Sized>(&mut self, key: &Q, value: &V) -> Result<()> {
        self.txn.insert_unchecked(self.slot, key, value)
    }

    /// Removes `key` (buffered until commit; [`Transaction::remove`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # fn demo(mut txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// txn.slot_mut(&USERS)?.remove(&("org1", 3))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove<Q: KeyLike<K> + ?Sized>(&mut self, key: &Q) -> Result<()> {
        self.txn.remove_unchecked(self.slot, key)
    }

    /// Sets `key` to `value`, expiring `ttl` from now ([`Transaction::insert_with_ttl`]).
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # fn demo(mut txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let ttl = std::time::Duration::from_secs(3600);
    /// txn.slot_mut(&USERS)?.insert_with_ttl(&("org1", 3), &"Ada".to_string(), ttl)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert_with_ttl<Q: KeyLike<K> + ?Sized>(
        &mut self,
        key: &Q,
        value: &V,
        ttl: std::time::Duration,
    ) -> Result<()> {
        self.txn.insert_ttl_unchecked(self.slot, key, value, ttl)
    }

    /// Removes every key in `range` ([`Transaction::remove_range`]); returns how many live
    /// keys it removed.
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(mut txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let removed = txn.slot_mut(&USERS)?.remove_range(("org1", 0)..("org1", 100)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove_range<Q: KeyLike<K>>(
        &mut self,
        range: impl RangeBounds<Q>,
    ) -> Result<usize> {
        self.txn.remove_range(self.slot, range).await
    }

    /// Removes every key that starts with `prefix` ([`Transaction::remove_prefix`]); returns
    /// how many live keys it removed.
    ///
    /// ```
    /// # const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// # async fn demo(mut txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let removed = txn.slot_mut(&USERS)?.remove_prefix(&("org1",)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove_prefix<P: Serialize + ?Sized>(&mut self, prefix: &P) -> Result<usize> {
        self.txn.remove_prefix(self.slot, prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same<K: Serialize + ?Sized, Q: KeyLike<K> + ?Sized>(owned: &K, borrowed: &Q) {
        assert_eq!(
            encode_key(owned).unwrap(),
            encode_key(borrowed).unwrap(),
            "{} and {} encode differently",
            std::any::type_name::<K>(),
            std::any::type_name::<Q>()
        );
    }

    #[test]
    fn borrowed_keys_encode_as_owned_ones() {
        same(&"org1".to_string(), "org1");
        same(&"org1".to_string(), &"org1");
        same(&("org1".to_string(), 3u32), &("org1", 3));
        same(&("a".to_string(), "b".to_string()), &("a", "b"));
        same(&vec![1u8, 2, 3], &[1u8, 2, 3][..]);
        same(&vec!["x".to_string()], &vec!["x"]);
        same(&vec!["x".to_string()], &["x"][..]);
        same(&Some("x".to_string()), &Some("x"));
        same(&None::<String>, &None::<&str>);
        same(&(1u8, -2i64, 'c', true), &(1u8, -2i64, 'c', true));
        same(&(("a".to_string(), 1u16), 2u64), &(("a", 1u16), 2u64));
        same(&usize::MAX, &usize::MAX);
    }

    #[test]
    fn records_round_trip_and_foreign_bytes_are_no_record() {
        let info = SlotDef::<(String, u32), Vec<u8>>::new(3, "users").info();
        let (k, v) = info.encode().unwrap();
        assert_eq!(SlotInfo::decode(&k, &v), Some(info));
        assert_eq!(SlotInfo::decode(&encode_key("x").unwrap(), &v), None);
        assert_eq!(SlotInfo::decode(&k, &[1, 2]), None);
    }

    #[test]
    fn definitions_check_name_and_types() {
        const A: SlotDef<String, u32> = SlotDef::new(1, "a");
        let recorded = A.info();
        assert!(A.check(&recorded).is_ok());
        let other_key = SlotDef::<u32, u32>::new(1, "a");
        assert!(matches!(
            other_key.check(&recorded),
            Err(Error::SlotTypeMismatch {
                what: "key type",
                ..
            })
        ));
        let other_value = SlotDef::<String, i32>::new(1, "a");
        assert!(matches!(
            other_value.check(&recorded),
            Err(Error::SlotTypeMismatch {
                what: "value type",
                ..
            })
        ));
        let renamed = SlotDef::<String, u32>::new(1, "b");
        assert!(matches!(
            renamed.check(&recorded),
            Err(Error::SlotTypeMismatch { what: "name", .. })
        ));
        assert!(matches!(
            SlotDef::<u8, u8>::new(CATALOG_SLOT, "x").reserved(),
            Err(Error::InvalidArgument(_))
        ));
    }
}
