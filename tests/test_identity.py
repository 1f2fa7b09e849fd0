from __future__ import annotations

import pytest

from memory_core.errors import InvalidIdentifierError, MemoryCoreError
from memory_core.identity import normalize, parse_identifier
from memory_core.models import IdentifierKind


@pytest.mark.parametrize(
    "raw",
    ["(617) 555-0142", "+1 617-555-0142", "617.555.0142", "+16175550142", "1 617 555 0142"],
)
def test_us_phone_spellings_normalise_to_one_e164(raw: str) -> None:
    assert normalize("phone", raw).value == "+16175550142"


def test_phone_region_applies_only_without_country_code() -> None:
    assert normalize("phone", "020 7946 0018", default_region="GB").value == "+442079460018"
    assert normalize("phone", "+1 617 555 0142", default_region="GB").value == "+16175550142"


def test_whatsapp_prefix_and_kind() -> None:
    ident = normalize("whatsapp", "whatsapp:+44 20 7946 0018")
    assert ident.kind is IdentifierKind.WHATSAPP
    assert ident.value == "+442079460018"


def test_email_is_case_folded_and_trimmed() -> None:
    assert normalize("email", "  Dana.Whitfield@Example.COM ").value == "dana.whitfield@example.com"
    assert normalize("email", "mailto:A@b.io").value == "a@b.io"


def test_custom_ids_need_a_namespace() -> None:
    assert normalize("custom", "Loyalty = AB12").value == "loyalty=AB12"
    with pytest.raises(InvalidIdentifierError, match="namespace"):
        normalize("custom", "AB12")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("phone", "not a number"),
        ("phone", "12"),
        ("email", "no-at-sign"),
        ("email", "a@b"),
        ("chat_id", "   "),
        ("fax", "123"),
        ("chat_id", "x" * 400),  # over the identifier limit (320)
    ],
)
def test_malformed_identifiers_raise_a_typed_error(kind: str, value: str) -> None:
    with pytest.raises(InvalidIdentifierError) as info:
        normalize(kind, value)
    assert isinstance(info.value, MemoryCoreError)
    assert isinstance(info.value, ValueError)


def test_parse_identifier_with_kind_and_guessing() -> None:
    assert str(parse_identifier("phone:(617) 555-0142")) == "phone:+16175550142"
    assert str(parse_identifier("Ann@Example.com")) == "email:ann@example.com"
    assert str(parse_identifier("+1 617 555 0142")) == "phone:+16175550142"
    assert str(parse_identifier("chat_id:web-1")) == "chat_id:web-1"
    with pytest.raises(InvalidIdentifierError, match="kind:value"):
        parse_identifier("web-1")
