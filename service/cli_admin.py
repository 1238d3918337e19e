"""`chancery keys create|list|revoke` and `chancery audit`: the administrator's commands.

Two typer apps for `service.cli` to mount (`app.add_typer(keys_app, name="keys")`,
`app.add_typer(audit_app, name="audit")`). They read the data root from the settings the root
command's context carries (anything with a `settings` attribute as `ctx.obj`), else from the
environment, and raise ChanceryErrors, which `service.cli.run` prints as one sentence.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.errors import InvalidRequestError

if TYPE_CHECKING:
    from service.audit import AuditRecord
    from service.keys import KeyRecord

_PREVIEW_CHARS = 80
_RELATIVE = re.compile(r"^(?P<amount>\d+)(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

keys_app = typer.Typer(
    help="API keys: when one exists, every route but /healthz and /readyz needs one.",
    no_args_is_help=True,
)
audit_app = typer.Typer(help="Read the audit log of the data root.")


def _settings(ctx: typer.Context) -> Any:
    settings: Any = getattr(ctx.find_root().obj, "settings", None)
    if settings is None:
        from service.settings import Settings

        settings = Settings()
    return settings


def _data_dir(ctx: typer.Context) -> Path:
    return Path(_settings(ctx).data_dir)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who or what holds the key.")],
    collections: Annotated[
        str,
        typer.Option(
            "--collections", help="Collections it may use, comma-separated, or '*' for all."
        ),
    ],
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="read (ask, search, read); write (+ upload, delete); "
            "admin (+ collections, metrics).",
        ),
    ] = "read",
) -> None:
    """Create a key and print it, once: only its hash is kept."""
    from service.keys import KeyStore

    store = KeyStore(_data_dir(ctx))
    try:
        record, secret = store.create(name, collections, scope)
    finally:
        store.close()
    # The key alone on stdout, so `KEY=$(chancery keys create ...)` captures it; the rest on
    # stderr.
    typer.echo(secret)
    typer.echo(
        f"created the key {record.name} ({record.scope} on {_collections(record)}); it is shown "
        "this once: store it now",
        err=True,
    )


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
) -> None:
    """Each key with its scope, collections and dates; never the key itself."""
    from service.keys import KeyStore

    store = KeyStore(_data_dir(ctx))
    try:
        records = store.list()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([_key_json(record) for record in records]))
        return
    if not records:
        typer.echo("no keys: the server needs none (and listens on loopback only)")
    for record in records:
        revoked = f"  revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else ""
        typer.echo(
            f"{record.name}  {record.scope}  {_collections(record)}  "
            f"created {record.created_at:%Y-%m-%d %H:%M}{revoked}"
        )


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Revoke a key: running servers refuse it from their next request."""
    from service.keys import KeyStore

    store = KeyStore(_data_dir(ctx))
    try:
        store.revoke(name)
    finally:
        store.close()
    typer.echo(f"revoked the key {name}")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="A date or time (2025-06-01, 2025-06-01T09:00Z) or an age (30m, 2h, 7d).",
        ),
    ] = None,
    collection: Annotated[str | None, typer.Option("--collection", help="Only this one.")] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Only requests made with this key.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The most recent N records.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The requests recorded (asks, searches, uploads, deletions), oldest first."""
    from service.audit import audit_folder, read_audit

    settings = _settings(ctx)
    records = read_audit(
        audit_folder(Path(settings.data_dir), settings.audit_dir),
        since=parse_since(since, datetime.now(UTC)) if since is not None else None,
        collection=collection,
        key=key,
        limit=limit,
    )
    for record in records:
        typer.echo(record.model_dump_json() if as_json else _audit_line(record))
    if not records and not as_json:
        typer.echo("no audit records match", err=True)


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO date or time (UTC when it names no zone), or an age before `now` (`90m`, `7d`)."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative is not None:
        return now - timedelta(**{_UNITS[relative["unit"]]: int(relative["amount"])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequestError(
            f"--since {text!r} is neither a date or time (2025-06-01, 2025-06-01T09:00Z) nor "
            "an age (30m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _collections(record: KeyRecord) -> str:
    return "every collection" if record.collections == "*" else ", ".join(record.collections)


def _key_json(record: KeyRecord) -> dict[str, object]:
    return {
        "name": record.name,
        "key_id": record.key_id,
        "scope": record.scope.value,
        "collections": record.collections,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


def _audit_line(record: AuditRecord) -> str:
    what = record.question or ", ".join(record.files or record.doc_ids) or ""
    flat = " ".join(what.split())
    if len(flat) > _PREVIEW_CHARS:
        flat = flat[: _PREVIEW_CHARS - 1] + "…"
    outcome = " abstained" if record.abstained else ""
    return (
        f"{record.time:%Y-%m-%d %H:%M:%S}Z  {record.status}{outcome}  {record.key or '-'}  "
        f"{record.collection or '-'}  {record.method} {record.route}  {flat}"
    ).rstrip()
