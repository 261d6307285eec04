#!/bin/bash
# make demo: the main job end to end on the offline default manifest
# (manifests/default.json: Debian 12 from the mirror by mmdebstrap, libtorch,
# cfitsio, source-extractor, astropy, and envpin's runtime programs compiled
# inside a build stage against those libraries):
#   build (pin every input in the lock) -> verify -> rebuild elsewhere and
#   compare -> run with the workspace mounted -> check (certificate).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
ENVPIN=$top/envpin
work=$top/build/demo
export ENVPIN_STORE=${ENVPIN_STORE:-$work/store}
export ENVPIN_PROGRESS=${ENVPIN_PROGRESS:-0}
M=manifests/default.json

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
mkdir -p "$work/workspace"

step "the lab: envpin build -f $M   (mmdebstrap from the mirror twice: the build stage with the compilers, then the image; ~5 minutes the first time)"
"$ENVPIN" build -f "$M" | tee "$work/build.txt"
D=$(tail -n 1 "$work/build.txt")

step "the lock pins every input: $(jq '.inputs.base.packages | length' manifests/default.lock.json) Debian packages by version, the build stage's compile by its output"
jq '{compressor, base: {suite: .inputs.base.suite, packages: (.inputs.base.packages[0:4] + ["..."])}, stages: ((.inputs.stages // .stages // {}) | keys), layers: .inputs.layers, image: {digest: .image.digest, config_digest: .image.config_digest}}' manifests/default.lock.json

step "the reviewer: envpin verify $D"
"$ENVPIN" verify "$D"

step "the reviewer: envpin verify --rebuild (a fresh build in a private store, compared)"
"$ENVPIN" verify "$D" --rebuild -f "$M" -q

step "the student: envpin run, with the workspace mounted at /workspace"
(cd "$work/workspace" && "$ENVPIN" run "$D" -- sh -c \
	'echo "in the container: $(. /etc/os-release; echo $PRETTY_NAME), workdir $(pwd)";
	 cp /opt/envpin/share/smoke/sky.fits my-image.fits &&
	 envpin-fitsinfer --describe my-image.fits > described.json && echo "wrote /workspace/described.json"')
echo "on the host: $(cat "$work/workspace/described.json")"

step "envpin check: the CUDA/cuDNN self-check and the FITS smoke test, inside the image"
rc=0
"$ENVPIN" check "$D" -o "$work/certificate.json" || rc=$?
echo "(check exit status $rc; GPU checks are 'skip' on a machine without a GPU)"

step "done"
cat <<EOT
image digest:  $D
lock:          $M -> manifests/default.lock.json
certificate:   $work/certificate.json
store:         $ENVPIN_STORE

the lab:       envpin build -f $M --locked
the reviewer:  envpin verify $D --rebuild -f $M
               envpin verify $D --certify $work/certificate.json
the student:   envpin run --certify $D
EOT
exit $rc
