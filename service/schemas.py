"""Request and response models of the HTTP API (and of `chancery ask --json`).

Request models are strict and closed: a field of the wrong type or a field they do not know is
refused, not coerced or dropped, and what they check is what the OpenAPI schema states.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.config import JsonDict

from index.modes import Mode
from service.collections import NAME_PATTERN, RESERVED_NAMES
from service.originals import DocFormat

MAX_QUESTION_CHARS = 2000
MAX_DOCS = 100
MAX_DOC_NAME_CHARS = 1024
"""Far above any file name (255 bytes on common file systems) and the id made from one (its
slug, a mark and a 10-character hash)."""

NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
"""A character `str.strip()` keeps, spelled out: `\\s` differs between regex engines (Python's
counts \\x1c-\\x1f, JSON Schema's and Rust's do not), and a client must read the same rule the
server applies."""


def _valid_unicode(value: object) -> object:
    # JSON can carry a lone surrogate ("\ud800"); no encoder downstream (tokenizer, SQLite, the
    # JSON of an error that quotes the text) accepts one, so it stops here.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"the text contains invalid Unicode: a lone surrogate "
                f"(U+{ord(value[exc.start]):04X}) at character {exc.start + 1}"
            ) from exc
    return value


CleanText = Annotated[str, BeforeValidator(_valid_unicode)]
"""A string every encoder accepts: no lone UTF-16 surrogates."""


def _sensible_question(value: str) -> str:
    if len(value) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"the question has {len(value)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    value = value.strip()
    if not value:
        raise ValueError("the question is empty")
    return value


Question = Annotated[
    CleanText,
    AfterValidator(_sensible_question),
    Field(
        description="The question, in plain words: not blank, at most 2,000 characters.",
        # `_sensible_question` checks these itself, to say what is wrong in a sentence.
        json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION_CHARS, "pattern": NOT_BLANK},
    ),
]
DocName = Annotated[CleanText, Field(min_length=1, max_length=MAX_DOC_NAME_CHARS)]


def _whole_number(value: object) -> object:
    # JSON has one kind of number, and to JSON Schema 5.0 is the integer 5; true and "5" are not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_whole_number), Field(strict=True)]
"""An integer, written 5 or 5.0; never a boolean or a string."""


class _Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    docs: list[DocName] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_DOCS,
        description="Only these documents (ids or file names).",
    )


AnswererName = Literal["extractive", "generative"]


class AskRequest(_Question):
    k: Count = Field(default=8, ge=1, le=50, description="Passages to read the answer from.")
    stream: bool = Field(
        default=False,
        strict=True,
        description="Answer as server-sent events (text/event-stream): `passages`, then one "
        "`sentence` per answer sentence, each once its citations are verified, or one "
        "`abstained`, then `done`.",
    )
    answerer: AnswererName | None = Field(
        default=None,
        description="`extractive` (sentences quoted from the documents) or `generative` (an "
        "LLM's sentences, each verified against the passages it cites; 400 when no LLM is "
        "configured). Default: the service's setting.",
    )


class SearchRequest(_Question):
    k: Count = Field(default=10, ge=1, le=100, description="Passages to return.")
    mode: Mode = Mode.HYBRID
    distinct_pages: bool = Field(
        default=True,
        strict=True,
        description="At most one passage per page (the best one, by the page it starts on), so "
        "that k passages show k places in the documents; false: every passage, however many "
        "start on one page.",
    )


class HitOut(BaseModel):
    chunk_id: str
    doc_id: str = Field(description="The document's id, as /v1/documents/{doc_id} takes it.")
    doc: str = Field(description="The document's file name.")
    title: str
    page_start: int = Field(description="1-based page it starts on, as a PDF viewer shows.")
    page_end: int = Field(description="1-based page it ends on (a passage can cross a page break).")
    page_label: str | None = Field(description="Printed label of page_start, if the file has them.")
    heading: str
    text: str
    score: float


class CitationOut(BaseModel):
    n: int = Field(description="The marker [n] in the answer.")
    doc_id: str = Field(description="The document's id, as /v1/documents/{doc_id} takes it.")
    doc: str = Field(description="The document's file name.")
    title: str
    page: int = Field(description="1-based page, as a PDF viewer shows it.")
    page_label: str | None = Field(description="Printed page label, when the file has them.")
    quote: str = Field(description="Verbatim text of that page.")
    quote_start: int = Field(
        description="Offset of the quote in the page's stored text (/v1/documents/{doc_id}/pages/"
        "{page}): text[quote_start:quote_end] == quote."
    )
    quote_end: int
    chunk_id: str
    score: float
    answer_start: int = Field(
        description="Offset in the answer of the sentence this citation supports, its marker "
        "[n] excluded: answer[answer_start:answer_end] is that sentence. A citation several "
        "sentences share points to the first."
    )
    answer_end: int


class Provenance(BaseModel):
    """How an answer came to be."""

    answerer: AnswererName = Field(description="The answerer that wrote the answer.")
    fallback: str | None = Field(
        description="Why the answerer asked for did not write it, when another stands in (the "
        "LLM failed, or none of its sentences verified); null otherwise."
    )
    dropped: list[str] = Field(
        description="Why each sentence of the LLM's draft that failed verification was left "
        "out; the sentences themselves never leave the service."
    )
    notes: list[str] = Field(description="What else a reader should know, e.g. a draft cut off.")


class AskResponse(Provenance):
    answer: str
    abstained: bool
    citations: list[CitationOut]
    passages: list[HitOut]
    collection: str = Field(description="The collection that answered.")
    index_version: str
    timings_ms: dict[str, float]


class PassagesEvent(BaseModel):
    """The `passages` event of a streamed answer: what the answer is read from."""

    passages: list[HitOut]


class SentenceEvent(BaseModel):
    """A `sentence` event: one sentence of the answer, marker excluded, and its citations."""

    text: str
    citations: list[CitationOut]


class AbstainedEvent(BaseModel):
    """The `abstained` event, in place of sentences: why there is no answer."""

    answer: str
    passages: list[HitOut]


class ErrorEvent(BaseModel):
    """The `error` event, in place of `done`, when the answer fails after the stream began."""

    detail: str


class DoneEvent(Provenance):
    """The `done` event that ends every stream."""

    collection: str
    index_version: str
    timings_ms: dict[str, float]


class SearchResponse(BaseModel):
    hits: list[HitOut]
    collection: str = Field(description="The collection searched.")
    index_version: str


class DocumentOut(BaseModel):
    doc_id: str
    file_name: str
    title: str
    sha256: str
    pages: int
    format: DocFormat | None = Field(
        description="What the file was read as, from its name: pdf, txt, md, html or docx."
    )
    bytes: int | None = Field(
        description="The size of the original file; null when the collection does not keep it "
        "(a bare index folder, or a document ingested before originals were kept)."
    )
    ingested_at: datetime | None = Field(
        description="When the collection kept these bytes under this name (the kept original's "
        "time); null when it does not keep the original."
    )
    has_page_images: bool = Field(
        description="A PDF whose original is kept: /documents/{doc_id}/pages/{n}/image renders "
        "its pages. Otherwise a page viewer shows the page's text."
    )


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


class BoxOut(BaseModel):
    """A rectangle as fractions (0 to 1) of the page image's width and height, from its top
    left corner: multiply by the size the image is shown at."""

    left: float
    top: float
    width: float
    height: float


class HighlightsOut(BaseModel):
    doc_id: str
    page: int = Field(description="1-based page, as a PDF viewer shows it.")
    start: int = Field(
        description="Offset of the quote in the page's stored text (/documents/{doc_id}/pages/"
        "{page}): text[start:end] is the quote, for documents shown as text."
    )
    end: int
    width_pt: float | None = Field(
        description="The displayed page's width in points; null when the page has no image."
    )
    height_pt: float | None
    boxes: list[BoxOut] = Field(
        description="One box per line of the quote, in reading order, from PDFium's character "
        "boxes. Empty when the page has no image (not a PDF, or its original is not kept) or "
        "PDFium's text of the page does not match the stored text there: mark the text instead."
    )


class ErrorOut(BaseModel):
    detail: str


class EmbedderOut(BaseModel):
    model_id: str
    weights_sha256: str
    dimension: int
    max_tokens: int


class ChunkingOut(BaseModel):
    size: int
    overlap: int
    max_tokens: int


class VectorIndexOut(BaseModel):
    kind: str = Field(description='"flat" or "ivf".')
    lists: int
    probes: int


class ManifestDocumentOut(BaseModel):
    doc_id: str
    file_name: str
    title: str
    sha256: str
    pages: int
    chunks: int


class IndexResponse(BaseModel):
    """The manifest of the index in service (`index.store.Manifest`) and its version."""

    version: str
    schema_version: int
    embedder: EmbedderOut
    chunking: ChunkingOut
    vector_index: VectorIndexOut
    documents: list[ManifestDocumentOut]
    chunk_count: int
    created_at: str
    libraries: dict[str, str] | None = Field(
        default=None,
        description="Python's version and each library's that built the index; shown to admin "
        "keys, and on a server without keys (which listens on loopback only). Null for other "
        "keys, whose `embedder.model_id` also names a local model folder without its path.",
    )


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready"]
    index_version: str


NOT_RESERVED: JsonDict = {"not": {"enum": [*sorted(RESERVED_NAMES)]}}
"""Names Windows reserves for devices match the pattern but are refused, so that a data root can
be copied anywhere; the schema says so."""
COLLECTION_NAME_HELP = (
    "1 to 63 characters: lower-case letters a-z, digits, '-' and '_', starting with a letter or "
    "a digit; not a Windows device name (con, nul, com1, ...)."
)


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        strict=True,
        pattern=NAME_PATTERN,
        description=COLLECTION_NAME_HELP,
        json_schema_extra=NOT_RESERVED,
    )


class CollectionOut(BaseModel):
    name: str
    index_version: str | None = Field(
        description="The index version in service; null before the first ingest."
    )
    documents: int


class CollectionsResponse(BaseModel):
    collections: list[CollectionOut]


JobState = Literal["queued", "running", "succeeded", "failed"]


class JobAccepted(BaseModel):
    job_id: str
    state: JobState
    url: str = Field(description="Where the job's state is: /v1/jobs/{job_id}.")


class FileOut(BaseModel):
    name: str = Field(description="The document's file name, as stored (made safe).")
    status: Literal["ok", "failed", "skipped"]
    reason: str = Field(description="Why the file failed or was skipped; empty when ok.")
    pages: int
    chunks: int
    doc_id: str | None = Field(description="The document's id, when the file was ingested.")


class JobOut(BaseModel):
    job_id: str
    collection: str
    state: JobState = Field(
        description="queued, running, then succeeded (each file's status says whether it was "
        "ingested) or failed (`error` says why; the collection is unchanged unless it says so)."
    )
    files: list[FileOut]
    removed: list[str] = Field(description="Document ids the job removed (once it succeeded).")
    index_version: str | None = Field(
        description="The index version the job wrote; null until then, or when it changed nothing."
    )
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
