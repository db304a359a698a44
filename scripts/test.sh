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
echo "test: building the workspace (debug; a clean build takes about 18 minutes on 2 cores, see README)"
cargo build --workspace --all-targets
export PSP_NODE_BIN="$CARGO_TARGET_DIR/debug/psp-node"
# cargo-nextest runs the test binaries side by side (three tests at a time): the end-to-end
# suites spend most of their time waiting for blocks, so three of them share two cores well;
# the ones that start the six-node network run at most two at a time (.config/nextest.toml).
# Without nextest, plain cargo test runs them one after another.
if command -v cargo-nextest >/dev/null 2>&1; then
    echo "test: running the doc tests, then cargo nextest run --workspace (3 at a time)"
    cargo test --workspace --doc
    cargo nextest run --workspace --test-threads 3 --no-fail-fast
else
    echo "test: cargo-nextest not found; running cargo test --workspace"
    cargo test --workspace
fi
echo "test: done in $(( $(date +%s) - start )) s"
