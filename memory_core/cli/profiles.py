"""``convmem profiles``: the merges identity resolution left for a person to decide,
and undoing a merge (docs/identity.md).

- ``pending``: the proposed merges still waiting (``--all``: decided ones too);
- ``confirm MERGE_ID`` / ``reject MERGE_ID``: decide one (``--reason``);
- ``unmerge PROFILE``: split a merged-away profile (its ``prf_`` id) back out of
  the profile it was merged into.

Every command takes ``--db/--tenant/--embedder`` (the store) and ``--json``. A
typed error (an unknown id, a merge decided already, a profile not merged)
exits 2 with its message (``convmem``'s entry point).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from memory_core.cli.connect import DbOpt, EmbedderOpt, TenantOpt, open_memory

if TYPE_CHECKING:
    from memory_core.models import PendingMerge, Profile

__all__ = ["profiles_app", "register_profiles"]

profiles_app = typer.Typer(
    help="Identity: merges waiting for a decision (confirm, reject) and unmerge.",
    no_args_is_help=True,
)
console = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why (kept with the decision and in the audit log).")
]


def _json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _profile_line(profile: Profile) -> str:
    name = f" ({profile.display_name})" if profile.display_name else ""
    return f"{profile.id}{name}"


@profiles_app.command("pending")
def pending(
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Decided merges too (confirmed, rejected).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List the merges identity resolution proposed instead of doing them, oldest first."""
    with open_memory(db, tenant, embedder) as memory:
        found = memory.profiles.pending_merges(status=None if show_all else "pending", limit=limit)
    if as_json:
        _json([m.model_dump(mode="json") for m in found])
        return
    if not found:
        console.print("no merges are waiting for a decision" if not show_all else "no merges")
        return
    for m in found:  # one block per merge: ids are never cut or wrapped
        console.print(
            f"[bold]{m.id}[/]  {m.status.value}  proposed {m.created_at:%Y-%m-%d %H:%M}",
            soft_wrap=True,
        )
        console.print(f"  profile A  {m.profile_a}", soft_wrap=True)
        console.print(f"  profile B  {m.profile_b}", soft_wrap=True)
        if m.reason:
            console.print(f"  why        {escape(m.reason)}", soft_wrap=True, highlight=False)
        if m.identifiers:
            matched = escape(", ".join(m.identifiers))
            console.print(f"  matched by {matched}", soft_wrap=True, highlight=False)
        if m.decision_reason:
            decision = escape(m.decision_reason)
            console.print(f"  decided    {decision}", soft_wrap=True, highlight=False)
    console.print(
        "[dim]convmem profiles confirm MERGE_ID merges the two; "
        "convmem profiles reject MERGE_ID keeps them apart.[/]"
    )


def _decided(record: PendingMerge) -> dict[str, Any]:
    return record.model_dump(mode="json")


@profiles_app.command("confirm")
def confirm(
    merge_id: Annotated[str, typer.Argument(help="The pending merge (pmg_...).")],
    reason: ReasonOpt = None,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Confirm a pending merge: the two profiles merge (the older one survives)."""
    from memory_core.backends.base import Collection

    with open_memory(db, tenant, embedder) as memory:
        survivor = memory.profiles.confirm_merge(merge_id, reason=reason or "confirmed")
        found = memory.backend.get(memory.name, Collection.PENDING_MERGES, [merge_id])
        record = found[0] if found else None
    if as_json:
        _json(
            {
                "merge": None if record is None else _decided(record),
                "survivor": survivor.model_dump(mode="json"),
            }
        )
        return
    merged = "" if record is None else _other(record, survivor.id)
    console.print(
        f"confirmed {escape(merge_id)}: {escape(merged or 'the profiles')} merged into "
        f"{escape(_profile_line(survivor))}",
        soft_wrap=True,
    )
    if merged:
        console.print(f"[dim]convmem profiles unmerge {merged} undoes it.[/]", soft_wrap=True)


def _other(record: PendingMerge, survivor_id: str) -> str:
    others = {record.profile_a, record.profile_b} - {survivor_id}
    return ", ".join(sorted(others))


@profiles_app.command("reject")
def reject(
    merge_id: Annotated[str, typer.Argument(help="The pending merge (pmg_...).")],
    reason: ReasonOpt = None,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a pending merge: the profiles stay apart and the pair is not proposed again."""
    with open_memory(db, tenant, embedder) as memory:
        decided = memory.profiles.reject_merge(merge_id, reason=reason or "rejected")
    if as_json:
        _json(_decided(decided))
        return
    console.print(
        f"rejected {escape(decided.id)}: {decided.profile_a} and {decided.profile_b} stay apart",
        soft_wrap=True,
    )


@profiles_app.command("unmerge")
def unmerge(
    profile: Annotated[
        str, typer.Argument(help="The merged-away profile (its prf_ id) to split back out.")
    ],
    reason: ReasonOpt = None,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Split a merged profile back out, by the merge's provenance: its identifiers,
    conversations, observations and traits return to it."""
    with open_memory(db, tenant, embedder) as memory:
        survivor_id = memory.profiles.get(profile).id
        restored = memory.profiles.unmerge(profile, reason=reason or "manual")
        identifiers = [str(i) for i in memory.profiles.identifiers(restored.id)]
    if as_json:
        _json(
            {
                "profile": restored.model_dump(mode="json"),
                "split_from": survivor_id,
                "identifiers": identifiers,
            }
        )
        return
    console.print(
        f"unmerged {escape(_profile_line(restored))} from {survivor_id}: "
        f"{len(identifiers)} identifier{'s' if len(identifiers) != 1 else ''} back",
        soft_wrap=True,
    )


def register_profiles(app: typer.Typer) -> None:
    """Add ``convmem profiles`` to ``app``."""
    app.add_typer(profiles_app, name="profiles")
