"""Document ids from file names: readable in any script, and never shared by two file names.

A name that is already its own slug (NFC, lower case, only letters, digits and `._-`) is its own
id, so `northland-energy-brief.md` keeps the id it always had. Any other name becomes its slug
plus `~` and a hash of the name's exact bytes: `Report 2024.pdf` -> `report-2024~<hash>.pdf`.
A slug never holds `~`, so an id of one kind can never equal an id of the other, and two names
differing by case, spacing or normalization form get different hashes.
"""

from __future__ import annotations

import hashlib
import unicodedata

HASH_CHARS = 10
"""40 bits of SHA-256: a collision needs about a million names in one index, and even then
`update_index` refuses it instead of overwriting."""
_MARK = "~"
_KEPT_PUNCTUATION = frozenset("._-")
_TRIM = "-."
_FALLBACK_STEM = "document"


def make_doc_id(file_name: str) -> str:
    """A stable, URL-path-safe id for `file_name` (which may carry surrogate-escaped bytes)."""
    slug = _slug(file_name)
    if slug and slug == file_name:
        return file_name
    stem, suffix = _split_suffix(file_name)
    digest = hashlib.sha256(raw_name(file_name)).hexdigest()[:HASH_CHARS]
    suffix_slug = _slug(suffix)
    ending = f".{suffix_slug}" if suffix_slug else ""
    return f"{_slug(stem) or _FALLBACK_STEM}{_MARK}{digest}{ending}"


def is_legacy_doc_id(doc_id: str, file_name: str) -> bool:
    """Whether an index stored `doc_id` for `file_name` under the old, colliding scheme.

    The old scheme never produced `~`, and where it left a name unchanged this one does too; the
    hash itself cannot be checked when the stored name lost undecodable bytes.
    """
    return _MARK not in doc_id and doc_id != file_name


def raw_name(file_name: str) -> bytes:
    """The bytes of the name on disk: Python hands undecodable bytes over as lone surrogates."""
    try:
        return file_name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A lone surrogate outside the escape range did not come from disk bytes; keep it
        # distinct all the same.
        return file_name.encode("utf-8", "surrogatepass")


def readable_name(file_name: str) -> str:
    """`file_name` as valid Unicode (U+FFFD for undecodable bytes), safe for JSON and SQLite."""
    return raw_name(file_name).decode("utf-8", "replace")


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    pieces: list[str] = []
    for char in folded:
        if char in _KEPT_PUNCTUATION or unicodedata.category(char)[0] in "LMN":
            pieces.append(char)
        elif not pieces or pieces[-1] != "-":
            pieces.append("-")
    return "".join(pieces).strip(_TRIM)


def _split_suffix(file_name: str) -> tuple[str, str]:
    """('Report 2024', 'pdf') for 'Report 2024.pdf'; a leading or trailing dot is no suffix."""
    dot = file_name.rfind(".")
    if 0 < dot < len(file_name) - 1:
        return file_name[:dot], file_name[dot + 1 :]
    return file_name, ""
