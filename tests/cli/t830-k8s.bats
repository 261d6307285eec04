#!/usr/bin/env bats
# envpin k8s (docs/k8s.md): Jobs and Pods pinned by the image's digest,
# validated offline against the Kubernetes OpenAPI schema with PyPI's
# kubernetes-validate (--strict: unknown fields are errors); the GPU limit
# on the work and on the init containers that run the image's self-check;
# a tag-only reference is refused.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export FIX="$TOP/tests/fixtures"
	export KT=$(mktemp -d /tmp/ep830.XXXXXX)
	"$FIX/busybox-rootfs.sh" "$KT/base.tar"
	printf '{ "envpin": 1, "name": "astro", "source_date_epoch": 1767225600, "base": { "rootfs": "base.tar", "sha256": "%s" } }' \
		"$(sha256sum "$KT/base.tar" | cut -d' ' -f1)" >"$KT/m.json"
	ENVPIN_STORE="$KT/store" "${ENVPIN:-$TOP/envpin}" build -q -f "$KT/m.json" | tail -n1 >"$KT/digest"
}
teardown_file() { [ -z "${KT:-}" ] || rm -rf "$KT"; }

# kubernetes-validate: in the PyPI tools venv (scripts/pytools.sh), else on PATH
KV=${ENVPIN_PYTOOLS:-/opt/envpin-pytools}/bin/kubernetes-validate
[ -x "$KV" ] || KV=$(command -v kubernetes-validate || true)

setup() {
	[ -n "$KV" ] || skip "kubernetes-validate (PyPI, scripts/deps.d/pypi.req) is not installed"
	common_setup
	D=$(cat "$KT/digest")
	REF="registry.example.org:5000/lab/astro@$D"
}
teardown() { common_teardown; }

validate() { "$KV" --strict --no-warn "$@"; }

@test "k8s job: pinned by the image's digest, GPU limit on work and init checks, schema-valid" {
	# the digest is the image's own (what envpin push sends and prints)
	[ "$(ENVPIN_STORE="$KT/store" envpin inspect "$D" --json | jq -r .digest)" = "$D" ]
	run envpin k8s "$REF" --gpus 2 --runtime-class nvidia --pvc astro-data -e EPOCHS=3 -- python3 train.py --fast
	[ "$status" -eq 0 ]
	echo "$output" >job.yaml
	run validate job.yaml
	echo "$output"
	[ "$status" -eq 0 ]
	envpin k8s "$REF" --gpus 2 --runtime-class nvidia --pvc astro-data -e EPOCHS=3 --json -- python3 train.py --fast >job.json
	[ "$(jq -r .kind job.json)" = Job ]
	[ "$(jq -r .spec.template.spec.containers[0].image job.json)" = "registry.example.org:5000/lab/astro@$D" ]
	[ "$(jq -r '.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]' job.json)" = 2 ]
	[ "$(jq -r '.spec.template.spec.containers[0].args | join(" ")' job.json)" = "python3 train.py --fast" ]
	[ "$(jq -r .spec.template.spec.runtimeClassName job.json)" = nvidia ]
	[ "$(jq -r .spec.template.spec.volumes[0].persistentVolumeClaim.claimName job.json)" = astro-data ]
	[ "$(jq -r .metadata.annotations[\"envpin.dev/image-digest\"] job.json)" = "$D" ]
	# every init container: the same image, the same GPU limit; the self-check requires the GPUs
	[ "$(jq '.spec.template.spec.initContainers | length' job.json)" = 2 ]
	[ "$(jq -r '[.spec.template.spec.initContainers[].image] | unique | .[]' job.json)" = "registry.example.org:5000/lab/astro@$D" ]
	[ "$(jq -r '[.spec.template.spec.initContainers[].resources.limits["nvidia.com/gpu"]] | unique | .[]' job.json)" = 2 ]
	[ "$(jq -r '.spec.template.spec.initContainers[0].command[0]' job.json)" = /opt/envpin/bin/envpin-selfcheck ]
	[ "$(jq -r '.spec.template.spec.initContainers[0].args | join(" ")' job.json)" = "--json --require-gpu --expect-gpus 2" ]
	# YAML and JSON are the same manifest
	[ "$(/usr/bin/python3 -c 'import json,sys,yaml; print(json.load(open("job.json")) == yaml.safe_load(open("job.yaml")))')" = True ]
}

@test "k8s pod with a hostPath workspace, and without GPUs, is schema-valid too" {
	envpin k8s "$REF" --pod --host-path /srv/astro --name my-lab -- sh -c 'ls /workspace' >pod.yaml
	run validate pod.yaml
	echo "$output"
	[ "$status" -eq 0 ]
	envpin k8s "$REF" --pod --host-path /srv/astro --name my-lab --json -- true >pod.json
	[ "$(jq -r .kind pod.json)" = Pod ]
	[ "$(jq -r .metadata.name pod.json)" = my-lab ]
	[ "$(jq -r .spec.volumes[0].hostPath.path pod.json)" = /srv/astro ]
	[ "$(jq -r '.spec.containers[0].resources.limits // "none"' pod.json)" = none ]
	[ "$(jq -r '.spec.initContainers[0].args | join(" ")' pod.json)" = --json ]
}

@test "k8s: a tag-only reference is refused (exit 2); a tag beside the digest is dropped" {
	run envpin k8s registry.example.org/lab/astro:v1 --gpus 1 -- true
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"has no digest"* ]]
	run envpin k8s registry.example.org/lab/astro --gpus 1
	[ "$status" -eq 2 ]
	run -0 envpin k8s "registry.example.org/lab/astro:v1@$D" --json
	[ "$(echo "$output" | jq -r .spec.template.spec.containers[0].image)" = "registry.example.org/lab/astro@$D" ]
	run envpin k8s "$REF" --pvc a --host-path /x
	[ "$status" -eq 2 ]
	run envpin k8s "$REF" --name Bad_Name
	[ "$status" -eq 2 ]
}

@test "k8s: the validator rejects a broken manifest (the check can fail)" {
	envpin k8s "$REF" --gpus 1 >job.yaml
	sed 's/backoffLimit: 0/backoffLimit: "zero"/' job.yaml >bad1.yaml
	run validate bad1.yaml
	[ "$status" -ne 0 ]
	sed 's/restartPolicy:/restartPolicyX:/' job.yaml >bad2.yaml
	run validate bad2.yaml
	[ "$status" -ne 0 ]
}

@test "examples/astro-lab: make train-job writes a schema-valid Job pinned by the pushed digest" {
	cp -r "$TOP/examples/astro-lab" lab
	# as after `make image push`: the digest the push kept
	echo "$D" >lab/.digest
	echo "$D" >lab/.pushed
	touch -d '+1 min' lab/.digest
	touch -d '+2 min' lab/.pushed
	run make -C lab --no-print-directory train-job ENVPIN="$ENVPIN" GPUS=4
	echo "$output"
	[ "$status" -eq 0 ]
	run validate lab/train-job.yaml
	[ "$status" -eq 0 ]
	grep -q "image: \"registry.example.org/astro-lab/env@$D\"" lab/train-job.yaml
	grep -q 'nvidia.com/gpu: "4"' lab/train-job.yaml
	grep -q -- '- "--require-gpu"' lab/train-job.yaml
	grep -q 'make dev-env-gpu\|dev-env-gpu:' lab/Makefile
}
