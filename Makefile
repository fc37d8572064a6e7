# One entry point for people and CI. `make demo` and `make test` are the
# README's quick start; both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest bench profile mutate clean lock

# The editable install also builds the native watch reader in place (pyproject's
# ext-modules), so a change to its C source installs again.
$(STAMP): pyproject.toml fluxwatch/kube/_hrwire.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fluxwatch demo

lint: $(STAMP)
	$(BIN)/ruff check fluxwatch tests bench
	$(BIN)/ruff format --check fluxwatch tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# A flame graph of one benchmark: make profile BENCH=watch (py-spy samples the process).
BENCH ?= watch
profile: $(STAMP)
	$(BIN)/pip install --quiet 'py-spy>=0.3'
	$(BIN)/py-spy record --rate 500 -o bench/results/profile-$(BENCH).svg -- \
		$(BIN)/python -m bench --only $(BENCH) --quick --out bench/results/profile-$(BENCH).json

# The image installs from these, hash-checked (Dockerfile). Run after changing the
# dependencies in pyproject.toml, or to take newer releases; commit both files.
LOCK := $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock'
lock: $(STAMP)
	$(LOCK) pyproject.toml -o requirements.lock
	$(LOCK) requirements-build.in -o requirements-build.lock

# Mutation testing of fluxwatch/engine/ against the engine's unit tests ([tool.mutmut] in
# pyproject.toml). Not part of `make test` (minutes, not seconds); the survivors it may
# report are the equivalent mutants listed, with why, in tests/mutants.md.
# MUTANTS picks which: by default the engine modules whose survivors are kept at zero
# (every one of them, tracker.py and recovery.py included); `make mutate MUTANTS=` too.
MUTANTS ?= fluxwatch.engine.policy.* fluxwatch.engine.guardrail.* fluxwatch.engine.incidents.* \
	fluxwatch.engine.dependencies.* fluxwatch.engine.leases.* fluxwatch.engine.clock.* \
	fluxwatch.engine.config.* fluxwatch.engine.tracker.* fluxwatch.engine.recovery.*
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children $${MUTATE_JOBS:-2} $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants
