#!/usr/bin/env bats
# envpin-fitsinfer: the FITS inference smoke test on the synthetic sky of
# envpin-skygen (docs/smoke-test.md has the figures and floors), its
# agreement with SEP on the same image, and failures that name their cause.

load helpers

bindir() {
	local d
	for d in "${FITSINFER_DIR:-}" "$(dirname "$ENVPIN")/bin" "$TOP/build/rel/bin"; do
		[ -n "$d" ] && [ -x "$d/envpin-fitsinfer" ] && { echo "$d"; return; }
	done
	echo "envpin-fitsinfer is not built (make)" >&2
	return 1
}

setup_file() {
	B=$(bindir)
	export B SKY="$BATS_FILE_TMPDIR/sky"
	mkdir -p "$SKY"
	"$B/envpin-skygen" -o "$SKY/sky" >/dev/null
	# One smoke run shared by the tests that read its JSON.
	"$B/envpin-fitsinfer" --smoke "$SKY" --json >"$SKY/out.json" 2>"$SKY/out.err"
	echo $? >"$SKY/out.rc"
}

setup() {
	common_setup
	B=$(bindir)
}
teardown() { common_teardown; }

finf() { "$B/envpin-fitsinfer" "$@"; }

# jq-free JSON queries: py EXPR, with d the smoke output.
py() {
	/usr/bin/python3 -c "import json,sys; d=json.load(open('$SKY/out.json')); $1"
}

@test "usage: --help, no mode, bad device and bad numbers are usage errors" {
	run finf --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--smoke DIR|IMAGE"* ]]
	run finf
	[ "$status" -eq 2 ]
	run finf --smoke "$SKY" --device tpu
	[ "$status" -eq 2 ]
	[[ "$output" == *"'tpu'"* ]]
	run finf --smoke "$SKY" --fwhm -3
	[ "$status" -eq 2 ]
	run finf --describe a.fits --smoke "$SKY"
	[ "$status" -eq 2 ]
}

@test "--describe prints the reader's JSON for the RICE-compressed sky" {
	run finf --describe "$SKY/sky.fits.fz"
	[ "$status" -eq 0 ]
	echo "$output" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["bitpix"] == 16 and d["shape"] == [512, 512] and d["nan"] == 512, d
assert d["compressed"] is True
'
}

@test "smoke test passes on the CPU with the documented figures" {
	[ "$(cat "$SKY/out.rc")" -eq 0 ] || { cat "$SKY/out.err"; false; }
	py '
r = d["runs"][0]; s = r["science"]; c = {k["name"]: k for k in d["checks"]}
assert d["result"] == "pass" and r["device"] == "cpu"
# floors of docs/smoke-test.md (measured: 0.980, 0.965, 0.127 px, 0.924, 0.966)
assert s["completeness"]["snr20"] >= 0.95 and s["completeness"]["snr10"] >= 0.93, s
assert s["position_rms"] <= 0.2, s
assert s["accuracy"]["snr20"] >= 0.85 and s["accuracy"]["snr50"] >= 0.93, s
assert s["median_class_star"]["star"] > 0.8 and s["median_class_star"]["galaxy"] < 0.1, s
assert s["spurious"] <= 0.03 * r["n_det"], s
assert 180 <= r["n_det"] <= 260, r["n_det"]
for n in ("cpu.filter_vs_reference", "cpu.peaks_vs_reference", "cpu.nnw_vs_reference", "cpu.finite"):
    assert c[n]["status"] == "pass", c[n]
assert all(k["status"] != "fail" for k in d["checks"])
# background of the generator: sky 800 (+ gradient), sigma 20.16 ADU
assert abs(d["background"]["bkg"] - 800) < 4 and abs(d["background"]["rms"] / 20.16 - 1) < 0.1
'
}

@test "GPU checks are skipped without CUDA, never passed" {
	if py 'sys.exit(0 if d["model"]["cuda_available"] else 1)'; then
		py 'c = {k["name"]: k for k in d["checks"]}; assert c["cuda_vs_cpu.snr_map"]["status"] == "pass"'
	else
		py '
c = {k["name"]: k for k in d["checks"]}
assert c["cuda"]["status"] == "skip", c["cuda"]
assert not any(k["name"].startswith("cuda") and k["status"] == "pass" for k in d["checks"])
'
	fi
}

@test "detections agree with SEP on the same image (>= 95 % of SEP objects within 2 px)" {
	/usr/bin/python3 -c 'import sep' 2>/dev/null || skip "python3-sep is not installed"
	run /usr/bin/python3 - "$SKY/sky.fits" "$SKY/out.json" <<-'PY'
	import json, sys
	import numpy as np, sep
	from astropy.io import fits
	img, res = sys.argv[1], json.load(open(sys.argv[2]))
	d = fits.getdata(img, uint=False).astype("<f4")   # uint=False: BLANK becomes NaN
	mask = ~np.isfinite(d)
	b = sep.Background(d, mask=mask, bw=64, bh=64, fw=3, fh=3)
	k = np.loadtxt("/usr/share/source-extractor/gauss_2.0_5x5.conv", skiprows=2) \
	    if __import__("os").path.exists("/usr/share/source-extractor/gauss_2.0_5x5.conv") else None
	o = sep.extract(np.where(mask, 0, d - b.back()), 3.0, err=b.globalrms, mask=mask,
	                minarea=5, filter_kernel=k)
	det = np.array([e[:2] for e in res["runs"][0]["detections"]])
	sx, sy = o["x"] + 1, o["y"] + 1                    # SEP is 0-based, FITS 1-based
	dist = np.hypot(det[:, None, 0] - sx[None], det[:, None, 1] - sy[None]).min(0)
	frac, med = (dist <= 2).mean(), np.median(dist)
	bg, rms = res["background"]["bkg"], res["background"]["rms"]
	print(f"sep objects {len(o)} matched {frac:.3f} median offset {med:.3f} px; "
	      f"bkg {bg:.3f} vs {b.globalback:.3f}, rms {rms:.4f} vs {b.globalrms:.4f}")
	assert len(o) > 100
	assert frac >= 0.95 and med < 0.4
	assert abs(bg - b.globalback) < 0.05 * b.globalrms
	assert abs(rms / b.globalrms - 1) < 0.02
	PY
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "the CPU run is deterministic: same fingerprint twice, also with --strict" {
	run finf --smoke "$SKY" --device cpu --strict --json
	[ "$status" -eq 0 ]
	echo "$output" >"$T/again.json"
	/usr/bin/python3 -c "
import json
a = json.load(open('$SKY/out.json'))['fingerprint']; b = json.load(open('$T/again.json'))['fingerprint']
assert a == b, (a, b)
assert a['pixhash'].startswith('fnv1a64:') and a['version'] == 1 and a['n_eff'] > 150
"
}

@test "the plain FITS file gives the same pixels and fingerprint as the RICE file" {
	run finf --smoke "$SKY/sky.fits" --truth "$SKY/sky.truth.csv" --cosmics "$SKY/sky.cosmics.csv" --device cpu --json
	[ "$status" -eq 0 ]
	echo "$output" >"$T/plain.json"
	/usr/bin/python3 -c "
import json
a = json.load(open('$SKY/out.json'))['fingerprint']; b = json.load(open('$T/plain.json'))['fingerprint']
assert a == b, (a, b)
"
}

@test "an image without truth runs the numeric checks only" {
	run finf --smoke "$SKY/sky.fits.fz" --device cpu
	[ "$status" -eq 0 ]
	[[ "$output" == *"pass cpu.filter_vs_reference"* ]]
	[[ "$output" != *"completeness"* ]]
}

@test "a corrupted CLASS_STAR network fails with a message naming the file" {
	head -c 900 /usr/share/source-extractor/default.nnw >"$T/bad.nnw" 2>/dev/null ||
		skip "source-extractor is not installed"
	run finf --smoke "$SKY" --nnw "$T/bad.nnw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$T/bad.nnw'"*"truncated"* ]]
	sed 's/3\.03477e+00/3.0x477e+00/' /usr/share/source-extractor/default.nnw >"$T/bad2.nnw"
	run finf --smoke "$SKY" --nnw "$T/bad2.nnw" --json
	[ "$status" -eq 1 ]
	[[ "$output" == *'"result":"fail","error":'*"bad2.nnw"*"bad number '3.0x477e+00'"* ]]
	run finf --smoke "$SKY" --nnw "$T/missing.nnw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot open CLASS_STAR network '$T/missing.nnw'"* ]]
}

@test "a missing libtorch is reported by name" {
	# A shim that needs a libtorch_cpu (an soname the system cannot have)
	# which is gone by the time it loads: what an image without libtorch sees.
	mkdir -p "$T/lib"
	echo 'int ts_dummy(void) { return 0; }' >"$T/d.c"
	cc -shared -fPIC -o "$T/lib/libtorch_cpu.so" -Wl,-soname,libtorch_cpu.so.999 "$T/d.c"
	cc -shared -fPIC -o "$T/shim.so" "$T/d.c" -L"$T/lib" -Wl,--no-as-needed -ltorch_cpu
	rm "$T/lib/libtorch_cpu.so"
	ENVPIN_FITSINFER_SHIM="$T/shim.so" run finf --smoke "$SKY"
	[ "$status" -eq 1 ]
	[[ "$output" == *"libtorch is not usable"*"libtorch_cpu.so.999: cannot open shared object file"* ]]
}

@test "an unreadable image fails naming it" {
	printf 'SIMPLE  = garbage' >"$T/bad.fits"
	run finf --smoke "$T/bad.fits"
	[ "$status" -eq 1 ]
	[[ "$output" == *"bad.fits"* ]]
}
