"""Identifier normalisation.

A customer reaches the business from many addresses: a phone number written
``(617) 555-0142`` on one call and ``+1 617 555 0142`` in an SMS, an email in
mixed case, a WhatsApp number, a web-chat id, a CRM id. Each is normalised to
one canonical form so that the same person always yields the same key:

- ``phone`` and ``whatsapp``: E.164 via the ``phonenumbers`` library (numbers
  without a country code are read in the configured default region);
- ``email``: trimmed and case-folded, validated for shape;
- ``chat_id``, ``crm_id``, ``custom``: trimmed; ``custom`` ids carry a
  namespace (``custom:loyalty=AB12``) so different systems never collide.

The rules identity resolution follows per tenant (same person across kinds,
shared values, a cap, confirmed merges, recycled numbers) are the ``identity``
part of its policy: :class:`memory_core.governance.policy.IdentityPolicy`
(docs/identity.md).
"""

from __future__ import annotations

import re

import phonenumbers

from memory_core.errors import InvalidIdentifierError, ValidationError
from memory_core.models import Identifier, IdentifierKind
from memory_core.validation import clean_text, limits_hint, shown

__all__ = ["BUILTIN_SHARED_EMAIL", "normalize", "parse_identifier"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_CHARS = 320
"""Default longest identifier value (``Settings.limits.identifier_chars`` when the
engine normalises)."""


def _phone(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifierError(
            f"{raw!r} is not a phone number ({exc}); give it in international form, "
            f"e.g. +16175550142, or set a default region"
        ) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifierError(
            f"{raw!r} is not a possible phone number in region {region}; "
            f"give it in international form, e.g. +16175550142"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(
    kind: IdentifierKind | str,
    value: str,
    *,
    default_region: str = "US",
    max_chars: int = MAX_CHARS,
) -> Identifier:
    """Validate and normalise one identifier (at most ``max_chars`` characters,
    one line, valid Unicode).

    Raises :class:`InvalidIdentifierError` when the value cannot be an
    identifier of that kind.
    """
    try:
        kind = IdentifierKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in IdentifierKind)
        raise InvalidIdentifierError(
            f"unknown identifier kind {shown(kind)}; use one of: {allowed}"
        ) from None
    if not isinstance(value, str):
        raise InvalidIdentifierError(
            f"identifier value must be a string, got {type(value).__name__}"
        )
    text = value.strip()
    if not text:
        raise InvalidIdentifierError(f"empty {kind.value} identifier")
    if len(text) > max_chars:
        raise InvalidIdentifierError(
            f"{kind.value} identifier has {len(text):,} characters, more than the limit of "
            f"{max_chars:,} ({limits_hint('identifier_chars')})"
        )
    try:
        clean_text(text, f"{kind.value} identifier", single_line=True)
    except ValidationError as exc:
        raise InvalidIdentifierError(str(exc)) from None
    if kind in (IdentifierKind.PHONE, IdentifierKind.WHATSAPP):
        if text.lower().startswith("whatsapp:"):
            text = text.split(":", 1)[1]
        return Identifier(kind=kind, value=_phone(text, default_region))
    if kind is IdentifierKind.EMAIL:
        if text.lower().startswith("mailto:"):
            text = text[len("mailto:") :]
        folded = text.casefold()
        if not _EMAIL.match(folded):
            raise InvalidIdentifierError(f"{value!r} is not an email address")
        return Identifier(kind=kind, value=folded)
    if kind is IdentifierKind.CUSTOM:
        namespace, sep, ident = text.partition("=")
        if not sep or not namespace.strip() or not ident.strip():
            raise InvalidIdentifierError(
                f"custom identifier {value!r} needs a namespace: "
                "'system=value', e.g. 'loyalty=AB12'"
            )
        return Identifier(kind=kind, value=f"{namespace.strip().lower()}={ident.strip()}")
    return Identifier(kind=kind, value=text)


def parse_identifier(
    text: str, *, default_region: str = "US", max_chars: int = MAX_CHARS
) -> Identifier:
    """Parse ``kind:value`` (``phone:+1 617 555 0142``, ``email:Ann@x.com``).

    A bare value is guessed: ``@`` means email, a value of digits, spaces and
    ``+-().`` means phone; anything else must carry its kind.
    """
    if not isinstance(text, str):
        raise InvalidIdentifierError(
            f"an identifier is text such as 'phone:+16175550142', not {type(text).__name__}"
        )
    if len(text) > max_chars + len("whatsapp:") + 2:  # the kind prefix, before normalising
        raise InvalidIdentifierError(
            f"identifier has {len(text):,} characters, more than the limit of {max_chars:,} "
            f"({limits_hint('identifier_chars')})"
        )
    head, sep, rest = text.partition(":")
    if sep and head.strip().lower() in {k.value for k in IdentifierKind}:
        return normalize(
            head.strip().lower(), rest, default_region=default_region, max_chars=max_chars
        )
    stripped = text.strip()
    if "@" in stripped:
        return normalize(
            IdentifierKind.EMAIL, stripped, default_region=default_region, max_chars=max_chars
        )
    if stripped and re.fullmatch(r"[+\d\s().\-]{5,}", stripped):
        return normalize(
            IdentifierKind.PHONE, stripped, default_region=default_region, max_chars=max_chars
        )
    raise InvalidIdentifierError(
        f"cannot tell what kind of identifier {text!r} is; write it as kind:value, "
        f"e.g. phone:+16175550142, email:ann@example.com, chat_id:abc123"
    )


# -- identity rules ---------------------------------------------------------------------

BUILTIN_SHARED_EMAIL = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster|bounces?)"
    r"(?:[-_.+][^@]*)?@",
    re.IGNORECASE,
)
"""Email addresses that never belong to one person (``noreply@``, ``no-reply+x@``,
``donotreply@``, ``mailer-daemon@``, ``postmaster@``, ``bounce@``): shared values
unless ``IdentityPolicy.builtin_shared`` is off."""
