# `make demo` and `make test` set up .venv when it is missing, then run.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PACKAGES := modelexport_core modelexport_text modelexport_vision modelexport_audio modelexport_multimodal
THIRD_PARTY := tests/third_party/modelexport-timeseries
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): constraints.txt pyproject.toml scripts/requirements-demo.txt $(foreach p,$(PACKAGES) $(THIRD_PARTY),$(p)/pyproject.toml)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt --config-settings editable_mode=compat -e "./modelexport_core[qnn,signing,ray]" \
		$(foreach p,$(filter-out modelexport_core,$(PACKAGES)),-e ./$(p)) -e ./$(THIRD_PARTY) -e ".[dev]"
	$(PIP) install --quiet --no-deps -r scripts/requirements-demo.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) build dist *.egg-info */*.egg-info
