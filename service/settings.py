"""The one settings object, read from CHANCERY_* environment variables at the entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.model_files import DEFAULT_MODEL_SHA256
from service.answerers import Fallback
from service.claims import ClaimRules
from service.extractive import AnswerConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHANCERY_", extra="ignore")

    model_path: Path | None = None
    """A local sentence-transformers folder; unset means the bundled all-MiniLM-L6-v2."""
    model_sha256: str = DEFAULT_MODEL_SHA256
    """Expected SHA-256 of the default model's weights (checked at load)."""
    chunk_tokens: int = Field(default=200, ge=16)
    overlap_tokens: int = Field(default=40, ge=0)
    max_file_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    data_dir: Path = Path("var/chancery")
    """The data root: named collections (index and uploaded originals) and job records; what
    `chancery serve` serves."""
    index_dir: Path | None = None
    """The index folder of commands run without --index or --collection; unset means the
    collection `default` of the data root."""
    embed_bf16: bool | None = None
    """bfloat16 inference on CPUs that support it natively; unset means detect."""
    embed_threads: int | None = Field(default=None, ge=1)
    """Torch threads for embedding; unset means all cores for ingest and one per request when
    serving (and one per worker of a Ray ingest)."""
    embed_lanes: int | None = Field(default=None, ge=1)
    """Forward passes a server runs at once for questions (each batching the questions that
    arrived meanwhile); unset: the cores over `embed_threads`, less one (at least one)."""
    ray_address: str | None = None
    """`chancery ingest` parses and embeds on this Ray cluster (`auto`: the one `ray start` runs
    on this machine, else a new local one); unset means in this process. `--ray` overrides it."""
    ray_batch_seconds: float = Field(default=600.0, gt=0)
    """A Ray worker that has not returned a batch after this long is taken for hung: it is
    stopped and its batch goes to a new one (as a dead worker's does)."""
    retain_versions_seconds: float = Field(default=0.0, ge=0)
    """A write that collects old index versions keeps those replaced less than this many
    seconds ago (the one replaced last is kept whatever its age, for readers still on it).
    Replicas on several hosts of a network file system need it longer than they take to switch
    (NFS caches the `current` link for up to a minute by default, and a host cannot read a file
    another host removed): 300, say."""
    max_body_bytes: int = Field(default=64 * 1024, ge=1)
    """Request bodies over this size get 413 before the service reads them."""
    max_upload_files: int = Field(default=20, ge=1)
    """Files in one upload request."""
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    """The files of one upload request together; each file is also held to `max_file_bytes`."""
    max_queued_jobs: int = Field(default=32, ge=1)
    """Jobs waiting to run, over all collections; a job submitted beyond that gets 429."""
    keep_jobs_days: float = Field(default=30.0, gt=0)
    """Days the record of a finished job is kept; older ones are removed at startup and hourly."""
    abstain_min_similarity: float = AnswerConfig.min_similarity
    abstain_min_coverage: float = AnswerConfig.min_coverage

    answerer: Literal["extractive", "generative"] = "extractive"
    """Who answers a request that does not say: `generative` needs an LLM (below)."""
    llm_base_url: str | None = None
    """An OpenAI-compatible server (vLLM, llama.cpp, Ollama, a hosted API), e.g.
    http://127.0.0.1:8080/v1; unset means no generative answerer."""
    llm_model: str | None = None
    """The model name that server expects; required with `llm_base_url`."""
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=60.0, gt=0)
    """How long to wait for the LLM to start, and between pieces of its reply."""
    llm_max_tokens: int = Field(default=512, ge=16)
    """The longest answer the LLM may write."""
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_context_tokens: int = Field(default=8192, ge=512)
    """The LLM's context window: instructions, passages and question fit in it with
    `llm_max_tokens` to spare."""
    llm_json: bool = False
    """Ask the LLM for JSON (response_format json_object); plain text is still accepted."""
    llm_fallback: Fallback = Fallback.EXTRACTIVE
    """When no generative sentence verifies or the LLM fails: `extractive` answers instead
    (flagged), `abstain` declines (and an LLM failure is a 503)."""
    claim_min_similarity: float = ClaimRules.min_similarity
    """A generative claim's cosine to its quote must reach this."""
    trusted_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"])
    """Host names the server answers to (any port; `*.example.org` and `*` allowed): the rest get
    400, which stops DNS rebinding from a browser. Add the deployment's names."""
    cors_origins: list[str] = Field(default_factory=list)
    """Web origins allowed to call the API from a browser; empty means none (a preflight gets
    403)."""
    audit: bool = True
    """Keep the audit log (in `audit_dir`). Off only to measure what it costs
    (`bench/auth_audit.py`) or in development: a deployment keeps it on."""
    audit_dir: Path | None = None
    """Where the audit log's monthly files go; unset means the data root's `audit/`. A volume of
    its own keeps a full data root from stopping the audit, and lets it be backed up or made
    append-only apart from the indexes."""
    audit_text: bool = True
    """Store questions, answers and quotes in the audit log; off: metadata only."""
    rate_limit_rps: float | None = Field(default=10.0, gt=0)
    """Requests per second per key (per client address when there are no keys); unset: no
    limit."""
    rate_limit_burst: int = Field(default=40, ge=1)
    auth_failures: int = Field(default=5, ge=1)
    """Failed authentications from one address, within `auth_failure_window_s`, before it is
    made to wait."""
    auth_failure_window_s: float = Field(default=60.0, gt=0)
    auth_block_s: float = Field(default=30.0, gt=0)
    auth_block_max_s: float = Field(default=3600.0, gt=0)
    log_json: bool | None = None
    """Log JSON lines; unset: when stderr is not a terminal."""
