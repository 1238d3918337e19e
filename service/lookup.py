"""Documents and pages of one index version, looked up by id: a miss says what exists."""

from __future__ import annotations

from index.records import DocumentInfo
from index.store import Index
from ingest.models import Document, Page
from service.errors import NotFoundError


def document(index: Index, doc_id: str) -> Document:
    found = index.records.document(doc_id)
    if found is None:
        raise NotFoundError(f"no document '{doc_id}'")
    return found


def page(index: Index, doc_id: str, number: int) -> tuple[DocumentInfo, Page]:
    """The document's record and its page `number`, the stored text a citation points to."""
    records = index.records
    info = next((d for d in records.documents() if d.doc_id == doc_id), None)
    if info is None:
        raise NotFoundError(f"no document '{doc_id}'")
    # Range-check first: SQLite cannot even bind an integer past 64 bits.
    found = records.page(doc_id, number) if 1 <= number <= info.page_count else None
    if found is None:
        raise NotFoundError(
            f"'{doc_id}' has pages 1 to {info.page_count}; there is no page {number}"
        )
    return info, found
