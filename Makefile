# One entry point for set-up, demo, tests, lint and benchmarks. Everything the tests need is
# installed from here, so a fresh clone with ../shared beside it passes `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint bench eval samples clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, from the local CPU wheel: otherwise sentence-transformers pulls CUDA builds.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

samples: setup
	$(BIN)/python samples/generate.py --check

# The demo serves a data root, so uploads and collections work as in production.
DEMO_DATA := var/demo
DEMO_FILES := samples/northland-national-security-strategy.pdf samples/northland-energy-brief.md samples/astoria-relations-note.html

demo: setup
	CHANCERY_DATA_DIR=$(DEMO_DATA) $(BIN)/chancery ingest $(DEMO_FILES) --collection default
	CHANCERY_DATA_DIR=$(DEMO_DATA) $(BIN)/chancery ask "Who is responsible for coordinating the implementation of the strategy?" --collection default
	@echo "Serving on http://127.0.0.1:8000 (API docs at /docs); Ctrl-C stops it."
	CHANCERY_DATA_DIR=$(DEMO_DATA) $(BIN)/chancery serve --host 127.0.0.1 --port 8000

# Answers must not depend on the CPU's arithmetic: the whole suite runs in fp32, which every
# x86-64 CPU has; where the CPU has native bf16, the tests that check answers run again in it.
BF16_TESTS := tests/test_service_answer.py tests/test_service_http.py tests/test_eval_quality.py

test: setup
	CHANCERY_EMBED_BF16=0 $(BIN)/pytest
	if $(BIN)/python -c 'from index.embedder import cpu_has_bf16; exit(not cpu_has_bf16())'; then \
	  CHANCERY_EMBED_BF16=1 $(BIN)/pytest $(BF16_TESTS); \
	else echo "make: this CPU has no native bf16; the suite ran in fp32 only"; fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

CORPUS := ../shared/corpus
CORPUS_FILES := $(CORPUS)/kcss-serbia-security-doctrine.pdf $(CORPUS)/kcss-report-news.txt
EVAL_INDEX := var/eval-index
EVAL_RUNS := var/eval

# The team's gold set on the reference corpus, once per retrieval mode; reports in var/eval/*/.
eval: setup
	$(BIN)/chancery ingest $(CORPUS_FILES) --index $(EVAL_INDEX)
	for mode in hybrid dense bm25; do \
	  $(BIN)/chancery eval run eval/gold/kcss.jsonl --index $(EVAL_INDEX) --mode $$mode \
	    --out $(EVAL_RUNS)/$$mode || exit 1; \
	done
	$(BIN)/chancery eval compare $(EVAL_RUNS)/bm25 $(EVAL_RUNS)/hybrid

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
