"""``convmem bench-governance``: redaction throughput and misses, and the cost of
erasing a profile from a large store.

- **Redaction**: a generated set of realistic customer messages, half of them
  carrying one sensitive item (payment cards -- Luhn-valid, with and without
  spaces or dashes --, IBANs, national ids of several countries, API keys and
  tokens), half clean but full of harmless numbers (order and tracking numbers,
  phone numbers, amounts, dates, Luhn-invalid card-like numbers). Reported:
  messages per second through the tenant's default :class:`Redactor`, the
  false-negative rate per kind (the item still readable after redaction) and
  the false-positive rate (clean messages changed).
- **Erasure**: a store of ``messages`` messages over ``profiles`` profiles (the
  hash embedder, so building it is quick), then ``memory.profiles.delete`` of
  typical profiles: total time, and how much of it the file purge (FTS merge +
  WAL truncation) takes -- timed inside the backend by
  :class:`PurgeTimingSQLite`; plus one heavy profile holding ``heavy`` messages.
"""

from __future__ import annotations

import random
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from stdnum import iban, luhn, verhoeff
from stdnum.es import dni
from stdnum.it import codicefiscale
from stdnum.nl import bsn

from memory_core.backends.sqlite import SQLiteBackend
from memory_core.bench.messages import synthetic_texts
from memory_core.bench.timing import seconds
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.governance.redaction import Redactor
from memory_core.memory import Memory
from memory_core.models import Channel, ConversationIn, MessageIn, Role

__all__ = [
    "ErasureReport",
    "PurgeTimingSQLite",
    "RedactionReport",
    "generate_messages",
    "print_governance_bench",
    "report_dict",
    "run_erasure_bench",
    "run_redaction_bench",
]


# -- generating sensitive items -----------------------------------------------------------


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _card(rng: random.Random) -> str:
    prefix, length, groups = rng.choice(
        [
            ("4", 16, (4, 4, 4, 4)),
            (str(rng.randint(51, 55)), 16, (4, 4, 4, 4)),
            (str(rng.randint(2221, 2720)), 16, (4, 4, 4, 4)),
            (rng.choice(["34", "37"]), 15, (4, 6, 5)),
            ("6011", 16, (4, 4, 4, 4)),
        ]
    )
    body = prefix + _digits(rng, length - len(prefix) - 1)
    number = body + luhn.calc_check_digit(body)
    sep = rng.choice(["", " ", "-", ".", "  "])
    if rng.random() < 0.1:  # a voice transcript reading the digits one by one
        return " ".join(number)
    parts, at = [], 0
    for g in groups:
        parts.append(number[at : at + g])
        at += g
    return sep.join(parts)


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _nino(rng: random.Random) -> str:
    first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        first, second = "A", "B"
    d = _digits(rng, 6)
    spaced = rng.random() < 0.5
    tail = rng.choice("ABCD")
    return (
        f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {tail}"
        if spaced
        else f"{first}{second}{d}{tail}"
    )


def _dni(rng: random.Random) -> str:
    n = _digits(rng, 8)
    return n + dni.calc_check_digit(n)


def _iban(rng: random.Random) -> str:
    if rng.random() < 0.5:
        bban = _digits(rng, 18)
        country = "DE"
    else:
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + _digits(rng, 14)
        country = "GB"
    number = country + iban.calc_check_digits(country + "00" + bban) + bban
    if rng.random() < 0.5:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def _cpf(rng: random.Random) -> str:
    base = [int(c) for c in _digits(rng, 9)]
    for n in (10, 11):
        s = sum(d * w for d, w in zip(base, range(n, 1, -1), strict=False)) % 11
        base.append(0 if s < 2 else 11 - s)
    d = "".join(map(str, base))
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def _bsn(rng: random.Random) -> str:
    while True:
        n = _digits(rng, 9)
        if bsn.is_valid(n):
            return n


def _codice_fiscale(rng: random.Random) -> str:
    while True:
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(6))
        day = rng.randint(1, 28) + rng.choice([0, 40])
        body = (
            f"{letters}{_digits(rng, 2)}{rng.choice('ABCDEHLMPRST')}{day:02d}"
            f"{rng.choice('ABCDEFGHILM')}{rng.randint(1, 999):03d}"
        )
        number = body + codicefiscale.calc_check_digit(body)
        if codicefiscale.is_valid(number):
            return number


def _aadhaar(rng: random.Random) -> str:
    body = str(rng.randint(2, 9)) + _digits(rng, 10)
    n = body + verhoeff.calc_check_digit(body)
    return f"{n[:4]} {n[4:8]} {n[8:]}"


def _alnum(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _aws(rng: random.Random) -> str:
    return "AKIA" + _alnum(rng, 16, string.ascii_uppercase + string.digits)


def _github(rng: random.Random) -> str:
    return "ghp_" + _alnum(rng, 36)


def _stripe(rng: random.Random) -> str:
    return "sk_live_" + _alnum(rng, 24)


def _jwt(rng: random.Random) -> str:
    import base64
    import json

    def part(data: dict[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    head = part({"alg": "HS256", "typ": "JWT"})
    body = part({"sub": _digits(rng, 8), "iat": rng.randint(1_600_000_000, 1_800_000_000)})
    return f"{head}.{body}.{_alnum(rng, 43, string.ascii_letters + string.digits + '-_')}"


# kind -> (generator, sentence templates). Context-dependent ids appear with the word
# people use for them; the others also in neutral sentences.
_KINDS: dict[str, tuple[Callable[[random.Random], str], tuple[str, ...]]] = {
    "card": (
        _card,
        (
            "Hi, can you charge my card {x} for the {p}?",
            "My card number is {x}, expiry 08/27.",
            "I paid with {x} yesterday but got charged twice",
            "Please refund it to {x} and not to the old one",
            "ok the number is {x} and the code on the back is on its way",
        ),
    ),
    "us_ssn": (
        _ssn,
        ("My social security number is {x}", "here it is: {x}", "SSN {x} for the form"),
    ),
    "gb_nino": (_nino, ("my national insurance number is {x}", "NI: {x}, thanks")),
    "es_dni": (_dni, ("Mi DNI es {x}", "my ID is {x} if you need it")),
    "iban": (
        _iban,
        ("The IBAN for the transfer is {x}", "Send the refund to {x} please", "IBAN: {x}"),
    ),
    "br_cpf": (_cpf, ("Meu CPF é {x}", "CPF {x}, obrigado")),
    "nl_bsn": (_bsn, ("Mijn BSN is {x}", "my BSN: {x}")),
    "it_codicefiscale": (_codice_fiscale, ("il mio codice fiscale è {x}", "CF {x}")),
    "in_aadhaar": (_aadhaar, ("my Aadhaar number is {x}", "Aadhaar: {x}")),
    "aws_key": (_aws, ("The key {x} got committed by mistake", "aws access key id {x}")),
    "github_token": (_github, ("my token is {x} can you revoke it", "I pasted {x} in the chat")),
    "stripe_key": (_stripe, ("our stripe key {x} leaked", "use {x} for the test")),
    "jwt": (_jwt, ("the session token was {x}", "Authorization: Bearer {x}")),
}

# Forms the detectors do not claim to catch, measured to show the limits: digits
# separated by commas or slashes, ids that need a naming word said without one, a
# password without the word "password".
_HARD: dict[str, tuple[Callable[[random.Random], str], tuple[str, ...]]] = {
    "card_odd_separators": (
        lambda rng: rng.choice([",", "/"]).join(
            _card(rng).replace(" ", "").replace("-", "")[i : i + 4] for i in range(0, 16, 4)
        ),
        ("my card is {x}",),
    ),
    "us_ssn_bare_no_context": (lambda rng: _ssn(rng).replace("-", ""), ("here it is: {x}",)),
    "nl_bsn_no_context": (_bsn, ("the number is {x}",)),
    "password_no_keyword": (
        lambda rng: _alnum(rng, 10, string.ascii_letters + string.digits + "!$%"),
        ("I log in with {x} usually",),
    ),
}

_PRODUCTS = ("router", "fiber plan", "Premium plan", "SIM card", "TV box", "tablet")
_CLEAN = (
    "My order {order} still hasn't arrived, it was due on {date}.",
    "Call me back at +1 617 555 {four} after {hour}pm please",
    "The {p} costs ${amount}.99 a month, right?",
    "Tracking number 1Z{upper}{ten} shows it in Denver",
    "I was charged {amount}.00 twice on {date} for order {order}",
    "Reference {fake} from the letter you sent me",
    "Ticket #{six} was closed but the {p} is still broken",
    "My zip is {zip} and the account is under my wife's name",
    "Can I move my {p} appointment to {date} at {hour}:30?",
)


def _clean(rng: random.Random) -> str:
    body = "4" + _digits(rng, 14)
    fake = body + str((int(luhn.calc_check_digit(body)) + rng.randint(1, 9)) % 10)
    return rng.choice(_CLEAN).format(
        order=_digits(rng, rng.randint(8, 12)),
        date=f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/2024",
        four=_digits(rng, 4),
        hour=rng.randint(1, 9),
        p=rng.choice(_PRODUCTS),
        amount=rng.randint(10, 999),
        upper=_alnum(rng, 6, string.ascii_uppercase + string.digits),
        ten=_digits(rng, 10),
        fake=" ".join(fake[i : i + 4] for i in range(0, 16, 4)),  # Luhn-invalid
        six=_digits(rng, 6),
        zip=_digits(rng, 5),
    )


def generate_messages(
    n: int, seed: int = 13, *, hard: bool = False
) -> list[tuple[str, str | None, str | None]]:
    """``n`` messages as ``(text, kind, item)``: half carry one sensitive item of
    ``kind`` (the exact substring ``item``), half are clean (``None, None``).
    ``hard``: the items are in forms outside what the detectors claim (``_HARD``)."""
    rng = random.Random(seed)
    table = _HARD if hard else _KINDS
    kinds = sorted(table)
    out: list[tuple[str, str | None, str | None]] = []
    for i in range(n):
        if i % 2:
            out.append((_clean(rng), None, None))
            continue
        kind = kinds[(i // 2) % len(kinds)]
        make, templates = table[kind]
        item = make(rng)
        text = rng.choice(templates).format(x=item, p=rng.choice(_PRODUCTS))
        out.append((text, kind, item))
    return out


@dataclass
class RedactionReport:
    messages: int
    seconds: float
    messages_per_s: float
    sensitive: int
    missed: int
    false_negative_rate: float
    clean: int
    changed_clean: int
    false_positive_rate: float
    per_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    hard_missed: dict[str, dict[str, int]] = field(default_factory=dict)


def run_redaction_bench(n: int = 20_000, seed: int = 13) -> RedactionReport:
    """Redaction throughput and misses with the default policy (see the module docstring)."""
    redactor = Redactor()
    data = generate_messages(n, seed)
    redactor.redact("warm up AKIAIOSFODNN7EXAMPLE")  # loads the detect-secrets plugins
    start = time.perf_counter()
    outputs = [redactor.redact(text) for text, _, _ in data]
    seconds = time.perf_counter() - start
    per_kind: dict[str, Counter[str]] = {}
    missed = changed = sensitive = clean = 0
    for (text, kind, item), out in zip(data, outputs, strict=True):
        if kind is None:
            clean += 1
            changed += out != text
            continue
        assert item is not None
        sensitive += 1
        leaked = item in out or item.replace(" ", "") in out.replace(" ", "")
        missed += leaked
        per_kind.setdefault(kind, Counter()).update(total=1, missed=int(leaked))
    hard: dict[str, Counter[str]] = {}
    for text, kind, item in generate_messages(2_000, seed, hard=True):
        if kind is not None and item is not None:
            out = redactor.redact(text)
            hard.setdefault(kind, Counter()).update(total=1, missed=int(item in out))
    return RedactionReport(
        messages=n,
        seconds=round(seconds, 3),
        messages_per_s=round(n / seconds, 1),
        sensitive=sensitive,
        missed=missed,
        false_negative_rate=round(missed / max(sensitive, 1), 5),
        clean=clean,
        changed_clean=changed,
        false_positive_rate=round(changed / max(clean, 1), 5),
        per_kind={k: dict(v) for k, v in sorted(per_kind.items())},
        hard_missed={k: dict(v) for k, v in sorted(hard.items())},
    )


# -- erasure --------------------------------------------------------------------------------


class PurgeTimingSQLite(SQLiteBackend):
    """The SQLite backend, timing each of its own purges (``purge_seconds``), so
    that the purge's share of an erasure is measured where it runs."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.purge_seconds: list[float] = []

    def purge_deleted(self) -> bool:
        start = time.perf_counter()
        purged = super().purge_deleted()
        self.purge_seconds.append(time.perf_counter() - start)
        return purged


@dataclass
class ErasureReport:
    messages: int
    profiles: int
    build_seconds: float
    db_mb: float
    typical_profile_messages: int
    delete_profile_seconds: list[float]
    delete_without_purge_seconds: float
    purge_seconds: float
    heavy_profile_messages: int
    heavy_delete_profile_seconds: float


def run_erasure_bench(
    messages: int = 100_000,
    profiles: int = 1000,
    heavy: int = 10_000,
    progress: Callable[[str, int, int], None] | None = None,
) -> ErasureReport:
    """Build a store of ``messages`` over ``profiles`` (+ one profile of ``heavy``
    messages) with the hash embedder, then time profile erasures."""
    pool = synthetic_texts(5000, seed=3)
    rng = random.Random(messages)
    per_profile = max(1, messages // profiles)
    with tempfile.TemporaryDirectory(prefix="convmem-erasure-") as tmp:
        db = Path(tmp) / "erasure.db"
        settings = load_settings(data_dir=Path(tmp))
        backend = PurgeTimingSQLite(db)
        with Memory(backend, HashEmbedder(), settings=settings) as memory:
            start = time.perf_counter()
            plan = [(f"custom:bench=p{p}", per_profile) for p in range(profiles)]
            plan.append(("custom:bench=heavy", heavy))
            done = 0
            for ident, count in plan:
                texts = [rng.choice(pool) for _ in range(count)]
                for c in range(0, count, 10):
                    memory.ingest(
                        ConversationIn(
                            channel=Channel.CHAT,
                            customer=[ident],
                            messages=[
                                MessageIn(
                                    role=Role.CUSTOMER if i % 2 == 0 else Role.AI_AGENT, text=t
                                )
                                for i, t in enumerate(texts[c : c + 10])
                            ],
                        )
                    )
                done += count
                if progress:
                    progress("building the store", done, messages + heavy)
            build = time.perf_counter() - start
            size_mb = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20

            erase = memory.profiles.delete
            totals = seconds(erase, [f"custom:bench=p{p}" for p in range(3)])
            purges_before = len(backend.purge_seconds)
            [total] = seconds(erase, ["custom:bench=p3"])
            purge_s = sum(backend.purge_seconds[purges_before:])
            [heavy_s] = seconds(erase, ["custom:bench=heavy"])
    return ErasureReport(
        messages=messages,
        profiles=profiles,
        build_seconds=round(build, 1),
        db_mb=round(size_mb, 1),
        typical_profile_messages=per_profile,
        delete_profile_seconds=[round(x, 3) for x in totals],
        delete_without_purge_seconds=round(total - purge_s, 3),
        purge_seconds=round(purge_s, 3),
        heavy_profile_messages=heavy,
        heavy_delete_profile_seconds=round(heavy_s, 3),
    )


def report_dict(
    redaction: RedactionReport | None, erasure: ErasureReport | None
) -> dict[str, object]:
    return {
        "redaction": None if redaction is None else asdict(redaction),
        "erasure": None if erasure is None else asdict(erasure),
    }


def print_governance_bench(
    console: Console, redaction: RedactionReport, erasure: ErasureReport | None
) -> None:
    """The reports as a few lines of text."""
    console.print(
        f"redaction: {redaction.messages_per_s:,.0f} messages/s; false negatives "
        f"{redaction.missed}/{redaction.sensitive} ({redaction.false_negative_rate:.2%}); "
        f"clean messages changed {redaction.changed_clean}/{redaction.clean}"
    )
    for kind, counts in redaction.hard_missed.items():
        console.print(f"  out of scope, {kind}: missed {counts['missed']}/{counts['total']}")
    if erasure is not None:
        console.print(
            f"erasure at {erasure.messages:,} messages ({erasure.db_mb} MB): delete_profile of "
            f"{erasure.typical_profile_messages} messages "
            f"{', '.join(f'{s:.3f}' for s in erasure.delete_profile_seconds)} s "
            f"(without purge {erasure.delete_without_purge_seconds:.3f} s, purge "
            f"{erasure.purge_seconds:.3f} s); a profile of {erasure.heavy_profile_messages:,} "
            f"messages {erasure.heavy_delete_profile_seconds:.3f} s"
        )
