"""`chancery ingest / search / remove` on the reference corpus, as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.cli import run
from tests.test_service_http import HIT_FIELDS

PAGE_QUESTIONS = [
    ("When was the Kosovar Centre for Security Studies established?", 30),
    ("What is the ISBN of the report?", 30),
    ("Which recommendations does the report make to Kosovo and its allies?", 27),
    ("How does China's digital surveillance footprint grow in Serbia?", 14),
    ("Why does Serbia keep an observer status in the CSTO?", 12),
]


def chancery(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: exit codes and stderr as a user sees them."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, timeout=600
    )


def search_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    """`chancery search --json` in this process, which spares a model load per question."""
    code = run(["search", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    hits: list[dict[str, Any]] = json.loads(out)["hits"]
    return hits


@pytest.fixture(scope="module")
def corpus_index(corpus_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("index")
    result = chancery("ingest", *map(str, corpus_files), "--index", str(root))
    assert result.returncode == 0, result.stderr
    assert "2 added" in result.stdout
    return root


def test_reingest_embeds_nothing(corpus_index: Path, corpus_files: list[Path]) -> None:
    result = chancery("ingest", *map(str, corpus_files), "--index", str(corpus_index))
    assert result.returncode == 0, result.stderr
    assert "2 unchanged" in result.stdout and " 0 chunks embedded" in result.stdout


@pytest.mark.parametrize(("question", "page"), PAGE_QUESTIONS)
def test_search_finds_the_right_page(
    capsys: pytest.CaptureFixture[str], corpus_index: Path, question: str, page: int
) -> None:
    hits = search_json(capsys, question, "--index", str(corpus_index), "-k", "5")
    assert set(hits[0]) == HIT_FIELDS  # as /v1/search answers
    assert any(h["page_start"] <= page <= h["page_end"] for h in hits), [
        (h["page_start"], h["page_end"]) for h in hits
    ]


def test_search_modes_and_document_filter(
    capsys: pytest.CaptureFixture[str], corpus_index: Path
) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        hits = search_json(
            capsys,
            "Total Defense concept",
            "--index",
            str(corpus_index),
            "--mode",
            mode,
            "--doc",
            "kcss-report-news.txt",
        )
        assert hits and {h["doc"] for h in hits} == {"kcss-report-news.txt"}
    assert run(["search", "x", "--index", str(corpus_index), "--doc", "nope.pdf"]) == 1
    err = capsys.readouterr().err
    assert "no document 'nope.pdf'" in err and err.count("\n") == 1


def test_failed_files_are_named_and_make_the_exit_code_non_zero(
    corpus_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(corpus_dir / "kcss-report-news.txt", folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 broken")
    result = chancery("ingest", str(folder), "--index", str(tmp_path / "index"))
    assert result.returncode == 1
    assert "1 added" in result.stdout
    assert "failed: " in result.stderr and "broken.pdf" in result.stderr
    assert "Traceback" not in result.stderr


def test_remove_then_search_no_longer_finds_it(
    capsys: pytest.CaptureFixture[str], corpus_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "index"
    assert run(["ingest", str(corpus_dir / "kcss-report-news.txt"), "--index", str(root)]) == 0
    assert run(["remove", "kcss-report-news.txt", "--index", str(root)]) == 0
    assert "removed kcss-report-news.txt" in capsys.readouterr().out
    assert search_json(capsys, "KCSS statement", "--index", str(root)) == []


def test_empty_question_and_missing_index_are_one_sentence_errors(tmp_path: Path) -> None:
    empty = chancery("search", "  ", "--index", str(tmp_path))
    assert empty.returncode == 1 and empty.stderr.strip() == "chancery: the question is empty"
    missing = chancery("search", "what?", "--index", str(tmp_path / "none"))
    assert missing.returncode == 1 and "holds no index" in missing.stderr
    assert "Traceback" not in missing.stderr
