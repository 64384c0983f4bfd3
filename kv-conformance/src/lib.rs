//! The behaviour contract of the `kv-db` store: one suite of tests that every engine on every
//! backend must pass.
//!
//! The workspace runs it on every engine × backend combination (`tests/matrix.rs`). If you
//! write your own backend, run the suite in your own CI with one line per engine:
//!
//! ```ignore
//! // tests/conformance.rs of your crate
//! kv_conformance::suite!(my_backend_bitcask, engine = kv_bitcask::Bitcask, factory = MyFactory);
//! kv_conformance::suite!(my_backend_lsm, engine = kv_lsm::Lsm, factory = MyFactory);
//! ```
//!
//! where `MyFactory` implements [`StorageFactory`]: it makes one fresh, empty storage, and
//! hands out handles on the same data every time [`StorageFactory::storage`] is called, so
//! the suite can drop a store and reopen what it left. Each `suite!` line expands into a
//! module with one `#[test]` per case, so `cargo test` names the failing case and the
//! combination, for example `my_backend_bitcask::versions_list_removals`.
//! `tests/custom_backend.rs` of this crate is a complete example: a `HashMap` backend written
//! as a user would, passing the whole suite.
//!
//! # What is checked
//!
//! CRUD in independent slots; typed round trips and typed errors (`Decode`, `TooLarge`);
//! typed slots (`SlotDef`), borrowed keys, the catalog of slots and its type checks, retried
//! transactions (`Store::transact`);
//! isolation; write-write, read-write and range (phantom) conflicts; versions and their
//! metadata; merge; export, import and backup (every version kept, damaged streams refused); ordered range, prefix and streaming scans; snapshots; reopen after every
//! kind of operation; read-only opens, the writer lock, closed stores; crash recovery on a
//! [`FaultyStorage`] (lost unsynced data, torn writes, undone namespace operations, failing
//! I/O, flipped bytes); damage (a missing file is a typed error, never an empty store; files of
//! another store are refused; seeded damage of every kind, below); concurrent transactions;
//! durable commits sharing syncs (group commit); `Store::verify` clean after any workload and
//! beside a writer; and random histories (with `proptest`) checked
//! after every step against a [`Model`].
//!
//! # Seeded damage
//!
//! `damage_seeded` ([`cases::damage::seeded`]) builds a store spanning every kind of file its
//! engine writes, then, for each seed, damages a fresh copy of its files once (truncate, flip
//! bits, zero or overwrite a range, delete, copy one file over another, swap two, append junk,
//! forge a frame length), reopens it (writable, or read-only) and checks every key and
//! version. Each outcome must be the store as committed, an earlier state with a recovery
//! report (a rolled-back torn tail), or an `Err`; never wrong data, silent loss, a panic, a
//! hang or a read sized by a damaged length. When bytes changed in place (flipped, zeroed,
//! overwritten) and the open served every commit over them, `Store::verify` must report them. Counts per damage kind and outcome are printed
//! (`--nocapture`); a failure lists each forbidden outcome with its seed.
//!
//! It runs seeds `0..KV_DAMAGE_CASES` (default [`cases::damage::DEFAULT_DAMAGE_CASES`]: 300
//! natively, 40 on wasm32); `KV_DAMAGE_SEED=N` runs seed `N` alone. The long run, a few
//! seconds per combination on memory and a few minutes on files once built:
//!
//! ```text
//! KV_DAMAGE_CASES=5000 cargo test -p kv-conformance --release --test matrix damage_seeded -- --nocapture
//! KV_DAMAGE_SEED=867 cargo test -p kv-conformance --test matrix bitcask_memory::damage_seeded -- --nocapture
//! ```
//!
//! # Random histories
//!
//! The `history_*` cases run `KV_PROPTEST_CASES` random histories (default
//! [`DEFAULT_PROPTEST_CASES`]) from the seed `KV_PROPTEST_SEED` (default fixed, so CI is
//! reproducible). For a long soak: `KV_PROPTEST_CASES=5000 cargo test -p kv-conformance
//! history`. A failure prints the shrunk history (the `Debug` of its operations) and the seed.
//!
//! # Runtimes
//!
//! Cases are `async fn`s that use no threads, no `std::fs` and no runtime directly; the only
//! runtime-specific code is in [`runtime`] (`block_on`, `join_all`, `yield_now`). Natively
//! each test runs its case on a fresh two-worker tokio runtime. On wasm32 each [`suite!`]
//! test is an `async` `#[wasm_bindgen_test]` awaiting the same case function, with concurrent
//! tasks interleaved on the test's task.
//!
//! # In a browser
//!
//! `tests/browser.rs` runs the suite in headless Chromium (`scripts/test-wasm.sh`) on every
//! engine over IndexedDB (`IndexedDbFactory`, cargo feature `indexeddb`: a fresh database
//! per case, reopened through new connections) and over memory, plus
//! `cases::indexeddb`: what a page that goes away without syncing leaves behind. A
//! wasm32 build needs `--cfg getrandom_backend="wasm_js"` (set in `.cargo/config.toml`), and
//! the test crate `wasm_bindgen_test_configure!(run_in_browser)`. Panics abort on wasm32, so
//! a failing history is not shrunk there: rerun its seed natively.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cases;
mod damage;
mod factory;
mod faulty;
mod harness;
pub mod model;
pub mod rng;
pub mod runtime;
pub mod script;

#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
pub use factory::IndexedDbFactory;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use factory::TempFileFactory;
pub use factory::{MemoryFactory, StorageFactory};
pub use faulty::{CrashMode, FaultyFile, FaultyStorage, Ops};
pub use harness::{
    EngineFamily, Env, Place, Runs, StoreOf, StoreOn, dump, dump_summary, flip_bit, last_frame,
    verify_clean,
};
pub use model::{Model, check_store};
pub use rng::Rng;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use runtime::block_on;

#[doc(hidden)]
pub use kv_api;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[doc(hidden)]
pub use wasm_bindgen_test;

/// Random histories per `history_*` case unless `KV_PROPTEST_CASES` says otherwise.
pub const DEFAULT_PROPTEST_CASES: u32 = 64;

/// Expands into a module `$name` with one `#[test]` per case of the suite (on wasm32, one
/// `async` `#[wasm_bindgen_test]`), running on the engine family `engine` (a generic engine
/// type written without its storage parameter, like `kv_bitcask::Bitcask`) and the storage
/// factory `factory` (a [`StorageFactory`]).
///
/// ```ignore
/// kv_conformance::suite!(bitcask_memory, engine = kv_bitcask::Bitcask, factory = kv_conformance::MemoryFactory);
/// ```
///
/// The module also exports `CASES` (the test names) and `combination()` (the engine's and the
/// backend's names).
#[macro_export]
macro_rules! suite {
    ($name:ident, engine = $($engine:ident)::+, factory = $factory:ty $(,)?) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The engine family under test.
            pub struct Family;

            impl $crate::EngineFamily for Family {
                type Engine<S: $crate::kv_api::Storage> = $($engine)::+<S>;
            }

            /// The storage factory under test.
            pub type Factory = $factory;

            /// The engine's and the backend's names.
            pub fn combination() -> (&'static str, &'static str) {
                (
                    <<Family as $crate::EngineFamily>::Engine<
                        <Factory as $crate::StorageFactory>::Storage,
                    > as $crate::kv_api::Engine>::NAME,
                    <Factory as $crate::StorageFactory>::NAME,
                )
            }

            $crate::__suite_cases!(Family, Factory);
        }
    };
}

/// [`suite!`] for several combinations at once, plus `registered()`: the (engine, backend)
/// names of every combination, for a completeness test.
///
/// ```ignore
/// kv_conformance::matrix! {
///     bitcask_memory: engine = kv_bitcask::Bitcask, factory = kv_conformance::MemoryFactory;
///     bitcask_file: engine = kv_bitcask::Bitcask, factory = kv_conformance::TempFileFactory;
/// }
/// ```
#[macro_export]
macro_rules! matrix {
    ($($name:ident: engine = $($engine:ident)::+, factory = $factory:ty;)*) => {
        $( $crate::suite!($name, engine = $($engine)::+, factory = $factory); )*

        /// The (engine, backend) names of every combination registered by this `matrix!`.
        pub fn registered() -> Vec<(&'static str, &'static str)> {
            vec![$($name::combination()),*]
        }
    };
}

/// The list of cases: `test name => group::function`. One place, so every `suite!` has all.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_cases {
    ($family:ty, $factory:ty) => {
        $crate::__suite_tests! { $family, $factory;
            crud_insert_get_remove => crud::insert_get_remove,
            crud_slots_independent => crud::slots_independent,
            crud_overwrite => crud::overwrite,
            crud_engine_reads_agree => crud::engine_reads_agree,
            crud_empty_store => crud::empty_store,
            crud_many_keys_reopen => crud::many_keys_reopen,
            types_round_trips => types::round_trips,
            types_large_value => types::large_value,
            types_wrong_type_is_decode_error => types::wrong_type_is_decode_error,
            types_too_large => types::too_large,
            types_key_types_do_not_collide => types::key_types_do_not_collide,
            types_str_reads_as_string => types::str_reads_as_string,
            types_empty_value_is_not_removal => types::empty_value_is_not_removal,
            typed_round_trip => typed::round_trip,
            typed_borrowed_keys => typed::borrowed_keys,
            typed_catalog_listing => typed::catalog_listing,
            typed_type_mismatch_and_redefine => typed::type_mismatch_and_redefine,
            typed_reserved_slot_refused => typed::reserved_slot_refused,
            typed_transact_retries_conflicts => typed::transact_retries_conflicts,
            typed_inverted_range_is_an_error => typed::inverted_range_is_an_error,
            isolation_later_commits_invisible => isolation::later_commits_invisible,
            isolation_own_writes_visible => isolation::own_writes_visible,
            isolation_own_removal => isolation::own_removal,
            isolation_uncommitted_invisible => isolation::uncommitted_invisible,
            conflicts_write_write => conflicts::write_write,
            conflicts_read_write => conflicts::read_write,
            conflicts_read_of_absent_key => conflicts::read_of_absent_key,
            conflicts_removal_conflicts => conflicts::removal_conflicts,
            conflicts_disjoint_writes_commit => conflicts::disjoint_writes_commit,
            conflicts_read_only_never_conflicts => conflicts::read_only_never_conflicts,
            conflicts_range_inside => conflicts::range_inside,
            conflicts_range_outside => conflicts::range_outside,
            conflicts_prefix_phantom => conflicts::prefix_phantom,
            conflicts_retry_after_conflict => conflicts::retry_after_conflict,
            versions_order_and_values => versions::order_and_values,
            versions_list_removals => versions::list_removals,
            versions_unknown_version => versions::unknown_version,
            versions_sequence_numbers => versions::sequence_numbers,
            versions_one_version_per_transaction => versions::one_version_per_transaction,
            versions_commit_time_monotonic => versions::commit_time_monotonic,
            large_values_round_trip => large_values::round_trip,
            merge_latest_values_survive => merge::latest_values_survive,
            merge_drops_old_versions => merge::drops_old_versions,
            merge_shrinks_storage => merge::shrinks_storage,
            merge_without_garbage => merge::without_garbage,
            merge_twice => merge::twice,
            merge_then_write_and_reopen => merge::then_write_and_reopen,
            merge_keeps_open_snapshot => merge::keeps_open_snapshot,
            merge_drops_old_snapshots => merge::drops_old_snapshots,
            scan_typed_order => scan::typed_order,
            scan_strings_and_prefixes => scan::strings_and_prefixes,
            scan_tuple_prefix => scan::tuple_prefix,
            scan_reverse_and_limit => scan::reverse_and_limit,
            scan_stream_many_keys => scan::stream_many_keys,
            scan_sees_own_writes => scan::sees_own_writes,
            scan_skips_other_key_types => scan::skips_other_key_types,
            snapshot_stable_under_commits => snapshot::stable_under_commits,
            snapshot_at_every_version => snapshot::at_every_version,
            snapshot_at_unknown_version => snapshot::at_unknown_version,
            snapshot_is_read_only => snapshot::is_read_only,
            reopen_after_each_operation => reopen::after_each_operation,
            reopen_read_only => reopen::read_only,
            reopen_read_only_beside_writer => reopen::read_only_beside_writer,
            reopen_second_writer_locked => reopen::second_writer_locked,
            reopen_closed_store => reopen::closed_store,
            reopen_close_twice => reopen::close_twice,
            reopen_lock_held_by_live_transactions => reopen::lock_held_by_live_transactions,
            crash_power_loss_keeps_acknowledged => crash::power_loss_keeps_acknowledged,
            crash_every_boundary_power_loss => crash::every_boundary_power_loss,
            crash_every_boundary_process => crash::every_boundary_process,
            crash_every_boundary_torn => crash::every_boundary_torn,
            crash_recovery_is_durable => crash::recovery_is_durable,
            crash_during_merge => crash::during_merge,
            crash_fail_each_write => crash::fail_each_write,
            crash_fail_reads => crash::fail_reads,
            crash_dead_process_cannot_write => crash::dead_process_cannot_write,
            crash_buffered_commits_prefix => crash::buffered_commits_prefix,
            crash_last_txn_torn_tail => crash::last_txn_torn_tail,
            crash_last_txn_flipped_byte => crash::last_txn_flipped_byte,
            crash_last_txn_cut_before_commit_record => crash::last_txn_cut_before_commit_record,
            crash_last_single_txn_torn_or_flipped => crash::last_single_txn_torn_or_flipped,
            damage_missing_file_is_an_error => damage::missing_file_is_an_error,
            damage_foreign_files_are_refused => damage::foreign_files_are_refused,
            damage_crashed_creation_opens_empty => damage::crashed_creation_opens_empty,
            damage_seeded => damage::seeded,
            queries_abort_discards_writes => queries::abort_discards_writes,
            queries_get_unremoved_skips_removals => queries::get_unremoved_skips_removals,
            queries_keys_in_type_order => queries::keys_in_type_order,
            queries_last_updated_time => queries::last_updated_time,
            queries_stats_counters => queries::stats_counters,
            concurrency_counters_no_lost_update => concurrency::counters_no_lost_update,
            concurrency_transfers_keep_total => concurrency::transfers_keep_total,
            concurrency_merge_during_commits => concurrency::merge_during_commits,
            concurrency_group_commit_shares_syncs => concurrency::group_commit_shares_syncs,
            verify_clean_after_mixed_workload => verify::clean_after_mixed_workload,
            export_round_trip_all_versions => export::round_trip_all_versions,
            export_latest_scope => export::latest_scope,
            export_copy_after_merge => export::copy_after_merge,
            export_damaged_stream_is_an_error => export::damaged_stream_is_an_error,
            export_backup_equals_snapshot => export::backup_equals_snapshot,
            export_import_crosses_file_boundaries => export::import_crosses_file_boundaries,
            history_model => history::model,
            history_model_with_crashes => history::model_with_crashes,
            batch_get_many_equals_gets => batch::get_many_equals_gets,
            batch_get_many_records_reads => batch::get_many_records_reads,
            keys_key_only_equals_full_scan => keys::key_only_equals_full_scan,
            keys_lazy_value_is_the_snapshots => keys::lazy_value_is_the_snapshots,
            keys_key_only_scans_conflict_like_scans => keys::key_only_scans_conflict_like_scans,
            keys_key_only_leaves_out_expired => keys::key_only_leaves_out_expired,
            tuning_variants_round_trip => tuning::variants_round_trip,
            range_removal_removes_exactly_the_range => range_removal::removes_exactly_the_range,
            range_removal_prefix_and_whole_slot => range_removal::prefix_and_whole_slot,
            range_removal_versions_of_removed_keys => range_removal::versions_of_removed_keys,
            range_removal_atomic_with_other_writes => range_removal::atomic_with_other_writes,
            range_removal_conflicts => range_removal::conflicts,
            range_removal_through_merge => range_removal::through_merge,
            range_removal_across_flushes_and_compactions => range_removal::across_flushes_and_compactions,
            range_removal_watchers_see_each_removed_key => range_removal::watchers_see_each_removed_key,
            expiry_reads_absent_from_expiry_time => expiry::reads_absent_from_expiry_time,
            expiry_stable_view => expiry::stable_view,
            expiry_overwrite_and_remove => expiry::overwrite_and_remove,
            expiry_merge_reclaims => expiry::merge_reclaims,
            expiry_survives_copy => expiry::survives_copy,
            retention_keep_last_n => retention::keep_last_n,
            retention_keep_younger_than => retention::keep_younger_than,
            retention_auto_merge_keeps_snapshot_and_bounds_size =>
                retention::auto_merge_keeps_snapshot_and_bounds_size,
            retention_auto_merge_in_the_background => retention::auto_merge_in_the_background,
            watch_sees_commits_in_order_while_tasks_commit_and_merge =>
                watch::sees_commits_in_order_while_tasks_commit_and_merge,
            watch_resumes_after_reopen => watch::resumes_after_reopen,
            watch_lagging_watcher_resumes => watch::lagging_watcher_resumes,
            watch_sees_every_handle_and_only_its_range => watch::sees_every_handle_and_only_its_range,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ($family:ty, $factory:ty; $($test:ident => $group:ident :: $case:ident,)*) => {
        $(
            #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
            #[test]
            fn $test() {
                $crate::block_on($crate::cases::$group::$case::<$family, $factory>());
            }

            #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
            #[$crate::wasm_bindgen_test::wasm_bindgen_test(crate = $crate::wasm_bindgen_test)]
            async fn $test() {
                $crate::cases::$group::$case::<$family, $factory>().await;
            }
        )*

        /// The names of the tests in this suite.
        pub const CASES: &[&str] = &[$(stringify!($test)),*];
    };
}
