#!/usr/bin/env bash
# A 3-member etcd cluster on 127.0.0.1 for kv-etcd's tests (Debian's etcd-server package).
#
#   scripts/etcd-cluster.sh start    # members m0 m1 m2: clients on 23790/23791/23792,
#                                    # peers on 23800/23801/23802, data in $KV_ETCD_DIR
#   scripts/etcd-cluster.sh status   # endpoint health and status of each member
#   scripts/etcd-cluster.sh stop     # kills the members, deletes the data
#   scripts/etcd-cluster.sh kill N   # SIGKILLs member N (fault tests)
#   scripts/etcd-cluster.sh restart N  # starts member N again on its data
#   scripts/etcd-cluster.sh endpoints  # prints the client endpoints, comma-separated
#
# The cluster uses etcd's own defaults (1.5 MiB requests, 128 operations per transaction, no
# auto-compaction). KV_ETCD_DIR (default /tmp/kv-etcd-cluster) holds data dirs, logs, pids.
set -euo pipefail

DIR="${KV_ETCD_DIR:-/tmp/kv-etcd-cluster}"
ETCD="${ETCD_BIN:-etcd}"
BASE_CLIENT=23790
BASE_PEER=23800
TOKEN="kv-etcd-test"

client_url() { echo "http://127.0.0.1:$((BASE_CLIENT + $1))"; }
peer_url() { echo "http://127.0.0.1:$((BASE_PEER + $1))"; }
endpoints() { echo "$(client_url 0),$(client_url 1),$(client_url 2)"; }
initial_cluster() { echo "m0=$(peer_url 0),m1=$(peer_url 1),m2=$(peer_url 2)"; }

start_member() {
    local n=$1 state=$2
    mkdir -p "$DIR"
    nohup "$ETCD" --name "m$n" --data-dir "$DIR/m$n" \
        --listen-client-urls "$(client_url "$n")" --advertise-client-urls "$(client_url "$n")" \
        --listen-peer-urls "$(peer_url "$n")" --initial-advertise-peer-urls "$(peer_url "$n")" \
        --initial-cluster "$(initial_cluster)" --initial-cluster-token "$TOKEN" \
        --initial-cluster-state "$state" \
        >>"$DIR/m$n.log" 2>&1 &
    echo $! >"$DIR/m$n.pid"
}

# Every member answers /health with true (curl: Debian's etcd-server has no etcdctl).
healthy() {
    for n in 0 1 2; do
        curl -sf --max-time 2 "$(client_url "$n")/health" | grep -q '"health":"true"' || return 1
    done
}

wait_healthy() {
    for _ in $(seq 1 60); do
        if healthy; then return 0; fi
        sleep 0.5
    done
    echo "etcd cluster did not become healthy; logs in $DIR" >&2
    tail -n 20 "$DIR"/m*.log >&2 || true
    return 1
}

stop_member() {
    local n=$1 sig=${2:-TERM}
    if [[ -f "$DIR/m$n.pid" ]]; then
        local pid
        pid=$(cat "$DIR/m$n.pid")
        kill "-$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$DIR/m$n.pid"
    fi
}

case "${1:-}" in
    start)
        if [[ -f "$DIR/m0.pid" ]] && healthy; then
            echo "etcd cluster already running: $(endpoints)"
            exit 0
        fi
        "$0" stop >/dev/null 2>&1 || true
        for n in 0 1 2; do start_member "$n" new; done
        wait_healthy
        echo "etcd cluster running: $(endpoints) (data in $DIR)"
        ;;
    stop)
        for n in 0 1 2; do stop_member "$n"; done
        rm -rf "$DIR"
        echo "etcd cluster stopped"
        ;;
    kill)
        stop_member "${2:?member number}" KILL
        ;;
    restart)
        start_member "${2:?member number}" existing
        ;;
    status)
        for n in 0 1 2; do
            printf 'm%s %s ' "$n" "$(client_url "$n")"
            curl -s --max-time 2 -X POST -d '{}' "$(client_url "$n")/v3/maintenance/status" ||
                printf 'down'
            echo
        done
        ;;
    endpoints)
        endpoints
        ;;
    *)
        echo "usage: $0 start|stop|status|kill N|restart N|endpoints" >&2
        exit 2
        ;;
esac
