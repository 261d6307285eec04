# The source envpin is built from (lib/source.c, docs/lock.md): every lock
# records its commit and the sha256 of its source tarball, which `envpin
# vendor` ships.  The header is rewritten only when its content changes, so
# a new commit rebuilds lib/source.o and nothing else.
SOURCE_ID_H := $(BUILD)/gen/source-id.h
ALL_CFLAGS += -I$(BUILD)/gen

.PHONY: source-id-force dist
$(SOURCE_ID_H): source-id-force
	@mkdir -p $(dir $@)
	$(Q)./scripts/source-id.sh >$@.tmp && { cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@; }

$(BUILD)/lib/source.o: $(SOURCE_ID_H)

# make dist: build/envpin-COMMIT12.tar, the tarball whose sha256 the locks
# record (git archive of HEAD; uncommitted changes are not in it)
dist:
	@mkdir -p build
	$(Q)c=$$(git rev-parse HEAD) && c12=$$(printf %.12s "$$c") && \
		git archive --format=tar --prefix="envpin-$$c12/" "$$c" >build/envpin-$$c12.tar && \
		echo "build/envpin-$$c12.tar sha256:$$(sha256sum <build/envpin-$$c12.tar | cut -d' ' -f1)"
