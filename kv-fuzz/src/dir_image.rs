//! Whole stores: a directory image of the files the engines write, opened by each engine and
//! read through.

use kv_api::{Engine, KeyRange, Options, Storage, StorageFile, Tuning, Version, WriteBatch};
use kv_backends::MemoryStorage;
use kv_bitcask::Bitcask;
use kv_lsm::Lsm;
use kv_lsm::fuzzing::{self as lsm, IndexBlock};

use crate::util::{Fields, block_on, fix_frames};

/// Most files in one image.
pub const MAX_FILES: usize = 16;
/// Most rows read per scan.
const SCAN_LIMIT: usize = 1000;
/// Set in a file's kind byte: recompute its checksums first (every frame's CRC; for a table,
/// those of its footer, filter, index and the data blocks its index names).
pub const FIX_CRC: u8 = 0x80;

/// The names a file kind byte chooses (modulo their number), `{}` standing for the id.
const NAMES: [&str; 13] = [
    "META",
    "META.tmp",
    "{:08}.log",
    "{:08}.hint",
    "MANIFEST",
    "MANIFEST.tmp",
    "{:08}.sst",
    "wal-{:08}.log",
    "LOCK",
    // A log or table id as no engine writes it (no zero padding): foreign.
    "{}.log",
    // Every store's: written first, read before anything else.
    "IDENTITY",
    "IDENTITY.tmp",
    // The LSM's blob files (large values apart from the tables).
    "{:08}.blob",
];

/// The name of a file of kind `kind` with id `id`.
pub fn file_name(kind: u8, id: u64) -> String {
    let pattern = NAMES[usize::from(kind & !FIX_CRC) % NAMES.len()];
    pattern
        .replace("{:08}", &format!("{id:08}"))
        .replace("{}", &id.to_string())
}

/// The kind byte (without [`FIX_CRC`]) that makes `name`, and its id; `None` for other names.
pub fn kind_of(name: &str) -> Option<(u8, u64)> {
    (0..NAMES.len() as u8).find_map(|kind| {
        let pattern = NAMES[usize::from(kind)];
        let id = if pattern.contains('{') {
            let (pre, post) = pattern
                .split_once('{')
                .map(|(p, r)| (p, r.split_once('}')))?;
            let digits = name.strip_prefix(pre)?.strip_suffix(post?.1)?;
            digits.parse().ok()?
        } else {
            0
        };
        (file_name(kind, id) == name).then_some((kind, id))
    })
}

/// Encodes files as a directory image: per file `kind u8 | id u64 | len u32 | bytes`.
pub fn encode_image(files: &[(u8, u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, id, bytes) in files {
        out.push(*kind);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// The files of an image (see [`encode_image`]; a length past the end takes what is left),
/// with their checksums fixed where the kind byte asks for it.
fn decode_image(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut f = Fields(data);
    let mut files = Vec::new();
    while !f.0.is_empty() && files.len() < MAX_FILES {
        let (kind, id, len) = (f.u8(), f.u64(), f.u32());
        let bytes = f.bytes(len as usize);
        let name = file_name(kind, id);
        let bytes = match kind & FIX_CRC != 0 {
            false => bytes.to_vec(),
            true if name.ends_with(".sst") => fix_table(bytes),
            true => fix_frames(bytes),
        };
        files.push((name, bytes));
    }
    files
}

/// A table with the CRCs of its footer, filter, index and the data blocks the index names
/// recomputed, wherever they lie inside the file.
fn fix_table(raw: &[u8]) -> Vec<u8> {
    let mut t = raw.to_vec();
    let Some(at) = t.len().checked_sub(lsm::FOOTER_LEN) else {
        return t;
    };
    let crc = crc32fast::hash(&t[at..at + 44]);
    t[at + 44..at + 48].copy_from_slice(&crc.to_le_bytes());
    let field = |t: &[u8], i: usize| {
        let b = &t[at + 8 * i..at + 8 * i + 8];
        usize::try_from(u64::from_le_bytes(b.try_into().unwrap_or_default())).ok()
    };
    let region = |o: Option<usize>, l: Option<usize>| {
        let (o, l) = (o?, l?);
        (o.checked_add(l)? <= at && l >= 4).then_some(o..o + l)
    };
    let fix = |t: &mut Vec<u8>, r: std::ops::Range<usize>| {
        let crc = crc32fast::hash(&t[r.start..r.end - 4]);
        t[r.end - 4..r.end].copy_from_slice(&crc.to_le_bytes());
    };
    if let Some(r) = region(field(&t, 0), field(&t, 1)) {
        fix(&mut t, r);
    }
    let Some(index) = region(field(&t, 2), field(&t, 3)) else {
        return t;
    };
    fix(&mut t, index.clone());
    let Ok(block) = IndexBlock::decode(t[index].to_vec(), 0) else {
        return t;
    };
    for i in 0..block.len() {
        let Some(v) = block.entry(i).1 else { continue };
        let mut p = 0;
        let handle = lsm::get_varint(v, &mut p).zip(lsm::get_varint(v, &mut p));
        let handle = handle.map(|(o, l)| (usize::try_from(o).ok(), usize::try_from(l).ok()));
        if let Some(r) = handle.and_then(|(o, l)| region(o, l)) {
            fix(&mut t, r);
        }
    }
    t
}

/// The input as a directory image (see [`encode_image`]: a file's kind byte picks its name
/// among those the engines write, and [`FIX_CRC`] in it fixes its checksums), put in a
/// `MemoryStorage` and opened by Bitcask and by the LSM (small tuning). A store that opens is
/// read through (every slot scanned both ways; each key's value, versions and each version's
/// value and snapshot), written to, merged, and reopened and read again. Every call returns a
/// value or an error: none may panic or hang.
pub fn dir_image(data: &[u8]) {
    let files = decode_image(data);
    exercise::<Bitcask<MemoryStorage>>(&files);
    exercise::<Lsm<MemoryStorage>>(&files);
}

fn exercise<E: Engine<Storage = MemoryStorage>>(files: &[(String, Vec<u8>)]) {
    block_on(async {
        let storage = MemoryStorage::new();
        for (name, bytes) in files {
            let Ok(file) = storage.create(name).await else {
                return;
            };
            if file.append(bytes).await.is_err() {
                return;
            }
        }
        // Small caches: evictions and refills are part of what is read.
        let options = Options::default().cache_size(64 << 10);
        let Ok(engine) = E::open(storage.clone(), options.clone(), E::Tuning::small()).await else {
            return;
        };
        read_all(&engine).await;
        let _ = engine.stats().await;
        let batch = engine
            .snapshot()
            .map(|s| WriteBatch::new(s).write(0, b"fuzz".to_vec(), Some(b"v".to_vec())));
        if let Ok(batch) = batch {
            let _ = engine.commit(batch).await;
        }
        let _ = engine.merge().await;
        let _ = engine.close().await;
        drop(engine);
        if let Ok(engine) = E::open(storage, options, E::Tuning::small()).await {
            read_all(&engine).await;
            let _ = engine.close().await;
        }
    });
}

async fn read_all<E: Engine>(engine: &E) {
    let Ok(snapshot) = engine.snapshot() else {
        return;
    };
    let at = snapshot.seq();
    for slot in 0..=u8::MAX {
        let _ = engine
            .scan(slot, &KeyRange::all(), at, true, SCAN_LIMIT)
            .await;
        let Ok(rows) = engine
            .scan(slot, &KeyRange::all(), at, false, SCAN_LIMIT)
            .await
        else {
            continue;
        };
        for row in rows {
            let key = row.key.as_slice();
            let _ = engine.get(slot, key, at).await;
            let _ = engine.get_unremoved(slot, key, at).await;
            let Ok(versions) = engine.versions(slot, key, at).await else {
                continue;
            };
            for v in versions {
                let _ = engine.get_version(slot, key, v).await;
                let _ = engine.snapshot_at(v);
            }
        }
    }
    let _ = engine.snapshot_at(Version::ZERO);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, kind, id) in [
            ("META", 0, 0),
            ("00000012.log", 2, 12),
            ("00000003.hint", 3, 3),
            ("00000007.sst", 6, 7),
            ("wal-00000009.log", 7, 9),
            ("123456789.log", 2, 123_456_789),
        ] {
            assert_eq!(kind_of(name), Some((kind, id)), "{name}");
            assert_eq!(file_name(kind | FIX_CRC, id), name);
        }
        assert_eq!(kind_of("12.log"), Some((9, 12)));
        assert_eq!(kind_of("IDENTITY"), Some((10, 0)));
        assert_eq!(kind_of("IDENTITY.tmp"), Some((11, 0)));
        assert_eq!(kind_of("00000042.blob"), Some((12, 42)));
        assert_eq!(kind_of("other"), None);
    }
}
