#!/usr/bin/env bats
# A real Slurm (tests/fixtures/slurm.sh: munged, slurmctld, slurmd from
# Debian's slurm-wlm on localhost) with envpin's oci.conf (docs/slurm.md):
# `srun --container=BUNDLE` runs a command in a bundle `envpin bundle` made,
# for root and for a user made here with useradd (runc rootless in envpin's
# user namespace), and the output and exit status come back; the per-node
# certification report is produced through Slurm.

load helpers
bats_require_minimum_version 1.5.0

U820=envpin820

setup_file() {
	export FIX="$TOP/tests/fixtures"
	[ "$(id -u)" = 0 ] || return 0
	command -v slurmd >/dev/null && command -v munged >/dev/null || return 0
	export ST=$(mktemp -d /tmp/ep820.XXXXXX)
	chmod 755 "$ST"
	id "$U820" >/dev/null 2>&1 || useradd -M -d "$ST/home" -s /bin/sh "$U820"
	mkdir -p "$ST/home"
	chown "$U820" "$ST/home"
	"$FIX/busybox-rootfs.sh" "$ST/base.tar"
	printf '{ "envpin": 1, "name": "slurmtest", "source_date_epoch": 1767225600, "base": { "rootfs": "base.tar", "sha256": "%s" }, "config": { "env": { "GREETING": "from-the-image" } } }' \
		"$(sha256sum "$ST/base.tar" | cut -d' ' -f1)" >"$ST/m.json"
	ENVPIN_STORE="$ST/store" "${ENVPIN:-$TOP/envpin}" build -q -f "$ST/m.json" | tail -n1 >"$ST/digest"
	chmod -R a+rX "$ST/store"
	"$FIX/slurm.sh" start "$ST/slurm" >"$ST/slurm.out" 2>&1 || echo fail >"$ST/noslurm"
}
teardown_file() {
	[ -z "${ST:-}" ] && return 0
	"$FIX/slurm.sh" stop "$ST/slurm" || true
	rm -rf "$ST"
	if id "$U820" >/dev/null 2>&1; then
		# what a cancelled step may have left of the test's own user
		for p in $(ps -u "$U820" -o pid= 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		rm -rf "/tmp/envpin-runc-$(id -u "$U820")"
		userdel "$U820"
	fi
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (slurmd, useradd)"
	[ -n "${ST:-}" ] || skip "slurm-wlm or munge is not installed"
	[ ! -e "$ST/noslurm" ] || skip "the Slurm fixture did not start: $(cat "$ST/slurm.out")"
	command -v runc >/dev/null || skip "runc is not installed"
	common_setup
	chmod 755 "$T"
	. "$ST/slurm/env"
	export ENVPIN_STORE="$ST/store"
	D=$(cat "$ST/digest")
	if [ ! -f "$ST/slurm/oci.conf" ]; then
		envpin slurm --install >/dev/null
	fi
	if [ ! -d "$ST/bundle" ]; then
		envpin bundle "$D" "$ST/bundle" --gpus none >/dev/null
	fi
}
teardown() { common_teardown; }

@test "slurm: oci.conf names envpin for RunTimeRun/Query/Kill/Delete; --install writes it beside slurm.conf" {
	run -0 envpin slurm --envpin /opt/envpin/bin/envpin
	[[ "$output" == *'RunTimeRun="/opt/envpin/bin/envpin slurm oci --user %u run %n.%u.%j.%s.%t %b"'* ]]
	[[ "$output" == *'RunTimeQuery="/opt/envpin/bin/envpin slurm oci --user %u state %n.%u.%j.%s.%t"'* ]]
	[[ "$output" == *'RunTimeKill="/opt/envpin/bin/envpin slurm oci --user %u kill %n.%u.%j.%s.%t"'* ]]
	[[ "$output" == *'RunTimeDelete="/opt/envpin/bin/envpin slurm oci --user %u delete %n.%u.%j.%s.%t"'* ]]
	grep -q "^RunTimeRun=\"$(readlink -f "$ENVPIN") slurm oci --user %u run" "$ST/slurm/oci.conf"
	# state of a container runc does not know: "stopped", as JSON Slurm parses
	[ "$(envpin slurm oci --user "$U820" state nosuch.1 | jq -r .status)" = stopped ]
	run envpin slurm --envpin relative/envpin
	[ "$status" -eq 2 ]
	# the bundle: config.json and the flattened rootfs, in the rootless form
	[ -x "$ST/bundle/rootfs/bin/busybox" ]
	[ "$(jq -r .root.path "$ST/bundle/config.json")" = rootfs ]
	[ "$(jq -r '.linux.resources // "none"' "$ST/bundle/config.json")" = none ]
}

@test "slurm: srun --container runs the command in the envpin bundle; output and exit status come back" {
	run timeout 60 srun --container="$ST/bundle" sh -c 'echo "inside: $(id -u) $GREETING"; ls /bin/busybox; exit 3'
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"inside: 0 from-the-image"* ]]
	[[ "$output" == *"/bin/busybox"* ]]
	run timeout 60 srun --container="$ST/bundle" true
	[ "$status" -eq 0 ]
}

@test "slurm: a student's srun --container runs rootless (runc in envpin's user namespace)" {
	run timeout 60 runuser -u "$U820" -- env SLURM_CONF="$SLURM_CONF" HOME="$ST/home" \
		srun --container="$ST/bundle" sh -c 'id -u; cat /proc/self/uid_map; echo "g=$GREETING"; exit 4'
	echo "$output"
	[ "$status" -eq 4 ]
	[ "${lines[0]}" = 0 ]
	echo "$output" | grep -Eq "^ *0 +$(id -u "$U820") +1$"
	[[ "$output" == *"g=from-the-image"* ]]
}

@test "slurm: per-node certification through srun, merged into one report" {
	mkdir "$T/certs"
	# each node checks the image and writes cert-NODE.json (docs/slurm.md)
	run timeout 120 srun -N1 sh -c "ENVPIN_STORE=$ST/store $ENVPIN check $D -o $T/certs/cert-\$SLURMD_NODENAME.json"
	echo "$output"
	node=$(hostname -s)
	[ -f "$T/certs/cert-$node.json" ]
	[ "$(jq -r .image.digest "$T/certs/cert-$node.json")" = "$D" ]
	# more nodes: certificates from GPU machines, one that agrees, one whose fingerprint drifted
	ref="$TOP/tests/data/gpu/h100-cert.json"
	cp "$ref" "$T/certs/cert-gpu1.json"
	cp "$ref" "$T/certs/cert-gpu2.json"
	jq '.fingerprint.sum_snr = (.fingerprint.sum_snr * 1.5)' "$ref" >"$T/certs/cert-gpu3.json"
	run envpin certificates merge --json "$T/certs/cert-gpu1.json" "$T/certs/cert-gpu2.json" "$T/certs/cert-gpu3.json" "$T/certs/cert-$node.json" "lost=$T/certs/cert-none.json"
	echo "$output"
	[ "$status" -eq 1 ]
	r=$output
	[ "$(echo "$r" | jq -r .result)" = fail ]
	[ "$(echo "$r" | jq -r .passed)" = 3 ]
	[ "$(echo "$r" | jq -r .failed)" = 2 ]
	[ "$(echo "$r" | jq -r .reference_node)" = gpu1 ]
	[ "$(echo "$r" | jq -r '.nodes[] | select(.node == "gpu2") | .fingerprint')" = match ]
	[ "$(echo "$r" | jq -r '.nodes[] | select(.node == "gpu3") | .fingerprint')" = differs ]
	[ "$(echo "$r" | jq -r '.nodes[] | select(.node == "gpu3") | .differences[0].name')" = sum_snr ]
	[ "$(echo "$r" | jq -r .fingerprints_agree)" = false ]
	# this node failed, and the report says why (the busybox image has no self-check)
	[ "$(echo "$r" | jq -r ".nodes[] | select(.node == \"$node\") | .result")" = fail ]
	[[ "$(echo "$r" | jq -r ".nodes[] | select(.node == \"$node\") | .reasons | join(\" \")")" == *"envpin-selfcheck"* ]]
	[[ "$(echo "$r" | jq -r '.nodes[] | select(.node == "lost") | .reasons[0]')" == *"missing"* ]]
	[ "$(echo "$r" | jq -r .images_agree)" = false ]
	# the GPU nodes alone agree: pass
	run envpin certificates merge "$T/certs/cert-gpu1.json" "$T/certs/cert-gpu2.json"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"certification: PASS"* ]]
	[[ "$output" == *"fingerprints agree"* ]]
}

@test "slurm: scancel ends a student's container, whose init ignores SIGTERM, and leaves no runc state" {
	# bounded, and without bats' fd 3, so a stuck step cannot hang the suite
	timeout -s KILL 60 runuser -u "$U820" -- env SLURM_CONF="$SLURM_CONF" HOME="$ST/home" \
		srun --container="$ST/bundle" sleep 300 >"$T/srun.out" 2>&1 3>&- &
	local srun=$! job="" n
	# until the container's init runs
	for n in $(seq 100); do
		job=$(squeue -h -u "$U820" -t R -o %i | head -n1)
		[ -z "$job" ] || ! pgrep -u "$U820" -x sleep >/dev/null || break
		sleep 0.2
	done
	[ -n "$job" ]
	pgrep -u "$U820" -x sleep >/dev/null
	scancel "$job"
	# SIGTERM to the container's init, SIGKILL 10 s later (ep_slurm_supervise)
	for n in $(seq 100); do
		pgrep -u "$U820" -x sleep >/dev/null || break
		sleep 0.2
	done
	run pgrep -u "$U820" -x sleep
	[ "$status" -ne 0 ]
	[ -z "$(ls -A "/tmp/envpin-runc-$(id -u "$U820")" 2>/dev/null)" ]
	# srun itself waits for Slurm to finish the step; not our concern here
	kill -9 "$srun" 2>/dev/null || true
	wait "$srun" || true
}
