#!/usr/bin/env bash
# One command for every test: installs what is missing, builds the node (the end-to-end tests
# start real psp-node processes), then runs the workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

start=$(date +%s)
echo "test: building psp-node and psp (debug)"
cargo build -p psp-node -p psp-client
export PSP_NODE_BIN="$CARGO_TARGET_DIR/debug/psp-node"
echo "test: running cargo test --workspace"
cargo test --workspace
echo "test: done in $(( $(date +%s) - start )) s"
