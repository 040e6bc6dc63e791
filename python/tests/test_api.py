"""The Python API of ringsum, end to end: whole rounds, the holder's journal,
pickling, and every bad input raising its typed exception."""

from __future__ import annotations

import gc
import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import ringsum
from conftest import (
    CLIENTS,
    HOLDERS,
    PARAMETER_SET,
    Party,
    assert_average,
    create,
    exact_average,
    make_model,
    random_update,
    tolerance,
)


def test_module_surface() -> None:
    for name in ringsum.__all__:
        assert hasattr(ringsum, name), name
    assert issubclass(ringsum.InputError, ringsum.RingsumError)
    assert issubclass(ringsum.InputError, ValueError)
    for cls in (
        ringsum.FormatError,
        ringsum.AuthenticationError,
        ringsum.RefusedError,
        ringsum.RoundFailedError,
        ringsum.SetupError,
    ):
        assert issubclass(cls, ringsum.RingsumError)
        assert cls.__module__ == "ringsum"
    assert PARAMETER_SET in ringsum.parameter_sets()
    assert "rk128-n16384" in ringsum.parameter_sets()
    assert ringsum.layout_of(make_model()) == [
        ("conv.weight", (4, 3, 2)),
        ("conv.bias", (4,)),
        ("head.weight", (3, 2)),
        ("head.scale", (1,)),
    ]
    assert ringsum.layout_of([np.zeros(3), np.zeros((2, 2))]) == [("0", (3,)), ("1", (2, 2))]


def test_federation_properties(federation: ringsum.Federation, keys: Path) -> None:
    assert len(federation.id) == 64
    assert federation.parameter_set == PARAMETER_SET
    assert federation.layout == ringsum.layout_of(make_model())
    assert federation.parameter_count == 24 + 4 + 6 + 1
    assert federation.threshold == 2
    assert federation.holders == [1, 2, 3]
    assert federation.num_clients == CLIENTS
    assert (federation.min_clients, federation.min_samples) == (2, 1)
    assert (federation.max_weight, federation.rounds) == (10000, 100)
    assert federation.clip > 0
    assert federation.application == {"model": "test", "lr": 0.1}
    for i in range(CLIENTS):
        identity = ringsum.Identity.load(keys / f"client-{i}")
        assert federation.client_index(identity) == i
        assert federation.client_index(identity.id) == i
        assert federation.holder_point(identity) is None
    for i in range(HOLDERS):
        identity = ringsum.Identity.load(keys / f"holder-{i}")
        assert identity.is_holder
        assert federation.holder_point(identity) == i + 1
        assert federation.client_index(identity) is None
    description = json.loads(federation.to_json())
    assert description["version"] == 2
    assert len(description["clients"]) == CLIENTS


def test_federation_files_and_pickling(federation: ringsum.Federation, tmp_path: Path) -> None:
    path = tmp_path / "federation.json"
    federation.save(path)
    loaded = ringsum.Federation.load(path)
    assert loaded == federation and loaded.id == federation.id
    assert hash(loaded) == hash(federation)
    again = pickle.loads(pickle.dumps(federation))
    assert again == federation and again.id == federation.id
    assert ringsum.Federation.from_json(federation.to_json()) == federation
    assert federation.id in repr(federation)


def test_identity_is_not_pickled_and_shows_only_its_id(keys: Path) -> None:
    identity = ringsum.Identity.load(keys / "client-0")
    assert repr(identity) == f"Identity(id={identity.id})"
    assert identity.algorithm == "ML-DSA-65"
    assert not identity.is_holder
    with pytest.raises(TypeError):
        pickle.dumps(identity)


def test_participants_are_not_pickled(party: Party) -> None:
    for obj in (party.clients[0], party.holders[0], party.coordinator):
        with pytest.raises(TypeError):
            pickle.dumps(obj)


def check_round(result: ringsum.RoundResult, updates, weights, initial) -> None:
    exact = exact_average(updates, weights)
    if isinstance(initial, dict):
        assert list(result.average) == list(initial)
        pairs = [(result.average[k], exact[k], result.model[k], initial[k]) for k in initial]
    else:
        assert type(result.average) is type(initial)
        pairs = list(zip(result.average, exact, result.model, initial, strict=True))
    for average, expected, model, start in pairs:
        assert average.dtype == start.dtype and average.shape == start.shape
        assert model.dtype == start.dtype and model.shape == start.shape
        np.testing.assert_allclose(
            average.astype(np.float64),
            expected,
            rtol=0,
            atol=tolerance(average, result.error_bound),
        )
        np.testing.assert_allclose(
            model.astype(np.float64),
            start.astype(np.float64) + expected,
            rtol=0,
            atol=tolerance(model, result.error_bound) + 1e-6,
        )


def test_full_round_with_dicts(party: Party, model) -> None:
    rng = np.random.default_rng(7)
    coordinator = party.coordinator
    assert coordinator.round == 0
    assert coordinator.status == {"phase": "idle", "round": 0, "accepted": 0, "answers": 0}
    announcement = coordinator.open_round()
    assert coordinator.round == 1
    updates, weights = [], [50, 120, 400]
    for client, samples in zip(party.clients[:3], weights, strict=True):
        update = random_update(rng, model)
        updates.append(update)
        assert coordinator.accept(client.submit(1, update, samples)) == client.index
    assert coordinator.accepted == [0, 1, 2]
    assert coordinator.status["phase"] == "collecting"
    request = coordinator.close()
    assert coordinator.status == {"phase": "answering", "round": 1, "accepted": 3, "answers": 0}
    party.answer_all(announcement, request)
    result = coordinator.finish()
    assert result.round == 1
    assert result.clients == [0, 1, 2]
    assert result.liars == []
    assert len(result.used) >= 2
    assert result.weight_sum > 0 and 0 < result.error_bound < 0.05
    assert isinstance(result.publication, bytes)
    check_round(result, updates, weights, model)
    # A result is a plain record: it pickles, and reads back the same.
    again = pickle.loads(pickle.dumps(result))
    assert repr(again) == repr(result) and again.publication == result.publication
    assert (again.samples, again.total_samples, again.used) == (
        result.samples,
        result.total_samples,
        result.used,
    )
    for k in model:
        np.testing.assert_array_equal(again.average[k], result.average[k])
        np.testing.assert_array_equal(again.model[k], result.model[k])
    assert party.federation.read_publication(again.publication)[1] == 1
    current = coordinator.model()
    for k in model:
        np.testing.assert_array_equal(current[k], result.model[k])
    assert coordinator.status["phase"] == "idle"
    lines = coordinator.audit_lines()
    assert json.loads(json.loads(lines[-1])["event"])["type"] == "round_finished"

    # The next round starts from the new model, with the list of holders'
    # steps taken one at a time.
    announcement = coordinator.open_round()
    updates = [random_update(rng, model) for _ in range(2)]
    for client, update in zip(party.clients[2:], updates, strict=True):
        coordinator.accept(client.submit(2, update, 10))
    request = coordinator.close()
    for holder in party.holders[:2]:
        assert holder.follow(announcement) == 2
        for share in coordinator.shares_for(holder.point):
            assert holder.receive_share(share) in (2, 3)
        coordinator.accept_answer(holder.answer(request))
    second = coordinator.finish()
    assert second.round == 2 and second.clients == [2, 3]
    assert_average(second, updates, [10, 10])


def test_full_round_with_lists_and_one_array(keys: Path) -> None:
    rng = np.random.default_rng(11)
    initial = [
        np.ones((5, 2), dtype=np.float64),
        np.zeros(3, dtype=np.float16),
        np.zeros((2, 2, 2), dtype=np.float32),
    ]
    federation = create(keys, initial)
    assert [name for name, _ in federation.layout] == ["0", "1", "2"]
    party = Party(keys, federation, initial)
    announcement = party.coordinator.open_round()
    updates, weights = [], [3, 5, 8, 13]
    for client, samples in zip(party.clients, weights, strict=True):
        update = random_update(rng, initial)
        updates.append(update)
        # A tuple is as good as a list; so is one flat array in layout order.
        if client.index == 1:
            update = tuple(update)
        if client.index == 2:
            update = np.concatenate([u.astype(np.float32).ravel() for u in update])
        party.coordinator.accept(client.submit(1, update, samples))
    party.answer_all(announcement, party.coordinator.close())
    result = party.coordinator.finish()
    assert isinstance(result.average, list)
    check_round(result, updates, weights, initial)

    # A coordinator whose model is one array gives one array back.
    flat = np.zeros(federation.parameter_count, dtype=np.float32)
    single = Party(keys, federation, flat)
    announcement = single.coordinator.open_round()
    for client in single.clients[:2]:
        single.coordinator.accept(client.submit(1, random_update(rng, initial), 4))
    single.answer_all(announcement, single.coordinator.close())
    result = single.coordinator.finish()
    assert isinstance(result.average, np.ndarray)
    assert result.average.shape == flat.shape and result.average.dtype == np.float32


def test_submissions_from_threads(party: Party, model) -> None:
    rng = np.random.default_rng(3)
    updates = [random_update(rng, model) for _ in range(CLIENTS)]
    announcement = party.coordinator.open_round()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        submissions = list(
            pool.map(lambda cu: cu[0].submit(1, cu[1], 7), zip(party.clients, updates, strict=True))
        )
        indices = list(pool.map(party.coordinator.accept, submissions))
    assert sorted(indices) == list(range(CLIENTS))
    party.answer_all(announcement, party.coordinator.close())
    check_round(party.coordinator.finish(), updates, [7] * CLIENTS, model)


def test_holder_journal_refuses_a_second_set_after_a_restart(
    keys: Path, federation: ringsum.Federation, model, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    journal = tmp_path / "holder-1.redb"
    party = Party(keys, federation, model)
    holder_identity = ringsum.Identity.load(keys / "holder-0")
    holder = ringsum.Holder(federation, holder_identity, journal=journal)
    assert holder.point == 1
    announcement = party.coordinator.open_round()
    submissions = [c.submit(1, random_update(rng, model), 10) for c in party.clients[:3]]
    for s in submissions:
        party.coordinator.accept(s)
    request = party.coordinator.close()
    answer = holder.answer_round(announcement, party.coordinator.shares_for(1), request)
    assert party.coordinator.accept_answer(answer) == 1

    # The holder restarts on the same journal.
    del holder
    gc.collect()
    holder = ringsum.Holder(federation, holder_identity, journal=journal)

    # A second coordinator (the same key) asks another set for round 1.
    rogue = ringsum.Coordinator(federation, ringsum.Identity.load(keys / "coordinator"), model)
    rogue_announcement = rogue.open_round()
    for s in submissions[:2]:
        rogue.accept(s)
    rogue_request = rogue.close()
    assert holder.follow(rogue_announcement) == 1
    with pytest.raises(ringsum.RefusedError, match="already answered"):
        holder.answer(rogue_request)
    with pytest.raises(ringsum.RefusedError):
        holder.answer_round(rogue_announcement, rogue.shares_for(1), rogue_request)

    # The set it answered gets its answer again, and the round completes.
    again = holder.answer(request)
    other = party.holders[1]
    party.coordinator.accept_answer(
        other.answer_round(announcement, party.coordinator.shares_for(other.point), request)
    )
    with pytest.raises(ringsum.RefusedError):
        party.coordinator.accept_answer(again)  # the same holder's answer twice
    result = party.coordinator.finish()
    assert result.clients == [0, 1, 2]

    # A journal of another holder point is refused.
    del holder
    gc.collect()
    with pytest.raises(ringsum.SetupError):
        ringsum.Holder(federation, ringsum.Identity.load(keys / "holder-1"), journal=journal)


def test_safetensors_updates_and_averages(party: Party, model, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(9)
    announcement = party.coordinator.open_round()
    updates, weights = [], [20, 30]
    for client, samples in zip(party.clients[:2], weights, strict=True):
        path = tmp_path / f"update-{client.index}.safetensors"
        save_file({k: np.ascontiguousarray(v) for k, v in random_update(rng, model).items()}, path)
        update = load_file(path)
        updates.append(update)
        party.coordinator.accept(client.submit(1, update, samples))
    party.answer_all(announcement, party.coordinator.close())
    result = party.coordinator.finish()
    out = tmp_path / "average.safetensors"
    save_file(result.average, out)
    loaded = load_file(out)
    assert sorted(loaded) == sorted(model)
    for k, v in model.items():
        assert loaded[k].shape == v.shape and loaded[k].dtype == v.dtype
        np.testing.assert_array_equal(loaded[k], result.average[k])
    check_round(result, [{k: u[k] for k in model} for u in updates], weights, model)
