"""Shared pieces of the Flower tests: keys, the example's task, the checks.

The checks recompute, from the models the strategy published, what every
client must have submitted (the example's training is deterministic), and
compare the encrypted FedAvg with the plaintext FedAvg of those updates.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ringsum

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "flower"
DATA = REPO / "examples" / "data" / "breast_cancer.csv"

if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from ringsum_flower_example import task  # noqa: E402

LOCAL_EPOCHS = 5
LEARNING_RATE = 0.1


@dataclass
class Setup:
    """Keys and the federation description written into a directory."""

    root: Path
    federation: ringsum.Federation
    federation_path: Path
    coordinator: Path
    clients: list[Path]
    holders: list[Path]
    #: client index (as the federation numbers them) -> data partition
    partition_of: dict[int, int] = field(default_factory=dict)


def make_setup(
    root: Path, *, clients: int, holders: int, threshold: int, min_clients: int = 2
) -> Setup:
    """Generate every key with the Python API and describe the federation."""
    root.mkdir(parents=True, exist_ok=True)
    coordinator = root / "coordinator"
    ringsum.keygen(str(coordinator))
    client_dirs = [root / f"client-{i}" for i in range(clients)]
    holder_dirs = [root / f"holder-{i}" for i in range(holders)]
    client_ids = [ringsum.keygen(str(d)) for d in client_dirs]
    for d in holder_dirs:
        ringsum.keygen(str(d), holder=True)
    federation = ringsum.Federation.create(
        layout=ringsum.layout_of(task.initial_model()),
        coordinator=str(coordinator),
        holders=[str(d) for d in holder_dirs],
        clients=[str(d) for d in client_dirs],
        threshold=threshold,
        min_clients=min_clients,
    )
    path = root / "federation.json"
    federation.save(str(path))
    setup = Setup(root, federation, path, coordinator, client_dirs, holder_dirs)
    for partition, member in enumerate(client_ids):
        index = federation.client_index(member)
        assert index is not None
        setup.partition_of[int(index)] = partition
    return setup


def read_trace(path: Path) -> list[dict[str, Any]]:
    """The JSON-lines trace of SecureFedAvg."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def local_update(
    model: dict[str, np.ndarray], partition: int, partitions: int
) -> tuple[dict[str, np.ndarray], int]:
    """What the example's ClientApp computes: trained minus global, and its samples."""
    features, labels = task.load_partition(DATA, partition, partitions)
    trained = task.train(model, features, labels, epochs=LOCAL_EPOCHS, learning_rate=LEARNING_RATE)
    return {k: trained[k] - model[k] for k in model}, len(labels)


def check_rounds(
    events: list[dict[str, Any]],
    setup: Setup,
    partitions: int,
    rounds: int,
    *,
    expected_clients: set[int] | None = None,
) -> list[float]:
    """(a): every published model equals plaintext FedAvg within the error bound.

    Returns the largest observed deviation per round. Also checks that no
    update was clipped (so plaintext FedAvg is the reference, not a clipped one).
    """
    published = [e for e in events if e["event"] == "round"]
    assert [e["round"] for e in published] == list(range(1, rounds + 1)), published
    model = {k: np.asarray(v, dtype=np.float64) for k, v in task.initial_model().items()}
    clip = float(setup.federation.clip)
    deviations = []
    for event in published:
        clients = [int(c) for c in event["clients"]]
        if expected_clients is not None:
            assert set(clients) == expected_clients, (event["round"], clients)
        total = 0
        weighted = {k: np.zeros_like(v) for k, v in model.items()}
        for index in clients:
            update, samples = local_update(model, setup.partition_of[index], partitions)
            assert event["samples"][str(index)] == samples
            for k, u in update.items():
                assert np.max(np.abs(u)) < clip, "an update was clipped"
                weighted[k] += samples * u
            total += samples
        # weight_sum is in ringsum's quantized units; total_samples is the
        # sum of the samples the clients signed.
        assert event["weight_sum"] > 0
        assert event["total_samples"] == total
        bound = np.asarray(event["error_bound"], dtype=np.float64)
        new_model = {k: np.asarray(v, dtype=np.float64) for k, v in event["model"].items()}
        worst = 0.0
        for k in model:
            plain = model[k] + weighted[k] / total
            deviation = np.abs(new_model[k] - plain)
            # The bound is on the average; adding it to the float64 global
            # model costs at most one rounding more.
            slack = 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(plain))
            assert np.all(deviation <= bound + slack), (event["round"], k, deviation.max(), bound)
            average = np.asarray(event["average"][k], dtype=np.float64)
            assert np.all(np.abs(average - weighted[k] / total) <= bound + slack)
            worst = max(worst, float(deviation.max()))
        deviations.append(worst)
        model = new_model
    return deviations


def check_ciphertext_only(events: list[dict[str, Any]], setup: Setup, partitions: int) -> int:
    """(b): every client/holder reply is one ringsum ConfigRecord of bytes and ints.

    And no received byte string contains any client's plaintext update or
    trained model (float64 or float32 bytes). Returns the replies checked.
    """
    replies = [e for e in events if e["event"] == "reply" and e["stage"] in {"train", "answer"}]
    assert replies, "the trace has no train or holder replies"
    allowed = {
        "train": {"stage": "str", "submission": "bytes", "num-examples": "int"},
        "answer": {"stage": "str", "answer": "bytes"},
    }
    payloads: list[bytes] = []
    for reply in replies:
        assert "error" not in reply, reply
        records = reply["records"]
        assert len(records) == 1, records
        (record,) = records
        assert record["kind"] == "config" and record["key"] == "ringsum", record
        types = {name: entry["type"] for name, entry in record["entries"].items()}
        assert types == allowed[reply["stage"]], types
        for entry in record["entries"].values():
            if entry["type"] == "bytes":
                assert entry["bytes"] > 0
                payloads.append(base64.b64decode(entry["payload"]))
    # Every plaintext a client of a round held: updates and trained models.
    published = [e for e in events if e["event"] == "round"]
    model = {k: np.asarray(v, dtype=np.float64) for k, v in task.initial_model().items()}
    needles: list[bytes] = []
    for event in published:
        for index in event["clients"]:
            update, _ = local_update(model, setup.partition_of[int(index)], partitions)
            for k in ("w",):
                for value in (update[k], model[k] + update[k]):
                    needles.append(np.ascontiguousarray(value).tobytes())
                    needles.append(np.ascontiguousarray(value.astype(np.float32)).tobytes())
        model = {k: np.asarray(v, dtype=np.float64) for k, v in event["model"].items()}
    for payload in payloads:
        for needle in needles:
            assert needle not in payload, "a plaintext update occurs in a received payload"
    return len(replies)


def node_config(
    setup: Setup, node: int, state: Path, *, evaluate: bool = False
) -> dict[str, object]:
    """Node i is client i; nodes 0..2 are also holders 1..3."""
    config: dict[str, object] = {
        "partition-id": node,
        "num-partitions": len(setup.clients),
        "data-path": str(DATA),
        "local-epochs": LOCAL_EPOCHS,
        "learning-rate": LEARNING_RATE,
        "ringsum-federation": str(setup.federation_path),
        "ringsum-client": str(setup.clients[node]),
        "ringsum-state": str(state / f"node-{node}"),
    }
    if node < len(setup.holders):
        config["ringsum-holder"] = str(setup.holders[node])
    if evaluate:
        config["ringsum-allow-evaluate"] = "true"
    return config
