VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench chaos clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/promobot serve --dev

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -q -m "not slow"

# The long reliability runs: kill -9 under load, rate-limit storms.
chaos: $(STAMP)
	$(PY) -m pytest -q -m slow

# Figures for the README's performance section; results in bench/results/*.json.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) bench/ingest.py
	$(PY) bench/push_to_slack.py
	$(PY) bench/history.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
