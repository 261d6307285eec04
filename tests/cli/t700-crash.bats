#!/usr/bin/env bats
# Crash safety (docs/store.md "Why a crash cannot damage the store"): envpin
# is killed with SIGKILL after a random delay during build, pull, push, gc
# and verify --rebuild.  After each kill: every image stored before still
# verifies, gc succeeds and leaves nothing behind (tests/fixtures/store-check.py:
# no tmp/ entry, no NAME.tmp.PID, no blob that nothing keeps), and rerunning
# the command succeeds.  Two builds and a gc on one store at once, repeated,
# lose nothing.  (envpin has no rmi yet: no trials for it.)
#
#   CRASH_TRIALS=N  kills per command, rounds of the concurrency test (default 2;
#                   `make crash` runs more)
#   CRASH_SEED=S    the random seed (default: from the clock); every test prints
#                   the seed it used, so a failure can be replayed

load helpers
bats_require_minimum_version 1.5.0

FIX="$TOP/tests/fixtures"

# rand_file PATH KIB: incompressible bytes, so that gzip takes its time
rand_file() { head -c "$(($2 * 1024))" /dev/urandom >"$1"; }

# big_manifest DIR: a two-layer image of ~12 MiB of random bytes
big_manifest() {
	mkdir -p "$1/payload/a" "$1/payload/b"
	rand_file "$1/payload/a/one" 6144
	rand_file "$1/payload/b/two" 6144
	printf 'small\n' >"$1/payload/b/small"
	cat >"$1/m.json" <<-'JSON'
	{ "envpin": 1, "name": "crash", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/a/", "dest": "/a/" } ] },
	              { "copy": [ { "src": "payload/b/", "dest": "/b/" } ] } ] }
	JSON
}

setup_file() {
	export CT
	CT=$(mktemp -d /tmp/ep700.XXXXXX)
	# the template stores: TPL0 two small seed images, TPL those and the big one
	export TPL0="$CT/tpl0" TPL="$CT/tpl"
	local s
	for s in seed1 seed2; do
		make_payload "$CT/$s/payload"
		printf '%s\n' "$s" >"$CT/$s/payload/name"
		cat >"$CT/$s/m.json" <<-JSON
		{ "envpin": 1, "name": "$s", "source_date_epoch": 1767225600, "base": "scratch",
		  "layers": [ { "copy": [ { "src": "payload/", "dest": "/opt/$s/" } ] } ] }
		JSON
		ENVPIN_STORE=$TPL0 "$ENVPIN" build -q -f "$CT/$s/m.json" --tag "$s" >/dev/null
	done
	cp -a "$TPL0" "$TPL"
	big_manifest "$CT/big"
	export BIG
	BIG=$(ENVPIN_STORE=$TPL "$ENVPIN" build -q -f "$CT/big/m.json" --tag big)
	# the build trials build another image, not in the template
	big_manifest "$CT/new"
	if command -v docker-registry >/dev/null; then
		export ADDR
		ADDR=$("$FIX/registry.sh" start "$CT/reg")
		ENVPIN_STORE=$TPL "$ENVPIN" push "$BIG" "$ADDR/crash/big:1" >/dev/null
	fi
}

teardown_file() {
	[ -n "${CT:-}" ] || return 0
	[ -d "$CT/reg" ] && "$FIX/registry.sh" stop "$CT/reg"
	rm -rf "$CT"
}

setup() {
	common_setup
	SEED=${CRASH_SEED:-$(($(date +%s%N) / 1000 % 1000000))}
	RANDOM=$((SEED + BATS_TEST_NUMBER))
	echo "# $BATS_TEST_DESCRIPTION: CRASH_SEED=$SEED" >&3
	TRIALS=${CRASH_TRIALS:-2}
	KILLED=0 FINISHED=0
}
teardown() { common_teardown; }

need_registry() { [ -n "${ADDR:-}" ] || skip "docker-registry is not installed"; }

# fresh_store [TEMPLATE]: $ENVPIN_STORE becomes a copy of TEMPLATE (default
# $TPL); BEFORE lists its images
fresh_store() {
	rm -rf "$ENVPIN_STORE"
	cp -a "${1:-$TPL}" "$ENVPIN_STORE"
	BEFORE=$(jq -r '.manifests[].digest' "$ENVPIN_STORE/index.json")
	[ -n "$BEFORE" ]
}

# time_ms CMD...: runs envpin CMD... to the end (it must succeed); sets MS to
# the milliseconds it took (at least 20): the range of the random kill delays.
time_ms() {
	local t0=$(date +%s%N)
	run "$ENVPIN" "$@"
	[ "$status" -eq 0 ] || { echo "envpin $*: $output"; false; }
	MS=$((($(date +%s%N) - t0) / 1000000))
	[ "$MS" -ge 20 ] || MS=20
}

# kill_at_random CMD...: envpin CMD... in the background, SIGKILLed after
# 0..0.9*MS ms (from the seeded RANDOM); counts KILLED or FINISHED.  None of its
# processes may outlive it.
kill_at_random() {
	local ms=$(((RANDOM * 32768 + RANDOM) % (MS * 9 / 10 + 1))) p st=0 tree
	"$ENVPIN" "$@" >/dev/null 2>"$T/killed.err" &
	p=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	tree=$(proc_ids $(descendants "$p"))
	kill -9 "$p" 2>/dev/null || true
	wait "$p" || st=$?
	echo "kill after $ms ms: exit $st"
	case $st in
	137) KILLED=$((KILLED + 1)) ;;
	0) FINISHED=$((FINISHED + 1)) ;;
	*) echo "envpin $* failed before the kill: $(cat "$T/killed.err")"; false ;;
	esac
	procs_gone 10 $tree
}

# images_verify DIGEST...: each one still verifies
images_verify() {
	local d
	for d in "$@"; do
		run "$ENVPIN" verify -q "$d"
		[ "$status" -eq 0 ] || { echo "image $d no longer verifies: $output"; false; }
	done
}

# gc_clean: gc succeeds and leaves no leftover (a killed verify --rebuild's
# tmp/rebuild-* included).  One exception, by design: a rebuild store
# younger than an hour that has no oci-layout yet is kept, because gc cannot
# tell a process killed inside store creation from one still creating it
# (lib/store.c, rebuild_dir_dead); the owner is dead here, so the test
# removes exactly those and counts them.  Anything else left fails.
gc_clean() {
	run "$ENVPIN" gc
	[ "$status" -eq 0 ] || { echo "gc: $output"; false; }
	run /usr/bin/python3 "$FIX/store-check.py" "$ENVPIN_STORE"
	if [ "$status" -ne 0 ]; then
		for d in "$ENVPIN_STORE"/tmp/rebuild-*; do
			[ -d "$d" ] && [ ! -e "$d/oci-layout" ] || continue
			echo "# gc kept a rebuild store killed inside its creation: ${d##*/}" >&3
			rm -rf "$d"
		done
		run /usr/bin/python3 "$FIX/store-check.py" "$ENVPIN_STORE"
	fi
	[ "$status" -eq 0 ] || { echo "gc left: $output"; false; }
}

# after_kill CMD...: the checks after each kill, then the rerun of CMD...
after_kill() {
	images_verify $BEFORE
	gc_clean
	images_verify $BEFORE
	run "$ENVPIN" "$@"
	[ "$status" -eq 0 ] || { echo "rerun of envpin $*: $output"; false; }
	RERUN=$output
	gc_clean
}

report() {
	echo "# $1: $TRIALS trials, $KILLED killed mid-way, $FINISHED finished before the kill" >&3
	[ $((KILLED + FINISHED)) -eq "$TRIALS" ]
}

@test "crash: build killed at random points" {
	fresh_store
	time_ms build -q -f "$CT/new/m.json"
	local want=${output##*$'\n'} i
	for ((i = 0; i < TRIALS; i++)); do
		fresh_store
		kill_at_random build -q -f "$CT/new/m.json"
		after_kill build -q -f "$CT/new/m.json"
		[ "${RERUN##*$'\n'}" = "$want" ]
		images_verify "$want"
	done
	report build
}

@test "crash: pull killed at random points" {
	need_registry
	# the pull must download: stores without the big image
	fresh_store "$TPL0"
	time_ms pull "$ADDR/crash/big:1"
	local i
	for ((i = 0; i < TRIALS; i++)); do
		fresh_store "$TPL0"
		kill_at_random pull "$ADDR/crash/big:1"
		after_kill pull "$ADDR/crash/big:1"
		[ "${RERUN##*$'\n'}" = "$BIG" ]
		images_verify "$BIG"
	done
	report pull
}

# fresh_image NAME: builds an image of 8 MiB of new random bytes into the
# store (so that a push has to upload it); sets IMG and BEFORE
fresh_image() {
	mkdir -p "$T/$1/payload"
	rand_file "$T/$1/payload/data" 8192
	cat >"$T/$1/m.json" <<-JSON
	{ "envpin": 1, "name": "$1", "source_date_epoch": 1767225600, "base": "scratch",
	  "layers": [ { "copy": [ { "src": "payload/", "dest": "/$1/" } ] } ] }
	JSON
	IMG=$("$ENVPIN" build -q -f "$T/$1/m.json")
	BEFORE=$(jq -r '.manifests[].digest' "$ENVPIN_STORE/index.json")
}

@test "crash: push killed at random points" {
	need_registry
	fresh_store
	fresh_image pcal
	time_ms push "$IMG" "$ADDR/crash/pcal-$SEED:1"
	local i
	for ((i = 0; i < TRIALS; i++)); do
		fresh_store
		fresh_image "p$i"
		kill_at_random push "$IMG" "$ADDR/crash/p$i-$SEED:1"
		after_kill push "$IMG" "$ADDR/crash/p$i-$SEED:1"
		[ "${RERUN##*$'\n'}" = "$IMG" ]
	done
	report push
}

# plant_garbage: unreferenced blobs, a dead transaction, an atomic-write leftover
plant_garbage() {
	/usr/bin/python3 - "$ENVPIN_STORE" <<-'PY'
	import hashlib, os, sys
	root = sys.argv[1]
	for i in range(3000):
	    data = os.urandom(2048)
	    with open(os.path.join(root, "blobs/sha256", hashlib.sha256(data).hexdigest()), "wb") as f:
	        f.write(data)
	os.makedirs(os.path.join(root, "tmp/txn-dead01"))
	for n in (".lock", "blob-0"):
	    open(os.path.join(root, "tmp/txn-dead01", n), "w").write("x")
	open(os.path.join(root, "index.json.tmp.999999"), "w").write("{")
	PY
}

@test "crash: gc killed at random points" {
	fresh_store
	plant_garbage
	time_ms gc
	local i
	for ((i = 0; i < TRIALS; i++)); do
		fresh_store
		plant_garbage
		kill_at_random gc
		after_kill gc
	done
	report gc
}

@test "crash: verify --rebuild killed at random points" {
	fresh_store
	time_ms verify big --rebuild -f "$CT/big/m.json"
	local i
	for ((i = 0; i < TRIALS; i++)); do
		fresh_store
		kill_at_random verify big --rebuild -f "$CT/big/m.json"
		after_kill verify big --rebuild -f "$CT/big/m.json"
		[[ "$RERUN" == *"IDENTICAL (same bytes)"* ]]
	done
	report "verify --rebuild"
}

@test "crash: two builds and a gc on one store at once lose nothing" {
	fresh_store
	local i j pa pb pg sa sb sg da db
	for ((i = 0; i < TRIALS + 1; i++)); do
		for j in a b; do
			mkdir -p "$T/c$i$j/payload"
			rand_file "$T/c$i$j/payload/data" 2048
			printf '%s\n' "$i$j" >"$T/c$i$j/payload/name"
			cat >"$T/c$i$j/m.json" <<-JSON
			{ "envpin": 1, "name": "c$i$j", "source_date_epoch": 1767225600, "base": "scratch",
			  "layers": [ { "copy": [ { "src": "payload/", "dest": "/c/" } ] } ] }
			JSON
		done
		"$ENVPIN" build -q -f "$T/c${i}a/m.json" >"$T/out.a" 2>&1 &
		pa=$!
		"$ENVPIN" build -q -f "$T/c${i}b/m.json" >"$T/out.b" 2>&1 &
		pb=$!
		"$ENVPIN" gc >"$T/out.g" 2>&1 &
		pg=$!
		sa=0 sb=0 sg=0
		wait "$pa" || sa=$?
		wait "$pb" || sb=$?
		wait "$pg" || sg=$?
		cat "$T/out.a" "$T/out.b" "$T/out.g"
		[ "$sa" -eq 0 ] && [ "$sb" -eq 0 ]
		# gc either ran or found the store busy (it does not wait for builds)
		[ "$sg" -eq 0 ] || { [ "$sg" -eq 3 ] && grep -q busy "$T/out.g"; }
		da=$(tail -1 "$T/out.a") db=$(tail -1 "$T/out.b")
		jq -e --arg a "$da" --arg b "$db" '[.manifests[].digest] | index($a) != null and index($b) != null' \
			"$ENVPIN_STORE/index.json"
		BEFORE="$BEFORE $da $db"
		images_verify $BEFORE
	done
	gc_clean
	images_verify $BEFORE
	echo "# concurrency: $((TRIALS + 1)) rounds of build + build + gc" >&3
}
