//! Measurements for issue #17 (ignored by default; they print numbers, and a loaded machine
//! slows any of them):
//!
//! ```text
//! cargo test --release --test batch_reads_and_compression -- --ignored --nocapture --test-threads 1
//! ```
//!
//! * `lsm_space_per_codec`: bytes on disk of 100 000 JSON-like text values on the file
//!   backend, after a flush and a merge (full compaction), per block codec.
//! * `get_many_against_gets`: 1000 random keys read with one `get_many` against 1000 `get`s,
//!   on both engines (file backend, 100 000 keys): cold (a reopened store), warm (every key
//!   read before), and warm with the keys drawn from 4000 neighbours (dense: keys share
//!   blocks); through the typed API (`Transaction::get_many` against `Transaction::get`,
//!   values decoded) and through the engine alone (`Engine::get_many` against `Engine::get`).
//!   Each figure is the median of 50 rounds; which way goes first alternates.
//! * `keys_against_scan`: the 100 000 keys of the same store listed by a key-only scan
//!   (`RangeQuery::keys`) against the keys of a full scan (`RangeQuery` awaited, values
//!   decoded), first after a reopen (cold) or after the other (warm), medians of 7, on both
//!   engines.

use std::time::{Duration, Instant};

use kv_db::backends::FileStorage;
use kv_db::{Engine, Options, Result, Store};
use kv_lsm::{Compression, Lsm, LsmOptions};

const KEYS: u32 = 100_000;

fn key(i: u32) -> String {
    format!("user:{i:08}")
}

/// A JSON-like document of about 200 bytes, as an application would store.
fn doc(i: u32) -> String {
    format!(
        "{{\"id\":{i},\"name\":\"user {i}\",\"email\":\"user{i}@example.com\",\"age\":{},\
         \"city\":\"{}\",\"tags\":[\"alpha\",\"beta\"],\"active\":{},\"score\":{}.{}}}",
        18 + i % 60,
        ["Paris", "Berlin", "Lisbon", "Oslo", "Rome"][(i % 5) as usize],
        i.is_multiple_of(3),
        (i.wrapping_mul(2_654_435_761)) % 1000,
        i % 10
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn fill<E: Engine>(store: &Store<E>) -> Result<()> {
    for chunk in 0..KEYS / 1000 {
        let mut txn = store.current();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            txn.insert(0, &key(i), doc(i))?;
        }
        txn.commit().await?;
    }
    store.flush().await?;
    store.merge().await
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn lsm_space_per_codec() -> Result<()> {
    rt().block_on(async {
        let raw: usize = (0..KEYS).map(|i| key(i).len() + doc(i).len()).sum();
        println!("{KEYS} JSON-like values, {raw} bytes of keys and values");
        let mut sizes = Vec::new();
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let dir = tempfile::tempdir().map_err(|e| kv_db::Error::io("tempdir", e))?;
            let tuning = LsmOptions::default().compression(c);
            let store = Store::<Lsm<FileStorage>>::open_tuned(
                FileStorage::open(dir.path()).await?,
                Options::default(),
                tuning,
            )
            .await?;
            let start = Instant::now();
            fill(&store).await?;
            let took = start.elapsed();
            let probe = (0..KEYS).step_by(997).map(key).collect::<Vec<_>>();
            let values = store.snapshot().get_many::<_, String>(0, &probe).await?;
            assert!(values.iter().all(Option::is_some));
            let bytes = store.stats().await?.bytes_on_storage;
            store.close().await?;
            println!("{c:?}: {bytes} bytes on disk (write + merge {took:.2?})");
            sizes.push(bytes);
        }
        assert!(sizes[1] < sizes[0] && sizes[2] < sizes[0], "{sizes:?}");
        Ok(())
    })
}

/// A generator of 1000 random key indexes per call: from all `KEYS`, or with `window`, from
/// that many consecutive keys at a random place (neighbours share blocks).
fn key_draws(window: Option<u32>) -> impl FnMut() -> Vec<u32> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    move || {
        let (base, span) = match window {
            Some(w) => ((next() % u64::from(KEYS - w)) as u32, w),
            None => (0, KEYS),
        };
        (0..1000)
            .map(|_| base + (next() % u64::from(span)) as u32)
            .collect()
    }
}

/// The median of per-round times (robust to the spikes of a shared machine).
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Times `rounds` rounds of 1000 random keys (see [`key_draws`]) each way: the medians of
/// (a loop of gets, one get_many). Each way reads its own keys, so neither warms the cache
/// for the other; which goes first alternates. Through the typed API (`encoded` `None`:
/// `Transaction::get` of `String` values) or the engine alone (`Engine::get` of the encoded
/// keys, by key index).
async fn time_reads<E: Engine>(
    store: &Store<E>,
    encoded: Option<&[Vec<u8>]>,
    rounds: u32,
    window: Option<u32>,
) -> Result<(Duration, Duration)> {
    let mut draw = key_draws(window);
    let (mut loop_times, mut batch_times) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (for_batch, for_loop) = (draw(), draw());
        let snap = store.snapshot();
        for batch_now in [round % 2 == 0, round % 2 == 1] {
            match encoded {
                None => {
                    if batch_now {
                        let keys: Vec<String> = for_batch.iter().map(|&i| key(i)).collect();
                        let start = Instant::now();
                        let many = snap.get_many::<_, String>(0, &keys).await?;
                        batch_times.push(start.elapsed());
                        assert!(many.iter().all(Option::is_some));
                    } else {
                        let keys: Vec<String> = for_loop.iter().map(|&i| key(i)).collect();
                        let start = Instant::now();
                        let mut one = Vec::with_capacity(keys.len());
                        for k in &keys {
                            one.push(snap.get::<_, String>(0, k).await?);
                        }
                        loop_times.push(start.elapsed());
                        assert_eq!(snap.get_many::<_, String>(0, &keys).await?, one);
                    }
                }
                Some(encoded) => {
                    let engine = store.engine();
                    let at = snap.version().seq();
                    let ids = if batch_now { &for_batch } else { &for_loop };
                    let keys: Vec<&[u8]> = ids
                        .iter()
                        .map(|&i| encoded[i as usize].as_slice())
                        .collect();
                    let start = Instant::now();
                    if batch_now {
                        let many = engine.get_many(0, &keys, at).await?;
                        batch_times.push(start.elapsed());
                        assert!(many.iter().all(Option::is_some));
                    } else {
                        let mut one = Vec::with_capacity(keys.len());
                        for k in &keys {
                            one.push(engine.get(0, k, at).await?);
                        }
                        loop_times.push(start.elapsed());
                        assert_eq!(engine.get_many(0, &keys, at).await?, one);
                    }
                }
            }
        }
    }
    Ok((median(loop_times), median(batch_times)))
}

async fn compare<E: Engine<Storage = FileStorage>>(name: &str, tuning: E::Tuning) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv_db::Error::io("tempdir", e))?;
    let open = async || {
        let storage = FileStorage::open(dir.path()).await?;
        Store::<E>::open_tuned(storage, Options::default(), tuning.clone()).await
    };
    let store = open().await?;
    fill(&store).await?;
    // The encoded keys, by index (`key(i)` sorts as `i`); listed before the reopen, so the
    // cold reads find the caches empty.
    let at = store.snapshot().version().seq();
    let listed = store
        .engine()
        .scan_keys(0, &kv_db::KeyRange::all(), at, false, usize::MAX)
        .await?;
    let encoded: Vec<Vec<u8>> = listed.into_iter().map(|(k, _)| k).collect();
    assert_eq!(encoded.len(), KEYS as usize);
    let mut store = Some(store);
    for (layer, encoded) in [("typed", None), ("engine", Some(encoded.as_slice()))] {
        // Cold: a reopened store, its cache empty; then warm: every key read once.
        if let Some(s) = store.take() {
            s.close().await?;
        }
        let reopened = open().await?;
        let rounds = 50;
        for (what, window) in [("cold", None), ("warm", None), ("warm, dense", Some(4000))] {
            if what == "warm" {
                let all: Vec<String> = (0..KEYS).map(key).collect();
                reopened.snapshot().get_many::<_, String>(0, &all).await?;
            }
            let (gets, many) = time_reads(&reopened, encoded, rounds, window).await?;
            println!(
                "{name}, {layer}, {what}: 1000 gets {gets:.2?}, get_many of 1000 {many:.2?} \
                 (medians of {rounds}): {:.2}x the loop's speed",
                gets.as_secs_f64() / many.as_secs_f64()
            );
        }
        store = Some(reopened);
    }
    match store {
        Some(s) => s.close().await,
        None => Ok(()),
    }
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn get_many_against_gets() -> Result<()> {
    rt().block_on(async {
        compare::<kv_bitcask::Bitcask<FileStorage>>("bitcask", ()).await?;
        compare::<Lsm<FileStorage>>("lsm", LsmOptions::default()).await
    })
}

/// Times a key-only listing of every key against a full scan, each cold (first after a
/// reopen) and warm (after the other), 7 times each way, and checks they list the same keys.
async fn keys_or_scan<E: Engine<Storage = FileStorage>>(
    name: &str,
    tuning: E::Tuning,
) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv_db::Error::io("tempdir", e))?;
    let open = async || {
        let storage = FileStorage::open(dir.path()).await?;
        Store::<E>::open_tuned(storage, Options::default(), tuning.clone()).await
    };
    let store = open().await?;
    fill(&store).await?;
    store.close().await?;
    // [keys, scan] x [cold, warm]: the times of 7 rounds each.
    let mut times: [[Vec<Duration>; 2]; 2] = Default::default();
    for keys_first in [true, false].repeat(7) {
        let store = open().await?;
        for (warm, keys) in [(0, keys_first), (1, !keys_first)] {
            let snap = store.snapshot();
            let start = Instant::now();
            let listed = if keys {
                snap.range::<String, String>(0, ..).keys().await?
            } else {
                let rows: Vec<(String, String)> = snap.range(0, ..).await?;
                rows.into_iter().map(|(k, _)| k).collect()
            };
            times[usize::from(!keys)][warm].push(start.elapsed());
            assert_eq!(listed, (0..KEYS).map(key).collect::<Vec<_>>());
        }
        store.close().await?;
    }
    for (what, i) in [("cold", 0), ("warm", 1)] {
        let [keys, scan] = [0, 1].map(|way| median(std::mem::take(&mut times[way][i])));
        println!(
            "{name}, {what}: keys() of {KEYS} {keys:.2?}, full scan {scan:.2?} (medians of 7): \
             keys() at {:.2}x the scan's speed",
            scan.as_secs_f64() / keys.as_secs_f64()
        );
    }
    Ok(())
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn keys_against_scan() -> Result<()> {
    rt().block_on(async {
        keys_or_scan::<kv_bitcask::Bitcask<FileStorage>>("bitcask", ()).await?;
        keys_or_scan::<Lsm<FileStorage>>("lsm", LsmOptions::default()).await
    })
}
