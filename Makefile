# dlws-mkimage — see README.md.
#   make            the tool, the install agent and everything the shipped recipes refer to
#   make deps       install the Debian packages the build and tests need (root)
#   make check      deps + build + the whole test suite (unit, e2e, boots)
#   make asan       the test suite again under ASan/UBSan
#   make bench      benchmarks with ratios against a reference

CC       ?= cc
PKGS      = yaml-0.1 libcrypto libarchive zlib libisofs-1 json-c libsquashfs1 libguestfs
CFLAGS   ?= -O2 -g
WARN      = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2
CPPFLAGS += -Ibuilder -DDLWS_VERSION='"$(VERSION)"' -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
VERSION  := $(shell cat VERSION)
LIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -lcrypto -larchive -lz -lisofs -ljson-c -lsquashfs -lguestfs)
BUILD    ?= build

SRCS     := $(wildcard builder/*.c)
LIB_SRCS := $(filter-out builder/main.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:builder/%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

all: dlws-mkimage base vendor agent

dlws-mkimage: $(BUILD)/dlws-mkimage
	cp $< $@

$(BUILD)/dlws-mkimage: $(BUILD)/main.o $(BUILD)/libdlws.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libdlws.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: builder/%.c $(wildcard builder/*.h) VERSION | $(BUILD)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -MMD -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(BUILD)/libdlws.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libdlws.a $(LIBS)

$(BUILD):
	mkdir -p $@

unit: $(UNIT_BINS)

# The built-in default base: a minimal live system from Debian's kernel and
# busybox-static that follows the payload contract (see base/README.md).
base: out/base/vmlinuz out/base/initrd.img
out/base/vmlinuz out/base/initrd.img &: base/mkbase.sh base/init
	base/mkbase.sh out/base

# Real binaries for the default recipes, taken from Debian packages into
# vendor/ (never installed system-wide).
vendor: vendor/bin/kubectl vendor/bin/etcd
vendor/bin/kubectl vendor/bin/etcd &: scripts/vendor-binaries.sh
	scripts/vendor-binaries.sh vendor

deps:
	scripts/install-deps.sh

ASAN_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# The suite runs twice in one summary: as built, and under ASan/UBSan.
check: deps
	$(MAKE) all unit
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_CFLAGS)" build-asan/dlws-mkimage unit-asan out/agent/asan/dlws-install
	ASAN_BUILD=build-asan tests/run.sh $(BUILD)

# Only the ASan/UBSan pass.
asan:
	$(MAKE) all
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_CFLAGS)" build-asan/dlws-mkimage unit-asan
	DLWS_MKIMAGE=$(CURDIR)/build-asan/dlws-mkimage tests/run.sh build-asan

unit-asan: $(UNIT_SRCS:tests/unit/%.c=build-asan/tests/%)

clean:
	rm -rf build build-asan dlws-mkimage

.PHONY: all base vendor deps check asan unit unit-asan clean
include agent/agent.mk
-include $(wildcard $(BUILD)/*.d)
