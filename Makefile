# covetd developer entry points. `make run` and `make test` work from a fresh clone
# on Debian/Ubuntu with Python 3.11+ (they create .venv and install what they need).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.covetd-installed

.PHONY: run test lint typecheck pytest bench autobahn docs clean verify-deploy verify-deploy-static native pure

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "covetd needs Python 3.11+ (found: $$($(PYTHON) --version 2>&1))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "could not create $(VENV): install venv support (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/covetd -c config/covetd.yaml

lint: $(STAMP)
	$(BIN)/ruff check covetd tests examples loadtests
	$(BIN)/ruff format --check covetd tests examples loadtests

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# Optional: compile the HTTP hot path (setup.py's NATIVE_MODULES) with mypyc; needs a C
# compiler and the Python headers. The .so files sit next to the .py files and win the
# import; `make pure` removes them. `make test` tests whichever is there.
native: $(STAMP) pure  # from scratch: an unchanged module's old .so would look stale
	COVETD_MYPYC=1 $(BIN)/python setup.py -q build_ext --inplace

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
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find covetd -name '*.so' -delete
