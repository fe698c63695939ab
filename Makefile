# AOP - plain GNU Makefile.
#   make run    install missing build dependencies, build build/aop, serve on 127.0.0.1:3000
#   make run-cluster  PostgreSQL + Redis in ./var/cluster and three instances (3001-3003)
#   make test   install what the tests need, build with ASan+UBSan, run unit and API tests
#               (API tests on SQLite and on PostgreSQL + Redis) and, beside them, the
#               console's browser tests (tests/console/, headless Chromium)
#   make screenshot   the console's screenshot for the README (docs/console.png)
#   make tsan   build with ThreadSanitizer, run the unit tests and the engine's API tests
#   make fuzz   build the libFuzzer targets (clang), run each FUZZ_SECONDS from its seeds
#   make bench  build optimised and measure (results in docs/benchmarks.md)
#   make install   build/aop, aop.1, contrib/aop.service and the docs under PREFIX (DESTDIR)
#   make test-container   build the Dockerfile's image with podman and run it (not in make test)
# CI (.ci/run) runs make test beside make tsan then make fuzz (15 s a target).

VERSION := 0.1.0
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

# CC, CFLAGS, CPPFLAGS and LDFLAGS from the command line or the environment
# are honoured: they come after the project's own, so they can add to or
# override them (make CFLAGS='-O3 -march=native' LDFLAGS=-Wl,-z,now).
CC ?= cc
CFLAGS ?=
CPPFLAGS ?=
LDFLAGS ?=
WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
        -Wno-format-nonliteral -Wvla -Wpointer-arith

# Include paths and libraries come from pkg-config, asked once, when first needed
# (after `scripts/install-deps.sh` has put pkg-config and the .pc files in place).
PKGS := libmicrohttpd jansson libjwt libcurl sqlite3 libpq hiredis libcrypto zlib libxcrypt
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)
AOP_CPPFLAGS = -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) -DAOP_VERSION='"$(VERSION)"' \
               -DAOP_COMMIT='"$(COMMIT)"' $(CPPFLAGS)
LIBS = $(LDFLAGS) $(PKG_LIBS) -lm -pthread
# Every object also writes its header dependencies (build/.../x.d), read back below.
DEPFLAGS := -MMD -MP

BASE_CFLAGS := -std=c17 $(WARN) -pthread -fno-strict-aliasing
REL_CFLAGS = $(BASE_CFLAGS) -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong $(CFLAGS)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TEST_CFLAGS = $(BASE_CFLAGS) -O1 -g -Werror $(SAN) $(CFLAGS)
# ThreadSanitizer cannot be combined with ASan: a build of its own.
TSAN_CFLAGS = $(BASE_CFLAGS) -O1 -g -Werror -fsanitize=thread -fno-omit-frame-pointer $(CFLAGS)

# Files built into the binary at build time: docs/openapi.json (GET /openapi.json)
# becomes a C array (scripts/embed.sh) compiled with the rest, and so do the
# console's files (GET /console/..., src/api/console.c): its pages, scripts
# and styles, and the vendored libraries in console/vendor/ (their MANIFEST
# and licences stay out).
GEN_SRC := build/gen/openapi_json.c build/gen/console_files.c
CONSOLE_FILES := $(sort $(wildcard console/*.html console/*.js console/*.css console/*.svg \
                   console/vendor/*.mjs console/vendor/*.css))

LIB_SRC := $(shell find src -name '*.c' ! -name main.c | sort) $(GEN_SRC)
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))

REL_OBJ := $(LIB_SRC:%.c=build/rel/%.o)
TEST_OBJ := $(LIB_SRC:%.c=build/test/%.o)
TSAN_OBJ := $(LIB_SRC:%.c=build/tsan/%.o) build/tsan/tests/tsan/options.o

PYTHON := /usr/bin/python3

# Where `make install` puts things; DESTDIR stages the whole tree elsewhere.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/aop

.PHONY: all run run-cluster test unit api console-test screenshot tsan tsan-unit tsan-api bench fuzz ci-builds clean \
        install uninstall man lint test-container
all: build/aop build/aop.1

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(AOP_CPPFLAGS) $(REL_CFLAGS) $(DEPFLAGS) -c $< -o $@

build/test/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(AOP_CPPFLAGS) $(TEST_CFLAGS) $(DEPFLAGS) -c $< -o $@

build/tsan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(AOP_CPPFLAGS) $(TSAN_CFLAGS) $(DEPFLAGS) -c $< -o $@

# TSan's built-in settings name the suppressions file by its absolute path.
build/tsan/tests/tsan/options.o: AOP_CPPFLAGS += -DTSAN_SUPPRESSIONS='"$(CURDIR)/tests/tsan/suppressions.txt"'

# docs/openapi.json as a C array (scripts/embed.sh), compiled into every build.
build/gen/openapi_json.c: docs/openapi.json scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh aop_openapi_json $< >$@.tmp && mv $@.tmp $@

# The folders too, so that a file added or removed rebuilds the table.
build/gen/console_files.c: $(CONSOLE_FILES) console console/vendor scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh --files aop_console_files console $(CONSOLE_FILES) >$@.tmp && mv $@.tmp $@

build/aop: $(REL_OBJ) build/rel/src/main.o
	$(CC) $(REL_CFLAGS) $^ -o $@ $(LIBS)

build/test/aop: $(TEST_OBJ) build/test/src/main.o
	$(CC) $(TEST_CFLAGS) $^ -o $@ $(LIBS)

build/test/unit: $(TEST_OBJ) $(UNIT_SRC) tests/unit/unit.h
	$(CC) $(AOP_CPPFLAGS) -Itests/unit $(TEST_CFLAGS) $(UNIT_SRC) $(TEST_OBJ) -o $@ $(LIBS)

build/tsan/aop: $(TSAN_OBJ) build/tsan/src/main.o
	$(CC) $(TSAN_CFLAGS) $^ -o $@ $(LIBS)

build/tsan/unit: $(TSAN_OBJ) $(UNIT_SRC) tests/unit/unit.h
	$(CC) $(AOP_CPPFLAGS) -Itests/unit $(TSAN_CFLAGS) $(UNIT_SRC) $(TSAN_OBJ) -o $@ $(LIBS)

# The man page, from the same tables as `aop --help` (the commands in
# src/main.c, the variables in src/core/config.c).
build/aop.1: build/aop
	./build/aop help --man >$@.tmp && mv $@.tmp $@

man: build/aop.1

# make install [PREFIX=/usr/local] [DESTDIR=/staging]: the binary, its man page,
# the systemd unit (its ExecStart pointed at BINDIR) and the operator docs.
install: build/aop build/aop.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 build/aop $(DESTDIR)$(BINDIR)/aop
	install -m 0644 build/aop.1 $(DESTDIR)$(MANDIR)/man1/aop.1
	sed 's|/usr/local/bin/aop|$(BINDIR)/aop|g' contrib/aop.service >$(DESTDIR)$(UNITDIR)/aop.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/aop.service
	install -m 0644 docs/install.md docs/configuration.md docs/operations.md docs/api.md \
	  docs/console.md docs/openapi.json $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/aop $(DESTDIR)$(MANDIR)/man1/aop.1 $(DESTDIR)$(UNITDIR)/aop.service
	rm -rf $(DESTDIR)$(DOCDIR)

run:
	@scripts/install-deps.sh build
	$(MAKE) --no-print-directory build/aop
	@mkdir -p var
	./build/aop serve

# Three instances on ports 3001-3003 sharing PostgreSQL and Redis, all kept
# in ./var/cluster (scripts/cluster.sh).
run-cluster:
	@scripts/install-deps.sh cluster
	$(MAKE) --no-print-directory build/aop
	scripts/cluster.sh

# One test or a few:
#   make unit T='store_ jwt_'     unit tests whose suite or name starts with a prefix
#                                 (build/test/unit --list names them)
#   make api K=refresh            API tests matching a pytest -k expression
#   make api API_TESTS=tests/api/test_auth.py::test_register_ignores_role   (node ids)
# The API tests run on SQLite unless AOP_TEST_BACKEND=pg (with AOP_TEST_PG_URL and
# AOP_TEST_REDIS_URL; `K=refresh scripts/test.sh pg` starts both and runs them).
T ?=
K ?=
API_TESTS ?= tests/api

unit: build/test/unit
	ASAN_OPTIONS=detect_leaks=1 ./build/test/unit $(T)

# -rs lists every skipped test with its reason.
api: build/test/aop
	AOP_BIN=$(CURDIR)/build/test/aop $(PYTHON) -m pytest -q -rs -p no:cacheprovider \
	  $(if $(K),-k '$(K)') $(API_TESTS)

# The web console in headless Chromium (tests/console/): they load
# tests/api/conftest.py as a plugin for its server fixtures and the OpenAPI
# check of every response. K works as for `make api`.
console-test: build/test/aop
	AOP_BIN=$(CURDIR)/build/test/aop PYTHONPATH=$(CURDIR)/tests/api $(PYTHON) -m pytest -q -rs \
	  -p conftest -p no:cacheprovider $(if $(K),-k '$(K)') tests/console

# The README's picture of the console, taken by the browser test of the
# execution timeline.
screenshot:
	@scripts/install-deps.sh test
	$(MAKE) --no-print-directory build/test/aop
	AOP_SCREENSHOT=$(CURDIR)/docs/console.png $(MAKE) --no-print-directory console-test K=timeline

# Unit tests, then the API tests on SQLite and on PostgreSQL + Redis (servers
# of their own, started and stopped by scripts/test.sh), the browser tests
# beside them.
test:
	@scripts/install-deps.sh test
	$(MAKE) --no-print-directory build/test/aop build/test/unit
	scripts/test.sh

# The checks that need no build of the server: docs/openapi.json under
# @redocly/cli's recommended rules, contrib/aop.service under systemd-analyze
# verify (the first part of scripts/test.sh).
lint:
	@scripts/install-deps.sh lint
	scripts/test.sh lint

# Builds the image (Dockerfile) with podman and runs it: register, execute,
# stop, restart on the same volume, check that the data is still there.
# Minutes long, so not part of `make test`.
test-container:
	@scripts/install-deps.sh container
	scripts/test-container.sh

# ThreadSanitizer: the unit tests, then the API tests that drive the
# engine's threads (its loops, the inserter, the maintenance thread and, on
# PostgreSQL, the event listener), the scheduler's thread, webhook calls on
# the HTTP threads, shutdown and the console's page made once on first use by
# whichever HTTP thread comes first, against build/tsan/aop, on
# SQLite and on PostgreSQL + Redis (scripts/test.sh tsan). A report fails the
# run; tests/tsan/suppressions.txt lists the known ones and why.
#   make tsan-unit T=engine_     make tsan-api K=cancel     (one part, no servers)
TSAN_API_TESTS ?= $(sort $(wildcard tests/api/test_engine_*.py)) tests/api/test_executions.py \
                  tests/api/test_cluster.py tests/api/test_shutdown.py tests/api/test_budgets.py \
                  tests/api/test_credentials.py tests/api/test_approvals.py tests/api/test_console.py \
                  tests/api/test_schedules.py tests/api/test_webhooks.py \
                  $(sort $(wildcard tests/api/test_events*.py))

tsan:
	@scripts/install-deps.sh tsan
	$(MAKE) --no-print-directory build/tsan/aop build/tsan/unit
	scripts/test.sh tsan

tsan-unit: build/tsan/unit
	./build/tsan/unit $(T)

tsan-api: build/tsan/aop
	AOP_BIN=$(CURDIR)/build/tsan/aop $(PYTHON) -m pytest -q -rs -p no:cacheprovider \
	  $(if $(K),-k '$(K)') $(TSAN_API_TESTS)

bench:
	@scripts/install-deps.sh bench
	$(MAKE) --no-print-directory build/aop
	bench/run.sh

# libFuzzer targets (clang), one for each tests/fuzz/*.c: the library is
# compiled once with the fuzzing flags (build/fuzz/obj/) and each target links
# it with its own file. tests/fuzz/run.sh runs every target FUZZ_SECONDS from
# its seeds in tests/fuzz/corpus/<target>/ plus what earlier runs found
# (build/fuzz/corpus/<target>/); a crash, leak or sanitizer report fails.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/*.c))
FUZZ_CPPFLAGS = -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) -DAOP_VERSION='"fuzz"' -DAOP_COMMIT='"fuzz"'
FUZZ_CFLAGS := -std=c17 $(WARN) -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(DEPFLAGS) -c $< -o $@

build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ $(LIBS)

fuzz:
	@scripts/install-deps.sh fuzz
	$(MAKE) --no-print-directory $(FUZZ_TARGETS)
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# Every build CI runs (.ci/run), so that one `make -j` keeps all cores busy.
ci-builds: build/test/aop build/test/unit build/tsan/aop build/tsan/unit $(FUZZ_TARGETS)

clean:
	rm -rf build

# Header dependencies written by -MMD.
-include $(shell find build -name '*.d' 2>/dev/null)
