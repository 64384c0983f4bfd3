//! Writes the seed corpus: real files of real stores (Bitcask with rolled and merged
//! segments, the LSM with flushed and compacted tables), cut into what each target reads.
//! Ignored: run it by hand, then fuzz, then minimize (see `scripts/fuzz.sh`):
//!
//! ```text
//! cargo test -p kv-fuzz --test seeds -- --ignored
//! ```
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kv_api::{Options, Storage, StorageFile, Store, Tuning};
use kv_backends::MemoryStorage;
use kv_bitcask::Bitcask;
use kv_bitcask::fuzzing as bc;
use kv_engine_kit::header::{self, FileHeader};
use kv_engine_kit::identity::{IDENTITY, Identity};
use kv_fuzz::dir_image::{FIX_CRC, MAX_FILES, encode_image, kind_of};
use kv_lsm::fuzzing::{self as lsm, IndexBlock};
use kv_lsm::{Compression, Lsm, LsmOptions};

fn corpus(target: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn seed(target: &str, name: &str, bytes: &[u8]) {
    assert!(
        kv_fuzz::TARGETS.iter().any(|(t, _)| *t == target),
        "{target}"
    );
    std::fs::write(corpus(target).join(format!("seed-{name}")), bytes).unwrap();
}

/// Some history: keys of a few types in three slots, overwrites and removals.
async fn fill<E: kv_api::Engine>(store: &Store<E>, rounds: u32) {
    for round in 0..rounds {
        let mut txn = store.current();
        for i in 0..6u32 {
            let k = (round * 7 + i * 13) % 40;
            txn.insert(0, &format!("key-{k:03}"), format!("value {round} {i}"))
                .unwrap();
            txn.insert(1, &(k, "t"), vec![round as u8; (i * 9) as usize])
                .unwrap();
        }
        if round % 4 == 1 {
            // Past `LsmOptions::small()`'s blob threshold: the LSM's flushes write blob files.
            txn.insert(3, &round, vec![round as u8; 300]).unwrap();
        }
        if round % 3 == 0 {
            txn.remove(0, &format!("key-{:03}", round % 40)).unwrap();
            txn.insert(2, &(i64::from(round) - 20), f64::from(round) / 3.0)
                .unwrap();
        }
        txn.commit().await.unwrap();
        // Transactions of one write: single records in the logs.
        if round % 4 == 1 {
            let mut txn = store.current();
            txn.insert(0, &format!("one-{round}"), round).unwrap();
            txn.commit().await.unwrap();
            let mut txn = store.current();
            txn.remove(0, &format!("key-{:03}", (round + 5) % 40))
                .unwrap();
            txn.commit().await.unwrap();
        }
    }
}

async fn files(storage: &MemoryStorage) -> Vec<(String, Vec<u8>)> {
    let mut names = storage.list().await.unwrap();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let f = storage.open(&name).await.unwrap();
        let len = f.len().await.unwrap();
        out.push((name, f.read_at(0, len as usize).await.unwrap()));
    }
    out
}

/// The image of a store's files, `IDENTITY` first (what an open reads first); every file
/// must fit in it.
fn image(files: &[(String, Vec<u8>)], flags: u8) -> Vec<u8> {
    let mut parts: Vec<(u8, u64, &[u8])> = files
        .iter()
        .filter_map(|(n, b)| kind_of(n).map(|(k, id)| (k | flags, id, b.as_slice())))
        .collect();
    assert_eq!(
        parts.len(),
        files.len(),
        "a file name the image cannot hold"
    );
    assert!(
        parts.len() <= MAX_FILES,
        "{} files: {:?}",
        parts.len(),
        files.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    parts.sort_by_key(|(_, _, b)| Identity::decode(b).is_err());
    encode_image(&parts)
}

/// A store's files, put back into a new storage, open with engine `E`: the image seeds are
/// stores that open.
async fn opens<E: kv_api::Engine<Storage = MemoryStorage>>(
    files: &[(String, Vec<u8>)],
    tuning: E::Tuning,
) {
    let storage = MemoryStorage::new();
    for (name, bytes) in files {
        storage
            .create(name)
            .await
            .unwrap()
            .append(bytes)
            .await
            .unwrap();
    }
    let engine = E::open(storage, Options::default(), tuning).await.unwrap();
    engine.close().await.unwrap();
}

/// The payloads of the frames at the start of `buf`.
fn payloads(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let kv_engine_kit::frame::Decoded::Frame { payload, next } =
        kv_engine_kit::frame::decode(buf, at)
    {
        out.push(payload);
        at = next;
    }
    out
}

/// The kind in the file header `buf` begins with.
fn header_kind(buf: &[u8]) -> Option<u8> {
    FileHeader::decode(buf).ok().map(|h| h.kind)
}

/// Seeds of what says whose a file is: each file's header (whole file and header alone), and
/// the store's `IDENTITY`.
fn identity_seeds(engine: &str, files: &[(String, Vec<u8>)]) {
    let mut kinds = std::collections::BTreeSet::new();
    for (name, bytes) in files {
        if name == IDENTITY {
            seed("identity", engine, bytes);
        } else if let Some(kind) = header_kind(bytes)
            && kinds.insert(kind)
        {
            let stem = format!("{engine}-{kind:#x}");
            seed("file_header", &stem, &bytes[..header::LEN]);
            seed(
                "file_header",
                &format!("{stem}-file"),
                &bytes[..bytes.len().min(200)],
            );
        }
    }
}

fn log_seeds(name: &str, bytes: &[u8]) {
    seed("txlog_replay", name, bytes);
    // A torn tail: the last transaction cut in its middle.
    seed(
        "txlog_replay",
        &format!("{name}-torn"),
        &bytes[..bytes.len() * 9 / 10],
    );
    for (i, p) in payloads(&bytes[header::LEN..])
        .into_iter()
        .enumerate()
        .take(4)
    {
        seed("txlog_record", &format!("{name}-{i}"), p);
    }
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "writes the seed corpus into fuzz/corpus"]
async fn write_seeds() {
    // Bitcask: small segments (rolled, with hints), then a merge (merged segments of
    // committed records), then more commits after it.
    let storage = MemoryStorage::new();
    let options = Options::default().segment_size(2500);
    let store = Store::<Bitcask<MemoryStorage>>::open_with(storage.clone(), options.clone())
        .await
        .unwrap();
    fill(&store, 12).await;
    store.merge().await.unwrap();
    fill(&store, 6).await;
    store.close().await.unwrap();
    let bitcask = files(&storage).await;
    for (name, bytes) in &bitcask {
        let stem = name.replace('.', "-");
        if name == "META" {
            seed("bitcask_meta", "META", bytes);
        } else if name.ends_with(".hint") {
            seed("bitcask_hint", &stem, bytes);
        } else if header_kind(bytes) == Some(bc::KIND_MERGED) {
            seed("bitcask_merged", &stem, bytes);
            seed("frame", &stem, bytes);
        } else if name.ends_with(".log") {
            log_seeds(&format!("bitcask-{stem}"), bytes);
        }
    }
    identity_seeds("bitcask", &bitcask);
    opens::<Bitcask<MemoryStorage>>(&bitcask, ()).await;
    seed("dir_image", "bitcask", &image(&bitcask, 0));
    seed("dir_image", "bitcask-fix", &image(&bitcask, FIX_CRC));

    // LSM: 4 KiB memtables and 512-byte blocks flush and compact after a few commits.
    let storage = MemoryStorage::new();
    let store =
        Store::<Lsm<MemoryStorage>>::open_tuned(storage.clone(), options, LsmOptions::small())
            .await
            .unwrap();
    fill(&store, 30).await;
    // A few commits after the last flush, so the newest WAL holds transactions to replay.
    fill(&store, 2).await;
    store.close().await.unwrap();
    let lsm_files = files(&storage).await;
    for (name, bytes) in &lsm_files {
        let stem = name.replace('.', "-");
        if name == "MANIFEST" {
            seed("lsm_manifest", "MANIFEST", bytes);
        } else if name.ends_with(".sst") {
            table_seeds(&stem, bytes);
        } else if name.ends_with(".blob") {
            seed("lsm_blob_file", &stem, bytes);
        } else if name.starts_with("wal-") {
            log_seeds(&format!("lsm-{stem}"), bytes);
            seed("frame", &stem, bytes);
        }
    }
    identity_seeds("lsm", &lsm_files);
    opens::<Lsm<MemoryStorage>>(&lsm_files, LsmOptions::small()).await;
    seed("dir_image", "lsm", &image(&lsm_files, 0));
    seed("dir_image", "lsm-fix", &image(&lsm_files, FIX_CRC));

    compressed_block_seeds();
    key_seeds();
    let chunk = kv_backends::fuzzing::CHUNK_SIZE;
    let mut idb = Vec::new();
    idb.extend_from_slice(&(2 * chunk + 10).to_le_bytes());
    idb.extend_from_slice(&[0, 0, 1, 0]);
    for _ in 0..2 {
        idb.push(1);
        idb.extend_from_slice(&(chunk as u32).to_le_bytes());
    }
    seed("idb_chunks", "two-full-chunks", &idb);
}

/// A table whole (the footer target reads its end), and its blocks and filter.
fn table_seeds(stem: &str, t: &[u8]) {
    seed("sst_footer", stem, t);
    let at = t.len() - lsm::FOOTER_LEN;
    let (_, [(fo, fl), (io, il)]) = lsm::footer(&t[at..], t.len() as u64).unwrap();
    let region = |o: u64, l: u64| &t[o as usize..(o + l) as usize];
    seed("bloom", stem, region(fo, fl));
    let index_raw = region(io, il);
    seed("sst_index_block", stem, index_raw);
    let index = IndexBlock::decode(index_raw.to_vec(), io).unwrap();
    for i in 0..index.len().min(3) {
        let v = index.entry(i).1.unwrap();
        let mut p = 0;
        let (o, l) = (
            lsm::get_varint(v, &mut p).unwrap(),
            lsm::get_varint(v, &mut p).unwrap(),
        );
        seed("sst_data_block", &format!("{stem}-{i}"), region(o, l));
    }
}

/// Data blocks of JSON-like values stored with each codec (tables of `LsmOptions::small()`
/// hold lz4 blocks; these add zstd, and blocks of many entries).
fn compressed_block_seeds() {
    let entries: Vec<lsm::Entry> = (0..40u64)
        .map(|i| {
            let value = format!("{{\"id\":{i},\"name\":\"user {i}\",\"tags\":[\"a\",\"b\"]}}");
            let key = format!("\x00user:{i:04}").into_bytes();
            (
                key,
                100 - i,
                1_700_000_000_000 + i,
                (i % 9 != 0).then(|| value.into_bytes()),
                // Some entries as blob references (entry kind 2).
                i % 5 == 1,
            )
        })
        .collect();
    for (name, c) in [("lz4", Compression::Lz4), ("zstd", Compression::Zstd)] {
        let raw = lsm::encode_block(&entries, 8, c).unwrap();
        assert_ne!(raw[raw.len() - 5], 0, "{name} block stored compressed");
        seed("sst_data_block", &format!("json-{name}"), &raw);
    }
}

/// Encodings of keys of several types, whole and as pairs (first byte: where the second
/// starts, see `kv_fuzz::keycodec`).
fn key_seeds() {
    let e = |k: &dyn erased::Key| k.encode();
    let keys: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("u32", e(&7u32), e(&300u32)),
        ("i64", e(&-5i64), e(&12i64)),
        ("string", e(&"ab\0c"), e(&"abd")),
        ("tuple", e(&("users", 3u32)), e(&("users", 10u32))),
        ("vec", e(&vec![1u8, 2]), e(&vec![1u8, 2, 0])),
        ("f64", e(&-0.5f64), e(&2.25f64)),
        ("option", e(&Some((1i64, "x"))), e(&None::<(i64, &str)>)),
        (
            "bytes",
            e(&serde_bytes::Bytes::new(b"\0\xff")),
            e(&serde_bytes::Bytes::new(b"")),
        ),
    ];
    for (name, a, b) in keys {
        seed("keycodec", name, &a);
        let mut pair = vec![u8::try_from(a.len() + 1).unwrap()];
        pair.extend_from_slice(&a);
        pair.extend_from_slice(&b);
        seed("keycodec", &format!("{name}-pair"), &pair);
    }
}

/// Keys of different types behind one trait object, for the table above.
mod erased {
    pub trait Key {
        fn encode(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Key for T {
        fn encode(&self) -> Vec<u8> {
            kv_api::keycodec::encode(self).unwrap()
        }
    }
}

/// Seeds of `export_stream` alone (the other seeds hold random store ids, so rewriting them
/// changes every file): streams of a Bitcask store with every version after a merge, and of
/// the latest values of an LSM store.
///
/// ```text
/// cargo test -p kv-fuzz --test seeds write_export_seeds -- --ignored
/// ```
#[tokio::test(flavor = "current_thread")]
#[ignore = "writes the export_stream seeds into fuzz/corpus"]
async fn write_export_seeds() {
    use kv_api::ExportScope;
    async fn export_seed<E: kv_api::Engine>(store: &Store<E>, scope: ExportScope, name: &str) {
        let mut stream = Vec::new();
        store.export(&mut stream, scope, &|_| {}).await.unwrap();
        seed("export_stream", name, &stream);
    }
    let store = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new())
        .await
        .unwrap();
    fill(&store, 4).await;
    store.merge().await.unwrap();
    fill(&store, 2).await;
    export_seed(&store, ExportScope::AllVersions, "bitcask-all-versions").await;
    let storage = MemoryStorage::new();
    let options = Options::default();
    let store = Store::<Lsm<MemoryStorage>>::open_tuned(storage, options, LsmOptions::small())
        .await
        .unwrap();
    export_seed(&store, ExportScope::AllVersions, "empty").await;
    fill(&store, 5).await;
    export_seed(&store, ExportScope::Latest, "lsm-latest").await;
}
