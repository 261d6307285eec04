#!/usr/bin/env bats
# The pip step: wheels resolved on the host, pinned by sha256 in the lock,
# unpacked by envpin (no code from the image runs), imported in the image.
# Needs network to PyPI (small pure-python wheels, ~150 kB) and the host's
# /usr/bin/python3 with pip; the base is a rootfs of the host's python.

load helpers

SIX_SHA=8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254
IDNA_SHA=82fee1fc78add43492d3a1898bfa6d8a904cc97d8427f683ed8e798d07761aa0

# A small rootfs with the host's python3.11 (binary, its libraries, most of
# the stdlib) in a deterministic tar, built once per file.
setup_file() {
	local r="$BATS_FILE_TMPDIR/root" lib=usr/lib/x86_64-linux-gnu
	[ -x /usr/bin/python3.11 ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1 || return 0
	mkdir -p "$r/usr/bin" "$r/$lib" "$r/usr/lib64" "$r/usr/lib/python3.11" "$r/tmp" "$r/dev"
	cp /usr/bin/python3.11 "$r/usr/bin/" && ln -s python3.11 "$r/usr/bin/python3"
	for l in libm.so.6 libz.so.1 libexpat.so.1 libc.so.6 ld-linux-x86-64.so.2; do cp -L "/$lib/$l" "$r/$lib/"; done
	ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/usr/lib64/ld-linux-x86-64.so.2"
	ln -s usr/lib "$r/lib" && ln -s usr/lib64 "$r/lib64" && ln -s usr/bin "$r/bin"
	tar -C /usr/lib/python3.11 --exclude=test --exclude=__pycache__ --exclude=idlelib --exclude=tkinter \
		--exclude=ensurepip --exclude=lib2to3 --exclude=pydoc_data --exclude='config-3.11-*' \
		--exclude=distutils --exclude=unittest --exclude=dist-packages -cf - . | tar -C "$r/usr/lib/python3.11" -xf -
	tar -C "$r" --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner --format=pax \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf "$BATS_FILE_TMPDIR/py.tar" .
	rm -rf "$r"
}

setup() {
	common_setup
	[ -f "$BATS_FILE_TMPDIR/py.tar" ] || skip "needs /usr/bin/python3.11 with pip"
	cp "$BATS_FILE_TMPDIR/py.tar" "$T/py.tar"
	PYSHA=$(sha256sum "$T/py.tar" | cut -d' ' -f1)
}
teardown() { common_teardown; }

# manifest FILE REQ...: the python rootfs + one pip layer.
manifest() {
	local f=$1
	shift
	local reqs
	reqs=$(printf '"%s", ' "$@")
	cat >"$f" <<-JSON
	{
	  "envpin": 1, "name": "pytest", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "py.tar", "sha256": "$PYSHA" },
	  "layers": [ { "pip": [ ${reqs%, } ] } ],
	  "config": { "cmd": [ "/usr/bin/python3" ] }
	}
	JSON
}

@test "pip: the lock pins every wheel by sha256; a rebuild elsewhere is identical" {
	manifest m.json six==1.16.0 idna==3.7 packaging==24.0
	run env ENVPIN_PROGRESS=1 "$ENVPIN" build -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	d1=${lines[-1]}
	# progress shows the bytes pip fetched, not "0 MB"
	[[ "$output" =~ "pip download (3 wheels): "[1-9][0-9]*" kB" ]]
	[[ $d1 =~ ^sha256:[0-9a-f]{64}$ ]]
	run jq -r '.inputs.layers[0] | .kind, .python, (.wheels | length), (.wheels[] | "\(.filename) \(.sha256)")' m.lock.json
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = pip ] && [ "${lines[1]}" = 3.11 ] && [ "${lines[2]}" = 3 ]
	[[ "$output" == *"six-1.16.0-py2.py3-none-any.whl $SIX_SHA"* ]]
	[[ "$output" == *"idna-3.7-py3-none-any.whl $IDNA_SHA"* ]]
	run jq -r '.inputs.layers[0].wheels[0].url' m.lock.json
	[[ $output == https://files.pythonhosted.org/* ]]
	# the wheels are blobs of the store, kept by a cache record
	[ -f "$ENVPIN_STORE/blobs/sha256/$SIX_SHA" ]
	[ -f "$ENVPIN_STORE/cache/pip-wheel-$SIX_SHA.json" ]

	# another directory, another store, other umask/TZ: same digest, via the lock
	mkdir other && cp py.tar m.json m.lock.json other/
	run env -C other ENVPIN_STORE="$T/store2" TZ=Asia/Tokyo LANG=C bash -c 'umask 077; "$0" build --locked -f m.json' "$ENVPIN"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "${lines[-1]}" = "$d1" ]
	# no-op rebuild: the layer comes from the cache, no pip at all
	run env ENVPIN_HOST_PYTHON=/nonexistent "$ENVPIN" build -f m.json
	[ "$status" -eq 0 ] && [ "${lines[-1]}" = "$d1" ]
}

@test "pip: the wheels import inside the image; INSTALLER and modes" {
	manifest m.json six==1.16.0 idna==3.7
	run envpin build -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run envpin unpack "${lines[-1]}" root
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	sp=root/usr/local/lib/python3.11/dist-packages
	[ "$(cat $sp/six-1.16.0.dist-info/INSTALLER)" = envpin ]
	[ "$(stat -c %a $sp/six.py)" = 644 ] && [ "$(stat -c %a $sp/idna)" = 755 ]
	[ "$(stat -c %Y $sp/six.py)" = 1767225600 ]
	[ -z "$(find root/usr/local -name '*.pyc')" ]
	if [ "$(id -u)" = 0 ]; then
		run chroot root /usr/bin/python3 -c 'import six, idna, sys; print(six.__version__, idna.__version__, six.__file__)'
		[ "$status" -eq 0 ] || { echo "$output"; false; }
		[ "$output" = "1.16.0 3.7 /usr/local/lib/python3.11/dist-packages/six.py" ]
	else
		run /usr/bin/python3 -S -c "import sys; sys.path.insert(0, '$sp'); import six; print(six.__file__)"
		[[ $output == *"$sp/six.py" ]]
	fi
}

@test "pip: --locked refuses a wheel whose sha256 differs from the lock, naming both" {
	manifest m.json six==1.16.0
	run envpin lock -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	bad=0000000000000000000000000000000000000000000000000000000000000000
	jq --arg b "$bad" '.inputs.layers[0].wheels[0].sha256 = $b' m.lock.json >l && mv l m.lock.json
	run envpin build --locked -f m.json
	[ "$status" -eq 1 ]
	[[ $output == *"six-1.16.0-py2.py3-none-any.whl"* ]]
	[[ $output == *"sha256:$bad"* ]] && [[ $output == *"sha256:$SIX_SHA"* ]]
	[ ! -f "$ENVPIN_STORE/blobs/sha256/$bad" ]
}

@test "pip: --locked refuses changed requirements; a plain build re-resolves" {
	manifest m.json six==1.16.0
	run envpin build -f m.json
	[ "$status" -eq 0 ]
	manifest m.json six==1.15.0
	run envpin build --locked -f m.json
	[ "$status" -eq 2 ]
	[[ $output == *"layers[0] pip differs from the lock"* ]]
	[[ $output == *"six==1.16.0"* ]] && [[ $output == *"six==1.15.0"* ]]
	run envpin build -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run jq -r '.inputs.layers[0].wheels[0].filename' m.lock.json
	[ "$output" = six-1.15.0-py2.py3-none-any.whl ]
}

@test "pip: a requirement pip cannot satisfy is an environment error with pip's message" {
	manifest m.json envpin-no-such-package-xyz==1.0
	run envpin build -f m.json
	[ "$status" -eq 3 ]
	[[ $output == *"pip resolve failed"* ]]
	[[ $output == *"envpin-no-such-package-xyz"* ]]
	[[ $output == *"layers[0] pip"* ]]
}

# mkwheel FILE [hostile]: a wheel with a package, a #!python script, data,
# and console/gui entry points (or, with "hostile", an entry leaving the root).
mkwheel() {
	/usr/bin/python3 - "$1" "${2:-}" <<-'PY'
	import sys, zipfile
	z = zipfile.ZipFile(sys.argv[1], "w")
	def add(name, data, mode=0o644):
	    i = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
	    i.external_attr = (0o100000 | mode) << 16
	    z.writestr(i, data)
	add("demo/__init__.py", "def main():\n    print('demo main')\n    return 0\nclass C:\n    @staticmethod\n    def run():\n        return 3\n")
	add("demo/tool.sh", "#!/bin/sh\necho tool\n", 0o755)
	add("demo-1.0.data/scripts/demo-script", "#!python\nimport demo\ndemo.main()\n")
	add("demo-1.0.data/data/share/demo/readme.txt", "hi\n")
	add("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
	add("demo-1.0.dist-info/entry_points.txt", "[console_scripts]\ndemo = demo:main\ndemo-c = demo:C.run [extra]\n[other]\nx = y:z\n")
	add("demo-1.0.dist-info/RECORD", "")
	if sys.argv[2] == "hostile":
	    add("../../etc/evil", "x")
	z.close()
	PY
}

# Installs a local wheel through a hand-written lock (the wheel is put in
# the store as a blob, so no download happens).
@test "pip: wheel unpacking: .data dirs, #!python scripts, entry points, exec bits; hostile names refused" {
	printf '{"envpin":1,"name":"b","source_date_epoch":1767225600,"base":{"rootfs":"py.tar","sha256":"%s"}}\n' "$PYSHA" >b.json
	run envpin build -f b.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	for kind in good hostile; do
		mkwheel "demo-$kind.whl" "$kind"
		sha=$(sha256sum "demo-$kind.whl" | cut -d' ' -f1)
		cp "demo-$kind.whl" "$ENVPIN_STORE/blobs/sha256/$sha"
		manifest "$kind.json" demo==1.0
		cat >"$kind.lock.json" <<-JSON
		{ "lockVersion": 1, "inputs": { "layers": [ { "kind": "pip", "requirements": [ "demo==1.0" ],
		  "python": "3.11", "glibc": "2.28",
		  "wheels": [ { "name": "demo", "version": "1.0", "filename": "demo-1.0-py3-none-any.whl", "sha256": "$sha" } ] } ] } }
		JSON
	done
	run envpin build -f hostile.json
	[ "$status" -eq 2 ]
	[[ $output == *"demo-1.0-py3-none-any.whl"* ]] && [[ $output == *"'../../etc/evil' leaves its directory"* ]]

	run envpin build -f good.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run envpin unpack "${lines[-1]}" root
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	sp=root/usr/local/lib/python3.11/dist-packages
	[ "$(stat -c %a $sp/demo/tool.sh)" = 755 ] && [ "$(stat -c %a $sp/demo/__init__.py)" = 644 ]
	[ "$(cat root/usr/local/share/demo/readme.txt)" = hi ]
	[ "$(head -1 root/usr/local/bin/demo-script)" = '#!/usr/bin/python3' ]
	[ "$(stat -c %a root/usr/local/bin/demo-script)" = 755 ]
	[ "$(stat -c %a root/usr/local/bin/demo)" = 755 ]
	grep -qx 'from demo import C' root/usr/local/bin/demo-c
	grep -qx '    sys.exit(C.run())' root/usr/local/bin/demo-c
	[ ! -e root/usr/local/bin/x ]
	[ "$(cat $sp/demo-1.0.dist-info/INSTALLER)" = envpin ]
	if [ "$(id -u)" = 0 ]; then
		run chroot root /usr/local/bin/demo
		[ "$status" -eq 0 ] && [ "$output" = "demo main" ]
		run chroot root /usr/local/bin/demo-c
		[ "$status" -eq 3 ]
		run chroot root /usr/local/bin/demo-script
		[ "$output" = "demo main" ]
	fi
}
