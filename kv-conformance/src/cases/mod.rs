//! The cases of the suite, by group. Each case is an async function generic over the engine
//! family and the storage factory; [`crate::suite!`] turns each into a named `#[test]`.
//! Cases panic (assert) on failure, naming what they expected and what they got.

// Values are passed as `&value`, the way the documented API and users write them.
#![allow(clippy::needless_borrows_for_generic_args)]

pub mod batch;
pub mod concurrency;
pub mod conflicts;
pub mod crash;
pub mod crud;
pub mod damage;
pub mod expiry;
pub mod export;
pub mod history;
#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
pub mod indexeddb;
pub mod isolation;
pub mod keys;
pub mod large_values;
pub mod merge;
pub mod queries;
pub mod range_removal;
pub mod reopen;
pub mod retention;
pub mod scan;
pub mod snapshot;
pub mod tuning;
pub mod typed;
pub mod types;
pub mod verify;
pub mod versions;
pub mod watch;

/// What the case modules share.
mod prelude {
    pub(crate) use crate::StorageFactory;
    pub(crate) use crate::harness::{
        EngineFamily, Env, Place, Runs, StoreOf, StoreOn, assert_matches, dump, dump_summary, must,
    };
    pub(crate) use kv_api::{Error, Options, Version};
}
