#!/bin/sh
# The runs behind docs/benchmarks.md's issue #14 and #17 sections, one after another, each
# output (markdown tables on stdout, progress on stderr) in $OUT/<name>.md with the date and
# the load average before and after. Usage, in benches/peers, after
# `cargo build --release --features rocksdb`:
#
#   sh run-14-17.sh [headline headline200k engine scale10m json blob]   # default: all
#
# `KV_BENCH_DIR` (where the stores live) and `OUT` (default /tmp/kv-peers-runs) are honoured.
set -eu
BIN=${CARGO_TARGET_DIR:-target}/release/kv-peers-bench
OUT=${OUT:-/tmp/kv-peers-runs}
mkdir -p "$OUT"

run() { # name, then VAR=value assignments, then the binary's arguments (store labels)
    name=$1
    shift
    vars=""
    while [ $# -gt 0 ] && case $1 in *=*) true ;; *) false ;; esac; do
        vars="$vars $1"
        shift
    done
    {
        echo "<!-- $name: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load before: $(uptime | sed 's/.*load average: //') -->"
        echo "<!-- command:$vars cargo run --release --features rocksdb -- $* -->"
        start=$(date +%s)
        # shellcheck disable=SC2086
        env $vars "$BIN" "$@" 2>"$OUT/$name.log"
        echo "<!-- $name: $(( $(date +%s) - start )) s; load after: $(uptime | sed 's/.*load average: //') -->"
    } >"$OUT/$name.md"
    echo "$name done: $OUT/$name.md" >&2
}

want() { [ -z "$SEL" ] || echo " $SEL " | grep -q " $1 "; }
SEL="$*"

# Issue #14 headline: 1,000,000 keys, typed API, each store in its own process (peak RSS).
want headline && run headline KV_BENCH_SCALE=full KV_PEERS_API=store KV_PEERS_EACH=1 \
    bitcask/file lsm/file fjall redb sled rocksdb
# The same at 200,000 keys.
want headline200k && run headline-200k KV_BENCH_SCALE=200k KV_PEERS_API=store KV_PEERS_EACH=1 \
    bitcask/file lsm/file fjall redb sled rocksdb
# The byte-level `Engine` API, second table.
want engine && run engine KV_BENCH_SCALE=full KV_PEERS_API=engine KV_PEERS_EACH=1 \
    bitcask/file lsm/file fjall redb sled rocksdb
# Scale: 10,000,000 keys, fill + random get + scans (LSM, Bitcask, RocksDB, fjall).
want scale10m && run scale10m KV_BENCH_SCALE=10m KV_PEERS_API=store KV_PEERS_EACH=1
# Issue #17 (a): compressible text, per codec.
if want json; then
    run json-none KV_BENCH_SCALE=full KV_PEERS_API=store KV_PEERS_EACH=1 KV_PEERS_GROUPS=json \
        KV_PEERS_CODEC=none bitcask/file lsm/file fjall rocksdb
    run json-lz4 KV_BENCH_SCALE=full KV_PEERS_API=store KV_PEERS_EACH=1 KV_PEERS_GROUPS=json \
        KV_PEERS_CODEC=lz4 lsm/file fjall rocksdb
    run json-zstd KV_BENCH_SCALE=full KV_PEERS_API=store KV_PEERS_EACH=1 KV_PEERS_GROUPS=json \
        KV_PEERS_CODEC=zstd lsm/file rocksdb
fi
# Issue #17 (b): 64 KiB values, without and with blob separation (ours: the LSM's default
# 4 KiB blob threshold, turned off for the first run).
if want blob; then
    run blob-off KV_BENCH_SCALE=full KV_PEERS_API=store KV_PEERS_EACH=1 KV_PEERS_GROUPS=blob \
        KV_PEERS_LSM_BLOB_THRESHOLD=off bitcask/file lsm/file fjall rocksdb
    run blob-on KV_BENCH_SCALE=full KV_PEERS_API=store KV_PEERS_EACH=1 KV_PEERS_GROUPS=blob \
        KV_PEERS_BLOB=1 KV_PEERS_LSM_BLOB_THRESHOLD=4096 lsm/file fjall rocksdb
fi
