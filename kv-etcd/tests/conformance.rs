//! The conformance suite's cases that apply to a store on etcd, each in a fresh prefix of the
//! test cluster. Ignored in a plain `cargo test` (no cluster there): `scripts/test-etcd.sh`
//! starts the cluster and runs them with `--ignored`.
//!
//! Not run here, because they need a `Storage` backend's files: the crash cases
//! (`FaultyStorage`; replaced by the cluster fault cases of `tests/faults.rs`), the damage
//! cases, `verify` beside a writer (it reads files), the writer-lock cases (etcd has no
//! single writer), read-only opens compared file by file, group commit (counts file syncs),
//! backup into an empty `Storage`, the random histories with crashes, and the retention
//! cases (written over `StorageFactory`, a backend of files or memory).
//!
//! Not run because etcd cannot express them (see the crate docs and `docs/distributed.md`):
//! * more than 127 writes in one transaction (etcd's default `--max-txn-ops` is 128; the
//!   commit is `TooLarge` naming the limit, checked by `tests/cluster.rs`):
//!   `batch_get_many_equals_gets`, `crud_engine_reads_agree`, `crud_many_keys_reopen`,
//!   `scan_sees_own_writes`, `scan_stream_many_keys`, `tuning_variants_round_trip`,
//!   `range_removal_across_flushes_and_compactions`;
//! * engine reads at `u64::MAX` ("everything") straight through `Engine::scan`
//!   (`keys_key_only_equals_full_scan` compares `scan_keys` with `scan` there): etcd answers
//!   `VersionNotFound` beyond its revision range, where the file engines clamp to the newest
//!   commit;
//! * consecutive sequence numbers 1, 2, 3 (a version is an etcd revision, counted by the
//!   cluster): `versions_sequence_numbers`;
//! * imports that keep versions (etcd assigns revisions; `import_commit` is refused):
//!   `export_round_trip_all_versions`, `export_latest_scope`, `export_copy_after_merge`,
//!   `export_damaged_stream_is_an_error`, `export_import_crosses_file_boundaries`,
//!   `expiry_survives_copy`;
//! * a range removal as a write over its whole range (`range_removal_conflicts`): on etcd it
//!   writes the keys it removes and compares the range it listed, so a concurrent transaction
//!   that touched a key the range did not hold commits (it serializes after the removal, which
//!   changed nothing there); one that touched a removed key conflicts, and so does the
//!   removal when a commit into its range lands first, as everywhere.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use kv_conformance::{Place, Runs};
use kv_etcd::{Etcd, EtcdConfig};

/// A fresh prefix on the test cluster.
pub struct EtcdPlace(EtcdConfig);

#[kv_conformance::kv_api::async_trait]
impl Place for EtcdPlace {
    type Location = EtcdConfig;
    const NAME: &'static str = "etcd-cluster";

    fn new() -> Self {
        EtcdPlace(common::fresh("conformance"))
    }

    async fn location(&self) -> kv_api::Result<EtcdConfig> {
        Ok(self.0.clone())
    }
}

/// The etcd engine, on its places.
pub struct EtcdFamily;

impl Runs<EtcdPlace> for EtcdFamily {
    type Engine = Etcd;
}

macro_rules! etcd_cases {
    ($($test:ident => $group:ident :: $case:ident,)*) => {
        $(
            #[test]
            #[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
            fn $test() {
                kv_conformance::block_on(
                    kv_conformance::cases::$group::$case::<EtcdFamily, EtcdPlace>(),
                );
            }
        )*

        /// The cases run on etcd.
        const CASES: &[&str] = &[$(stringify!($test)),*];
    };
}

etcd_cases! {
    crud_insert_get_remove => crud::insert_get_remove,
    crud_slots_independent => crud::slots_independent,
    crud_overwrite => crud::overwrite,
    crud_empty_store => crud::empty_store,
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
    versions_one_version_per_transaction => versions::one_version_per_transaction,
    versions_commit_time_monotonic => versions::commit_time_monotonic,
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
    scan_skips_other_key_types => scan::skips_other_key_types,
    snapshot_stable_under_commits => snapshot::stable_under_commits,
    snapshot_at_every_version => snapshot::at_every_version,
    snapshot_at_unknown_version => snapshot::at_unknown_version,
    snapshot_is_read_only => snapshot::is_read_only,
    reopen_after_each_operation => reopen::after_each_operation,
    reopen_read_only_beside_writer => reopen::read_only_beside_writer,
    reopen_closed_store => reopen::closed_store,
    reopen_close_twice => reopen::close_twice,
    queries_abort_discards_writes => queries::abort_discards_writes,
    queries_get_unremoved_skips_removals => queries::get_unremoved_skips_removals,
    queries_keys_in_type_order => queries::keys_in_type_order,
    queries_last_updated_time => queries::last_updated_time,
    queries_stats_counters => queries::stats_counters,
    concurrency_counters_no_lost_update => concurrency::counters_no_lost_update,
    concurrency_transfers_keep_total => concurrency::transfers_keep_total,
    concurrency_merge_during_commits => concurrency::merge_during_commits,
    batch_get_many_records_reads => batch::get_many_records_reads,
    range_removal_removes_exactly_the_range => range_removal::removes_exactly_the_range,
    range_removal_prefix_and_whole_slot => range_removal::prefix_and_whole_slot,
    range_removal_versions_of_removed_keys => range_removal::versions_of_removed_keys,
    range_removal_atomic_with_other_writes => range_removal::atomic_with_other_writes,
    range_removal_through_merge => range_removal::through_merge,
    expiry_reads_absent_from_expiry_time => expiry::reads_absent_from_expiry_time,
    expiry_stable_view => expiry::stable_view,
    expiry_overwrite_and_remove => expiry::overwrite_and_remove,
    expiry_merge_reclaims => expiry::merge_reclaims,
    keys_lazy_value_is_the_snapshots => keys::lazy_value_is_the_snapshots,
    keys_key_only_scans_conflict_like_scans => keys::key_only_scans_conflict_like_scans,
    keys_key_only_leaves_out_expired => keys::key_only_leaves_out_expired,
}

/// The list above names cases of the suite: a renamed case fails here, not silently.
#[test]
fn cases_are_named_once() {
    let mut seen = std::collections::BTreeSet::new();
    for case in CASES {
        assert!(seen.insert(*case), "{case} listed twice");
    }
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
}
