#!/bin/bash
# oci-verify.sh OCI_DIR
# The plain-shell peer of `envpin verify`: checks every blob of an OCI image
# layout against its file name (sha256sum -c) and every layer of every image
# in index.json against the config's diff_ids (decompress | sha256sum).
# Exit 0 all good, 1 a mismatch, 2 usage or unreadable layout.
set -euo pipefail
export LC_ALL=C
oci=${1:?usage: oci-verify.sh OCI_DIR}
[ -f "$oci/index.json" ] || { echo "oci-verify: no index.json in '$oci'" >&2; exit 2; }
b="$oci/blobs/sha256"

(cd "$b" && for f in *; do printf '%s  %s\n' "$f" "$f"; done | sha256sum -c --quiet --strict) || {
	echo "oci-verify: blob digest mismatch" >&2
	exit 1
}

bad=0
for m in $(jq -r '.manifests[].digest | sub("^sha256:"; "")' "$oci/index.json"); do
	cfg=$(jq -r '.config.digest | sub("^sha256:"; "")' "$b/$m")
	mapfile -t diffs < <(jq -r '.rootfs.diff_ids[]' "$b/$cfg")
	i=0
	while read -r mt dg; do
		case "$mt" in
		*tar+gzip | *tar.gzip) dec=(gzip -dc) ;; # OCI and Docker v2 names
		*tar+zstd) dec=(zstd -dcq) ;;
		*tar) dec=(cat) ;;
		*) echo "oci-verify: unknown layer media type '$mt'" >&2; exit 2 ;;
		esac
		got="sha256:$("${dec[@]}" <"$b/${dg#sha256:}" | sha256sum | cut -c1-64)"
		if [ "$got" != "${diffs[$i]:-}" ]; then
			echo "oci-verify: layer $i ($dg): diff_id $got, config says ${diffs[$i]:-none}" >&2
			bad=1
		fi
		i=$((i + 1))
	done < <(jq -r '.layers[] | "\(.mediaType) \(.digest)"' "$b/$m")
	[ "$i" -eq "${#diffs[@]}" ] || { echo "oci-verify: $i layers but ${#diffs[@]} diff_ids" >&2; bad=1; }
done
exit $bad
