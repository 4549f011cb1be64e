# pxe-pdhcp: a thin layer over npm. `make test` is what CI runs.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
LIBDIR  ?= $(PREFIX)/lib/pxe-pdhcp
UNITDIR ?= $(PREFIX)/lib/systemd/system
NODE    ?= $(shell command -v node)
NPM     ?= npm
ARGS    ?= -i lo pxelinux.0

UNIT_TESTS = $(shell find test -name '*.test.ts' -not -path 'test/e2e/*' | sort)
TEST_RUN   = $(NODE) --import tsx --test --test-reporter=spec --test-concurrency=1

.PHONY: all build test unit check lint typecheck man run install uninstall clean distclean

all: build

node_modules: package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch node_modules

dist/main.js: node_modules $(shell find src -name '*.ts')
	$(NPM) exec -- tsc -p tsconfig.build.json
	@chmod +x dist/main.js

build: dist/main.js

## test: every unit, loopback and namespace test (namespace tests need root).
test: build
	$(TEST_RUN) $(UNIT_TESTS)

typecheck: node_modules
	$(NPM) exec -- tsc --noEmit -p tsconfig.json

lint: node_modules typecheck
	$(NPM) exec -- eslint .

man:
	@if command -v mandoc >/dev/null; then mandoc -T lint -W warning man/*.8; else echo "mandoc not installed: skipped"; fi
	@out=$$(groff -man -Tutf8 -ww -z man/*.8 2>&1); test -z "$$out" || { echo "$$out"; exit 1; }

check: lint man test

run: build
	$(NODE) dist/main.js -d $(ARGS)

install: build
	install -d $(DESTDIR)$(LIBDIR)
	cp -r dist package.json package-lock.json $(DESTDIR)$(LIBDIR)/
	cd $(DESTDIR)$(LIBDIR) && $(NPM) ci --omit=dev --no-audit --no-fund --ignore-scripts
	install -d $(DESTDIR)$(BINDIR)
	ln -sf $(LIBDIR)/dist/main.js $(DESTDIR)$(BINDIR)/pxe-pdhcp
	install -Dm644 man/pxe-pdhcp.8 $(DESTDIR)$(MANDIR)/man8/pxe-pdhcp.8

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)
	rm -f $(DESTDIR)$(BINDIR)/pxe-pdhcp $(DESTDIR)$(MANDIR)/man8/pxe-pdhcp.8

clean:
	rm -rf dist coverage *.tgz

distclean: clean
	rm -rf node_modules
