# mk/host-independence.mk - long test, not part of `make test` (~20 minutes,
# root, the Debian mirror): the default image's digest does not depend on the
# compiler or the flags the host built envpin and its programs with.
#   make test-host-independence
.PHONY: test-host-independence
test-host-independence:
	$(MAKE) --no-print-directory envpin
	TOP=$(CURDIR) ENVPIN=$(CURDIR)/envpin bats tests/long/t560-host-independence.bats
