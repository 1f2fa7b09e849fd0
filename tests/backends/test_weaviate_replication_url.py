"""Replication and consistency settings in a Weaviate backend URL."""

from __future__ import annotations

import pytest

from memory_core.backends.weaviate_connect import parse_weaviate_url
from memory_core.errors import ConfigError


def test_replication_defaults_to_one_copy_and_the_servers_consistency() -> None:
    target = parse_weaviate_url("weaviate://127.0.0.1:8080")
    assert (target.replication, target.consistency) == (1, None)


def test_a_replicated_target_reads_and_writes_at_quorum_unless_told() -> None:
    target = parse_weaviate_url("weaviate://db:8080?replication=3")
    assert (target.replication, target.consistency) == (3, "QUORUM")
    target = parse_weaviate_url("weaviate://db:8080?replication=3&consistency=all")
    assert target.consistency == "ALL"


@pytest.mark.parametrize(
    "query, message",
    [
        ("replication=0", "replication must be"),
        ("replication=three", "replication must be"),
        ("consistency=MOST", "consistency must be one of ONE, QUORUM, ALL"),
        ("replicas=3", "unknown parameter"),
    ],
)
def test_bad_replication_settings_are_refused(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_weaviate_url(f"weaviate://db:8080?{query}")
