# pxe-pdhcp: a thin layer over npm. `make test` is what CI runs.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
LIBDIR  ?= $(PREFIX)/lib/pxe-pdhcp
UNITDIR ?= $(PREFIX)/lib/systemd/system
NODE    ?= $(shell command -v node)
NPM     ?= npm
IFACE   ?= eth0
TFTP_ROOT ?= /srv/tftp
# What `make run` serves: BIOS gets pxelinux.0, UEFI x64 syslinux.efi, from $(TFTP_ROOT).
ARGS    ?= -i $(IFACE) --tftp-root $(TFTP_ROOT) --boot arch=efi-x64,file=syslinux.efi pxelinux.0
# Debian packages the tests use (real clients and servers, QEMU firmware, man page checks).
DEBIAN_PKGS = g++ iproute2 dnsmasq-base busybox isc-dhcp-client tcpdump tshark nftables mandoc groff-base \
	tftp-hpa tftpd-hpa atftp curl wget nginx-light qemu-system-x86 ipxe-qemu ovmf pxelinux syslinux-common syslinux-efi ipxe systemd \
	qemu-system-arm qemu-efi-aarch64 shim-signed grub-efi-amd64-signed prometheus
# The e2e ARM64 client's boot file: Debian's signed arm64 network GRUB. Its package is arm64-only, so
# `make deps` downloads it (dpkg --add-architecture arm64, apt-get download) and unpacks it here.
ARM64_CACHE ?= /var/cache/pxe-pdhcp-e2e/arm64
ARM64_GRUB   = $(ARM64_CACHE)/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed
export ARM64_CACHE
# What the default TFTP root is made of.
BOOT_PKGS = pxelinux syslinux-common syslinux-efi ipxe

UNIT_TESTS = $(shell find test -name '*.test.ts' -not -path 'test/e2e/*' | sort)
TEST_RUN   = $(NODE) --import tsx --test --test-reporter=spec --test-concurrency=1

.PHONY: all build test unit check lint format typecheck man run deps tftproot install uninstall clean distclean bench bench-dhcp bench-tftp bench-http bench-upstream fuzz soak unit-file e2e lab

all: build

node_modules: package-lock.json
	$(NPM) ci --no-audit --no-fund
	@# sockopt's shipped linux-x64 binary does not load; npm builds it from source (make, g++).
	@$(NODE) -e "require('sockopt')" 2>/dev/null || $(NPM) rebuild sockopt
	@touch node_modules

dist/bin/pxe-pdhcp.js: node_modules $(shell find src -name '*.ts')
	$(NPM) exec -- tsc -p src
	@chmod +x dist/bin/pxe-pdhcp.js dist/bin/pxe-probe.js

build: dist/bin/pxe-pdhcp.js

## deps: install the Debian packages the tests need (only those missing).
deps:
	@missing=$$(for p in $(DEBIAN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@$(MAKE) --no-print-directory $(ARM64_GRUB)

## The arm64 GRUB for the e2e ARM64 client (see ARM64_CACHE): not installed, only unpacked.
$(ARM64_GRUB):
	dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
	rm -rf $(ARM64_CACHE).tmp && mkdir -p $(ARM64_CACHE).tmp && chmod 777 $(ARM64_CACHE).tmp
	cd $(ARM64_CACHE).tmp && { apt-get download -q grub-efi-arm64-signed:arm64 || \
	  { apt-get update -q && apt-get download -q grub-efi-arm64-signed:arm64; }; }
	dpkg -x $(ARM64_CACHE).tmp/grub-efi-arm64-signed_*_arm64.deb $(ARM64_CACHE).tmp/root
	rm -rf $(ARM64_CACHE) && mv $(ARM64_CACHE).tmp/root $(ARM64_CACHE) && rm -rf $(ARM64_CACHE).tmp
	@test -f $@

## test: every unit, loopback and namespace test (namespace tests need root).
test: deps build
	$(TEST_RUN) $(UNIT_TESTS)

## unit: what `npm test` runs: the unit and loopback tests, as any user, in under a minute.
unit: build
	$(NPM) test

## e2e: real PXE firmware under QEMU (BIOS, UEFI, iPXE chainload, Secure Boot, ARM64) plus a bystander boots through
## the built daemon beside a PXE-less dnsmasq, in network namespaces; needs root.
E2E_TESTS = $(shell find test/e2e -name '*.test.ts' | sort)
e2e:
	@test "$$(id -u)" = 0 || { echo "make e2e needs root (network namespaces, tap devices): sudo make e2e" >&2; exit 1; }
	@$(MAKE) --no-print-directory deps build
	$(TEST_RUN) $(E2E_TESTS)

## lab: boot one QEMU client (CLIENT=bios|uefi|ipxe|secureboot|arm64) on the e2e LAN, live transcript; needs root.
CLIENT ?= bios
lab: build
	@test "$$(id -u)" = 0 || { echo "make lab needs root (network namespaces, tap devices): sudo make lab" >&2; exit 1; }
	$(NODE) --import tsx test/e2e/lab.ts $(CLIENT)

## bench: speed of the responder (and the TFTP server) next to dnsmasq; needs root, cc, dnsmasq.
bench: bench-dhcp bench-tftp

## bench-dhcp: DISCOVERs and 4011 REQUESTs at rising rates (BENCH_RATES, BENCH_SECONDS; BENCH_DECIDE=1 adds
## the --decide-url cache hit path beside the static rules; BENCH_TFTP_LOAD=K measures it while K TFTP clients load each server).
bench-dhcp: build
	$(NODE) --import tsx test/bench/dhcp-bench.ts

## bench-tftp: MB/s of our TFTP server next to tftpd-hpa, dnsmasq and atftpd (BENCH_ROUNDS, BENCH_ONLY).
bench-tftp: build
	$(NODE) --import tsx test/bench/tftp-bench.ts

## bench-upstream: --upstream cache hits next to local files (TFTP, HTTP), first fetch next to a direct curl (BENCH_ROUNDS, BENCH_MIB, BENCH_RATE).
bench-upstream: build
	$(NODE) --import tsx test/bench/upstream-bench.ts

## bench-http: MB/s of our HTTP server next to nginx, 1 and 20 streams, CPU per MB, RSS (BENCH_ROUNDS, BENCH_CLIENTS).
bench-http: build
	$(NODE) --import tsx test/bench/http-bench.ts

## fuzz: the long fuzz run (FUZZ_SECONDS, FUZZ_SEED); prints the input count, fails on any crash.
FUZZ_SECONDS ?= 120
FUZZ_SEED    ?= $(shell date +%s)
fuzz: node_modules
	$(NODE) --import tsx test/fuzz/fuzz.ts --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED)

## soak: SOAK_SECONDS (600) at SOAK_RATE (500) DISCOVER/s from random MACs plus TFTP transfers; RSS and errors.
SOAK_SECONDS ?= 600
SOAK_RATE    ?= 500
soak: build
	$(NODE) --import tsx test/soak/soak.ts --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE)

## storm: N machines (100) switched on at once, KERNEL_MB (20) of kernel and initrd over VIA (tftp|http), against
## STACK (ours|dnsmasq|dnsmasq+tftpd-hpa|all, default all): lost machines, p50/p95/max, CPU, RSS; needs root.
.PHONY: storm
storm: build
	N=$(or $(N),100) KERNEL_MB=$(or $(KERNEL_MB),20) VIA=$(or $(VIA),tftp) STACK=$(or $(STACK),all) \
	  $(NODE) --import tsx test/storm/storm.ts

## unit-file: the systemd unit with this install's paths (UNIT_FILE).
UNIT_FILE ?= dist/pxe-pdhcp.service
unit-file: src/daemon/systemd/pxe-pdhcp.service.in
	@mkdir -p $(dir $(UNIT_FILE))
	sed -e 's|@NODE@|$(NODE)|g' -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' $< > $(UNIT_FILE)

typecheck: node_modules
	$(NPM) exec -- tsc --noEmit -p tsconfig.json

## lint: types, ESLint (with the layering and no-cycle rules) and Prettier's check.
lint: node_modules typecheck
	$(NPM) exec -- eslint .
	$(NPM) exec -- prettier --check .

## format: rewrite every file the way `make lint` checks it.
format: node_modules
	$(NPM) exec -- prettier --write .

man:
	@if command -v mandoc >/dev/null; then mandoc -T lint -W warning man/*.8; else echo "mandoc not installed: skipped"; fi
	@out=$$(groff -man -Tutf8 -ww -z man/*.8 2>&1); test -z "$$out" || { echo "$$out"; exit 1; }

check: lint man test

## run: serve $(IFACE) in the foreground, with a TFTP root that boots BIOS and UEFI clients.
run: build $(TFTP_ROOT)/pxelinux.0
	$(NODE) dist/bin/pxe-pdhcp.js -d $(ARGS)

tftproot: $(TFTP_ROOT)/pxelinux.0

$(TFTP_ROOT)/pxelinux.0:
	@missing=$$(for p in $(BOOT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	install -d $(TFTP_ROOT)/pxelinux.cfg
	install -m644 /usr/lib/syslinux/modules/bios/ldlinux.c32 /usr/lib/SYSLINUX.EFI/efi64/syslinux.efi \
	  /usr/lib/syslinux/modules/efi64/ldlinux.e64 /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/ipxe.efi $(TFTP_ROOT)/
	test -e $(TFTP_ROOT)/pxelinux.cfg/default || printf '%s\n' \
	  'SAY pxe-pdhcp: this machine booted from the network.' \
	  'SAY Put a kernel and initrd in $(TFTP_ROOT) and a LABEL for them here.' \
	  'PROMPT 1' 'TIMEOUT 100' 'DEFAULT local' 'LABEL local' '  LOCALBOOT 0' > $(TFTP_ROOT)/pxelinux.cfg/default
	install -m644 /usr/lib/PXELINUX/pxelinux.0 $(TFTP_ROOT)/pxelinux.0

install: build
	install -d $(DESTDIR)$(LIBDIR)
	cp -r dist package.json package-lock.json $(DESTDIR)$(LIBDIR)/
	cd $(DESTDIR)$(LIBDIR) && $(NPM) ci --omit=dev --no-audit --no-fund
	install -d $(DESTDIR)$(BINDIR)
	ln -sf $(LIBDIR)/dist/bin/pxe-pdhcp.js $(DESTDIR)$(BINDIR)/pxe-pdhcp
	ln -sf $(LIBDIR)/dist/bin/pxe-probe.js $(DESTDIR)$(BINDIR)/pxe-probe
	install -Dm644 man/pxe-pdhcp.8 $(DESTDIR)$(MANDIR)/man8/pxe-pdhcp.8
	install -Dm644 man/pxe-probe.8 $(DESTDIR)$(MANDIR)/man8/pxe-probe.8
	$(MAKE) --no-print-directory unit-file UNIT_FILE=dist/pxe-pdhcp.service
	install -Dm644 dist/pxe-pdhcp.service $(DESTDIR)$(UNITDIR)/pxe-pdhcp.service
	@echo "Installed $(DESTDIR)$(UNITDIR)/pxe-pdhcp.service. Put settings in /etc/pxe-pdhcp.json, then run:"
	@echo "  systemctl daemon-reload && systemctl enable --now pxe-pdhcp"

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)
	rm -f $(DESTDIR)$(BINDIR)/pxe-pdhcp $(DESTDIR)$(MANDIR)/man8/pxe-pdhcp.8 $(DESTDIR)$(UNITDIR)/pxe-pdhcp.service
	rm -f $(DESTDIR)$(BINDIR)/pxe-probe $(DESTDIR)$(MANDIR)/man8/pxe-probe.8

clean:
	rm -rf dist coverage *.tgz

distclean: clean
	rm -rf node_modules
