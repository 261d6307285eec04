# mk/fuzz.mk - libFuzzer harnesses for every parser of untrusted input
# (tests/fuzz/, docs/fuzzing.md).
#
#   make fuzz FUZZ_TIME=SECONDS [FUZZ="tar cert"]
#       builds build/fuzz/fuzz_NAME with clang -fsanitize=fuzzer,address,undefined
#       (the library compiled again under build/fuzz/, the normal build is
#       untouched) and runs each harness for FUZZ_TIME seconds, one after the
#       other, one worker, growing build/fuzz/corpus/NAME from
#       tests/fuzz/corpus/NAME.  Crash inputs are moved to
#       tests/fuzz/crashes/NAME/; the target fails if there were any.
#   make fuzz-build                  only the build
#   make test                        replays every corpus and crash input
#       through $(BUILD)/tests/unit/test_fuzz_replay (no clang needed).
# Knobs: FUZZ_CC=clang, FUZZ_FLAGS= (extra libFuzzer flags, e.g. -max_len=65536),
# FUZZ_NICE=nice -n 19.
FUZZ_HARNESSES := $(shell sed -n 's/^H(\(.*\))$$/\1/p' tests/fuzz/harnesses.def)
FUZZ ?= $(FUZZ_HARNESSES)
FUZZ_TIME ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS ?=
FUZZ_NICE ?= nice -n 19
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g $(FUZZ_SAN) \
	-fsanitize=fuzzer-no-link -Ilib -Iruntime/fitsinfer -Itests/fuzz $(PKG_CFLAGS) $(CFITSIO_CFLAGS) \
	-DEP_VERSION='"$(VERSION)"' -DEP_GIT_REV='"$(GIT_REV)"' -MMD -MP
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o) $(FUZZ_DIR)/runtime/fitsinfer/fitsimg.o \
	$(FUZZ_DIR)/tests/fuzz/fuzz_util.o
FUZZ_BINS := $(FUZZ_HARNESSES:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LIBS) $(CFITSIO_LIBS)

.PHONY: fuzz fuzz-build
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_HARNESSES:%=$(FUZZ_DIR)/tests/fuzz/fuzz_%.o)
fuzz-build: $(FUZZ_BINS)

# Each harness: its own corpus dir first (libFuzzer adds new inputs to the
# first dir only), the seeds after; artifacts under build/fuzz/artifacts/NAME/.
fuzz: fuzz-build
	@rc=0; for h in $(FUZZ); do \
		[ -x $(FUZZ_DIR)/fuzz_$$h ] || { echo "no harness '$$h' (have: $(FUZZ_HARNESSES))"; exit 2; }; \
		mkdir -p $(FUZZ_DIR)/corpus/$$h $(FUZZ_DIR)/artifacts/$$h tests/fuzz/crashes/$$h; \
		echo "== fuzz_$$h for $(FUZZ_TIME) s"; \
		TMPDIR=$$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo $${TMPDIR:-/tmp} ) \
		$(FUZZ_NICE) $(FUZZ_DIR)/fuzz_$$h -max_total_time=$(FUZZ_TIME) -timeout=30 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_DIR)/artifacts/$$h/ $(FUZZ_FLAGS) \
			$(FUZZ_DIR)/corpus/$$h tests/fuzz/corpus/$$h 2>&1 | tee $(FUZZ_DIR)/fuzz_$$h.log | \
			grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|==[0-9]+==ERROR|SUMMARY|stat::|Done )' ; \
		for a in $(FUZZ_DIR)/artifacts/$$h/*; do \
			[ -f "$$a" ] || continue; \
			mv "$$a" tests/fuzz/crashes/$$h/ && echo "crash input: tests/fuzz/crashes/$$h/$$(basename $$a)"; rc=1; \
		done; \
	done; exit $$rc

# The replay program: every harness compiled with the normal compiler
# (FUZZ_NAME renames its entry point), linked into one TAP program that
# tests/run.sh runs with the unit tests.
FUZZ_REPLAY := $(BUILD)/tests/unit/test_fuzz_replay
FUZZ_REPLAY_OBJ := $(FUZZ_HARNESSES:%=$(BUILD)/tests/fuzz/replay_%.o) $(BUILD)/tests/fuzz/replay.o \
	$(BUILD)/tests/fuzz/fuzz_util.o

$(BUILD)/tests/fuzz/replay_%.o: tests/fuzz/fuzz_%.c | check-pkgs
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(CFITSIO_CFLAGS) -Iruntime/fitsinfer -Itests/fuzz -DFUZZ_NAME=$* -c -o $@ $<

$(BUILD)/tests/fuzz/replay.o: ALL_CFLAGS += -DFUZZ_TOP='"$(CURDIR)"'
$(BUILD)/tests/fuzz/replay.o $(BUILD)/tests/fuzz/fuzz_util.o: ALL_CFLAGS += -Itests/fuzz

$(FUZZ_REPLAY): $(FUZZ_REPLAY_OBJ) $(FITSIMG_OBJ) $(BUILD)/libenvpin.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(FUZZ_REPLAY_OBJ) $(FITSIMG_OBJ) $(BUILD)/libenvpin.a $(LIBS) \
		$(CFITSIO_LIBS)

TEST_TARGETS += $(FUZZ_REPLAY)

-include $(FUZZ_REPLAY_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BINS:$(FUZZ_DIR)/fuzz_%=$(FUZZ_DIR)/tests/fuzz/fuzz_%.d)
