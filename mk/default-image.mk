# mk/default-image.mk - the offline default image (manifests/default.json).
# Its programs and the smoke-test sky are compiled and generated INSIDE the
# image's build stage by runtime/Makefile, against the image's own libtorch
# and cfitsio; nothing built on this host goes into an image, so the digest
# does not depend on the host's compiler (design.md section 10).
#   make default-image   build it (mmdebstrap twice on a cold store), print the digest
#   make runtime-here    build the same programs on this host with runtime/Makefile
#                        (BUILD=build/runtime-here), for tests that run them outside images
.PHONY: default-image runtime-here
default-image: envpin
	./envpin build -f manifests/default.json | tail -n 1

runtime-here:
	$(MAKE) --no-print-directory -C runtime BUILD=$(CURDIR)/build/runtime-here \
		DESTDIR=$(CURDIR)/build/runtime-here/out install >/dev/null
