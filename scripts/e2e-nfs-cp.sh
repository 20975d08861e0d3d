#!/usr/bin/env bash
# End-to-end check through an independent C NFS client (libnfs): start `palisade up`, copy a
# 64 MiB random file in and out with nfs-cp, compare byte for byte, and list it with nfs-ls.
# Usage: scripts/e2e-nfs-cp.sh [--mode MODE] [--bin PATH]
set -euo pipefail
mode=""
bin="target/release/palisade"
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in nfs-cp nfs-ls; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool missing (apt-get install libnfs-utils)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "e2e: $bin not built (cargo build --release -p palisade)" >&2; exit 1; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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

url() { echo "nfs://127.0.0.1/$1?nfsport=$port&mountport=$port&version=3"; }
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
