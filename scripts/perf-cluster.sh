#!/usr/bin/env bash
# Signal Fish relay across the nodes of a cluster, next to the same load on one node, in one run:
# a redis-server of its own and relaydeck nodes on loopback, the same generator
# (`relaydeck load rooms`) for every row. Prints a markdown table (see docs/PERFORMANCE.md) and
# keeps every run's JSON report.
#
# Rows, each on fresh servers:
#   alone     one relaydeck, no cluster
#   one-node  two clustered nodes, every player on node a (what joining a cluster costs)
#   spread    two clustered nodes, players seated in turn on a and b: every delivery to a
#             player on b crosses Redis twice (b → a's room, a → b's player)
#
# Usage: scripts/perf-cluster.sh             (about 2 minutes)
#        QUICK=1 scripts/perf-cluster.sh     (short windows: a smoke test of the script)
#
# Settings (environment):
#   RELAYDECK_BIN  the relaydeck binary (default: cargo build --release)
#   OUT            folder for the reports (default target/perf/cluster-<UTC time>)
#   ROOMS PLAYERS RATE PAYLOAD   the load (default 10 rooms × 16 players × 42 msg/s × 256 B:
#                  about 100,000 deliveries a second)
#   PORT_BASE      loopback ports PORT_BASE … PORT_BASE+3 (default 17950)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OUT=${OUT:-$ROOT/target/perf/cluster-$(date -u +%Y%m%dT%H%M%SZ)}
ROOMS=${ROOMS:-10}
PLAYERS=${PLAYERS:-16}
RATE=${RATE:-42}
PAYLOAD=${PAYLOAD:-256}
PORT_BASE=${PORT_BASE:-17950}
REDIS_PORT=$PORT_BASE
if [[ ${QUICK:-0} == 1 ]]; then WARMUP=0.5 DURATION=2; else WARMUP=2 DURATION=10; fi

need_jq
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
use_relaydeck_bin
mkdir -p "$OUT"
make_work_dir

# The load config every perf script gives relaydeck, with this node's cluster settings.
config() {
    load_relaydeck_config | jq --argjson cluster "$1" '. + {cluster: $cluster}'
}

start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
        >"$OUT/redis.log" 2>&1 &
    track $!
    wait_for_port "$REDIS_PORT" $!
}

# start_node NAME PORT [NODE_ID]: without NODE_ID, a server alone.
start_node() {
    local name=$1 port=$2 node=${3:-}
    local cluster={}
    if [[ -n $node ]]; then
        cluster="{\"redis\": \"redis://127.0.0.1:$REDIS_PORT\", \"node_id\": \"$node\"}"
    fi
    config "$cluster" >"$WORK/$name.json"
    RELAYDECK_LOG=warn "$RELAYDECK_BIN" --data-dir "$WORK/data-$name" serve --listen "127.0.0.1:$port" \
        --config "$WORK/$name.json" >>"$OUT/$name.log" 2>&1 &
    track $!
    wait_for_port "$port" $!
}

metric() { # metric PORT NAME: a counter summed over its labels
    curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 ~ "^"m"({|$)" {s += $2} END {print s + 0}'
}

# run NAME ARGS…: one load run; its JSON in $OUT/NAME.json, with the cluster's publishes and
# Redis round trips over the run added as .cluster.
run() {
    local name=$1
    shift
    echo "· $name" >&2
    local before_pub=0 before_rt=0
    for port in "${NODE_PORTS[@]}"; do
        before_pub=$((before_pub + $(metric "$port" relaydeck_cluster_published_total)))
        before_rt=$((before_rt + $(metric "$port" relaydeck_cluster_round_trips_total)))
    done
    if ! "$RELAYDECK_BIN" load rooms --url "ws://127.0.0.1:$((PORT_BASE + 1))" --json \
        --app-id load --rooms "$ROOMS" --players "$PLAYERS" --rate "$RATE" --payload "$PAYLOAD" \
        --warmup "$WARMUP" --duration "$DURATION" "$@" >"$WORK/report.json" 2>"$OUT/$name.err"; then
        jq -n --arg e "$(cat "$OUT/$name.err")" '{error: $e}' >"$OUT/$name.json"
        return
    fi
    local pub=0 rt=0
    for port in "${NODE_PORTS[@]}"; do
        pub=$((pub + $(metric "$port" relaydeck_cluster_published_total)))
        rt=$((rt + $(metric "$port" relaydeck_cluster_round_trips_total)))
    done
    jq --argjson pub $((pub - before_pub)) --argjson rt $((rt - before_rt)) \
        '. + {cluster: {published: $pub, round_trips: $rt}}' "$WORK/report.json" >"$OUT/$name.json"
}

NODE_PORTS=("$((PORT_BASE + 1))")
start_node alone "$((PORT_BASE + 1))"
run alone
stop_tracked

start_redis
NODE_PORTS=("$((PORT_BASE + 1))" "$((PORT_BASE + 2))")
start_node a "$((PORT_BASE + 1))" a
start_node b "$((PORT_BASE + 2))" b
run one-node
stop_tracked

start_redis
start_node a "$((PORT_BASE + 1))" a
start_node b "$((PORT_BASE + 2))" b
run spread --spread-over "ws://127.0.0.1:$((PORT_BASE + 2))"
stop_tracked

echo
echo "$ROOMS rooms × $PLAYERS players × $RATE msg/s × $PAYLOAD B, ${DURATION} s measured; reports in $OUT"
echo
echo "| row | deliveries/s | p50 ms | p99 ms | p99.9 ms | lost | publishes per delivery | Redis round trips per delivery |"
echo "|---|---|---|---|---|---|---|---|"
for name in alone one-node spread; do
    jq -r --arg name "$name" '
        if .error then "| \($name) | failed: \(.error | split("\n")[0] | .[0:80]) |||||||"
        else
          # The counters span the whole run; messages are sent during warm-up and measurement.
          (.warmup_s + .duration_s) as $sending
          | ((.cluster.published // 0) / $sending) as $p | ((.cluster.round_trips // 0) / $sending) as $r
          | ([.deliveries_per_s, 1] | max) as $d
          | "| \($name) | \(.deliveries_per_s | floor) | \(.latency.p50_ms * 100 | round / 100) | \(.latency.p99_ms * 100 | round / 100) | \(.latency.p999_ms * 100 | round / 100) | \(.lost) | \($p / $d * 1000 | round / 1000) | \($r / $d * 10000 | round / 10000) |"
        end' "$OUT/$name.json"
done
