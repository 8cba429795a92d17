#!/usr/bin/env bash
# Replay the Signal Fish sessions against relaydeck and against the real signal-fish-server
# 0.12.0, side by side, on loopback. relaydeck runs each on a fresh embedded server with the
# replay config, the one the sessions are timed for; the real server runs with the demo app
# allowed. A session whose header says `"upstream": "same"` must pass against both servers;
# every other session says in its `upstream` field why the real server answers it differently
# (an addition of relaydeck's, such as app statuses), and is replayed against relaydeck only.
# Prints a markdown table; exits non-zero if a comparable session fails against either server.
#
# Usage: scripts/compare-signal-fish.sh
# Settings (environment):
#   PERF_CACHE        where signal-fish-server is installed (default ~/.cache/relaydeck/perf)
#   RELAYDECK_BIN     the relaydeck binary (default: cargo build --release)
#   SIGNAL_FISH_BIN   a signal-fish-server binary (default: installed into PERF_CACHE, once)
#   PORT_SIGNAL_FISH  the real server's loopback port (default 17912)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT_SIGNAL_FISH=${PORT_SIGNAL_FISH:-17912}

need_jq
use_relaydeck_bin
use_signal_fish_bin
make_work_dir

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

start_signal_fish "$WORK/signal-fish.json" "$WORK/signal-fish.log"
wait_for_port "$PORT_SIGNAL_FISH" "$SIGNAL_FISH_PID"

# replay FILE [URL]: against a fresh embedded relaydeck, or against URL.
replay() {
    local file=$1
    shift
    if "$RELAYDECK_BIN" replay "$@" "$file" >"$WORK/last.out" 2>&1; then
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
    ours=$(replay "$file")
    if [[ $ours != pass ]]; then
        echo "--- $name against relaydeck:" >&2
        sed 's/^/    /' "$WORK/last.out" >&2
    fi
    if [[ $upstream == same ]]; then
        compared=$((compared + 1))
        theirs=$(replay "$file" --url "ws://127.0.0.1:$PORT_SIGNAL_FISH")
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
