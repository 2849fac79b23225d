# wirefeed: `make demo` runs the main job, `make test` runs the tests.
# Both install what a fresh Debian machine lacks (deploy/local/install-deps.sh) and build
# .venv first; the local Kafka + Redis stack is started by the program itself when needed.

PYTHON ?= python3
VENV := .venv
VENV_BIN := $(VENV)/bin
# Written after a successful install; older than pyproject.toml means reinstall.
VENV_STAMP := $(VENV)/.wirefeed-installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help venv constraints deps demo test stack-up stack-down stack-status bench clean

help:
	@echo "make demo          run the main job end to end on the local stack"
	@echo "make test          run the test suite (starts its own local stack)"
	@echo "make venv          create .venv and install wirefeed[test] (only when pyproject.toml or constraints.txt changed)"
	@echo "make constraints   re-pin constraints.txt to the newest versions pyproject.toml allows"
	@echo "make deps          install make, redis-server, redis-cli, Java 17+, Maven, gcc, libc6-dev, python3-venv when missing (apt)"
	@echo "make stack-up      start the local Kafka + Redis (stack-down, stack-status likewise)"
	@echo "make bench         run bench/throughput.py"
	@echo "make clean         stop the local stack, remove .venv, build files and .wirefeed/"

venv: $(VENV_STAMP)

# deps first (order only): a fresh Debian may lack python3-venv.
$(VENV_STAMP): pyproject.toml constraints.txt | deps
	@test -x $(VENV_BIN)/python || $(PYTHON) -m venv $(VENV)
	$(VENV_BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $@

# Pins what .venv has now (after a dependency change in pyproject.toml and a passing test run).
constraints: venv
	$(VENV_BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade -e '.[test]'
	@{ sed -n '/^#/p' constraints.txt; $(VENV_BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

deps:
	@PYTHON=$(PYTHON) bash deploy/local/install-deps.sh

demo: deps venv
	$(VENV_BIN)/wirefeed demo

test: deps venv
	$(VENV_BIN)/python -m pytest -ra --durations=15 $(PYTEST_ARGS)

stack-up: deps venv
	$(VENV_BIN)/wirefeed stack up

stack-down: venv
	$(VENV_BIN)/wirefeed stack down

stack-status: venv
	$(VENV_BIN)/wirefeed stack status

bench: deps venv
	$(VENV_BIN)/python bench/throughput.py

# Stops the stacks under .wirefeed/ first (their pid files are deleted with the directory).
clean:
	@for stack in .wirefeed/*/kafka; do \
		if [ -d "$$stack" ]; then bash deploy/local/stack.sh down --dir "$${stack%/kafka}"; fi; \
	done
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .wirefeed
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
