#!/usr/bin/env bash
# kv-etcd's whole test suite against a real 3-member etcd cluster on loopback, in one command:
# installs etcd (Debian's etcd-server) and protoc (protobuf-compiler, for etcd-client's build)
# when missing, starts the cluster (scripts/etcd-cluster.sh), runs every test of kv-etcd with
# the cluster tests included (they are `#[ignore]`d in a plain `cargo test`, which has no
# cluster), runs the quickstart on etcd, and always stops the cluster.
#
#   scripts/test-etcd.sh                 # everything
#   scripts/test-etcd.sh conformance --nocapture  # extra arguments go to the test harness
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO=sudo; fi
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # tests/tls.rs makes its certificates
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

echo "== etcd cluster"
scripts/etcd-cluster.sh start
trap 'scripts/etcd-cluster.sh stop' EXIT
KV_ETCD_ENDPOINTS="$(scripts/etcd-cluster.sh endpoints)"
export KV_ETCD_ENDPOINTS

echo "== kv-etcd tests, cluster tests included (conformance cases, faults, auth, limits)"
# Test binaries run one after another; inside `faults`, the tests that kill members take a lock.
# Extra arguments are test-harness arguments (filters, --nocapture). A run in which no test
# passed (a filter matching nothing) fails: it must not look green.
log="$(mktemp)"
cargo test -p kv-etcd --all-features -- --include-ignored "$@" 2>&1 | tee "$log"
passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
rm -f "$log"
echo "== kv-etcd: $passed tests passed"
if ((passed == 0)); then
    echo "no test ran (filter: $*)" >&2
    exit 1
fi

if (($# == 0)); then
    echo "== the quickstart on etcd"
    cargo run --features etcd --example quickstart_etcd
fi
