#!/usr/bin/env bash
# Runs the psp-net fuzz targets, one after another, each for a given time, and prints one
# summary line per target (runs, final coverage, crash or not).
#
#   scripts/fuzz.sh [secs] [target...]     default: 600 s each, every target
#   scripts/fuzz.sh 60                     a 60-second shake-out of every target
#   scripts/fuzz.sh 600 relay_state cert   two targets, 10 minutes each
#
# Works on the stable toolchain: cargo-fuzz needs -Zsanitizer, which RUSTC_BOOTSTRAP=1 allows.
# Installs cargo-fuzz from crates.io if it is missing. Builds with optimizations and with debug
# assertions and overflow checks (-O -a), AddressSanitizer (cargo-fuzz's default), in its own
# target dir. Runs under `nice` (FUZZ_NICE, default 19) so it yields to builds.
#
# Corpora: psp-net/fuzz/corpus/<target> (seeded by psp-net/fuzz/seeds.py, kept between runs).
# Crashes: psp-net/fuzz/artifacts/<target>/; reproduce with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir psp-net/fuzz -O -a <target> <artifact>
# and add the input to psp-net/tests/fuzz_corpus/<target>/ (run by tests/fuzz_regressions.rs).
# Logs: $FUZZ_LOG_DIR/<target>.log (default /tmp/psp-net-fuzz).
set -uo pipefail

cd "$(dirname "$0")/.."
FUZZ_DIR=psp-net/fuzz
TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/psp-net-fuzz-target}
LOG_DIR=${FUZZ_LOG_DIR:-/tmp/psp-net-fuzz}
NICE=${FUZZ_NICE:-19}

secs=600
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2
    cargo install cargo-fuzz --locked || exit 1
fi

export RUSTC_BOOTSTRAP=1
all=$(cargo fuzz list --fuzz-dir "$FUZZ_DIR") || exit 1
if [[ $# -gt 0 ]]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        grep -qx "$t" <<<"$all" || { echo "unknown target $t; targets: $(echo $all)" >&2; exit 2; }
    done
else
    mapfile -t targets <<<"$all"
fi

if command -v python3 >/dev/null; then
    python3 "$FUZZ_DIR/seeds.py" "$FUZZ_DIR/corpus" >/dev/null
fi
mkdir -p "$LOG_DIR"

build=(cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" -O -a)
echo "building: ${build[*]}" >&2
nice -n "$NICE" "${build[@]}" >"$LOG_DIR/build.log" 2>&1 || {
    tail -30 "$LOG_DIR/build.log" >&2
    exit 1
}

failed=0
for t in "${targets[@]}"; do
    log="$LOG_DIR/$t.log"
    extra=()
    # A DHT record may be 4 348 bytes; libFuzzer's default limit is 4 096.
    [[ $t == dht_record ]] && extra=(-max_len=5000)
    start=$(date +%s)
    nice -n "$NICE" cargo fuzz run --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" -O -a "$t" \
        -- -max_total_time="$secs" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | tail -1 | awk '{print $2}')
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    [[ -z $runs ]] && runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' <<<"$last" | sed 's/: / /g')
    corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | awk '{print $2}')
    rate=$(grep -oE 'exec/s: [0-9]+' <<<"$last" | awk '{print $2}')
    if [[ $rc -eq 0 ]]; then
        result="no crash"
    else
        failed=1
        artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | awk '{print $5}')
        result="CRASH (exit $rc) ${artifact:-see $log}"
    fi
    printf '%s: %s s, %s runs, %s exec/s, %s, corpus %s, %s\n' \
        "$t" "$took" "${runs:-?}" "${rate:-?}" "${cov:-cov ?}" "${corp:-?}" "$result"
done
exit $failed
