# ckpt: incremental checkpoint/restore of Linux processes.
#   make            build build/ckpt and build/libckpt.a
#   make check      build everything and run every test (unit, SAN=1 unit, integ)
#   make demo       the main job, end to end
#   make bench      the benchmarks (scripts/bench-*)
#   make fuzz       the libFuzzer targets, for FUZZ_SECONDS each
#   make install    PREFIX=/usr/local DESTDIR=
#   make SAN=1      ASan + UBSan build (in build/san)
#   make V=1        show the commands

VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
FUZZ_SECONDS ?= 20

CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := libnl-3.0 libzstd json-c libcrypto
TEST_PKGS := criterion

# Install what is missing before pkg-config is asked for flags.
NODEPS_GOALS := clean format help distclean
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell pkg-config --exists $(PKGS) $(TEST_PKGS) && echo ok),ok)
$(info ckpt: build dependencies missing; running scripts/install-deps)
DEPS_STATUS := $(shell ./scripts/install-deps >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error scripts/install-deps failed; install the packages it names and retry)
endif
ifneq ($(shell pkg-config --exists $(PKGS) $(TEST_PKGS) && echo ok),ok)
$(error pkg-config still cannot find $(PKGS) $(TEST_PKGS))
endif
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

WARNINGS := -Wall -Wextra -Wno-unused-parameter -Wmissing-prototypes -Wshadow \
	-Wformat=2 -Wundef -Wvla -Werror
CPPFLAGS += -D_GNU_SOURCE -DCKPT_VERSION='"$(VERSION)"' -Iinclude -Ilib
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -fno-strict-aliasing -pthread $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
DEPFLAGS = -MMD -MP

LIB_SRCS := $(sort $(shell find lib -name '*.c'))
CMD_SRCS := $(sort $(wildcard cmd/*.c))
CMD_MAIN := cmd/ckpt.c
CMD_LIB_SRCS := $(filter-out $(CMD_MAIN),$(CMD_SRCS))
UNIT_SRCS := $(sort $(shell find test/unit -name '*.c'))
INTEG_SRCS := $(sort $(wildcard test/integ/*.c))
INTEG_HELPERS := $(sort $(wildcard test/integ/helpers/*.c))
PROG_SRCS := $(sort $(wildcard test/progs/*.c))
BENCH_SRCS := $(sort $(wildcard test/bench/*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CMD_OBJS := $(CMD_SRCS:%.c=$(BUILD)/%.o)
CMD_LIB_OBJS := $(CMD_LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
INTEG_HELPER_OBJS := $(INTEG_HELPERS:%.c=$(BUILD)/%.o)
LIBCKPT := $(BUILD)/libckpt.a
CKPT := $(BUILD)/ckpt
UNIT_BIN := $(BUILD)/test/unit-tests
INTEG_BINS := $(INTEG_SRCS:test/integ/%.c=$(BUILD)/test/integ-%)
PROG_BINS := $(PROG_SRCS:test/progs/%.c=$(BUILD)/test/progs/%)
BENCH_BINS := $(BENCH_SRCS:test/bench/%.c=$(BUILD)/bench/%)

.PHONY: all check check-unit check-san check-integ demo bench fuzz install \
	uninstall clean format help tests progs benches
.DEFAULT_GOAL := all

all: $(CKPT) $(LIBCKPT) $(BUILD)/ckpt.pc

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/test/%.o: CFLAGS += $(TEST_CFLAGS)
$(BUILD)/test/%.o: CPPFLAGS += -DCKPT_FIXTURES='"$(CURDIR)/test/fixtures"'

$(LIBCKPT): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(CKPT): $(CMD_OBJS) $(LIBCKPT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CMD_OBJS) $(LIBCKPT) $(PKG_LIBS)

$(BUILD)/ckpt.pc: Makefile
	@mkdir -p $(@D)
	$(Q)printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
		'includedir=$${prefix}/include' '' 'Name: ckpt' \
		'Description: incremental checkpoint/restore of Linux processes' \
		'Version: $(VERSION)' 'Requires.private: $(PKGS)' \
		'Libs: -L$${libdir} -lckpt' 'Cflags: -I$${includedir}' > $@

# Unit tests: one binary, pure code only (no ptrace), also built with SAN=1.
# The cmd/ sources (option parsing) are linked in for the CLI tests.
$(UNIT_BIN): $(UNIT_OBJS) $(CMD_LIB_OBJS) $(LIBCKPT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(CMD_LIB_OBJS) $(LIBCKPT) $(PKG_LIBS) $(TEST_LIBS)

# Integration tests: one binary per file; they drive real processes.
$(BUILD)/test/integ-%: $(BUILD)/test/integ/%.o $(INTEG_HELPER_OBJS) $(LIBCKPT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(INTEG_HELPER_OBJS) $(LIBCKPT) $(PKG_LIBS) $(TEST_LIBS)

# Target programs the integration tests start. Plain C, no libckpt.
$(BUILD)/test/progs/%: test/progs/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) -O1 -g -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -pthread -o $@ $< -lm

# Benchmark drivers (scripts/bench-*): link libckpt, not part of make check.
$(BUILD)/bench/%: test/bench/%.c $(LIBCKPT)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIBCKPT) $(PKG_LIBS) -lm

progs: $(PROG_BINS)
benches: $(BENCH_BINS)
tests: $(UNIT_BIN) $(INTEG_BINS) $(PROG_BINS) $(CKPT)

check-unit: $(UNIT_BIN)
	$(Q)./scripts/run-tests $(if $(filter 1,$(SAN)),unit-san,unit) $(UNIT_BIN)

check-san:
	$(Q)$(MAKE) --no-print-directory SAN=1 check-unit

# The test programs' own dependencies (python3, a JDK) are not pkg-config
# packages: install-deps checks them (it is quiet when all are there).
check-integ: tests
	$(Q)./scripts/install-deps --check 2>/dev/null || ./scripts/install-deps
	$(Q)CKPT_BIN=$(abspath $(CKPT)) CKPT_PROGS=$(abspath $(BUILD)/test/progs) \
		CKPT_SRCDIR=$(CURDIR) ./scripts/run-tests integ $(INTEG_BINS)

check: all tests
	$(Q)$(MAKE) --no-print-directory check-unit
	$(Q)$(MAKE) --no-print-directory check-san
	$(Q)$(MAKE) --no-print-directory check-integ

demo: all progs
	$(Q)CKPT=$(abspath $(CKPT)) PROGS=$(abspath $(BUILD)/test/progs) ./scripts/demo

bench: all progs benches
	$(Q)./scripts/install-deps --bench
	$(Q)for b in scripts/bench-*; do [ -x "$$b" ] && CKPT=$(abspath $(CKPT)) PROGS=$(abspath $(BUILD)/test/progs) BENCH=$(abspath $(BUILD)/bench) "$$b" || exit 1; done

fuzz:
	$(Q)./scripts/install-deps --fuzz
	$(Q)./scripts/fuzz $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/ckpt \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0755 $(CKPT) $(DESTDIR)$(BINDIR)/ckpt
	install -m 0644 $(LIBCKPT) $(DESTDIR)$(LIBDIR)/libckpt.a
	install -m 0644 include/ckpt/*.h $(DESTDIR)$(INCLUDEDIR)/ckpt/
	install -m 0644 $(wildcard man/*.1) $(DESTDIR)$(MANDIR)/man1/
	$(if $(wildcard man/*.5),install -m 0644 $(wildcard man/*.5) $(DESTDIR)$(MANDIR)/man5/)
	install -m 0644 $(BUILD)/ckpt.pc $(DESTDIR)$(PKGCONFIGDIR)/ckpt.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ckpt $(DESTDIR)$(LIBDIR)/libckpt.a $(DESTDIR)$(PKGCONFIGDIR)/ckpt.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/ckpt
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(wildcard man/*.1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(wildcard man/*.5)))

format:
	clang-format -i $(LIB_SRCS) $(CMD_SRCS) $(UNIT_SRCS) $(INTEG_SRCS) $(PROG_SRCS) \
		$(shell find include lib cmd test -name '*.h')

clean:
	rm -rf build

help:
	@sed -n '2,10s/^# //p' Makefile

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
