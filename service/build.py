"""The composition root: the embedder, chunking, ingester, engine and app that settings ask for.

The app, the command line and the benchmarks all build their parts here, so each part is wired
one way. Nothing here loads the model: the embedder loads it on first use or at `load()`, which
the app's startup calls and commands that embed nothing never do.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from index.coalescing import CoalescingEmbedder
from index.embedder import Embedder, SentenceTransformerEmbedder
from index.model_files import ModelError, bundled_model_dir, verify_weights
from index.tokenizer import ModelTokenizer
from ingest.chunking import ChunkingConfig
from service.answerers import EXTRACTIVE, AnswerersFactory, offer
from service.answering import AnswererFactory
from service.claims import ClaimRules
from service.collections import (
    DEFAULT_COLLECTION,
    Collection,
    CollectionRegistry,
    parse_name,
)
from service.engine import Engine
from service.errors import ChanceryError
from service.extractive import AnswerConfig, extractive
from service.ingester import Chunking, Ingester, Workers
from service.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.llm import LlmConfig

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def model_dir(settings: Settings) -> Path:
    if settings.model_path is None:
        directory = bundled_model_dir()
        verify_weights(directory, settings.model_sha256)
        return directory
    if not settings.model_path.is_dir():
        raise ModelError(f"the model folder {settings.model_path} does not exist")
    return settings.model_path


def build_embedder(settings: Settings, threads: int | None = None) -> SentenceTransformerEmbedder:
    """The embedder the settings ask for; cheap: the model itself loads on first use, or at
    `load()`."""
    # The Hugging Face libraries read these when they are imported, which the embedder does
    # only when it loads the model: with them set, a missing file is an error instead of a
    # download attempt.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    directory = model_dir(settings)
    model_id = DEFAULT_MODEL_ID if settings.model_path is None else str(directory.resolve())
    weights = settings.model_sha256 if settings.model_path is None else None
    return SentenceTransformerEmbedder(
        directory,
        model_id=model_id,
        weights_sha256=weights,
        bf16=settings.embed_bf16,
        threads=threads or settings.embed_threads,
    )


def build_chunking(settings: Settings) -> Chunking:
    """Chunks sized in the model's own tokens, never above what the model reads."""
    tokenizer = ModelTokenizer.from_model_dir(model_dir(settings))
    size = min(settings.chunk_tokens, tokenizer.max_tokens)
    config = ChunkingConfig(
        size=size, overlap=min(settings.overlap_tokens, size - 1), max_tokens=tokenizer.max_tokens
    )
    return Chunking(tokenizer, config)


def build_ingester(
    settings: Settings, embedder: Embedder | None = None, workers: Workers | None = None
) -> Ingester:
    return Ingester(
        build_chunking(settings),
        embedder or build_embedder(settings),
        settings.max_file_bytes,
        workers,
        settings.retain_versions_seconds,
    )


def answer_config(settings: Settings) -> AnswerConfig:
    return AnswerConfig(
        min_similarity=settings.abstain_min_similarity, min_coverage=settings.abstain_min_coverage
    )


class LlmSettingsError(ChanceryError):
    """The settings ask for generative answers without saying which LLM."""

    exit_code = 2


def build_answerers(settings: Settings) -> AnswerersFactory:
    """Extractive answers always; generative ones too when an LLM is configured."""
    factories: dict[str, AnswererFactory] = {EXTRACTIVE: extractive(answer_config(settings))}
    if settings.llm_base_url:
        factories["generative"] = _generative(settings)
    elif settings.answerer == "generative":
        raise LlmSettingsError(
            "CHANCERY_ANSWERER=generative needs an LLM: set CHANCERY_LLM_BASE_URL (an "
            "OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1) and CHANCERY_LLM_MODEL"
        )
    return offer(factories, settings.answerer, settings.llm_fallback)


def _generative(settings: Settings) -> AnswererFactory:
    # Imported on use: LangChain and the OpenAI client take a second to import.
    from service.generative import GenerativeConfig, generative
    from service.llm import LangChainChat
    from service.tokens import tiktoken_cache_dir, token_counter

    if not settings.llm_model:
        raise LlmSettingsError(
            "CHANCERY_LLM_BASE_URL is set but CHANCERY_LLM_MODEL is not: name the model the "
            "server expects"
        )
    if settings.llm_max_tokens >= settings.llm_context_tokens:
        raise LlmSettingsError(
            "CHANCERY_LLM_MAX_TOKENS must be smaller than CHANCERY_LLM_CONTEXT_TOKENS, or no "
            "passage fits in the prompt"
        )
    chat = LangChainChat(llm_config(settings))
    counter = token_counter(settings.llm_model, tiktoken_cache_dir(os.environ))
    config = GenerativeConfig(
        context_tokens=settings.llm_context_tokens,
        answer_tokens=settings.llm_max_tokens,
        json_output=settings.llm_json,
        rules=ClaimRules(min_similarity=settings.claim_min_similarity),
    )
    return generative(chat, counter, config)


def llm_config(settings: Settings) -> LlmConfig:
    """The LLM the settings name (`llm_base_url` set): for answers and for rewriting follow-up
    questions in a chat."""
    from service.llm import LlmConfig

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LlmConfig(
        base_url=settings.llm_base_url or "",
        model=settings.llm_model or "",
        api_key=key,
        timeout_s=settings.llm_timeout_s,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        json_output=settings.llm_json,
    )


def collection_index(settings: Settings, name: str) -> Path:
    """The index folder of the collection `name` in the data root; `default` is created when
    missing, as `chancery serve` would."""
    registry: CollectionRegistry[None] = CollectionRegistry(settings.data_dir, _no_engine)
    if parse_name(name) == DEFAULT_COLLECTION:
        return registry.ensure_default().index_dir
    return registry.get(name).index_dir


def index_folder(settings: Settings) -> Path:
    """The index folder of commands run without --index or --collection."""
    if settings.index_dir is not None:
        return settings.index_dir
    return collection_index(settings, DEFAULT_COLLECTION)


def build_engine(
    settings: Settings,
    embedder: Embedder,
    root: Path | None = None,
    answerers: AnswerersFactory | None = None,
) -> Engine:
    """The engine over `root` (default: the settings' index folder), with `answerers` (default:
    those the settings configure)."""
    return Engine(root or index_folder(settings), embedder, answerers or build_answerers(settings))


def build_app(
    settings: Settings, embedder: Embedder | None = None, *, data_root: bool = False
) -> FastAPI:
    """The HTTP app, over every collection of the data root (`settings.data_dir`) when
    `data_root`, else over the one index folder of the settings, served read-only as the
    collection `default`. Its engines, and the model unless `embedder` is given, load at
    startup."""
    # Imported on use: commands that never serve should not pay for importing FastAPI.
    from service.app import create_app, upload_limits
    from service.data_root import DataRoot
    from service.library import BareIndex, Library

    # Before the server starts: settings that cannot work stop it with one sentence.
    answerers = build_answerers(settings)

    def start() -> Library:
        import faiss

        # One torch and one FAISS thread per request: with two, a query waits on a core another
        # request holds (12 ms becomes hundreds; flat search at 10k goes from 0.3 ms to 1-16
        # ms); concurrency comes from the server's thread pool instead. Jobs embed on that one
        # thread too (torch's setting is per process), which leaves the other cores to requests.
        faiss.omp_set_num_threads(1)
        threads = settings.embed_threads or 1
        # Questions asked at once share forward passes. One core is left to the rest of the
        # requests' work (BM25, records, JSON): on 2 cores, one pass at a time took /v1/search
        # at concurrency 16 from 82 to 94 requests/s and p95 from 311 to 218 ms (wrk, 4 rounds
        # each, interleaved), as larger batches cost less a question (8 ms at 8, 17 ms alone).
        serving = CoalescingEmbedder(
            embedder or build_embedder(settings, threads=threads).load(),
            lanes=settings.embed_lanes or max(1, (os.cpu_count() or 1) // threads - 1),
        )
        if not data_root:
            return BareIndex(build_engine(settings, serving, answerers=answerers))
        library = DataRoot(
            settings.data_dir,
            lambda collection: Engine(
                collection.index_dir, serving, answerers, collection=collection.name
            ),
            build_ingester(settings, serving),
            upload_limits(settings),
            max_queued_jobs=settings.max_queued_jobs,
            keep_jobs=timedelta(days=settings.keep_jobs_days),
        )
        library.start()
        return library

    return create_app(settings, start)


def _no_engine(_: Collection) -> None:
    """Commands only locate collections; they never open an engine through the registry."""
