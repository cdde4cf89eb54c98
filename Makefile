# dnssec-ceremony: the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := softhsm2 opensc bind9-utils bind9-dnsutils ldnsutils knot-dnssecutils knot unbound chromium
DEMO_DIR ?= demo-out

.PHONY: all deps debs venv accel lint typecheck pytest test demo clean

all: test

# Debian packages the tests and the demo use (real tokens, real validators).
debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make: missing Debian packages:$$missing"; \
	    echo "make: run as root, or: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	  echo "make: installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

venv: $(BIN)/activate
	$(BIN)/pip install -q -e '.[test]'

# The mypyc build of signer/zone's hot modules (build/accel, never committed); rebuilt when
# their sources changed, skipped with one line when there is no C compiler or Python headers
# (zonesigner then runs as pure Python; ZONESIGNER_PURE=1 forces that).
# Also the byte code of our modules, written even where PYTHONDONTWRITEBYTECODE is set (it
# would otherwise be compiled again at every start: ~0.1 s of each zonesigner run).
accel: venv
	$(BIN)/python -m signer.zone._accel_build
	$(BIN)/python -m compileall -q signer ceremony

deps: debs venv accel

lint: deps
	$(BIN)/ruff check $(wildcard signer ceremony tests benchmarks hsm-sim)

typecheck: deps
	$(BIN)/mypy --strict signer ceremony

pytest: deps
	$(BIN)/pytest -n 2 -q

test: deps lint typecheck pytest

demo: deps
	$(BIN)/python hsm-sim/demo.py $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
