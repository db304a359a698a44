#!/usr/bin/env bash
# Lint: rustfmt and clippy over the whole workspace, warnings as errors. scripts/test.sh (and so
# .ci/run) runs it first; clippy checks every crate in check mode, which the test build cannot
# reuse: about 10 minutes on an empty target directory (see the README's figures).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
for component in rustfmt clippy; do
    if ! rustup component list --installed | grep -q "^$component"; then
        echo "lint: adding $component"
        rustup component add "$component"
    fi
done
start=$(date +%s)
echo "lint: cargo fmt --all --check"
cargo fmt --all --check
echo "lint: cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "lint: clean in $(( $(date +%s) - start )) s"
