#!/usr/bin/env bats
# envpin-selfcheck (runtime/selfcheck) on a machine without a GPU: every GPU
# check is skipped with its reason, never passed; --require-gpu fails; a
# missing or broken CUDA library is reported by name; --json is valid JSON.
# The GPU side runs in tests/gpu/run.sh on a machine that has one.

load helpers

setup() {
	common_setup
	: "${SELFCHECK:=$(dirname "$ENVPIN")/runtime/envpin-selfcheck}"
	[ -x "$SELFCHECK" ] || SELFCHECK=$TOP/build/rel/runtime/envpin-selfcheck
	[ -x "$SELFCHECK" ] || { echo "envpin-selfcheck not built: make $SELFCHECK" >&2; return 1; }
	unset ENVPIN_CUDA_LIB_PATH ENVPIN_CUDA_LIB_PATH_ONLY ENVPIN_SELFCHECK_REEXEC
}
teardown() { common_teardown; }

no_gpu() {
	if [ -e /dev/nvidiactl ] || compgen -G '/dev/nvidia[0-9]*' >/dev/null; then
		skip "this machine has NVIDIA device nodes (tests/gpu/run.sh covers it)"
	fi
}

GPU_CHECKS="driver_version device_count memcpy_roundtrip gemm_fp32 gemm_tf32 conv_fp32 conv_fp16 determinism compute_capability nccl_library nccl_allreduce"

@test "selfcheck: --help, --version and usage errors" {
	run "$SELFCHECK" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--expect-gpus N"* ]]
	[[ "$output" == *"--json"* ]]
	run "$SELFCHECK" --version
	[ "$status" -eq 0 ]
	[[ "$output" == "envpin-selfcheck "[0-9]* ]]
	run "$SELFCHECK" --bogus
	[ "$status" -eq 2 ]
	run "$SELFCHECK" --expect-gpus many
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid --expect-gpus 'many'"* ]]
	run "$SELFCHECK" --gemm-size 8
	[ "$status" -eq 2 ]
	run "$SELFCHECK" extra
	[ "$status" -eq 2 ]
}

@test "selfcheck: without a GPU every GPU check is skipped with its reason, exit 0" {
	no_gpu
	run "$SELFCHECK"
	[ "$status" -eq 0 ]
	[[ "$output" == *$'\nresult=pass'* ]]
	for c in device_nodes driver_library libraries $GPU_CHECKS; do
		grep -qx "check.$c.status=skip" <<<"$output" || { echo "check $c not skipped"; false; }
		grep -q "^check.$c.detail=.*no \(GPU\|NVIDIA device nodes\)" <<<"$output" || { echo "check $c: no reason"; false; }
	done
	[ "$(grep -c '\.status=pass$' <<<"$output")" = 0 ]
	grep -qx 'devices=0' <<<"$output"
}

@test "selfcheck: --json is one well-formed object with every check" {
	no_gpu
	run "$SELFCHECK" --json
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
	printf '%s\n' "$output" >out.json
	jq -e 'type == "object" and (.checks | length) == 14 and .result == "pass"
		and (.devices == []) and (.driver_version == null)
		and all(.checks[]; (.name | type) == "string" and .status == "skip" and (.detail | length) > 0)
		and has("runtime_version") and has("cublas_version") and has("cudnn_version")
		and has("nccl_version")' out.json
	for c in $GPU_CHECKS; do
		jq -e --arg c "$c" '[.checks[] | select(.name == $c)] | length == 1' out.json
	done
}

@test "selfcheck: NCCL found by ENVPIN_CUDA_LIB_PATH is loaded and its version reported without a GPU; all-reduce skipped" {
	no_gpu
	# a stand-in libnccl.so.2 with the NCCL symbols the self-check uses
	mkdir nccl
	cat >nccl.c <<-'C'
	int ncclGetVersion(int *v) { *v = 22705; return 0; }
	const char *ncclGetErrorString(int r) { (void)r; return "fake"; }
	int ncclCommInitAll(void **c, int n, const int *d) { (void)c; (void)n; (void)d; return 1; }
	int ncclCommDestroy(void *c) { (void)c; return 0; }
	int ncclGroupStart(void) { return 0; }
	int ncclGroupEnd(void) { return 0; }
	int ncclAllReduce(const void *s, void *r, unsigned long n, int t, int o, void *c, void *st)
	{ (void)s; (void)r; (void)n; (void)t; (void)o; (void)c; (void)st; return 1; }
	C
	cc -shared -fPIC -o nccl/libnccl.so.2 nccl.c
	run env ENVPIN_CUDA_LIB_PATH="$PWD/nccl" ENVPIN_CUDA_LIB_PATH_ONLY=1 "$SELFCHECK"
	[ "$status" -eq 0 ]
	grep -qx 'nccl_version=2.27.5' <<<"$output"
	grep -qx 'check.nccl_library.status=skip' <<<"$output"
	grep -q "^check.nccl_library.detail=no GPU (NCCL 2.27.5 loaded from '$PWD/nccl/libnccl.so.2')" <<<"$output"
	grep -qx 'check.nccl_allreduce.status=skip' <<<"$output"
	# without it: named as missing, still a skip
	mkdir empty
	run env ENVPIN_CUDA_LIB_PATH="$PWD/empty" ENVPIN_CUDA_LIB_PATH_ONLY=1 "$SELFCHECK"
	[ "$status" -eq 0 ]
	grep -qx 'nccl_version=' <<<"$output"
	grep -q '^check.nccl_library.detail=no GPU; libnccl.so.2, libnccl.so: not found' <<<"$output"
}

@test "selfcheck: --require-gpu fails without a GPU and says why" {
	no_gpu
	run "$SELFCHECK" --require-gpu
	[ "$status" -eq 1 ]
	grep -qx 'check.device_count.status=fail' <<<"$output"
	grep -q '^check.device_count.detail=no GPU.*--require-gpu' <<<"$output"
	grep -qx 'result=fail' <<<"$output"
	run "$SELFCHECK" --require-gpu --json
	[ "$status" -eq 1 ]
	jq -e '.result == "fail" and ([.checks[] | select(.status == "fail") | .name] == ["device_count"])' <<<"$output"
}

@test "selfcheck: a missing CUDA library is named, not a loader crash" {
	mkdir empty
	ENVPIN_CUDA_LIB_PATH=$T/empty ENVPIN_CUDA_LIB_PATH_ONLY=1 run "$SELFCHECK" --json
	[ "$status" -eq 0 ] || [ -e /dev/nvidiactl ]
	jq -e '.runtime_version == null and .cudnn_version == null' <<<"$output"
	detail=$(jq -r '.checks[] | select(.name == "libraries") | .detail' <<<"$output")
	[[ "$detail" == *"libcudart.so.13, libcudart.so.12, libcudart.so.11.0, libcudart.so: not found"* ]]
	[[ "$detail" == *"libcublas.so.13"* ]]
	[[ "$detail" == *"libcudnn.so.9, libcudnn.so.8"* ]]
}

@test "selfcheck: a broken library and one without the symbols are named with the cause" {
	mkdir lib
	echo "not a library" >lib/libcudart.so.12
	printf 'int cudnnGetVersion(void) { return 0; }\n' >stub.c
	cc -shared -fPIC -o lib/libcudnn.so.9 stub.c
	ENVPIN_CUDA_LIB_PATH=$T/lib ENVPIN_CUDA_LIB_PATH_ONLY=1 run "$SELFCHECK"
	detail=$(grep '^check.libraries.detail=' <<<"$output")
	[[ "$detail" == *"'$T/lib/libcudart.so.12': "* ]]
	[[ "$detail" == *"'$T/lib/libcudnn.so.9' has no symbol 'cudnnGetErrorString'"* ]]
	grep -qx 'cudnn_version=' <<<"$output"
}

@test "selfcheck: the image's libraries are found and their versions reported" {
	no_gpu
	lib=""
	for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do
		if compgen -G "$d/libcudart.so.*" >/dev/null && compgen -G "$d/libcudnn.so.*" >/dev/null; then lib=$d; break; fi
	done
	[ -n "$lib" ] || skip "no CUDA toolkit with cuDNN under /usr/local/cuda"
	ENVPIN_CUDA_LIB_PATH=$lib ENVPIN_CUDA_LIB_PATH_ONLY=1 run "$SELFCHECK"
	[ "$status" -eq 0 ]
	# found by the search: the program re-executed itself once, output once
	[ "$(grep -c '^result=' <<<"$output")" -eq 1 ]
	grep -q "^check.libraries.cudart=$lib/libcudart.so.[0-9]" <<<"$output"
	grep -q "^check.libraries.cudnn=$lib/libcudnn.so.[0-9]" <<<"$output"
	grep -q '^runtime_version=[0-9][0-9]*\.[0-9]$' <<<"$output"
	grep -q '^cublas_version=[0-9]*\.[0-9]*\.[0-9]*$' <<<"$output"
	grep -q '^cudnn_version=[89]\.[0-9]*\.[0-9]*$' <<<"$output"
	grep -qx 'check.libraries.status=skip' <<<"$output"
	grep -qx 'check.libraries.detail=no GPU (libraries present)' <<<"$output"
}

@test "selfcheck: a report that cannot be written is a failure" {
	no_gpu
	run "$SELFCHECK" --json
	[ "$status" -eq 0 ]
	run sh -c '"$0" --json >/dev/full' "$SELFCHECK"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot write the report"* ]]
}
