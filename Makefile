# covetd developer entry points. `make run` and `make test` work from a fresh clone
# on Debian/Ubuntu with Python 3.11+ (they create .venv and install what they need).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.covetd-installed

.PHONY: run test lint typecheck pytest bench autobahn docs clean verify-deploy verify-deploy-static native pure

# The native build: setup.py's NATIVE_MODULES compiled with mypyc, plus its C helpers.
# `make run` and `make test` (re)make it whenever one of its sources changed, so a
# compiled module never runs older code than its .py. Without a C compiler and the
# Python headers covetd stays pure Python (same behaviour, slower; docs/performance.md).
# COVETD_PURE=1 skips it; `make pure` removes it.
NATIVE_STAMP := build/.covetd-native
NATIVE_SOURCES := setup.py $(shell grep -oE '"covetd/[A-Za-z0-9_/]+\.(py|c)"' setup.py | tr -d '"')
ifeq ($(COVETD_PURE),1)
NATIVE :=
else
NATIVE := $(NATIVE_STAMP)
endif

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "covetd needs Python 3.11+ (found: $$($(PYTHON) --version 2>&1))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "could not create $(VENV): install venv support (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

run: $(STAMP) $(NATIVE)
	$(BIN)/covetd -c config/covetd.yaml

lint: $(STAMP)
	$(BIN)/ruff check covetd tests examples loadtests
	$(BIN)/ruff format --check covetd tests examples loadtests

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(NATIVE)
	$(BIN)/pytest

test: lint typecheck pytest

# The .so files sit next to the .py files and win the import. Built from scratch: an
# unchanged module's old .so would look stale next to a newer source.
$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	@if $(BIN)/python -c 'import sysconfig, os, shutil, sys; \
	    sys.exit(not (shutil.which("cc") and os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")))'; then \
	  $(MAKE) --no-print-directory native || { $(MAKE) --no-print-directory pure; \
	    echo "warning: the native build failed (build-native.log): covetd runs as pure Python"; \
	    mkdir -p build && touch $@; }; \
	else \
	  echo "note: no C compiler or Python headers (apt-get install gcc python3-dev): covetd runs as pure Python"; \
	  mkdir -p build && touch $@; \
	fi

native: $(STAMP) pure
	@echo "compiling the native build (mypyc, ~20 s; COVETD_PURE=1 skips it)"
	COVETD_MYPYC=1 $(BIN)/python setup.py -q build_ext --inplace > build-native.log 2>&1 \
	  || { tail -20 build-native.log; echo "native build failed (log: build-native.log)"; exit 1; }
	rm -f build-native.log
	touch $(NATIVE_STAMP)

pure:
	find covetd -name '*.so' -delete
	rm -rf build

bench: $(STAMP)
	$(BIN)/python loadtests/bench_engine.py

autobahn: $(STAMP)
	$(BIN)/python loadtests/autobahn.py

# Deployment artefacts (docs/deployment.md#verification). static: lint and validate,
# about 10 s, no root; verify-deploy: also run them for real (nginx, Prometheus, systemd
# in systemd-nspawn, the container image; the last two need root).
verify-deploy-static: $(STAMP)
	deploy/verify/static.sh

verify-deploy: $(STAMP)
	deploy/verify/static.sh
	deploy/verify/live.sh
	deploy/verify/systemd.sh
	deploy/verify/image.sh

docs: $(STAMP)
	$(BIN)/python -m covetd.config.docs > docs/configuration.md

clean:
	rm -rf $(VENV) build build-native.log *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find covetd -name '*.so' -delete
