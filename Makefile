# deg: the two commands a fresh machine needs are `make bench` and `make test`.
# Both create/refresh the virtualenv .venv from PyPI and install deg into it (editable).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-stamp
BENCH_ARGS ?=

.PHONY: all test test-slow lint bench warm clean-cache clean-cache-if-stale venv clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; installing Debian's python3-venv"; \
	  apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@# the distribution was called deg before: an old editable install would shadow this one
	-@$(PY) -m pip uninstall -q -y deg 2>/dev/null
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	@touch $@

venv: $(STAMP)

# numba's cache does not notice when a kernel calls into another file that changed:
# drop all cached machine code whenever any kernel source differs from the last run.
clean-cache-if-stale:
	@sum=$$(cat deg/_kernels/*.py | sha1sum | cut -d' ' -f1); \
	if [ "$$(cat deg/_kernels/.cache-stamp 2>/dev/null)" != "$$sum" ]; then \
	  find deg -name '*.nb[ic]' -delete; echo "$$sum" > deg/_kernels/.cache-stamp; fi

clean-cache:
	find deg -name '*.nb[ic]' -delete; rm -f deg/_kernels/.cache-stamp

warm: $(STAMP) clean-cache-if-stale
	$(PY) -c "import deg; deg.warmup(verbose=True)"

test: warm
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test-slow: warm
	$(PY) -m pytest -m slow

bench: warm
	$(PY) -m bench $(BENCH_ARGS)

clean: clean-cache
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
