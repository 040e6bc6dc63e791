"""The Flower mod and strategy without processes: messages delivered in-process.

`LocalGrid` plays the SuperLink: it hands each message (deep-copied, as the
wire would) to the example's ClientApp of the destination node, with that
node's Context, and queues the reply. The deployment test runs the real
processes; this one is fast and also tries a dishonest client.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

flwr = pytest.importorskip(
    "flwr", reason="flwr is not installed (pip install -r python/requirements-test.txt)"
)

import ringsum  # noqa: E402
from _flower_app import (  # noqa: E402
    example_app,
    secure_fedavg,
    task_identity,  # noqa: F401 (an autouse fixture)
)
from _flower_common import (  # noqa: E402
    LEARNING_RATE,
    LOCAL_EPOCHS,
    Setup,
    check_ciphertext_only,
    check_rounds,
    make_setup,
    node_config,
    read_trace,
    task,
)
from flwr.app import (  # noqa: E402
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.common.constant import ErrorCode  # noqa: E402
from ringsum.flower import ringsum_mod  # noqa: E402

PARTITIONS = 4
RUN_CONFIG = {"local-epochs": LOCAL_EPOCHS, "learning-rate": LEARNING_RATE}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return make_setup(tmp_path_factory.mktemp("keys"), clients=4, holders=3, threshold=2)


class LocalGrid:
    """The part of Flower's Grid the strategy uses, delivering in-process."""

    def __init__(self, nodes: dict[int, tuple[Callable[[Message, Context], Message], Context]]):
        self.nodes = nodes
        self.replies: dict[str, Message] = {}

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            message_id = uuid.uuid4().hex
            message.metadata.__dict__["_message_id"] = message_id
            app, context = self.nodes[message.metadata.dst_node_id]
            delivered = copy.deepcopy(message)
            try:
                reply = app(delivered, context)
            except Exception as err:  # noqa: BLE001 - the SuperNode does the same
                reply = Message(
                    Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, repr(err)), reply_to=delivered
                )
            self.replies[message_id] = copy.deepcopy(reply)
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self.replies.pop(i) for i in list(message_ids) if i in self.replies]


def make_grid(
    setup: Setup,
    state: Path,
    apps: dict[int, ClientApp] | None = None,
    *,
    evaluate: bool = False,
) -> LocalGrid:
    from ringsum_flower_example.client_app import app as default_app

    nodes = {}
    for node in range(PARTITIONS):
        context = Context(
            run_id=1,
            node_id=100 + node,
            node_config=node_config(setup, node, state, evaluate=evaluate),
            state=RecordDict(),
            run_config=dict(RUN_CONFIG),
        )
        nodes[100 + node] = ((apps or {}).get(node, default_app), context)
    return LocalGrid(nodes)


def initial_arrays() -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in task.initial_model().items()})


def test_secure_fedavg_equals_plain_fedavg(setup: Setup, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    strategy = secure_fedavg(setup, trace=str(trace), trace_payloads=True)
    grid = make_grid(setup, tmp_path, evaluate=True)
    result = strategy.start(grid, initial_arrays(), num_rounds=2, timeout=10)
    events = read_trace(trace)
    assert len(strategy.client_nodes) == 4 and len(strategy.holder_nodes) == 3
    deviations = check_rounds(
        events, setup, PARTITIONS, 2, expected_clients=set(setup.partition_of)
    )
    assert check_ciphertext_only(events, setup, PARTITIONS) == 2 * (4 + 3)
    last = [e for e in events if e["event"] == "round"][-1]["model"]
    for k, v in result.arrays.items():
        np.testing.assert_array_equal(v.numpy(), np.asarray(last[k]))
    assert set(result.evaluate_metrics_clientapp) == {1, 2}
    assert all(d >= 0.0 for d in deviations)


def leaky_mod(
    msg: Message, context: Context, call_next: Callable[[Message, Context], Message]
) -> Message:
    """A dishonest client: plays along in discovery, then answers training in plaintext."""
    config = msg.content.config_records.get("ringsum") if msg.has_content() else None
    if config is not None and config.get("stage") == "train":
        del msg.content.config_records["ringsum"]
        return call_next(msg, context)
    return ringsum_mod(msg, context, call_next)


def leaky_app() -> ClientApp:
    return example_app(leaky_mod)


def test_plaintext_reply_is_refused(setup: Setup, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    strategy = secure_fedavg(setup, trace=str(trace), trace_payloads=True, fraction_evaluate=0.0)
    strategy.start(
        make_grid(setup, tmp_path, {3: leaky_app()}), initial_arrays(), num_rounds=1, timeout=10
    )
    events = read_trace(trace)
    leaky_node = 103
    refused = [e for e in events if e["event"] == "refused"]
    assert len(refused) == 1 and refused[0]["node"] == leaky_node
    assert "ArrayRecord" in refused[0]["reason"]
    # The round went on with the three honest clients only.
    honest = {i for i, part in setup.partition_of.items() if part != 3}
    check_rounds(events, setup, PARTITIONS, 1, expected_clients=honest)


def test_mod_refuses_plain_training_on_a_ringsum_node(setup: Setup, tmp_path: Path) -> None:
    context = Context(1, 7, node_config(setup, 0, tmp_path), RecordDict(), dict(RUN_CONFIG))
    msg = Message(RecordDict({"arrays": initial_arrays()}), dst_node_id=7, message_type="train")
    called = []
    reply = ringsum_mod(msg, context, lambda m, c: called.append(m) or m)
    assert not called
    assert reply.has_error() and reply.error.reason.startswith("ringsum: ")
    # Explicitly allowed: passes through.
    context.node_config["ringsum-allow-plaintext"] = True
    ringsum_mod(msg, context, lambda m, c: called.append(m) or m)
    assert called


def test_mod_train_reply_is_ciphertext_only(setup: Setup, tmp_path: Path) -> None:
    from ringsum_flower_example.client_app import app

    context = Context(1, 7, node_config(setup, 1, tmp_path), RecordDict(), dict(RUN_CONFIG))
    coordinator = ringsum.Coordinator(
        setup.federation, ringsum.Identity.load(str(setup.coordinator)), task.initial_model()
    )
    announcement = coordinator.open_round()
    content = RecordDict(
        {
            "arrays": initial_arrays(),
            "config": ConfigRecord({"server-round": 1}),
            "ringsum": ConfigRecord(
                {
                    "stage": "train",
                    "round": 1,
                    "federation": setup.federation.id,
                    "announcement": announcement,
                }
            ),
        }
    )
    msg = Message(copy.deepcopy(content), dst_node_id=7, message_type="train")
    reply = app(msg, context)
    assert not reply.has_error(), reply.error.reason if reply.has_error() else None
    assert len(reply.content.array_records) == 0 and len(reply.content.metric_records) == 0
    record = reply.content.config_records["ringsum"]
    assert set(record) == {"stage", "submission", "num-examples"}
    assert coordinator.accept(record["submission"]) == setup.federation.client_index(
        ringsum.Identity.load(str(setup.clients[1])).id
    )
    # A second train message for the same round is refused by the node itself.
    again = app(Message(copy.deepcopy(content), dst_node_id=7, message_type="train"), context)
    assert again.has_error() and "already submitted" in again.error.reason


def test_mod_errors_are_error_replies(setup: Setup, tmp_path: Path) -> None:
    context = Context(1, 7, node_config(setup, 0, tmp_path), RecordDict(), dict(RUN_CONFIG))
    bad = [
        {"stage": "train", "round": 1, "federation": "00" * 32},
        {
            "stage": "answer",
            "round": 1,
            "federation": setup.federation.id,
            "announcement": b"junk",
            "shares": [b"x"],
            "request": b"junk",
        },
        {"stage": "nonsense", "round": 1, "federation": setup.federation.id},
    ]
    for values in bad:
        msg = Message(
            RecordDict({"ringsum": ConfigRecord(values)}), dst_node_id=7, message_type="train"
        )
        reply = ringsum_mod(msg, context, lambda m, c: pytest.fail("the app must not run"))
        assert reply.has_error() and reply.error.reason.startswith("ringsum: "), values
    # Evaluate and query messages are refused by default (see test_attacks.py
    # for evaluation with ringsum-allow-evaluate).
    for kind in ("evaluate", "query"):
        msg = Message(RecordDict({"arrays": initial_arrays()}), dst_node_id=7, message_type=kind)
        reply = ringsum_mod(msg, context, lambda m, c: pytest.fail("the app must not run"))
        assert reply.has_error() and reply.error.reason.startswith("ringsum: "), kind
    # With ringsum-allow-plaintext the node gave up the protection: they pass.
    context.node_config["ringsum-allow-plaintext"] = True
    msg = Message(RecordDict({"arrays": initial_arrays()}), dst_node_id=7, message_type="evaluate")
    out = Message(RecordDict({"metrics": MetricRecord({"num-examples": 1})}), reply_to=msg)
    assert ringsum_mod(msg, context, lambda m, c: out) is out


def failing_on(stage: str) -> ClientApp:
    """The example app on a node that fails at one ringsum stage (a crash, a timeout)."""

    def mod(msg: Message, context: Context, call_next: Callable[[Message, Context], Message]):
        config = msg.content.config_records.get("ringsum") if msg.has_content() else None
        if config is not None and config.get("stage") == stage:
            raise RuntimeError(f"node down during {stage}")
        return ringsum_mod(msg, context, call_next)

    return example_app(mod)


def test_dropouts_within_the_limits(setup: Setup, tmp_path: Path) -> None:
    """A client that fails is left out; a holder beyond the threshold is optional."""
    trace = tmp_path / "trace.jsonl"
    strategy = secure_fedavg(setup, trace=str(trace), fraction_evaluate=0.0)
    # Node 3 (client only) fails in training; node 0 (client and holder 1)
    # trains but fails to answer as a holder.
    grid = make_grid(setup, tmp_path, {3: failing_on("train"), 0: failing_on("answer")})
    strategy.start(grid, initial_arrays(), num_rounds=1, timeout=10)
    events = read_trace(trace)
    survivors = {i for i, part in setup.partition_of.items() if part != 3}
    check_rounds(events, setup, PARTITIONS, 1, expected_clients=survivors)
    errors = [e for e in events if e["event"] == "reply" and "error" in e]
    assert {(e["stage"], e["node"]) for e in errors} == {("train", 103), ("answer", 100)}
