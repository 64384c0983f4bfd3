//! The markdown tables: ops/s per store, ratios of our file-backed engines to the best peer,
//! bytes on disk, memory, reopen times, the targets of issue #14 and the issue #17 tables.

use std::collections::BTreeMap;

use crate::ours::Api;
use crate::workload::Sizes;

/// Results of one store: rates (ops/s) and other measures (bytes, ms, KiB) by name.
pub struct Column {
    pub label: String,
    /// `Some(engine)` for our engines on the file backend.
    pub ours: Option<&'static str>,
    values: BTreeMap<String, f64>,
}

impl Column {
    pub fn new(label: String, ours: Option<&'static str>) -> Self {
        Column {
            label,
            ours,
            values: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, name: &str, value: f64) {
        self.values.insert(name.to_string(), value);
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    fn is_peer(&self) -> bool {
        !self.label.contains('/')
    }

    /// One line per value, for a parent process ([`Column::parse`]).
    pub fn serialize(&self) -> String {
        let ours = self.ours.unwrap_or("-");
        self.values
            .iter()
            .map(|(k, v)| format!("KVPEERS\t{}\t{ours}\t{k}\t{v}\n", self.label))
            .collect()
    }

    /// The columns in a child's output (other lines are ignored).
    pub fn parse(text: &str) -> Vec<Column> {
        let mut out: Vec<Column> = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 5 || f[0] != "KVPEERS" {
                continue;
            }
            let ours = match f[2] {
                "bitcask" => Some("bitcask"),
                "lsm" => Some("lsm"),
                _ => None,
            };
            if out.last().is_none_or(|c| c.label != f[1]) {
                out.push(Column::new(f[1].to_string(), ours));
            }
            if let Ok(v) = f[4].parse() {
                out.last_mut().expect("a column").set(f[3], v);
            }
        }
        out
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
    ("scan_full", "keys/s, one scan of all"),
    (
        "scan_100_merged",
        "scans/s of 100 keys, after merge + reopen",
    ),
    ("scan_full_merged", "keys/s, full scan after merge + reopen"),
    ("get_loop", "reads/s, loop of gets"),
    ("get_many_100", "reads/s, batches of 100"),
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

fn fmt_bytes(b: f64) -> String {
    let mib = b / (1 << 20) as f64;
    if mib >= 1.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{:.0} KiB", b / 1024.0)
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("—".to_string(), f)
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

/// The first of `label` or `label+...` (a peer's column may carry a codec suffix).
fn peer<'a>(columns: &'a [Column], label: &str) -> Option<&'a Column> {
    column(columns, label).or_else(|| {
        columns
            .iter()
            .find(|c| c.label.split('+').next() == Some(label))
    })
}

pub fn print(columns: &[Column], sizes: Sizes, api: Api, each: bool) {
    let ours: Vec<&Column> = columns.iter().filter(|c| c.ours.is_some()).collect();
    println!();
    println!(
        "Scale `{}` (fill {} keys, {} durable commits, {} buffered commits, {} reads, {} scans, \
         {} keys x 10 versions merged, {} large values); our engines through the `{}` API; \
         read cache: {}; {}.",
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
        if each {
            "each store in its own process"
        } else {
            "all stores in one process"
        }
    );
    println!();

    let rows: Vec<&(&str, &str)> = ROWS
        .iter()
        .filter(|(row, _)| columns.iter().any(|c| c.get(row).is_some()))
        .collect();
    if !rows.is_empty() {
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
        for (row, unit) in rows {
            let mut line = format!("| {row} | {unit} |");
            for c in columns {
                line.push_str(&format!(" {} |", opt(c.get(row), fmt_ops)));
            }
            let best = best_peer(columns, row);
            for c in &ours {
                match (c.get(row), best) {
                    (Some(v), Some((peer, b))) => {
                        line.push_str(&format!(" {:.2} ({peer}) |", v / b))
                    }
                    _ => line.push_str(" — |"),
                }
            }
            println!("{line}");
        }
        print_store_table(columns, sizes);
        print_targets(columns, sizes);
    }
    print_issue17(columns);
}

/// Bytes on disk, memory and reopen per store.
fn print_store_table(columns: &[Column], sizes: Sizes) {
    println!();
    println!(
        "| store | bytes after fill of {} keys | bytes before merge | bytes after merge | \
         bytes on disk per buffered 1-key commit | per durable 1-key commit | reopen of {} keys | \
         same, in a fresh process | resident set grown by that open, per key | peak RSS of the process |",
        sizes.fill, sizes.fill
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in columns {
        let after = if c.get("merge").is_some() || c.get("bytes_after_merge").is_none() {
            opt(c.get("bytes_after_merge"), fmt_bytes)
        } else {
            format!(
                "{} (no compaction call)",
                opt(c.get("bytes_after_merge"), fmt_bytes)
            )
        };
        println!(
            "| {} | {} | {} | {after} | {} | {} | {} | {} | {} | {} |",
            c.label,
            opt(c.get("bytes_after_fill"), fmt_bytes),
            opt(c.get("bytes_before_merge"), fmt_bytes),
            opt(c.get("bytes_per_buffered_commit"), |b| format!("{b:.0} B")),
            opt(c.get("bytes_per_durable_commit"), |b| format!("{b:.0} B")),
            opt(c.get("reopen_ms"), |ms| format!("{ms:.1} ms")),
            opt(c.get("reopen_fresh_ms"), |ms| format!("{ms:.1} ms")),
            opt(c.get("reopen_rss_bytes_per_key"), |b| format!("{b:.0} B")),
            c.get("peak_rss_kib")
                .map_or("n/a".to_string(), |k| format!("{:.0} MiB", k / 1024.0)),
        );
    }
}

/// The targets of issue #14, on the file backend.
fn print_targets(columns: &[Column], sizes: Sizes) {
    // (our column, row, peer or None for the best peer, threshold)
    let targets: &[(&str, &str, Option<&str>, f64)] = &[
        ("bitcask/file", "get_random_1", None, 1.0),
        ("bitcask/file", "get_random_2", None, 1.0),
        ("lsm/file", "get_random_1", Some("rocksdb"), 1.0),
        ("lsm/file", "get_random_1", Some("fjall"), 1.0),
        ("lsm/file", "get_random_2", Some("rocksdb"), 1.0),
        ("lsm/file", "get_random_2", Some("fjall"), 1.0),
        ("lsm/file", "scan_100", Some("rocksdb"), 1.0),
        ("lsm/file", "scan_full", Some("rocksdb"), 1.0),
        ("bitcask/file", "scan_100", Some("fjall"), 1.0),
        ("bitcask/file", "scan_full", Some("fjall"), 1.0),
        ("bitcask/file", "scan_100_merged", Some("rocksdb"), 1.0),
        ("bitcask/file", "scan_full_merged", Some("rocksdb"), 1.0),
        ("bitcask/file", "commit_durable_1", Some("fjall"), 1.0),
        ("lsm/file", "commit_durable_1", Some("fjall"), 1.0),
        ("bitcask/file", "put_buffered", None, 1.0),
        ("lsm/file", "put_buffered", None, 1.0),
        ("bitcask/file", "fill_batch", None, 1.0),
        ("lsm/file", "fill_batch", None, 1.0),
    ];
    println!();
    println!("| target | ratio | threshold | |");
    println!("|---|---:|---:|---|");
    for (ours, row, peer_label, threshold) in targets {
        let Some(v) = column(columns, ours).and_then(|c| c.get(row)) else {
            continue;
        };
        let reference = match peer_label {
            Some(p) => peer(columns, p).and_then(|c| c.get(row)).map(|b| (*p, b)),
            None => best_peer(columns, row),
        };
        let Some((peer, b)) = reference else {
            continue;
        };
        let ratio = v / b;
        let verdict = if ratio >= *threshold {
            "met"
        } else {
            "not met"
        };
        println!(
            "| {ours} {row} >= {threshold:.1}x {peer} | {ratio:.2} | {threshold:.1} | {verdict} |"
        );
    }
    if let Some(ms) = column(columns, "bitcask/file").and_then(|c| c.get("reopen_ms")) {
        let scaled = ms * 1_000_000.0 / sizes.fill as f64;
        let verdict = match (sizes.fill == 1_000_000, ms < 100.0, scaled < 100.0) {
            (true, true, _) => "met",
            (true, false, _) => "not met",
            (false, _, true) => "on track (linear extrapolation)",
            (false, _, false) => "not met (linear extrapolation)",
        };
        println!(
            "| bitcask/file reopen of 1,000,000 keys < 100 ms | {ms:.1} ms for {} keys (~{scaled:.0} ms per 1M) | 100 ms | {verdict} |",
            sizes.fill
        );
    }
    // Memory: Bitcask's peak against each peer's peak plus its keydir's own size (the
    // resident set a fresh open of the store grew by).
    if let Some(b) = column(columns, "bitcask/file")
        && let (Some(own), Some(per_key)) =
            (b.get("peak_rss_kib"), b.get("reopen_rss_bytes_per_key"))
    {
        let keydir_kib = per_key * sizes.fill as f64 / 1024.0;
        for c in columns.iter().filter(|c| c.is_peer()) {
            let Some(p) = c.get("peak_rss_kib") else {
                continue;
            };
            let verdict = if own <= p + keydir_kib {
                "met"
            } else {
                "not met"
            };
            println!(
                "| bitcask/file peak RSS <= {} peak + keydir ({per_key:.0} B/key x {} keys) | {:.0} MiB vs {:.0} + {:.0} MiB | | {verdict} |",
                c.label,
                sizes.fill,
                own / 1024.0,
                p / 1024.0,
                keydir_kib / 1024.0
            );
        }
    }
}

/// Issue #17: space of compressible text, write amplification of 64 KiB values, get_many.
fn print_issue17(columns: &[Column]) {
    if columns.iter().any(|c| c.get("json_fill").is_some()) {
        println!();
        println!(
            "| store (codec) | text rows/s, txns of 1,000, synced | user bytes (keys + values) | on disk after fill + flush | after compaction | after compaction / user bytes |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for c in columns.iter().filter(|c| c.get("json_fill").is_some()) {
            let user = c.get("json_user_bytes");
            let after = c.get("json_bytes_compact");
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                c.label,
                opt(c.get("json_fill"), fmt_ops),
                opt(user, fmt_bytes),
                opt(c.get("json_bytes_fill"), fmt_bytes),
                opt(after, fmt_bytes),
                match (after, user) {
                    (Some(a), Some(u)) => format!("{:.2}", a / u),
                    _ => "—".to_string(),
                }
            );
        }
    }
    if columns.iter().any(|c| c.get("blob_fill").is_some()) {
        println!();
        println!(
            "| store | 64 KiB values/s, txns of 16, synced | user bytes | wchar (bytes written by the process) | write amplification (wchar / user) | write_bytes / user | on disk after fill + flush |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for c in columns.iter().filter(|c| c.get("blob_fill").is_some()) {
            let user = c.get("blob_user_bytes").unwrap_or(f64::NAN);
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.label,
                opt(c.get("blob_fill"), fmt_ops),
                fmt_bytes(user),
                opt(c.get("blob_wchar"), fmt_bytes),
                opt(c.get("blob_wchar"), |w| format!("{:.2}", w / user)),
                opt(c.get("blob_write_bytes"), |w| format!("{:.2}", w / user)),
                opt(c.get("blob_bytes_on_disk"), fmt_bytes),
            );
        }
    }
    if columns.iter().any(|c| c.get("get_many_100").is_some()) {
        println!();
        println!("| store | loop of gets, reads/s | batches of 100, reads/s | batch / loop |");
        println!("|---|---:|---:|---:|");
        for c in columns.iter().filter(|c| c.get("get_many_100").is_some()) {
            let (l, b) = (c.get("get_loop"), c.get("get_many_100"));
            println!(
                "| {} | {} | {} | {} |",
                c.label,
                opt(l, fmt_ops),
                opt(b, fmt_ops),
                match (l, b) {
                    (Some(l), Some(b)) => format!("{:.2}", b / l),
                    _ => "—".to_string(),
                }
            );
        }
    }
}
