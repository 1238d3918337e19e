"""Gold sets: JSON Lines of questions with their answers and the pages that hold the evidence.

One question per line:

    {"id": "q-001", "question": "...", "answer": "...", "answerable": true, "type": "factual",
     "evidence": [{"doc": "report.pdf", "page": 11, "quote": "verbatim text of page 11"}]}

`doc` is the file name, `page` the 1-based page as a PDF viewer shows it, `quote` a verbatim span
of that page's text. Unanswerable questions have `"answerable": false` and no evidence. An
optional `"reworded": true` marks questions worded in the reader's terms, not the report's.

Gold sets made elsewhere may say what the evidence reads without quoting it: an item with
`"text"` instead of `"quote"` (FinanceBench's extracted text, often a table flattened into lines)
counts at page level only. Every metric scores evidence by page, so such a question is scored
like any other; only the checks that look a quote up on its page (`misplaced_quotes`) pass it by.
Files are named as the service names them to a client (the file name, not the index's doc id),
so FinanceBench's `questions.jsonl` loads as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)


class GoldError(Exception):
    """A gold file is malformed; the message names the line and the field."""


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    doc: str = Field(min_length=1)
    page: int = Field(ge=1)
    quote: str | None = Field(default=None, min_length=1)
    """A verbatim span of the page's text."""
    text: str | None = Field(default=None, min_length=1)
    """What the page says, not verbatim: for a person reading a report, never looked up."""

    @model_validator(mode="after")
    def _quoted_or_described(self) -> Evidence:
        if self.quote is None and self.text is None:
            raise ValueError("an evidence entry needs a 'quote' (verbatim) or a 'text'")
        return self

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A run of a quoted gold set writes its evidence as it always did.
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if value is not None}


class GoldQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str
    answerable: bool
    type: str = Field(min_length=1)
    evidence: list[Evidence]
    reworded: bool = False

    @property
    def page_level(self) -> bool:
        """Whether its evidence names pages without quoting them (none of it is verbatim)."""
        return bool(self.evidence) and all(item.quote is None for item in self.evidence)

    @model_validator(mode="after")
    def _evidence_matches_answerability(self) -> GoldQuestion:
        if self.answerable and not self.evidence:
            raise ValueError("an answerable question needs at least one evidence entry")
        if not self.answerable and self.evidence:
            raise ValueError("an unanswerable question must have no evidence")
        return self


def load_gold(path: Path) -> list[GoldQuestion]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GoldError(f"cannot read the gold file {path}: {exc.strerror}") from exc
    questions: list[GoldQuestion] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            question = GoldQuestion.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise GoldError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
        except ValidationError as exc:
            problem = exc.errors()[0]
            field = ".".join(str(part) for part in problem["loc"]) or "(line)"
            message = str(problem["msg"]).removeprefix("Value error, ")
            raise GoldError(f"{path}, line {number}: field '{field}': {message}") from exc
        if question.id in seen:
            first = seen[question.id]
            raise GoldError(
                f"{path}, line {number}: field 'id': '{question.id}' repeats line {first}"
            )
        seen[question.id] = number
        questions.append(question)
    if not questions:
        raise GoldError(f"{path} holds no questions")
    return questions


def misplaced_quotes(
    questions: list[GoldQuestion], page_text: Callable[[str, int], str | None]
) -> list[str]:
    """Evidence quotes that are not verbatim on their stated page, and evidence pages that do not
    exist, described for a person. Evidence given as `text` is checked for its page only."""
    problems = []
    for question in questions:
        for item in question.evidence:
            text = page_text(item.doc, item.page)
            if text is None:
                problems.append(f"{question.id}: {item.doc} has no page {item.page}")
            elif item.quote is not None and item.quote not in text:
                problems.append(
                    f"{question.id}: quote not on {item.doc} p. {item.page}: {item.quote[:60]!r}"
                )
    return problems
