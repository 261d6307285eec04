# make crash [CRASH_TRIALS=N] [CRASH_SEED=S]: the long crash-safety run of
# tests/cli/t700-crash.bats: N SIGKILLs at random points for each of build,
# pull, push, gc and verify --rebuild, and N+1 rounds of two builds and a gc
# on one store at once.  `make test` runs the same file with N=2.  Each test
# prints the seed of its random kill delays (CRASH_SEED replays it).
CRASH_TRIALS ?= 10

.PHONY: crash
crash:
	./scripts/deps.sh
	$(MAKE) --no-print-directory $(BUILD)/envpin
	ENVPIN=$(abspath $(BUILD)/envpin) SANITIZE=$(SANITIZE) CRASH_TRIALS=$(CRASH_TRIALS) \
		CRASH_SEED=$(CRASH_SEED) ./tests/run.sh cli t700
