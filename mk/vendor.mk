# make test-vendor-long: the default image (a debian base, and a build stage on
# a second debian base) through envpin vendor
# and an offline rebuild in `unshare -n` (tests/long/vendor-default.sh; several
# minutes, network for the build and the vendor step, root for unshare -n).
.PHONY: test-vendor-long
test-vendor-long: $(BUILD)/envpin
	ENVPIN=$(abspath $(BUILD)/envpin) ./tests/long/vendor-default.sh
