# `make demo` sets up .venv and runs the main job; `make setup` only sets up (README's test command runs pytest after it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VIDEOS ?= ./videos
QUERY ?= a man cooking pasta

.PHONY: demo setup

$(BIN)/glscl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/glscl

setup: $(BIN)/glscl

demo: $(BIN)/glscl
	$(BIN)/glscl index $(VIDEOS)
	$(BIN)/glscl search "$(QUERY)"
