# envpin - reproducible, verifiable GPU environments.
#
# Knobs (make VAR=value):
#   PREFIX=/usr/local DESTDIR=     install locations
#   CC=cc CFLAGS=-O2 -g            compiler and optimisation flags
#   DEVELOPER=1                    warnings are errors (CI builds this way)
#   STATIC_DEPS=0                  1: link jansson, zstd, zlib, OpenSSL's libcrypto,
#                                  libdeflate and libyaml into envpin (their .a;
#                                  ~1 ms faster start, but a security update of
#                                  those Debian packages then needs a rebuild);
#                                  0 (default): as shared libraries
#   SANITIZE=address,undefined     build with sanitizers (SANITIZE=1 means both);
#                                  objects go to build/san/ so both builds coexist
#   V=1                            show full commands
#   TESTS="unit cli"               which test groups `make test` runs
#   FUZZ_TIME=60 FUZZ="tar cert"   make fuzz: seconds per harness, which harnesses
#
# Targets: all (default), deps, test, fuzz, demo, bench, install, clean, style, help

VERSION := 0.1.0
PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2 -g
PKGS := jansson libcurl libarchive libzstd zlib libcrypto libdeflate
# Loaded with dlopen on first use (lib/curl_dl.h, lib/archive_dl.h), not
# linked: their dependency chains cost every start of `run` ~5 ms.
DLOPEN_PKGS := libcurl libarchive
TEST_PKGS := cmocka
# envpin itself takes the linked libraries from their static archives (the
# -dev packages ship them): a start then maps libc and libm only, with no
# symbol lookups into 7 more objects (~1 ms of every `envpin run`, docs/run.md).
# libcurl and libarchive, loaded later with dlopen, bring their own shared
# copies; envpin exports none of its static symbols, so the two never mix.
STATIC_DEPS ?= 0

ifeq ($(SANITIZE),1)
override SANITIZE := address,undefined
endif
ifneq ($(SANITIZE),)
BUILD := build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD := build/rel
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -Wno-unused-parameter -Wno-missing-field-initializers
ifeq ($(DEVELOPER),1)
WARN += -Werror
endif

# Binaries that go into images must not depend on where the checkout is.
REPRO_FLAGS := -ffile-prefix-map=$(CURDIR)=.
GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(filter-out $(DLOPEN_PKGS),$(PKGS)) 2>/dev/null)
DLOPEN_LIBS := $(shell pkg-config --libs $(DLOPEN_PKGS) 2>/dev/null)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) $(CFLAGS) $(SANFLAGS) $(REPRO_FLAGS) \
	-Ilib $(PKG_CFLAGS) -DEP_VERSION='"$(VERSION)"' -DEP_GIT_REV='"$(GIT_REV)"' -MMD -MP
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS)
LIBS := $(PKG_LIBS) -lpthread -lm
# what envpin links with (LIBS as mk/*.mk complete it; unit tests and
# fuzzers keep LIBS: they also link libcurl, which needs the shared copies)
STATIC_LIBS = -Wl,-Bstatic $(filter-out -lpthread -lm,$(LIBS)) -Wl,-Bdynamic -lpthread -lm
ifeq ($(STATIC_DEPS),1)
ENVPIN_LIBS = $(STATIC_LIBS)
else
ENVPIN_LIBS = $(LIBS)
endif

LIB_SRC := $(sort $(wildcard lib/*.c lib/*/*.c))
CMD_SRC := $(sort $(wildcard cmd/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ := $(CMD_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.DEFAULT_GOAL := all
# Fragments for parts with their own build (runtime programs, ...): each may add
# to EXTRA_TARGETS (built by `make`) and TEST_TARGETS (built before `make test`).
EXTRA_TARGETS :=
TEST_TARGETS :=
-include $(sort $(wildcard mk/*.mk))

.PHONY: all deps test demo demo-small bench install clean style help check-pkgs unit-bins envpin-static
all: envpin $(EXTRA_TARGETS)

check-pkgs:
	@pkg-config --exists $(PKGS) || { echo "missing build dependencies: $$(for p in $(PKGS); do pkg-config --exists $$p || printf '%s ' $$p; done)"; echo "run 'make deps' (as root) to install them"; exit 1; }

$(BUILD)/%.o: %.c | check-pkgs
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libenvpin.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/envpin: $(CMD_OBJ) $(BUILD)/libenvpin.a Makefile
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CMD_OBJ) $(BUILD)/libenvpin.a $(ENVPIN_LIBS)

envpin: $(BUILD)/envpin
	$(Q)cp $< $@

# the STATIC_DEPS=1 link of the same objects, on demand (tests/cli/t432)
$(BUILD)/envpin-static: $(CMD_OBJ) $(BUILD)/libenvpin.a Makefile
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CMD_OBJ) $(BUILD)/libenvpin.a $(STATIC_LIBS)

envpin-static: $(BUILD)/envpin-static
	@echo $(BUILD)/envpin-static

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/libenvpin.a
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libenvpin.a $(LIBS) $(DLOPEN_LIBS) $(shell pkg-config --libs $(TEST_PKGS))

unit-bins: $(UNIT_BIN)

deps:
	./scripts/deps.sh

# test and demo install what they need first (make deps is idempotent and quick).
test:
	./scripts/deps.sh
	$(MAKE) --no-print-directory $(BUILD)/envpin unit-bins $(TEST_TARGETS)
	ENVPIN=$(abspath $(BUILD)/envpin) UNIT_DIR=$(abspath $(BUILD)/tests/unit) SANITIZE=$(SANITIZE) \
		./tests/run.sh $(TESTS)

demo:
	./scripts/deps.sh
	$(MAKE) --no-print-directory envpin
	./scripts/demo.sh

demo-small:
	./scripts/deps.sh
	$(MAKE) --no-print-directory envpin
	./scripts/demo-small.sh

bench: envpin
	./bench/run.sh

install: envpin
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 envpin $(DESTDIR)$(PREFIX)/bin/envpin
	[ ! -f docs/envpin.1 ] || install -m 0644 docs/envpin.1 $(DESTDIR)$(PREFIX)/share/man/man1/

style:
	clang-format -i $(LIB_SRC) $(CMD_SRC) $(wildcard lib/*.h lib/*/*.h cmd/*.h) $(UNIT_SRC)
	git diff --exit-code

clean:
	rm -rf build envpin

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(UNIT_SRC:%.c=$(BUILD)/%.d)
