#!/usr/bin/env bats
# The apt step: packages resolved against the image's own sources and
# keyring, pinned by sha256 with snapshot URLs, installed by the image's
# dpkg without network.  The archive is a local mirror on loopback
# (tests/fixtures/apt-mirror.py) holding the real InRelease and Packages.xz
# of deb.debian.org's bookworm and exactly the pool files asked for (fetched
# once per file run), so the real Debian signature verifies with the image's
# real keyring, and a test can alter or remove a .deb.  The base is a
# bookworm minbase made once per file by mmdebstrap (~40 s), whose
# sources.list names the loopback mirror.  Layers are not compressed
# (--compress none): each test's fresh store would gzip the 170 MB base again.

load helpers

FIX="$TOP/tests/fixtures"

setup_file() {
	local d=$BATS_FILE_TMPDIR
	[ "$(id -u)" = 0 ] && command -v runc >/dev/null && command -v mmdebstrap >/dev/null &&
		command -v gpgv >/dev/null || return 0
	curl -sfI -m 20 http://deb.debian.org/debian/dists/bookworm/InRelease >/dev/null || return 0
	mkdir -p "$d/mirror"
	python3 "$FIX/apt-mirror.py" --root "$d/mirror" --addr-file "$d/addr" 2>"$d/mirror.err" &
	echo $! >"$d/mirror.pid"
	for _ in $(seq 50); do [ -s "$d/addr" ] && break; sleep 0.1; done
	[ -s "$d/addr" ] || return 0
	SOURCE_DATE_EPOCH=1767225600 mmdebstrap --quiet --variant=minbase --format=tar \
		--customize-hook="echo 'deb http://$(cat "$d/addr")/debian bookworm main' >\"\$1/etc/apt/sources.list\"" \
		bookworm "$d/base.tar" http://deb.debian.org/debian >"$d/mmdebstrap.log" 2>&1 || rm -f "$d/base.tar"
}

teardown_file() {
	if [ -s "$BATS_FILE_TMPDIR/mirror.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/mirror.pid")" 2>/dev/null || true
	fi
}

setup() {
	common_setup
	[ -f "$BATS_FILE_TMPDIR/base.tar" ] ||
		skip "needs root, runc, mmdebstrap, gpgv and deb.debian.org"
	MIRROR=$BATS_FILE_TMPDIR/mirror/debian
	ln "$BATS_FILE_TMPDIR/base.tar" base.tar 2>/dev/null || cp "$BATS_FILE_TMPDIR/base.tar" base.tar
	BASESHA=$(sha256sum base.tar | cut -d' ' -f1)
	cat >m.json <<-JSON
	{
	  "envpin": 1, "name": "apttest", "source_date_epoch": 1767225600,
	  "base": { "rootfs": "base.tar", "sha256": "$BASESHA" },
	  "layers": [ { "apt": [ "tmux", "jq" ] } ],
	  "config": { "cmd": [ "/bin/bash" ] }
	}
	JSON
}
teardown() { common_teardown; }

# deb_file NAME: the pool file of package NAME in the mirror (after a lock).
deb_file() {
	echo "$MIRROR/$(jq -r --arg p "$1" '.inputs.layers[0].debs[] | select(.package == $p) | .filename' m.lock.json)"
}

@test "apt: the lock pins every .deb by sha256 with a snapshot URL; dockerfile pins the versions" {
	run envpin lock --compress none -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run jq -r '.inputs.layers[0] | .kind, .architecture, (.packages | join(" ")), (.archives | length)' m.lock.json
	[ "${lines[0]}" = apt ] && [ "${lines[1]}" = amd64 ] && [ "${lines[2]}" = "tmux jq" ] && [ "${lines[3]}" = 1 ]
	run jq -r '.inputs.layers[0].archives[0] | .suite, .snapshot, .inrelease_sha256' m.lock.json
	[ "${lines[0]}" = bookworm ]
	[[ ${lines[1]} =~ ^https://snapshot\.debian\.org/archive/debian/[0-9]{8}T[0-9]{6}Z$ ]]
	[ "${lines[2]}" = "sha256:$(sha256sum "$MIRROR/dists/bookworm/InRelease" | cut -d' ' -f1)" ]
	snap=${lines[1]}
	# tmux and jq and the dependencies minbase lacks; nothing minbase has
	run jq -r '.inputs.layers[0].debs[].package' m.lock.json
	[[ " ${lines[*]} " == *" tmux "* && " ${lines[*]} " == *" jq "* && " ${lines[*]} " == *" libjq1 "* ]]
	[[ " ${lines[*]} " == *" libevent-core-2.1-7 "* && " ${lines[*]} " == *" libonig5 "* ]]
	[[ " ${lines[*]} " != *" libc6 "* ]]
	# dependencies come before what needs them
	[ "${lines[-1]}" = jq ]
	# every .deb: its url on the mirror, the sha256 of what that serves, its snapshot url
	n=$(jq '.inputs.layers[0].debs | length' m.lock.json)
	for i in $(seq 0 $((n - 1))); do
		read -r f sha url s < <(jq -r ".inputs.layers[0].debs[$i] | \"\(.filename) \(.sha256) \(.url) \(.snapshot)\"" m.lock.json)
		[ "$url" = "http://$(cat "$BATS_FILE_TMPDIR/addr")/debian/$f" ]
		[ "$(curl -sf "$url" | sha256sum | cut -d' ' -f1)" = "$sha" ]
		[ "$s" = "$snap/$f" ]
	done
	# the lock was resolved without installing anything
	run bash -c 'ls "$ENVPIN_STORE/cache" 2>/dev/null | grep -c "^apt-deb-"'
	[ "$output" = 0 ]

	run envpin dockerfile -f m.json
	[ "$status" -eq 0 ]
	tv=$(jq -r '.inputs.layers[0].debs[] | select(.package == "tmux") | .version' m.lock.json)
	[[ "$output" == *"--no-install-recommends"*"tmux=$tv"*"jq="* ]]
}

@test "apt: tmux and jq installed by dpkg without network; built twice, same digest; the layer has no logs" {
	run envpin build --compress none -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	d1=${lines[-1]}
	[[ $d1 =~ ^sha256:[0-9a-f]{64}$ ]]
	# the .debs are blobs of the store, kept by a cache record
	sha=$(jq -r '.inputs.layers[0].debs[] | select(.package == "jq") | .sha256' m.lock.json)
	[ -f "$ENVPIN_STORE/blobs/sha256/$sha" ] && [ -f "$ENVPIN_STORE/cache/apt-deb-$sha.json" ]

	# what dpkg installed, and nothing of its run
	layer=$(envpin inspect "$d1" --json | jq -r '.layers[-1].digest')
	tar -tf "$ENVPIN_STORE/blobs/sha256/${layer#sha256:}" >list
	grep -qx 'usr/bin/tmux' list && grep -qx 'usr/bin/jq' list
	grep -q '^var/lib/dpkg/info/jq\.list$' list
	run grep -E '^var/log/(dpkg|alternatives)\.log$|^var/cache/ldconfig/aux-cache$|-old$' list
	[ "$status" -eq 1 ]
	mkdir root && tar -xf "$ENVPIN_STORE/blobs/sha256/${layer#sha256:}" -C root var/lib/dpkg/status
	grep -A3 -x 'Package: jq' root/var/lib/dpkg/status | grep -qx 'Status: install ok installed'

	# another directory, another store, other umask and TZ, --locked: same digest
	mkdir other && cp m.json m.lock.json other/ && ln base.tar other/base.tar
	run env -C other ENVPIN_STORE="$T/store2" TZ=Asia/Tokyo LANG=C bash -c 'umask 077; "$0" build --locked -f m.json' "$ENVPIN"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "${lines[-1]}" = "$d1" ]
	# a no-op rebuild fetches nothing and runs nothing
	: >"$BATS_FILE_TMPDIR/mirror.log"
	run envpin build -f m.json
	[ "$status" -eq 0 ] && [ "${lines[-1]}" = "$d1" ]
	[ ! -s "$BATS_FILE_TMPDIR/mirror.log" ]

	# a second apt step sees the first one's packages as installed
	jq '.layers += [ { "apt": [ "jq", "dpkg" ] } ]' m.json >m2.json
	run envpin build --compress none -f m2.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(jq '.inputs.layers[1].debs | length' m2.lock.json)" = 0 ]
}

@test "apt: --locked refuses a .deb whose bytes differ from the lock, naming it" {
	run envpin lock --compress none -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	f=$(deb_file libjq1)
	cp "$f" "$T/libjq1.orig"
	# same size, one byte changed (flipped: a fixed byte written there may
	# be the byte the file already has), in the mirror
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(2000); b = f.read(1); f.seek(2000); f.write(bytes([b[0] ^ 1]))' "$f"
	bad=$(sha256sum "$f" | cut -d' ' -f1)
	run envpin build --locked -f m.json
	cp "$T/libjq1.orig" "$f"
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	[[ "$output" == *"package libjq1 "*"differs from the lock"* ]]
	[[ "$output" == *"$(jq -r '.inputs.layers[0].debs[] | select(.package == "libjq1") | .sha256' m.lock.json)"* ]]
	# nothing of the bad file was kept; the good one builds
	[ ! -e "$ENVPIN_STORE/blobs/sha256/$bad" ]
	run envpin build --locked -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "apt: a .deb the mirror no longer serves is named with its snapshot URL" {
	run envpin lock --compress none -f m.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	f=$(deb_file libonig5)
	mv "$f" "$T/onig.deb"
	: >"$BATS_FILE_TMPDIR/mirror/offline"
	run envpin build --locked -f m.json
	rm -f "$BATS_FILE_TMPDIR/mirror/offline"
	mv "$T/onig.deb" "$f"
	[ "$status" -eq 3 ] || { echo "$output"; false; }
	snap=$(jq -r '.inputs.layers[0].debs[] | select(.package == "libonig5") | .snapshot' m.lock.json)
	[[ "$output" == *"package libonig5 "*"no longer serves"*"$snap"* ]]
}

# local_repo DIR: a flat repository signed by a fresh key (as NVIDIA's CUDA
# repository is configured: "deb [signed-by=KEYRING] URI /"), with no
# InRelease but Release + Release.gpg, and Packages.gz only, holding one
# package that depends on one of Debian's; its keyring in $T/keyring.gpg.
local_repo() {
	local r=$1 g="$T/gnupg"
	mkdir -p "$r" "$g" pkg/DEBIAN pkg/usr/share/envpin-hello && chmod 700 "$g"
	printf 'Package: envpin-hello\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\nDepends: jq\nDescription: test\n' >pkg/DEBIAN/control
	echo hello >pkg/usr/share/envpin-hello/greeting
	SOURCE_DATE_EPOCH=1767225600 dpkg-deb --root-owner-group -Zgzip --build pkg "$r/envpin-hello_1.0-1_all.deb" >/dev/null
	local sz sha
	sz=$(stat -c %s "$r/envpin-hello_1.0-1_all.deb")
	sha=$(sha256sum "$r/envpin-hello_1.0-1_all.deb" | cut -d' ' -f1)
	printf 'Package: envpin-hello\nVersion: 1.0-1\nArchitecture: all\nDepends: jq\nFilename: ./envpin-hello_1.0-1_all.deb\nSize: %s\nSHA256: %s\n\n' "$sz" "$sha" | gzip -9n >"$r/Packages.gz"
	printf 'Origin: envpin-test\nLabel: envpin-test\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n %s %s Packages.gz\n' \
		"$(sha256sum "$r/Packages.gz" | cut -d' ' -f1)" "$(stat -c %s "$r/Packages.gz")" >"$r/Release"
	GNUPGHOME=$g gpg --batch --quiet --passphrase '' --quick-gen-key 'envpin test <t@example.org>' ed25519 sign never 2>/dev/null
	GNUPGHOME=$g gpg --batch --quiet --yes --armor --detach-sign -o "$r/Release.gpg" "$r/Release"
	GNUPGHOME=$g gpg --batch --quiet --export >"$T/keyring.gpg"
}

@test "apt: a flat third-party repository (Release.gpg, Packages.gz) with its own keyring; a bad signature is refused" {
	local r=$BATS_FILE_TMPDIR/mirror/local/$BATS_TEST_NUMBER addr
	addr=$(cat "$BATS_FILE_TMPDIR/addr")
	local_repo "$r"
	mkdir -p ctx/etc/apt/sources.list.d ctx/usr/share/keyrings
	cp "$T/keyring.gpg" ctx/usr/share/keyrings/envpin-test.gpg
	echo "deb [signed-by=/usr/share/keyrings/envpin-test.gpg] http://$addr/local/$BATS_TEST_NUMBER/ /" >ctx/etc/apt/sources.list.d/test.list
	jq '.layers = [ { "copy": [ { "src": "ctx/", "dest": "/" } ] }, { "apt": [ "envpin-hello" ] } ]' m.json >m3.json
	run envpin build --compress none -f m3.json
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	d=${lines[-1]}
	run jq -r '.inputs.layers[1].debs[] | "\(.package) \(.url) \(.snapshot)"' m3.lock.json
	[[ "$output" == *"envpin-hello http://$addr/local/$BATS_TEST_NUMBER/envpin-hello_1.0-1_all.deb null"* ]]
	[[ "$output" == *"jq http://$addr/debian/pool/main/j/jq/"*"https://snapshot.debian.org/"* ]]
	layer=$(envpin inspect "$d" --json | jq -r '.layers[-1].digest')
	tar -tf "$ENVPIN_STORE/blobs/sha256/${layer#sha256:}" | grep -qx 'usr/share/envpin-hello/greeting'

	# a Release whose text was changed: refused, nothing resolved
	sed -i 's/^Origin: envpin-test/Origin: envpin-evil/' "$r/Release"
	rm m3.lock.json
	run envpin lock --compress none -f m3.json
	[ "$status" -eq 1 ]
	[[ "$output" == *"/local/$BATS_TEST_NUMBER/Release: the signature does not verify with the image's keyrings"* ]]
}
