"""The `chancery` command. Errors end as one sentence on stderr and a non-zero exit code."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from index.model_files import ModelError
from ingest.chunking import chunk_document
from ingest.loaders import load_document
from ingest.models import Chunk, Document
from ingest.raw import LoadError
from service.model import tokenizer_and_config
from service.settings import Settings

app = typer.Typer(
    name="chancery",
    help="Question answering over reports, every claim cited to a page.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_PREVIEW_CHARS = 90


class CliError(Exception):
    """A failure to report to the user as one sentence."""


@app.callback()
def _root() -> None:
    """Question answering over reports, every claim cited to a page."""


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="A PDF, text, Markdown, HTML or DOCX file.")],
    chunks: Annotated[bool, typer.Option("--chunks", help="Show chunks instead of pages.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show what the ingester sees in FILE: its pages, or its chunks."""
    settings = Settings()
    try:
        loaded = load_document(file, settings.max_file_bytes)
    except LoadError as exc:
        raise CliError(f"cannot read {file}: {exc}") from exc
    document = loaded.document
    document_chunks: list[Chunk] = []
    if chunks:
        tokenizer, config = tokenizer_and_config(settings)
        document_chunks = chunk_document(document, tokenizer, config)
    if as_json:
        payload: dict[str, Any] = {
            "document": _document_json(document),
            "warnings": list(loaded.warnings),
        }
        if chunks:
            payload["chunks"] = [asdict(chunk) for chunk in document_chunks]
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{document.file_name}: {document.title!r}, {len(document.pages)} pages, "
        f"sha256 {document.sha256[:12]}…"
    )
    for warning in loaded.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if chunks:
        _print_chunks(document_chunks)
    else:
        _print_pages(document)


def _document_json(document: Document) -> dict[str, Any]:
    data = asdict(document)
    for page in data["pages"]:
        page["headings"] = [
            {"text": h["text"], "level": h["level"], "start": h["start"]} for h in page["headings"]
        ]
    return data


def _print_pages(document: Document) -> None:
    typer.echo(f"{'page':>4}  {'label':<6} first words / headings")
    for page in document.pages:
        label = page.label or "-"
        preview = _preview(page.body) or "(no text)"
        typer.echo(f"{page.number:>4}  {label:<6} {preview}")
        for heading in page.headings:
            indent = "  " * (heading.level - 1)
            typer.echo(f"{'':>4}  {'':<6} {indent}# {heading.text}")


def _print_chunks(chunks: list[Chunk]) -> None:
    for number, chunk in enumerate(chunks, start=1):
        pages = (
            f"p. {chunk.page_start}"
            if chunk.page_start == chunk.page_end
            else f"pp. {chunk.page_start}-{chunk.page_end}"
        )
        heading = " > ".join(chunk.heading_path) or "(no heading)"
        typer.echo(f"[{number}] {chunk.chunk_id}  {pages}  {chunk.token_count} tokens  {heading}")
        typer.echo(f"    {chunk.text}\n")


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


def main() -> None:
    try:
        app(standalone_mode=False)
    except (CliError, ModelError) as exc:
        typer.echo(f"chancery: {exc}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("chancery: aborted", err=True)
        sys.exit(130)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code if isinstance(code, int) else 1)
    except Exception as exc:
        # click's usage errors arrive here in non-standalone mode and carry their own message.
        show = getattr(exc, "format_message", None)
        message = show() if callable(show) else f"internal error: {type(exc).__name__}: {exc}"
        typer.echo(f"chancery: {message}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
