# Sourced by the end-to-end scripts (bash, set -euo pipefail): reads `--mode MODE` and
# `--bin PATH` (defaults: $mode and $bin as set before sourcing), checks that libnfs's
# tools and the binary are there, and sets `work` (a temporary directory), `port` (a free
# loopback port) and `url PATH` (a libnfs URL on it).
mode="${mode-}"
bin="${bin:-target/release/palisade}"
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
url() { echo "nfs://127.0.0.1/$1?nfsport=$port&mountport=$port&version=3"; }
