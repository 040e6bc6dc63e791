"""Attacks on the Flower integration (security review): a malicious server
against the mod, malicious clients and bogus nodes against the strategy.

Each test guards behaviour a review checked and found sound, or that a fixed
finding must keep (their docstrings say "Regression").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ringsum
from conftest import create, two_sets_for_round_one

flwr = pytest.importorskip("flwr", reason="flwr is not installed")

from _flower_app import (  # noqa: E402
    example_app,
    secure_fedavg,
    task_identity,  # noqa: F401 (an autouse fixture)
)
from _flower_common import (  # noqa: E402
    LEARNING_RATE,
    LOCAL_EPOCHS,
    Setup,
    make_setup,
    node_config,
    task,
)
from flwr.app import (  # noqa: E402
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp  # noqa: E402
from ringsum.flower import ringsum_mod  # noqa: E402

RUN_CONFIG = {"local-epochs": LOCAL_EPOCHS, "learning-rate": LEARNING_RATE}


@pytest.fixture(scope="module")
def fsetup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return make_setup(tmp_path_factory.mktemp("attack-keys"), clients=4, holders=3, threshold=2)


def _context(config: dict[str, object]) -> Context:
    return Context(1, 7, config, RecordDict(), dict(RUN_CONFIG))


def _arrays(model: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v)) for k, v in model.items()})


def _announcement(setup: Setup, model: dict[str, np.ndarray]) -> bytes:
    """The signed announcement of round 1 of a fresh coordinator of `setup`."""
    identity = ringsum.Identity.load(str(setup.coordinator))
    return ringsum.Coordinator(setup.federation, identity, model).open_round()


def _evaluate_message(
    model: dict[str, np.ndarray], ringsum_record: dict | None, kind: str = "evaluate"
) -> Message:
    records: dict = {"arrays": _arrays(model), "config": ConfigRecord({"server-round": 1})}
    if ringsum_record is not None:
        records["ringsum"] = ConfigRecord(ringsum_record)
    return Message(RecordDict(records), dst_node_id=7, message_type=kind)


def test_evaluate_is_no_gradient_oracle(fsetup: Setup, tmp_path: Path) -> None:
    """Regression (review finding, High): a malicious server sent evaluate
    messages with models of its choosing and recovered a client's update from
    the losses (central differences, 310 replies, error 2e-12). Now a ringsum
    node refuses evaluate and query messages by default; with
    ringsum-allow-evaluate it evaluates only a model the coordinator signed as
    a round's result, equal to the message's arrays, once per round."""
    from ringsum_flower_example.client_app import app

    node = 1
    config = node_config(fsetup, node, tmp_path)
    glob = task.initial_model()
    announcement = _announcement(fsetup, glob)  # signs the model after round 0
    signed = {"stage": "evaluate", "round": 1, "federation": fsetup.federation.id}

    def ask(model: dict[str, np.ndarray], record: dict | None) -> Message:
        return app(_evaluate_message(model, record), _context(config))

    # The attack's first query: an arbitrary model, no signature. Refused, by
    # default also with the signed model, and query messages too.
    probe = {k: v + 1e-5 for k, v in glob.items()}
    for record in (None, {**signed, "signed-model": announcement}):
        reply = ask(probe, record)
        assert reply.has_error() and "ringsum-allow-evaluate" in reply.error.reason
    never = lambda m, c: pytest.fail("the app must not run")  # noqa: E731
    reply = ringsum_mod(_evaluate_message(glob, None, "query"), _context(config), never)
    assert reply.has_error() and "query" in reply.error.reason

    config["ringsum-allow-evaluate"] = "true"
    # Opted in: a model without a signature, or not the signed one, is refused.
    reply = ask(probe, None)
    assert reply.has_error() and "signed" in reply.error.reason
    reply = ask(probe, {**signed, "signed-model": announcement})
    assert reply.has_error() and "not the model the coordinator signed" in reply.error.reason
    reply = ask({**glob, "extra": np.zeros(1)}, {**signed, "signed-model": announcement})
    assert reply.has_error() and "outside the federation's layout" in reply.error.reason
    reply = ask(glob, {**signed, "signed-model": b"\x00" * 64})
    assert reply.has_error() and reply.error.reason.startswith("ringsum: ")
    # Signed by another federation's coordinator (same keys, other description).
    other = ringsum.Federation.create(
        layout=fsetup.federation.layout,
        coordinator=str(fsetup.coordinator),
        holders=[str(h) for h in fsetup.holders],
        clients=[str(c) for c in fsetup.clients],
        threshold=2,
        rounds=7,
    )
    foreign = ringsum.Coordinator(
        other, ringsum.Identity.load(str(fsetup.coordinator)), glob
    ).open_round()
    reply = ask(glob, {**signed, "signed-model": foreign})
    assert reply.has_error() and reply.error.reason.startswith("ringsum: ")
    # The signed model (as float32 it must match exactly) is evaluated, once.
    reply = ask(glob, {**signed, "signed-model": announcement})
    assert not reply.has_error(), reply.error.reason
    assert "eval-loss" in reply.content["metrics"]
    reply = ask(glob, {**signed, "signed-model": announcement})
    assert reply.has_error() and "already evaluated the model of round 0" in reply.error.reason
    # So the server gets one loss per published model, not the 310 it needed.


class _SecretMetricApp:
    """A ClientApp (with the mod) whose train reports an extra private metric."""

    def __init__(self, secret: int):
        self.app = ClientApp(mods=[ringsum_mod])

        @self.app.train()
        def train(msg: Message, context: Context) -> Message:
            model = {k: v.numpy() + 0.01 for k, v in msg.content["arrays"].items()}
            metrics = MetricRecord({"num-examples": 10, "patients-with-condition": secret})
            return Message(RecordDict({"arrays": _arrays(model), "metrics": metrics}), reply_to=msg)


def _train_message(setup: Setup, record: dict) -> Message:
    model = task.initial_model()
    return Message(
        RecordDict(
            {
                "arrays": _arrays(model),
                "config": ConfigRecord({"server-round": 1}),
                "ringsum": ConfigRecord(
                    {
                        "stage": "train",
                        "round": 1,
                        "federation": setup.federation.id,
                        "announcement": _announcement(setup, model),
                        **record,
                    }
                ),
            }
        ),
        dst_node_id=7,
        message_type="train",
    )


@pytest.mark.parametrize("secret", [4321, 123456])
def test_weight_and_arrays_keys_come_from_the_node(
    fsetup: Setup, tmp_path: Path, secret: int
) -> None:
    """Regression (review finding, Medium): the server's ringsum record named
    the metric the mod read the sample count from, so any integer metric of
    the app was readable. Now the keys come from the node_config
    (ringsum-weight-key, ringsum-arrays-key) and server-sent ones are ignored;
    a refused count is not echoed in the error."""
    app = _SecretMetricApp(secret).app
    msg = _train_message(
        fsetup, {"weight-key": "patients-with-condition", "arrays-key": "elsewhere"}
    )
    reply = app(msg, _context(node_config(fsetup, 2, tmp_path)))
    assert not reply.has_error(), reply.error.reason
    record = dict(reply.content["ringsum"])
    assert record["num-examples"] == 10
    assert str(secret) not in repr(record)
    # A node that names the metric itself (its operator's choice) counts it;
    # a count outside the federation's policy is refused without echoing it.
    config = node_config(fsetup, 3, tmp_path)
    config["ringsum-weight-key"] = "patients-with-condition"
    reply = app(_train_message(fsetup, {}), _context(config))
    if secret > fsetup.federation.max_weight:
        assert reply.has_error() and "outside the federation's policy" in reply.error.reason
        assert str(secret) not in reply.error.reason
    else:
        assert not reply.has_error(), reply.error.reason
        assert reply.content["ringsum"]["num-examples"] == secret


def test_train_model_must_be_the_signed_one(fsetup: Setup, tmp_path: Path) -> None:
    """The global model of a train step is checked against the round's signed
    announcement: an unsigned model, another round's announcement or a missing
    one are refused before the app trains. (A coordinator that signs two models
    for one round, equivocation, is not detected by one node.)"""

    def never(msg: Message, context: Context) -> Message:
        pytest.fail("the app must not run")

    context = _context(node_config(fsetup, 0, tmp_path))
    model = task.initial_model()
    bad = _train_message(fsetup, {})
    bad.content["arrays"]["w"] = Array(np.asarray(model["w"]) + 0.5)
    reply = ringsum_mod(bad, context, never)
    assert reply.has_error() and "not the model the coordinator signed" in reply.error.reason
    reply = ringsum_mod(_train_message(fsetup, {"round": 2}), context, never)
    assert reply.has_error() and "announcement is for round 1" in reply.error.reason
    missing = _train_message(fsetup, {})
    del missing.content["ringsum"]["announcement"]
    reply = ringsum_mod(missing, context, never)
    assert reply.has_error() and "announcement" in reply.error.reason


def test_mod_accepts_0d_tensors(keys: Path, tmp_path: Path) -> None:
    """Regression (review finding, Low): the mod compared the raw numpy shape
    () with the layout's (1,) and refused every train step of a model with a
    scalar tensor; a 0-d array now counts as (1,), as in ringsum.layout_of."""
    model = {"w": np.zeros(3, np.float32), "scale": np.array(1.0, np.float32)}
    federation = create(keys, model)
    path = tmp_path / "federation.json"
    federation.save(str(path))
    app = ClientApp(mods=[ringsum_mod])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        trained = {k: v.numpy() + np.float32(0.01) for k, v in msg.content["arrays"].items()}
        metrics = MetricRecord({"num-examples": 10})
        return Message(RecordDict({"arrays": _arrays(trained), "metrics": metrics}), reply_to=msg)

    config = {
        "ringsum-federation": str(path),
        "ringsum-client": str(keys / "client-0"),
        "ringsum-state": str(tmp_path / "state"),
    }
    coordinator = ringsum.Coordinator(
        federation, ringsum.Identity.load(keys / "coordinator"), model
    )
    record = {
        "stage": "train",
        "round": 1,
        "federation": federation.id,
        "announcement": coordinator.open_round(),
    }
    msg = Message(
        RecordDict({"arrays": _arrays(model), "ringsum": ConfigRecord(record)}),
        dst_node_id=7,
        message_type="train",
    )
    reply = app(msg, _context(config))
    assert not reply.has_error(), reply.error.reason
    assert coordinator.accept(reply.content["ringsum"]["submission"]) == 0


def _answer_message(federation, announcement: bytes, shares, request: bytes) -> Message:
    return Message(
        RecordDict(
            {
                "ringsum": ConfigRecord(
                    {
                        "stage": "answer",
                        "round": 1,
                        "federation": federation.id,
                        "announcement": announcement,
                        "shares": [bytes(s) for s in shares],
                        "request": request,
                    }
                )
            }
        ),
        dst_node_id=7,
        message_type="train",
    )


def test_mod_answers_one_set_per_round_and_keeps_federations_apart(
    keys: Path, federation, model, tmp_path: Path
) -> None:
    """A malicious server asks one holder node for two sets of round 1 (each
    message is a fresh Holder in the mod): the journal in ringsum-state refuses
    the second. A second federation using the same state dir is unaffected."""
    path = tmp_path / "federation.json"
    federation.save(str(path))
    state = tmp_path / "state"
    config = {
        "ringsum-federation": str(path),
        "ringsum-holder": str(keys / "holder-0"),
        "ringsum-state": str(state),
    }
    never = lambda m, c: pytest.fail("the app must not run")  # noqa: E731
    point = federation.holder_point(ringsum.Identity.load(keys / "holder-0"))
    announcement, first, request1, second, request2 = two_sets_for_round_one(
        keys, federation, model
    )
    reply = ringsum_mod(
        _answer_message(federation, announcement, first.shares_for(point), request1),
        _context(config),
        never,
    )
    assert not reply.has_error(), reply.error.reason
    first.accept_answer(reply.content["ringsum"]["answer"])
    reply = ringsum_mod(
        _answer_message(federation, announcement, second.shares_for(point), request2),
        _context(config),
        never,
    )
    assert reply.has_error() and "RefusedError" in reply.error.reason
    # Another federation (same members) sharing the state directory.
    other = create(keys, model, rounds=11)
    other_path = tmp_path / "other.json"
    other.save(str(other_path))
    announcement, first, request1, _, _ = two_sets_for_round_one(keys, other, model)
    config["ringsum-federation"] = str(other_path)
    reply = ringsum_mod(
        _answer_message(other, announcement, first.shares_for(point), request1),
        _context(config),
        never,
    )
    assert not reply.has_error(), reply.error.reason


@pytest.mark.parametrize(
    "values",
    [
        {"stage": "train", "round": True},
        {"stage": "train", "round": 0},
        {"stage": "train", "round": -3},
        {"stage": "train", "round": 2**70},
        {"stage": "train", "round": 1, "arrays-key": "nope"},
        {"stage": "train", "round": 1.0},
        {"stage": "answer", "round": 1, "shares": b"x", "announcement": b"", "request": b""},
        {"stage": "answer", "round": 1, "shares": [], "announcement": "s", "request": b""},
        {"stage": b"train", "round": 1},
        {"round": 1},
    ],
)
def test_mod_crafted_requests_are_error_replies(fsetup: Setup, tmp_path: Path, values) -> None:
    from ringsum_flower_example.client_app import app

    context = _context(node_config(fsetup, 0, tmp_path))
    record = {"federation": fsetup.federation.id, **values}
    msg = Message(
        RecordDict(
            {
                "arrays": _arrays(task.initial_model()),
                "config": ConfigRecord({"server-round": 1}),
                "ringsum": ConfigRecord(record),
            }
        ),
        dst_node_id=7,
        message_type="train",
    )
    reply = app(msg, context)
    assert reply.has_error() and reply.error.reason.startswith("ringsum: "), values


def _hostile_app(kind: str) -> ClientApp:
    """A client node that plays along in discovery, then sends a bad train reply."""

    def mod(msg: Message, context: Context, call_next) -> Message:
        config = msg.content.config_records.get("ringsum") if msg.has_content() else None
        if config is None or config.get("stage") != "train":
            return ringsum_mod(msg, context, call_next)
        honest = ringsum_mod(msg, context, call_next)
        record = dict(honest.content["ringsum"])
        if kind == "garbage":
            record["submission"] = b"\x00\x01" + bytes(5000)
        elif kind == "extra-key":
            record["update"] = b"plaintext"
        elif kind == "flipped":
            sub = bytearray(record["submission"])
            sub[len(sub) // 2] ^= 1
            record["submission"] = bytes(sub)
        elif kind == "bool-samples":
            record["num-examples"] = True
        return Message(RecordDict({"ringsum": ConfigRecord(record)}), reply_to=msg)

    return example_app(mod)


def _grid(setup: Setup, state: Path, apps: dict[int, ClientApp] | None = None):
    from ringsum_flower_example.client_app import app as default_app
    from test_flower import LocalGrid

    nodes = {}
    for node in range(4):
        context = Context(
            1, 100 + node, node_config(setup, node, state), RecordDict(), dict(RUN_CONFIG)
        )
        nodes[100 + node] = ((apps or {}).get(node, default_app), context)
    return LocalGrid(nodes)


def _initial() -> ArrayRecord:
    return _arrays(task.initial_model())


def test_hostile_client_replies_leave_the_round_intact(fsetup: Setup, tmp_path: Path) -> None:
    apps = {3: _hostile_app("garbage"), 2: _hostile_app("flipped"), 1: _hostile_app("extra-key")}
    strategy = secure_fedavg(fsetup, fraction_evaluate=0.0)
    result = strategy.start(
        _grid(fsetup, tmp_path / "a", apps), _initial(), num_rounds=1, timeout=10
    )
    # Only one honest client is left: below min_clients the round is abandoned, no crash.
    assert 1 not in result.train_metrics_clientapp
    assert strategy.coordinator.status["phase"] == "idle"
    apps = {3: _hostile_app("garbage"), 2: _hostile_app("bool-samples")}
    strategy = secure_fedavg(fsetup, fraction_evaluate=0.0)
    result = strategy.start(
        _grid(fsetup, tmp_path / "b", apps), _initial(), num_rounds=1, timeout=10
    )
    # ...with two honest clients it completes with exactly them.
    assert result.train_metrics_clientapp[1]["clients"] == 2


def test_second_run_of_a_federation_stops_with_a_clear_error(fsetup: Setup, tmp_path: Path) -> None:
    """Regression (review finding, Medium): SecureFedAvg makes a fresh
    Coordinator in every start(), which begins at round 1; the nodes' logs
    rightly refuse rounds already used, so a second run of the same federation
    failed every round silently and returned the initial model. Now it stops
    at the first such round with an error naming the cause and the remedy."""
    state = tmp_path / "state"
    strategy = secure_fedavg(fsetup, fraction_evaluate=0.0)
    result = strategy.start(_grid(fsetup, state), _initial(), num_rounds=1, timeout=10)
    assert 1 in result.train_metrics_clientapp
    strategy = secure_fedavg(fsetup, fraction_evaluate=0.0)
    with pytest.raises(RuntimeError, match="already submitted for round 1") as err:
        strategy.start(_grid(fsetup, state), _initial(), num_rounds=1, timeout=10)
    assert "new federation" in str(err.value)


def _claiming_app(index: object, point: object) -> ClientApp:
    """A node that answers discovery with claims of its own choosing."""

    def mod(msg: Message, context: Context, call_next) -> Message:
        record = {
            "stage": "discover",
            "federation": msg.content["ringsum"]["federation"],
            "client-id": "",
            "client-index": index,
            "holder-id": "",
            "holder-point": point,
        }
        return Message(RecordDict({"ringsum": ConfigRecord(record)}), reply_to=msg)

    app = ClientApp(mods=[mod])
    app.train()(lambda msg, context: msg)
    return app


class _LateGrid:
    """A grid whose genuine nodes connect only after the bogus ones answered."""

    def __init__(self, grid, early: set[int]):
        self.grid, self.early, self.calls = grid, early, 0

    def get_node_ids(self):
        self.calls += 1
        nodes = self.grid.get_node_ids()
        return [n for n in nodes if n in self.early] if self.calls == 1 else nodes

    def push_messages(self, messages):
        return self.grid.push_messages(messages)

    def pull_messages(self, ids):
        return self.grid.pull_messages(ids)


def test_discovery_refuses_bogus_and_contested_claims(fsetup: Setup, tmp_path: Path) -> None:
    """Review finding 5: claimed client indices and holder points must be in the
    federation; a value two nodes claim is refused for both; bogus claims do
    not end discovery before the genuine members answered."""
    grid = _grid(fsetup, tmp_path)
    bogus = {
        200: _claiming_app(4, 4),  # out of range
        201: _claiming_app(-7, 0),
        202: _claiming_app(True, True),  # bools are not indices
        203: _claiming_app("1", 2**70),
        204: _claiming_app(99, 42),
        205: _claiming_app(0, 1),  # contests client 0 and holder point 1
    }
    for node, app in bogus.items():
        grid.nodes[node] = (app, _context({}))
    strategy = secure_fedavg(fsetup, fraction_evaluate=0.0, discovery_timeout=3)
    strategy.discover(_LateGrid(grid, set(bogus)), timeout=5)
    genuine_client_0 = 100 + fsetup.partition_of[0]
    assert set(strategy.client_nodes.values()) == {1, 2, 3}
    assert genuine_client_0 not in strategy.client_nodes
    assert set(strategy.holder_nodes.values()) == {2, 3}
    assert not set(strategy.client_nodes) & set(bogus)
    assert not set(strategy.holder_nodes) & set(bogus)
