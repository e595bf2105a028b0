# dlws-install, the offline installer that runs inside the live system
# (agent/). Included from the top Makefile:  -include agent/agent.mk
#
# It runs in a busybox initramfs with no shared libraries, so it is linked
# statically, with libarchive (the image's decompression: bz2, gz, xz, zst)
# and libcrypto (sha256: the manifest's files, the OS image as it streams;
# agent/sha256.c is its only user). Debian 12 ships the .a files in
# libarchive-dev, libssl-dev, libbz2-dev, liblzma-dev, zlib1g-dev,
# libxml2-dev, nettle-dev, and, needed for -larchive's static link line,
# libzstd-dev, liblz4-dev and libacl1-dev.
#   make out/agent/dlws-install
#   make agent-check               tests/agent/test-agent.sh (builds the agent first)
#   make agent-asan-check          the same tests on an ASan/UBSan build

AGENT_CC       ?= $(CC)
AGENT_CFLAGS   ?= -O2 -g
AGENT_WARN     ?= -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2
AGENT_VERSION  ?= $(shell cat VERSION 2>/dev/null || echo unknown)
AGENT_PKGS      = libarchive libcrypto
AGENT_CPPFLAGS  = -Ibuilder -Iagent -DDLWS_VERSION='"$(AGENT_VERSION)"' \
                  -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED \
                  $(shell pkg-config --static --cflags $(AGENT_PKGS))
AGENT_LIBS      = $(shell pkg-config --static --libs $(AGENT_PKGS))
AGENT_SRCS     := $(wildcard agent/*.c)
AGENT_OBJS     := $(AGENT_SRCS:agent/%.c=out/agent/obj/%.o)

out/agent/dlws-install: $(AGENT_OBJS)
	$(AGENT_CC) -static $(AGENT_CFLAGS) $(LDFLAGS) -o $@ $^ $(AGENT_LIBS)

out/agent/obj/%.o: agent/%.c $(wildcard agent/*.h) builder/layout.h VERSION
	@mkdir -p $(dir $@)
	$(AGENT_CC) $(AGENT_CPPFLAGS) $(AGENT_WARN) $(AGENT_CFLAGS) -c -o $@ $<

# The same sources under ASan/UBSan, linked dynamically (the sanitizers do
# not link statically); the tests that need the static binary say SKIP.
AGENT_ASAN_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
AGENT_ASAN_OBJS  := $(AGENT_SRCS:agent/%.c=out/agent/asan/obj/%.o)

out/agent/asan/dlws-install: $(AGENT_ASAN_OBJS)
	$(AGENT_CC) $(AGENT_ASAN_CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(AGENT_PKGS))

out/agent/asan/obj/%.o: agent/%.c $(wildcard agent/*.h) builder/layout.h VERSION
	@mkdir -p $(dir $@)
	$(AGENT_CC) $(AGENT_CPPFLAGS) $(AGENT_WARN) $(AGENT_ASAN_CFLAGS) -c -o $@ $<

# The live system's payload step (dlws-payload.service on Flatcar, /init on
# the default base): a POSIX sh script the builder puts in every payload.
out/agent/dlws-payload: agent/dlws-payload.sh
	@mkdir -p $(dir $@)
	sh -n $<
	install -m 0755 $< $@

agent: out/agent/dlws-install out/agent/dlws-payload

agent-check: out/agent/dlws-install
	tests/agent/test-agent.sh

agent-asan-check: out/agent/asan/dlws-install
	DLWS_INSTALL=$(CURDIR)/out/agent/asan/dlws-install DLWS_INSTALL_DYNAMIC=1 tests/agent/test-agent.sh

.PHONY: agent agent-check agent-asan-check
