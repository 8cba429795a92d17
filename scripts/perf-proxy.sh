#!/usr/bin/env bash
# What `relaydeck proxy` costs on the data path: signal-fish-server 0.12.0 on loopback, the
# proxy in front of it, and `relaydeck load rooms` through the proxy. Prints the proxy's CPU
# per delivery (µs) and the one-way latency, from the load generator's JSON report, once per
# run (RUNS, default 3), so that two builds can be compared on the same machine.
#
# Usage: scripts/perf-proxy.sh                      (release build; about 30 s per run)
#        RELAYDECK_BIN=target/debug/relaydeck scripts/perf-proxy.sh   (compare builds alike)
#
# Settings (environment): RELAYDECK_BIN, SIGNAL_FISH_BIN (default: as scripts/test.sh installs
# it), RUNS, DURATION (s, default 8), ROOMS (default 4), PLAYERS (default 8), RATE (GameData
# per second per player, default 30), PAYLOAD (bytes, default 256), PORT_SIGNAL_FISH and
# PORT_PROXY (default 17911, 17912).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PERF_CACHE=${PERF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/relaydeck/perf}
SIGNAL_FISH_BIN=${SIGNAL_FISH_BIN:-$PERF_CACHE/bin/signal-fish-server}
RUNS=${RUNS:-3} DURATION=${DURATION:-8} ROOMS=${ROOMS:-4} PLAYERS=${PLAYERS:-8}
RATE=${RATE:-30} PAYLOAD=${PAYLOAD:-256}
PORT_SIGNAL_FISH=${PORT_SIGNAL_FISH:-17911} PORT_PROXY=${PORT_PROXY:-17912}
ADMIN_TOKEN=perf-admin-token-of-at-least-32-characters

command -v jq >/dev/null || { echo "jq is needed to read the reports (apt-get install jq)" >&2; exit 1; }
[[ -x $SIGNAL_FISH_BIN ]] || { echo "no signal-fish-server at $SIGNAL_FISH_BIN (scripts/test.sh installs it)" >&2; exit 1; }
if [[ -z ${RELAYDECK_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    RELAYDECK_BIN=$ROOT/target/release/relaydeck
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$WORK/signal-fish.json" <<JSON
{
  "port": $PORT_SIGNAL_FISH,
  "server": {"max_rooms_per_game": 100000, "max_rooms": 100000},
  "rate_limit": {
    "max_room_creations": 1000000, "max_join_attempts": 1000000,
    "max_relay_bytes": 1000000000000000, "max_room_relay_bytes": 1000000000000000
  },
  "logging": {"enable_file_logging": false, "level": "warn"},
  "security": {
    "enforce_app_id_allowlist": true, "require_metrics_auth": false,
    "max_connections_per_ip": 20000, "max_connections": 20000,
    "allowed_apps": [{"app_id": "demo", "app_name": "Demo"}]
  },
  "websocket": {"idle_timeout_secs": 600}
}
JSON
cat >"$WORK/proxy.json" <<'JSON'
{"apps": [], "security": {"max_connections": 20000, "max_connections_per_ip": 20000}}
JSON

wait_for_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

(cd "$WORK" && SIGNAL_FISH_CONFIG_PATH="$WORK/signal-fish.json" exec "$SIGNAL_FISH_BIN") >"$WORK/signal-fish.log" 2>&1 &
PIDS+=($!)
wait_for_port "$PORT_SIGNAL_FISH"
"$RELAYDECK_BIN" --data-dir "$WORK/data" proxy --upstream "ws://127.0.0.1:$PORT_SIGNAL_FISH" \
    --listen "127.0.0.1:$PORT_PROXY" --config "$WORK/proxy.json" --admin-token "$ADMIN_TOKEN" \
    >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_for_port "$PORT_PROXY"

echo "| run | proxy CPU µs per delivery | deliveries/s | p50 ms | p99 ms | lost |"
echo "|---|---|---|---|---|---|"
for run in $(seq "$RUNS"); do
    "$RELAYDECK_BIN" --data-dir "$WORK/data" load rooms --url "ws://127.0.0.1:$PORT_PROXY" \
        --server-pid "$PROXY_PID" --duration "$DURATION" --warmup 2 --drain 2 \
        --rooms "$ROOMS" --players "$PLAYERS" --rate "$RATE" --payload "$PAYLOAD" \
        --game-name "perf-proxy-$run" --json >"$WORK/run-$run.json"
    jq -r --arg run "$run" '"| \($run) | \(.server_cpu_us_per_delivery // "?") | \(.deliveries_per_s // "?") | \(.latency.p50_ms // "?") | \(.latency.p99_ms // "?") | \(.lost // "?") |"' "$WORK/run-$run.json"
done
