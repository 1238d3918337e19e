"""Counting an LLM's tokens without ever downloading a tokenizer.

tiktoken fetches its encoding files from the internet on first use and caches them; an
air-gapped ministry has no internet, and a fetch that hangs on a firewall would stall every
answer. So tiktoken is used only when the encoding of the model is already in its cache, checked
here against the file's published SHA-256 (a corrupt cached file makes tiktoken fetch it again);
any other model, OpenAI's without the file included, is counted by a safe estimate: one token
per three bytes of UTF-8, which over-counts English (about four characters a token) and counts
one token per CJK character, so a budget built on it never overflows.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import tiktoken

_ENCODING_FILES = {
    # name: (URL tiktoken caches it under, the file's SHA-256), as tiktoken_ext.openai_public has
    "r50k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    ),
    "p50k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


class TokenCounter(Protocol):
    @property
    def name(self) -> str:
        """What counts: an encoding's name, or "estimate"."""
        ...

    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class ByteEstimate:
    """At least as many tokens as any BPE tokenizer of a modern LLM makes of the text."""

    bytes_per_token: float = 3.0
    name: str = "estimate"

    def count(self, text: str) -> int:
        return math.ceil(len(text.encode("utf-8", "replace")) / self.bytes_per_token)


@dataclass(frozen=True)
class TiktokenCounter:
    encoding: tiktoken.Encoding

    @property
    def name(self) -> str:
        return self.encoding.name

    def count(self, text: str) -> int:
        # Special tokens in a document ("<|endoftext|>") are text here, not control tokens.
        return len(self.encoding.encode(text, disallowed_special=()))


def tiktoken_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """Where tiktoken looks for cached encodings, by its own rule; None when caching is off."""
    directory = environ.get("TIKTOKEN_CACHE_DIR", environ.get("DATA_GYM_CACHE_DIR"))
    if directory is None:
        return Path(tempfile.gettempdir()) / "data-gym-cache"
    return Path(directory) if directory else None


def token_counter(model: str, cache_dir: Path | None) -> TokenCounter:
    """tiktoken's encoding of `model` when its file is in `cache_dir` intact and `cache_dir` is
    the folder tiktoken reads (`tiktoken_cache_dir(os.environ)`), else the estimate."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return ByteEstimate()
    known = _ENCODING_FILES.get(name)
    if known is None or cache_dir is None:
        return ByteEstimate()
    if cache_dir != tiktoken_cache_dir(os.environ):
        # tiktoken loads from the folder its environment names; a file checked elsewhere would
        # leave it to download.
        return ByteEstimate()
    url, sha256 = known
    cached = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    try:
        data = cached.read_bytes()
    except OSError:
        return ByteEstimate()
    if hashlib.sha256(data).hexdigest() != sha256:
        return ByteEstimate()
    return TiktokenCounter(tiktoken.get_encoding(name))
