"""What reconciliation needs from every backend, beyond the generic contract:
inside one batch, a search over observations sees the versions just written
(a proposal is compared with what the same extraction added a moment before),
and ``as_of`` filters on validity times behave the same everywhere."""

from __future__ import annotations

from datetime import timedelta

from memory_core.backends.base import Backend, Collection, SearchMode, Where
from memory_core.models import ObservationStatus
from tests.contract.test_backend_contract import T0, ids, observation, query, unit, vectors

OBS = Collection.OBSERVATIONS
ACTIVE = Where(eq={"profile_id": "prf_a", "status": "active"})


def test_a_batch_searches_the_observations_it_just_wrote(backend: Backend, tenant: str) -> None:
    with backend.batch():
        boston = observation(tenant, "obs_1", "Lives in Boston")
        backend.upsert(tenant, OBS, [boston], vectors(unit(1)))
        hits = backend.search(
            tenant, OBS, mode=SearchMode.VECTOR, vector=query(unit(1)), where=ACTIVE
        )
        assert ids(hits) == ["obs_1"]

        denver = observation(tenant, "obs_2", "Lives in Denver", days=30)
        old = boston.model_copy(
            update={
                "status": ObservationStatus.SUPERSEDED,
                "valid_to": denver.valid_from,
                "superseded_by": "obs_2",
            }
        )
        backend.upsert(tenant, OBS, [denver, old], vectors(unit(1), unit(1)))
        hits = backend.search(
            tenant, OBS, mode=SearchMode.VECTOR, vector=query(unit(1)), where=ACTIVE
        )
        assert ids(hits) == ["obs_2"]
    keyword = backend.search(tenant, OBS, mode=SearchMode.KEYWORD, text="lives", where=ACTIVE)
    assert ids(keyword) == ["obs_2"]


def test_validity_windows_filter_alike(backend: Backend, tenant: str) -> None:
    records = [
        observation(tenant, "obs_1", "Lives in Boston", valid_to=T0 + timedelta(days=30),
                    status=ObservationStatus.SUPERSEDED),
        observation(tenant, "obs_2", "Lives in Denver", days=30),
        observation(tenant, "obs_3", "Lives in Paris", days=60, profile_id="prf_b"),
    ]  # fmt: skip
    backend.upsert(tenant, OBS, records, vectors(unit(1), unit(1), unit(1)))
    started_by_day_10 = Where(
        eq={"profile_id": "prf_a"}, lt={"valid_from": T0 + timedelta(days=10)}
    )
    assert ids(backend.find(tenant, OBS, started_by_day_10)) == ["obs_1"]
    open_ended = Where(eq={"profile_id": "prf_a", "valid_to": None})
    assert ids(backend.find(tenant, OBS, open_ended)) == ["obs_2"]
    ended_after_day_10 = Where(gte={"valid_to": T0 + timedelta(days=10)})
    assert ids(backend.find(tenant, OBS, ended_after_day_10)) == ["obs_1"]
    statuses = Where(any_of={"status": ["active", "superseded"]}, eq={"profile_id": "prf_a"})
    assert ids(backend.find(tenant, OBS, statuses, order_by="valid_from")) == ["obs_1", "obs_2"]
