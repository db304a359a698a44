#!/usr/bin/env bash
# One command for every test: installs what is missing, builds the node (the end-to-end tests
# start real psp-node processes), then runs the workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

start=$(date +%s)
# Lint first: rustfmt compiles nothing; clippy checks every crate (about 10 minutes on an empty
# target directory, 1-3 minutes warm), warnings as errors. scripts/lint.sh runs the same alone.
bash scripts/lint.sh
echo "test: building the workspace (debug; a clean build takes about 30 minutes on 2 cores, see README)"
cargo build --workspace --all-targets
export PSP_NODE_BIN="$CARGO_TARGET_DIR/debug/psp-node"
echo "test: running cargo test --workspace"
cargo test --workspace
echo "test: done in $(( $(date +%s) - start )) s"
