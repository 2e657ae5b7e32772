#!/usr/bin/env bash
# Smoke test of the image (after infra/image-build.sh): `vad --help`, then the slice on the shared sample videos
# inside the image as the non-root user: extract (random-init r3d_18, 32 px), train a tiny ADNet (threshold 0.01, so
# its reports have events, each cut into an H.264 clip with PyAV inside the image), scan, and `vad score VIDEO` on
# one file with camera and time from its id.
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANT=${VARIANT:-cuda}
TAG=${TAG:-localhost/vad:$VARIANT}
SHARED=${VAD_SHARED_DATA:-../shared/data}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=chroot

ctr=$(buildah from "$TAG")
tmp=$(mktemp -d)
trap 'buildah rm "$ctr" >/dev/null; rm -rf "$tmp"' EXIT
run() { echo "\$ $*"; buildah run --isolation chroot --user vad --workingdir /data "$ctr" -- "$@"; }

echo "== image $TAG: $(buildah images --format '{{.Size}}' "$TAG")"
buildah run --isolation chroot "$ctr" -- id vad
run vad --help >"$tmp/help.txt" && head -8 "$tmp/help.txt"
buildah copy --chown vad:vad "$ctr" "$SHARED/videos/v_GGSY1Qvo990.mp4" /data/archive/cam1/2026-11-28/010000.mp4 >/dev/null
buildah copy --chown vad:vad "$ctr" "$SHARED/videos/v_ZNVhz7ctTq0.mp4" /data/archive/cam2/2026-11-28/020000.mp4 >/dev/null
printf 'video_id,start_s,end_s\ncam1/2026-11-28/010000.mp4,2,6\ncam2/2026-11-28/020000.mp4,,\n' >"$tmp/labels.csv"
buildah copy --chown vad:vad "$ctr" "$tmp/labels.csv" /data/labels.csv >/dev/null

run vad extract --archive /data/archive --out /data/out --size 32 --stride 32
features=/data/out/features/r3d_18-random0-c16s32-32
run vad train --features "$features" --annotations /data/labels.csv --out /data/out --epochs 5 --window 8 --threshold 0.01
model=/data/out/models/adnet-w8-r3d_18-random0-c16s32-32
run vad scan --archive /data/archive --model "$model" --out /data/out
run vad score /data/archive/cam1/2026-11-28/010000.mp4 --archive /data/archive --model "$model" --out /data/single
run python -c '
import glob, json
for path in sorted(glob.glob("/data/out/reports/*/*/*/*.json")):
    r = json.load(open(path))
    clips = [s.get("clip") or s.get("clip_error") for s in r["segments"]]
    print(r["video_id"], r["camera"], r["recorded_at"], len(r["segments"]), "events; clips:", clips[:3])
    assert r["segments"] and all(s.get("clip") for s in r["segments"]), "every event needs its clip"
'
run sh -c 'ls -l /data/out/reports/*/cam1/2026-11-28/010000.mp4.events | head -5'
echo "== smoke test passed"
