#!/usr/bin/env bash
# End-to-end check through an independent C NFS client (libnfs): start `palisade up`, copy a
# 64 MiB random file in and out with nfs-cp, compare byte for byte, and list it with nfs-ls.
# Usage: scripts/e2e-nfs-cp.sh [--mode MODE] [--bin PATH]
set -euo pipefail
mode=""
# shellcheck source=scripts/e2e-common.sh
source "$(dirname "$0")/e2e-common.sh"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

args=(up --data "$work/data" --listen "127.0.0.1:$port")
[ -n "$mode" ] && args+=(--mode "$mode")
"$bin" "${args[@]}" >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  nfs-ls "$(url /)" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "e2e: server exited"; cat "$work/server.log"; exit 1; }
  sleep 0.1
done

head -c $((64 * 1024 * 1024)) /dev/urandom >"$work/in.bin"
start=$(date +%s.%N)
nfs-cp "$work/in.bin" "$(url /e2e.bin)"
mid=$(date +%s.%N)
nfs-cp "$(url /e2e.bin)" "$work/out.bin"
end=$(date +%s.%N)
cmp "$work/in.bin" "$work/out.bin"
listing=$(nfs-ls "$(url /)")
echo "$listing"
echo "$listing" | grep -q "e2e.bin" || { echo "e2e: e2e.bin not listed"; exit 1; }
echo "$listing" | grep -q "67108864" || { echo "e2e: listed size is not 67108864"; exit 1; }
python3 - "$start" "$mid" "$end" <<'PY'
import sys
s, m, e = map(float, sys.argv[1:])
print(f"e2e: 64 MiB in {m - s:.2f}s ({64 / (m - s):.0f} MiB/s), out {e - m:.2f}s ({64 / (e - m):.0f} MiB/s), identical")
PY
