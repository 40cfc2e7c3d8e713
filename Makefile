# contacthub: `make demo` runs the hub with demo data; `make test` sets up and runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HUB_DATA_DIR ?= ./var

.PHONY: demo test check lint typecheck imports pytest servers bench clean help

help:
	@echo "make demo   - install into $(VENV), migrate, seed demo data and serve on :8000"
	@echo "make test   - install test servers and dependencies, then lint, typecheck, test"
	@echo "make bench  - run the benchmarks (JSON on stdout)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python >= 3.11 is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/contacthub demo

servers:
	bash tests/servers/postgres.sh
	bash tests/servers/redis.sh
	bash tests/servers/kannel.sh
	bash tests/servers/dovecot.sh
	bash tests/servers/fax.sh
	bash tests/servers/browser.sh
	bash tests/servers/asterisk.sh

lint: $(VENV)/.test
	$(BIN)/ruff check hub channels routing recorder tests bench

typecheck: $(VENV)/.test
	$(BIN)/mypy --strict hub channels routing recorder

imports: $(VENV)/.test
	$(BIN)/lint-imports

check: lint typecheck imports

pytest: $(VENV)/.test servers
	$(BIN)/pytest -q

test: check pytest

bench: $(VENV)/.test
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/service_level.py
	$(BIN)/python bench/search.py --docs 100000
	$(BIN)/python bench/search_api.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/chat.py
	$(BIN)/python bench/socket_rooms.py
	$(BIN)/python bench/email_ingest.py
	$(BIN)/python bench/voice.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
