#!/usr/bin/env bash
# Regenerates the weights.rs of our pallets from their FRAME v2 benchmarks:
#   scripts/bench-weights.sh                     # identity, staking, rewards and subscriptions
#   scripts/bench-weights.sh pallet_psp_staking  # one pallet
#
# The benchmarks run the wasm runtime (always optimized), but host functions (sr25519, hashing,
# trie) run natively in the node. A debug node makes those ~25x slower, so this builds the
# benchmark node in the dev profile with the crypto and storage crates optimized (a release
# build of the whole node would take over an hour on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

optimized="curve25519-dalek schnorrkel merlin keccak sha2 blake2b_simd blake2 ed25519-zebra
    sp-crypto-hashing twox-hash trie-db sp-trie memory-db sp-state-machine hash-db sp-io sp-core
    sp-externalities sc-executor-wasmtime sc-executor parity-scale-codec primitive-types
    frame-benchmarking sp-runtime"
config=()
for crate in $optimized; do config+=(--config "profile.dev.package.$crate.opt-level=3"); done

echo "bench: building psp-node with runtime-benchmarks (crypto and storage crates optimized)"
cargo build -p psp-node --features runtime-benchmarks "${config[@]}"
bin="$CARGO_TARGET_DIR/bench-psp-node"
cp "$CARGO_TARGET_DIR/debug/psp-node" "$bin"
pallets=("$@")
[ ${#pallets[@]} -gt 0 ] || pallets=(pallet_psp_identity pallet_psp_staking pallet_psp_rewards pallet_psp_subscriptions)
for pallet in "${pallets[@]}"; do
    steps=(--steps 50 --repeat 20)
    case "$pallet" in
        pallet_psp_identity) out=pallets/identity/src/weights.rs ;;
        pallet_psp_staking) out=pallets/staking/src/weights.rs ;;
        # A full batch checks 256 signatures after a large setup: 50 steps x 20 repeats would
        # take about an hour on 2 cores, 10 x 5 takes minutes and fits the same straight line.
        pallet_psp_rewards) out=pallets/rewards/src/weights.rs; steps=(--steps 10 --repeat 5) ;;
        pallet_psp_subscriptions) out=pallets/subscriptions/src/weights.rs ;;
        *) echo "bench: unknown pallet $pallet (pallet_psp_identity, _staking, _rewards or _subscriptions)" >&2; exit 1 ;;
    esac
    echo "bench: running $pallet benchmarks -> $out"
    "$bin" benchmark pallet --chain dev --pallet "$pallet" --extrinsic '*' \
        "${steps[@]}" --output "$out" --template .maintain/frame-weight-template.hbs
done
echo "bench: for scale, pallet_balances::transfer_allow_death on the same binary"
"$bin" benchmark pallet --chain dev --pallet pallet_balances --extrinsic transfer_allow_death \
    --steps 50 --repeat 20 | grep -E 'Extrinsic:|Time ~=' | head -2
# The benchmark node's runtime needs benchmarking host functions a chain node does not offer:
# put the normal node back in $CARGO_TARGET_DIR/debug (cached, so mostly a relink).
echo "bench: restoring the normal psp-node build"
cargo build --workspace --all-targets
