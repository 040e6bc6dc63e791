"""Shared fixtures: key directories made once per session, a small model and
federations on the smallest parameter set (rk128-n4096) so rounds are quick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ringsum

HOLDERS = 3
CLIENTS = 4
PARAMETER_SET = "rk128-n4096"


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """keygen directories: coordinator, holder-0..2, client-0..3."""
    root = tmp_path_factory.mktemp("keys")
    ringsum.keygen(root / "coordinator")
    for i in range(HOLDERS):
        ringsum.keygen(root / f"holder-{i}", holder=True)
    for i in range(CLIENTS):
        ringsum.keygen(root / f"client-{i}")
    return root


def make_model() -> dict[str, np.ndarray]:
    """A model of several shapes and all three float dtypes."""
    return {
        "conv.weight": np.zeros((4, 3, 2), dtype=np.float32),
        "conv.bias": np.full(4, 0.5, dtype=np.float64),
        "head.weight": np.zeros((3, 2), dtype=np.float16),
        "head.scale": np.array(1.0, dtype=np.float32),
    }


@pytest.fixture()
def model() -> dict[str, np.ndarray]:
    return make_model()


def create(keys: Path, layout, **kwargs) -> ringsum.Federation:
    options = dict(
        layout=layout,
        coordinator=keys / "coordinator",
        holders=[keys / f"holder-{i}" for i in range(HOLDERS)],
        clients=[keys / f"client-{i}" for i in range(CLIENTS)],
        threshold=2,
        parameter_set=PARAMETER_SET,
    )
    options.update(kwargs)
    return ringsum.Federation.create(**options)


@pytest.fixture(scope="session")
def federation(keys: Path) -> ringsum.Federation:
    return create(keys, make_model(), application={"model": "test", "lr": 0.1})


class Party:
    """Everyone of a federation, loaded from the key directories."""

    def __init__(self, keys: Path, federation: ringsum.Federation, model, **coordinator_options):
        self.federation = federation
        self.coordinator = ringsum.Coordinator(
            federation, ringsum.Identity.load(keys / "coordinator"), model, **coordinator_options
        )
        self.holders = [
            ringsum.Holder(federation, ringsum.Identity.load(keys / f"holder-{i}"))
            for i in range(HOLDERS)
        ]
        self.clients = [
            ringsum.Client(federation, ringsum.Identity.load(keys / f"client-{i}"))
            for i in range(CLIENTS)
        ]

    def answer_all(self, announcement: bytes, request: bytes) -> None:
        for holder in self.holders:
            shares = self.coordinator.shares_for(holder.point)
            answer = holder.answer_round(announcement, shares, request)
            self.coordinator.accept_answer(answer)


@pytest.fixture()
def party(keys: Path, federation: ringsum.Federation, model) -> Party:
    return Party(keys, federation, model)


def random_update(rng: np.random.Generator, like, scale: float = 0.1):
    """An update of the structure `like` (dict, list or array), same dtypes."""
    if isinstance(like, dict):
        return {k: random_update(rng, v, scale) for k, v in like.items()}
    if isinstance(like, (list, tuple)):
        return type(like)(random_update(rng, v, scale) for v in like)
    return np.asarray(rng.normal(size=like.shape) * scale).astype(like.dtype)


def exact_average(updates, weights):
    """The weighted average in float64, of the values as float32 sees them."""
    total = float(sum(weights))

    def average(values):
        return (
            sum(
                w * np.asarray(v, dtype=np.float32).astype(np.float64)
                for w, v in zip(weights, values, strict=True)
            )
            / total
        )

    first = updates[0]
    if isinstance(first, dict):
        return {k: average([u[k] for u in updates]) for k in first}
    if isinstance(first, (list, tuple)):
        return [average([u[i] for u in updates]) for i in range(len(first))]
    return average(updates)


def tolerance(array: np.ndarray, bound: float) -> float:
    """The error bound plus the rounding of the result's own dtype."""
    return bound + float(np.finfo(array.dtype).eps) * float(np.max(np.abs(array), initial=0.0))


def assert_average(result, updates, weights) -> None:
    """Each tensor of a dict-shaped `result.average` equals the exact weighted
    average of `updates` within the round's error bound."""
    exact = exact_average(updates, weights)
    for k, average in result.average.items():
        np.testing.assert_allclose(
            average.astype(np.float64),
            exact[k],
            rtol=0,
            atol=tolerance(average, result.error_bound),
        )


def two_sets_for_round_one(keys: Path, federation, model) -> tuple[bytes, list, bytes, list, bytes]:
    """Two coordinators (same key) ask round 1 for S1 = {0,1,2} and S2 = {0,1}."""
    identity = ringsum.Identity.load(keys / "coordinator")
    first = ringsum.Coordinator(federation, identity, model)
    second = ringsum.Coordinator(federation, identity, model)
    announcement = first.open_round()
    second.open_round()
    clients = [
        ringsum.Client(federation, ringsum.Identity.load(keys / f"client-{i}")) for i in range(3)
    ]
    update = {k: np.full(v.shape, 0.25, v.dtype) for k, v in model.items()}
    submissions = [c.submit(1, update, 10) for c in clients]
    for s in submissions:
        first.accept(s)
    for s in submissions[:2]:
        second.accept(s)
    return announcement, first, first.close(), second, second.close()
