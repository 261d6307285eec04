# mk/reference.mk - the PyTorch-CUDA 2.9 reference image (docs/reference-images.md).
#   make reference   builds manifests/pytorch-cuda-2.9.json (Debian base by
#                    mmdebstrap + torch 2.9 CUDA wheels, JupyterLab and the
#                    scientific stack from PyPI, ~3.6 GB of downloads on the
#                    first run; envpin's programs compiled inside a build
#                    stage against the wheel's libtorch), verifies it, prints
#                    the digest, the size and the time.  Wheels stay in the
#                    store (blobs, kept by gc), so a rerun downloads nothing.
#   REFERENCE_FLAGS=--locked   build exactly what manifests/pytorch-cuda-2.9.lock.json pins
REFERENCE_MANIFEST ?= manifests/pytorch-cuda-2.9.json
REFERENCE_FLAGS ?=

.PHONY: reference
reference: envpin
	@set -e; start=$$(date +%s); \
	digest=$$(ENVPIN_PROGRESS=$${ENVPIN_PROGRESS:-1} ./envpin build -f $(REFERENCE_MANIFEST) $(REFERENCE_FLAGS) | tail -n 1); \
	./envpin verify $$digest; \
	size=$$(./envpin inspect $$digest --json | jq '[.layers[].size] | add'); \
	echo "reference $(REFERENCE_MANIFEST)"; \
	echo "  digest  $$digest"; \
	echo "  size    $$size bytes compressed ($$((size / 1048576)) MiB)"; \
	echo "  time    $$(( $$(date +%s) - start )) s"
