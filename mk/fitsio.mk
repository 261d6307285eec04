# mk/fitsio.mk - the FITS reader (runtime/fitsinfer/fitsimg.c) and two small
# programs built on it: envpin-fitsdescribe (--describe JSON, pixel dumps for
# tests) and envpin-skygen (the deterministic synthetic sky).  They run inside
# images, so they link only cfitsio and libm, never libenvpin.
# For other fragments: FITSIMG_OBJ, CFITSIO_CFLAGS, CFITSIO_LIBS, FITS_BIN.
CFITSIO_CFLAGS := $(shell pkg-config --cflags cfitsio 2>/dev/null)
CFITSIO_LIBS := $(shell pkg-config --libs cfitsio 2>/dev/null || echo -lcfitsio)
FITS_BIN := $(BUILD)/bin
FITSIMG_OBJ := $(BUILD)/runtime/fitsinfer/fitsimg.o
FITSIO_OBJ := $(FITSIMG_OBJ) $(BUILD)/runtime/fitsinfer/describe.o $(BUILD)/runtime/fitsinfer/skygen.o

$(FITSIO_OBJ): ALL_CFLAGS += $(CFITSIO_CFLAGS)

$(FITS_BIN)/envpin-fitsdescribe: $(BUILD)/runtime/fitsinfer/describe.o $(FITSIMG_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CFITSIO_LIBS) -lm

$(FITS_BIN)/envpin-skygen: $(BUILD)/runtime/fitsinfer/skygen.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CFITSIO_LIBS) -lm

EXTRA_TARGETS += $(FITS_BIN)/envpin-fitsdescribe $(FITS_BIN)/envpin-skygen
TEST_TARGETS += $(FITS_BIN)/envpin-fitsdescribe $(FITS_BIN)/envpin-skygen

-include $(FITSIO_OBJ:.o=.d)
