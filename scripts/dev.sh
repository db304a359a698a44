#!/usr/bin/env bash
# One command to a running dev chain: installs what is missing, builds psp-node and psp,
# and starts `psp-node --dev` (Alice authors and finalizes; state in a temporary directory).
# Extra arguments go to psp-node, e.g. `scripts/dev.sh --rpc-port 9945`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "dev: building psp-node and psp (debug; the first build takes 20-30 minutes on 2 cores)"
cargo build -p psp-node -p psp-client
echo "dev: starting psp-node --dev; RPC on ws://127.0.0.1:9944. Ctrl-C stops it."
exec "$CARGO_TARGET_DIR/debug/psp-node" --dev --tmp "$@"
