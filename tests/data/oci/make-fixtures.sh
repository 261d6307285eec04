#!/bin/sh
# Builds small images with real tools into DIR (run by tests/unit/test_oci at
# test time; nothing large is committed).
#   L/   OCI layout, image tag "t": 2 gzip layers (umoci)
#   L2/  the same with Docker schema 2 media types (skopeo --format v2s2)
#   LZ/  the same with zstd layers
#   A.tar  oci-archive;  D.tar  docker-archive (skopeo; layers are plain tars)
# Exits 77 when a tool is missing.
set -eu
dir=$1
for t in umoci skopeo gzip; do
	command -v "$t" >/dev/null 2>&1 || { echo "missing $t" >&2; exit 77; }
done
cd "$dir"
umoci init --layout L
umoci new --image L:t
umoci unpack --rootless --image L:t B >/dev/null
mkdir -p B/rootfs/etc B/rootfs/opt/data
echo hello >B/rootfs/etc/hello
# some incompressible bytes so that layers span several inflate calls
head -c 300000 /dev/urandom >B/rootfs/opt/data/random.bin
umoci repack --image L:t B
rm -rf B
umoci unpack --rootless --image L:t B >/dev/null
echo second >B/rootfs/etc/second
umoci repack --image L:t B
rm -rf B
umoci config --image L:t --config.env A=B --config.workingdir /work --config.cmd /bin/sh \
	--architecture amd64 --os linux
umoci gc --layout L
skopeo copy -q oci:L:t oci-archive:A.tar
skopeo copy -q oci:L:t docker-archive:D.tar:x/y:t
skopeo copy -q --format v2s2 oci:L:t oci:L2:t
skopeo copy -q --dest-compress-format zstd oci:L:t oci:LZ:t
