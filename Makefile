# Two commands: `make report` (the main job) and `make test`. Both create .venv on first use
# and install the project with every framework, pinned by constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: report test bench time-to-verdict clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,test]'
	touch $(INSTALLED)

report: $(INSTALLED)
	$(BIN)/gradparity report

# --dist loadfile: each test file runs in one worker, so the parity catalogue runs once.
test: $(INSTALLED)
	$(BIN)/python -m pytest -n auto --dist loadfile

bench: $(INSTALLED)
	$(BIN)/gradparity bench

# gradparity run on the default catalogue next to the time of importing every framework.
time-to-verdict: $(INSTALLED)
	$(BIN)/python scripts/time_to_verdict.py

clean:
	rm -rf $(VENV) reports/latest .pytest_cache .hypothesis
