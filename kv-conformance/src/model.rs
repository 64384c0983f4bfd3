//! The reference model of a store: every committed version of every key (values and
//! removals) in a `BTreeMap`, with the merge rule, and a checker that compares a real store
//! against it through the typed API.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use kv_api::{Engine, Error, MaybeSend, Slot, Store, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One key's versions, oldest first: `(seq, value or None for a removal)`.
pub type KeyVersions<V> = Vec<(u64, Option<V>)>;

/// Committed history: per key, its versions `(seq, value or None for a removal)`, oldest first.
#[derive(Debug, Clone)]
pub struct Model<K, V> {
    versions: BTreeMap<(Slot, K), KeyVersions<V>>,
    last: u64,
    horizon: u64,
}

impl<K: Ord + Clone, V: Clone> Default for Model<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone, V: Clone> Model<K, V> {
    /// The empty store.
    pub fn new() -> Self {
        Model {
            versions: BTreeMap::new(),
            last: 0,
            horizon: 0,
        }
    }

    /// The last committed sequence number.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Versions below this were dropped by a merge (`snapshot_at` refuses them).
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// Records commit `seq` with its writes (`None` removes; of a key written twice, the
    /// last write counts, as in a transaction).
    pub fn commit(&mut self, seq: u64, writes: impl IntoIterator<Item = ((Slot, K), Option<V>)>) {
        for (key, value) in writes {
            let list = self.versions.entry(key).or_default();
            // A key written twice in one commit has one version: the last write.
            match list.last_mut() {
                Some(last) if last.0 == seq => last.1 = value,
                _ => list.push((seq, value)),
            }
        }
        self.last = self.last.max(seq);
    }

    /// Applies a merge that must keep the state at every version from `horizon` on: versions
    /// above it stay; of those at or below it only the newest, and only if it is a value.
    pub fn merge(&mut self, horizon: u64) {
        for list in self.versions.values_mut() {
            let newest_old = list.iter().rposition(|(seq, _)| *seq <= horizon);
            if let Some(i) = newest_old {
                let keep_it = list[i].1.is_some();
                let tail = list.split_off(i + 1);
                let head = list.pop().filter(|_| keep_it);
                list.clear();
                list.extend(head);
                list.extend(tail);
            }
        }
        self.versions.retain(|_, list| !list.is_empty());
        self.horizon = self.horizon.max(horizon);
    }

    /// The live key-value pairs as of commit `seq`.
    pub fn state_at(&self, seq: u64) -> BTreeMap<(Slot, K), V> {
        self.versions
            .iter()
            .filter_map(|(k, list)| {
                let (_, v) = list.iter().rev().find(|(s, _)| *s <= seq)?;
                Some((k.clone(), v.clone()?))
            })
            .collect()
    }

    /// The latest live value of a key.
    pub fn get(&self, slot: Slot, key: &K) -> Option<&V> {
        let list = self.versions.get(&(slot, key.clone()))?;
        list.last()?.1.as_ref()
    }

    /// The versions of a key, oldest first.
    pub fn versions(&self, slot: Slot, key: &K) -> &[(u64, Option<V>)] {
        self.versions
            .get(&(slot, key.clone()))
            .map_or(&[], Vec::as_slice)
    }

    /// Every key that has a version.
    pub fn keys(&self) -> impl Iterator<Item = &(Slot, K)> {
        self.versions.keys()
    }
}

/// Why a store did not match its [`Model`]: a read that failed, or one that returned
/// something else than the model. The damage cases accept the first (a typed error), never
/// the second.
#[derive(Debug)]
pub enum Mismatch {
    /// A read returned an error.
    Read {
        /// Which read.
        what: String,
        /// Its error.
        error: Error,
    },
    /// A read returned data (or a version list, a version) that differs from the model.
    Differs(String),
}

impl Mismatch {
    fn read(what: String, error: Error) -> Self {
        Mismatch::Read { what, error }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Read { what, error } => write!(f, "{what}: {error}"),
            Mismatch::Differs(message) => f.write_str(message),
        }
    }
}

/// Compares `store` with `model`: the latest state (point reads, version lists, values of
/// each version, a full scan per slot) for every key of `universe` and of the model; with
/// `full`, also `snapshot_at` of every version (or `VersionNotFound` below the merge horizon).
pub async fn check_store<E, K, V>(
    store: &Store<E>,
    model: &Model<K, V>,
    universe: &[(Slot, K)],
    full: bool,
) -> Result<(), String>
where
    E: Engine,
    K: Serialize + DeserializeOwned + Ord + Clone + Debug + MaybeSend + 'static,
    V: Serialize + DeserializeOwned + PartialEq + Clone + Debug + MaybeSend + 'static,
{
    compare(store, model, universe, full)
        .await
        .map_err(|m| m.to_string())
}

/// [`check_store`], telling a failed read from different data.
pub async fn compare<E, K, V>(
    store: &Store<E>,
    model: &Model<K, V>,
    universe: &[(Slot, K)],
    full: bool,
) -> Result<(), Mismatch>
where
    E: Engine,
    K: Serialize + DeserializeOwned + Ord + Clone + Debug + MaybeSend + 'static,
    V: Serialize + DeserializeOwned + PartialEq + Clone + Debug + MaybeSend + 'static,
{
    let snap = store.snapshot();
    let seq = snap.version().seq();
    if seq != model.last() {
        return Err(Mismatch::Differs(format!(
            "store is at version {seq}, model at {}",
            model.last()
        )));
    }
    let keys: BTreeSet<(Slot, K)> = universe
        .iter()
        .cloned()
        .chain(model.keys().cloned())
        .collect();
    let slots: BTreeSet<Slot> = keys.iter().map(|(s, _)| *s).collect();
    let mut times: BTreeMap<u64, u64> = BTreeMap::new();
    for (slot, key) in &keys {
        let got: Option<V> = snap
            .get(*slot, key)
            .await
            .map_err(|e| Mismatch::read(format!("get({slot}, {key:?})"), e))?;
        let want = model.get(*slot, key).cloned();
        if got != want {
            return Err(Mismatch::Differs(format!(
                "get({slot}, {key:?}) = {got:?}, model says {want:?}"
            )));
        }
        let versions = snap
            .versions(*slot, key)
            .await
            .map_err(|e| Mismatch::read(format!("versions({slot}, {key:?})"), e))?;
        let got: Vec<(u64, bool)> = versions.iter().map(|v| (v.seq(), v.is_removal())).collect();
        let want: Vec<(u64, bool)> = model
            .versions(*slot, key)
            .iter()
            .map(|(s, v)| (*s, v.is_none()))
            .collect();
        if got != want {
            return Err(Mismatch::Differs(format!(
                "versions({slot}, {key:?}) = {got:?} (seq, is_removal), model says {want:?}"
            )));
        }
        for v in &versions {
            if let Some(t) = times.insert(v.seq(), v.time_ms())
                && t != v.time_ms()
            {
                return Err(Mismatch::Differs(format!(
                    "commit {} has two times: {t} and {}",
                    v.seq(),
                    v.time_ms()
                )));
            }
        }
        for (v, (_, want)) in versions.iter().zip(model.versions(*slot, key)) {
            let got: Option<V> = snap
                .get_version(*slot, key, *v)
                .await
                .map_err(|e| Mismatch::read(format!("get_version({slot}, {key:?}, {v})"), e))?;
            if &got != want {
                return Err(Mismatch::Differs(format!(
                    "get_version({slot}, {key:?}, {v}) = {got:?}, model says {want:?}"
                )));
            }
        }
    }
    let mut prev = 0;
    for (seq, t) in &times {
        if *t < prev {
            return Err(Mismatch::Differs(format!(
                "commit time goes back at version {seq}: {t} < {prev}"
            )));
        }
        prev = *t;
    }
    let latest = model.state_at(model.last());
    for slot in &slots {
        let got: Vec<(K, V)> = snap
            .range::<K, V>(*slot, ..)
            .await
            .map_err(|e| Mismatch::read(format!("range({slot}, ..)"), e))?;
        let want: Vec<(K, V)> = latest
            .iter()
            .filter(|((s, _), _)| s == slot)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        if got != want {
            return Err(Mismatch::Differs(format!(
                "range({slot}, ..) = {got:?}, model says {want:?}"
            )));
        }
    }
    drop(snap);
    if full {
        check_history(store, model, &slots).await?;
    }
    Ok(())
}

/// `snapshot_at` of every version equals the model's state at it (or is `VersionNotFound`
/// below the merge horizon); the version after the last is `VersionNotFound`.
async fn check_history<E, K, V>(
    store: &Store<E>,
    model: &Model<K, V>,
    slots: &BTreeSet<Slot>,
) -> Result<(), Mismatch>
where
    E: Engine,
    K: Serialize + DeserializeOwned + Ord + Clone + Debug + MaybeSend + 'static,
    V: Serialize + DeserializeOwned + PartialEq + Clone + Debug + MaybeSend + 'static,
{
    for seq in 0..=model.last() {
        let at = store.snapshot_at(Version::new(seq, 0)).await;
        if seq < model.horizon() {
            match at {
                Err(Error::VersionNotFound { .. }) => continue,
                Err(e) => {
                    return Err(Mismatch::read(
                        format!("snapshot_at({seq}) below the merge horizon"),
                        e,
                    ));
                }
                Ok(_) => {
                    return Err(Mismatch::Differs(format!(
                        "snapshot_at({seq}) succeeded, but a merge at {} dropped it",
                        model.horizon()
                    )));
                }
            }
        }
        let snap = at.map_err(|e| Mismatch::read(format!("snapshot_at({seq})"), e))?;
        if snap.version().seq() != seq {
            return Err(Mismatch::Differs(format!(
                "snapshot_at({seq}) reads at {}",
                snap.version().seq()
            )));
        }
        let state = model.state_at(seq);
        for slot in slots {
            let got: Vec<(K, V)> = snap
                .range::<K, V>(*slot, ..)
                .await
                .map_err(|e| Mismatch::read(format!("snapshot_at({seq}).range({slot}, ..)"), e))?;
            let want: Vec<(K, V)> = state
                .iter()
                .filter(|((s, _), _)| s == slot)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            if got != want {
                return Err(Mismatch::Differs(format!(
                    "snapshot_at({seq}).range({slot}, ..) = {got:?}, model says {want:?}"
                )));
            }
        }
    }
    match store.snapshot_at(Version::new(model.last() + 1, 0)).await {
        Err(Error::VersionNotFound { .. }) => Ok(()),
        Err(e) => Err(Mismatch::read(
            "snapshot_at(last + 1), expected VersionNotFound".into(),
            e,
        )),
        Ok(_) => Err(Mismatch::Differs(
            "snapshot_at(last + 1) succeeded for a version not committed".into(),
        )),
    }
}
