#!/usr/bin/env bash
# Measures the time from `psp-node --dev --tmp` start to its first finalized block, over RPC.
# Usage: scripts/measure-startup.sh [runs]   (builds nothing: run scripts/dev.sh or test.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${PSP_NODE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/psp-target}/debug/psp-node}"
[ -x "$BIN" ] || { echo "no psp-node at $BIN: build it with scripts/dev.sh or cargo build -p psp-node" >&2; exit 1; }
runs="${1:-3}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rpc() {
    curl -s -m 2 -H 'Content-Type: application/json' \
        -d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$1\",\"params\":[$2]}" "http://127.0.0.1:$port" || true
}
for run in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    "$BIN" --dev --tmp --rpc-port "$port" --port 0 --no-prometheus --no-telemetry >/dev/null 2>&1 &
    pid=$!
    finalized=""
    for _ in $(seq 1 1200); do
        head=$(rpc chain_getFinalizedHead "" | sed -n 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/p')
        if [ -n "$head" ]; then
            number=$(rpc chain_getHeader "\"$head\"" | sed -n 's/.*"number":"\(0x[0-9a-f]*\)".*/\1/p')
            if [ -n "$number" ] && [ $((number)) -ge 1 ]; then
                finalized=$(echo "$(date +%s.%N) - $start" | bc)
                break
            fi
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -z "$finalized" ]; then echo "run $run: no finalized block within 120 s" >&2; exit 1; fi
    echo "run $run: first finalized block after ${finalized} s"
done
