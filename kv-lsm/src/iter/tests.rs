//! Merging and visibility against a model, over every kind of source.

use std::sync::Arc;

use kv_api::Version;
use kv_backends::MemoryStorage;

use super::{Merger, Source, Visible};
use crate::cache::BlockCache;
use crate::key::{OwnedEntry, Seek, cmp_ikey};
use crate::levels::LevelSet;
use crate::memtable::Memtable;
use crate::sstable::Table;
use crate::testing::{STORE, rt, write_table};

/// Keys that often share their first 8 bytes (or are short), so that comparisons need
/// more than the cached prefixes.
fn key(i: u64) -> Vec<u8> {
    match i % 3 {
        0 => format!("\x01common-{i:05}").into_bytes(),
        1 => format!("\x01c{i}").into_bytes(),
        _ => {
            let mut k = format!("\x01common-{:05}", i - 2).into_bytes();
            k.push(0);
            k
        }
    }
}

async fn table(storage: &MemoryStorage, id: u64, es: &[OwnedEntry]) -> Arc<Table<MemoryStorage>> {
    let meta = write_table(storage, id, es, 200).await;
    Arc::new(Table::new(meta, storage.clone(), STORE))
}

/// Merging and reducing versions spread over a memtable, two overlapping tables and a level
/// of three tables agrees with a model, from any position, in both directions, at any
/// read version.
#[test]
fn merged_reads_agree_with_a_model() {
    rt().block_on(async {
        let mut rng = kv_conformance::Rng::new(7);
        let mut all: Vec<OwnedEntry> = Vec::new();
        let mut seq = 0;
        for i in 0..120u64 {
            for _ in 0..=rng.below(3) {
                seq += 1 + rng.below(3);
                all.push(OwnedEntry {
                    ukey: key(i),
                    seq,
                    time_ms: 1000 + seq,
                    value: (rng.below(4) != 0).then(|| vec![i as u8; rng.below(30) as usize]),
                    blob: false,
                });
            }
        }
        all.sort_by(|a, b| cmp_ikey(&a.ukey, a.seq, &b.ukey, b.seq));
        // Spread the versions: the level gets whole keys (its tables split between keys).
        let (mut mem, mut l0a, mut l0b, mut l1) = (vec![], vec![], vec![], vec![]);
        for e in &all {
            match (rng.below(4), e.ukey.len() % 2) {
                (0, _) => mem.push(e.clone()),
                (1, _) => l0a.push(e.clone()),
                (2, _) => l0b.push(e.clone()),
                _ => l1.push(e.clone()),
            }
        }
        let storage = MemoryStorage::new();
        let memtable = Memtable::new(1);
        for e in &mem {
            let (slot, k) = e.ukey.split_first().expect("slot");
            memtable.apply(
                Version::new(e.seq, e.time_ms),
                [(*slot, k, e.value.as_deref())],
            );
        }
        let third = l1.len() / 3;
        let cut = |at: usize| {
            let mut at = at;
            while at > 0 && at < l1.len() && l1[at].ukey == l1[at - 1].ukey {
                at += 1;
            }
            at.min(l1.len())
        };
        let (c1, c2) = (cut(third), cut(2 * third));
        let mut tables = vec![
            (0, table(&storage, 1, &l0a).await),
            (0, table(&storage, 2, &l0b).await),
        ];
        let mut id = 3;
        for part in [&l1[..c1], &l1[c1..c2], &l1[c2..]] {
            if !part.is_empty() {
                tables.push((1, table(&storage, id, part).await));
                id += 1;
            }
        }
        let levels = Arc::new(LevelSet::from_tables(tables));
        let mem = Arc::new(memtable);
        let cache = Arc::new(BlockCache::new(1 << 20));

        let mut targets: Vec<Vec<u8>> = (0..125u64).step_by(4).map(key).collect();
        targets.push(b"\x01".to_vec());
        targets.push(b"\x02".to_vec());
        for (n, target) in targets.iter().enumerate() {
            let ats = [0, seq / 3, seq / 2, seq, u64::MAX];
            let at = ats[n % ats.len()];
            for seek in [Seek::Start, Seek::End, Seek::Ge(target), Seek::Gt(target)] {
                for reverse in [false, true] {
                    for sequential in [false, true] {
                        let mut want: Vec<&OwnedEntry> = all
                            .iter()
                            .filter(|e| seek.is_before(&e.ukey, e.seq) == reverse)
                            .collect();
                        if reverse {
                            want.reverse();
                        }
                        // Every entry, in order.
                        let sources = Source::all([mem.clone()], &levels, &cache, sequential);
                        let mut m = Merger::new(sources, seek, reverse).await.expect("seek");
                        let mut got = Vec::new();
                        while let Some(e) = m.current() {
                            got.push(e.to_owned_entry());
                            m.next().await.expect("next");
                        }
                        let want_all: Vec<OwnedEntry> = want.iter().map(|e| (*e).clone()).collect();
                        assert_eq!(got, want_all, "{seek:?} reverse {reverse}");
                        // What a read at `at` sees.
                        let mut visible: Vec<OwnedEntry> = Vec::new();
                        for e in want.iter().filter(|e| e.seq <= at) {
                            match visible.last_mut() {
                                Some(last) if last.ukey == e.ukey => {
                                    if e.seq > last.seq {
                                        *last = (*e).clone();
                                    }
                                }
                                _ => visible.push((*e).clone()),
                            }
                        }
                        let sources = Source::all([mem.clone()], &levels, &cache, sequential);
                        let m = Merger::new(sources, seek, reverse).await.expect("seek");
                        let mut v = Visible::new(m, at);
                        let mut got = Vec::new();
                        while v.next().await.expect("next") {
                            got.push(v.entry().expect("entry").to_owned_entry());
                        }
                        assert_eq!(got, visible, "{seek:?} reverse {reverse} at {at}");
                        // A key-only read: the same versions, removals still `None`; in
                        // reverse no value is copied (the entries show them empty).
                        let sources = Source::all([mem.clone()], &levels, &cache, sequential);
                        let m = Merger::new(sources, seek, reverse).await.expect("seek");
                        let mut v = Visible::new(m, at).without_values();
                        let mut keys = Vec::new();
                        while v.next().await.expect("next") {
                            let e = v.entry().expect("entry");
                            assert!(!reverse || e.value.is_none_or(<[u8]>::is_empty));
                            keys.push((e.ukey.to_vec(), e.seq, e.time_ms, e.value.is_some()));
                        }
                        let want_keys: Vec<_> = visible
                            .iter()
                            .map(|e| (e.ukey.clone(), e.seq, e.time_ms, e.value.is_some()))
                            .collect();
                        assert_eq!(keys, want_keys, "keys only: {seek:?} {reverse} at {at}");
                    }
                }
            }
        }
    });
}
