# envpin-selfcheck (runtime/selfcheck, docs/selfcheck.md): a stand-alone
# program that runs inside images.  It links only libc and libm and loads
# CUDA with dlopen, so it builds without the CUDA toolkit and without
# envpin's own dependencies (its objects skip the check-pkgs gate).
SC_SRC := $(sort $(wildcard runtime/selfcheck/*.c))
SC_OBJ := $(SC_SRC:%.c=$(BUILD)/%.o)
# everything but main() links into the unit test (tests/unit/test_selfcheck.c)
SC_TESTED_OBJ := $(filter-out $(BUILD)/runtime/selfcheck/main.o,$(SC_OBJ))
SELFCHECK := $(BUILD)/runtime/envpin-selfcheck

EXTRA_TARGETS += $(SELFCHECK)
TEST_TARGETS += $(SELFCHECK)

$(BUILD)/runtime/selfcheck/%.o: runtime/selfcheck/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -DSC_VERSION='"$(VERSION)"' -c -o $@ $<

$(SELFCHECK): $(SC_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(SC_OBJ) -ldl -lm

$(BUILD)/tests/unit/test_selfcheck: $(BUILD)/tests/unit/test_selfcheck.o $(SC_TESTED_OBJ)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ -ldl -lm $(shell pkg-config --libs $(TEST_PKGS))

$(BUILD)/tests/unit/test_selfcheck.o: ALL_CFLAGS += -Iruntime/selfcheck

-include $(SC_OBJ:.o=.d)
