"""Request and response models of the HTTP API (and of `chancery ask --json`)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from index.retrieve import Mode

MAX_QUESTION_CHARS = 2000


class _Question(BaseModel):
    question: str = Field(description="The question, in plain words.")
    docs: list[str] | None = Field(
        default=None, min_length=1, description="Only these documents (ids or file names)."
    )

    @field_validator("question")
    @classmethod
    def _sensible(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the question is empty")
        if len(value) > MAX_QUESTION_CHARS:
            raise ValueError(
                f"the question has {len(value)} characters; the limit is {MAX_QUESTION_CHARS}"
            )
        return value


class AskRequest(_Question):
    k: int = Field(default=8, ge=1, le=50, description="Passages to read the answer from.")


class SearchRequest(_Question):
    k: int = Field(default=10, ge=1, le=100)
    mode: Mode = Mode.HYBRID


class HitOut(BaseModel):
    chunk_id: str
    doc: str
    page_start: int
    page_end: int
    heading: str
    text: str
    score: float


class CitationOut(BaseModel):
    n: int = Field(description="The marker [n] in the answer.")
    doc: str
    title: str
    page: int = Field(description="1-based page, as a PDF viewer shows it.")
    page_label: str | None = Field(description="Printed page label, when the file has them.")
    quote: str = Field(description="Verbatim text of that page.")
    chunk_id: str
    score: float


class AskResponse(BaseModel):
    answer: str
    abstained: bool
    citations: list[CitationOut]
    passages: list[HitOut]
    index_version: str
    timings_ms: dict[str, float]


class SearchResponse(BaseModel):
    hits: list[HitOut]


class DocumentOut(BaseModel):
    doc_id: str
    file_name: str
    title: str
    sha256: str
    pages: int


class DocumentsResponse(BaseModel):
    documents: list[DocumentOut]
    index_version: str


class HeadingOut(BaseModel):
    text: str
    level: int


class PageSummary(BaseModel):
    number: int
    label: str | None
    headings: list[HeadingOut]


class DocumentDetail(DocumentOut):
    page_list: list[PageSummary]


class PageOut(BaseModel):
    doc_id: str
    doc: str
    number: int
    label: str | None
    text: str
    headings: list[HeadingOut]


class ErrorOut(BaseModel):
    detail: str
