//! Fuzz targets for every decoder of the kv store, as plain functions over bytes.
//!
//! Each target feeds its input to one decoder (or, for [`dir_image()`], a whole store to both
//! engines) and must return for every input: no panic, no hang, no unbounded allocation.
//! Where decoding has a checkable property it asserts it (a decoded record re-encodes to the
//! same bytes, a frame lies inside its buffer, a point read finds what a scan decoded, ...),
//! so a violated property is a crash too.
//!
//! The functions are run three ways:
//!
//! * by libFuzzer, through `cargo fuzz run <target>` in `fuzz/` (one one-line
//!   `fuzz_targets/<target>.rs` per function);
//! * by `cargo test -p kv-fuzz`, over every file of `fuzz/corpus/<target>/` and
//!   `fuzz/regressions/<target>/` (`tests/corpus.rs`), so CI replays what fuzzing found;
//! * by the seed generator (`tests/seeds.rs`, ignored), which writes real files of real
//!   stores into the corpus.
//!
//! Framed formats are tried as they come and with their CRCs recomputed (a CRC stops almost
//! every mutation before the parser behind it). Adding a target: a function here, a line in
//! [`TARGETS`], `fuzz/fuzz_targets/<name>.rs` (and a `[[bin]]` in `fuzz/Cargo.toml`), and a
//! corpus directory `fuzz/corpus/<name>/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bitcask;
pub mod dir_image;
mod export;
mod header;
mod idb;
mod keys;
mod log;
mod lsm;
mod util;

pub use bitcask::{bitcask_hint, bitcask_merged, bitcask_meta};
pub use dir_image::dir_image;
pub use export::export_stream;
pub use header::{file_header, identity};
pub use idb::idb_chunks;
pub use keys::{key_text, keycodec};
pub use log::{frame, txlog_record, txlog_replay};
pub use lsm::{bloom, lsm_blob_file, lsm_manifest, sst_data_block, sst_footer, sst_index_block};

/// A fuzz target.
pub type Target = fn(&[u8]);

/// Every target, by the name of its function, its `fuzz/fuzz_targets/` file and its corpus
/// directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("file_header", file_header),
    ("identity", identity),
    ("txlog_record", txlog_record),
    ("txlog_replay", txlog_replay),
    ("bitcask_hint", bitcask_hint),
    ("bitcask_meta", bitcask_meta),
    ("bitcask_merged", bitcask_merged),
    ("lsm_manifest", lsm_manifest),
    ("lsm_blob_file", lsm_blob_file),
    ("sst_footer", sst_footer),
    ("sst_index_block", sst_index_block),
    ("sst_data_block", sst_data_block),
    ("bloom", bloom),
    ("keycodec", keycodec),
    ("key_text", key_text),
    ("idb_chunks", idb_chunks),
    ("dir_image", dir_image),
    ("export_stream", export_stream),
];
