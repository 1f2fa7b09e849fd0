"""The typed collection keys of :mod:`memory_core.backends.base`."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from memory_core.backends.base import COLLECTIONS, Collection, CollectionSpec
from memory_core.models import ApiKey, Message, Profile


def test_keys_name_their_collection_and_model() -> None:
    assert Collection.PROFILES.value == "profiles"
    assert Collection.PROFILES.model is Profile
    assert Collection.MESSAGES.model is Message
    assert Collection.API_KEYS.model is ApiKey
    assert str(Collection.TRAIT_SCHEMA) == "trait_schema"
    assert f"{Collection.MESSAGES}/{Collection.AUDIT:>7}" == "messages/  audit"
    assert repr(Collection.CHUNKS) == "Collection('chunks')"


def test_the_class_lists_and_looks_up_its_keys_like_an_enum() -> None:
    assert list(Collection) == Collection.all() == list(COLLECTIONS)
    assert len(Collection) == len(COLLECTIONS) == 18
    assert [c.value for c in Collection][:3] == ["profiles", "identifiers", "traits"]
    assert Collection("profiles") is Collection.PROFILES
    assert Collection(Collection.SOURCES) is Collection.SOURCES
    assert Collection.PROFILES in Collection
    assert "profiles" not in Collection
    bad: list[Any] = ["nope", "PROFILES", 3, None]
    for name in bad:
        with pytest.raises(ValueError, match="is not a valid Collection"):
            Collection(name)


def test_keys_are_singletons() -> None:
    key = Collection.TRAITS
    assert key is Collection("traits")
    assert {key: 1}[Collection.TRAITS] == 1
    assert copy.copy(key) is key
    assert copy.deepcopy({key: [1]}) == {key: [1]}
    assert pickle.loads(pickle.dumps(key)) is key
    assert not isinstance(key, str)  # unlike the StrEnum it replaced: use .value
    with pytest.raises(AttributeError, match="immutable"):
        key._value = "other"


def test_every_key_has_its_spec() -> None:
    for key, spec in COLLECTIONS.items():
        assert spec.name is key
        assert key.spec is spec
        assert spec.model is key.model
        assert spec.kind and spec.noun
    assert Collection.KNOWLEDGE_BASES.spec.kind == "knowledge_base"
    assert Collection.KNOWLEDGE_BASES.spec.noun == "knowledge base"
    assert Collection.API_KEYS.spec.noun == "API key"


def test_a_spec_must_match_its_keys_model() -> None:
    with pytest.raises(TypeError, match="holds Profile"):
        CollectionSpec(Collection.PROFILES, Message, ())
