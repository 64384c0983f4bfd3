//! The markdown tables: ops/s per store, ratios of our file-backed engines to the best peer,
//! bytes before/after merge, reopen times, and the targets of the benchmark issue.

use std::collections::BTreeMap;

use crate::ours::Api;
use crate::workload::Sizes;

/// Results of one store.
pub struct Column {
    pub label: String,
    /// `Some(engine)` for our engines on the file backend.
    pub ours: Option<&'static str>,
    values: BTreeMap<&'static str, f64>,
    pub bytes_before_merge: Option<u64>,
    pub bytes_after_merge: Option<u64>,
    pub reopen_ms: Option<f64>,
}

impl Column {
    pub fn new(label: String, ours: Option<&'static str>) -> Self {
        Column {
            label,
            ours,
            values: BTreeMap::new(),
            bytes_before_merge: None,
            bytes_after_merge: None,
            reopen_ms: None,
        }
    }

    pub fn set(&mut self, workload: &'static str, ops_per_sec: f64) {
        self.values.insert(workload, ops_per_sec);
    }

    fn get(&self, workload: &str) -> Option<f64> {
        self.values.get(workload).copied()
    }

    fn is_peer(&self) -> bool {
        !self.label.contains('/')
    }
}

/// Rows in order, with what one "op" is.
const ROWS: &[(&str, &str)] = &[
    ("fill_batch", "keys/s, txns of 1,000, synced"),
    ("commit_durable_1", "commits/s, 1 committer"),
    ("commit_durable_64", "commits/s, 64 committers"),
    ("put_buffered", "commits/s, 1 key each"),
    ("get_random_1", "reads/s, 1 reader"),
    ("get_random_2", "reads/s, 2 readers"),
    ("scan_100", "scans/s of 100 keys"),
    ("overwrite_10_versions", "writes/s, buffered"),
    ("merge", "keys/s merged"),
    ("reopen", "keys/s opened"),
    ("large_fill", "64 KiB values/s, synced"),
    ("large_read", "64 KiB reads/s"),
];

fn fmt_ops(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn fmt_bytes(b: u64) -> String {
    let mib = b as f64 / (1 << 20) as f64;
    if mib >= 1.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{:.0} KiB", b as f64 / 1024.0)
    }
}

/// The best peer of a row: (label, ops/s).
fn best_peer<'a>(columns: &'a [Column], row: &str) -> Option<(&'a str, f64)> {
    columns
        .iter()
        .filter(|c| c.is_peer())
        .filter_map(|c| c.get(row).map(|v| (c.label.as_str(), v)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn column<'a>(columns: &'a [Column], label: &str) -> Option<&'a Column> {
    columns.iter().find(|c| c.label == label)
}

pub fn print(columns: &[Column], sizes: Sizes, api: Api) {
    let ours: Vec<&Column> = columns.iter().filter(|c| c.ours.is_some()).collect();
    println!();
    println!(
        "Scale `{}` (fill {} keys, {} durable commits, {} buffered commits, {} reads, {} scans, \
         {} keys x 10 versions merged, {} large values); our engines through the `{}` API; \
         read cache: {}.",
        sizes.name,
        sizes.fill,
        sizes.durable,
        sizes.buffered,
        sizes.reads,
        sizes.scans,
        sizes.merge_keys,
        sizes.large,
        api.name(),
        match crate::workload::cache_bytes() {
            Some(bytes) => format!("{} MiB per store", bytes >> 20),
            None => "each store's default".to_string(),
        },
    );
    println!();

    let mut header = String::from("| workload | unit |");
    let mut rule = String::from("|---|---|");
    for c in columns {
        header.push_str(&format!(" {} |", c.label));
        rule.push_str("---:|");
    }
    for c in &ours {
        header.push_str(&format!(" {} / best peer |", c.label));
        rule.push_str("---|");
    }
    println!("{header}");
    println!("{rule}");
    for (row, unit) in ROWS {
        let mut line = format!("| {row} | {unit} |");
        for c in columns {
            match c.get(row) {
                Some(v) => line.push_str(&format!(" {} |", fmt_ops(v))),
                None => line.push_str(" — |"),
            }
        }
        let best = best_peer(columns, row);
        for c in &ours {
            match (c.get(row), best) {
                (Some(v), Some((peer, b))) => line.push_str(&format!(" {:.2} ({peer}) |", v / b)),
                _ => line.push_str(" — |"),
            }
        }
        println!("{line}");
    }

    println!();
    println!(
        "| store | bytes before merge | bytes after merge | reopen of {} keys |",
        sizes.fill
    );
    println!("|---|---:|---:|---:|");
    for c in columns {
        let b = |v: Option<u64>| v.map_or("—".to_string(), fmt_bytes);
        let ms = c
            .reopen_ms
            .map_or("—".to_string(), |ms| format!("{ms:.1} ms"));
        let after = if c.get("merge").is_some() {
            b(c.bytes_after_merge)
        } else {
            format!("{} (no compaction call)", b(c.bytes_after_merge))
        };
        println!(
            "| {} | {} | {after} | {ms} |",
            c.label,
            b(c.bytes_before_merge)
        );
    }

    print_targets(columns, sizes);
}

/// The targets of the benchmark issue, on the file backend.
fn print_targets(columns: &[Column], sizes: Sizes) {
    // (our column, row, peer or None for the best peer, threshold)
    let targets: &[(&str, &str, Option<&str>, f64)] = &[
        ("bitcask/file", "put_buffered", None, 1.0),
        ("bitcask/file", "commit_durable_64", None, 1.0),
        ("bitcask/file", "fill_batch", None, 1.0),
        ("bitcask/file", "get_random_1", Some("redb"), 0.8),
        ("bitcask/file", "get_random_2", Some("redb"), 0.8),
        ("lsm/file", "fill_batch", Some("fjall"), 1.0),
        ("lsm/file", "put_buffered", Some("fjall"), 1.0),
        ("lsm/file", "get_random_1", Some("rocksdb"), 1.0),
        ("lsm/file", "get_random_2", Some("rocksdb"), 1.0),
        ("bitcask/file", "scan_100", Some("fjall"), 1.0),
        ("lsm/file", "scan_100", Some("fjall"), 1.0),
    ];
    println!();
    println!("| target | ratio | threshold | |");
    println!("|---|---:|---:|---|");
    for (ours, row, peer, threshold) in targets {
        let Some(v) = column(columns, ours).and_then(|c| c.get(row)) else {
            continue;
        };
        let reference = match peer {
            Some(p) => column(columns, p).and_then(|c| c.get(row)).map(|b| (*p, b)),
            None => best_peer(columns, row),
        };
        let Some((peer, b)) = reference else {
            continue;
        };
        let ratio = v / b;
        let verdict = if ratio >= *threshold { "met" } else { "MISSED" };
        println!("| {ours} {row} vs {peer} | {ratio:.2} | {threshold:.1} | {verdict} |");
    }
    if let Some(ms) = column(columns, "bitcask/file").and_then(|c| c.reopen_ms) {
        let scaled = ms * 1_000_000.0 / sizes.fill as f64;
        let verdict = if sizes.fill >= 1_000_000 {
            if ms < 300.0 { "met" } else { "MISSED" }
        } else if scaled < 300.0 {
            "on track (linear extrapolation)"
        } else {
            "MISSED (linear extrapolation)"
        };
        println!(
            "| bitcask/file reopen of 1,000,000 keys < 300 ms | {ms:.1} ms for {} keys (~{scaled:.0} ms per 1M) | 300 ms | {verdict} |",
            sizes.fill
        );
    }
}
