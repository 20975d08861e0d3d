#!/usr/bin/env bash
# End-to-end check of a restart after the whole local cluster was killed at once: start
# `palisade up`, copy small files in with nfs-cp (the execution replicas end between
# checkpoints, past the last stable one, which is all agreement keeps on disk), kill -9
# the process, start it again on the same data directory, and read every file back and
# write a new one; twice. Before restart checkpoints (ExecutionReplica::start) the
# restarted cluster never answered.
# Usage: scripts/e2e-kill-restart.sh [--mode MODE] [--bin PATH]
set -euo pipefail
mode="separate"
# shellcheck source=scripts/e2e-common.sh
source "$(dirname "$0")/e2e-common.sh"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the server and waits until it answers a READDIR, at most 15 s: a liveness
# bound, generous for a start on loopback (well under a second here with restart
# checkpoints; the binary before them took about 25 s after each kill, and sometimes
# never answered).
start_server() {
  "$bin" up --mode "$mode" --data "$work/data" --listen "127.0.0.1:$port" >>"$work/server.log" 2>&1 &
  server_pid=$!
  local t0 now
  t0=$(date +%s.%N)
  while :; do
    timeout 5 nfs-ls "$(url /)" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "e2e: server exited"; cat "$work/server.log"; exit 1; }
    now=$(date +%s.%N)
    if python3 -c "import sys; sys.exit(0 if $now - $t0 > 15 else 1)"; then
      echo "e2e: server does not answer within 15 s"; tail -50 "$work/server.log"; exit 1
    fi
    sleep 0.1
  done
  now=$(date +%s.%N)
  python3 -c "print(f'e2e: answering {$now - $t0:.2f} s after start')"
}

kill_server() {
  kill -9 "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# Reads every file written so far back, byte for byte (bounded: a hung cluster fails).
check_all() {
  for f in "$work"/in/*; do
    rm -f "$work/out.bin"
    timeout 20 nfs-cp "$(url "/$(basename "$f")")" "$work/out.bin" \
      || { echo "e2e: $(basename "$f") not read back after the restart"; tail -50 "$work/server.log"; exit 1; }
    cmp "$f" "$work/out.bin"
  done
}

mkdir -p "$work/in"
start_server
for i in $(seq 1 13); do
  head -c $((i * 7919)) /dev/urandom >"$work/in/f$i"
  timeout 20 nfs-cp "$work/in/f$i" "$(url "/f$i")"
done
for round in 1 2; do
  kill_server
  start_server
  check_all
  head -c 50000 /dev/urandom >"$work/in/after-kill-$round"
  timeout 20 nfs-cp "$work/in/after-kill-$round" "$(url "/after-kill-$round")"
done
kill_server
start_server
check_all
echo "e2e: $(ls "$work/in" | wc -l) files read back identical after three kill -9 restarts ($mode)"
