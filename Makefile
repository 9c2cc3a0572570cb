# Two commands: `make report` (the main job) and `make test`. Both create .venv on first use
# and install the project with every framework, pinned by constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# After that install (INSTALLED), gradparity alone is reinstalled (LINKED) in setuptools' strict
# editable mode: a tree of links under build/ laid out as the installed package
# (gradparity/core/reference.py -> core/reference.py, ...) and put on sys.path, a layout that
# editors and static tools read (the default mode maps gradparity.core to core/ through an import
# hook, which only a running interpreter sees). gradparity alone: on the full install,
# --config-settings would reach every package pip builds. The tree holds the modules that existed
# when it was built, so it is rebuilt whenever the set of module files in the package folders
# (those of [tool.setuptools.package-dir]) changes: MODULES lists them and is rewritten only when
# the list differs.
STRICT := --config-settings editable_mode=strict
PACKAGE_FOLDERS := gradparity core backends reports
MODULES := $(VENV)/.modules
LINKED := $(VENV)/.linked

.PHONY: report test docs serve-docs bench time-to-verdict clean FORCE

# The plugins this repository ships (plugins/), installed from their folders after gradparity,
# editable, so the suite tests them as they are (parity_tests/test_parity.py runs them like the
# built-in backends).
PLUGINS := plugins/gradparity-autograd

$(INSTALLED): pyproject.toml constraints.txt $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,test]'
	$(BIN)/python -m pip install --quiet -c constraints.txt $(addprefix -e ./,$(PLUGINS))
	touch $(INSTALLED)

$(MODULES): FORCE
	@mkdir -p $(VENV)
	@printf '%s\n' $(sort $(wildcard $(addsuffix /*.py,$(PACKAGE_FOLDERS)))) > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(LINKED): $(INSTALLED) $(MODULES)
	$(BIN)/python -m pip install --quiet --quiet --no-deps -e . $(STRICT)
	touch $(LINKED)

report: $(LINKED)
	$(BIN)/gradparity report

# --dist loadfile: each test file runs in one worker, so the parity catalogue runs once.
test: $(LINKED)
	$(BIN)/python -m pytest -n auto --dist loadfile

# The documentation site (mkdocs.yml): built into site/ (open site/index.html), or served with live
# reload at http://127.0.0.1:8000.
docs: $(LINKED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

serve-docs: $(LINKED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: $(LINKED)
	$(BIN)/gradparity bench

# gradparity run on the default catalogue next to the time of importing every framework.
time-to-verdict: $(LINKED)
	$(BIN)/python scripts/time_to_verdict.py

clean:
	rm -rf $(VENV) build site reports/latest .pytest_cache .hypothesis
