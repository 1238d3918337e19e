"""A retrieved passage with what a client needs to open it: beside what the HTTP API's hits
carry, the document's id (which page lookups take, and which differs from the file name for
names that are not already plain) and title, and the printed label of its first page. The MCP
tools and the LangChain retriever hand out these."""

from __future__ import annotations

from pydantic import BaseModel, Field

from index.modes import Mode
from index.records import Records
from index.retrieve import Hit
from service.engine import Engine


class PassageOut(BaseModel):
    chunk_id: str
    doc_id: str = Field(
        description="The document's id, as get_page and /documents/{doc_id} take it."
    )
    doc: str = Field(description="The document's file name.")
    title: str
    page_start: int = Field(
        description="1-based page the passage starts on, as a PDF viewer shows."
    )
    page_end: int = Field(description="1-based page it ends on (a passage can cross a page break).")
    page_label: str | None = Field(
        description="Printed label of page_start, when the file has them."
    )
    heading: str = Field(description="The heading path of its section, ' > ' between levels.")
    text: str
    score: float


def passage_out(hit: Hit, records: Records) -> PassageOut:
    """`hit` as a passage; `records` are those of the index version it was found in."""
    chunk = hit.chunk
    first = records.page(chunk.doc_id, chunk.page_start)
    return PassageOut(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        doc=hit.file_name,
        title=hit.title,
        page_start=chunk.page_start,
        page_end=chunk.page_end,
        page_label=first.label if first is not None else None,
        heading=hit.heading,
        text=chunk.text,
        score=round(hit.score, 6),
    )


class PassagesFound(BaseModel):
    passages: list[PassageOut]
    collection: str = Field(description="The collection searched.")
    index_version: str


def search_passages(
    engine: Engine,
    question: str,
    k: int,
    mode: Mode = Mode.HYBRID,
    docs: list[str] | None = None,
    distinct_pages: bool = True,
) -> PassagesFound:
    """The best passages for `question`, as `Engine.search` finds them (one per page unless
    `distinct_pages` is false); the page labels are read from the same index version as the
    hits, which a switch between two lookups could break."""
    snapshot = engine.snapshot()
    found = snapshot.retriever.search(question, k, mode, docs, distinct_pages)
    records = snapshot.index.records
    return PassagesFound(
        passages=[passage_out(hit, records) for hit in found.hits],
        collection=engine.collection,
        index_version=snapshot.index.version,
    )
