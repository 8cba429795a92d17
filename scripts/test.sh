#!/usr/bin/env bash
# Run every test on a machine that has the Rust toolchain and nothing else: the tools the
# tests drive (tmux for the console in a real terminal, redis-server for the cluster tests)
# and the one CI's comparison step uses (jq) are installed first where they are missing,
# through the platform's package manager, then `cargo test` runs with any arguments given.
#
# Usage: bash scripts/test.sh [cargo test arguments…]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v jq >/dev/null 2>&1 || missing+=(jq)

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
        brew install "${missing[@]/redis-server/redis}"
    else
        echo "install ${missing[*]} with this platform's package manager, then run cargo test" >&2
        exit 1
    fi
fi

exec cargo test "$@"
