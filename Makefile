# make demo / make test work from nothing: they create .venv and install what is needed.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel of this pin lies on disk on the team's machines; any other torch pulls CUDA builds.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.roisynth-installed
OMP_NUM_THREADS ?= 1
export OMP_NUM_THREADS
# Two single-threaded test workers on the 2-core machines; a test file stays on one worker (its xdist_group,
# see tests/conftest.py) so its module fixtures (fitted models) are built once. `make test PYTEST_ARGS=` runs serially.
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: install demo test bench clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Re-installs only when pyproject.toml changes; the editable install picks up code edits.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,imaging]"
	touch $@

demo: install
	$(VENV)/bin/roisynth demo --output demo_output

# Lint first (ruff, configured in pyproject.toml); pytest exits 5 when it collects nothing: that is not
# a failure of the suite.
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: install
	$(PY) benchmarks/bench_contrastive_vae.py
	$(PY) benchmarks/bench_models.py

clean:
	rm -rf $(VENV) demo_output build dist *.egg-info
