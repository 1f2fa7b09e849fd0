"""``convmem gc``, ``export``, ``audit``, ``keys`` and ``policy``: governance from the terminal."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from memory_core.cli.options import DbOpt as _DbOpt
from memory_core.cli.options import EmbedderOpt as _EmbedderOpt
from memory_core.cli.options import JsonOpt as _JsonOpt
from memory_core.cli.options import TenantOpt as _TenantOpt
from memory_core.cli.options import settings_for
from memory_core.config import Settings, require_store
from memory_core.errors import ValidationError

if TYPE_CHECKING:
    from memory_core.memory import Memory
    from memory_core.models import DeletionReceipt

__all__ = ["register_governance"]


console = Console()
keys_app = typer.Typer(help="API keys for the network servers.", no_args_is_help=True)
policy_app = typer.Typer(help="A tenant's governance policy.", no_args_is_help=True)
tenants_app = typer.Typer(
    help="Tenants: hard partitions of everything stored.", no_args_is_help=True
)


_settings = settings_for


def _open(settings: Settings, *, read_only: bool = False) -> Memory:
    """The store of ``settings``; a command that only reads (``read_only``) must
    not create one, so a missing store is a NotFoundError naming its path."""
    from memory_core.memory import Memory

    return Memory.open(settings=require_store(settings) if read_only else settings)


def _dump(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{option}: not an ISO date or time: {value!r}") from None


def _purge_pending(receipt: DeletionReceipt) -> bool:
    """Warn (on stderr) when the receipt says the file purge is still pending."""
    if receipt.purged is not False:
        return False
    Console(stderr=True).print(
        "purge pending: another connection held a read transaction on the store; run "
        "`convmem gc` once it has ended (the next open of the store also finishes it)"
    )
    return True


_DURATION = re.compile(r"^\s*(\d{1,6})\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _expiry(value: str | None) -> datetime | None:
    """``--expires``: a duration from now (``30d``, ``12h``, ``45m``) or an ISO time."""
    if value is None:
        return None
    if match := _DURATION.match(value):
        return datetime.now(UTC) + timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            f"--expires: give a duration such as 30d, 12h or 45m, or an ISO time such as "
            f"2026-12-31T18:00:00Z, not {value!r}"
        ) from None


def gc(
    tenant: _TenantOpt = None,
    now: Annotated[
        str | None, typer.Option(help="Apply retention as of this ISO time (default: now).")
    ] = None,
    db: _DbOpt = None,
    embedder: _EmbedderOpt = None,
    as_json: _JsonOpt = False,
) -> None:
    """Delete what the retention policies say has expired (every tenant unless --tenant),
    and finish purging the files of earlier deletions whose purge is pending."""
    when = _when(now, "--now")
    with _open(_settings(db, None, embedder)) as memory:
        if tenant is None:
            receipt = memory.tenants.gc(now=when)
        else:
            receipt = memory.tenant(tenant).governance.gc(now=when)
    if as_json:
        _dump(receipt.model_dump(mode="json"))
    elif not receipt.total:
        console.print("nothing has expired")
    else:
        parts = ", ".join(f"{n} {what}" for what, n in sorted(receipt.deleted.items()) if n)
        console.print(f"deleted {parts}")
    if _purge_pending(receipt):
        raise typer.Exit(1)


def export(
    profile: Annotated[str, typer.Argument(help="Profile id or identifier (phone:+1...).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON here (default: stdout).")
    ] = None,
    db: _DbOpt = None,
    tenant: _TenantOpt = None,
    embedder: _EmbedderOpt = None,
) -> None:
    """Everything held about a customer, as one JSON document (subject access request)."""
    settings = _settings(db, tenant, embedder or "hash")  # nothing is embedded
    with _open(settings, read_only=True) as memory:
        document = memory.profiles.export(profile).model_dump(mode="json")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        counts = ", ".join(
            f"{len(document[k])} {k}" for k in ("identifiers", "traits", "observations")
        )
        console.print(f"wrote {output} ({counts}, {len(document['conversations'])} conversations)")


def audit(
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Print JSON lines.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write JSON lines to this file.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO time.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action (e.g. delete_profile).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only this target (e.g. profile:prf_...).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many events.")] = None,
    system: Annotated[
        bool, typer.Option("--system", help="Tenant creations and deletions instead.")
    ] = False,
    db: _DbOpt = None,
    tenant: _TenantOpt = None,
) -> None:
    """The audit log: who changed what, when and why (oldest first)."""
    from memory_core.governance.audit import write_jsonl

    start, end = _when(since, "--since"), _when(until, "--until")
    with _open(_settings(db, tenant, "hash"), read_only=True) as memory:
        if system:  # tenant creations and deletions
            events = memory.tenants.audit(
                since=start, until=end, action=action, limit=None if target else limit
            )
            events = [e for e in events if target is None or e.target == target][:limit]
        else:
            events = memory.governance.audit.list(
                since=start, until=end, action=action, target=target, limit=limit
            )
    if output is not None:
        n = write_jsonl(events, output)
        console.print(f"wrote {n} events to {output}")
        return
    if jsonl:
        for event in events:
            sys.stdout.write(json.dumps(event.model_dump(mode="json"), ensure_ascii=False) + "\n")
        return
    table = Table("time", "actor", "action", "target", "details", "reason")
    for e in events:
        details = ", ".join(f"{k}={v}" for k, v in e.details.items())
        table.add_row(
            e.ts.isoformat(timespec="seconds"), e.actor, e.action, e.target, details, e.reason
        )
    console.print(table)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Argument(help="read, write or admin.")],
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. mcp-prod.")],
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="When the key stops working: a duration from now (30d, 12h, 45m) or an "
            "ISO time (2026-12-31T18:00:00Z). Default: never (until revoked).",
        ),
    ] = None,
    db: _DbOpt = None,
    tenant: _TenantOpt = None,
) -> None:
    """Issue an API key; its secret is printed once and never stored."""
    expires_at = _expiry(expires)
    settings = _settings(db, tenant, "hash")
    with _open(settings) as memory:
        issued = memory.governance.keys.add(role, name, expires_at=expires_at)
    until = f", expires {expires_at.isoformat(timespec='seconds')}" if expires_at else ""
    console.print(
        f"key {issued.key_id} ({role}{until}) for tenant {settings.tenant!r}; its token:",
        highlight=False,
    )
    sys.stdout.write(issued.secret + "\n")
    console.print("[dim]Store it now: it cannot be shown again.[/]")


@keys_app.command("list")
def keys_list(
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    db: _DbOpt = None,
    tenant: _TenantOpt = None,
    as_json: _JsonOpt = False,
) -> None:
    """The tenant's API keys (ids, names, roles; never secrets)."""
    settings = _settings(db, tenant, "hash")
    with _open(settings, read_only=True) as memory:
        keys = memory.governance.keys.list(include_revoked=revoked)
    if as_json:
        _dump([k.model_dump(mode="json", exclude={"salt", "secret_hash"}) for k in keys])
        return
    table = Table("key id", "name", "role", "created", "expires", "revoked")
    for k in keys:
        revoked_at = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        expires_at = k.expires_at.isoformat(timespec="seconds") if k.expires_at else ""
        created_at = k.created_at.isoformat(timespec="seconds")
        table.add_row(k.id, k.name, k.role.value, created_at, expires_at, revoked_at)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (key_...).")],
    db: _DbOpt = None,
    tenant: _TenantOpt = None,
) -> None:
    """Revoke an API key at once."""
    settings = _settings(db, tenant, "hash")
    with _open(settings) as memory:
        key = memory.governance.keys.revoke(key_id)
    console.print(f"revoked {key.id} ({key.name})")


@tenants_app.command("list")
def tenants_list(db: _DbOpt = None, as_json: _JsonOpt = False) -> None:
    """The tenants in the store."""
    with _open(_settings(db, None, "hash"), read_only=True) as memory:
        tenants = memory.tenants.list()
    if as_json:
        _dump(tenants)
        return
    for name in tenants:
        console.print(name, highlight=False)


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="Lowercase letters, digits, - and _.")],
    db: _DbOpt = None,
) -> None:
    """Create a tenant (creating one that exists changes nothing)."""
    with _open(_settings(db, None, "hash")) as memory:
        created = memory.tenants.add(name)
    console.print(f"tenant {created.name!r} ready", highlight=False)


@tenants_app.command("delete")
def tenants_delete(
    name: Annotated[str, typer.Argument(help="The tenant to delete, with everything in it.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: this deletes every record of the tenant.")
    ] = False,
    db: _DbOpt = None,
    as_json: _JsonOpt = False,
) -> None:
    """Delete a tenant and everything in it, from every index; prints the receipt."""
    if not yes:
        raise ValidationError(
            f"deleting tenant {name!r} erases everything in it; add --yes to confirm"
        )
    with _open(_settings(db, None, "hash")) as memory:
        receipt = memory.tenants.delete(name)
    if as_json:
        _dump(receipt.model_dump(mode="json"))
    else:
        counts = ", ".join(f"{n} {what}" for what, n in receipt.deleted.items() if n)
        console.print(f"deleted tenant {name!r}: {counts or 'it was empty'}", highlight=False)
    _purge_pending(receipt)


@policy_app.command("show")
def policy_show(db: _DbOpt = None, tenant: _TenantOpt = None) -> None:
    """The tenant's effective policy, as JSON."""
    settings = _settings(db, tenant, "hash")
    with _open(settings, read_only=True) as memory:
        policy = memory.governance.policy.get()
    _dump(policy.to_json())


@policy_app.command("set")
def policy_set(
    file: Annotated[Path, typer.Argument(help="The policy as JSON (see docs/governance.md).")],
    db: _DbOpt = None,
    tenant: _TenantOpt = None,
) -> None:
    """Store the tenant's policy (it takes precedence over the settings file)."""
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{file}: cannot read a JSON policy: {exc}") from exc
    settings = _settings(db, tenant, "hash")
    with _open(settings) as memory:
        memory.governance.policy.set(raw)
    console.print(f"policy of tenant {settings.tenant!r} updated")


def bench_governance(
    messages: Annotated[int, typer.Option(help="Messages in the erasure store.")] = 100_000,
    profiles: Annotated[int, typer.Option(help="Profiles they are spread over.")] = 1000,
    heavy: Annotated[int, typer.Option(help="Messages of one extra, heavy profile.")] = 10_000,
    redaction_messages: Annotated[
        int, typer.Option("--redaction-messages", help="Generated messages to redact.")
    ] = 20_000,
    skip_erasure: Annotated[bool, typer.Option("--skip-erasure")] = False,
    as_json: _JsonOpt = False,
) -> None:
    """Redaction throughput and false-negative rate, and the cost of a profile erasure."""
    from memory_core.bench import run_governance_bench_cli

    data = run_governance_bench_cli(
        console, messages=messages, profiles=profiles, heavy=heavy,
        redaction_messages=redaction_messages, skip_erasure=skip_erasure, as_json=as_json,
    )  # fmt: skip
    if data is not None:
        _dump(data)


def register_governance(app: typer.Typer) -> None:
    """Add the governance commands to the ``convmem`` app."""
    app.command("gc")(gc)
    app.command("export")(export)
    app.command("audit")(audit)
    app.add_typer(keys_app, name="keys")
    app.add_typer(policy_app, name="policy")
    app.add_typer(tenants_app, name="tenants")
    app.command("bench-governance")(bench_governance)
