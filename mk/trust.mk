# make sbom-debian: the SBOM of a real Debian image (mmdebstrap minbase from
# the mirror, ~100 s) checked by pyspdxtools and the CycloneDX 1.5 schema
# (tests/cli/t345-sbom-debian.bats; `make test` skips it).
.PHONY: sbom-debian
sbom-debian:
	./scripts/deps.sh
	$(MAKE) --no-print-directory $(BUILD)/envpin
	ENVPIN=$(abspath $(BUILD)/envpin) SANITIZE=$(SANITIZE) ENVPIN_TEST_SBOM_DEBIAN=1 \
		./tests/run.sh cli t345
