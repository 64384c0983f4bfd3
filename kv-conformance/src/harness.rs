//! What every case uses: the engine family under test, an environment that opens stores on
//! the factory's storage, and small helpers.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use kv_api::{
    Engine, Location, MaybeSend, MaybeSync, Options, Result, Storage, StorageFile, Store,
};

use crate::StorageFactory;

/// An engine generic over its storage, such as `kv_bitcask::Bitcask` (written without `<S>`).
/// The suite needs the family, not one engine type, because the crash cases run the engine on
/// a [`crate::FaultyStorage`] wrapped around the factory's storage. [`crate::suite!`] writes
/// the impl.
pub trait EngineFamily: 'static {
    /// The engine on storage `S`.
    type Engine<S: Storage>: Engine<Storage = S>;
}

/// Where a case's store lives: a fresh one per [`Place::new`], handed out again by every
/// [`Place::location`] call (a reopen finds what the last store left). Every
/// [`StorageFactory`] is a place (its storage); an engine over a remote store (kv-etcd) has
/// places of its own (a fresh key prefix on a cluster). The cases that need no file of the
/// backend (no crash injection, no damage, no writer lock) run on any place.
#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
pub trait Place: Sized + MaybeSend + MaybeSync + 'static {
    /// What the engine opens.
    type Location: Location;

    /// The place's name (the backend's, for a storage factory).
    const NAME: &'static str;

    /// A fresh, empty place.
    fn new() -> Self;

    /// A handle on this place's data.
    async fn location(&self) -> Result<Self::Location>;
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl<F: StorageFactory> Place for F {
    type Location = F::Storage;
    const NAME: &'static str = <F as StorageFactory>::NAME;

    fn new() -> Self {
        <F as StorageFactory>::new()
    }

    async fn location(&self) -> Result<F::Storage> {
        self.storage().await
    }
}

/// The engine that family `Self` runs on place `F`: for an [`EngineFamily`] on a
/// [`StorageFactory`], the family's engine on the factory's storage; an engine over a remote
/// store implements it for its own place.
pub trait Runs<F: Place>: 'static {
    /// The engine.
    type Engine: Engine<Storage = F::Location>;
}

impl<E: EngineFamily, F: StorageFactory> Runs<F> for E {
    type Engine = E::Engine<F::Storage>;
}

/// The store type of family `E` on storage `S`.
pub type StoreOf<E, S> = Store<<E as EngineFamily>::Engine<S>>;

/// The store type of engine family `E` on place `F`.
pub type StoreOn<E, F> = Store<<E as Runs<F>>::Engine>;

/// A case's environment: one place (one "disk", or one prefix of a cluster) and the engine.
pub struct Env<E: Runs<F>, F: Place> {
    /// The storage factory, or the place.
    pub factory: F,
    _engine: PhantomData<fn() -> E>,
}

impl<E: Runs<F>, F: Place> Default for Env<E, F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Runs<F>, F: Place> Env<E, F> {
    /// Fresh, empty storage.
    pub fn new() -> Self {
        Env {
            factory: F::new(),
            _engine: PhantomData,
        }
    }

    /// A handle on the storage.
    pub async fn storage(&self) -> F::Location {
        self.factory
            .location()
            .await
            .expect("factory cannot open its storage")
    }

    /// Opens a store with default options, panicking on error.
    pub async fn open(&self) -> StoreOn<E, F> {
        self.try_open_with(Options::default())
            .await
            .expect("open store")
    }

    /// Opens a store with `options`, panicking on error.
    pub async fn open_with(&self, options: Options) -> StoreOn<E, F> {
        self.try_open_with(options).await.expect("open store")
    }

    /// Opens a store with `options`.
    pub async fn try_open_with(&self, options: Options) -> Result<StoreOn<E, F>> {
        Store::open_with(self.storage().await, options).await
    }

    /// Opens a store with `options` and the engine's knobs `tuning`, panicking on error.
    pub async fn open_tuned(
        &self,
        options: Options,
        tuning: <E::Engine as Engine>::Tuning,
    ) -> StoreOn<E, F> {
        Store::open_tuned(self.storage().await, options, tuning)
            .await
            .expect("open store")
    }

    /// Drops `store` and opens the same storage again (a clean restart), with the same
    /// options and engine knobs.
    pub async fn reopen(&self, store: StoreOn<E, F>) -> StoreOn<E, F> {
        let options = store.engine().options().clone();
        let tuning = store.engine().tuning().clone();
        drop(store);
        Store::open_tuned(self.storage().await, options, tuning)
            .await
            .expect("reopen store")
    }

    /// Runs `check` on `store`, then on the same storage reopened ([`Env::reopen`]): what a
    /// case checks must hold before and after a clean restart. Returns the reopened store.
    pub async fn before_and_after_reopen(
        &self,
        store: StoreOn<E, F>,
        mut check: impl AsyncFnMut(&StoreOn<E, F>),
    ) -> StoreOn<E, F> {
        check(&store).await;
        let store = self.reopen(store).await;
        check(&store).await;
        store
    }
}

/// Every file of `storage` with its whole contents, to compare storage states.
pub async fn dump<S: Storage>(storage: &S) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for name in storage.list().await? {
        let file = storage.open(&name).await?;
        let len = file.len().await?;
        let len = usize::try_from(len)
            .map_err(|_| kv_api::Error::InvalidArgument("file too large".into()))?;
        out.insert(name, file.read_at(0, len).await?);
    }
    Ok(out)
}

/// The offset of the last whole frame of file `name`, whose records start after its header:
/// the last record of a log (a transaction's commit record, or its single record), for the
/// engines' damage tests. `None` if the file holds no frame.
pub async fn last_frame<S: Storage>(storage: &S, name: &str) -> Result<Option<u64>> {
    let file = storage.open(name).await?;
    let buf = kv_engine_kit::files::read_all(&file, name).await?;
    let mut at = kv_engine_kit::header::LEN;
    let mut last = None;
    while let kv_engine_kit::frame::Decoded::Frame { next, .. } =
        kv_engine_kit::frame::decode(&buf, at)
    {
        last = Some(at as u64);
        at = next;
    }
    Ok(last)
}

/// Flips one bit of the byte at `offset` of file `name` in place, durably (media damage under
/// a store that may be open: its handles see it), for the engines' damage tests.
pub async fn flip_bit<S: Storage>(storage: &S, name: &str, offset: u64) -> Result<()> {
    let file = storage.open(name).await?;
    let len = file.len().await?;
    let rest_len = len
        .checked_sub(offset)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| kv_api::Error::InvalidArgument(format!("{name} ends before {offset}")))?;
    let mut rest = file.read_at(offset, rest_len).await?;
    if let Some(b) = rest.first_mut() {
        *b ^= 0x10;
    }
    file.truncate(offset).await?;
    file.append(&rest).await?;
    file.sync().await
}

/// Verifies `engine` ([`Engine::verify`]) and asserts a clean report (naming `when`) whose
/// progress never went back and ended complete. Returns the report.
pub async fn verify_clean<E: Engine>(engine: &E, when: &str) -> kv_api::VerifyReport {
    let seen = parking_lot::Mutex::new(Vec::<kv_api::Progress>::new());
    let report = engine.verify(&|p| seen.lock().push(p)).await;
    let report = report.unwrap_or_else(|e| panic!("{when}: verify failed: {e:?}"));
    assert!(
        report.is_clean(),
        "{when}: verify found damage in a sound store: {report:#?}"
    );
    assert_eq!(report.engine, E::NAME);
    let seen = seen.into_inner();
    let monotonic = seen
        .windows(2)
        .all(|w| w[0].stage != w[1].stage || w[0].done <= w[1].done);
    assert!(monotonic, "{when}: progress went back: {seen:?}");
    if let Some(last) = seen.last() {
        assert!(
            last.total == 0 || last.done >= last.total,
            "{when}: progress ended at {last:?}"
        );
    }
    report
}

/// A readable summary of a dump (names and lengths) for assertion messages.
pub fn dump_summary(dump: &BTreeMap<String, Vec<u8>>) -> Vec<(String, usize)> {
    dump.iter().map(|(n, d)| (n.clone(), d.len())).collect()
}

/// Unwraps a `Result`, panicking with the expression and the error.
macro_rules! must {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {:?}", stringify!($e), e),
        }
    };
}
pub(crate) use must;

/// Asserts that an expression matches a pattern, printing the value if it does not.
macro_rules! assert_matches {
    ($e:expr, $p:pat $(if $guard:expr)? $(,)?) => {
        match $e {
            $p $(if $guard)? => {}
            ref other => panic!(
                "{}: expected {}, got {:?}",
                stringify!($e),
                stringify!($p),
                other
            ),
        }
    };
    ($e:expr, $p:pat $(if $guard:expr)?, $($msg:tt)+) => {
        match $e {
            $p $(if $guard)? => {}
            ref other => panic!(
                "{}: expected {}, got {:?}: {}",
                stringify!($e),
                stringify!($p),
                other,
                format!($($msg)+)
            ),
        }
    };
}
pub(crate) use assert_matches;
