#!/usr/bin/env bash
# nfs-ganesha as an outside baseline for palisade-bench (issue 5): installs nfs-ganesha with its
# VFS backend and rpcbind from Debian's packages, starts `rpcbind -w` and ganesha serving NFSv3
# over TCP on loopback with a VFS export of a fresh temp dir, and prints the --target argument
# for the bench. Needs root (ganesha's VFS backend uses open_by_handle_at, which needs
# CAP_DAC_READ_SEARCH).
#
#   scripts/ganesha.sh start [PORT]   # default 20490; MOUNT is served on PORT+1
#   scripts/ganesha.sh stop
#   scripts/ganesha.sh status
#
#   target/release/palisade-bench suite --spawn unreplicated \
#       --target "$(scripts/ganesha.sh start 20490 | tail -1)" --quick --out /tmp/r
#
# State (config, log, pid file, the export dir) lives in $GANESHA_STATE (default
# /tmp/palisade-ganesha); `stop` stops ganesha and removes it. rpcbind is left running (other
# services may use it).
set -euo pipefail

STATE="${GANESHA_STATE:-/tmp/palisade-ganesha}"
cmd="${1:-start}"
port="${2:-20490}"

die() { echo "ganesha.sh: $*" >&2; exit 1; }

install_packages() {
  if command -v ganesha.nfsd >/dev/null 2>&1 && command -v rpcbind >/dev/null 2>&1 &&
     [ -n "$(find /usr/lib* -name 'libfsalvfs*' 2>/dev/null | head -1)" ]; then
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "installing packages needs root"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: the recommends pull in the kernel NFS utilities and dbus
  # services that a loopback baseline does not need.
  apt-get install -y -qq --no-install-recommends nfs-ganesha nfs-ganesha-vfs rpcbind >/dev/null
}

stop_ganesha() {
  if [ -f "$STATE/ganesha.pid" ]; then
    pid="$(cat "$STATE/ganesha.pid")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
}

case "$cmd" in
  start)
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65535 ] || die "bad port $port"
    mnt_port=$((port + 1))
    install_packages
    stop_ganesha
    rm -rf "$STATE"
    mkdir -p "$STATE/export" "$STATE/recovery"
    if ! pgrep -x rpcbind >/dev/null 2>&1; then
      # -w: warm start from saved state if any; ganesha registers its programs here.
      rpcbind -w
    fi
    cat >"$STATE/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Protocols = 3;
    Bind_addr = 127.0.0.1;
    NFS_Port = $port;
    MNT_Port = $mnt_port;
    Enable_NLM = false;
    Enable_RQUOTA = false;
}
NFSv4 {
    Graceless = true;
    RecoveryRoot = "$STATE/recovery";
}
EXPORT_DEFAULTS {
    SecType = sys;
}
EXPORT {
    Export_Id = 77;
    Path = "$STATE/export";
    Pseudo = /bench;
    Protocols = 3;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    FSAL { Name = VFS; }
}
LOG {
    Default_Log_Level = EVENT;
}
EOF
    ganesha.nfsd -f "$STATE/ganesha.conf" -L "$STATE/ganesha.log" -p "$STATE/ganesha.pid" -N NIV_EVENT
    # Wait until NFS answers on the port (ganesha daemonises before it listens).
    for _ in $(seq 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "ganesha: NFSv3 on 127.0.0.1:$port, MOUNT on $mnt_port, export $STATE/export" >&2
        echo "ganesha=127.0.0.1:$port:$STATE/export,mount=$mnt_port"
        exit 0
      fi
      sleep 0.1
    done
    tail -30 "$STATE/ganesha.log" >&2 || true
    die "ganesha did not listen on $port within 10 s"
    ;;
  stop)
    stop_ganesha
    rm -rf "$STATE"
    ;;
  status)
    if [ -f "$STATE/ganesha.pid" ] && kill -0 "$(cat "$STATE/ganesha.pid")" 2>/dev/null; then
      echo "running (pid $(cat "$STATE/ganesha.pid"))"
    else
      echo "not running"; exit 1
    fi
    ;;
  *)
    die "usage: $0 start [PORT] | stop | status"
    ;;
esac
