#!/usr/bin/env bats
# envpin sbom of a real Debian 12 image (mmdebstrap minbase from the mirror,
# ~100 s): pyspdxtools and the CycloneDX 1.5 schema accept both documents and
# the Debian package count is the image's own dpkg status count.  Long: runs
# only under `make sbom-debian` (ENVPIN_TEST_SBOM_DEBIAN=1), not in `make test`.

load helpers

PYT="${ENVPIN_PYTOOLS:-/opt/envpin-pytools}/bin"
SCHEMA="$TOP/tests/data/schemas/cyclonedx-1.5/bom-1.5.SNAPSHOT.schema.json"

setup() {
	[ "${ENVPIN_TEST_SBOM_DEBIAN:-0}" = 1 ] || skip "long: run 'make sbom-debian'"
	command -v mmdebstrap >/dev/null || skip "mmdebstrap not installed"
	[ -x "$PYT/pyspdxtools" ] || skip "PyPI validators missing: run scripts/pytools.sh (make deps)"
	common_setup
}
teardown() { common_teardown; }

@test "sbom of an mmdebstrap minbase bookworm image: validators pass, counts match the image" {
	cat >"$T/m.json" <<-'EOF'
	{ "envpin": 1, "name": "deb", "source_date_epoch": 1767225600,
	  "base": { "debian": { "suite": "bookworm", "variant": "minbase" } } }
	EOF
	D=$(envpin build -q -f "$T/m.json")
	envpin sbom "$D" -o "$T/s.spdx.json"
	envpin sbom "$D" --format cyclonedx -o "$T/s.cdx.json"
	"$PYT/pyspdxtools" -i "$T/s.spdx.json"
	"$PYT/check-jsonschema" --base-uri "file://$SCHEMA" --schemafile "$SCHEMA" "$T/s.cdx.json"
	envpin unpack "$D" "$T/root" >/dev/null
	want=$(grep -c '^Status: install ok installed' "$T/root/var/lib/dpkg/status")
	[ "$want" -gt 50 ]
	[ "$(jq '[.packages[].externalRefs[]?.referenceLocator | select(startswith("pkg:deb/debian/"))] | length' "$T/s.spdx.json")" = "$want" ]
	[ "$(jq '[.components[] | select(.purl // "" | startswith("pkg:deb/debian/"))] | length' "$T/s.cdx.json")" = "$want" ]
	# the lock's package list and the image's database agree
	[ "$(jq '.inputs.base.packages | length' "$T/m.lock.json")" = "$want" ]
	jq -e '.packages[] | select(.name == "base-files") | .externalRefs[0].referenceLocator | test("distro=debian-12$")' "$T/s.spdx.json"
	lic=$(jq '[.packages[] | select(.licenseDeclared != "NOASSERTION")] | length' "$T/s.spdx.json")
	echo "debian packages $want, with a declared license $lic"
	[ "$lic" -gt $((want / 2)) ]
}
