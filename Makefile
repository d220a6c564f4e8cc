# pdp_ext: PGXS build, plus the two commands a newcomer needs.
#
#   make demo    install what is missing, build, start a throwaway cluster, run the tour
#   make test    the same set-up, then every suite (unit, pg_regress, isolation, pgTAP, TAP),
#                and the SQL suites again under UBSan/ASan and under valgrind
#   make bench   the same set-up, then the benchmarks (never part of CI)
#
# Everything below the "PGXS" line is an ordinary extension build.

EXTENSION    = pdp_ext
EXTVERSION   = 0.4
# The release before this one: its update script to EXTVERSION is assembled
# from versions/$(PREVVERSION)--$(EXTVERSION)/*.sql, one part per topic.
PREVVERSION  = 0.3
MODULE_big   = pdp_ext

# Engine code (no PostgreSQL headers) lives in src/core; glue in src/.
CORE_SRCS    = $(wildcard src/core/*.c)
GLUE_SRCS    = $(wildcard src/*.c)
OBJS         = $(GLUE_SRCS:.c=.o) $(CORE_SRCS:.c=.o)

# The install script is assembled from one SQL file per capability, in order.
SQL_PARTS    = $(sort $(wildcard src/sql/*.sql))
UPDATE_PARTS = $(sort $(wildcard versions/$(PREVVERSION)--$(EXTVERSION)/*.sql))
DATA_built   = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--$(PREVVERSION)--$(EXTVERSION).sql
# Released versions' scripts and the update scripts between them, so that
# ALTER EXTENSION ... UPDATE works (and is tested) from every release.
DATA         = $(wildcard versions/$(EXTENSION)--*.sql)

REGRESS      = init roles registry keys pseudonym rules consent owner audit retention rights erasure register forget anonymise profile purge_range parallel citus shred spelling review_attacks
REGRESS_OPTS = --inputdir=. --use-existing
ISOLATION    = registry_concurrency consent_withdrawal consent_import_race consent_snapshot audit_concurrency audit_keyed_chain audit_sealing purge_concurrency erasure_race key_reload shred_concurrency
ISOLATION_OPTS = --use-existing

PG_CPPFLAGS  = -I$(srcdir)/src -I$(srcdir)/src/core
SHLIB_LINK   = -lcrypto
EXTRA_CLEAN  = test/unit/*.t test/unit/*.asan

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# On a fresh machine the server headers are not there yet: the set-up targets
# below install them, so only include PGXS once it exists.
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all:
	@echo "PostgreSQL server headers are missing: run 'make demo' or 'make test', which install them" >&2
	@exit 1
endif

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	@{ echo "-- pdp_ext $(EXTVERSION): generated from src/sql/*.sql; edit those, not this file"; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION pdp_ext" to load this file. \quit'; \
	   for f in $(SQL_PARTS); do echo; echo "-- ===== $$f ====="; cat $$f; done; } > $@

$(EXTENSION)--$(PREVVERSION)--$(EXTVERSION).sql: $(UPDATE_PARTS)
	@{ echo "-- pdp_ext $(PREVVERSION) -> $(EXTVERSION): generated from versions/$(PREVVERSION)--$(EXTVERSION)/*.sql; edit those"; \
	   printf '%s\n' '\echo Use "ALTER EXTENSION pdp_ext UPDATE TO '"'"'$(EXTVERSION)'"'"'" to load this file. \quit'; \
	   for f in $(UPDATE_PARTS); do echo; echo "-- ===== $$f ====="; cat $$f; done; } > $@

# Plain-C unit tests of src/core, run as TAP programs.
UNIT_TESTS = $(patsubst %.c,%.t,$(wildcard test/unit/test_*.c))
test/unit/%.t: test/unit/%.c $(CORE_SRCS) test/unit/tap.h
	$(CC) -std=c11 -O1 -g -Wall -Wextra -Werror -Isrc/core -o $@ $< $(CORE_SRCS) -lcrypto

unit: $(UNIT_TESTS)
	prove $(UNIT_TESTS)

# The same unit tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
SANITIZED_TESTS = $(patsubst %.c,%.asan,$(wildcard test/unit/test_*.c))
test/unit/%.asan: test/unit/%.c $(CORE_SRCS) test/unit/tap.h
	clang -std=c11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	      -Wall -Wextra -Werror -Isrc/core -o $@ $< $(CORE_SRCS) -lcrypto

sanitize: $(SANITIZED_TESTS)
	ASAN_OPTIONS=detect_leaks=1 prove -e '' $(SANITIZED_TESTS)

# The pg_regress, isolation and pgTAP suites against an instrumented server:
# a pdp_ext.so built with UBSan and ASan, and every server process under
# valgrind memcheck (tools/run-instrumented.sh says what each one covers).
sanitize-server:
	@tools/run-instrumented.sh sanitize

valgrind-server:
	@tools/run-instrumented.sh valgrind

# libFuzzer targets for every plain-C parser and codec (FUZZ_SECONDS each, default 10).
fuzz:
	test/fuzz/run.sh

# LMS profiles (doc/profiles.md): data files pdp.apply_profile reads from
# SHAREDIR/extension/pdp_ext_profiles/.
PROFILES = $(wildcard profiles/*.json)
install: install-profiles
install-profiles:
	$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/pdp_ext_profiles'
	$(INSTALL_DATA) $(PROFILES) '$(DESTDIR)$(datadir)/extension/pdp_ext_profiles/'
uninstall: uninstall-profiles
uninstall-profiles:
	rm -f $(addprefix '$(DESTDIR)$(datadir)/extension/pdp_ext_profiles'/, $(notdir $(PROFILES)))

.PHONY: deps demo install-profiles uninstall-profiles test bench unit sanitize sanitize-server valgrind-server fuzz
deps:
	@tools/ensure-deps.sh

demo: deps
	@tools/build-install.sh
	@PDP_DB=lms_demo tools/with-cluster.sh demo/run-tour.sh

test: deps
	@tools/build-install.sh
	@$(MAKE) --no-print-directory unit sanitize fuzz
	@tools/with-cluster.sh tools/run-suites.sh
	@tools/run-instrumented.sh sanitize
	@tools/run-instrumented.sh valgrind

bench: deps
	@tools/build-install.sh
	@tools/with-cluster.sh bench/run.sh
