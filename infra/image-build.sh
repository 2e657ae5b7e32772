#!/usr/bin/env bash
# Build the vad image on this machine: no Docker daemon and no registry here, so buildah (chroot isolation, vfs
# storage) builds infra/Dockerfile on a base image made locally with debootstrap (Debian 12 minbase, the same release
# as the public default debian:bookworm-slim). pip inside the build sees this machine's pip configuration and local
# wheel folders (mounted read-only), so torch comes from local disk as in `make install`.
#   VARIANT=cuda (default here: the torch wheels on this machine's disk are PyPI's CUDA build) | cpu (needs
#   download.pytorch.org); TAG (default localhost/vad:$VARIANT).
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANT=${VARIANT:-cuda}
TAG=${TAG:-localhost/vad:$VARIANT}
BASE=${BASE_IMAGE:-localhost/debian:bookworm-slim}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=chroot

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  echo "== base image $BASE from debootstrap (Debian 12 minbase)"
  work=$(mktemp -d /var/tmp/vad-base.XXXXXX)
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
         "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/*
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --rm "$ctr" "$BASE" >/dev/null
  rm -rf "$work"
fi

# this machine's pip setup, read-only: its wheel folders and constraints, and its CA bundle (HTTPS to the package
# registries may pass a proxy whose CA only this machine trusts) under a path of its own, named in a pip.conf
conf=$(mktemp -d /var/tmp/vad-pip.XXXXXX)
trap 'rm -rf "$conf"' EXIT
mounts=(--volume /etc/ssl/certs/ca-certificates.crt:/run/vad-build/ca.crt:ro --volume "$conf/pip.conf:/etc/pip.conf:ro")
{ echo "[global]"; echo "cert = /run/vad-build/ca.crt"; } >"$conf/pip.conf"
[ -e /etc/xdg/pip/constraints.txt ] && echo "constraint = /etc/xdg/pip/constraints.txt" >>"$conf/pip.conf"
for path in /opt/pypi /opt/pypi-more /opt/wheels /etc/xdg/pip /root/.config/pip; do
  [ -e "$path" ] && mounts+=(--volume "$path:$path:ro")
done

echo "== buildah bud $TAG (VARIANT=$VARIANT, BASE=$BASE)"
buildah bud --isolation chroot --layers "${mounts[@]}" \
  --build-arg BASE="$BASE" --build-arg VARIANT="$VARIANT" -f infra/Dockerfile -t "$TAG" .
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$TAG"
