#!/usr/bin/env bash
# Run every test on a machine that has the Rust toolchain and nothing else: the tools the
# tests drive (tmux for the console in a real terminal, redis-server for the cluster tests,
# Node.js and npm for the Flow JS SDK) and the one CI's comparison step uses (jq) are
# installed first where they are missing, through the platform's package manager, and the
# Flow SDK's packages at their pinned versions into target/flow-sdk, and signal-fish-server
# 0.12.0 for tests/proxy.rs; then `cargo test` runs with any arguments given.
#
# Usage: bash scripts/test.sh [cargo test arguments…]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
    echo "installing what the tests need: ${missing[*]}" >&2
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "need ${missing[*]} and cannot install them without root or sudo" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    if command -v apt-get >/dev/null 2>&1; then
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v dnf >/dev/null 2>&1; then
        # Fedora packages redis-server as `redis`.
        "${sudo[@]}" dnf install -y "${missing[@]/redis-server/redis}"
    elif command -v brew >/dev/null 2>&1; then
        # Homebrew's node brings npm.
        brew_names=("${missing[@]/redis-server/redis}")
        brew_names=("${brew_names[@]/nodejs/node}")
        brew install $(printf '%s\n' "${brew_names[@]}" | grep -vx npm)
    else
        echo "install ${missing[*]} with this platform's package manager, then run cargo test" >&2
        exit 1
    fi
fi

# tests/flow_sdk.rs runs the real Flow client; it installs these itself when missing, but a
# run of the whole suite should not depend on the first test to get there.
flow_sdk=target/flow-sdk
flow_sdk_packages=("@onflow/sdk@1.13.7" "@onflow/transport-http@1.15.6")
flow_sdk_ready=1
for spec in "${flow_sdk_packages[@]}"; do
    name=${spec%@*}
    version=${spec##*@}
    manifest="$flow_sdk/node_modules/$name/package.json"
    grep -q "\"version\": \"$version\"" "$manifest" 2>/dev/null || flow_sdk_ready=0
done
if ((!flow_sdk_ready)); then
    echo "installing the Flow JS SDK for tests/flow_sdk.rs: ${flow_sdk_packages[*]}" >&2
    mkdir -p "$flow_sdk"
    [[ -f $flow_sdk/package.json ]] || echo '{"name":"relaydeck-flow-sdk-test","private":true}' >"$flow_sdk/package.json"
    (cd "$flow_sdk" && npm install --no-audit --no-fund --save-exact "${flow_sdk_packages[@]}" >/dev/null)
fi

# tests/proxy.rs puts the proxy in front of the real signal-fish-server 0.12.0, installed
# where scripts/compare-signal-fish.sh installs it (from the registry once, then cached).
sf_version=0.12.0
perf_cache=${PERF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/relaydeck/perf}
if [[ -z ${SIGNAL_FISH_BIN:-} ]]; then
    SIGNAL_FISH_BIN=$perf_cache/bin/signal-fish-server
    if [[ ! -x $SIGNAL_FISH_BIN ]] || ! grep -q "\"signal-fish-server $sf_version " "$perf_cache/.crates.toml" 2>/dev/null; then
        echo "installing signal-fish-server $sf_version into $perf_cache for tests/proxy.rs (several minutes, once)" >&2
        cargo install signal-fish-server --version "$sf_version" --locked --root "$perf_cache" >&2
    fi
fi
export SIGNAL_FISH_BIN

exec cargo test "$@"
