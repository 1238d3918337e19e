"""Errors a user can act on, each carrying its HTTP status and its CLI exit code.

The HTTP edge (one exception handler in `service.handlers`) and the CLI edge (`service.cli.run`)
are the only places that turn an error into a response or an exit code; both go through
`translate`. The lower layers cannot import this module, so their errors (`StoreError`,
`ModelError`, `LoadError`) are mapped here, keeping their message, which already says what to
do.
"""

from __future__ import annotations

from typing import ClassVar


class ChanceryError(Exception):
    """A failure to report in one sentence: as `{"detail": ...}` with `status` over HTTP, as a
    line on stderr and `exit_code` from the command line."""

    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1


class ForbiddenError(ChanceryError):
    """The caller's key does not allow what it asked for; the message says what would."""

    status = 403


class NotFoundError(ChanceryError):
    """A document, page or collection the caller named does not exist."""

    status = 404


class InvalidRequestError(ChanceryError):
    """The input cannot be used as given: a blank question, a file that cannot be read."""

    status = 422


class ConflictError(ChanceryError):
    """The request contradicts what the index holds: an id taken by another file name, an index
    only a rebuild may add to."""

    status = 409


class UnavailableError(ChanceryError):
    """No usable index or model: the service is up but cannot answer until someone acts."""

    status = 503


def lower_layer_errors() -> tuple[type[Exception], ...]:
    """The error families of ingest/ and index/ that `translate` maps."""
    # Imported on use: the store pulls in FAISS, which the CLI must not pay for to start.
    from index.model_files import ModelError
    from index.store import StoreError
    from ingest.raw import LoadError

    return (StoreError, ModelError, LoadError)


def translate(error: Exception) -> ChanceryError | None:
    """`error` as a ChanceryError (the cause kept as `__cause__`), or None when it is not one
    the user can act on: a bug, which the edges report as an internal error."""
    if isinstance(error, ChanceryError):
        return error
    from index.model_files import ModelError
    from index.store import StoreError, UnknownDocumentError
    from index.update import DocumentIdConflictError, LegacyDocumentIdsError
    from ingest.raw import LoadError

    translated: ChanceryError
    if isinstance(error, UnknownDocumentError):
        translated = NotFoundError(str(error))
    elif isinstance(error, DocumentIdConflictError | LegacyDocumentIdsError):
        translated = ConflictError(str(error))
    elif isinstance(error, StoreError | ModelError):
        translated = UnavailableError(str(error))
    elif isinstance(error, LoadError):
        translated = InvalidRequestError(str(error))
    else:
        return None
    translated.__cause__ = error
    return translated
