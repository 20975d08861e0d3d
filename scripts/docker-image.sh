#!/usr/bin/env bash
# Builds the `palisade:local` container image from scratch: the release binary plus exactly
# the shared libraries `ldd` lists for it (there is no image registry to pull a base from).
# Also generates, once, the node configs docker-compose.yml mounts (./palisade-keys, one
# file per node, mode 0600, the firewall configuration f = g = h = 1; delete the directory
# to get fresh keys).
# Usage: scripts/docker-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-palisade:local}"
cargo build --release --locked -p palisade
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/data" "$ctx/rootfs/tmp"
cp target/release/palisade "$ctx/rootfs/bin/palisade"
# Every library the dynamic loader will look for, at the path it will look in.
ldd target/release/palisade | awk '/=>/ { print $3 } !/=>/ && /^\s*\// { print $1 }' | while read -r lib; do
  [ -f "$lib" ] || continue
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/bin/palisade"]
CMD ["up", "--data", "/data", "--listen", "0.0.0.0:11111"]
DOCKERFILE
docker build -q -t "$tag" "$ctx"
echo "built $tag"
if [ ! -e palisade-keys/gateway-0.toml ]; then
  target/release/palisade keygen --f 1 --g 1 --h 1 --clients 1 --layout docker \
    --base-port 7000 --nfs-port 11111 --out palisade-keys
  echo "generated node configs in palisade-keys/"
fi
