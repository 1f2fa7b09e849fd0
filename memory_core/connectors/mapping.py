"""Mapping files: which fields of an external record become which identifiers and
traits of a profile (shared by the Salesforce and warehouse connectors).

A mapping table (in a TOML file read with :mod:`tomllib`) looks like::

    identifiers = { Email = "email", Phone = "phone", MobilePhone = "phone", Id = "crm_id" }
    traits = { Title = "job_title", "Account.Name" = "company" }
    display_name = ["FirstName", "LastName"]

Field names are the external names (a dotted name reaches into a related record,
as Salesforce returns ``Account.Name``); identifier kinds are those of
:class:`~memory_core.models.IdentifierKind` (``custom:<namespace>`` for a custom
one); trait keys are lower-case snake_case. Empty values are left out, so a
record without a phone number simply has no phone identifier.

The connectors write mapped records through
:class:`~memory_core.connectors._base.ConnectorRun` (identity resolution, trait
precedence, policy screening, auditing, dry runs).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory_core.connectors._base import ConnectorRun, Item, ItemOutcome
from memory_core.errors import ConfigError, MemoryCoreError, ValidationError
from memory_core.models import IdentifierKind

if TYPE_CHECKING:
    from memory_core.memory import Memory
    from memory_core.models import Identifier

__all__ = [
    "FieldMapping",
    "MappedRecord",
    "apply_mapped",
    "field_value",
    "identifiers_of",
    "load_toml",
    "plain_value",
]

_TRAIT_KEY = re.compile(r"[a-z][a-z0-9_]*")
_KINDS = {k.value for k in IdentifierKind}


def load_toml(path: str | Path) -> dict[str, Any]:
    """The TOML document at ``path`` (ConfigError naming the file when it is
    missing or not valid TOML)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"mapping file {str(p)!r} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"mapping file {str(p)!r} cannot be read: {exc}") from None


def _table(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f'{where} must be a table, e.g. {{ Email = "email" }}')
    return value


def field_value(record: Mapping[str, Any], name: str) -> Any:
    """The value of field ``name`` in ``record``: the key itself, else a dotted path
    into nested records (``Account.Name``); None when absent at any step."""
    if name in record:
        return record[name]
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def plain_value(value: Any) -> Any:
    """A database or API value as a JSON value: decimals become int/float, dates and
    times ISO text, bytes and UUIDs text."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items() if k != "attributes"}
    return str(value)


@dataclass(frozen=True)
class MappedRecord:
    """One external record as a profile: its identifiers (``(kind, raw value)``),
    trait values by key, and a display name."""

    external_id: str
    identifiers: tuple[tuple[str, str], ...]
    traits: dict[str, Any]
    display_name: str | None = None


@dataclass(frozen=True)
class FieldMapping:
    """Field names to identifier kinds and trait keys, checked when loaded."""

    identifiers: tuple[tuple[str, str], ...] = ()
    traits: tuple[tuple[str, str], ...] = ()
    display_name: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> FieldMapping:
        """A mapping from a TOML table with ``identifiers``, ``traits`` and
        ``display_name``; ConfigError saying which entry is wrong."""
        identifiers: list[tuple[str, str]] = []
        for name, kind in _table(table.get("identifiers"), f"{where}.identifiers").items():
            if not isinstance(kind, str) or not (
                kind in _KINDS or (kind.startswith("custom:") and len(kind) > 7)
            ):
                allowed = ", ".join(sorted(_KINDS)) + ", custom:<namespace>"
                raise ConfigError(
                    f"{where}.identifiers.{name}: unknown identifier kind {kind!r}; "
                    f"use one of: {allowed}"
                )
            identifiers.append((name, kind))
        traits: list[tuple[str, str]] = []
        for name, key in _table(table.get("traits"), f"{where}.traits").items():
            if not isinstance(key, str) or not _TRAIT_KEY.fullmatch(key):
                raise ConfigError(
                    f"{where}.traits.{name}: {key!r} is not a trait key "
                    "(lower-case snake_case, e.g. 'tier')"
                )
            traits.append((name, key))
        display = table.get("display_name", [])
        if isinstance(display, str):
            display = [display]
        if not isinstance(display, list) or not all(isinstance(d, str) for d in display):
            raise ConfigError(f"{where}.display_name must be a field name or a list of them")
        return cls(tuple(identifiers), tuple(traits), tuple(display))

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the mapping reads, in order, without repeats."""
        names = [n for n, _ in self.identifiers] + [n for n, _ in self.traits]
        return tuple(dict.fromkeys([*names, *self.display_name]))

    def map(self, record: Mapping[str, Any], external_id: str) -> MappedRecord:
        """``record`` as identifiers, traits and a display name (empty values left out)."""
        identifiers: list[tuple[str, str]] = []
        for name, kind in self.identifiers:
            value = plain_value(field_value(record, name))
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            text = str(value).strip()
            if kind.startswith("custom:"):
                kind, text = "custom", f"{kind[7:]}={text}"
            if (kind, text) not in identifiers:
                identifiers.append((kind, text))
        traits: dict[str, Any] = {}
        for name, key in self.traits:
            value = plain_value(field_value(record, name))
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            traits[key] = value
        parts = [plain_value(field_value(record, n)) for n in self.display_name]
        display = " ".join(str(p).strip() for p in parts if p not in (None, "")) or None
        return MappedRecord(external_id, tuple(identifiers), traits, display)


def identifiers_of(memory: Memory, mapped: MappedRecord) -> tuple[list[Identifier], list[str]]:
    """The normalised identifiers of ``mapped`` (with the tenant's default region)
    and, for each value that cannot be one, why it was left out."""
    found: list[Identifier] = []
    problems: list[str] = []
    for kind, value in mapped.identifiers:
        try:
            ident = memory.profiles.identifier(kind, value)
        except MemoryCoreError as exc:
            problems.append(f"{kind} identifier left out: {exc}")
            continue
        if ident not in found:
            found.append(ident)
    return found, problems


def apply_mapped(run: ConnectorRun, item: Item, mapped: MappedRecord, *, source: str) -> str | None:
    """Write one mapped record in a connector run: resolve (or create) its profile,
    then set its traits with ``source`` (unchanged values are skipped, so re-running
    an import changes nothing). Identifiers that cannot be normalised are left out
    and noted; a record with none fails. Returns the profile id (None in a dry run
    when the profile would be created)."""
    idents, problems = identifiers_of(run.memory, mapped)
    for problem in problems:
        item.change(ItemOutcome.SKIPPED, problem)
    if not idents:
        raise ValidationError(f"{mapped.external_id} has no usable identifier")
    profile_id = run.resolve(item, idents, display_name=mapped.display_name)
    for key, value in mapped.traits.items():
        run.set_trait(item, profile_id, key, value, source=source)
    return profile_id
