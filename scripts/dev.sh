#!/usr/bin/env bash
# One command to a running dev chain: installs what is missing, builds psp-node and psp,
# and starts `psp-node --dev` (Alice authors and finalizes; state in a temporary directory).
# Extra arguments go to psp-node, e.g. `scripts/dev.sh --rpc-port 9945`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

# One build of the whole workspace with every target: the same feature set as `cargo test
# --workspace`, so dev runs and test runs share every compiled crate.
echo "dev: building the workspace (debug; a clean build takes about 30 minutes on 2 cores)"
cargo build --workspace --all-targets
echo "dev: starting psp-node --dev; RPC on ws://127.0.0.1:9944. Ctrl-C stops it."
exec "$CARGO_TARGET_DIR/debug/psp-node" --dev --tmp "$@"
