# dlws-mkimage — see README.md.
#   make            the tool, the install agent and everything the shipped recipes refer to
#   make deps       install the Debian packages the build and tests need (root)
#   make check      deps + build + the whole test suite (unit, e2e, boots)
#   make asan       the test suite again under ASan/UBSan
#   make bench      benchmarks with ratios against a reference
#   make install    PREFIX (default /usr/local) and DESTDIR as usual; make uninstall

CC       ?= cc
# libguestfs (disk.c) is opened when a disk is worked on: only its header here.
PKGS      = yaml-0.1 libcrypto libarchive zlib libzstd liblzma libisofs-1 json-c libsquashfs1
CFLAGS   ?= -O2 -g
WARN      = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2
CPPFLAGS += -Ibuilder -DDLWS_VERSION='"$(VERSION)"' -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
VERSION  := $(shell cat VERSION)
LIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -lcrypto -larchive -lz -lzstd -llzma -lisofs -ljson-c -lsquashfs)
BUILD    ?= build
# ASan intercepts the XDR calls libguestfs makes (through libtirpc) and
# looks the real ones up when the program starts: an ASan build links
# libguestfs, so that its libraries are there by then.
ifneq ($(findstring -fsanitize=address,$(CFLAGS)),)
LIBS     += -Wl,--no-as-needed $(shell pkg-config --libs libguestfs 2>/dev/null || echo -lguestfs) -Wl,--as-needed
endif

SRCS     := $(wildcard builder/*.c)
LIB_SRCS := $(filter-out builder/main.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:builder/%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

all: dlws-mkimage base vendor agent

# Renamed into place: cp onto a copy that is running fails (ETXTBSY).
dlws-mkimage: $(BUILD)/dlws-mkimage
	cp $< $@.tmp && mv -f $@.tmp $@

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

# Ratios against the hand pipeline, rebuilds, cp and 1,000 nodes (bench/run.sh;
# BENCH_SCALE=small for a quick run). Fetches its payload's .debs once.
.PHONY: bench
bench: dlws-mkimage agent
	bench/run.sh

clean:
	rm -rf build build-asan dlws-mkimage

# The installed tool finds the agent and payload script from its own path,
# PREFIX/bin/../lib/dlws-mkimage (agent_file() in builder/build.c): keep
# pkglibdir and bindir siblings under PREFIX. /usr/lib/<package>, not
# libexec: these files are copied into payloads, never run by the tool, and
# Debian's long-standing place for a package's private, architecture-
# dependent files is /usr/lib/<package>.
PREFIX     ?= /usr/local
DESTDIR    ?=
bindir      = $(PREFIX)/bin
pkglibdir   = $(PREFIX)/lib/dlws-mkimage
pkgdatadir  = $(PREFIX)/share/dlws-mkimage
man1dir     = $(PREFIX)/share/man/man1
bashcompdir = $(PREFIX)/share/bash-completion/completions
VENDOR_BINS = vendor/bin/kubectl vendor/bin/etcd vendor/bin/etcdctl

# The examples (recipes/, overlays/, supplied/README) are installed so that
# a copy builds anywhere: the default recipes' base and vendor paths are
# rewritten to the installed ones; keys/ and out/ stay relative, beside the
# copy's recipes/, and recipes/flatcar still reads ../../supplied/.
EXAMPLE_SED = -e '1i\# Installed example: its base and vendor paths point into $(PREFIX).' \
	      -e '1i\# Copy the examples directory and build there: keys/ and out/ land beside recipes/.' \
	      -e 's|\.\./out/base/|$(pkgdatadir)/base/|g' -e 's|\.\./vendor/|$(pkglibdir)/vendor/|g'

install: dlws-mkimage out/agent/dlws-install out/agent/dlws-payload out/base/vmlinuz out/base/initrd.img vendor/bin/kubectl vendor/bin/etcd
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(pkglibdir)/vendor/bin $(DESTDIR)$(pkgdatadir)/base \
		$(DESTDIR)$(pkgdatadir)/examples/recipes $(DESTDIR)$(pkgdatadir)/examples/supplied \
		$(DESTDIR)$(man1dir) $(DESTDIR)$(bashcompdir)
	install -m 0755 dlws-mkimage $(DESTDIR)$(bindir)/dlws-mkimage
	install -m 0755 out/agent/dlws-install out/agent/dlws-payload $(DESTDIR)$(pkglibdir)/
	install -m 0755 $(VENDOR_BINS) $(DESTDIR)$(pkglibdir)/vendor/bin/
	install -m 0644 vendor/SHA256SUMS vendor/PACKAGES $(DESTDIR)$(pkglibdir)/vendor/
	install -m 0644 out/base/vmlinuz out/base/initrd.img $(DESTDIR)$(pkgdatadir)/base/
	cp -R --preserve=mode recipes/templates recipes/flatcar $(DESTDIR)$(pkgdatadir)/examples/recipes/
	cp -R --preserve=mode overlays $(DESTDIR)$(pkgdatadir)/examples/
	install -m 0644 recipes/cluster.yaml $(DESTDIR)$(pkgdatadir)/examples/recipes/
	for r in recipes/*.recipe; do \
		sed $(EXAMPLE_SED) $$r >$(DESTDIR)$(pkgdatadir)/examples/$$r.tmp && \
		chmod 0644 $(DESTDIR)$(pkgdatadir)/examples/$$r.tmp && \
		mv $(DESTDIR)$(pkgdatadir)/examples/$$r.tmp $(DESTDIR)$(pkgdatadir)/examples/$$r || exit 1; \
	done
	install -m 0644 supplied/README $(DESTDIR)$(pkgdatadir)/examples/supplied/
	install -m 0644 man/dlws-mkimage.1 $(DESTDIR)$(man1dir)/dlws-mkimage.1
	install -m 0644 completions/dlws-mkimage.bash $(DESTDIR)$(bashcompdir)/dlws-mkimage

uninstall:
	rm -f $(DESTDIR)$(bindir)/dlws-mkimage $(DESTDIR)$(man1dir)/dlws-mkimage.1 $(DESTDIR)$(bashcompdir)/dlws-mkimage
	rm -rf $(DESTDIR)$(pkglibdir) $(DESTDIR)$(pkgdatadir)

.PHONY: all base vendor deps check asan unit unit-asan clean install uninstall
include agent/agent.mk
include fuzz/fuzz.mk
-include $(wildcard $(BUILD)/*.d)
