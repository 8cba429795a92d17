#!/usr/bin/env bash
# Where a delivery's time goes: `perf record` on a relaydeck server while `relaydeck load` drives
# one rooms workload against it, then a flame graph (inferno) and perf's top entries.
#
# Usage: scripts/profile-delivery.sh NAME [ROOMS-ARGS…]
#   e.g. scripts/profile-delivery.sh r16x1k-480 --rooms 1 --players 16 --payload 1024 --rate 480
#        scripts/profile-delivery.sh r100x8-20 --rooms 100 --players 8 --payload 256 --rate 20
# Settings (environment): RELAYDECK_BIN (default: cargo build --release), CONFIG (a server config
# file; default: the load config of scripts/lib.sh that every perf script gives relaydeck), OUT (default
# target/perf/profile), PORT (default 17911).
# Needs perf (Debian: linux-perf) and, for the SVG, inferno (`cargo install inferno`).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NAME=${1:?usage: profile-delivery.sh NAME [ROOMS-ARGS…]}
shift
OUT=${OUT:-$ROOT/target/perf/profile}
PORT=${PORT:-17911}
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
use_relaydeck_bin
make_work_dir
if [[ -z ${CONFIG:-} ]]; then
    CONFIG=$WORK/relaydeck.json
    load_relaydeck_config >"$CONFIG"
fi
RELAYDECK_LOG=warn "$RELAYDECK_BIN" serve --listen "127.0.0.1:$PORT" --config "$CONFIG" \
    --data-dir "$WORK/data" --admin-token perf-admin-token-of-at-least-32-characters >"$OUT/$NAME.server.log" 2>&1 &
SERVER_PID=$!
track "$SERVER_PID"
wait_for_port "$PORT" "$SERVER_PID"
# Recorded after the warm-up, for 6 of the 8 measured seconds.
(sleep 3; perf record -F 999 -g --call-graph dwarf,16384 -p "$SERVER_PID" -o "$OUT/$NAME.perf.data" -- sleep 6 \
    >"$OUT/$NAME.perf.log" 2>&1) &
RECORDER=$!
"$RELAYDECK_BIN" load rooms --url "ws://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --app-id load \
    --warmup 2 --duration 8 "$@" | tee "$OUT/$NAME.load.txt"
wait "$RECORDER"
perf report -i "$OUT/$NAME.perf.data" --no-children --stdio --sort dso,sym -g none --percent-limit 1 \
    2>/dev/null | grep -v '^#' | grep -v '^$' | tee "$OUT/$NAME.top.txt"
if command -v inferno-collapse-perf >/dev/null; then
    perf script -i "$OUT/$NAME.perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/$NAME.folded"
    inferno-flamegraph --title "relaydeck serve: $NAME" <"$OUT/$NAME.folded" >"$OUT/$NAME.svg"
    echo "flame graph: $OUT/$NAME.svg" >&2
fi
echo "perf with DWARF call graphs costs the server CPU: read its CPU per delivery from scripts/perf-side-by-side.sh" >&2
