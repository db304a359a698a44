#!/usr/bin/env bash
# Installs what a build of this workspace needs and is missing, without prompts:
# the wasm32 target and rust-src (rustup), protoc and Chromium (apt-get; the watch page's browser
# tests run headless Chromium, `tests/src/browser.rs`). Sourced by dev.sh and test.sh.
set -euo pipefail

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/psp-target}"
mkdir -p "$CARGO_TARGET_DIR"

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing; install Rust with rustup first (https://rustup.rs)" >&2
    exit 1
fi
for target in wasm32v1-none wasm32-unknown-unknown; do
    if ! rustup target list --installed | grep -qx "$target"; then
        echo "setup: adding the $target target (the runtime compiles to wasm)"
        rustup target add "$target"
    fi
done
if ! rustup component list --installed | grep -q '^rust-src'; then
    echo "setup: adding rust-src (needed by the wasm runtime build)"
    rustup component add rust-src
fi
if ! command -v protoc >/dev/null 2>&1; then
    echo "setup: installing protoc (protobuf-compiler) with apt-get"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi
if [ -z "${PSP_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
    echo "setup: installing chromium with apt-get (headless browser tests of the watch page)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # `env` so that the variable survives sudo.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
