#!/usr/bin/env bash
# Server CPU per delivery of several relaydeck builds, alternated within each round so that
# every build meets the same machine load, and signal-fish-server once per round for the
# ratio. One generator (the first build's `relaydeck load`) drives every run.
#
# Usage: scripts/perf-ab.sh NAME=BINARY [NAME=BINARY…]
#   e.g. scripts/perf-ab.sh before=target-base/release/relaydeck after=target/release/relaydeck
# Settings (environment): ROUNDS (default 3), WARMUP / DURATION seconds (default 2 / 8),
# CONFIG_EXTRA (JSON merged into every relaydeck config, e.g. '{"outbox":{"write_delay_ms":1}}'
# — or give a build as NAME=BINARY@JSON to merge it for that build only), SIGNAL_FISH_BIN
# (default: installed into ~/.cache/relaydeck/perf once; "none" to leave it out),
# OUT (default target/perf/ab-<UTC time>), PORT (default 17921), PERF_NICE (a niceness for
# everything the script starts, e.g. -10 on a machine shared with builds), GENERATOR_THREADS
# (the generator's runtime threads; default one per core). The server's CPU per delivery moves
# with the generator's threads (on loopback a write wakes them): compare runs with the same.
# Prints one markdown row per round and workload: µs of server CPU per delivery · p50 / p99 ms,
# loss when there was any, and the load average at the run's end.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(( $# >= 1 )) || { echo "usage: perf-ab.sh NAME=BINARY [NAME=BINARY…]" >&2; exit 2; }
need_jq
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
DURATION=${DURATION:-8}
PORT=${PORT:-17921}
OUT=${OUT:-$ROOT/target/perf/ab-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
apply_perf_nice "$@"
use_signal_fish_bin

NAMES=() BINS=() EXTRAS=()
for build in "$@"; do
    name=${build%%=*} rest=${build#*=}
    bin=${rest%%@*} extra='{}'
    [[ $rest == *@* ]] && extra=${rest#*@}
    [[ -x $bin ]] || { echo "not an executable: $bin" >&2; exit 1; }
    NAMES+=("$name") BINS+=("$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")") EXTRAS+=("$extra")
done
GENERATOR=${BINS[0]}

make_work_dir

# The same configs the side-by-side script gives each server.
load_relaydeck_config >"$WORK/base.json"
load_signal_fish_config "$PORT" load >"$WORK/signal-fish.json"

# run INDEX|sf WORKLOAD-NAME ARGS…: one fresh server, one load run; prints the cell.
run() {
    local which=$1 workload=$2 name
    shift 2
    stop_server
    if [[ $which == sf ]]; then
        name=signal-fish
        (cd "$WORK" && SIGNAL_FISH_CONFIG_PATH="$WORK/signal-fish.json" exec "$SIGNAL_FISH_BIN") >>"$OUT/signal-fish.log" 2>&1 &
    else
        name=${NAMES[$which]}
        jq -s '.[0] * .[1]' "$WORK/base.json" <(echo "${CONFIG_EXTRA:-{\}}") >"$WORK/shared.json"
        jq -s '.[0] * .[1]' "$WORK/shared.json" <(echo "${EXTRAS[$which]}") >"$WORK/relaydeck.json"
        rm -rf "$WORK/data"
        RELAYDECK_LOG=warn "${BINS[$which]}" serve --listen "127.0.0.1:$PORT" --config "$WORK/relaydeck.json" \
            --data-dir "$WORK/data" --admin-token perf-admin-token-of-at-least-32-characters >>"$OUT/$name.log" 2>&1 &
    fi
    SERVER_PID=$!
    wait_for_port "$PORT" "$SERVER_PID"
    local report=$OUT/$workload.$name.$ROUND.json
    if ! "$GENERATOR" load rooms --url "ws://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --app-id load --json \
        ${GENERATOR_THREADS:+--threads "$GENERATOR_THREADS"} \
        --warmup "$WARMUP" --duration "$DURATION" "$@" >"$report" 2>"$report.err"; then
        echo "failed"
        stop_server
        return
    fi
    stop_server
    jq -r --arg load "$(cut -d' ' -f1 /proc/loadavg)" '
        if .deliveries == 0 then "nothing delivered (\($load))" else
        (.server.cpu.cpu_seconds * 1e6 / .deliveries) as $us |
        "\($us * 100 | round / 100) · \(.latency.p50_ms * 100 | round / 100) / \(.latency.p99_ms * 10 | round / 10)"
        + (if .lost > 0 then ", \(.loss_ratio * 1000 | round / 10)% lost" else "" end) + " (\($load))" end' "$report"
}

WORKLOADS=("r16x1k-480:1 × 16 × 1 KiB, 480/s:--rooms 1 --players 16 --payload 1024 --rate 480"
    "r100x8-20:100 × 8 × 256 B, 20/s:--rooms 100 --players 8 --payload 256 --rate 20")
header="| round | workload |"
rule="|---|---|"
for name in "${NAMES[@]}"; do header+=" $name |"; rule+="---|"; done
if [[ $SIGNAL_FISH_BIN != none ]]; then header+=" signal-fish-server |"; rule+="---|"; fi
{ echo "$header"; echo "$rule"; } | tee "$OUT/table.md"
for ROUND in $(seq "$ROUNDS"); do
    for workload in "${WORKLOADS[@]}"; do
        id=${workload%%:*} rest=${workload#*:}
        title=${rest%%:*} args=${rest#*:}
        row="| $ROUND | $title |"
        # Alternate the order too, so that no build always runs right after the same one.
        order=$(seq 0 $(( ${#NAMES[@]} - 1 )))
        (( ROUND % 2 == 0 )) && order=$(echo "$order" | tac)
        declare -A cells=()
        for i in $order; do
            # shellcheck disable=SC2086
            cells[$i]=$(run "$i" "$id" $args)
        done
        for i in $(seq 0 $(( ${#NAMES[@]} - 1 ))); do row+=" ${cells[$i]} |"; done
        if [[ $SIGNAL_FISH_BIN != none ]]; then
            # shellcheck disable=SC2086
            row+=" $(run sf "$id" $args) |"
        fi
        unset cells
        echo "$row" | tee -a "$OUT/table.md"
    done
done
echo "cells: µs of server CPU per delivery · p50 / p99 ms (load average at the run's end); reports in $OUT" | tee -a "$OUT/table.md"
