# Two commands do all the set-up: `make run` and `make test` create .venv on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data

.PHONY: run demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[train,test]'
	touch $@

run: $(BIN)/.installed  ## open the desktop app
	$(BIN)/signcam

demo: $(BIN)/.installed  ## recognise signs in the generated demo clip, headless
	$(BIN)/signcam detect demo --output demo-annotated.mp4

test: $(BIN)/.installed  ## lint and the whole test suite (reads $(DATA) when present)
	$(BIN)/ruff check signcam training tests benchmarks
	SIGNCAM_DATA=$(abspath $(DATA)) QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: $(BIN)/.installed  ## classifier and pipeline speed on this machine
	$(BIN)/signcam bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
