# mk/default-image.mk - stages what manifests/default.json copies into the
# image: the runtime programs (release build) and the smoke-test sky.
#   make image-inputs   -> manifests/default/opt/envpin/{bin,share/smoke}
# The staged tree is build output (git-ignored) but deterministic: the
# programs are built with -ffile-prefix-map and skygen is seeded, so two
# checkouts stage the same bytes and the image gets the same digest.
DEFAULT_STAGE := manifests/default/opt/envpin
REL := build/rel

.PHONY: image-inputs
image-inputs:
	$(MAKE) --no-print-directory BUILD=$(REL) SANITIZE= $(REL)/runtime/envpin-selfcheck \
		$(REL)/bin/envpin-fitsinfer $(REL)/bin/envpin-fitsinfer-torch.so $(REL)/bin/envpin-skygen \
		$(REL)/bin/envpin-fitsdescribe
	rm -rf manifests/default/opt
	mkdir -p $(DEFAULT_STAGE)/bin $(DEFAULT_STAGE)/share/smoke
	install -m 0755 $(REL)/runtime/envpin-selfcheck $(REL)/bin/envpin-fitsinfer \
		$(REL)/bin/envpin-fitsinfer-torch.so $(REL)/bin/envpin-skygen \
		$(REL)/bin/envpin-fitsdescribe $(DEFAULT_STAGE)/bin/
	$(REL)/bin/envpin-skygen -o $(DEFAULT_STAGE)/share/smoke/sky >/dev/null
	chmod 0644 $(DEFAULT_STAGE)/share/smoke/*
TEST_TARGETS += image-inputs
