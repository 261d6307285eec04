# mk/fitsinfer.mk - envpin-fitsinfer (C, cfitsio) and its libtorch shim
# envpin-fitsinfer-torch.so (C++), both in $(BUILD)/bin; the program dlopens
# the shim from its own directory (or $ENVPIN_FITSINFER_SHIM).
# Knobs:
#   TORCH_PREFIX=/usr     libtorch's prefix: Debian's libtorch-dev by default;
#                         for a PyTorch wheel, $(python -c 'import torch,os;
#                         print(os.path.dirname(torch.__file__))')
#   TORCH_LIBDIR          (default: Debian's multiarch dir, or PREFIX/lib)
#   TORCH_CXXFLAGS        extra flags, e.g. -D_GLIBCXX_USE_CXX11_ABI=0 for
#                         wheels built with the old ABI
#   CXX=g++
# The shim depends only on torch_shim.{cpp,h}, so C changes never rebuild it
# (a libtorch compile takes ~25 s here).
CXX ?= g++
TORCH_PREFIX ?= /usr
ifeq ($(TORCH_PREFIX),/usr)
TORCH_LIBDIR ?= /usr/lib/$(shell $(CC) -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
TORCH_RPATH :=
else
TORCH_LIBDIR ?= $(TORCH_PREFIX)/lib
TORCH_RPATH := -Wl,-rpath,$(TORCH_LIBDIR)
endif
# -isystem /usr/include would break libstdc++'s #include_next.
TORCH_INC := $(if $(filter /usr,$(TORCH_PREFIX)),,-isystem $(TORCH_PREFIX)/include) \
	-isystem $(TORCH_PREFIX)/include/torch/csrc/api/include
# A CUDA build of libtorch registers its CUDA backend from libtorch_cuda.so,
# which nothing references by symbol: keep it linked.
FI_COMMA := ,
TORCH_CUDA_LIBS := $(if $(wildcard $(TORCH_LIBDIR)/libtorch_cuda.so),-Wl$(FI_COMMA)--no-as-needed -ltorch_cuda -lc10_cuda -Wl$(FI_COMMA)--as-needed)
TORCH_LIBS := -L$(TORCH_LIBDIR) $(TORCH_RPATH) $(TORCH_CUDA_LIBS) -ltorch -ltorch_cpu -lc10

FI_DIR := runtime/fitsinfer
FI_BIN_DIR := $(BUILD)/bin
FI_CORE_OBJ := $(addprefix $(BUILD)/$(FI_DIR)/,background.o detect.o classify.o)
FI_MAIN_OBJ := $(BUILD)/$(FI_DIR)/fitsinfer.o
# fitsimg.o comes from mk/fitsio.mk (included after this file, so named here).
FI_READER_OBJ := $(BUILD)/$(FI_DIR)/fitsimg.o
FI_SHIM := $(FI_BIN_DIR)/envpin-fitsinfer-torch.so
FI_SHIM_OBJ := $(BUILD)/$(FI_DIR)/torch_shim.o
FITSINFER := $(FI_BIN_DIR)/envpin-fitsinfer

# Messages that quote paths may be cut short, on purpose.
$(FI_MAIN_OBJ): ALL_CFLAGS += $(shell pkg-config --cflags cfitsio 2>/dev/null) -Wno-format-truncation

$(FITSINFER): $(FI_MAIN_OBJ) $(FI_CORE_OBJ) $(FI_READER_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(shell pkg-config --libs cfitsio 2>/dev/null || echo -lcfitsio) -ldl -lm

# No sanitizer flags: the shim runs inside a sanitized program without them.
$(FI_SHIM_OBJ): $(FI_DIR)/torch_shim.cpp $(FI_DIR)/torch_shim.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) -std=c++17 -O2 -g -fPIC -Wall -Wextra $(REPRO_FLAGS) $(if $(filter 1,$(DEVELOPER)),-Werror) \
		$(TORCH_INC) $(TORCH_CXXFLAGS) -c -o $@ $<

$(FI_SHIM): $(FI_SHIM_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) -shared -o $@ $< $(TORCH_LIBS)

$(BUILD)/tests/unit/test_fitsinfer.o: ALL_CFLAGS += -I$(FI_DIR)
$(BUILD)/tests/unit/test_fitsinfer: $(BUILD)/tests/unit/test_fitsinfer.o $(FI_CORE_OBJ)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(TEST_PKGS)) -lm

EXTRA_TARGETS += $(FITSINFER) $(FI_SHIM)
TEST_TARGETS += $(FITSINFER) $(FI_SHIM)

-include $(FI_MAIN_OBJ:.o=.d) $(FI_CORE_OBJ:.o=.d)
