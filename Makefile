VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: `make run` installs what running needs, `make test` adds the test extras.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench chaos clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(RUN_STAMP) $(STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/promobot serve --dev

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -q -m "not slow" -n 4

# The long reliability runs: kill -9 under load, rate-limit storms.
chaos: $(STAMP)
	$(PY) -m pytest -q -m slow

# Figures for the README's performance section (issue 15's table from one run, then the
# push-to-Slack latency and the year); results in bench/results/*.json. Never part of `make test`.
bench: $(STAMP) bench/probot/node_modules/.bin/probot
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) bench/truth.py
	$(PY) bench/push_to_slack.py
	$(PY) bench/history.py

# The Probot baseline, installed from the npm registry into a git-ignored folder.
bench/probot/node_modules/.bin/probot: bench/probot/package.json
	command -v npm >/dev/null || (apt-get update && apt-get install -y npm)
	cd bench/probot && npm install --no-audit --no-fund

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
