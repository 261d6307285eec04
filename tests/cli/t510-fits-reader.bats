#!/usr/bin/env bats
# The FITS reader (runtime/fitsinfer/fitsimg.c) through envpin-fitsdescribe,
# against Debian's astropy (uint=False, so BLANK is honoured) on a matrix of
# generated files (tests/fits/mkmatrix.py) and on real images that Debian
# packages ship; and the files it must refuse.  Rules: docs/fits.md.

load helpers

PY=/usr/bin/python3
FITSDIR="$BATS_TEST_DIRNAME/../fits"
ASTROPY_DATA=/usr/lib/python3/dist-packages/astropy/io/fits/tests/data

# fits_bin NAME: the program next to the envpin under test, else in build/rel/bin
fits_bin() {
	local d
	for d in "$(dirname "$ENVPIN")/bin" "$TOP/build/rel/bin"; do
		[ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	echo "$1 is not built (run make)" >&2
	return 1
}

setup_file() {
	"$PY" -c 'import astropy' 2>/dev/null || return 0
	"$PY" "$BATS_TEST_DIRNAME/../fits/mkmatrix.py" "$BATS_FILE_TMPDIR/m"
}

setup() {
	common_setup
	"$PY" -c 'import astropy' 2>/dev/null || skip "python3-astropy not installed"
	DESCRIBE=$(fits_bin envpin-fitsdescribe)
	M="$BATS_FILE_TMPDIR/m"
}

teardown() {
	common_teardown
}

compare() {
	run "$PY" "$FITSDIR/compare.py" --bin "$DESCRIBE" --matrix "$M" "$@"
	echo "$output"
	[ "$status" -ne 77 ] || skip "no input installed"
	[ "$status" -eq 0 ]
	[[ "$output" == ok* ]]
	[[ "$output" != *"not ok"* ]]
}

# refuse SPEC PATTERN: the reader exits 2 and names the file and the reason
refuse() {
	run "$DESCRIBE" "$1"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"'$1'"* ]]
	[[ "$output" == *"$2"* ]]
	[[ "$output" != *'"bitpix"'* ]]
}

@test "reader agrees with astropy on every BITPIX and the signed/unsigned conventions" {
	compare bitpix
	[ "$(grep -c '^ok' <<<"$output")" -eq 9 ]
	run "$DESCRIBE" "$M/u16.fits" "$M/u32.fits" "$M/sb8.fits" "$M/i64.fits"
	[ "$status" -eq 0 ]
	# cfitsio's equivalent types: uint16 20, uint32 40, signed byte 10
	[[ "${lines[0]}" == *'"bitpix":16,"equiv_bitpix":20,'*'"min":0,"max":65535,'* ]]
	[[ "${lines[1]}" == *'"bitpix":32,"equiv_bitpix":40,'*'"bzero":2147483648,'* ]]
	[[ "${lines[2]}" == *'"bitpix":8,"equiv_bitpix":10,'*'"min":-128,"max":127,'* ]]
	[[ "${lines[3]}" == *'"bitpix":64,"equiv_bitpix":64,'* ]]
}

@test "reader applies BSCALE/BZERO like astropy (to 1 float32 ulp)" {
	compare scaled
	run "$DESCRIBE" "$M/scaled16.fits"
	[[ "$output" == *'"equiv_bitpix":-32,'*'"bscale":0.25,"bzero":1000,"blank":-32768,'* ]]
}

@test "reader turns BLANK into NaN and counts it, scaled or not" {
	compare blank
	run "$DESCRIBE" "$M/blank16.fits" "$M/blank8.fits" "$M/u16blank.fits"
	[[ "${lines[0]}" == *'"nan":7,'* ]]
	[[ "${lines[1]}" == *'"nan":37,'* ]]
	[[ "${lines[2]}" == *'"nan":53,'* ]]
}

@test "reader maps NaN, +-Inf and out-of-float32 values to NaN, subnormals to 0" {
	compare bitpix # f32 and f64 are compared with these rules
	run "$DESCRIBE" "$M/f32.fits" "$M/f64.fits"
	[ "$status" -eq 0 ]
	# f32: NaN, Inf, -Inf; f64: NaN, Inf, -Inf, 1e300
	[[ "${lines[0]}" == *'"nan":3,'* ]]
	[[ "${lines[1]}" == *'"nan":4,'* ]]
	[[ "${lines[0]}" != *'inf'* && "${lines[0]}" != *'nan,'* ]]
}

@test "reader selects extensions by number and EXTNAME, the first image by default" {
	compare mef
	run "$DESCRIBE" "$M/mef.fits" "$M/mef.fits[ERR]" "$M/mef.fits[3]"
	[[ "${lines[0]}" == *'"hdu":2,'*'"shape":[37,53],'*'"extname":"SCI"'* ]]
	[[ "${lines[1]}" == *'"hdu":3,'*'"shape":[18,53],'*'"extname":"ERR"'* ]]
	[[ "${lines[2]}" == *'"hdu":4,'*'"shape":[37,17],'*'"extname":"DQ"'* ]]
}

@test "reader reads image sections, of plain, scaled, cube and compressed images" {
	compare section
	[ "$(grep -c '^ok' <<<"$output")" -eq 6 ]
	run "$DESCRIBE" "$M/i16.fits[10:40,5:30]"
	# NumPy order: 26 rows (y 5..30) of 31 columns (x 10..40)
	[[ "$output" == *'"shape":[26,31],"n":806,'* ]]
}

@test "reader reads cubes whole and accepts NAXIS=4 only with degenerate axes" {
	compare cube
	run "$DESCRIBE" "$M/cube.fits" "$M/deg4.fits"
	[[ "${lines[0]}" == *'"shape":[3,37,53],"n":5883,'* ]]
	[[ "${lines[1]}" == *'"shape":[1,2,37,53],"n":3922,'* ]]
	refuse "$M/bad4.fits" "NAXIS = 4 with NAXIS4 = 2"
}

@test "reader decodes RICE_1, GZIP_1, GZIP_2 and HCOMPRESS_1 tile compression like astropy" {
	compare compressed
	run "$DESCRIBE" "$M/rice16.fits" "$M/gzip1_32.fits" "$M/gzip2_f32.fits" "$M/hcomp16.fits"
	[[ "${lines[0]}" == *'"compressed":true,"cmptype":"RICE_1"'* ]]
	[[ "${lines[1]}" == *'"cmptype":"GZIP_1"'* ]]
	[[ "${lines[2]}" == *'"cmptype":"GZIP_2"'* ]]
	[[ "${lines[3]}" == *'"cmptype":"HCOMPRESS_1"'* ]]
	# lossless: the RICE and HCOMPRESS copies of one int16 image give one hash
	[ "$(grep -o 'fnv1a64:[0-9a-f]*' <<<"${lines[0]}")" = "$(grep -o 'fnv1a64:[0-9a-f]*' <<<"${lines[3]}")" ]
}

@test "reader agrees with astropy on real images from Debian packages (NGC 1316, SAAO raw frame)" {
	compare real
	[[ "$output" == *"ok - comp.fits"* ]]
	local saao=/usr/lib/python3/dist-packages/ccdproc/tests/data/a8280271.fits
	[ -f "$saao" ] || skip "python3-ccdproc not installed"
	[[ "$output" == *"ok - a8280271.fits[17:524,2:512]"* ]]
	run "$DESCRIBE" "$saao" "$saao[17:524,2:512]"
	[[ "${lines[0]}" == *'"equiv_bitpix":20,"shape":[520,536]'* ]]
	[[ "${lines[1]}" == *'"shape":[511,508]'* ]]
}

@test "reader refuses tables, random groups, NAXIS=1, zero-size, truncated and non-FITS files by name" {
	refuse "$M/table.fits" "no image data"
	refuse "$M/table.fits[1]" "not an IMAGE"
	refuse "$M/mef.fits[TAB]" "not an IMAGE"
	refuse "$M/groups.fits" "random groups"
	refuse "$M/vector.fits" "one-dimensional"
	refuse "$M/truncated.fits" "truncated file?"
	refuse "$M/notfits.fits" "cannot open as a FITS image"
	refuse "$M/missing.fits" "could not open the named file"
	refuse "$M/mef.fits[NOPE]" "cannot open as a FITS image"
	if [ -f "$ASTROPY_DATA/zerowidth.fits" ]; then
		refuse "$ASTROPY_DATA/zerowidth.fits" "is empty (NAXIS2 = 0)"
		refuse "$ASTROPY_DATA/random_groups.fits" "random groups"
	fi
}

@test "reader refuses images over --max-pixels before allocating them" {
	run "$DESCRIBE" --max-pixels 1960 "$M/i16.fits"
	[ "$status" -eq 2 ]
	[[ "$output" == *"'$M/i16.fits': HDU 1 has more pixels than the limit of 1960"* ]]
	run "$DESCRIBE" --max-pixels 1961 "$M/i16.fits"
	[ "$status" -eq 0 ]
}

@test "envpin-fitsdescribe: --help, usage errors, one line per file, bad file does not stop the rest" {
	run "$DESCRIBE" --help
	[ "$status" -eq 0 ]
	[[ "$output" == usage:* ]]
	run "$DESCRIBE"
	[ "$status" -eq 2 ]
	run "$DESCRIBE" --max-pixels -5 "$M/i16.fits"
	[ "$status" -eq 2 ]
	run "$DESCRIBE" --dump-pixels x.raw "$M/i16.fits" "$M/b8.fits"
	[ "$status" -eq 2 ]
	run "$DESCRIBE" "$M/i16.fits" "$M/notfits.fits" "$M/b8.fits"
	[ "$status" -eq 2 ]
	[ "$(grep -c '^{"file":' <<<"$output")" -eq 2 ]
	# the JSON parses and has the fields design.md section 3 names
	run bash -c "'$DESCRIBE' '$M/mef.fits[SCI]' | $PY -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d))'"
	[ "$status" -eq 0 ]
	for k in file hdu bitpix shape n nan min max sum compressed; do
		[[ "$output" == *"'$k'"* ]]
	done
	# a name that needs JSON escaping comes back intact
	cp "$M/b8.fits" "$T/q\"uo\\te"$'\t'".fits"
	run bash -c "'$DESCRIBE' \"\$1\" | $PY -c 'import json,sys; print(repr(json.load(sys.stdin)[\"file\"]))'" _ "$T/q\"uo\\te"$'\t'".fits"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "'$T/q\"uo\\\\te\\t.fits'" ]
}
