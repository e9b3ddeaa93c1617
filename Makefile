# One-command entry points. Each target builds the virtualenv it needs first.
#   make demo    run the pipeline at the default scale (Figure 6 and everything built so far)
#   make test    the fast test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install -c constraints.txt
CORES  ?= 2
SCALE  ?= default
STAMP  := $(VENV)/.installed

.PHONY: setup demo smoke test test-slow test-all bench report clean

setup: $(STAMP)

# torch is pinned by constraints.txt to the CPU build; every install goes through it.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[workflow,test,slurm]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake all --cores $(CORES) --rerun-incomplete --config scale=$(SCALE)

smoke: $(STAMP)
	$(BIN)/snakemake all --cores $(CORES) --config scale=smoke

report: $(STAMP)
	$(BIN)/snakemake --cores 1 --config scale=$(SCALE) --report results/$(SCALE)/report.html

test: $(STAMP)
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

test-all: test test-slow

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf results/smoke .snakemake
