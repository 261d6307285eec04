#!/usr/bin/env bats
# envpin check on the offline default image: FITS checks pass, GPU checks skip
# (this machine has no GPU), --require-gpu fails, broken images fail naming
# the cause; verify --certify compares fingerprints; run --certify gates.
# The default image is built once (mmdebstrap from the mirror, twice: the
# build stage that compiles envpin's programs inside, then the image) and
# cached across runs by tests/fixtures/default-image.sh; nothing of this
# host's build goes into it.

load helpers

setup_file() {
	export ENVPIN_STORE="$BATS_FILE_TMPDIR/store" ENVPIN_PROGRESS=0
	local dir d
	# built once and cached across test runs (tests/fixtures/default-image.sh);
	# this file works on a copy of the store
	read -r dir d < <("$TOP/tests/fixtures/default-image.sh")
	[ -n "$d" ]
	cp -a "$dir/store" "$ENVPIN_STORE"
	cp -a "$dir/layout" "$BATS_FILE_TMPDIR/layout"
	cp "$dir/default.lock.json" "$BATS_FILE_TMPDIR/default.lock.json"
	echo "$d" >"$BATS_FILE_TMPDIR/digest"
	"$ENVPIN" verify -q "$d" >/dev/null
}

setup() {
	T=$(mktemp -d "$BATS_FILE_TMPDIR/t.XXXXXX")
	export ENVPIN_STORE="$BATS_FILE_TMPDIR/store" ENVPIN_PROGRESS=0
	D=$(cat "$BATS_FILE_TMPDIR/digest")
	cd "$T"
}

@test "check on the default image: FITS checks pass, GPU checks skip, certificate written" {
	run envpin check "$D" -o "$T/cert.json"
	echo "$output"
	[ "$status" -eq 0 ]
	# a pass without a GPU says plainly that only the CPU part was certified
	[[ "$output" == *"check: PASS (CPU only: 0 of "*" GPU checks run — no GPU"* ]]
	c="$T/cert.json"
	[ "$(jq -r .summary.scope "$c")" = cpu-only ]
	[ "$(jq -r .summary.gpu_passed "$c")" = 0 ]
	[ "$(jq -r .summary.gpu_total "$c")" = "$(jq '[.checks[] | select(.gpu)] | length' "$c")" ]
	[ "$(jq -r .result "$c")" = pass ]
	[ "$(jq -r .image.digest "$c")" = "$D" ]
	[[ "$(jq -r .image.config_digest "$c")" == sha256:* ]]
	[ -n "$(jq -r .host.kernel "$c")" ]
	# without a GPU every GPU check is a skip, never a pass
	[ "$(jq '[.checks[] | select(.gpu and .status == "pass")] | length' "$c")" = 0 ]
	[ "$(jq '[.checks[] | select(.gpu and .status == "skip")] | length' "$c")" -ge 10 ]
	# the FITS science checks ran on the CPU and passed
	[ "$(jq -r '.checks[] | select(.name == "cpu.completeness_snr20") | .status' "$c")" = pass ]
	[ "$(jq -r '.checks[] | select(.name == "cpu.class_accuracy_snr20") | .status' "$c")" = pass ]
	[ "$(jq -r .libraries.torch "$c")" = 1.13.0 ]
	[ "$(jq '.fingerprint.n_det' "$c")" -gt 150 ]
	[[ "$(jq -r .fingerprint.pixhash "$c")" == fnv1a64:* ]]
	# every GPU check is named and skipped with its reason: the CUDA ones, NCCL's
	# and the FITS test's CPU-vs-GPU agreement
	for n in device_count gemm_fp32 conv_fp32 determinism nccl_library nccl_allreduce; do
		[ "$(jq -r --arg n "$n" '.checks[] | select(.program == "selfcheck" and .name == $n) | .status' "$c")" = skip ] ||
			{ echo "selfcheck $n not skipped"; false; }
	done
	[ "$(jq '[.checks[] | select(.program == "fitsinfer" and .gpu)] | length' "$c")" -ge 1 ]
	jq -e '[.checks[] | select(.gpu)] | all(.status == "skip" and (.detail // "" | length) > 0)' "$c"
}

@test "the default image's programs were compiled inside it: ldd resolves only to the image's own libraries" {
	run envpin run --gpus none "$D" -- sh -c 'for p in /opt/envpin/bin/*; do echo "== $p"; ldd "$p"; done'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"libtorch_cpu.so.1.13 => /lib/x86_64-linux-gnu/libtorch_cpu.so.1.13"* ||
		"$output" == *"libtorch_cpu.so.1.13 => /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13"* ]]
	[[ "$output" != *"not found"* ]]
	# no host path in them (a host-built binary carried the host's build dir)
	run envpin run --gpus none "$D" -- sh -c 'grep -l "'"$TOP"'" /opt/envpin/bin/* || echo clean'
	[ "$output" = clean ]
}

@test "check --require-gpu fails without a GPU and says why" {
	run envpin check "$D" --require-gpu
	[ "$status" -eq 1 ]
	[[ "$output" == *"--require-gpu"* ]]
}

@test "verify --certify: the same image's fingerprint matches; a doctored one does not" {
	envpin check "$D" -q -o "$T/cert.json" >/dev/null
	run envpin verify "$D" --certify "$T/cert.json"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"fingerprint MATCHES"* ]]
	jq '.fingerprint.sum_x += 10' "$T/cert.json" >"$T/bad.json"
	run envpin verify "$D" --certify "$T/bad.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"sum_x"*"BAD"* ]]
	[[ "$output" == *"DOES NOT MATCH"* ]]
	jq '.fingerprint.pixhash = "fnv1a64:0000000000000000"' "$T/cert.json" >"$T/bad2.json"
	run envpin verify "$D" --certify "$T/bad2.json" --json
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq .fingerprint_comparison.match)" = false ]
}

# broken LAYER_JSON: an image on top of the default one with one more layer
broken() {
	mkdir -p "$T/b"
	cat >"$T/b/m.json" <<-JSON
	{ "envpin": 1, "name": "broken", "source_date_epoch": 1767225600,
	  "base": { "oci": "$BATS_FILE_TMPDIR/layout", "digest": "$D" },
	  "layers": [ $1 ] }
	JSON
	"$ENVPIN" build -q -f "$T/b/m.json"
}

@test "a corrupted library in the image fails the check, naming it" {
	printf 'not a shared object\n' >"$T/garbage.so"
	mkdir -p "$T/b" && cp "$T/garbage.so" "$T/b/"
	B=$(broken '{ "copy": [ { "src": "garbage.so", "dest": "/usr/lib/x86_64-linux-gnu/libc10.so.1.13.0" } ] }')
	run envpin check "$B"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"libc10.so.1.13"* ]]
	[[ "$output" == *"check: FAIL"* ]]
}

@test "a corrupted CLASS_STAR model fails the check, naming it" {
	mkdir -p "$T/b"
	printf 'NNW\n# corrupted\n10 10 1\ngarbage\n' >"$T/b/default.nnw"
	B=$(broken '{ "copy": [ { "src": "default.nnw", "dest": "/usr/share/source-extractor/default.nnw" } ] }')
	run envpin check "$B"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"default.nnw"* ]]
}

@test "run --certify starts the container only when the check passes" {
	run envpin run --certify "$D" -- /bin/sh -c 'echo started-after-certification'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"started-after-certification"* ]]
	run envpin run --certify --require-gpu "$D" -- /bin/sh -c 'echo should-not-start'
	[ "$status" -ne 0 ]
	[[ "$output" != *"should-not-start"* ]]
	[[ "$output" == *"refusing to start"* ]]
}

# The H100 reference (tests/data/gpu/h100-cert.json, made by tests/gpu/run.sh on
# an H100 with torch 2.11 CUDA for an image with the same smoke test) is an
# input here: what is tested is the fingerprint envpin computes now on this
# CPU (torch 1.13) and envpin's comparator, not the fields of that file.
H100="$TOP/tests/data/gpu/h100-cert.json"

# cmp_json CERT: envpin verify --certify CERT --json into $T/cmp.json; sets status
cmp_json() {
	run envpin verify "$D" --certify "$1" --json
	printf '%s\n' "$output" >"$T/cmp.json"
	jq -e .fingerprint_comparison "$T/cmp.json" >/dev/null
}

@test "verify --certify with the H100 reference: the fingerprint computed here is within its tolerances" {
	run envpin verify "$D" --certify "$H100"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"fingerprint MATCHES"* ]]
	cmp_json "$H100"
	[ "$status" -eq 0 ]
	jq -e '.fingerprint_comparison.match == true and all(.fingerprint_comparison.fields[]; .ok)' "$T/cmp.json"
	# every field the reference gives a tolerance was compared (informational ones are not)
	[ "$(jq -c '[.fingerprint_comparison.fields[].name] | sort' "$T/cmp.json")" = \
		"$(jq -c '[.fingerprint.tolerance | to_entries[] | select(.value != "informational") | .key] | sort' "$H100")" ]
	# "reference" is read from the certificate given; "now" is what envpin
	# check computes for this image on this machine, run for run
	jq -e --slurpfile h "$H100" 'all(.fingerprint_comparison.fields[]; .reference == $h[0].fingerprint[.name])' "$T/cmp.json"
	envpin check "$D" -q -o "$T/here.json" >/dev/null
	jq -e --slurpfile c "$T/here.json" 'all(.fingerprint_comparison.fields[]; .now == $c[0].fingerprint[.name])' "$T/cmp.json"
}

@test "verify --certify: the comparator rejects the H100 reference moved past each tolerance, and only past it" {
	cmp_json "$H100"
	[ "$status" -eq 0 ]
	# what this machine computes now, and each numeric field's margin
	# abs + rel*|now| (a field whose tolerance is zero gets a margin of 1)
	jq '[.fingerprint_comparison.fields[] | select(.allowed != "equal") | {name, now}]' "$T/cmp.json" >"$T/now.json"
	[ "$(jq length "$T/now.json")" -ge 6 ]
	# shift F: the reference with every numeric field at now + F * margin
	shift_ref() {
		jq --slurpfile n "$T/now.json" --argjson f "$1" '
			.fingerprint as $fp
			| reduce $n[0][] as $x (.;
				($fp.tolerance[$x.name]) as $t
				| (($t.abs // 0) + ($t.rel // 0) * ($x.now | fabs)) as $m
				| .fingerprint[$x.name] = $x.now + $f * (if $m > 0 then $m else 1 end))' "$H100"
	}
	# half a margin away: every field still passes
	shift_ref 0.5 >"$T/near.json"
	cmp_json "$T/near.json"
	[ "$status" -eq 0 ]
	jq -e '.fingerprint_comparison.match == true' "$T/cmp.json"
	# three margins away: every numeric field fails, each on its own row
	shift_ref 3 >"$T/far.json"
	run envpin verify "$D" --certify "$T/far.json"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"DOES NOT MATCH"* ]]
	cmp_json "$T/far.json"
	[ "$status" -eq 1 ]
	jq -e --slurpfile n "$T/now.json" '.fingerprint_comparison.match == false
		and ([.fingerprint_comparison.fields[] | select(.ok | not) | .name] | sort) == ([$n[0][].name] | sort)' "$T/cmp.json"
	# the pixel hash must be equal: one bit off is a mismatch of that field alone
	jq '.fingerprint.pixhash |= (.[:-1] + (if .[-1:] == "0" then "1" else "0" end))' "$H100" >"$T/pix.json"
	cmp_json "$T/pix.json"
	[ "$status" -eq 1 ]
	[ "$(jq -c '[.fingerprint_comparison.fields[] | select(.ok | not) | .name]' "$T/cmp.json")" = '["pixhash"]' ]
}
