# Two entry points (see README): `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VIDEOS ?= ./videos
QUERY ?= a man cooking pasta

.PHONY: demo test setup

$(BIN)/glscl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/glscl

setup: $(BIN)/glscl

demo: $(BIN)/glscl
	$(BIN)/glscl index $(VIDEOS)
	$(BIN)/glscl search "$(QUERY)"

test: $(BIN)/glscl
	$(BIN)/python -m pytest -q
