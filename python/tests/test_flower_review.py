"""Second security review of the Flower integration: regression tests.

Each test states a finding of the review and checks that it stays fixed.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import ringsum

flwr = pytest.importorskip("flwr", reason="flwr is not installed")

from _flower_app import task_identity  # noqa: E402, F401 (an autouse fixture)
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
    Error,  # noqa: E402
    Message,
    MetricRecord,
    RecordDict,
)
from ringsum.flower import ringsum_mod  # noqa: E402
from ringsum.flower.mod import APP_FAILED, ModError, NodeSetup, _claim_evaluation  # noqa: E402
from ringsum.flower.strategy import SecureFedAvg  # noqa: E402


@pytest.fixture(scope="module")
def fsetup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return make_setup(tmp_path_factory.mktemp("review2-keys"), clients=4, holders=3, threshold=2)


def _context(config: dict[str, object]) -> Context:
    return Context(1, 7, config, RecordDict(), {})


def _arrays(model: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v)) for k, v in model.items()})


def _signed_model() -> dict[str, np.ndarray]:
    """The example's layout with non-zero float32 values."""
    return {k: np.full_like(v, 1.0, dtype=np.float32) for k, v in task.initial_model().items()}


def _announcement(setup: Setup, model: dict[str, np.ndarray]) -> bytes:
    identity = ringsum.Identity.load(str(setup.coordinator))
    return ringsum.Coordinator(setup.federation, identity, model).open_round()


def _train(setup: Setup, sent: dict[str, np.ndarray], extra: dict | None = None) -> Message:
    records: dict = {
        "arrays": _arrays(sent),
        "ringsum": ConfigRecord(
            {
                "stage": "train",
                "round": 1,
                "federation": setup.federation.id,
                "announcement": _announcement(setup, _signed_model()),
            }
        ),
    }
    records.update(extra or {})
    return Message(RecordDict(records), dst_node_id=7, message_type="train")


class _Recorder:
    """A train function that records what it was given and trains trivially."""

    def __init__(self) -> None:
        self.seen: RecordDict | None = None

    def __call__(self, msg: Message, context: Context) -> Message:
        self.seen = msg.content
        trained = {
            k: np.asarray(v.numpy().real, dtype=np.float32) + np.float32(0.01)
            for k, v in msg.content["arrays"].items()
        }
        metrics = MetricRecord({"num-examples": 10})
        return Message(RecordDict({"arrays": _arrays(trained), "metrics": metrics}), reply_to=msg)


def test_unsigned_array_records_are_refused(fsetup: Setup, tmp_path: Path) -> None:
    """Finding: only the ArrayRecord under ringsum-arrays-key was checked;
    a second ArrayRecord (which an app may read instead) reached the app
    unsigned. Now a train message with any other ArrayRecord is refused and
    the app does not run."""
    recorder = _Recorder()
    msg = _train(
        fsetup,
        _signed_model(),
        {"shadow": _arrays({k: v + 42 for k, v in _signed_model().items()})},
    )
    reply = ringsum_mod(msg, _context(node_config(fsetup, 0, tmp_path)), recorder)
    assert reply.has_error() and "nobody signed" in reply.error.reason
    assert "shadow" in reply.error.reason
    assert recorder.seen is None


def test_server_train_config_is_documented_and_the_example_ignores_it(
    fsetup: Setup, tmp_path: Path
) -> None:
    """Finding: the server's ConfigRecords and the run_config reach the app
    unsigned (a learning rate or epochs of 0 zeroes the non-target clients'
    updates). That stays possible for an app that reads them (documented);
    the example reads its training settings from node_config, so a server's
    lr=0 / local-epochs=0 in either place changes nothing."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "flower"))
    from ringsum_flower_example import client_app

    server_config = {"config": ConfigRecord({"lr": 0.0, "local-epochs": 0})}
    # The unsigned config still reaches an app (documented, not claimed).
    recorder = _Recorder()
    config = node_config(fsetup, 0, tmp_path)
    reply = ringsum_mod(_train(fsetup, _signed_model(), server_config), _context(config), recorder)
    assert not reply.has_error(), reply.error.reason
    assert recorder.seen is not None and recorder.seen["config"]["lr"] == 0.0
    # The example (its ClientApp includes the mod) trains with the node's settings.
    context = Context(
        1,
        7,
        node_config(fsetup, 1, tmp_path),
        RecordDict(),
        {"local-epochs": 0, "learning-rate": 0},
    )
    assert client_app._training_settings(context) == (LOCAL_EPOCHS, LEARNING_RATE)
    reply = client_app.app(_train(fsetup, _signed_model(), server_config), context)
    assert not reply.has_error(), reply.error.reason
    assert reply.content["ringsum"]["num-examples"] > 0
    del context.node_config["local-epochs"], context.node_config["learning-rate"]
    assert client_app._training_settings(context) == (
        client_app.DEFAULT_LOCAL_EPOCHS,
        client_app.DEFAULT_LEARNING_RATE,
    )


def test_app_gets_the_signed_values_rebuilt(fsetup: Setup, tmp_path: Path) -> None:
    """The app's ArrayRecord is rebuilt from the signed model: layout order
    and shapes, the dtype the server sent, the signed values exactly."""
    sent = {k: v.astype(np.float64) for k, v in reversed(list(_signed_model().items()))}
    recorder = _Recorder()
    reply = ringsum_mod(_train(fsetup, sent), _context(node_config(fsetup, 1, tmp_path)), recorder)
    assert not reply.has_error(), reply.error.reason
    assert recorder.seen is not None
    got = recorder.seen["arrays"]
    assert list(got.keys()) == [name for name, _ in fsetup.federation.layout]
    for name, shape in fsetup.federation.layout:
        value = got[name].numpy()
        assert value.dtype == np.float64 and value.shape == tuple(shape)
        assert np.array_equal(value, _signed_model()[name])


def test_float64_arrays_must_equal_the_signed_model(fsetup: Setup, tmp_path: Path) -> None:
    """Finding: the check cast the message's arrays to float32, so float64
    values that round to the signed float32 (1 + 2**-30 for a signed 1.0)
    passed and the app started from values nobody signed. Now the values are
    compared in float64 and refused."""
    sent = {k: v.astype(np.float64) + 2.0**-30 for k, v in _signed_model().items()}
    recorder = _Recorder()
    reply = ringsum_mod(_train(fsetup, sent), _context(node_config(fsetup, 1, tmp_path)), recorder)
    assert reply.has_error() and "not the model the coordinator signed" in reply.error.reason
    assert recorder.seen is None


@pytest.mark.parametrize("dtype", [np.complex128, np.int64])
def test_non_float_arrays_are_refused(fsetup: Setup, tmp_path: Path, dtype: type) -> None:
    """Finding: a complex128 array whose real part is the signed model passed
    (astype(float32) dropped the imaginary part). Now any non-float dtype is
    refused before the app runs."""
    extra = 5j if dtype is np.complex128 else 0
    sent = {k: v.astype(dtype) + extra for k, v in _signed_model().items()}
    recorder = _Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reply = ringsum_mod(
            _train(fsetup, sent), _context(node_config(fsetup, 2, tmp_path)), recorder
        )
    assert reply.has_error() and "dtype" in reply.error.reason
    assert recorder.seen is None


def test_evaluation_log_is_bounded_by_the_rounds(fsetup: Setup, tmp_path: Path) -> None:
    """Finding: the evaluation log was keyed on a result round the
    coordinator signs, unbounded, so probe models signed as results of rounds
    1..N got N evaluations. Now result rounds are 0..=rounds: a node gives
    at most rounds + 1 losses."""
    setup = NodeSetup.from_node_config(node_config(fsetup, 3, tmp_path, evaluate=True))
    federation = fsetup.federation
    accepted = 0
    for result_round in range(federation.rounds + 400):
        try:
            _claim_evaluation(setup, federation, result_round)
            accepted += 1
        except ModError:
            pass
    assert accepted == federation.rounds + 1
    with pytest.raises(ModError, match="outside the federation's rounds"):
        _claim_evaluation(setup, federation, federation.rounds + 1)


def _eval_reply(metrics: dict, node: int = 1) -> Message:
    request = Message(RecordDict(), dst_node_id=node, message_type="evaluate")
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=request)


@pytest.mark.parametrize(
    "bad",
    [
        {"num-examples": [1, 2], "eval-loss": 0.5},
        {"num-examples": 0, "eval-loss": 0.5},
        {"num-examples": -3, "eval-loss": 0.5},
        {"num-examples": 2.5, "eval-loss": 0.5},
        {"num-examples": 5, "eval-loss": [0.5]},
        {"num-examples": 5, "eval-loss": float("nan")},
        {"num-examples": 5, "eval-loss": float("inf")},
    ],
)
def test_a_bad_evaluate_reply_is_dropped(fsetup: Setup, bad: dict) -> None:
    """Finding: one malicious client's evaluate reply (a list or zero weight,
    a list where others send a number) raised out of Flower's
    aggregate_metricrecords and ended the run. Now it is dropped and logged,
    and the honest replies are averaged."""
    strategy = SecureFedAvg(fsetup.federation, str(fsetup.coordinator))
    honest = [{"num-examples": 5, "eval-loss": 0.4}, {"num-examples": 15, "eval-loss": 0.8}]
    replies = [_eval_reply(m, node) for node, m in enumerate(honest, 1)] + [_eval_reply(bad, 9)]
    result = strategy.aggregate_evaluate(1, replies)
    assert result is not None
    assert result["eval-loss"] == pytest.approx(0.7)
    assert strategy.aggregate_evaluate(1, [_eval_reply(bad, 9)]) is None


def test_a_failing_evaluate_aggregation_is_logged_not_raised(fsetup: Setup) -> None:
    def broken(contents: list, key: str) -> MetricRecord:
        raise ZeroDivisionError("boom")

    strategy = SecureFedAvg(
        fsetup.federation, str(fsetup.coordinator), evaluate_metrics_aggr_fn=broken
    )
    replies = [_eval_reply({"num-examples": 5, "eval-loss": 0.4})]
    assert strategy.aggregate_evaluate(1, replies) is None


def test_app_exception_text_stays_on_the_node(fsetup: Setup, tmp_path: Path) -> None:
    """Finding: an exception raised by the app went into the error reply with
    its message, which can hold local values. Now the server gets a fixed
    reason; the details are in the node's log."""

    def leaky(msg: Message, context: Context) -> Message:
        raise ValueError("row 17 of /data/patients.csv: age=83 out of range")

    reply = ringsum_mod(
        _train(fsetup, _signed_model()), _context(node_config(fsetup, 0, tmp_path)), leaky
    )
    assert reply.has_error() and reply.error.reason == f"ringsum: {APP_FAILED}"


def test_app_error_reply_text_stays_on_the_node(fsetup: Setup, tmp_path: Path) -> None:
    def leaky(msg: Message, context: Context) -> Message:
        return Message(Error(code=0, reason="age=83 in /data/patients.csv"), reply_to=msg)

    reply = ringsum_mod(
        _train(fsetup, _signed_model()), _context(node_config(fsetup, 1, tmp_path)), leaky
    )
    assert reply.has_error() and reply.error.reason == f"ringsum: {APP_FAILED}"


def test_node_paths_are_not_in_error_replies(fsetup: Setup, tmp_path: Path) -> None:
    config = node_config(fsetup, 0, tmp_path)
    config["ringsum-federation"] = str(tmp_path / "secret-dir" / "federation.json")
    reply = ringsum_mod(
        _train(fsetup, _signed_model()), _context(config), lambda m, c: pytest.fail("ran")
    )
    assert reply.has_error() and "secret-dir" not in reply.error.reason
    assert "ringsum-federation" in reply.error.reason


def test_a_used_round_does_not_run_the_app_again(fsetup: Setup, tmp_path: Path) -> None:
    """Finding: the client round log was checked only after the app ran, so
    a server re-sending round 1 made the node train again. Now the log is
    checked (read-only) before the app runs."""
    config = node_config(fsetup, 2, tmp_path)
    recorder = _Recorder()
    reply = ringsum_mod(_train(fsetup, _signed_model()), _context(config), recorder)
    assert not reply.has_error(), reply.error.reason
    again = _Recorder()
    reply = ringsum_mod(_train(fsetup, _signed_model()), _context(config), again)
    assert reply.has_error() and "already submitted for round 1" in reply.error.reason
    assert again.seen is None


def _used_reply(node: int) -> Message:
    request = Message(RecordDict(), dst_node_id=node, message_type="train")
    reason = "ringsum: this client already submitted for round 1 of this federation"
    return Message(Error(code=0, reason=reason), reply_to=request)


def test_second_run_needs_min_clients_refusals(fsetup: Setup) -> None:
    """Finding: one node's free-text error reason ended the run as a "second
    run". Now at least min_clients such refusals (and no accepted
    submission) are needed."""
    strategy = SecureFedAvg(fsetup.federation, str(fsetup.coordinator))
    identity = ringsum.Identity.load(str(fsetup.coordinator))
    strategy.coordinator = ringsum.Coordinator(fsetup.federation, identity, _signed_model())
    needed = fsetup.federation.min_clients
    few = [_used_reply(node) for node in range(1, needed)]
    assert strategy.aggregate_train(1, few)[0] is None
    with pytest.raises(RuntimeError, match="used by an earlier run"):
        strategy.aggregate_train(1, few + [_used_reply(needed)])


def test_no_fcntl_refuses_to_run(
    fsetup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding: without fcntl (Windows) the round logs ran unlocked. Now the
    mod refuses with a clear error."""
    monkeypatch.setitem(sys.modules, "fcntl", None)
    setup = NodeSetup.from_node_config(node_config(fsetup, 3, tmp_path, evaluate=True))
    with pytest.raises(ModError, match="fcntl"):
        _claim_evaluation(setup, fsetup.federation, 0)


def test_flower_verifies_a_signed_fab() -> None:
    """The precondition of docs/security.md section 12: a SuperNode started
    with --trusted-entities runs only a FAB signed by a trusted key. This
    checks Flower's own check (flwr 1.42) on a FAB signed here: it accepts
    the signed content and refuses a modified one (a ClientApp without the
    mod)."""
    import base64
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from flwr.supercore.fab import Fab
    from flwr.supercore.primitives.asymmetric_ed25519 import create_message_to_sign, sign_message
    from flwr.supernode.start_client_internal import _verify_fab

    key = ed25519.Ed25519PrivateKey.generate()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    content = b"a FAB whose ClientApp has ringsum_mod"
    signed_at = 1_700_000_000
    signature = sign_message(
        key, create_message_to_sign(hashlib.sha256(content).digest(), signed_at)
    )
    verification = {
        "fpk_reviewer": json.dumps(
            {
                "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode(),
                "signed_at": signed_at,
            }
        ),
        "valid_license": "Valid",
    }
    trusted = {"fpk_reviewer": public}
    good = Fab(hashlib.sha256(content).hexdigest(), content, verification)
    assert _verify_fab(good, trusted)
    changed = b"a FAB whose ClientApp has no mod"
    bad = Fab(hashlib.sha256(changed).hexdigest(), changed, verification)
    assert not _verify_fab(bad, trusted)
    assert not _verify_fab(good, {"fpk_other": public})
