#!/usr/bin/env bash
# Two `separate` clusters of two builds, measured side by side in one interleaved run.
#
#   scripts/side-by-side.sh BASE_DIR NEW_DIR OUT_DIR [latency|compare|SUITE_GROUPS]
#
# BASE_DIR and NEW_DIR each hold a `palisade` release binary, and BASE_DIR also
# `palisade-bench` (copy them out of target/ first: a rebuild would replace a running
# binary). Both clusters start on loopback with
# fresh data directories, the bench (from BASE_DIR) drives them in alternating rounds, and
# `pid=` gives it each server's CPU and peak memory. `latency` (the default) runs the
# latency suite (REPEAT rounds, 8 by default); `compare` runs seq-write, seq-read and small
# files (SIZE, default 64MiB); anything else is passed to `suite --only`. Output goes to
# OUT_DIR (the suite's report.md, or compare.md).
set -euo pipefail
base=$1; new=$2; out=$3; what=${4:-latency}
repeat=${REPEAT:-8}; size=${SIZE:-64MiB}
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start() { # name dir port
    "$2/palisade" up --mode separate --data "$work/$1" --listen "127.0.0.1:$3" \
        > "$work/$1.log" 2>&1 &
    pids+=($!)
}
start base "$base" 12101
start new "$new" 12102
for port in 12101 12102; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.2
    done
done
sleep 2
targets=(--target "base=127.0.0.1:12101,pid=${pids[0]}" --target "new=127.0.0.1:12102,pid=${pids[1]}")
mkdir -p "$out"
case $what in
    compare)
        "$base/palisade-bench" compare "${targets[@]}" --size "$size" --depth 4 --files 100 \
            --clients 32 --repeat "${REPEAT:-3}" --warmup 1 | tee "$out/compare.md" ;;
    *)
        "$base/palisade-bench" suite "${targets[@]}" --only "$what" --repeat "$repeat" \
            --out "$out" > "$out/suite.log" 2>&1
        grep -E '^\| .*(p50|CPU per call|total|ops/s)' "$out/report.md" || cat "$out/report.md" ;;
esac
