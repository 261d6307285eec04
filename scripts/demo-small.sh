#!/bin/bash
# make demo-small: build, lock, rebuild, verify and export a small busybox image (seconds).
#   build -> lock (pin) -> rebuild elsewhere (same digest) -> verify -> export -> load with skopeo
# The rootfs is Debian's static busybox, staged beside the manifest at demo time.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
ENVPIN=$top/envpin
work=$top/build/demo
export ENVPIN_STORE=${ENVPIN_STORE:-$work/store}
export ENVPIN_PROGRESS=0

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$work/src" "$work/src2" "$work/out"
mkdir -p "$work/src/rootfs/bin" "$work/out"
cp -r manifests/demo/demo.json manifests/demo/payload "$work/src/"
cp /bin/busybox "$work/src/rootfs/bin/busybox"
for a in sh echo ls cat env; do ln -sf busybox "$work/src/rootfs/bin/$a"; done
mkdir -p "$work/src/rootfs/workspace"

step "envpin build (writes the lock beside the manifest)"
"$ENVPIN" build -f "$work/src/demo.json" | tee "$work/out/build.txt"
digest=$(tail -n 1 "$work/out/build.txt")

step "the lock pins every input by sha256"
jq '{profile, compressor, inputs, image: {digest: .image.digest, config_digest: .image.config_digest}}' "$work/src/demo.lock.json"

step "rebuild from a copy elsewhere, other umask and timezone, with --locked: same digest"
cp -a "$work/src" "$work/src2"
touch -d '2001-01-01' "$work/src2/payload/data.txt"
digest2=$(cd / && umask 077 && TZ=Asia/Tokyo "$ENVPIN" --store "$work/store2" build -q --locked -f "$work/src2/demo.json")
echo "first build:  $digest"
echo "second build: $digest2"
[ "$digest" = "$digest2" ] || { echo "demo: digests differ" >&2; exit 1; }

step "envpin verify (every blob and every diff_id re-hashed)"
"$ENVPIN" verify "$digest"

step "envpin inspect"
"$ENVPIN" inspect "$digest"

step "envpin export, read back by skopeo (manifest digest kept)"
"$ENVPIN" export "$digest" --format docker -o "$work/out/envpin-demo.tar"
seen=sha256:$(skopeo inspect --raw "docker-archive:$work/out/envpin-demo.tar" >/dev/null && skopeo inspect --raw "oci-archive:$work/out/envpin-demo.tar" | sha256sum | cut -d' ' -f1)
echo "skopeo sees $seen"
[ "$seen" = "$digest" ] || { echo "demo: skopeo sees another digest" >&2; exit 1; }

step "done"
cat <<EOT
image digest: $digest
the lab:       envpin build -f manifests/demo/demo.json     (pins inputs in demo.lock.json)
the reviewer:  envpin verify $digest
the student:   docker load -i $work/out/envpin-demo.tar    (envpin run comes with issue 4)
store:         $ENVPIN_STORE
EOT
