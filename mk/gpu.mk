# mk/gpu.mk - lib/gpu/cdi.c reads CDI specs written as YAML (nvidia-ctk's default)
# with libyaml.
YAML_CFLAGS := $(shell pkg-config --cflags yaml-0.1 2>/dev/null)
ALL_CFLAGS += $(YAML_CFLAGS)
LIBS += $(shell pkg-config --libs yaml-0.1 2>/dev/null || echo -lyaml)
