#!/usr/bin/env bash
# What `relaydeck proxy` costs on the data path: signal-fish-server 0.12.0 on loopback, the
# proxy in front of it, and `relaydeck load rooms` through the proxy. Prints the proxy's CPU
# per delivery (µs) and the one-way latency, from the load generator's JSON report, once per
# run (RUNS, default 3), so that two builds can be compared on the same machine.
#
# Usage: scripts/perf-proxy.sh                      (release build; about 30 s per run)
#        RELAYDECK_BIN=target/debug/relaydeck scripts/perf-proxy.sh   (compare builds alike)
#
# Settings (environment): RELAYDECK_BIN, SIGNAL_FISH_BIN (default: installed into
# ~/.cache/relaydeck/perf once), RUNS, DURATION (s, default 8), ROOMS (default 4), PLAYERS (default 8), RATE (GameData
# per second per player, default 30), PAYLOAD (bytes, default 256), PORT_SIGNAL_FISH and
# PORT_PROXY (default 17911, 17912).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNS=${RUNS:-3} DURATION=${DURATION:-8} ROOMS=${ROOMS:-4} PLAYERS=${PLAYERS:-8}
RATE=${RATE:-30} PAYLOAD=${PAYLOAD:-256}
PORT_SIGNAL_FISH=${PORT_SIGNAL_FISH:-17911} PORT_PROXY=${PORT_PROXY:-17912}
ADMIN_TOKEN=perf-admin-token-of-at-least-32-characters

need_jq
use_signal_fish_bin
use_relaydeck_bin
make_work_dir

load_signal_fish_config "$PORT_SIGNAL_FISH" demo >"$WORK/signal-fish.json"
cat >"$WORK/proxy.json" <<'JSON'
{"apps": [], "security": {"max_connections": 20000, "max_connections_per_ip": 20000}}
JSON

start_signal_fish "$WORK/signal-fish.json" "$WORK/signal-fish.log"
wait_for_port "$PORT_SIGNAL_FISH" "$SIGNAL_FISH_PID"
"$RELAYDECK_BIN" --data-dir "$WORK/data" proxy --upstream "ws://127.0.0.1:$PORT_SIGNAL_FISH" \
    --listen "127.0.0.1:$PORT_PROXY" --config "$WORK/proxy.json" --admin-token "$ADMIN_TOKEN" \
    >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
track "$PROXY_PID"
wait_for_port "$PORT_PROXY" "$PROXY_PID"

echo "| run | proxy CPU µs per delivery | deliveries/s | p50 ms | p99 ms | lost |"
echo "|---|---|---|---|---|---|"
for run in $(seq "$RUNS"); do
    "$RELAYDECK_BIN" --data-dir "$WORK/data" load rooms --url "ws://127.0.0.1:$PORT_PROXY" \
        --server-pid "$PROXY_PID" --duration "$DURATION" --warmup 2 --drain 2 \
        --rooms "$ROOMS" --players "$PLAYERS" --rate "$RATE" --payload "$PAYLOAD" \
        --game-name "perf-proxy-$run" --json >"$WORK/run-$run.json"
    jq -r --arg run "$run" '"| \($run) | \(.server_cpu_us_per_delivery // "?") | \(.deliveries_per_s // "?") | \(.latency.p50_ms // "?") | \(.latency.p99_ms // "?") | \(.lost // "?") |"' "$WORK/run-$run.json"
done
