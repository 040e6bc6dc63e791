"""Every bad input raises its typed exception (never a crash), and a refused
message leaves the coordinator's round intact: the round still completes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import ringsum
from conftest import (
    CLIENTS,
    Party,
    assert_average,
    create,
    make_model,
    random_update,
)


def update_of(model, value: float = 0.01):
    return {k: np.full(v.shape, value, dtype=v.dtype) for k, v in model.items()}


@pytest.fixture()
def client(party: Party) -> ringsum.Client:
    return party.clients[0]


@pytest.mark.parametrize(
    "dtype", [np.int64, np.int32, np.uint8, np.bool_, np.complex64, np.complex128, object]
)
def test_non_float_dtypes_are_refused(client, model, dtype) -> None:
    update = update_of(model)
    update["conv.bias"] = np.zeros(4, dtype=dtype)
    with pytest.raises(ringsum.InputError, match="conv.bias"):
        client.submit(1, update, 10)


def test_not_an_array_is_refused(client, model) -> None:
    update = update_of(model)
    update["conv.bias"] = [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ringsum.InputError, match="numpy array"):
        client.submit(1, update, 10)
    with pytest.raises(ringsum.InputError):
        client.submit(1, "not a structure", 10)
    with pytest.raises(ringsum.InputError, match="str"):
        client.submit(1, {0: np.zeros(3)}, 10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("tensor", ["conv.weight", "conv.bias", "head.weight"])
def test_non_finite_values_are_refused_naming_tensor_and_index(client, model, bad, tensor) -> None:
    update = update_of(model)
    flat = update[tensor].reshape(-1)
    flat[2] = bad
    with pytest.raises(ringsum.InputError, match=rf'"{tensor}", value 2 '):
        client.submit(1, update, 10)


def test_huge_float64_values_are_clipped_not_refused(client, model) -> None:
    update = update_of(model)
    update["conv.bias"][0] = 1e300
    assert isinstance(client.submit(1, update, 10), bytes)


def test_shape_and_name_mismatches_are_refused(client, model) -> None:
    update = update_of(model)
    update["conv.weight"] = np.zeros((3, 4, 2), dtype=np.float32)
    with pytest.raises(ringsum.InputError, match=r'"conv.weight".*\(3, 4, 2\).*\(4, 3, 2\)'):
        client.submit(1, update, 10)

    update = update_of(model)
    update["other"] = np.zeros(2, dtype=np.float32)
    with pytest.raises(ringsum.InputError, match='"other" is not in the layout'):
        client.submit(1, update, 10)

    update = update_of(model)
    del update["head.weight"]
    with pytest.raises(ringsum.InputError, match='"head.weight" of the layout is missing'):
        client.submit(1, update, 10)

    values = list(update_of(model).values())
    with pytest.raises(ringsum.InputError, match="3 arrays were given; the layout has 4"):
        client.submit(1, values[:3], 10)
    values[1] = np.zeros(5)
    with pytest.raises(ringsum.InputError, match=r'1 \("conv.bias"\)'):
        client.submit(1, values, 10)
    with pytest.raises(ringsum.InputError, match="one array of 7 values"):
        client.submit(1, np.zeros(7, dtype=np.float32), 10)


def test_non_contiguous_and_byte_swapped_arrays_are_read(party: Party, model) -> None:
    rng = np.random.default_rng(2)
    announcement = party.coordinator.open_round()
    updates = []
    for client in party.clients[:2]:
        update = random_update(rng, model)
        updates.append({k: v.copy() for k, v in update.items()})
        # Fortran order, a strided view, and big-endian values.
        update["conv.weight"] = np.asfortranarray(update["conv.weight"])
        assert not update["conv.weight"].flags.c_contiguous
        update["head.weight"] = np.repeat(update["head.weight"], 2, axis=0)[::2]
        assert not update["head.weight"].flags.c_contiguous
        update["conv.bias"] = update["conv.bias"].astype(">f8")
        party.coordinator.accept(client.submit(1, update, 10))
    party.answer_all(announcement, party.coordinator.close())
    result = party.coordinator.finish()
    assert_average(result, updates, [10, 10])


@pytest.mark.parametrize("samples", [0, 10001, -1, 2**70, 1.5, "10"])
def test_samples_outside_the_policy_are_refused(client, model, samples) -> None:
    with pytest.raises(ringsum.InputError):
        client.submit(1, update_of(model), samples)


@pytest.mark.parametrize("round_", [0, 101])
def test_rounds_outside_the_federation_are_refused(client, model, round_) -> None:
    with pytest.raises(ringsum.RefusedError):
        client.submit(round_, update_of(model), 10)
    with pytest.raises(ringsum.InputError):
        client.submit(-1, update_of(model), 10)


def test_wrong_roles_and_setups(keys: Path, federation, model, tmp_path: Path) -> None:
    holder = ringsum.Identity.load(keys / "holder-0")
    client = ringsum.Identity.load(keys / "client-0")
    with pytest.raises(ringsum.SetupError, match="not a client"):
        ringsum.Client(federation, holder)
    with pytest.raises(ringsum.SetupError, match="not a key holder"):
        ringsum.Holder(federation, client)
    with pytest.raises(ringsum.SetupError, match="coordinator"):
        ringsum.Coordinator(federation, client, model)
    with pytest.raises(ringsum.SetupError):
        ringsum.Identity.load(tmp_path / "missing")
    with pytest.raises(ringsum.SetupError, match="not a majority"):
        create(keys, model, threshold=1)
    with pytest.raises(ringsum.SetupError, match="min_clients"):
        create(keys, model, min_clients=1)
    with pytest.raises(ringsum.InputError, match="no built-in parameter set"):
        create(keys, model, parameter_set="rk128-n1")
    with pytest.raises(ringsum.InputError, match="collective-key"):
        create(keys, model, parameter_set="pq128-n16384")
    with pytest.raises(ringsum.InputError, match="int64"):
        create(keys, {"w": np.zeros(3, dtype=np.int64)})
    with pytest.raises(ringsum.SetupError, match="identity.pub"):
        create(keys, model, clients=[keys / "client-0", tmp_path / "nobody"])
    with pytest.raises(ringsum.InputError, match="initial model"):
        ringsum.Coordinator(
            federation,
            ringsum.Identity.load(keys / "coordinator"),
            {**update_of(model), "conv.bias": np.array([0, np.nan, 0, 0])},
        )
    # A key file others may read is refused.
    unsafe = tmp_path / "unsafe"
    ringsum.keygen(unsafe)
    (unsafe / "identity.key").chmod(0o644)
    with pytest.raises(ringsum.SetupError, match="must not be readable"):
        ringsum.Identity.load(unsafe)
    # keygen never overwrites.
    with pytest.raises(ringsum.SetupError):
        ringsum.keygen(keys / "client-0")
    # An audit log file that exists already.
    existing = tmp_path / "audit.jsonl"
    existing.write_text("")
    with pytest.raises(ringsum.SetupError, match="audit.jsonl"):
        ringsum.Coordinator(
            federation, ringsum.Identity.load(keys / "coordinator"), model, audit_log=existing
        )


def test_bad_descriptions(federation) -> None:
    with pytest.raises(ringsum.FormatError):
        ringsum.Federation.from_json("{")
    with pytest.raises(ringsum.FormatError, match="version 1"):
        ringsum.Federation.from_json(json.dumps({**json.loads(federation.to_json()), "version": 1}))
    description = json.loads(federation.to_json())
    description["clients"][0] = "zz"
    with pytest.raises(ringsum.FormatError, match="not hex"):
        ringsum.Federation.from_json(json.dumps(description))
    description = json.loads(federation.to_json())
    description["clients"][0] = description["clients"][0][:-8]
    with pytest.raises(ringsum.SetupError, match="client 0 key"):
        ringsum.Federation.from_json(json.dumps(description))


def test_bad_messages_leave_the_round_intact(keys: Path, party: Party, model) -> None:
    rng = np.random.default_rng(13)
    coordinator = party.coordinator
    # Nothing to do before a round is open.
    with pytest.raises(ringsum.RefusedError):
        coordinator.close()
    with pytest.raises(ringsum.RefusedError):
        coordinator.finish()
    with pytest.raises(ringsum.RefusedError):
        coordinator.abandon("no round")
    announcement = coordinator.open_round()
    with pytest.raises(ringsum.RefusedError):
        coordinator.open_round()

    updates = [random_update(rng, model) for _ in range(3)]
    first = party.clients[0].submit(1, updates[0], 30)
    assert coordinator.accept(first) == 0

    # Truncated and garbage bytes.
    for bad in (
        b"",
        first[:1],
        first[:100],
        first[:-1],
        first + b"\x00",
        b"\x01" * 5000,
        bytes(64),
    ):
        with pytest.raises(ringsum.FormatError):
            coordinator.accept(bad)
    # One flipped byte in the update's payload breaks its signature.
    flipped = bytearray(first)
    flipped[len(first) // 3] ^= 0x40
    with pytest.raises((ringsum.AuthenticationError, ringsum.FormatError)):
        coordinator.accept(bytes(flipped))
    # A replay, and a second, different submission of the same client.
    with pytest.raises(ringsum.RefusedError, match="replay"):
        coordinator.accept(first)
    with pytest.raises(ringsum.RefusedError):
        coordinator.accept(party.clients[0].submit(1, updates[0], 30))
    # A submission for another round.
    with pytest.raises(ringsum.RefusedError, match="round"):
        coordinator.accept(party.clients[1].submit(2, updates[1], 10))
    # Bytes of another federation (the same members, another policy).
    other = create(keys, model, rounds=7)
    assert other.id != party.federation.id
    foreign = ringsum.Client(other, ringsum.Identity.load(keys / "client-1")).submit(
        1, updates[1], 10
    )
    with pytest.raises(ringsum.AuthenticationError, match="another federation"):
        coordinator.accept(foreign)
    # A submission where the coordinator expects an answer, and vice versa.
    with pytest.raises(ringsum.FormatError):
        coordinator.accept_answer(first)
    with pytest.raises(ringsum.RefusedError):
        coordinator.accept_answer(announcement)
    with pytest.raises(ringsum.RefusedError):
        coordinator.finish()
    assert coordinator.accepted == [0]
    with pytest.raises(ringsum.RefusedError, match="only 1 clients"):
        coordinator.close()
    assert coordinator.status == {"phase": "collecting", "round": 1, "accepted": 1, "answers": 0}

    # The holders refuse bad bytes too.
    holder = party.holders[0]
    with pytest.raises(ringsum.FormatError):
        holder.follow(b"garbage")
    with pytest.raises(ringsum.FormatError):
        holder.receive_share(b"\x00" * 10)
    with pytest.raises(ringsum.FormatError):
        holder.answer(first[:50])
    with pytest.raises((ringsum.RefusedError, ringsum.FormatError)):
        holder.answer(announcement)
    with pytest.raises(ringsum.InputError):
        coordinator.shares_for(9)

    # The round goes on: two more clients, and it completes exactly.
    for client, update in zip(party.clients[1:3], updates[1:], strict=True):
        coordinator.accept(client.submit(1, update, 10))
    request = coordinator.close()
    assert coordinator.close() == request  # the same request again
    with pytest.raises(ringsum.RefusedError):
        coordinator.accept(party.clients[3].submit(1, updates[0], 10))
    with pytest.raises(ringsum.RefusedError, match="threshold"):
        coordinator.finish()
    for h in party.holders:
        answer = h.answer_round(announcement, coordinator.shares_for(h.point), request)
        coordinator.accept_answer(answer)
        with pytest.raises(ringsum.RefusedError):
            coordinator.accept_answer(answer)
    with pytest.raises(ringsum.FormatError):
        coordinator.accept_answer(b"nonsense")
    result = coordinator.finish()
    assert result.clients == [0, 1, 2]
    assert result.samples == {0: 30, 1: 10, 2: 10}
    assert result.total_samples == 50
    assert_average(result, updates, [30, 10, 10])
    lines = [json.loads(line) for line in coordinator.audit_lines()]
    events = [json.loads(line["event"])["type"] for line in lines]
    assert events.count("submission_refused") >= 4
    assert events[-1] == "round_finished"


def test_abandoned_round_lets_the_next_one_open(party: Party, model) -> None:
    coordinator = party.coordinator
    coordinator.open_round()
    coordinator.accept(party.clients[0].submit(1, update_of(model), 10))
    coordinator.abandon("deadline")
    assert coordinator.status["phase"] == "idle"
    announcement = coordinator.open_round()
    assert coordinator.round == 2
    for client in party.clients[:CLIENTS]:
        coordinator.accept(client.submit(2, update_of(model, 0.02), 10))
    party.answer_all(announcement, coordinator.close())
    result = coordinator.finish()
    assert result.round == 2
    np.testing.assert_allclose(result.average["conv.weight"], 0.02, atol=result.error_bound + 1e-6)
    assert make_model().keys() == result.model.keys()
