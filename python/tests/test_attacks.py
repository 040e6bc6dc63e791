"""Attacks on the native module of the Python package (security review).

Each test guards behaviour a review checked and found sound, or that a fixed
finding must keep. The attacks on the Flower integration are in
test_flower_attacks.py.
"""

from __future__ import annotations

import copy
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import ringsum
from conftest import Party, create, two_sets_for_round_one

# ----------------------------------------------------------------------------
# Native module
# ----------------------------------------------------------------------------


def _unaligned(values: np.ndarray) -> np.ndarray:
    """A C-contiguous, writeable array whose data pointer is NOT aligned."""
    raw = bytearray(values.nbytes + 1)
    out = np.frombuffer(raw, dtype=values.dtype, offset=1, count=values.size).reshape(values.shape)
    out[...] = values
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_unaligned_arrays_are_read_through_an_aligned_copy(keys: Path, dtype) -> None:
    """An unaligned numpy array (np.frombuffer with an odd offset, a field of a
    packed structured array) once reached ndarray's slice view: a Rust panic
    in a debug build, an unaligned reference in a release build. It is now
    copied into an aligned array first, and reads the same values."""
    values = np.arange(6, dtype=dtype).reshape(2, 3) / 8
    federation = create(keys, {"w": values})
    identity = ringsum.Identity.load(keys / "coordinator")
    coordinator = ringsum.Coordinator(federation, identity, {"w": _unaligned(values)})
    np.testing.assert_array_equal(coordinator.model()["w"], values)
    client = ringsum.Client(federation, ringsum.Identity.load(keys / "client-0"))
    assert client.submit(1, {"w": _unaligned(values)}, 5)


def test_answer_round_can_be_repeated_after_a_failure(party: Party, model) -> None:
    """answer_round keeps the shares it accepted before a later check failed;
    repeating the call with the right shares must not trip over them (a
    share accepted before, the exact bytes, counts as held)."""
    coordinator = party.coordinator
    announcement = coordinator.open_round()
    for i in range(2):
        update = {k: np.full(v.shape, 0.01 * (i + 1), v.dtype) for k, v in model.items()}
        coordinator.accept(party.clients[i].submit(1, update, 10))
    request = coordinator.close()
    holder = party.holders[0]
    shares = coordinator.shares_for(holder.point)
    with pytest.raises(ringsum.FormatError):
        holder.answer_round(announcement, [*shares, b"not a share"], request)
    # Nothing was answered, so the holder should be able to answer now.
    answer = holder.answer_round(announcement, shares, request)
    coordinator.accept_answer(answer)


def test_shares_for_bad_points_are_input_errors(party: Party) -> None:
    """An unknown, negative or oversized point is an InputError (a negative
    one was an OverflowError)."""
    party.coordinator.open_round()
    with pytest.raises(ringsum.InputError):
        party.coordinator.shares_for(7)
    with pytest.raises(ringsum.InputError):
        party.coordinator.shares_for(-1)
    with pytest.raises(ringsum.InputError):
        party.coordinator.shares_for(2**40)


def test_masked_arrays_are_refused(party: Party, model) -> None:
    """A masked array's buffer still holds the masked values: encrypting it
    would send what the caller masked out, so it is refused."""
    party.coordinator.open_round()
    update = {
        k: np.ma.masked_array(np.zeros(v.shape, v.dtype), mask=True) for k, v in model.items()
    }
    with pytest.raises(ringsum.InputError, match="masked"):
        party.clients[0].submit(1, update, 10)


def test_read_publication_checks_the_coordinator_signature(party: Party, model) -> None:
    coordinator = party.coordinator
    federation = party.federation
    announcement = coordinator.open_round()
    round_, result_round, values = federation.read_publication(announcement)
    assert (round_, result_round) == (1, 0)
    assert values.dtype == np.float32 and values.size == federation.parameter_count
    tampered = bytearray(announcement)
    tampered[-1] ^= 1
    with pytest.raises((ringsum.AuthenticationError, ringsum.FormatError)):
        federation.read_publication(bytes(tampered))
    with pytest.raises(ringsum.FormatError):
        federation.read_publication(announcement[:40])
    # A client's submission is not a publication.
    submission = party.clients[0].submit(
        1, {k: np.zeros(v.shape, v.dtype) for k, v in model.items()}, 10
    )
    with pytest.raises(ringsum.RingsumError):
        federation.read_publication(submission)


def test_identity_secrets_do_not_leak(keys: Path) -> None:
    identity = ringsum.Identity.load(keys / "holder-0")
    secret = (keys / "holder-0" / "identity.key").read_bytes()
    assert repr(identity) == f"Identity(id={identity.id})"
    for dump in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            dump(identity)
    assert not hasattr(identity, "__dict__")
    assert secret.strip()[:32].decode(errors="ignore") not in repr(identity) + str(dir(identity))


def test_concurrent_calls_do_not_deadlock(party: Party, model) -> None:
    """Submit/accept/status/model from several threads at once (GIL + mutex)."""
    coordinator = party.coordinator
    coordinator.open_round()
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            update = {k: np.full(v.shape, 0.01, v.dtype) for k, v in model.items()}
            coordinator.accept(party.clients[i].submit(1, update, 5))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    def reader() -> None:
        try:
            for _ in range(50):
                _ = coordinator.status, coordinator.accepted, coordinator.model(), repr(coordinator)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(party.clients))]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors, errors
    assert coordinator.accepted == list(range(len(party.clients)))


def test_file_journal_refuses_a_second_set_across_holder_instances(
    keys: Path, federation, model, tmp_path: Path
) -> None:
    """As the mod uses it: a fresh Holder per message over one journal file."""
    announcement, first, request1, second, request2 = two_sets_for_round_one(
        keys, federation, model
    )
    journal = tmp_path / "holder.journal"
    identity = ringsum.Identity.load(keys / "holder-0")
    point = federation.holder_point(identity)
    holder = ringsum.Holder(federation, identity, journal=str(journal))
    first.accept_answer(holder.answer_round(announcement, first.shares_for(point), request1))
    # The journal file is locked while that Holder lives: a second one fails cleanly.
    with pytest.raises(ringsum.RingsumError):
        ringsum.Holder(federation, identity, journal=str(journal))
    del holder
    again = ringsum.Holder(federation, identity, journal=str(journal))
    with pytest.raises(ringsum.RefusedError):
        again.answer_round(announcement, second.shares_for(point), request2)
    del again
    # The same set asked again is answered again (idempotent).
    third = ringsum.Holder(federation, identity, journal=str(journal))
    assert third.answer_round(announcement, [], request1)
    del third
    # A journal of another federation is refused, not reused.
    other = create(keys, model, rounds=9)
    with pytest.raises(ringsum.SetupError):
        ringsum.Holder(other, identity, journal=str(journal))
