#!/usr/bin/env bats
# envpin sbom: SPDX 2.3 checked by pyspdxtools (PyPI spdx-tools), CycloneDX 1.5
# checked by check-jsonschema against the official schema vendored in
# tests/data/schemas; the package count is the image's dpkg status count plus
# the wheels of the lock.  A busybox image with a synthetic dpkg database, a
# file:// fetch and one small wheel from PyPI (six), and an image of this
# (Debian 12) host's real dpkg database and copyright files.

load helpers

PYT="${ENVPIN_PYTOOLS:-/opt/envpin-pytools}/bin"
SCHEMA="$TOP/tests/data/schemas/cyclonedx-1.5/bom-1.5.SNAPSHOT.schema.json"

setup_file() {
	export W=$(mktemp -d /tmp/ep340.XXXXXX)
	export ENVPIN_STORE="$W/store" ENVPIN_PROGRESS=0
	local x="$W/x"
	"$TOP/tests/fixtures/busybox-rootfs.sh" "$W/bb.tar" >/dev/null
	mkdir -p "$x/var/lib/dpkg" "$x/usr/share/doc/foo" "$x/usr/share/doc/bar" "$x/etc"
	cat >"$x/var/lib/dpkg/status" <<-'EOF'
	Package: foo
	Status: install ok installed
	Architecture: amd64
	Version: 1:2.3-4+deb12u1
	Description: foo

	Package: bar
	Status: install ok installed
	Architecture: all
	Version: 0.9
	Description: bar

	Package: libfoo1
	Status: install ok installed
	Architecture: amd64
	Source: foo
	Version: 1:2.3-4+deb12u1

	Package: gone
	Status: deinstall ok config-files
	Architecture: amd64
	Version: 1.0
	EOF
	cat >"$x/usr/share/doc/foo/copyright" <<-'EOF'
	Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
	Upstream-Name: foo

	Files: *
	Copyright: 2020 Someone
	License: GPL-2+ or Artistic

	Files: lib/*
	Copyright: 2021 Other
	License: BSD-3-clause

	License: GPL-2+
	 the text
	EOF
	ln -s foo "$x/usr/share/doc/libfoo1"
	printf 'free text, not machine-readable\n' >"$x/usr/share/doc/bar/copyright"
	printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n' >"$x/etc/os-release"
	echo data >"$W/blob.bin"
	cat >"$W/m.json" <<-EOF
	{ "envpin": 1, "name": "sb", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "bb.tar", "sha256": "$(sha256sum "$W/bb.tar" | cut -c1-64)" },
	  "layers": [ { "copy": [ { "src": "x/", "dest": "/" } ] },
	              { "fetch": [ { "url": "file://$W/blob.bin", "sha256": "$(sha256sum "$W/blob.bin" | cut -c1-64)", "dest": "/opt/blob.bin" } ] },
	              { "pip": [ "six==1.16.0" ] } ] }
	EOF
	"$ENVPIN" build -q -f "$W/m.json" >"$W/digest" 2>"$W/build.err" || rm -f "$W/digest"
	# this host's dpkg database and copyright files, as an image
	if [ -f /var/lib/dpkg/status ]; then
		(cd / && tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
			-cf "$W/real.tar" var/lib/dpkg/status usr/lib/os-release \
			$(ls -d usr/share/doc/*/copyright) $(find usr/share/doc -maxdepth 1 -type l))
		cat >"$W/real.json" <<-EOF
		{ "envpin": 1, "name": "real", "source_date_epoch": 1767225600,
		  "base": { "rootfs": "real.tar", "sha256": "$(sha256sum "$W/real.tar" | cut -c1-64)" } }
		EOF
		"$ENVPIN" build -q -f "$W/real.json" >"$W/real-digest" 2>>"$W/build.err" || rm -f "$W/real-digest"
	fi
}

teardown_file() { [ -z "${W:-}" ] || rm -rf "$W"; }

setup() {
	common_setup
	export ENVPIN_STORE="$W/store"
	[ -x "$PYT/pyspdxtools" ] && [ -x "$PYT/check-jsonschema" ] ||
		skip "PyPI validators missing: run scripts/pytools.sh (make deps)"
}
teardown() { common_teardown; }

need_fast() {
	[ -f "$W/digest" ] || skip "the test image did not build (PyPI reachable?): $(tail -1 "$W/build.err")"
	D=$(cat "$W/digest")
}

# installed packages of a dpkg status file
dpkg_count() { grep -c '^Status: install ok installed' "$1"; }
lock_wheels() { jq '[.inputs.layers[].wheels // [] | .[]] | length' "$1"; }

@test "sbom spdx: pyspdxtools accepts it; debs + wheels = dpkg status + lock; purls, licenses, sha256" {
	need_fast
	run envpin sbom "$D" -o "$T/s.spdx.json"
	[ "$status" -eq 0 ]
	"$PYT/pyspdxtools" -i "$T/s.spdx.json"
	want=$(($(dpkg_count "$W/x/var/lib/dpkg/status") + $(lock_wheels "$W/m.lock.json")))
	[ "$want" = 4 ]
	got=$(jq '[.packages[].externalRefs[]?.referenceLocator | select(startswith("pkg:deb/") or startswith("pkg:pypi/"))] | length' "$T/s.spdx.json")
	[ "$got" = "$want" ]
	jq -e '.packages[] | select(.name=="foo") | .externalRefs[0].referenceLocator == "pkg:deb/debian/foo@1:2.3-4+deb12u1?arch=amd64&distro=debian-12"' "$T/s.spdx.json"
	jq -e '.packages[] | select(.name=="foo") | .licenseDeclared == "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND BSD-3-Clause"' "$T/s.spdx.json"
	# a package whose doc directory is a symlink to its source's
	jq -e '.packages[] | select(.name=="libfoo1") | .licenseDeclared | startswith("(GPL-2.0-or-later")' "$T/s.spdx.json"
	# free-text copyright: no license claimed
	jq -e '.packages[] | select(.name=="bar") | .licenseDeclared == "NOASSERTION"' "$T/s.spdx.json"
	six_sha=$(jq -r '.inputs.layers[2].wheels[0].sha256' "$W/m.lock.json")
	jq -e --arg s "$six_sha" '.packages[] | select(.name=="six") | (.checksums[0].checksumValue == $s) and (.licenseDeclared == "MIT") and (.externalRefs[0].referenceLocator == "pkg:pypi/six@1.16.0")' "$T/s.spdx.json"
	# the fetched file and the base are there with their sha256
	jq -e --arg s "$(sha256sum "$W/blob.bin" | cut -c1-64)" '[.packages[] | select(.checksums[]?.checksumValue == $s)] | length == 1' "$T/s.spdx.json"
	jq -e --arg s "$(sha256sum "$W/bb.tar" | cut -c1-64)" '[.packages[] | select(.checksums[]?.checksumValue == $s)] | length == 1' "$T/s.spdx.json"
	# the same image gives the same bytes
	envpin sbom "$D" >"$T/again.json"
	cmp "$T/s.spdx.json" "$T/again.json"
	# the validator can fail: an invalid license expression is refused
	jq '.packages[1].licenseDeclared = "GPL-2+ or"' "$T/s.spdx.json" >"$T/bad.json"
	run "$PYT/pyspdxtools" -i "$T/bad.json"
	[ "$status" -ne 0 ]
}

@test "sbom cyclonedx: the vendored CycloneDX 1.5 schema accepts it; same package count" {
	need_fast
	run envpin sbom "$D" --format cyclonedx -o "$T/s.cdx.json"
	[ "$status" -eq 0 ]
	"$PYT/check-jsonschema" --base-uri "file://$SCHEMA" --schemafile "$SCHEMA" "$T/s.cdx.json"
	[ "$(jq -r .specVersion "$T/s.cdx.json")" = 1.5 ]
	want=$(($(dpkg_count "$W/x/var/lib/dpkg/status") + $(lock_wheels "$W/m.lock.json")))
	[ "$(jq '[.components[] | select(.purl // "" | startswith("pkg:deb/") or startswith("pkg:pypi/"))] | length' "$T/s.cdx.json")" = "$want" ]
	jq -e '.components[] | select(.name=="six") | .licenses[0].expression == "MIT"' "$T/s.cdx.json"
	[ "$(jq -r .metadata.component.version "$T/s.cdx.json")" = "$D" ]
	# the schema check can fail
	jq '.components[0].type = "bogus"' "$T/s.cdx.json" >"$T/bad.json"
	run "$PYT/check-jsonschema" --base-uri "file://$SCHEMA" --schemafile "$SCHEMA" "$T/bad.json"
	[ "$status" -ne 0 ]
}

@test "sbom of a real Debian 12 dpkg database: both validators pass, counts match, licenses mapped" {
	[ -f "$W/real-digest" ] || skip "no dpkg database on this host"
	R=$(cat "$W/real-digest")
	envpin sbom "$R" -o "$T/r.spdx.json"
	envpin sbom "$R" --format cyclonedx -o "$T/r.cdx.json"
	"$PYT/pyspdxtools" -i "$T/r.spdx.json"
	"$PYT/check-jsonschema" --base-uri "file://$SCHEMA" --schemafile "$SCHEMA" "$T/r.cdx.json"
	want=$(dpkg_count /var/lib/dpkg/status)
	[ "$(jq '[.packages[].externalRefs[]?.referenceLocator | select(startswith("pkg:deb/"))] | length' "$T/r.spdx.json")" = "$want" ]
	[ "$(jq '[.components[] | select(.purl // "" | startswith("pkg:deb/"))] | length' "$T/r.cdx.json")" = "$want" ]
	# most Debian packages have a machine-readable copyright file
	lic=$(jq '[.packages[] | select(.licenseDeclared != "NOASSERTION")] | length' "$T/r.spdx.json")
	echo "packages $want, with a license $lic"
	[ "$lic" -gt $((want / 2)) ]
	jq -e '.packages[] | select(.name=="coreutils") | .licenseDeclared | test("GPL-3.0-or-later") and test("BSD-4-Clause-UC")' "$T/r.spdx.json"
}

@test "sbom without a lock: exit 2, one line, nothing written" {
	need_fast
	mkdir -p "$T/p" && echo x >"$T/p/a"
	printf '{"envpin":1,"name":"nolock","source_date_epoch":1767225600,"base":"scratch","layers":[{"copy":[{"src":"p/","dest":"/p/"}]}]}' >"$T/n.json"
	export ENVPIN_STORE="$T/store"
	N=$(envpin build -q -f "$T/n.json")
	# an image built by an older envpin, or pulled: no lock beside it
	rm "$ENVPIN_STORE/cache/lock-${N#sha256:}.json"
	run envpin sbom "$N" -o "$T/out.json"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	[[ "$output" == *"has no lock"* ]]
	[ ! -e "$T/out.json" ]
	run envpin sbom "$N" --format spdx
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" = 1 ]
	run envpin sbom "$N" --format xml
	[ "$status" -eq 2 ]
}
