#!/usr/bin/env bats
# envpin-skygen, the synthetic sky of the FITS smoke test: fitsverify accepts
# both products, they decode to the same pixels (also through funpack and
# astropy), the generator is deterministic, and the image matches its truth
# catalogue and the model in docs/fits.md (tests/fits/checksky.py).

load helpers

PY=/usr/bin/python3
FITSDIR="$BATS_TEST_DIRNAME/../fits"

fits_bin() {
	local d
	for d in "$(dirname "$ENVPIN")/bin" "$TOP/build/rel/bin"; do
		[ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	echo "$1 is not built (run make)" >&2
	return 1
}

# one sky for the whole file (0.3 s to make, but checked by several tests)
setup_file() {
	local sk
	sk=$(fits_bin envpin-skygen) || return 1
	mkdir -p "$BATS_FILE_TMPDIR/a"
	"$sk" -o "$BATS_FILE_TMPDIR/a/sky" >"$BATS_FILE_TMPDIR/a/summary.json"
}

setup() {
	common_setup
	SKYGEN=$(fits_bin envpin-skygen)
	DESCRIBE=$(fits_bin envpin-fitsdescribe)
	S="$BATS_FILE_TMPDIR/a/sky"
}

teardown() {
	common_teardown
}

pixhash() {
	"$DESCRIBE" "$1" | grep -o '"pixhash":"[^"]*"'
}

@test "skygen writes the uint16 image, its RICE copy, the truth and the cosmic-ray list" {
	for f in "$S.fits" "$S.fits.fz" "$S.truth.csv" "$S.cosmics.csv"; do
		[ -s "$f" ]
	done
	run cat "$BATS_FILE_TMPDIR/a/summary.json"
	[[ "$output" == *'"nx":512,"ny":512,"seed":1,"stars":152,"galaxies":50,'* ]]
	[ "$(head -1 "$S.truth.csv")" = "id,class,x,y,flux,peak,snr,saturated,sersic_n,r_eff,q,theta" ]
	[ "$(grep -c ',star,' "$S.truth.csv")" -eq 152 ]
	[ "$(grep -c ',galaxy,' "$S.truth.csv")" -eq 50 ]
	# RICE on noisy 16-bit data: about half the size
	[ "$(stat -c %s "$S.fits.fz")" -lt $(($(stat -c %s "$S.fits") * 6 / 10)) ]
}

@test "fitsverify accepts both sky files with no error and no warning" {
	command -v fitsverify >/dev/null || skip "fitsverify not installed"
	run fitsverify -q "$S.fits"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "verification OK"* ]]
	run fitsverify -q "$S.fits.fz"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "verification OK"* ]]
}

@test "the two sky files decode to identical pixels: uint16, BZERO 32768, one BLANK column" {
	run "$DESCRIBE" "$S.fits" "$S.fits.fz"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *'"bitpix":16,"equiv_bitpix":20,"shape":[512,512],"n":262144,"nan":512,'* ]]
	[[ "${lines[0]}" == *'"compressed":false,'*'"bzero":32768,"blank":-32768,'* ]]
	[[ "${lines[1]}" == *'"shape":[512,512],"n":262144,"nan":512,'*'"compressed":true,"cmptype":"RICE_1"'* ]]
	[ "$(pixhash "$S.fits")" = "$(pixhash "$S.fits.fz")" ]
	# all statistics but the HDU and compression agree
	[ "$(sed 's/"file".*"shape"//; s/"compressed".*"bscale"//' <<<"${lines[0]}")" = \
		"$(sed 's/"file".*"shape"//; s/"compressed".*"bscale"//' <<<"${lines[1]}")" ]
}

@test "the sky files agree with astropy, and funpack decodes the RICE copy to the same pixels" {
	"$PY" -c 'import astropy' 2>/dev/null || skip "python3-astropy not installed"
	run "$PY" "$FITSDIR/compare.py" --bin "$DESCRIBE" "$S.fits::0" "$S.fits.fz::1" \
		"$S.fits.fz[17:500,1:512]::1::0:512,16:500"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^ok' <<<"$output")" -eq 3 ]
	command -v funpack >/dev/null || skip "funpack (libcfitsio-bin) not installed"
	funpack -O "$T/unpacked.fits" "$S.fits.fz"
	[ "$(pixhash "$T/unpacked.fits")" = "$(pixhash "$S.fits")" ]
}

@test "skygen is deterministic: the same bytes twice; another seed, other pixels" {
	run "$SKYGEN" -o "$T/again"
	[ "$status" -eq 0 ]
	for ext in fits fits.fz truth.csv cosmics.csv; do
		cmp "$S.$ext" "$T/again.$ext"
	done
	run "$SKYGEN" --seed 2 -o "$T/other"
	[ "$status" -eq 0 ]
	[ "$(pixhash "$S.fits")" != "$(pixhash "$T/other.fits")" ]
	if cmp -s "$S.truth.csv" "$T/other.truth.csv"; then echo "seed 2 gave the same truth table"; false; fi
	# no date or checksum keyword could make two runs differ
	"$PY" -c "
from astropy.io import fits
import sys
for f, i in (('$S.fits', 0), ('$S.fits.fz', 1)):
    h = fits.getheader(f, i)
    sys.exit(any(k.startswith('DATE') or k in ('CHECKSUM', 'DATASUM') for k in h))"
}

@test "the sky matches its truth: background, noise, gradient, BLANK column, star centroids and fluxes" {
	"$PY" -c 'import astropy' 2>/dev/null || skip "python3-astropy not installed"
	run "$PY" "$FITSDIR/checksky.py" "$S"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *"not ok"* ]]
	[ "$(grep -c '^ok' <<<"$output")" -ge 13 ]
}

@test "skygen --size makes a smaller field with proportionally fewer sources" {
	run "$SKYGEN" --size 128x96 --seed 7 -o "$T/small"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"nx":128,"ny":96,"seed":7,"stars":8,"galaxies":2,'* ]]
	run "$DESCRIBE" "$T/small.fits"
	[[ "$output" == *'"shape":[96,128],"n":12288,"nan":96,'* ]]
	[ "$(pixhash "$T/small.fits")" = "$(pixhash "$T/small.fits.fz")" ]
	run "$SKYGEN" --stars 3 --galaxies 0 --cosmics 0 --size 64 -o "$T/tiny"
	[ "$status" -eq 0 ]
	[ "$(wc -l <"$T/tiny.truth.csv")" -eq 5 ] # header, 3 stars, the saturated star
	[ "$(wc -l <"$T/tiny.cosmics.csv")" -eq 1 ]
}

@test "skygen: --help, and usage errors exit 2 with a message" {
	run "$SKYGEN" --help
	[ "$status" -eq 0 ]
	[[ "$output" == usage:* ]]
	run "$SKYGEN"
	[ "$status" -eq 2 ]
	run "$SKYGEN" --size 8 -o "$T/x"
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid value '8' for --size"* ]]
	run "$SKYGEN" --seed abc -o "$T/x"
	[ "$status" -eq 2 ]
	run "$SKYGEN" -o "$T/no/such/dir/x"
	[ "$status" -eq 3 ]
	[[ "$output" == *"cannot create '$T/no/such/dir/x.cosmics.csv'"* ]]
}
