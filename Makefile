# The two commands of the README. Both create .venv when it is missing and (re)install the
# project when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= book

.PHONY: book test verify lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[book,test,cluster]'
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/horizon book --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

verify: $(STAMP)
	$(BIN)/horizon verify --profile smoke

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/ruff check .

clean:
	rm -rf _build
