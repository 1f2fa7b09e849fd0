"""Redaction of sensitive data from text, before it is stored or embedded.

A :class:`Redactor` is built from a tenant's
:class:`~memory_core.governance.policy.RedactionPolicy` and replaces what it
finds with ``[REDACTED:<kind>]``. It runs offline. Candidates are found with
regular expressions and then **validated** with the check digits of
`python-stdnum <https://arthurdejong.org/python-stdnum/>`_, so that ordinary
numbers are left alone:

- ``card``: 13-19 digits (spaces or dashes between groups allowed) that pass the
  Luhn check and start like a payment card (2-6). A Luhn-invalid number stays.
- ``iban``: IBANs that pass the ISO 13616 mod-97 check and the country's length.
- ``national_id``: the ids of :data:`NATIONAL_IDS`, each validated with its
  checksum where it has one. Ids whose checksum is weak (one in ten random
  numbers passes) or absent are only redacted in their formatted shape or next to
  a word that names them ("SSN", "BSN", "tax id" ...).
- ``bank_account``: US routing numbers (ABA checksum) and UK sort codes next to
  those words, and digit runs named as an account number ("account no. 12345678").
- ``secret``: the offline detectors of Yelp's
  `detect-secrets <https://github.com/Yelp/detect-secrets>`_ (AWS, GitHub, GitLab,
  Slack, Stripe, OpenAI, Twilio ... keys, JWTs, private key blocks, basic-auth
  URLs, high-entropy quoted strings), widened to the whole token, plus passwords,
  PINs and API keys stated in prose ("my password is ...").
- ``email``: e-mail addresses (off by default).
- custom patterns of the policy.

The replacement names only the detector, never which country's id it was.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from stdnum import iban as _iban
from stdnum import luhn
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.us import rtn, ssn

from memory_core.governance.policy import Detector, RedactionPolicy

__all__ = ["NATIONAL_IDS", "Finding", "IdSpec", "Redaction", "Redactor"]


class Finding(NamedTuple):
    """Where something was found: a span of the original text and what it was.
    ``detail`` names the id type or secret plugin (for reports; not stored)."""

    kind: str
    start: int
    end: int
    detail: str


@dataclass(frozen=True)
class Redaction:
    """A redacted text and what was replaced (spans of the original text)."""

    text: str
    findings: tuple[Finding, ...]


# -- national ids ---------------------------------------------------------------------

_NOT_AFTER_DIGIT = r"(?<![\w])(?<!\d[ .-])"
_NOT_BEFORE_DIGIT = r"(?![\w])(?![ .-]\d)"  # an id is a whole digit run, not part of one
_CONTEXT_WINDOW = 48  # characters before a bare number searched for a naming word


def _digits(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text).upper()


_NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def _nino_valid(value: str) -> bool:
    """UK National Insurance number: no checksum exists; HMRC's prefix rules."""
    compact = _digits(value)
    return bool(
        re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", compact)
        and compact[:2] not in _NINO_BAD_PREFIXES
    )


def _std(module: Any) -> Callable[[str], bool]:
    def valid(value: str) -> bool:
        return bool(module.is_valid(_digits(value)))

    return valid


@dataclass(frozen=True)
class IdSpec:
    """One national id: its shapes and its validator.

    ``formatted`` matches shapes distinctive enough to redact anywhere (with
    validation); ``bare`` matches shapes that are redacted only when ``context``
    (a naming word) occurs shortly before them.
    """

    name: str
    validate: Callable[[str], bool]
    formatted: re.Pattern[str] | None
    bare: re.Pattern[str] | None
    context: re.Pattern[str] | None


def _id(
    name: str,
    validate: Callable[[str], bool],
    formatted: str | None,
    bare: str | None,
    context: str | None,
    flags: int = 0,
) -> IdSpec:
    def pattern(body: str | None) -> re.Pattern[str] | None:
        if body is None:
            return None
        return re.compile(f"{_NOT_AFTER_DIGIT}(?:{body}){_NOT_BEFORE_DIGIT}", flags)

    words = None if context is None else re.compile(rf"\b(?:{context})\b", re.IGNORECASE)
    return IdSpec(name, validate, pattern(formatted), pattern(bare), words)


NATIONAL_IDS: Mapping[str, IdSpec] = {
    spec.name: spec
    for spec in (
        _id("us_ssn", _std(ssn), r"\d{3}[- ]\d{2}[- ]\d{4}", r"\d{9}", r"ssn|social security"),
        _id(
            "gb_nino",
            _nino_valid,
            r"[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]",
            None,
            None,
            re.IGNORECASE,
        ),
        _id("gb_nhs", _std(nhs), None, r"\d{3}[ -]?\d{3}[ -]?\d{4}", r"nhs"),
        _id(
            "fr_nir",
            _std(nir),
            r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}",
            None,
            None,
            re.IGNORECASE,
        ),
        _id(
            "de_idnr",
            _std(idnr),
            None,
            r"\d{2} ?\d{3} ?\d{3} ?\d{3}",
            r"steuer[- ]?id|steuerliche|identifikationsnummer|idnr|tax id|tax identification",
        ),
        _id("es_dni", _std(dni), r"\d{8}-?[A-Z]", None, None, re.IGNORECASE),
        _id("es_nie", _std(nie), r"[XYZ]-?\d{7}-?[A-Z]", None, None, re.IGNORECASE),
        _id(
            "it_codicefiscale",
            _std(codicefiscale),
            r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]",
            None,
            None,
            re.IGNORECASE,
        ),
        _id("nl_bsn", _std(bsn), None, r"\d{4}\.?\d{2}\.?\d{3}|\d{9}", r"bsn|burgerservicenummer"),
        _id(
            "in_aadhaar",
            _std(aadhaar),
            r"[2-9]\d{3} \d{4} \d{4}",
            r"[2-9]\d{11}",
            r"aadhaa?r|uidai",
        ),
        _id("br_cpf", _std(cpf), r"\d{3}\.\d{3}\.\d{3}-\d{2}", r"\d{11}", r"cpf"),
        _id("ca_sin", _std(sin), None, r"\d{3}[ -]?\d{3}[ -]?\d{3}", r"sin|social insurance"),
        _id("pl_pesel", _std(pesel), None, r"\d{11}", r"pesel"),
    )
}
"""The national ids looked for, by name (the ``national_ids`` policy option, whose
names :data:`~memory_core.governance.policy.NATIONAL_ID_NAMES` lists)."""


# -- cards, IBANs, bank accounts --------------------------------------------------------

_DIGIT_RUN = re.compile(r"(?<!\w)\d+(?:(?: {1,2}|[.-])\d+)*(?!\w)")
_GROUP = re.compile(r"\d+")
_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,32}", re.IGNORECASE)
_ROUTING = re.compile(
    r"\b(?:routing|aba|rtn|transit)\b[^\d\n]{0,24}(?<!\d)(\d{9})(?!\d)", re.IGNORECASE
)
_SORT_CODE = re.compile(
    r"\bsort[ -]?code\b[^\d\n]{0,16}(?<!\d)(\d{2}[- ]?\d{2}[- ]?\d{2})(?!\d)", re.I
)
_ACCOUNT = re.compile(
    r"\b(?:bank\s+)?(?:account|acct|a/c)\.?\s*(?:number|num|no\.?|#)?\s*(?:is|was|:|=|-)?\s*"
    r"(?<![\d])(\d[\d -]{4,24}\d)(?!\d)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def _cards(text: str) -> Iterator[Finding]:
    """Group-aligned windows of digit runs with 13-19 digits that pass Luhn and
    start like a card; the longest valid window from each start wins."""
    for run in _DIGIT_RUN.finditer(text):
        groups = list(_GROUP.finditer(run.group()))
        base = run.start()
        i = 0
        while i < len(groups):
            found = None
            for j in range(len(groups) - 1, i - 1, -1):
                digits = "".join(g.group() for g in groups[i : j + 1])
                if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn.is_valid(digits):
                    found = j
                    break
            if found is None:
                i += 1
                continue
            yield Finding("card", base + groups[i].start(), base + groups[found].end(), "luhn")
            i = found + 1


def _ibans(text: str) -> Iterator[Finding]:
    for match in _IBAN_CANDIDATE.finditer(text):
        raw = match.group()
        # positions of the non-space characters, to map a compact prefix back to a span
        positions = [i for i, ch in enumerate(raw) if ch != " "]
        compact = "".join(raw[i] for i in positions).upper()
        for length in range(min(len(compact), 34), 14, -1):
            if _iban.is_valid(compact[:length]):
                end = match.start() + positions[length - 1] + 1
                yield Finding("iban", match.start(), end, "iban")
                break


def _national_ids(text: str, specs: list[IdSpec]) -> Iterator[Finding]:
    lowered: str | None = None
    for spec in specs:
        if spec.formatted is not None:
            for match in spec.formatted.finditer(text):
                if spec.validate(match.group()):
                    yield Finding("national_id", match.start(), match.end(), spec.name)
        if spec.bare is None or spec.context is None:
            continue
        for match in spec.bare.finditer(text):
            if lowered is None:
                lowered = text.lower()
            before = lowered[max(0, match.start() - _CONTEXT_WINDOW) : match.start()]
            if spec.context.search(before) and spec.validate(match.group()):
                yield Finding("national_id", match.start(), match.end(), spec.name)


def _bank_accounts(text: str) -> Iterator[Finding]:
    for match in _ROUTING.finditer(text):
        if rtn.is_valid(match.group(1)):
            yield Finding("bank_account", match.start(1), match.end(1), "us_routing")
    for match in _SORT_CODE.finditer(text):
        yield Finding("bank_account", match.start(1), match.end(1), "gb_sort_code")
    for match in _ACCOUNT.finditer(text):
        if sum(ch.isdigit() for ch in match.group(1)) >= 6:
            yield Finding("bank_account", match.start(1), match.end(1), "account_number")


# -- secrets ----------------------------------------------------------------------------

_SECRET_HINT = re.compile(r"\S{16,}|://|PRIVATE KEY|PuTTY-User-Key", re.IGNORECASE)
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
_PUTTY = re.compile(r"PuTTY-User-Key-File-\d.*", re.DOTALL)
_TOKEN_CHARS = re.compile(r"[^\s\"'`<>()\[\]{},;]+")
_TRAILING = ".:!?"
_PROSE_PASSWORD = re.compile(
    r"\b(?:pass(?:word|code|phrase)|passwd|pwd)\s*(?:is|was|:|=|-)\s*[\"']?([^\s\"']{3,64})",
    re.IGNORECASE,
)
_PROSE_PIN = re.compile(
    r"\bpin(?:\s+(?:code|number))?\s*(?:is|was|:|=|-)\s*[\"']?(\d{4,8})(?!\d)", re.IGNORECASE
)
_PROSE_KEY = re.compile(
    r"\b(?:api[ _-]?key|secret(?:[ _-]?key)?|access[ _-]?(?:key|token)|auth[ _-]?token|token)"
    r"\s*(?:is|was|:|=|-)\s*[\"']?([A-Za-z0-9_\-./+=]{12,200})",
    re.IGNORECASE,
)
# detect-secrets plugins left out: not secrets (public IPs) or tuned for source code files.
_SKIPPED_PLUGINS = {"IPPublicDetector", "KeywordDetector"}
_plugins_lock = threading.Lock()
_plugins: list[Any] | None = None


def _secret_plugins() -> list[Any]:
    """Every offline detect-secrets plugin, instantiated once (imported on first use)."""
    global _plugins
    with _plugins_lock:
        if _plugins is None:
            import importlib
            import inspect
            import pkgutil

            import detect_secrets.plugins as package
            from detect_secrets.plugins.base import BasePlugin

            found: list[Any] = []
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                module = importlib.import_module(f"{package.__name__}.{info.name}")
                for name, cls in inspect.getmembers(module, inspect.isclass):
                    if (
                        issubclass(cls, BasePlugin)
                        and cls.__module__ == module.__name__
                        and not inspect.isabstract(cls)
                        and name not in _SKIPPED_PLUGINS
                    ):
                        found.append(cls())
            _plugins = found
        return _plugins


def _token_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The whitespace-delimited token containing ``text[start:end]``, minus trailing punctuation."""
    for match in _TOKEN_CHARS.finditer(text, max(0, start - 400)):
        if match.start() <= start and match.end() >= end:
            s, e = match.start(), match.end()
            while e > end and text[e - 1] in _TRAILING:
                e -= 1
            return s, e
        if match.start() > start:
            break
    return start, end


def _secrets(text: str) -> Iterator[Finding]:
    for pattern, detail in ((_PEM, "private key"), (_PUTTY, "private key")):
        for match in pattern.finditer(text):
            yield Finding("secret", match.start(), match.end(), detail)
    for pattern, detail in (
        (_PROSE_PASSWORD, "password"),
        (_PROSE_PIN, "pin"),
        (_PROSE_KEY, "api key"),
    ):
        for match in pattern.finditer(text):
            value = match.group(1)
            if detail == "api key" and not (
                any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
            ):
                continue
            yield Finding("secret", match.start(1), match.end(1), detail)
    if not _SECRET_HINT.search(text):
        return
    for plugin in _secret_plugins():
        for value in set(plugin.analyze_string(text)):
            if not isinstance(value, str) or not value:
                continue
            for match in re.finditer(re.escape(value), text):
                start, end = _token_around(text, match.start(), match.end())
                yield Finding("secret", start, end, str(plugin.secret_type))


# -- the redactor -----------------------------------------------------------------------


class Redactor:
    """Replaces what a :class:`RedactionPolicy` asks for. Thread-safe; reuse it."""

    def __init__(self, policy: RedactionPolicy | None = None) -> None:
        self.policy = policy = policy or RedactionPolicy()
        on = set(policy.detectors) if policy.enabled else set()
        self._cards = Detector.CARD in on
        self._ibans = Detector.IBAN in on
        self._accounts = Detector.BANK_ACCOUNT in on
        self._secrets = Detector.SECRET in on
        self._emails = Detector.EMAIL in on
        wanted = policy.national_ids if policy.national_ids is not None else list(NATIONAL_IDS)
        self._ids = [NATIONAL_IDS[n] for n in wanted] if Detector.NATIONAL_ID in on else []
        self._custom = [
            (c.name, re.compile(c.pattern, re.IGNORECASE if c.ignore_case else 0))
            for c in (policy.custom if policy.enabled else [])
        ]
        self._replacement = policy.replacement

    @property
    def active(self) -> bool:
        """Whether this redactor can change any text."""
        return bool(
            self._cards
            or self._ibans
            or self._accounts
            or self._secrets
            or self._emails
            or self._ids
            or self._custom
        )

    def find(self, text: str) -> list[Finding]:
        """What would be redacted, as non-overlapping spans in text order.

        Overlaps are settled by priority: secrets, custom patterns, cards, IBANs,
        national ids, bank accounts, e-mail addresses.
        """
        candidates: list[Finding] = []
        if self._secrets:
            candidates += _secrets(text)
        for name, pattern in self._custom:
            for match in pattern.finditer(text):
                span = match.span(1) if pattern.groups else match.span()
                if span[1] > span[0]:
                    candidates.append(Finding(name, span[0], span[1], "custom"))
        if any(ch.isdigit() for ch in text):
            if self._cards:
                candidates += _cards(text)
            if self._ibans:
                candidates += _ibans(text)
            if self._ids:
                candidates += _national_ids(text, self._ids)
            if self._accounts:
                candidates += _bank_accounts(text)
        if self._emails and "@" in text:
            candidates += (Finding("email", *m.span(), "email") for m in _EMAIL.finditer(text))
        kept: list[Finding] = []
        for finding in candidates:  # already in priority order
            if all(finding.end <= k.start or finding.start >= k.end for k in kept):
                kept.append(finding)
        return sorted(kept, key=lambda f: f.start)

    def redact_report(self, text: str) -> Redaction:
        """The redacted text and what was replaced."""
        findings = self.find(text) if text else []
        if not findings:
            return Redaction(text, ())
        parts: list[str] = []
        at = 0
        for f in findings:
            parts += [text[at : f.start], self._replacement.format(kind=f.kind)]
            at = f.end
        parts.append(text[at:])
        return Redaction("".join(parts), tuple(findings))

    def redact(self, text: str) -> str:
        """``text`` with everything the policy names replaced."""
        return self.redact_report(text).text

    def redact_value(self, value: Any) -> Any:
        """Strings redacted inside any JSON-like value (dicts, lists, tuples)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(v) for v in value)
        return value
