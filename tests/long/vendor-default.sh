#!/bin/bash
# tests/long/vendor-default.sh: the reviewer's journey with the default image
# (debian base, mmdebstrap): build, `envpin vendor`, then in a network
# namespace with no network `verify --rebuild --from BUNDLE` must say
# IDENTICAL; a tampered .deb must be named.  Prints the bundle size and the
# offline rebuild time.  Run by `make test-vendor-long` (minutes, network for
# the build and the vendor step).  WORK=DIR keeps the work dir.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
E=${ENVPIN:-$TOP/build/rel/envpin}
W=${WORK:-$(mktemp -d /tmp/envpin-vendor-long.XXXXXX)}
export ENVPIN_STORE=$W/store ENVPIN_PROGRESS=0
# a copy of the manifest and of what its build stage mounts (../runtime/),
# so that its lock is ours
rm -rf "$W/m" && mkdir -p "$W/m/manifests" && cp -a "$TOP/manifests/default.json" "$W/m/manifests/"
(cd "$TOP" && git ls-files -z runtime | xargs -0 cp --parents -t "$W/m")
t0=$(date +%s)
D=$("$E" build -q -f "$W/m/manifests/default.json")
t1=$(date +%s)
echo "built $D in $((t1 - t0)) s"
rm -rf "$W/bundle"
"$E" vendor "$D" -o "$W/bundle"
t2=$(date +%s)
echo "vendor: $((t2 - t1)) s; bundle $(du -sb "$W/bundle" | cut -f1) bytes ($(du -sh "$W/bundle" | cut -f1)), $(jq '.files | length' "$W/bundle/envpin-bundle.json") files, $(jq '[.files | keys[] | select(startswith("inputs/debs/"))] | length' "$W/bundle/envpin-bundle.json") debs"
# the build stage's own debian base travels too (docs/vendor.md, debian_stages)
jq -e '.debian_stages.build.packages | length > 0' "$W/bundle/envpin-bundle.json" >/dev/null
"$E" vendor --check "$W/bundle" | tee "$W/check0.out"
t3=$(date +%s)
env ENVPIN_STORE="$W/reviewer" unshare -n "$E" verify "$D" --rebuild --from "$W/bundle" | tail -3 | tee "$W/verdict"
t4=$(date +%s)
grep -q "IDENTICAL (same bytes)" "$W/verdict"
echo "offline rebuild (unshare -n, empty store): $((t4 - t3)) s"
# the signature chain InRelease -> Packages -> .debs holds
grep -q "debian: InRelease good signature by a Debian archive key; it lists the Packages file: yes" "$W/check0.out"
# one .deb tampered: named by the check and by the rebuild
deb=$(jq -r '.files | to_entries[] | select(.key | startswith("inputs/debs/libc6_")) | .key' "$W/bundle/envpin-bundle.json")
h=$(jq -r --arg k "$deb" '.files[$k].sha256' "$W/bundle/envpin-bundle.json")
cp "$W/bundle/blobs/sha256/${h#sha256:}" "$W/orig.deb"
printf 'x' >>"$W/bundle/blobs/sha256/${h#sha256:}"
if "$E" vendor --check "$W/bundle" >"$W/check.out"; then echo "FAIL: tampered bundle passed"; exit 1; fi
grep -q "BAD $deb" "$W/check.out"
if env ENVPIN_STORE="$W/reviewer" unshare -n "$E" verify "$D" --rebuild --from "$W/bundle" >"$W/rb.out" 2>&1; then
	echo "FAIL: rebuild from a tampered bundle passed"; exit 1
fi
grep -q "$deb.*is damaged" "$W/rb.out"
cp "$W/orig.deb" "$W/bundle/blobs/sha256/${h#sha256:}"
echo "tampered $deb: named by vendor --check and by verify --rebuild --from"
echo "OK"
[ -n "${WORK:-}" ] || rm -rf "$W"
