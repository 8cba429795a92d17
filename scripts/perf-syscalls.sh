#!/usr/bin/env bash
# System calls per delivery: one rooms workload of `relaydeck load` against a relaydeck server,
# with `perf stat` counting the server's socket writes and reads, epoll waits, futex calls and
# context switches over 4 s of the measured window. Shows whether a change removed writes (the
# kernel's share of a delivery) or only instructions.
#
# Usage: scripts/perf-syscalls.sh [ROOMS-ARGS…]
#   e.g. scripts/perf-syscalls.sh --rooms 100 --players 8 --payload 256 --rate 20
# Settings (environment): RELAYDECK_BIN (default: cargo build --release), CONFIG_EXTRA (JSON
# merged into the server's config, e.g. '{"outbox":{"write_delay_ms":1}}'), PORT (default
# 17941), SERVER_THREADS (the server runtime's worker threads, through tokio's
# TOKIO_WORKER_THREADS; the generator keeps its own), KEEP_STAT (1: also print perf's raw CSV).
# Needs perf (Debian: linux-perf) and jq.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT=${PORT:-17941}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
need_jq
(( $# > 0 )) || set -- --rooms 100 --players 8 --payload 256 --rate 20
use_relaydeck_bin
make_work_dir
load_relaydeck_config >"$WORK/base.json"
jq -s '.[0] * .[1]' "$WORK/base.json" <(echo "${CONFIG_EXTRA:-{\}}") >"$WORK/relaydeck.json"
unset TOKIO_WORKER_THREADS
env RELAYDECK_LOG=warn ${SERVER_THREADS:+TOKIO_WORKER_THREADS=$SERVER_THREADS} "$RELAYDECK_BIN" serve --listen "127.0.0.1:$PORT" --config "$WORK/relaydeck.json" \
    --data-dir "$WORK/data" --admin-token perf-admin-token-of-at-least-32-characters >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
track "$SERVER_PID"
wait_for_port "$PORT" "$SERVER_PID"
EVENTS=syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_writev
EVENTS+=,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait
EVENTS+=,syscalls:sys_enter_futex,context-switches
# Counted from 2 s into the 8 s measured window (after the 2 s warm-up), for 4 s.
(sleep 4; perf stat -x, -e "$EVENTS" -p "$SERVER_PID" -- sleep 4 2>"$WORK/stat.csv" >/dev/null) &
STAT=$!
"$RELAYDECK_BIN" load rooms --url "ws://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --app-id load \
    --warmup 2 --duration 8 --json "$@" >"$WORK/report.json"
wait "$STAT"
[[ -n ${KEEP_STAT:-} ]] && cat "$WORK/stat.csv" >&2
per_second=$(jq '.deliveries_per_s' "$WORK/report.json")
jq -r '"server CPU per delivery  \(.server_cpu_us_per_delivery * 100 | round / 100) µs",
       "latency p50 / p99        \(.latency.p50_ms) / \(.latency.p99_ms) ms",
       "deliveries               \(.deliveries_per_s | floor)/s, \(.lost) lost"' "$WORK/report.json"
awk -F, -v rate="$per_second" '$1 ~ /^[0-9]+$/ {
    name = $3; sub(/^syscalls:sys_enter_/, "", name)
    printf "%-16s %9.0f/s  %.3f per delivery\n", name, $1 / 4, (rate > 0 ? $1 / 4 / rate : 0)
}' "$WORK/stat.csv"
