//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) and the kept crash inputs
//! (`fuzz/regressions/<target>/*`) through the `kv_fuzz` targets, as an ordinary test: what
//! fuzzing found once stays found. Every corpus directory and every `fuzz/fuzz_targets/` file
//! must name a target, and every target must have both.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Names of the entries of `dir` (none if it does not exist), `strip` cut off their end.
fn names(dir: &Path, strip: &str) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(strip).map(str::to_string))
        .collect()
}

fn target(name: &str) -> Option<kv_fuzz::Target> {
    kv_fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

#[test]
fn targets_corpus_and_fuzz_binaries_match() {
    let targets: BTreeSet<String> = kv_fuzz::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        names(&fuzz_dir().join("corpus"), ""),
        targets,
        "corpus directories"
    );
    assert_eq!(
        names(&fuzz_dir().join("fuzz_targets"), ".rs"),
        targets,
        "fuzz_targets/*.rs"
    );
    let regressions = names(&fuzz_dir().join("regressions"), "");
    assert!(
        regressions.is_subset(&targets),
        "regressions/{regressions:?}"
    );
}

#[test]
fn corpus_and_regressions_replay() {
    let mut failed = Vec::new();
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        for name in names(&fuzz_dir().join(kind), "") {
            let f = target(&name).unwrap_or_else(|| panic!("{kind}/{name}: no such target"));
            let dir = fuzz_dir().join(kind).join(&name);
            for file in names(&dir, "") {
                let path = dir.join(&file);
                let data = std::fs::read(&path).unwrap();
                count += 1;
                if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(&data))) {
                    let why = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failed.push(format!("{kind}/{name}/{file}: {why}"));
                }
            }
        }
    }
    assert!(count > 0, "no corpus at all");
    assert!(
        failed.is_empty(),
        "{} of {count} inputs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
