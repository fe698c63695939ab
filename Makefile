# AOP - plain GNU Makefile.
#   make run    install missing build dependencies, build build/aop, serve on 127.0.0.1:3000
#   make run-cluster  PostgreSQL + Redis in ./var/cluster and three instances (3001-3003)
#   make test   install what the tests need, build with ASan+UBSan, run unit and API tests
#               (API tests on SQLite and on PostgreSQL + Redis)
#   make tsan   build with ThreadSanitizer, run the unit tests and the engine's API tests
#   make fuzz   build the libFuzzer targets (clang), run each FUZZ_SECONDS from its seeds
#   make bench  build optimised and measure (results in docs/benchmarks.md)
# CI (.ci/run) runs make test beside make tsan then make fuzz (15 s a target).

VERSION := 0.1.0
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

CC ?= cc
WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
        -Wno-format-nonliteral -Wvla -Wpointer-arith
CPPFLAGS := -D_GNU_SOURCE -Isrc -I/usr/include/postgresql -DAOP_VERSION='"$(VERSION)"' -DAOP_COMMIT='"$(COMMIT)"'
BASE_CFLAGS := -std=c17 $(WARN) -pthread -fno-strict-aliasing
LIBS := -lmicrohttpd -ljansson -ljwt -lcurl -lsqlite3 -lpq -lhiredis -lcrypto -lz -lcrypt -lm -pthread

REL_CFLAGS := $(BASE_CFLAGS) -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TEST_CFLAGS := $(BASE_CFLAGS) -O1 -g -Werror $(SAN)
# ThreadSanitizer cannot be combined with ASan: a build of its own.
TSAN_CFLAGS := $(BASE_CFLAGS) -O1 -g -Werror -fsanitize=thread -fno-omit-frame-pointer

LIB_SRC := $(shell find src -name '*.c' ! -name main.c | sort)
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
HDRS := $(shell find src -name '*.h')

REL_OBJ := $(LIB_SRC:%.c=build/rel/%.o)
TEST_OBJ := $(LIB_SRC:%.c=build/test/%.o)
TSAN_OBJ := $(LIB_SRC:%.c=build/tsan/%.o) build/tsan/tests/tsan/options.o

PYTHON := /usr/bin/python3

.PHONY: all run run-cluster test unit api tsan tsan-unit tsan-api bench fuzz ci-builds clean
all: build/aop

build/rel/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(REL_CFLAGS) -c $< -o $@

build/test/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CFLAGS) -c $< -o $@

build/tsan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TSAN_CFLAGS) -c $< -o $@

# TSan's built-in settings name the suppressions file by its absolute path.
build/tsan/tests/tsan/options.o: CPPFLAGS += -DTSAN_SUPPRESSIONS='"$(CURDIR)/tests/tsan/suppressions.txt"'

build/aop: $(REL_OBJ) build/rel/src/main.o
	$(CC) $(REL_CFLAGS) $^ -o $@ $(LIBS)

build/test/aop: $(TEST_OBJ) build/test/src/main.o
	$(CC) $(TEST_CFLAGS) $^ -o $@ $(LIBS)

build/test/unit: $(TEST_OBJ) $(UNIT_SRC) tests/unit/unit.h
	$(CC) $(CPPFLAGS) -Itests/unit $(TEST_CFLAGS) $(UNIT_SRC) $(TEST_OBJ) -o $@ $(LIBS)

build/tsan/aop: $(TSAN_OBJ) build/tsan/src/main.o
	$(CC) $(TSAN_CFLAGS) $^ -o $@ $(LIBS)

build/tsan/unit: $(TSAN_OBJ) $(UNIT_SRC) tests/unit/unit.h
	$(CC) $(CPPFLAGS) -Itests/unit $(TSAN_CFLAGS) $(UNIT_SRC) $(TSAN_OBJ) -o $@ $(LIBS)

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

# Unit tests, then the API tests on SQLite and on PostgreSQL + Redis (servers
# of their own, started and stopped by scripts/test.sh).
test:
	@scripts/install-deps.sh test
	$(MAKE) --no-print-directory build/test/aop build/test/unit
	scripts/test.sh

# ThreadSanitizer: the unit tests, then the API tests that drive the
# engine's threads (its loops, the inserter, the maintenance thread and, on
# PostgreSQL, the event listener) and shutdown, against build/tsan/aop, on
# SQLite and on PostgreSQL + Redis (scripts/test.sh tsan). A report fails the
# run; tests/tsan/suppressions.txt lists the known ones and why.
#   make tsan-unit T=engine_     make tsan-api K=cancel     (one part, no servers)
TSAN_API_TESTS ?= $(sort $(wildcard tests/api/test_engine_*.py)) tests/api/test_executions.py \
                  tests/api/test_cluster.py tests/api/test_shutdown.py tests/api/test_budgets.py

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
FUZZ_CPPFLAGS := -D_GNU_SOURCE -Isrc -I/usr/include/postgresql -DAOP_VERSION='"fuzz"' -DAOP_COMMIT='"fuzz"'
FUZZ_CFLAGS := -std=c17 $(WARN) -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c $< -o $@

build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ $(LIBS)

fuzz:
	@scripts/install-deps.sh fuzz
	$(MAKE) --no-print-directory $(FUZZ_TARGETS)
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# Every build CI runs (.ci/run), so that one `make -j` keeps all cores busy.
ci-builds: build/test/aop build/test/unit build/tsan/aop build/tsan/unit $(FUZZ_TARGETS)

clean:
	rm -rf build
