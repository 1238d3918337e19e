"""Counting tokens without ever downloading: tiktoken only over an intact file already in its
cache, else the byte estimate. Every test here runs with the network cut off."""

from __future__ import annotations

import hashlib
import math
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken_ext.openai_public  # type: ignore[import-untyped]

from service import tokens
from service.tokens import (
    ByteEstimate,
    TiktokenCounter,
    tiktoken_cache_dir,
    token_counter,
)

MODELS = {
    "gpt-4o": "o200k_base",
    "gpt-4": "cl100k_base",
    "text-davinci-003": "p50k_base",
    "davinci": "r50k_base",
}


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the token counter reached for the network")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, _no_network)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tiktoken's cache folder, as its environment names it."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    return tmp_path


@pytest.fixture
def encodings_loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """tiktoken.get_encoding replaced by a small offline encoding; the names it was asked for."""
    asked: list[str] = []

    def get_encoding(name: str) -> tiktoken.Encoding:
        asked.append(name)
        ranks = {bytes([b]): b for b in range(256)}
        return tiktoken.Encoding(name, pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})

    monkeypatch.setattr(tiktoken, "get_encoding", get_encoding)
    yield asked


def cache_path(folder: Path, encoding: str) -> Path:
    url, _ = tokens._ENCODING_FILES[encoding]
    return folder / hashlib.sha1(url.encode()).hexdigest()


def test_the_network_is_cut_off_here() -> None:
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("openaipublic.blob.core.windows.net", 443))


@pytest.mark.parametrize("model", ["stub", "llama-3.1-8b-instruct", "mistral-large", ""])
def test_an_unknown_model_is_counted_by_the_estimate(model: str, cache: Path) -> None:
    assert token_counter(model, cache) == ByteEstimate()


@pytest.mark.parametrize("model", MODELS)
def test_without_a_cache_folder_openais_models_are_estimated(model: str, tmp_path: Path) -> None:
    assert token_counter(model, None) == ByteEstimate()
    assert token_counter(model, tmp_path / "missing") == ByteEstimate()


@pytest.mark.parametrize("model", MODELS)
def test_a_cache_without_the_file_gives_the_estimate(model: str, cache: Path) -> None:
    assert token_counter(model, cache) == ByteEstimate()


@pytest.mark.parametrize("model", MODELS)
def test_a_cached_file_with_the_wrong_sha256_gives_the_estimate_and_stays(
    model: str, cache: Path, encodings_loaded: list[str]
) -> None:
    junk = cache_path(cache, MODELS[model])
    junk.write_bytes(b"not an encoding\n")
    assert token_counter(model, cache) == ByteEstimate()
    # tiktoken would delete the file and fetch it again; it was never asked.
    assert encodings_loaded == []
    assert junk.read_bytes() == b"not an encoding\n"


def test_with_the_real_tiktoken_a_wrong_cached_file_still_gives_the_estimate(cache: Path) -> None:
    # Were tiktoken asked, it would delete the file and reach for the network (cut off here).
    for model, encoding in MODELS.items():
        cache_path(cache, encoding).write_bytes(b"not an encoding\n")
        assert token_counter(model, cache) == ByteEstimate()
        assert cache_path(cache, encoding).read_bytes() == b"not an encoding\n"


def test_an_intact_file_in_tiktokens_cache_gives_tiktoken(
    cache: Path, monkeypatch: pytest.MonkeyPatch, encodings_loaded: list[str]
) -> None:
    # No real encoding file here: a file of our own stands in, with its hash in the table.
    data = b"c3RhbmQtaW4= 0\n"
    url, _ = tokens._ENCODING_FILES["o200k_base"]
    monkeypatch.setitem(tokens._ENCODING_FILES, "o200k_base", (url, sha256(data)))
    cache_path(cache, "o200k_base").write_bytes(data)
    counter = token_counter("gpt-4o", cache)
    assert isinstance(counter, TiktokenCounter)
    assert counter.name == "o200k_base"
    assert encodings_loaded == ["o200k_base"]


def test_an_intact_file_outside_tiktokens_cache_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encodings_loaded: list[str]
) -> None:
    # tiktoken reads the folder its environment names; given another, it would download.
    checked, tiktokens = tmp_path / "checked", tmp_path / "tiktoken"
    checked.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktokens))
    data = b"c3RhbmQtaW4= 0\n"
    url, _ = tokens._ENCODING_FILES["o200k_base"]
    monkeypatch.setitem(tokens._ENCODING_FILES, "o200k_base", (url, sha256(data)))
    cache_path(checked, "o200k_base").write_bytes(data)
    assert token_counter("gpt-4o", checked) == ByteEstimate()
    assert encodings_loaded == []


def test_the_encoding_files_are_those_tiktoken_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that passes this module's check is one tiktoken accepts without a download."""
    requested: list[tuple[str, str | None]] = []

    def load_tiktoken_bpe(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        requested.append((url, expected_hash))
        return {}

    monkeypatch.setattr(tiktoken_ext.openai_public, "load_tiktoken_bpe", load_tiktoken_bpe)
    loaded = {}
    for name in tokens._ENCODING_FILES:
        tiktoken_ext.openai_public.ENCODING_CONSTRUCTORS[name]()
        loaded[name] = requested[-1]
    assert loaded == tokens._ENCODING_FILES


def test_tiktoken_counts_special_tokens_in_a_document_as_text(encodings_loaded: list[str]) -> None:
    ranks = {bytes([b]): b for b in range(256)}
    encoding = tiktoken.Encoding(
        "test", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 256}
    )
    assert TiktokenCounter(encoding).count("a <|endoftext|>") == len("a <|endoftext|>")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TIKTOKEN_CACHE_DIR": "/a", "DATA_GYM_CACHE_DIR": "/b"}, Path("/a")),
        ({"DATA_GYM_CACHE_DIR": "/b"}, Path("/b")),
        ({"TIKTOKEN_CACHE_DIR": "", "DATA_GYM_CACHE_DIR": "/b"}, None),
        ({"DATA_GYM_CACHE_DIR": ""}, None),
        ({}, Path(tempfile.gettempdir()) / "data-gym-cache"),
    ],
)
def test_the_cache_folder_follows_tiktokens_rule(
    environ: dict[str, str], expected: Path | None
) -> None:
    assert tiktoken_cache_dir(environ) == expected


ENGLISH = (
    "The Republic of Astoria has four border crossings with Northland; trucks wait about two "
    "hours at the busiest one, and the border police patrol them together since 2019."
)


def test_the_estimate_over_counts_english() -> None:
    # About four characters make a token of English; the estimate allows three bytes.
    assert ByteEstimate().count(ENGLISH) >= math.ceil(len(ENGLISH) / 4) * 1.3


@pytest.mark.parametrize("text", ["中华人民共和国", "日本語のテキスト", "한국어 문장"])
def test_the_estimate_counts_a_token_or_more_per_cjk_character(text: str) -> None:
    assert ByteEstimate().count(text) >= len(text.replace(" ", ""))


def test_the_estimate_of_nothing_is_nothing() -> None:
    assert ByteEstimate().count("") == 0
    assert ByteEstimate().name == "estimate"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
