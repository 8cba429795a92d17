#!/usr/bin/env bash
# relaydeck and signal-fish-server 0.12.0 side by side: the same workloads from the same load
# generator (`relaydeck load`), one server at a time, each restarted fresh for each workload,
# on loopback. Prints a markdown table with ratios (see docs/PERFORMANCE.md) and keeps every
# run's JSON report.
#
# Usage: scripts/perf-side-by-side.sh            (about 6 minutes on 2 cores)
#        QUICK=1 scripts/perf-side-by-side.sh    (short windows: a smoke test of the script)
#        CPU_ONLY=1 scripts/perf-side-by-side.sh (only the server-CPU-per-delivery rows, 1 minute)
#
# Settings (environment):
#   PERF_CACHE            where signal-fish-server is installed (default ~/.cache/relaydeck/perf)
#   RELAYDECK_BIN         the relaydeck binary that generates load (default: cargo build --release)
#   RELAYDECK_SERVER_BIN  the relaydeck binary that serves (default: RELAYDECK_BIN), to measure
#                         another build's server with this generator
#   FLOOR_BIN             the stack alone, `examples/fanout_floor` (default: cargo build --release
#                         --example fanout_floor; "none" to leave it out): measured beside the
#                         two servers in the CPU-per-delivery rows, the least a relay on
#                         relaydeck's stack spends
#   SIGNAL_FISH_BIN       a signal-fish-server binary (default: installed into PERF_CACHE)
#   OUT                   folder for the reports (default target/perf/<UTC time>)
#   IDLE_CONNECTIONS      idle connections (default 10000; lowered if `ulimit -n` cannot be raised)
#   PUBSUB_RATE           publishes per second of the one pub/sub publisher (default 1000)
#   SEARCH_START          first rate of the rate search, per player (default 240)
#   PORT_RELAYDECK, PORT_SIGNAL_FISH   loopback ports (default 17901, 17902)
#   TABLE_FROM            a folder of an earlier run: print its table again without running
#   PERF_NICE             a niceness for this script and everything it starts (both servers and
#                         the generator alike), e.g. -10 on a machine shared with builds
#   GENERATOR_THREADS     the generator's runtime threads (default one per core); the servers'
#                         CPU per delivery moves with them, so compare runs with the same
#   PERF_PIN              1: the server on CPU 0 and the generator on CPU 1 (taskset), so that
#                         neither takes the other's core; shows what the generator costs the
#                         server on a 2-core machine
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OUT=${OUT:-$ROOT/target/perf/$(date -u +%Y%m%dT%H%M%SZ)}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
PUBSUB_RATE=${PUBSUB_RATE:-1000}
SEARCH_START=${SEARCH_START:-240}
PORT_RELAYDECK=${PORT_RELAYDECK:-17901}
PORT_SIGNAL_FISH=${PORT_SIGNAL_FISH:-17902}
ADMIN_TOKEN=perf-admin-token-of-at-least-32-characters
P99_TARGET_MS=20

if [[ ${QUICK:-0} == 1 ]]; then
    WARMUP=0.5 DURATION=2 STEP_WARMUP=0.5 STEP_DURATION=1 IDLE_HOLD=1
    IDLE_CONNECTIONS=${IDLE_CONNECTIONS_QUICK:-1000}
else
    WARMUP=2 DURATION=10 STEP_WARMUP=1 STEP_DURATION=3 IDLE_HOLD=3
fi

need_jq

if [[ -z ${TABLE_FROM:-} ]]; then
    apply_perf_nice "$@"
    # Each idle connection is a descriptor in the generator and another in the server.
    ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    FILES=$(ulimit -n)
    if (( FILES < IDLE_CONNECTIONS + 500 )); then
        echo "ulimit -n is $FILES: idle connections lowered from $IDLE_CONNECTIONS" >&2
        IDLE_CONNECTIONS=$(( FILES - 500 ))
    fi

    use_relaydeck_bin
    RELAYDECK_SERVER_BIN=${RELAYDECK_SERVER_BIN:-$RELAYDECK_BIN}
    if [[ -z ${FLOOR_BIN:-} ]]; then
        (cd "$ROOT" && cargo build --release --quiet --example fanout_floor)
        FLOOR_BIN=$ROOT/target/release/examples/fanout_floor
    fi

    use_signal_fish_bin
fi

SERVER_CPU=() GENERATOR_CPU=()
if [[ ${PERF_PIN:-0} == 1 ]]; then
    command -v taskset >/dev/null || { echo "PERF_PIN needs taskset (util-linux)" >&2; exit 1; }
    SERVER_CPU=(taskset -c 0) GENERATOR_CPU=(taskset -c 1)
fi

[[ -n ${TABLE_FROM:-} ]] || mkdir -p "$OUT"
make_work_dir

load_relaydeck_config >"$WORK/relaydeck.json"
load_signal_fish_config "$PORT_SIGNAL_FISH" load >"$WORK/signal-fish.json"

# start_server relaydeck|signal-fish: a fresh server (fresh memory, no rooms left over).
start_server() {
    stop_server
    case $1 in
        relaydeck)
            rm -rf "$WORK/data"
            RELAYDECK_LOG=warn "${SERVER_CPU[@]}" "$RELAYDECK_SERVER_BIN" serve --listen "127.0.0.1:$PORT_RELAYDECK" \
                --config "$WORK/relaydeck.json" --data-dir "$WORK/data" --admin-token "$ADMIN_TOKEN" \
                >>"$OUT/relaydeck.log" 2>&1 &
            SERVER_PID=$!
            wait_for_port "$PORT_RELAYDECK" "$SERVER_PID"
            URL=ws://127.0.0.1:$PORT_RELAYDECK ;;
        floor)
            "${SERVER_CPU[@]}" "$FLOOR_BIN" serve --listen "127.0.0.1:$PORT_RELAYDECK" \
                --config "$WORK/relaydeck.json" >>"$OUT/floor.log" 2>&1 &
            SERVER_PID=$!
            wait_for_port "$PORT_RELAYDECK" "$SERVER_PID"
            URL=ws://127.0.0.1:$PORT_RELAYDECK ;;
        signal-fish)
            # It also reads ./config.json: run it where there is none.
            (cd "$WORK" && SIGNAL_FISH_CONFIG_PATH="$WORK/signal-fish.json" exec "${SERVER_CPU[@]}" "$SIGNAL_FISH_BIN") \
                >>"$OUT/signal-fish.log" 2>&1 &
            SERVER_PID=$!
            wait_for_port "$PORT_SIGNAL_FISH" "$SERVER_PID"
            URL=ws://127.0.0.1:$PORT_SIGNAL_FISH ;;
    esac
}

# load NAME SERVER WORKLOAD ARGS…: one run on a fresh server, its JSON in $OUT/NAME.SERVER.json.
load() {
    local name=$1 server=$2 workload=$3
    shift 3
    start_server "$server"
    echo "· $name on $server" >&2
    if ! "${GENERATOR_CPU[@]}" "$RELAYDECK_BIN" load "$workload" --url "$URL" --server-pid "$SERVER_PID" --json \
        ${GENERATOR_THREADS:+--threads "$GENERATOR_THREADS"} "$@" \
        >"$OUT/$name.$server.json" 2>"$OUT/$name.$server.err"; then
        jq -n --arg e "$(cat "$OUT/$name.$server.err")" '{error: $e}' >"$OUT/$name.$server.json"
    fi
    stop_server
}

both() {
    local name=$1
    shift
    for server in signal-fish relaydeck; do load "$name" "$server" "$@"; done
}

# with_floor NAME WORKLOAD ARGS…: both servers, then the stack alone.
with_floor() {
    both "$@"
    if [[ $FLOOR_BIN != none ]]; then load "$1" floor "${@:2}"; fi
}

if [[ -n ${TABLE_FROM:-} ]]; then
    OUT=$TABLE_FROM
    # shellcheck disable=SC1091
    source "$OUT/run.env"
else
    LOAD_AVERAGE_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    STARTED=$(date +%s)
    ROOMS=(rooms --app-id load --warmup "$WARMUP" --duration "$DURATION")

    # Server CPU per delivery, at rates both servers carry without loss.
    with_floor r16x1k-480 "${ROOMS[@]}" --rooms 1 --players 16 --payload 1024 --rate 480
    with_floor r100x8-20 "${ROOMS[@]}" --rooms 100 --players 8 --payload 256 --rate 20
    if [[ ${CPU_ONLY:-0} != 1 ]]; then
    both r16x1k-30 "${ROOMS[@]}" --rooms 1 --players 16 --payload 1024 --rate 30
    both r100x8-60 "${ROOMS[@]}" --rooms 100 --players 8 --payload 256 --rate 60
    both r16x1k-max rooms --app-id load --warmup "$STEP_WARMUP" --duration "$STEP_DURATION" \
        --rooms 1 --players 16 --payload 1024 --rate "$SEARCH_START" --find-max-rate "$P99_TARGET_MS"
    for server in signal-fish relaydeck; do
        best=$(jq -r '.best.parameters.rate // empty' "$OUT/r16x1k-max.$server.json")
        if [[ -n $best ]]; then
            load r16x1k-2x "$server" rooms --app-id load --warmup "$STEP_WARMUP" --duration "$DURATION" \
                --rooms 1 --players 16 --payload 1024 --rate "$(jq -n "$best * 2")"
        else
            jq -n '{error: "no rate passed the search"}' >"$OUT/r16x1k-2x.$server.json"
        fi
    done
    both idle idle --app-id load --connections "$IDLE_CONNECTIONS" --duration "$IDLE_HOLD"
    load pubsub relaydeck pubsub --key pk_load --channel load/fanout --publishers 1 --subscribers 1000 \
        --rate "$PUBSUB_RATE" --payload 256 --warmup "$WARMUP" --duration "$DURATION"
    load r16x1k-30-admin relaydeck "${ROOMS[@]}" --rooms 1 --players 16 --payload 1024 --rate 30 \
        --attach-admin --admin-token "$ADMIN_TOKEN"
    load pubsub-admin relaydeck pubsub --key pk_load --channel load/fanout --publishers 1 \
        --subscribers 1000 --rate "$PUBSUB_RATE" --payload 256 --warmup "$WARMUP" \
        --duration "$DURATION" --attach-admin --admin-token "$ADMIN_TOKEN"
    fi

    ELAPSED=$(( $(date +%s) - STARTED ))
    LOAD_AVERAGE_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
    RELAYDECK=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')
    RELAYDECK="$RELAYDECK ($("$RELAYDECK_SERVER_BIN" --version))"
    NICENESS=$(ps -o ni= -p $$ | xargs)
    if [[ -r /proc/$$/autogroup ]]; then
        NICENESS="$NICENESS ($(cut -d' ' -f2- "/proc/$$/autogroup"))"
    fi
    PINNING=${PERF_PIN:-0}
    CPU_ONLY=${CPU_ONLY:-0}
    declare -p LOAD_AVERAGE_BEFORE LOAD_AVERAGE_AFTER ELAPSED IDLE_CONNECTIONS PUBSUB_RATE RELAYDECK NICENESS PINNING CPU_ONLY >"$OUT/run.env"

fi

# ---- the table ------------------------------------------------------------------------------

# cell FILE: "deliveries/s · p50 / p99 ms · loss · closes" of one run, or its error.
JQ_NUMBER='def n: if . >= 1000000 then "\(. / 10000 | round / 100)M"
                elif . >= 10000 then "\(. / 1000 | round)k"
                else "\(. | round)" end;'
cell() {
    jq -r "$JQ_NUMBER"'
      def closes: [.closed_by_server // {} | to_entries[] | "\(.value)× \(.key | split(" ")[0])"]
                  + [.errors // {} | to_entries[] | "\(.value)× error"] | join(", ");
      if .error then "failed: \(.error | split("\n")[0] | .[0:80])"
      else
        "\(.deliveries_per_s | n)/s · \(.latency.p50_ms * 100 | round / 100) / \(.latency.p99_ms * 100 | round / 100) ms"
        + (if .lost > 0 then " · \(.loss_ratio * 1000 | round / 10)% lost" else " · no loss" end)
        + (closes as $c | if $c == "" then "" else " · closed \($c)" end)
        + (if (.verdict | test("kept up")) then ""
           elif (.verdict | test("other processes")) then " · senders behind (machine busy)"
           elif (.verdict | test("generator-bound")) then " · generator-bound"
           else " · senders held back by the server" end)
      end' "$1"
}
# search FILE: "R/s per player (D deliveries/s, p99 P ms)" of a search's best step.
search_cell() {
    jq -r "$JQ_NUMBER"'
      if .error then "failed: \(.error | split("\n")[0] | .[0:80])"
      elif .best == null then "no rate passed (first step: p99 \(.steps[0].p99_ms * 100 | round / 100) ms)"
      else "\(.best.parameters.rate | round)/s per player · \(.best.deliveries_per_s | n)/s · p99 \(.best.latency.p99_ms * 100 | round / 100) ms"
      end' "$1"
}
# of_best FILE_2X FILE_SEARCH: deliveries at 2× as a share of those at the best rate.
of_best() {
    jq -rn --slurpfile x "$1" --slurpfile s "$2" '
      ($x[0].deliveries_per_s // null) as $d | ($s[0].best.deliveries_per_s // null) as $b |
      if ($d == null or $b == null or $b == 0) then "" else " · \($d / $b * 100 | round)% of best" end' 2>/dev/null || true
}
# cpu_cell FILE: "N µs per delivery (D deliveries/s, loss)" of one run, or its error.
cpu_cell() {
    jq -r "$JQ_NUMBER"'
      if .error then "failed: \(.error | split("\n")[0] | .[0:80])"
      elif .server_cpu_us_per_delivery == null then "CPU unknown"
      else "\(.server_cpu_us_per_delivery * 100 | round / 100) µs · \(.deliveries_per_s | n)/s"
        + (if .lost > 0 then " · \(.loss_ratio * 1000 | round / 10)% lost" else " · no loss" end)
      end' "$1"
}
idle_cell() {
    jq -r 'if .error then "failed: \(.error | split("\n")[0] | .[0:80])"
           else "\(.idle.server_kib_per_connection * 10 | round / 10) KiB (\(.idle.connected) connected)" end' "$1"
}
# ratio FILE_A FILE_B JQ_PATH: B ÷ A of one figure, or "–".
ratio() {
    jq -rn --slurpfile a "$1" --slurpfile b "$2" "
      (\$a[0] | $3) as \$x | (\$b[0] | $3) as \$y |
      if (\$x == null or \$y == null or \$x == 0) then \"–\"
      else (\$y / \$x) as \$r | if \$r < 0.1 then \"\(\$r * 1000 | round / 1000)×\" else \"\(\$r * 100 | round / 100)×\" end end" 2>/dev/null || echo "–"
}
f() { echo "$OUT/$1.$2.json"; }

{
    echo "| workload | signal-fish-server $SF_VERSION | relaydeck | relaydeck ÷ signal-fish |"
    echo "|---|---|---|---|"
    for w in "r16x1k-480:1 room × 16 × 1 KiB, 480 msg/s per player" "r100x8-20:100 rooms × 8 × 256 B, 20 msg/s per player"; do
        name=${w%%:*} title=${w#*:}
        echo "| server CPU per delivery: $title | $(cpu_cell "$(f "$name" signal-fish)") | $(cpu_cell "$(f "$name" relaydeck)") | $(ratio "$(f "$name" signal-fish)" "$(f "$name" relaydeck)" .server_cpu_us_per_delivery) |"
    done
    for w in "r16x1k-480:1 room × 16 × 1 KiB, 480/s" "r100x8-20:100 rooms × 8 × 256 B, 20/s"; do
        name=${w%%:*} title=${w#*:}
        [[ -f $(f "$name" floor) ]] || continue
        echo "| the same, the stack alone (\`examples/fanout_floor\`): $title | – | $(cpu_cell "$(f "$name" floor)") | relaydeck ÷ the stack alone: $(ratio "$(f "$name" floor)" "$(f "$name" relaydeck)" .server_cpu_us_per_delivery) |"
    done
    if [[ ${CPU_ONLY:-0} != 1 ]]; then
    for w in "r16x1k-30:1 room × 16 × 1 KiB, 30 msg/s per player" "r100x8-60:100 rooms × 8 × 256 B, 60 msg/s per player"; do
        name=${w%%:*} title=${w#*:}
        echo "| $title | $(cell "$(f "$name" signal-fish)") | $(cell "$(f "$name" relaydeck)") | p99 $(ratio "$(f "$name" signal-fish)" "$(f "$name" relaydeck)" .latency.p99_ms), deliveries $(ratio "$(f "$name" signal-fish)" "$(f "$name" relaydeck)" .deliveries_per_s) |"
    done
    echo "| 1 room × 16 × 1 KiB: highest rate with p99 ≤ $P99_TARGET_MS ms, no loss | $(search_cell "$(f r16x1k-max signal-fish)") | $(search_cell "$(f r16x1k-max relaydeck)") | rate $(ratio "$(f r16x1k-max signal-fish)" "$(f r16x1k-max relaydeck)" .best.parameters.rate) |"
    echo "| the same at 2× each server's highest rate | $(cell "$(f r16x1k-2x signal-fish)")$(of_best "$(f r16x1k-2x signal-fish)" "$(f r16x1k-max signal-fish)") | $(cell "$(f r16x1k-2x relaydeck)")$(of_best "$(f r16x1k-2x relaydeck)" "$(f r16x1k-max relaydeck)") | deliveries $(ratio "$(f r16x1k-2x signal-fish)" "$(f r16x1k-2x relaydeck)" .deliveries_per_s) |"
    echo "| idle authenticated connection, RSS at $IDLE_CONNECTIONS | $(idle_cell "$(f idle signal-fish)") | $(idle_cell "$(f idle relaydeck)") | $(ratio "$(f idle signal-fish)" "$(f idle relaydeck)" .idle.server_kib_per_connection) |"
    echo "| pub/sub 1 publisher → 1,000 subscribers × 256 B, $PUBSUB_RATE msg/s | – | $(cell "$(f pubsub relaydeck)") | |"
    echo "| admin console attached: 1 room × 16 × 1 KiB, 30 msg/s | – | $(cell "$(f r16x1k-30-admin relaydeck)") | p99 vs. without: $(ratio "$(f r16x1k-30 relaydeck)" "$(f r16x1k-30-admin relaydeck)" .latency.p99_ms) |"
    echo "| admin console attached: pub/sub 1 → 1,000 | – | $(cell "$(f pubsub-admin relaydeck)") | deliveries vs. without: $(ratio "$(f pubsub relaydeck)" "$(f pubsub-admin relaydeck)" .deliveries_per_s) |"
    fi
    echo
    echo "Server CPU per delivery: microseconds of the server's CPU time (user + system) over the"
    echo "measured window per delivered message. Other processes do not add to it, but a saturated"
    echo "machine queues frames and queued frames share writes: compare runs of similar load."
    echo "The stack alone: a relay on tokio and axum's WebSocket with relaydeck's socket settings and"
    echo "writer, and nothing else (no rooms, recorder, limits or parsing): relaydeck's own share is"
    echo "what it spends above that."
    echo "Cells: deliveries per second · one-way latency p50 / p99 · loss · connections closed by the"
    echo "server (code) · where the generator could not keep its schedule, why (the report's verdict)."
    echo
    echo "Machine: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;"
    echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; load average $LOAD_AVERAGE_BEFORE before, $LOAD_AVERAGE_AFTER after."
    echo "relaydeck $RELAYDECK;"
    echo "signal-fish-server $SF_VERSION; $(rustc --version 2>/dev/null || echo 'rustc ?'); niceness ${NICENESS:-0}; $([[ ${PINNING:-0} == 1 ]] && echo 'server pinned to CPU 0, generator to CPU 1' || echo 'not pinned'); ${ELAPSED} s in all."
    echo
    echo "Generator CPU per run (cores): $(for x in "$OUT"/*.json; do jq -r --arg n "$(basename "$x" .json)" '(.best // .) | select(.generator.cpu) | "\($n) \(.generator.cpu.cores * 100 | round / 100)"' "$x" 2>/dev/null; done | paste -sd ';' | sed 's/;/; /g')."
} | tee "$OUT/table.md"
echo "reports in $OUT" >&2
