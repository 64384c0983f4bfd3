#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder: the `kv_fuzz` targets, run by cargo-fuzz.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Runs each target (all of them by default) for SECONDS_PER_TARGET seconds (default 60),
# JOBS at a time (default 2), on its corpus fuzz/corpus/<target>/ (libFuzzer adds the new
# inputs there), prints the executions per target (libFuzzer's final
# stat::number_of_executed_units), then minimizes each corpus that ran with `cargo fuzz cmin`
# (MINIMIZE=0 skips that). A crash leaves its input in fuzz/artifacts/<target>/; keep it as
# fuzz/regressions/<target>/<name> and `cargo test -p kv-fuzz` replays it from then on.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). It passes nightly-only flags, which
# RUSTC_BOOTSTRAP=1 allows on a stable toolchain; no sanitizer (the code is safe Rust, and
# the targets' assertions and overflow checks are what fails). CARGO_TARGET_DIR is honoured.
# FUZZ_ARGS adds libFuzzer flags: FUZZ_ARGS="-fork=1 -ignore_crashes=1" goes on fuzzing past
# a known crash (its inputs still go to fuzz/artifacts/<target>/).
set -euo pipefail

secs=${1:-60}
shift || true
jobs=${JOBS:-2}
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none)
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    flags+=(--target-dir "$CARGO_TARGET_DIR/cargo-fuzz")
fi
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build "${flags[@]}"
logs=$(mktemp -d)
export secs logs FUZZ_ARGS=${FUZZ_ARGS:-}
export FUZZ_FLAGS="${flags[*]}"
# -timeout: an input that runs 10 s is a hang; -rss_limit_mb also caps single allocations.
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} sh -c '
    mkdir -p corpus/{}
    cargo fuzz run $FUZZ_FLAGS {} -- -max_total_time=$secs -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 $FUZZ_ARGS >"$logs/{}.log" 2>&1 || true
'

printf '\n%-16s %14s %10s  %s\n' target executions exec/s result
status=0
for t in "${targets[@]}"; do
    log=$logs/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # -fork mode prints no final stats: its last status line counts the executions.
    [[ -n $execs ]] || execs=$(sed -n 's/^#\([0-9]*\): cov.*/\1/p' "$log" | tail -1)
    crashes=$(sed -n 's|.*oom/timeout/crash: \([0-9/]*\).*|\1|p' "$log" | tail -1)
    result=ok
    if [[ -n $crashes && $crashes != 0/0/0 ]]; then
        result="oom/timeout/crash $crashes: see fuzz/artifacts/$t/"
        status=1
    elif grep -q 'Test unit written to' "$log"; then
        result="CRASH: $(sed -n 's/.*Test unit written to //p' "$log" | tail -1)"
        status=1
    elif [[ -z $execs ]]; then
        result="did not run, see $log"
        status=1
    fi
    printf '%-16s %14s %10s  %s\n' "$t" "${execs:-?}" "$(( ${execs:-0} / secs ))" "$result"
done
echo "logs: $logs"

if [[ ${MINIMIZE:-1} != 0 ]]; then
    for t in "${targets[@]}"; do
        # Edges only, smallest covering set: the corpus stays small enough to keep in git
        # (with hit counters, the whole-store inputs of dir_image alone came to 12 MB).
        cargo fuzz cmin $FUZZ_FLAGS "$t" -- -use_counters=0 -set_cover_merge=1 \
            >"$logs/$t.cmin.log" 2>&1 ||
            echo "cmin $t failed: see $logs/$t.cmin.log"
    done
    du -sh corpus
fi
exit $status
