# What the measuring scripts share: the binaries they run, the configs that keep the servers'
# limits out of the load's way, waiting for a server to listen, niceness, and the processes to
# stop on the way out. Sourced, never run: `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`
# after `set -euo pipefail`; it sets ROOT to the repository.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SF_VERSION=0.12.0
PERF_CACHE=${PERF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/relaydeck/perf}

# Needs jq, or stops with how to get it.
need_jq() {
    command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 1; }
}

# RELAYDECK_BIN, built in release when the environment does not name one.
use_relaydeck_bin() {
    if [[ -z ${RELAYDECK_BIN:-} ]]; then
        (cd "$ROOT" && cargo build --release --quiet)
        RELAYDECK_BIN=$ROOT/target/release/relaydeck
    fi
}

# SIGNAL_FISH_BIN, installed from the registry into PERF_CACHE once when the environment does
# not name one ("none" is left alone: the caller leaves the real server out).
use_signal_fish_bin() {
    if [[ -z ${SIGNAL_FISH_BIN:-} ]]; then
        SIGNAL_FISH_BIN=$PERF_CACHE/bin/signal-fish-server
        if [[ ! -x $SIGNAL_FISH_BIN ]] || ! grep -q "\"signal-fish-server $SF_VERSION " "$PERF_CACHE/.crates.toml" 2>/dev/null; then
            echo "installing signal-fish-server $SF_VERSION into $PERF_CACHE (several minutes, once)" >&2
            cargo install signal-fish-server --version "$SF_VERSION" --locked --root "$PERF_CACHE" >&2
        fi
    fi
}

# With PERF_NICE set, run the calling script again in a session of its own and give the
# session that niceness: with autogroup scheduling a niceness counts only inside its session.
# Call with the script's own arguments, before anything is started.
apply_perf_nice() {
    [[ -n ${PERF_NICE:-} ]] || return 0
    if [[ -z ${PERF_SESSION:-} ]] && command -v setsid >/dev/null; then
        # OUT goes along, so that a folder already chosen stays the one written to.
        PERF_SESSION=1 OUT=${OUT:-} exec setsid --wait "$0" "$@"
    fi
    renice -n "$PERF_NICE" -p $$ >/dev/null
    if [[ -w /proc/$$/autogroup ]]; then
        echo "$PERF_NICE" >"/proc/$$/autogroup" 2>/dev/null || true
    fi
}

# wait_for_port PORT [PID]: until something listens on the loopback PORT (20 s at most), or
# until PID, the server meant to, has exited.
wait_for_port() {
    local port=$1 pid=${2:-}
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "the server on port $port exited" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "nothing listens on port $port" >&2
    return 1
}

# Processes started with `track` are stopped by `stop_tracked`, and on exit with WORK removed.
TRACKED=()
track() { TRACKED+=("$1"); }
stop_tracked() {
    local pid
    for pid in "${TRACKED[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${TRACKED[@]}"; do wait "$pid" 2>/dev/null || true; done
    TRACKED=()
}
# The one server a script runs at a time, its pid in SERVER_PID: stopped before the next.
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
# A fresh WORK folder, removed on exit with the server and every tracked process stopped.
make_work_dir() {
    WORK=$(mktemp -d)
    trap 'stop_server; stop_tracked; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
}

# load_relaydeck_config: the relaydeck config for load runs (app "load" with a pub/sub key,
# limits out of the way of the load), so that what is measured is the data path.
load_relaydeck_config() {
    cat <<'JSON'
{
  "apps": [
    {
      "id": "load", "name": "Load",
      "limits": {"max_connections": 20000, "max_connections_per_ip": 20000},
      "pubsub_keys": [
        {"id": "pk_load", "channel_patterns": ["load/**"], "actions": ["publish", "subscribe"],
         "rate": {"messages_per_second": 100000, "burst": 200000}}
      ],
      "signal_fish": {"max_rooms_per_game": 100000}
    }
  ],
  "signal_fish": {"messages_per_minute": 100000000, "idle_timeout_ms": 600000},
  "security": {"max_connections": 20000, "max_connections_per_ip": 20000}
}
JSON
}

# load_signal_fish_config PORT APP_ID: signal-fish-server's config for load runs, the same
# limits out of the way, APP_ID allowed.
load_signal_fish_config() {
    cat <<JSON
{
  "port": $1,
  "server": {"max_rooms_per_game": 100000, "max_rooms": 100000},
  "rate_limit": {
    "max_room_creations": 1000000, "max_join_attempts": 1000000,
    "max_relay_bytes": 1000000000000000, "max_room_relay_bytes": 1000000000000000
  },
  "logging": {"enable_file_logging": false, "level": "warn"},
  "security": {
    "enforce_app_id_allowlist": true,
    "require_metrics_auth": false,
    "max_connections_per_ip": 20000,
    "max_connections": 20000,
    "allowed_apps": [{"app_id": "$2", "app_name": "Load"}]
  },
  "websocket": {"idle_timeout_secs": 600}
}
JSON
}

# start_signal_fish CONFIG LOG: the real server with CONFIG, in a folder of its own (it also
# reads ./config.json); its pid in SIGNAL_FISH_PID, tracked. Extra arguments go before the
# binary (a `taskset`, say).
start_signal_fish() {
    local config=$1 log=$2
    shift 2
    (cd "$(dirname "$config")" && SIGNAL_FISH_CONFIG_PATH="$config" exec "$@" "$SIGNAL_FISH_BIN") >>"$log" 2>&1 &
    SIGNAL_FISH_PID=$!
    track "$SIGNAL_FISH_PID"
}
