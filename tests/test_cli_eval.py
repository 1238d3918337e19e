"""`chancery eval run` as an operator runs it: in its own process, in-process target, with none
of the settings the test suite sets for the apps it builds (trusted host names, rate limits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from service.keys import KeyStore, Scope
from tests.conftest import REPO, SAMPLES
from tests.served import served_data_root

SAMPLE = SAMPLES / "northland-energy-brief.md"
QUESTIONS = 100
"""More requests than the default rate limit's burst (40) lets one client make at once."""


def _chancery(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHANCERY_")}
    environment.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=600,
    )


def _gold(path: Path, count: int) -> Path:
    rows = [
        {
            "id": f"q{number:03d}",
            "question": f"What did the {number}th winter of the plan cost in Velmark crowns?",
            "answer": "",
            "answerable": False,
            "type": "unanswerable",
            "evidence": [],
        }
        for number in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_eval_runs_in_process_with_the_default_settings(tmp_path: Path) -> None:
    index = tmp_path / "index"
    ingest = _chancery("ingest", str(SAMPLE), "--index", str(index))
    assert ingest.returncode == 0, ingest.stderr
    gold = _gold(tmp_path / "gold.jsonl", QUESTIONS)

    run = _chancery("eval", "run", str(gold), "--index", str(index), "--out", str(tmp_path / "run"))

    assert run.returncode == 0, run.stderr
    scored = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(scored["rows"]) == QUESTIONS


def test_eval_of_a_server_with_keys_sends_the_key_it_is_given(tmp_path: Path) -> None:
    tokens: list[str] = []

    def make_key(data: Path) -> None:
        store = KeyStore(data)
        try:
            tokens.append(store.create("eval", ["default"], Scope.READ)[1])
        finally:
            store.close()

    gold = _gold(tmp_path / "gold.jsonl", 3)
    with served_data_root([SAMPLE], tmp_path / "served", prepare=make_key) as url:
        refused = _chancery("eval", "run", str(gold), "--url", url, "--out", str(tmp_path / "a"))
        keyed = _chancery(
            "eval",
            "run",
            str(gold),
            "--url",
            url,
            "--api-key",
            tokens[0],
            "--out",
            str(tmp_path / "b"),
        )
    assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr
    assert keyed.returncode == 0, keyed.stderr
    assert len(json.loads((tmp_path / "b" / "run.json").read_text())["rows"]) == 3
