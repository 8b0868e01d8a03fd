# make run · make test · make test-fast · make bench — each sets up .venv first, from the lock file
# (nothing to install by hand). make lock regenerates the lock after a change to setup.cfg.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt

.PHONY: run test test-fast lint lock bench install clean postgres-stop

# Exactly the pinned, hash-checked versions, then the project itself without resolving anything;
# pip check fails here if setup.cfg asks for something the lock lacks (run make lock).
$(STAMP): $(LOCK) setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	git rev-parse --git-dir >/dev/null 2>&1 && git config core.hooksPath .githooks || true
	touch $(STAMP)

# Pins setup.cfg's dependencies and the test extra for Python 3.11, keeping existing pins;
# make lock ARGS=--upgrade moves every pin to the newest release.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --extra test --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) $(ARGS) setup.cfg

install: $(STAMP)

run: $(STAMP)
	bash scripts/run-dev.sh

# ruff (with pytest-style, simplification and ruff's own rules) and mypy on connector/ and
# plugins/ (pyproject.toml says how); make test runs it first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole suite: lint, units, end-to-end (real processes), Chromium and PostgreSQL tests, in two
# processes: the end-to-end tests mostly wait on the processes they start.
test: lint
	bash scripts/install-browser.sh
	$(BIN)/pytest -q -n 2 --dist worksteal

# Units only: no real processes, no browser, no PostgreSQL server; in two processes (pytest-xdist),
# a worker that runs out of tests taking some of the other's; generated tests run a quarter of
# their examples (tests/fuzzing.py), all of which make test runs.
test-fast: $(STAMP)
	CONNECTOR_FUZZ=quick $(BIN)/pytest -q -m "not e2e and not browser and not postgres" -n 2 --dist worksteal

# The tests' PostgreSQL stays up between runs (fast starts; shared with other runs on the
# machine): stop it by hand when nobody needs it.
postgres-stop:
	bash scripts/postgres.sh stop

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache
