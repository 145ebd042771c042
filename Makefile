# make run      : create .venv if missing, install, run the whole pipeline on generated sample data
# make test     : create/update .venv, run the fast test suite (the README's test command)
# make test-e2e : the end-to-end tests (whole pipelines, jobs in their own process); CI runs both
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST := $(BIN)/python -m pytest --durations=15

.PHONY: venv run test test-e2e test-slow test-cluster bench quality lint wheel clean

# uv installs from its cache (hard links), so a fresh clone re-creates .venv in seconds once
# torch has been downloaded; the stamp keeps `make test` from reinstalling when nothing changed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python jobs/pipeline.py --conf conf/local.yaml --generate sample

test: $(STAMP)
	$(PYTEST) -m "not slow and not cluster and not e2e"

test-e2e: $(STAMP)
	$(PYTEST) -m "e2e and not slow and not cluster"

test-slow: $(STAMP)
	$(PYTEST) -m "slow"

test-cluster: $(STAMP)
	$(PYTEST) -m "cluster"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all $(BENCH_ARGS)

# the whole pipeline on each real rating set of ../shared/data with conf/quality.yaml (not a
# test: tens of CPU-minutes)
quality: $(STAMP)
	$(BIN)/python -m tools.quality --shared ../shared/data --out build/quality $(QUALITY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check lib jobs tests benchmarks tools

# the wheel, plus the same archive as .zip: what spark-submit --py-files ships to executors
# (PySpark adds only .zip/.egg/.jar py-files to the executors' sys.path); setuptools packs all
# of build/lib, so an earlier build's leftovers (lib/malgen, in no wheel) are removed first
wheel: $(STAMP)
	rm -rf build/lib
	$(BIN)/uv build --wheel --out-dir dist
	$(BIN)/python -c "import anime_recs.submit as s; print(s.py_files_zip(s.find_wheel('dist')))"

clean:
	rm -rf lakehouse reports checkpoints mlruns.db mlartifacts dist build
