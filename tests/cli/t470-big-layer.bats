#!/usr/bin/env bats
# Big layers (issue 13, item 3): verify and unpack run a layer of 16 MiB or
# more as a pipeline of threads (lib/async_sink, lib/pgunzip) when CPUs are
# idle.  ENVPIN_THREADS forces the thread count, and ENVPIN_NO_MMAP reads a
# big blob instead of mapping it, so all paths are checked against each
# other here: same report, same tree, same failures.  And the
# binary does not link the network and archive libraries (dlopen'ed).

load helpers
bats_require_minimum_version 1.5.0

setup() { common_setup; }
teardown() { common_teardown; }

# an image with one ~40 MiB layer: random (incompressible) and text-like
# files, so its gzip has dozens of members
build_big() {
	mkdir -p payload/r payload/t
	python3 - <<-'PY'
	import random
	r = random.Random(13)
	for i in range(24):
	    with open("payload/r/f%02d" % i, "wb") as f:
	        f.write(r.randbytes(1 << 20))
	for i in range(16):
	    with open("payload/t/f%02d" % i, "w") as f:
	        f.write("".join("line %d of %d: %s\n" % (k, i, r.choice(["lib", "cuda", "torch", "\x1f\x8b\x08"]))
	                        for k in range(40000)))
	PY
	cat >m.json <<-'JSON'
	{"envpin": 1, "name": "big", "source_date_epoch": 1767225600, "base": "scratch",
	 "layers": [ {"copy": [ {"src": "payload/", "dest": "/data/"} ]} ], "config": {}}
	JSON
	envpin build -q -f m.json --tag big >digest
	size=$(envpin inspect --json big | jq '.layers[0].size')
	[ "$size" -gt $((16 << 20)) ]
}

@test "big layer: verify's report is the same with 1 and 2 threads" {
	build_big
	ENVPIN_THREADS=1 envpin verify big >one.txt
	ENVPIN_THREADS=2 envpin verify big >two.txt
	# 2 threads map the blob; ENVPIN_NO_MMAP reads it through the pipeline
	ENVPIN_THREADS=2 ENVPIN_NO_MMAP=1 envpin verify big >read.txt
	diff one.txt two.txt
	diff one.txt read.txt
	grep -q '^  diff_id .* ok$' two.txt
}

@test "big layer: a damaged layer fails verify the same way with 1 and 2 threads" {
	build_big
	envpin build -q -f m.json -o lay >/dev/null
	blob=$(ls -S lay/blobs/sha256/* | head -1)
	chmod u+w "$blob"
	python3 - "$blob" <<-'PY'
	import sys
	p = sys.argv[1]
	with open(p, "r+b") as f:
	    f.seek(20 << 20)
	    b = f.read(1)
	    f.seek(20 << 20)
	    f.write(bytes([b[0] ^ 0x55]))
	PY
	ENVPIN_THREADS=1 run envpin verify ./lay
	one_status=$status one_out=$output
	ENVPIN_THREADS=2 ENVPIN_NO_MMAP=1 run envpin verify ./lay
	read_status=$status read_out=$output
	ENVPIN_THREADS=2 run envpin verify ./lay
	[ "$status" -eq 1 ]
	[ "$one_status" -eq 1 ]
	[ "$read_status" -eq 1 ]
	# the blob digest line is the same; the diff_id line says why
	[ "$(grep '^layer' <<<"$output")" = "$(grep '^layer' <<<"$one_out")" ]
	[ "$(grep '^layer' <<<"$output")" = "$(grep '^layer' <<<"$read_out")" ]
	# the whole report: the blob is BAD, its diff_id unchecked, on every path
	[ "$output" = "$one_out" ]
	[ "$output" = "$read_out" ]
	grep -q '^  diff_id .* unchecked$' <<<"$output"
}

@test "big layer: unpack gives the same tree with 1 and 2 threads" {
	build_big
	ENVPIN_THREADS=1 envpin unpack big one >/dev/null
	ENVPIN_THREADS=2 envpin unpack big two >/dev/null
	ENVPIN_THREADS=2 ENVPIN_NO_MMAP=1 envpin unpack big read >/dev/null
	diff <(tree_state one) <(tree_state two)
	diff <(tree_state one) <(tree_state read)
	diff -r payload two/data
}

# damaged_unpack BLOB: unpack of ./lay fails, naming BLOB's digest and the
# gzip error, and leaves no out/
damaged_unpack() {
	rm -rf out
	run envpin unpack ./lay out
	[ "$status" -ne 0 ]
	grep -qF "sha256:$(basename "$1")" <<<"$output"
	grep -qF "gzip: invalid data" <<<"$output"
	[ ! -e out ]
}

@test "big layer: a damaged member in the middle fails unpack naming the layer, on every path" {
	build_big
	envpin build -q -f m.json -o lay >/dev/null
	blob=$(ls -S lay/blobs/sha256/* | head -1)
	chmod u+w "$blob"
	python3 - "$blob" <<-'PY'
	import sys
	with open(sys.argv[1], "r+b") as f:
	    f.seek(20 << 20)
	    b = f.read(1)
	    f.seek(20 << 20)
	    f.write(bytes([b[0] ^ 0x55]))
	PY
	ENVPIN_THREADS=1 damaged_unpack "$blob"
	ENVPIN_THREADS=2 damaged_unpack "$blob"
	ENVPIN_THREADS=2 ENVPIN_NO_MMAP=1 damaged_unpack "$blob"
}

@test "unpack: big files are written with O_DIRECT, whatever their size's alignment, the same tree" {
	# sizes around O_DIRECT's threshold (1 MiB), its 4 KiB alignment and
	# its 1 MiB buffer
	mkdir -p payload
	python3 - <<-'PY'
	import random
	r = random.Random(5)
	M, K = 1 << 20, 4096
	for n in [M - 1, M, M + 1, M + K - 1, M + K, M + K + 1, 2 * M + 511, 3 * M - 4097, 5 * M + 12345, 0, 100]:
	    with open("payload/f%d" % n, "wb") as f:
	        f.write(r.randbytes(n))
	PY
	cat >m.json <<-'JSON'
	{"envpin": 1, "name": "dio", "source_date_epoch": 1767225600, "base": "scratch",
	 "layers": [ {"copy": [ {"src": "payload/", "dest": "/data/"} ]} ], "config": {}}
	JSON
	envpin build -q -f m.json --tag dio >/dev/null
	envpin unpack dio direct --json >direct.json
	ENVPIN_NO_DIRECT=1 envpin unpack dio buffered --json >buffered.json
	# every file of 1 MiB or more went through O_DIRECT (all but its tail)
	jq -e '.direct_bytes > 12000000' direct.json
	jq -e '.direct_bytes == 0' buffered.json
	diff -r payload direct/data
	diff <(tree_state direct) <(tree_state buffered)
	diff <(cd direct && find . -mindepth 1 -printf '%p %m %U %G %T@\n' | sort) \
		<(cd buffered && find . -mindepth 1 -printf '%p %m %U %G %T@\n' | sort)
	# ramfs refuses O_DIRECT: buffered writes, the same tree
	mkdir ram
	if [ "$(id -u)" = 0 ] && mount -t ramfs none ram 2>/dev/null; then
		# (ramfs reports no free space: the size cap is given)
		run envpin unpack dio ram/out --json --max-bytes 100000000
		same=0
		diff -r payload ram/out/data && same=1
		umount ram
		[ "$status" -eq 0 ]
		jq -e '.direct_bytes == 0' <<<"$output"
		[ "$same" = 1 ]
	fi
}

@test "startup: envpin does not link libcurl or libarchive (dlopen on first use)" {
	command -v readelf >/dev/null || skip "readelf missing"
	run readelf -d "$ENVPIN"
	[ "$status" -eq 0 ]
	[[ "$output" == *NEEDED* ]]
	[[ "$output" != *libcurl* ]]
	[[ "$output" != *libarchive* ]]
	# and they still load where needed
	run envpin version
	[ "$status" -eq 0 ]
	[[ "$output" == *"libarchive libarchive 3"* ]]
}

@test "run: a first start shows unpack progress with ENVPIN_PROGRESS=1" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	command -v runc >/dev/null || skip "runc missing"
	build_big
	ENVPIN_PROGRESS=1 ENVPIN_HOST_ROOT=$T/nohost run -127 envpin run --gpus none --no-workspace big -- /x
	[[ "$output" == *"unpack: "*"MB (100%)"* ]]
	# cached now: no progress the second time
	ENVPIN_PROGRESS=1 ENVPIN_HOST_ROOT=$T/nohost run -127 envpin run --gpus none --no-workspace big -- /x
	[[ "$output" != *"unpack: "* ]]
}
