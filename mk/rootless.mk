# mk/rootless.mk - the long rootless test (docs/rootless.md), not in make test:
#   make test-rootless-long   the default image (mmdebstrap, minutes) checked
#                             and run by a user made for the test, rootless.
#   ROOTLESS_DEFAULT_STORE=DIR  reuse a store that has the default image
.PHONY: test-rootless-long
test-rootless-long: $(BUILD)/envpin
	ENVPIN=$(abspath $(BUILD)/envpin) bats tests/long/rootless-default.bats
