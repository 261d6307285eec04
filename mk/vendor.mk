# make test-vendor-long: the default image (debian base) through envpin vendor
# and an offline rebuild in `unshare -n` (tests/long/vendor-default.sh; several
# minutes, network for the build and the vendor step, root for unshare -n).
.PHONY: test-vendor-long
test-vendor-long: $(BUILD)/envpin image-inputs
	ENVPIN=$(abspath $(BUILD)/envpin) ./tests/long/vendor-default.sh
