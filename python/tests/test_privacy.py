"""Differential privacy from Python: Federation.create(privacy=...),
Client.submit_private and the epsilon a coordinator reports. A round's
average must be the gradient step -lr * (sum of clipped gradients) /
(clients * records_per_client) up to the noise, whose standard deviation
the plan gives (Federation.privacy["noise_std"]); a record whose gradient
is not finite counts as zero and never raises; every structural mistake
raises its typed exception."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import ringsum
from conftest import HOLDERS, create

DP_CLIENTS = 3
FEATURES = 7
PARAMETERS = FEATURES + 1
# A loose budget so that a round's step stands out of its noise; the
# sampler's slack (1 + e^epsilon per noise sample) must fit in delta, which
# for this model and these rounds caps epsilon near 24.
PRIVACY = dict(
    epsilon=20.0,
    delta=1e-5,
    clip=1.0,
    learning_rate=0.5,
    records_per_client=20,
    max_records=30,
)


def dp_model() -> dict[str, np.ndarray]:
    """A linear model: weights and a bias."""
    return {"w": np.zeros(FEATURES, np.float32), "b": np.zeros(1, np.float32)}


def dp_create(keys: Path, privacy=PRIVACY, **kwargs) -> ringsum.Federation:
    options = dict(
        clients=[keys / f"client-{i}" for i in range(DP_CLIENTS)],
        min_clients=DP_CLIENTS,
        rounds=2,
        privacy=privacy,
    )
    options.update(kwargs)
    return create(keys, dp_model(), **options)


@pytest.fixture(scope="module")
def dp_federation(keys: Path) -> ringsum.Federation:
    return dp_create(keys)


class DpParty:
    """The coordinator, holders and the clients of a DP federation."""

    def __init__(self, keys: Path, federation: ringsum.Federation):
        self.federation = federation
        self.coordinator = ringsum.Coordinator(
            federation, ringsum.Identity.load(keys / "coordinator"), dp_model()
        )
        self.holders = [
            ringsum.Holder(federation, ringsum.Identity.load(keys / f"holder-{i}"))
            for i in range(HOLDERS)
        ]
        self.clients = [
            ringsum.Client(federation, ringsum.Identity.load(keys / f"client-{i}"))
            for i in range(federation.num_clients)
        ]

    def finish(self, announcement: bytes) -> ringsum.RoundResult:
        request = self.coordinator.close()
        for holder in self.holders:
            shares = self.coordinator.shares_for(holder.point)
            self.coordinator.accept_answer(holder.answer_round(announcement, shares, request))
        return self.coordinator.finish()


@pytest.fixture()
def dp_party(keys: Path, dp_federation) -> DpParty:
    return DpParty(keys, dp_federation)


def record_gradients(rng: np.random.Generator, records: int) -> np.ndarray:
    """Per-record gradients of a logistic regression at w = 0, b = 0:
    (sigmoid(0) - y) * (x, 1), most longer than the clipping norm."""
    x = rng.normal(0.6, 1.0, size=(records, FEATURES))
    y = (rng.random(records) < 0.2).astype(np.float64)
    residual = 0.5 - y
    return np.hstack([residual[:, None] * x, residual[:, None]]).astype(np.float32)


def clipped_sum(gradients: np.ndarray, clip: float) -> np.ndarray:
    """The sum of the records' gradients clipped to L2 norm `clip`, in
    float64 of the values as float32 sees them."""
    g = np.asarray(gradients, np.float32).astype(np.float64)
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    factors = np.minimum(1.0, clip / np.maximum(norms, 1e-300))
    return (g * factors).sum(axis=0)


def flat(structure) -> np.ndarray:
    return np.concatenate([structure["w"], structure["b"]]).astype(np.float64)


def as_records(gradients: np.ndarray) -> list[dict[str, np.ndarray]]:
    return [{"w": g[:FEATURES], "b": g[FEATURES:]} for g in gradients]


def assert_noised_step(
    result: ringsum.RoundResult, plan: dict, gradients: list[np.ndarray]
) -> None:
    """The round's average is the step over `gradients` (one array of
    records per client, all of them summed) up to the noise of the set and
    the stochastic rounding."""
    n = len(gradients)
    denominator = n * plan["records_per_client"]
    lr = plan["effective_learning_rate"]
    total = sum(clipped_sum(g, plan["clip"]) for g in gradients)
    expected = -lr * total / denominator
    # The sum holds n clients' noise; noise_std is for noise_clients.
    noise = lr * plan["noise_std"] * np.sqrt(n / plan["noise_clients"]) / denominator
    # Stochastic rounding moves each record's coordinate by less than
    # one quantum 2^-scale_bits.
    records = sum(len(g) for g in gradients)
    rounding = lr * records * 2.0 ** -plan["scale_bits"] / denominator
    average = flat(result.average)
    # The test can tell a wrong step from the noise.
    assert np.linalg.norm(expected) > 10 * (noise + rounding) * np.sqrt(PARAMETERS)
    z = (average - expected) / noise
    assert np.all(np.abs(average - expected) <= 6 * noise + rounding + result.error_bound), z
    assert np.sqrt(np.mean(z**2)) < 3, z


def test_a_private_round_is_the_noised_gradient_step(dp_party: DpParty) -> None:
    plan = dp_party.federation.privacy
    assert plan is not None
    rng = np.random.default_rng(18)
    coordinator = dp_party.coordinator
    assert coordinator.epsilon == 0.0
    epsilons = []
    for round in (1, 2):
        announcement = coordinator.open_round()
        # Fewer and more records than planned; three forms of input.
        counts = [17, 20, 29]
        gradients = [record_gradients(rng, n) for n in counts]
        forms = [
            gradients[0],  # 2-D float32, C order
            np.asfortranarray(gradients[1].astype(np.float64)),  # float64, Fortran order
            as_records(gradients[2]),  # one dict per record
        ]
        for client, form in zip(dp_party.clients, forms, strict=True):
            assert coordinator.accept(client.submit_private(round, form)) == client.index
        result = dp_party.finish(announcement)
        assert_noised_step(result, plan, gradients)
        np.testing.assert_allclose(flat(result.model), flat(coordinator.model()), rtol=0)

        assert result.samples == {i: plan["declared_samples"] for i in range(DP_CLIENTS)}
        assert result.epsilon is not None and result.epsilon > 0
        assert coordinator.epsilon == result.epsilon
        epsilons.append(result.epsilon)
        again = pickle.loads(pickle.dumps(result))
        assert again.epsilon == result.epsilon
        assert "epsilon=" in repr(result)
    # Every sum held exactly noise_clients clients: the plan's worst case,
    # which after all the rounds is at most the target.
    assert epsilons[0] < epsilons[1]
    assert epsilons[1] == pytest.approx(plan["planned_epsilon"], rel=1e-9)
    assert epsilons[1] <= PRIVACY["epsilon"]


def test_the_model_moves_down_the_gradient(keys: Path) -> None:
    """Many records: the step is close to the exact one."""
    privacy = dict(PRIVACY, records_per_client=200, max_records=200)
    party = DpParty(keys, dp_create(keys, privacy=privacy, rounds=1))
    rng = np.random.default_rng(3)
    announcement = party.coordinator.open_round()
    gradients = [record_gradients(rng, 200) for _ in range(DP_CLIENTS)]
    for client, g in zip(party.clients, gradients, strict=True):
        party.coordinator.accept(client.submit_private(1, g))
    result = party.finish(announcement)
    plan = party.federation.privacy
    expected = (
        -plan["effective_learning_rate"]
        * sum(clipped_sum(g, 1.0) for g in gradients)
        / (DP_CLIENTS * 200)
    )
    np.testing.assert_allclose(flat(result.average), expected, rtol=0.05, atol=0.01)


def test_records_may_be_any_iterable_and_float16(dp_party: DpParty) -> None:
    rng = np.random.default_rng(5)
    coordinator = dp_party.coordinator
    coordinator.open_round()
    g = record_gradients(rng, 10)
    inputs = [
        (np.asarray(row, np.float16) for row in g),  # a generator of single arrays
        [[row[:FEATURES], row[FEATURES:]] for row in g],  # lists by position
        np.empty((0, PARAMETERS), np.float32),  # no records: noise only
    ]
    for client, gradients in zip(dp_party.clients, inputs, strict=True):
        assert coordinator.accept(client.submit_private(1, gradients)) == client.index
    # A non-contiguous view, and a list of exactly max_records records.
    wide = np.zeros((5, 2 * PARAMETERS), np.float32)
    wide[:, ::2] = g[:5]
    client = dp_party.clients[0]
    assert isinstance(client.submit_private(1, wide[:, ::2]), bytes)
    assert isinstance(client.submit_private(1, list(g[:1]) * 30), bytes)


def test_a_record_that_is_not_finite_counts_as_zero(dp_party: DpParty) -> None:
    """NaN or an infinity anywhere in a record makes that record's gradient
    zero, in every form of input: the round completes and its step is the
    one over the other records (whether a client submits must not depend
    on one record)."""
    plan = dp_party.federation.privacy
    rng = np.random.default_rng(21)
    coordinator = dp_party.coordinator
    announcement = coordinator.open_round()
    gradients = [record_gradients(rng, n) for n in (20, 20, 20)]
    # Five records of each client are not finite; their other values,
    # were they used, would move the step by several noise deviations.
    broken = [g.copy() for g in gradients]
    for g in broken:
        g[:5] = 0.5
    broken[0][0, 3] = np.nan
    broken[0][1, :] = np.inf
    broken[0][2:5, 7] = -np.inf
    wide = broken[1].astype(np.float64)
    wide[:5, 0] = np.nan
    half = broken[2].astype(np.float16)
    half[:5, 2] = np.inf
    records = as_records(half)
    forms = [
        broken[0],  # 2-D float32
        np.asfortranarray(wide),  # 2-D float64, Fortran order
        records,  # one dict of float16 arrays per record
    ]
    for client, form in zip(dp_party.clients, forms, strict=True):
        assert coordinator.accept(client.submit_private(1, form)) == client.index
    result = dp_party.finish(announcement)
    # The same records with the broken ones as zero gradients.
    zeroed = [g.copy() for g in gradients]
    for g in zeroed:
        g[:5] = 0.0
    zeroed[2] = zeroed[2].astype(np.float16).astype(np.float32)
    assert_noised_step(result, plan, zeroed)
    assert result.samples == {i: plan["declared_samples"] for i in range(DP_CLIENTS)}


def test_plain_submissions_are_refused_in_a_private_federation(dp_party: DpParty) -> None:
    update = {k: np.full(v.shape, 0.01, v.dtype) for k, v in dp_model().items()}
    samples = dp_party.federation.privacy["declared_samples"]
    with pytest.raises(ringsum.RefusedError, match="differential privacy"):
        dp_party.clients[0].submit(1, update, samples)


def test_private_submissions_are_refused_without_privacy(party, model) -> None:
    assert party.federation.privacy is None
    assert party.coordinator.epsilon is None
    gradients = np.zeros((2, party.federation.parameter_count), np.float32)
    with pytest.raises(ringsum.RefusedError, match="no differential-privacy plan"):
        party.clients[0].submit_private(1, gradients)


def bad_gradients():
    """Structural mistakes: refused even where the values are not finite
    (which alone would only make a record a zero gradient)."""
    good = np.full((3, PARAMETERS), 0.1, np.float32)
    nan = np.full((3, PARAMETERS), np.nan, np.float32)
    records = as_records(good)
    renamed = as_records(good)
    renamed[2] = {"w": renamed[2]["w"], "bias": renamed[2]["b"]}
    nan_renamed = as_records(nan)
    nan_renamed[1] = {"w": nan_renamed[1]["w"], "bias": nan_renamed[1]["b"]}
    nan_short = as_records(nan)
    nan_short[0]["w"] = nan_short[0]["w"][:-1]
    return [
        (np.zeros((3, PARAMETERS + 1), np.float32), "shape"),
        (np.zeros(PARAMETERS, np.float32), "shape"),
        (np.zeros((2, 4, 2), np.float32), "shape"),
        (good.astype(np.int64), "dtype"),
        (np.ma.masked_array(good), "masked"),
        (np.full((3, PARAMETERS + 1), np.nan, np.float32), "shape"),
        (nan.astype(np.complex64), "dtype"),
        (renamed, 'record 2: tensor "bias" is not in the layout'),
        (nan_renamed, 'record 1: tensor "bias" is not in the layout'),
        (nan_short, 'record 0: tensor "w": shape'),
        (records[0], "one dict"),
        ("gradients", "one str"),
        (5, "got int"),
        ([np.zeros(PARAMETERS - 1, np.float32)], "record 0"),
        ([[0.1] * PARAMETERS], "record 0"),
        (np.zeros((31, PARAMETERS), np.float32), "max_records"),
        (as_records(np.zeros((31, PARAMETERS), np.float32)), "max_records"),
        (np.full((31, PARAMETERS), np.nan, np.float32), "max_records"),
        (as_records(np.full((31, PARAMETERS), np.inf, np.float32)), "max_records"),
        ((np.zeros(PARAMETERS, np.float32) for _ in range(10**9)), "max_records"),
    ]


@pytest.mark.parametrize(("gradients", "match"), bad_gradients())
def test_bad_gradients_are_refused(dp_party: DpParty, gradients, match) -> None:
    with pytest.raises(ringsum.InputError, match=match):
        dp_party.clients[0].submit_private(1, gradients)


def test_bad_rounds_are_refused(dp_party: DpParty) -> None:
    gradients = np.zeros((1, PARAMETERS), np.float32)
    client = dp_party.clients[0]
    with pytest.raises(ringsum.InputError, match="round"):
        client.submit_private(-1, gradients)
    for round in (0, 3):
        with pytest.raises(ringsum.RefusedError):
            client.submit_private(round, gradients)


def test_a_generator_that_fails_raises_its_error_as_input_error(dp_party: DpParty) -> None:
    def records():
        yield np.zeros(PARAMETERS, np.float32)
        raise RuntimeError("the data loader broke")

    with pytest.raises(ringsum.InputError, match="the data loader broke"):
        dp_party.clients[0].submit_private(1, records())


def test_federation_privacy_reports_settings_and_plan(dp_federation, federation) -> None:
    plan = dp_federation.privacy
    assert set(plan) == {
        "epsilon",
        "delta",
        "clip",
        "learning_rate",
        "records_per_client",
        "max_records",
        "noise_clients",
        "declared_samples",
        "effective_learning_rate",
        "noise_std",
        "scale_bits",
        "planned_epsilon",
    }
    for key, value in PRIVACY.items():
        assert plan[key] == value, key
    assert plan["noise_clients"] == DP_CLIENTS  # min_clients
    assert isinstance(plan["declared_samples"], int) and plan["declared_samples"] >= 1
    assert plan["effective_learning_rate"] == pytest.approx(PRIVACY["learning_rate"], rel=0.01)
    assert plan["noise_std"] > 0
    assert isinstance(plan["scale_bits"], int) and plan["scale_bits"] >= 0
    assert 0 < plan["planned_epsilon"] <= PRIVACY["epsilon"]
    assert federation.privacy is None


def test_defaults(keys: Path) -> None:
    required = {k: PRIVACY[k] for k in ("epsilon", "delta", "records_per_client", "max_records")}
    plan = dp_create(keys, privacy=required, min_clients=2).privacy
    assert (plan["clip"], plan["learning_rate"], plan["noise_clients"]) == (1.0, 2.0, 2)


def test_privacy_is_part_of_the_id_and_the_description(keys: Path, dp_federation) -> None:
    plain = dp_create(keys, privacy=None)
    assert plain.privacy is None
    assert plain.id != dp_federation.id
    assert dp_create(keys).id == dp_federation.id
    assert dp_create(keys, privacy=dict(PRIVACY, epsilon=21.0)).id != dp_federation.id
    assert dp_create(keys, privacy=dict(PRIVACY, noise_clients=2)).id != dp_federation.id
    again = ringsum.Federation.from_json(dp_federation.to_json())
    assert again == dp_federation and again.id == dp_federation.id
    assert again.privacy == dp_federation.privacy
    assert json.loads(dp_federation.to_json())["privacy"]["epsilon"] == PRIVACY["epsilon"]
    unpickled = pickle.loads(pickle.dumps(dp_federation))
    assert unpickled.id == dp_federation.id


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"epsilon": -1.0}, ringsum.InputError, "epsilon must be a positive number"),
        ({"epsilon": 0}, ringsum.InputError, "epsilon must be a positive number"),
        ({"epsilon": float("nan")}, ringsum.InputError, "epsilon"),
        ({"epsilon": float("inf")}, ringsum.InputError, "epsilon"),
        ({"epsilon": "4"}, ringsum.InputError, "epsilon must be a number"),
        ({"epsilon": True}, ringsum.InputError, "epsilon must be a number"),
        ({"delta": 0.0}, ringsum.InputError, "delta must lie strictly between 0 and 1"),
        ({"delta": 1.0}, ringsum.InputError, "delta"),
        ({"clip": 0.0}, ringsum.InputError, "clipping norm"),
        ({"clip": -2.0}, ringsum.InputError, "clipping norm"),
        ({"clip": 1e-9}, ringsum.InputError, "clipping norm must be .* between 1e-6 and 1e6"),
        ({"clip": 1e7}, ringsum.InputError, "clipping norm"),
        ({"learning_rate": 0.0}, ringsum.InputError, "learning rate"),
        ({"records_per_client": 0}, ringsum.InputError, "records_per_client must be between"),
        ({"records_per_client": 31}, ringsum.InputError, "records_per_client must be between"),
        ({"records_per_client": 2.5}, ringsum.InputError, "non-negative integer"),
        ({"max_records": -1}, ringsum.InputError, "max_records must be a non-negative integer"),
        ({"noise_clients": 0}, ringsum.InputError, "noise_clients must be between"),
        ({"noise_clients": 4}, ringsum.SetupError, "exceeds min_clients"),
        ({"unknown": 1}, ringsum.InputError, "unknown key 'unknown'"),
        ({"epsilon": None}, ringsum.InputError, "epsilon is required"),
        ({"max_records": 2**40, "records_per_client": 1}, ringsum.InputError, "max_records"),
        # Valid settings this parameter set cannot meet.
        # (records_per_client large enough for the weight to express the
        # learning rate at every scale tried, so that overflow is what fails)
        ({"max_records": 2**32, "records_per_client": 1000}, ringsum.SetupError, "overflow"),
        # Variance above what the sampler supports at every usable scale.
        ({"epsilon": 1e-6, "delta": 1e-12}, ringsum.SetupError, "more noise than the sampler"),
        # No variance the accountant tries reaches the target.
        ({"epsilon": 1e-9, "delta": 1e-14}, ringsum.SetupError, "no per-client variance"),
        # The weight slot cannot give a step this large to within 1%.
        ({"learning_rate": 1e6}, ringsum.SetupError, "cannot be expressed"),
        # The sampler's slack grows as e^epsilon and leaves no room in delta.
        ({"epsilon": 40.0}, ringsum.SetupError, "raise delta"),
    ],
)
def test_bad_settings_are_refused(keys: Path, change, error, match) -> None:
    with pytest.raises(error, match=match):
        dp_create(keys, privacy=dict(PRIVACY, **change))


def test_bad_privacy_arguments_are_refused(keys: Path) -> None:
    with pytest.raises(ringsum.InputError, match="privacy must be a dict"):
        dp_create(keys, privacy=[("epsilon", 1.0)])
    with pytest.raises(ringsum.InputError, match="delta is required"):
        dp_create(keys, privacy={"epsilon": 1.0, "records_per_client": 1, "max_records": 1})


def test_a_larger_set_spends_less_and_only_finished_rounds_count(keys: Path) -> None:
    # noise_clients == min_clients: no client of a set is assumed to skip
    # its noise, so every client beyond min_clients is noise the plan did
    # not count on.
    privacy = dict(PRIVACY, noise_clients=2)
    party = DpParty(keys, dp_create(keys, privacy=privacy, min_clients=2, rounds=1))
    coordinator = party.coordinator
    announcement = coordinator.open_round()
    rng = np.random.default_rng(9)
    for client in party.clients:
        coordinator.accept(client.submit_private(1, record_gradients(rng, 20)))
    # Not closed yet: refused, nothing charged.
    with pytest.raises(ringsum.RefusedError):
        coordinator.finish()
    assert coordinator.epsilon == 0.0
    result = party.finish(announcement)
    # Three clients' noise where the plan counts on two.
    assert 0 < result.epsilon < party.federation.privacy["planned_epsilon"]
    assert coordinator.epsilon == result.epsilon


def test_clients_that_may_skip_their_noise_are_not_counted(keys: Path) -> None:
    """noise_clients = 2 of min_clients = 3: one client of a set may add no
    noise. A set of three is charged as two honest clients (the plan's
    round), a set of four as three (less)."""
    privacy = dict(PRIVACY, noise_clients=2)
    federation = dp_create(
        keys,
        privacy=privacy,
        clients=[keys / f"client-{i}" for i in range(4)],
        min_clients=3,
        rounds=1,
    )
    planned = federation.privacy["planned_epsilon"]
    rng = np.random.default_rng(10)
    spent = {}
    for size in (3, 4):
        party = DpParty(keys, federation)
        announcement = party.coordinator.open_round()
        for client in party.clients[:size]:
            party.coordinator.accept(client.submit_private(1, record_gradients(rng, 20)))
        spent[size] = party.finish(announcement).epsilon
    assert spent[3] == pytest.approx(planned, rel=1e-9)
    assert 0 < spent[4] < planned


def test_a_round_abandoned_after_close_is_charged_its_worst_case(keys: Path) -> None:
    """Once the set went to the holders its sum may be opened: abandoning
    the round then still spends the plan's round; before close() it does
    not."""
    party = DpParty(keys, dp_create(keys, rounds=2))
    coordinator = party.coordinator
    rng = np.random.default_rng(11)
    coordinator.open_round()
    for client in party.clients:
        coordinator.accept(client.submit_private(1, record_gradients(rng, 20)))
    coordinator.abandon("not closed")
    assert coordinator.epsilon == 0.0
    announcement = coordinator.open_round()
    for client in party.clients:
        coordinator.accept(client.submit_private(2, record_gradients(rng, 20)))
    request = coordinator.close()
    holder = party.holders[0]
    holder.answer_round(announcement, coordinator.shares_for(holder.point), request)
    coordinator.abandon("answers lost")
    planned_round = party.federation.privacy["planned_epsilon"]
    assert 0 < coordinator.epsilon <= planned_round
