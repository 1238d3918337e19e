"""Smoke test of the generative answerer against a real LLM server (`make llm-smoke`).

Indexes the sample documents, starts `chancery serve` with the generative answerer pointed at
an OpenAI-compatible server (`make llm-smoke` runs SmolLM2-135M under llama-cpp-python's
server), asks a few questions on /v1/ask, plain and streamed, and prints for each whether the
answer is the LLM's (verified sentences), a fallback or an abstention, and why.

A 135M model mostly writes sentences that fail verification, so fallbacks are expected; what
must hold whatever the model writes is that every request is answered 200 (never a 5xx; an
`error` event in a stream counts as one) and that every sentence the service sends carries a
citation whose quote stands verbatim on its page. Exit status 1 when either fails, 2 when the
LLM server is not reachable.

Known quirks of llama-cpp-python's server, which Chancery's client works around:
`response_format` json_schema is answered with a 500 (json_object, with a schema, works), and
`max_completion_tokens` is ignored (the token limit goes out as `max_tokens`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from service.subprocess_server import ServerStartError, child_environment, running_server

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [
    REPO / "samples" / "northland-national-security-strategy.pdf",
    REPO / "samples" / "northland-energy-brief.md",
    REPO / "samples" / "astoria-relations-note.html",
]
INDEX = REPO / "var" / "llm-smoke-index"
LOGS = REPO / "var" / "llm-smoke"
QUESTIONS = [
    ("Who is responsible for coordinating the implementation of the strategy?", False),
    ("Who is responsible for coordinating the implementation of the strategy?", True),
    ("How much gas can the LNG terminal at Ærøby receive each year?", False),
    ("How many diplomats did Astoria expel in February 2025?", False),
]
"""(question, streamed): three questions, the first asked twice, plain and streamed."""
ASK_SECONDS = 900.0
"""One answer on one CPU thread: prompt reading and writing by a small model, generously."""
_MARKERS = re.compile(r"(?:\s*\[(\d+)\])+")


@dataclass
class Outcome:
    question: str
    streamed: bool
    status: int
    seconds: float
    answerer: str | None = None
    fallback: str | None = None
    abstained: bool = False
    answer: str = ""
    sentences: int = 0
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.status != 200:
            return f"HTTP {self.status}" if self.status else "no response"
        if self.abstained:
            return "abstention"
        if self.answerer == "generative" and self.fallback is None:
            return "generative"
        return f"fallback to {self.answerer}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm-base-url", required=True, help="e.g. http://127.0.0.1:8765/v1")
    parser.add_argument("--llm-model", help="default: the first model the server lists")
    parser.add_argument("--llm-context-tokens", type=int, default=4096)
    parser.add_argument("--llm-timeout-s", type=float, default=300.0)
    parser.add_argument("--wait-s", type=float, default=60.0, help="for the LLM server")
    args = parser.parse_args(argv)

    model = args.llm_model or first_model(args.llm_base_url, args.wait_s)
    if model is None:
        print(f"no LLM server answers {args.llm_base_url}/models", file=sys.stderr)
        return 2
    LOGS.mkdir(parents=True, exist_ok=True)
    ingest()
    env = {
        "CHANCERY_ANSWERER": "generative",
        "CHANCERY_LLM_BASE_URL": args.llm_base_url,
        "CHANCERY_LLM_MODEL": model,
        "CHANCERY_LLM_CONTEXT_TOKENS": str(args.llm_context_tokens),
        # A CPU thread reads a prompt of a few thousand tokens in tens of seconds.
        "CHANCERY_LLM_TIMEOUT_S": str(args.llm_timeout_s),
    }
    log = LOGS / "serve.log"
    print(f"LLM {model} at {args.llm_base_url}; service log {log.relative_to(REPO)}")
    outcomes = []
    try:
        with (
            running_server(INDEX, log, env=env) as base_url,
            httpx.Client(base_url=base_url, timeout=ASK_SECONDS) as client,
        ):
            for question, streamed in QUESTIONS:
                started = time.monotonic()
                try:
                    outcome = ask_streamed(client, question) if streamed else ask(client, question)
                    outcome.problems += unverified(client, outcome)
                except httpx.HTTPError as exc:
                    # A connection the service dropped: as much a failure as a 5xx.
                    outcome = Outcome(question, streamed, 0, time.monotonic() - started)
                    outcome.problems.append(f"no answer: {type(exc).__name__}: {exc}")
                outcomes.append(outcome)
                report(outcome)
    except ServerStartError as exc:
        print(f"chancery serve did not start: {exc}", file=sys.stderr)
        return 1
    failed = [o for o in outcomes if o.problems]
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} answers passed")
    return 1 if failed else 0


def first_model(base_url: str, wait_s: float) -> str | None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            response = httpx.get(f"{base_url}/models", timeout=10)
            if response.status_code == 200:
                models: list[dict[str, Any]] = response.json()["data"]
                return str(models[0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError):
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(1)


def ingest() -> None:
    # The `chancery` of the interpreter running this script: .venv/bin/chancery under make.
    chancery = Path(sys.executable).with_name("chancery")
    command = [str(chancery), "ingest", *map(str, SAMPLES), "--index", str(INDEX)]
    subprocess.run(command, check=True, env=child_environment(), cwd=REPO)


def ask(client: httpx.Client, question: str) -> Outcome:
    started = time.monotonic()
    response = client.post("/v1/ask", json={"question": question})
    outcome = Outcome(question, False, response.status_code, time.monotonic() - started)
    if response.status_code != 200:
        outcome.problems.append(f"HTTP {response.status_code}: {response.text[:300]}")
        return outcome
    body = response.json()
    read_provenance(outcome, body)
    outcome.abstained = bool(body["abstained"])
    outcome.answer = body["answer"]
    if not outcome.abstained:
        outcome.problems += uncited(body["answer"], body["citations"])
        outcome.sentences = len(_MARKERS.findall(body["answer"]))
    outcome.citations = body["citations"]
    return outcome


def ask_streamed(client: httpx.Client, question: str) -> Outcome:
    started = time.monotonic()
    citations: list[dict[str, Any]] = []
    texts: list[str] = []
    with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as stream:
        outcome = Outcome(question, True, stream.status_code, 0.0)
        if stream.status_code != 200:
            stream.read()
            outcome.problems.append(f"HTTP {stream.status_code}: {stream.text[:300]}")
            return outcome
        for name, data in events(stream.iter_lines()):
            if name == "sentence":
                texts.append(data["text"])
                citations += data["citations"]
                if not data["citations"]:
                    outcome.problems.append(f"a sentence without a citation: {data['text']!r}")
            elif name == "abstained":
                outcome.abstained = True
                outcome.answer = data["answer"]
            elif name == "done":
                read_provenance(outcome, data)
            elif name == "error":
                outcome.problems.append(f"an error event (a 5xx after the status): {data}")
    outcome.seconds = time.monotonic() - started
    if not outcome.abstained:
        outcome.answer = " ".join(texts)
        outcome.sentences = len(texts)
    outcome.citations = citations
    return outcome


def events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) of a server-sent event stream whose data lines are JSON."""
    name = "message"
    for line in lines:
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield name, json.loads(line.removeprefix("data:"))
        elif not line:
            name = "message"


def read_provenance(outcome: Outcome, data: dict[str, Any]) -> None:
    outcome.answerer = data.get("answerer")
    outcome.fallback = data.get("fallback")
    outcome.dropped = list(data.get("dropped") or [])
    outcome.notes = list(data.get("notes") or [])


def uncited(answer: str, citations: list[dict[str, Any]]) -> list[str]:
    """Text of the answer that no marker closes, and markers that name no citation."""
    problems = []
    known = {c["n"] for c in citations}
    ends = [match.end() for match in _MARKERS.finditer(answer)]
    tail = answer[ends[-1] if ends else 0 :].strip()
    if tail:
        problems.append(f"answer text without a marker: {tail!r}")
    for match in _MARKERS.finditer(answer):
        for n in re.findall(r"\d+", match.group(0)):
            if int(n) not in known:
                problems.append(f"marker [{n}] names no citation")
    return problems


def unverified(client: httpx.Client, outcome: Outcome) -> list[str]:
    """Citations whose quote is not at text[quote_start:quote_end] of the page they name."""
    problems = []
    pages: dict[tuple[str, int], str] = {}
    for citation in outcome.citations:
        key = (citation["doc_id"], citation["page"])
        if key not in pages:
            url = f"/v1/documents/{quote(key[0], safe='')}/pages/{key[1]}"
            response = client.get(url)
            if response.status_code != 200:
                problems.append(f"[{citation['n']}] {url}: HTTP {response.status_code}")
                continue
            pages[key] = response.json()["text"]
        text = pages[key]
        if text[citation["quote_start"] : citation["quote_end"]] != citation["quote"]:
            problems.append(
                f"[{citation['n']}] quote not on {citation['doc']} page {citation['page']}: "
                f"{citation['quote'][:80]!r}"
            )
    return problems


def report(outcome: Outcome) -> None:
    how = "streamed" if outcome.streamed else "JSON"
    print(f"\n{outcome.question} ({how}, {outcome.seconds:.1f} s)")
    line = f"  {outcome.kind}"
    if outcome.fallback:
        line += f" ({outcome.fallback})"
    if outcome.status == 200 and not outcome.abstained:
        line += f", cited sentences: {outcome.sentences}"
    print(line)
    if outcome.answer:
        print(f"  answer: {outcome.answer[:400]}")
    for reason in outcome.dropped:
        print(f"  dropped: {reason}")
    for note in outcome.notes:
        print(f"  note: {note}")
    for problem in outcome.problems:
        print(f"  FAIL: {problem}")


if __name__ == "__main__":
    sys.exit(main())
