#!/usr/bin/env bash
# Replay the Signal Fish sessions against relaydeck and against the real signal-fish-server
# 0.12.0, side by side, on loopback. A session whose header says `"upstream": "same"` must pass
# against both servers; every other session says in its `upstream` field why the real server
# answers it differently (an addition of relaydeck's, such as app statuses), and is replayed
# against relaydeck only. Prints a markdown table; exits non-zero if a comparable session fails
# against either server.
#
# Usage: scripts/compare-signal-fish.sh
# Settings (environment):
#   PERF_CACHE        where signal-fish-server is installed (default ~/.cache/relaydeck/perf)
#   RELAYDECK_BIN     the relaydeck binary (default: cargo build --release)
#   SIGNAL_FISH_BIN   a signal-fish-server binary (default: installed into PERF_CACHE, once)
#   PORT_RELAYDECK, PORT_SIGNAL_FISH   loopback ports (default 17911, 17912)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SF_VERSION=0.12.0
PERF_CACHE=${PERF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/relaydeck/perf}
PORT_RELAYDECK=${PORT_RELAYDECK:-17911}
PORT_SIGNAL_FISH=${PORT_SIGNAL_FISH:-17912}
ADMIN_TOKEN=compare-admin-token

command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 1; }

if [[ -z ${RELAYDECK_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    RELAYDECK_BIN=$ROOT/target/release/relaydeck
fi
if [[ -z ${SIGNAL_FISH_BIN:-} ]]; then
    SIGNAL_FISH_BIN=$PERF_CACHE/bin/signal-fish-server
    if [[ ! -x $SIGNAL_FISH_BIN ]] || ! grep -q "\"signal-fish-server $SF_VERSION " "$PERF_CACHE/.crates.toml" 2>/dev/null; then
        echo "installing signal-fish-server $SF_VERSION into $PERF_CACHE (several minutes, once)" >&2
        cargo install signal-fish-server --version "$SF_VERSION" --locked --root "$PERF_CACHE" >&2
    fi
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The real server with the demo app the sessions authenticate as, and its short timers where
# sessions wait for them (relaydeck's replay config uses the same ones).
cat >"$WORK/signal-fish.json" <<JSON
{
  "port": $PORT_SIGNAL_FISH,
  "logging": {"enable_file_logging": false, "level": "warn"},
  "security": {
    "enforce_app_id_allowlist": true,
    "require_metrics_auth": false,
    "allowed_apps": [{"app_id": "demo", "app_name": "Demo"}]
  }
}
JSON

wait_for_port() {
    local port=$1 pid=$2
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || { echo "the server on port $port exited" >&2; return 1; }
        sleep 0.1
    done
    echo "nothing listens on port $port" >&2
    return 1
}

RELAYDECK_LOG=warn "$RELAYDECK_BIN" serve --listen "127.0.0.1:$PORT_RELAYDECK" \
    --data-dir "$WORK/data" --admin-token "$ADMIN_TOKEN" >"$WORK/relaydeck.log" 2>&1 &
PIDS+=($!)
wait_for_port "$PORT_RELAYDECK" "${PIDS[-1]}"
(cd "$WORK" && SIGNAL_FISH_CONFIG_PATH="$WORK/signal-fish.json" exec "$SIGNAL_FISH_BIN") \
    >"$WORK/signal-fish.log" 2>&1 &
PIDS+=($!)
wait_for_port "$PORT_SIGNAL_FISH" "${PIDS[-1]}"

replay() {
    local url=$1 file=$2
    if "$RELAYDECK_BIN" replay --url "$url" --admin-token "$ADMIN_TOKEN" "$file" \
        >"$WORK/last.out" 2>&1; then
        echo pass
    else
        echo fail
    fi
}

failed=0
compared=0
echo "| session | relaydeck | signal-fish-server $SF_VERSION | upstream |"
echo "|---|---|---|---|"
for file in "$ROOT"/sessions/signal-fish/*.jsonl; do
    name=$(basename "$file" .jsonl)
    upstream=$(head -n1 "$file" | jq -r '.upstream // "not marked"')
    ours=$(replay "ws://127.0.0.1:$PORT_RELAYDECK" "$file")
    if [[ $upstream == same ]]; then
        compared=$((compared + 1))
        theirs=$(replay "ws://127.0.0.1:$PORT_SIGNAL_FISH" "$file")
        if [[ $theirs != pass ]]; then
            echo "--- $name against signal-fish-server:" >&2
            sed 's/^/    /' "$WORK/last.out" >&2
        fi
        [[ $ours == pass && $theirs == pass ]] || failed=$((failed + 1))
        echo "| $name | $ours | $theirs | same |"
    else
        [[ $ours == pass ]] || failed=$((failed + 1))
        echo "| $name | $ours | not replayed | $upstream |"
    fi
done
echo
echo "$compared sessions compared with the real server; $failed failed"
(( failed == 0 ))
