# libFuzzer harnesses for every parser that reads what a user or an attacker
# hands us (see fuzz/fuzz_*.c and README.md, "Fuzzing"). Included from the
# top Makefile.
#   make fuzz             each harness for FUZZ_TIME seconds (default 600), one
#                         after the other; per harness: executions, cov and ft
#   make fuzz-regress     each harness once over its corpus (fuzz/corpus/NAME):
#                         what tests/e2e/test_fuzz_regress.sh runs
#   make fuzz-build       only build them (in $(FUZZ_BUILD)/)
# FUZZ=name1,name2 limits both to some harnesses.

FUZZ_CC     ?= clang
FUZZ_TIME   ?= 600
FUZZ_BUILD  ?= build-fuzz
# ASan and UBSan in every harness, UB fatal: a finding must stop the run.
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS ?= -O1 -g -fno-omit-frame-pointer
# Clang warns where GCC, the project's compiler, does not: on the printf-like
# wrappers that pass a format through, and on variables that exist only for
# their cleanup attribute. GCC's build keeps both checks.
FUZZ_WARN    = $(WARN) -Wno-format-nonliteral -Wno-unused-variable

FUZZ_BUILDER_NAMES = recipe cluster yaml template cloudconfig manifest sha256sums reader tarball isolayout
FUZZ_AGENT_NAMES   = agent_gpt agent_conf agent_manifest
FUZZ_NAMES         = $(FUZZ_BUILDER_NAMES) $(FUZZ_AGENT_NAMES)
FUZZ_BUILDER_BINS  = $(FUZZ_BUILDER_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_AGENT_BINS    = $(FUZZ_AGENT_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

# The project's own sources, instrumented for coverage (fuzzer-no-link: the
# harness brings libFuzzer's main); the agent without its main, the builder
# without its commands' glue (no parser lives there).
FUZZ_LIB_OBJS   = $(patsubst builder/%.c,$(FUZZ_BUILD)/builder/%.o,$(filter-out builder/cmd_%.c,$(LIB_SRCS)))
FUZZ_AGENT_OBJS = $(patsubst agent/%.c,$(FUZZ_BUILD)/agent/%.o,$(filter-out agent/main.c,$(AGENT_SRCS)))

$(FUZZ_BUILD)/builder/%.o: builder/%.c $(wildcard builder/*.h) VERSION
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_WARN) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/agent/%.o: agent/%.c $(wildcard agent/*.h) builder/layout.h VERSION
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(AGENT_CPPFLAGS) $(FUZZ_WARN) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libdlws.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/libagent.a: $(FUZZ_AGENT_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILDER_BINS): $(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.c fuzz/fuzz.h $(FUZZ_BUILD)/libdlws.a
	$(FUZZ_CC) $(CPPFLAGS) -Ifuzz $(FUZZ_WARN) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer \
		-o $@ $< fuzz/fuzz.c $(FUZZ_BUILD)/libdlws.a $(LIBS)

$(FUZZ_AGENT_BINS): $(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.c fuzz/fuzz.h $(FUZZ_BUILD)/libagent.a
	$(FUZZ_CC) $(AGENT_CPPFLAGS) -Ifuzz $(FUZZ_WARN) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer \
		-o $@ $< fuzz/fuzz.c $(FUZZ_BUILD)/libagent.a $(shell pkg-config --libs $(AGENT_PKGS))

fuzz-build: $(FUZZ_BUILDER_BINS) $(FUZZ_AGENT_BINS)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_TIME=$(FUZZ_TIME) fuzz/run.sh fuzz $(FUZZ_NAMES)

fuzz-regress: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) fuzz/run.sh regress $(FUZZ_NAMES)

.PHONY: fuzz fuzz-build fuzz-regress
