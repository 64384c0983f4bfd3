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
//!   blocks).

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

/// Times `rounds` rounds of 1000 random keys each way: (a loop of gets, one get_many). Each
/// way reads its own keys, so neither warms the cache for the other.
/// Keys are drawn from all `KEYS`, or with `window`, from that many consecutive keys at a
/// random place (neighbours share blocks).
async fn time_reads<E: Engine>(
    store: &Store<E>,
    rounds: u32,
    window: Option<u32>,
) -> Result<(Duration, Duration)> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut random_keys = || -> Vec<String> {
        let (base, span) = match window {
            Some(w) => ((next() % u64::from(KEYS - w)) as u32, w),
            None => (0, KEYS),
        };
        (0..1000)
            .map(|_| key(base + (next() % u64::from(span)) as u32))
            .collect()
    };
    let (mut loop_time, mut batch_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let (for_batch, for_loop) = (random_keys(), random_keys());
        let snap = store.snapshot();
        let start = Instant::now();
        let many = snap.get_many::<_, String>(0, &for_batch).await?;
        batch_time += start.elapsed();
        let start = Instant::now();
        let mut one = Vec::with_capacity(for_loop.len());
        for k in &for_loop {
            one.push(snap.get::<_, String>(0, k).await?);
        }
        loop_time += start.elapsed();
        assert!(many.iter().chain(&one).all(Option::is_some));

        assert_eq!(snap.get_many::<_, String>(0, &for_loop).await?, one);
    }
    Ok((loop_time, batch_time))
}

async fn compare<E: Engine<Storage = FileStorage>>(name: &str, tuning: E::Tuning) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv_db::Error::io("tempdir", e))?;
    let open = async || {
        let storage = FileStorage::open(dir.path()).await?;
        Store::<E>::open_tuned(storage, Options::default(), tuning.clone()).await
    };
    let store = open().await?;
    fill(&store).await?;
    store.close().await?;
    // Cold: a reopened store, its cache empty; then warm: every key read once.
    let store = open().await?;
    let rounds = 50;
    for (what, window) in [("cold", None), ("warm", None), ("warm, dense", Some(4000))] {
        if what == "warm" {
            let all: Vec<String> = (0..KEYS).map(key).collect();
            store.snapshot().get_many::<_, String>(0, &all).await?;
        }
        let (gets, many) = time_reads(&store, rounds, window).await?;
        println!(
            "{name}, {what}: 1000 gets {:.2?}, get_many of 1000 {:.2?}: {:.2}x the loop's speed",
            gets / rounds,
            many / rounds,
            gets.as_secs_f64() / many.as_secs_f64()
        );
    }
    store.close().await
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn get_many_against_gets() -> Result<()> {
    rt().block_on(async {
        compare::<kv_bitcask::Bitcask<FileStorage>>("bitcask", ()).await?;
        compare::<Lsm<FileStorage>>("lsm", LsmOptions::default()).await
    })
}
