"""The client-side Flower mod: a node's ringsum roles inside a ClientApp.

Precondition (docs/security.md section 12): in a Flower deployment the
SuperNode runs the app bundle (FAB) the server ships, so this mod is itself
server-supplied code, and a malicious server ships a ClientApp without it.
Nothing below holds unless every node (1) runs ``flower-supernode
--trusted-entities <yaml>`` with the Ed25519 keys of reviewers it trusts, so
that Flower runs only a FAB signed by one of them (a bundle built from a
local directory is unsigned and refused), and (2) keeps runtime dependency
installation off (never ``--allow-runtime-dependency-installation``), with
``flwr``, ``numpy`` and ``ringsum`` installed by the node's operator.

Add :func:`ringsum_mod` to a ClientApp (``ClientApp(mods=[ringsum_mod])``, or
``@app.train(mods=[ringsum_mod])``) and give the SuperNode its ringsum files
in ``--node-config``:

``ringsum-federation``
    path of the federation description (JSON) the coordinator published;
``ringsum-client``
    a client key directory (``ringsum.keygen``), if this node trains;
``ringsum-holder``
    a holder key directory (with its sealing key), if this node holds a key share;
``ringsum-state``
    a directory for the holder journal, the client's round log and the log of
    evaluated rounds (default: ``~/.ringsum/flower-state``). It MUST persist
    across restarts of the node (a volume, not a container's ephemeral
    layer): a holder whose journal is lost answers a second set of clients
    for a round it already answered, and two sums of one round differ by
    single clients' updates;
``ringsum-arrays-key``, ``ringsum-weight-key``
    the ArrayRecord key of the global model in train messages and the
    MetricRecord key the app writes its sample count to (default ``arrays``
    and ``num-examples``, Flower's FedAvg convention). They are read here and
    never from the server, so a server cannot make the mod read out another
    of the app's metrics;
``ringsum-allow-evaluate``
    ``true`` lets this node evaluate; off by default (see below);
``ringsum-allow-plaintext``
    ``true`` lets plain (non-ringsum) messages through to the app: train,
    evaluate and query. By default a node of a ringsum federation refuses
    them, so a server cannot obtain a plaintext update just by not asking for
    ringsum. With it the node gives up the protection.

Everything that leaves the node on a train step is the signed, encrypted
submission and its public sample count: the trained ArrayRecord and the app's
metrics are dropped before the reply is built. The global model of a train
step must be the one the coordinator signed in the round's announcement, so a
server cannot train a client on a model of its own choosing. A train or
evaluate message may carry no ArrayRecord but the node's arrays key; the app
gets that model rebuilt from the signed values (the layout's names and
shapes, the float dtype the server sent), never the message's arrays.

The server's ConfigRecords (its train config) and the run config reach the
app unsigned. A server that sets a learning rate or epochs of 0 for every
client but its target zeroes their updates, so the sum is the target's (the
effect of equivocation, not claimed): an app must read every setting that
shapes its update from the node's own node_config, as the example does.

An exception raised by the app, or an error reply it returns, reaches the
server only as :data:`APP_FAILED`; the details go to the node's log.

Evaluation is outside ringsum's protection: the app's evaluation metrics go
to the server in plaintext. A server that could ask for the loss of models of
its choosing would read a client's update from the replies (finite
differences of the loss give the gradient of the local data). So by default a
node of a ringsum federation refuses evaluate and query messages. With
``ringsum-allow-evaluate=true`` it evaluates only the model the coordinator
signed as the result of a round (the ``signed-model`` in the evaluate
message's ``ringsum`` record must verify and equal the message's arrays),
and each round's result at most once: a log in ``ringsum-state`` refuses a
round older than or equal to the last one evaluated, and a result round
outside 0..``federation.rounds``. That bounds the oracle, it does not close
it: the coordinator holds its signing key and can sign models of its choosing
as results of rounds it has not run, so with evaluation on the server gets up
to ``rounds`` + 1 losses of models it chose. Leave evaluation off, or keep
the federation's rounds small.

Limits that remain: a coordinator that signs two different models for one
round (equivocation) can send different clients different models; this mod
only checks each message against a signature, not against what other nodes
received. A server that re-sends models learns differences of sums across
rounds, which is inherent to secure aggregation (the published averages
themselves are public).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from logging import WARNING
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    RecordDict,
)
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.constant import ErrorCode
from flwr.common.logger import log

import ringsum

from . import _protocol as p

#: The Flower error code of a reply the mod refused to produce.
ERROR_CODE = ErrorCode.MOD_FAILED_PRECONDITION


class ModError(Exception):
    """A ringsum step this node refuses; its text goes into the error reply."""


#: The reason sent to the server when the app raised or replied with an
#: error: the app's own text can hold local data, so it stays in the node's log.
APP_FAILED = "the ClientApp failed; see the node's log"

#: The dtypes a model array may have in a train or evaluate message. The app
#: gets the signed (float32) values in the dtype the server sent.
_FLOAT_DTYPES = frozenset({np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)})


@dataclass(frozen=True)
class NodeSetup:
    """The ringsum files of one node, read from its ``node_config``."""

    federation: Path | None
    client: Path | None
    holder: Path | None
    state: Path
    allow_plaintext: bool
    allow_evaluate: bool = False
    arrays_key: str = p.DEFAULT_ARRAYS_KEY
    weight_key: str = p.DEFAULT_WEIGHT_KEY

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any]) -> NodeSetup:
        """Read the ``ringsum-*`` keys; missing optional keys are ``None``."""

        def path(key: str) -> Path | None:
            value = node_config.get(key)
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                raise ModError(f"node_config {key!r} must be a path string")
            return Path(value).expanduser()

        def flag(key: str) -> bool:
            value = node_config.get(key, False)
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes"}
            return bool(value)

        def name(key: str, default: str) -> str:
            value = node_config.get(key, default)
            if not isinstance(value, str) or not value:
                raise ModError(f"node_config {key!r} must be a non-empty string")
            return value

        state = path(p.NODE_STATE) or Path.home() / ".ringsum" / "flower-state"
        return cls(
            federation=path(p.NODE_FEDERATION),
            client=path(p.NODE_CLIENT),
            holder=path(p.NODE_HOLDER),
            state=state,
            allow_plaintext=flag(p.NODE_ALLOW_PLAINTEXT),
            allow_evaluate=flag(p.NODE_ALLOW_EVALUATE),
            arrays_key=name(p.NODE_ARRAYS_KEY, p.DEFAULT_ARRAYS_KEY),
            weight_key=name(p.NODE_WEIGHT_KEY, p.DEFAULT_WEIGHT_KEY),
        )

    def load_federation(self) -> ringsum.Federation:
        """The federation description, or a ModError naming the missing key."""
        if self.federation is None:
            raise ModError(
                f"this node has no {p.NODE_FEDERATION!r} in its node_config, "
                "so it cannot take part in a ringsum round"
            )
        return ringsum.Federation.load(str(self.federation))


def _error_reply(msg: Message, reason: str) -> Message:
    return Message(Error(code=ERROR_CODE, reason=f"ringsum: {reason}"), reply_to=msg)


def _redact(reason: str, node_config: Mapping[str, Any]) -> str:
    """`reason` with the node's configured ringsum paths replaced by their keys.

    ringsum's errors name the files they could not read; the server needs
    the key, not the node's directory layout.
    """
    for key in (p.NODE_FEDERATION, p.NODE_CLIENT, p.NODE_HOLDER, p.NODE_STATE):
        value = node_config.get(key)
        if isinstance(value, str) and value:
            for form in {str(Path(value).expanduser()), value}:
                reason = reason.replace(form, f"<{key}>")
    return reason


def _reply(msg: Message, values: dict[str, Any]) -> Message:
    return Message(RecordDict({p.RECORD_KEY: ConfigRecord(values)}), reply_to=msg)


def _int(config: ConfigRecord, key: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ModError(f"the server's {p.RECORD_KEY!r} record has no integer {key!r}")
    return value


def _bytes(config: ConfigRecord, key: str) -> bytes:
    value = config.get(key)
    if not isinstance(value, bytes):
        raise ModError(f"the server's {p.RECORD_KEY!r} record has no bytes {key!r}")
    return value


def _str(config: ConfigRecord, key: str, default: str | None = None) -> str:
    value = config.get(key, default)
    if not isinstance(value, str):
        raise ModError(f"the server's {p.RECORD_KEY!r} record has no string {key!r}")
    return value


def _check_federation(config: ConfigRecord, federation: ringsum.Federation) -> None:
    asked = _str(config, p.KEY_FEDERATION)
    if asked != federation.id:
        raise ModError(
            f"the server asks for federation {asked[:16]}..., "
            f"this node belongs to {federation.id[:16]}..."
        )


def _shape(value: np.ndarray) -> tuple[int, ...]:
    """The layout's view of an array's shape: a 0-d array counts as (1,)."""
    return tuple(int(n) for n in value.shape) if value.ndim else (1,)


def _only_model_record(msg: Message, arrays_key: str, kind: str) -> ArrayRecord:
    """The message's one ArrayRecord, under the node's `arrays_key`.

    Any other ArrayRecord is refused: only the model under `arrays_key` is
    checked against a signature, and an app must not read unsigned arrays.
    """
    keys = set(msg.content.array_records.keys())
    if arrays_key not in keys:
        raise ModError(f"the {kind} message has no ArrayRecord {arrays_key!r} (the model)")
    if keys != {arrays_key}:
        raise ModError(
            f"the {kind} message carries ArrayRecords other than {arrays_key!r}: "
            f"{sorted(keys - {arrays_key})}; nobody signed them"
        )
    return msg.content.array_records[arrays_key]


def _check_signed_model(
    federation: ringsum.Federation, signed: bytes, arrays: ArrayRecord
) -> tuple[int, int, ArrayRecord]:
    """Check that `arrays` is the model the coordinator signed in `signed`.

    `signed` is a RoundResult envelope (a round's announcement or a round's
    publication) whose result round must be within the federation's rounds.
    Every array of the layout must have a float dtype (float16, float32 or
    float64) and hold exactly the signed float32 values; names are matched
    by the layout and no other array may be present.

    Returns (the envelope's round, the round whose result the model is, the
    model rebuilt from the signed values): the rebuilt ArrayRecord has the
    layout's names, order and shapes, the dtypes the server sent, and no
    value the coordinator did not sign. The app gets it, never `arrays`.

    Only the signature is checked: a coordinator that signs two models for
    one round (equivocation) is not detected here.
    """
    envelope_round, result_round, model = federation.read_publication(signed)
    if not 0 <= result_round <= federation.rounds:
        raise ModError(
            f"the signed model is the result of round {result_round}, outside the "
            f"federation's rounds 0..{federation.rounds}"
        )
    flat = np.asarray(model, dtype=np.float32).reshape(-1)
    names = set()
    rebuilt: dict[str, Array] = {}
    offset = 0
    for name, shape in federation.layout:
        names.add(name)
        if name not in arrays:
            raise ModError(f"the message's model has no array {name!r} of the federation's layout")
        value = np.asarray(arrays[name].numpy())
        if value.dtype not in _FLOAT_DTYPES:
            raise ModError(
                f"array {name!r} has dtype {value.dtype}, not float16, float32 or float64"
            )
        if _shape(value) != tuple(shape):
            raise ModError(
                f"array {name!r} has shape {tuple(value.shape)}, the layout says {tuple(shape)}"
            )
        size = int(np.prod(shape, dtype=np.int64))
        signed_part = flat[offset : offset + size]
        offset += size
        # Compared in float64, where every float16/32/64 value is exact: a
        # float64 value that merely rounds to the signed float32 is refused.
        if signed_part.size != size or not np.array_equal(
            value.astype(np.float64).reshape(-1), signed_part.astype(np.float64)
        ):
            raise ModError(
                f"array {name!r} is not the model the coordinator signed "
                f"(the result of round {result_round})"
            )
        # In the shape the server sent (a 0-d array stays 0-d; the layout says (1,)).
        rebuilt[name] = Array(signed_part.astype(value.dtype).reshape(value.shape))
    if offset != flat.size:
        raise ModError("the signed model does not have the federation's parameter count")
    extra = set(arrays.keys()) - names
    if extra:
        raise ModError(f"arrays outside the federation's layout: {sorted(extra)}")
    return envelope_round, result_round, ArrayRecord(rebuilt)


def _locked_log(path: Path) -> Any:
    """Open (create) an append-only log file and lock it for the caller."""
    try:
        import fcntl
    except ImportError as err:  # pragma: no cover - not on Unix
        # Unlocked, two ClientApp processes could both claim one round.
        raise ModError(
            "this node needs file locks (fcntl, a POSIX system) for its round logs; "
            "it does not run unlocked"
        ) from err
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    handle = os.fdopen(fd, "r+", encoding="ascii")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle


def _append(handle: Any, round_: int) -> None:
    handle.write(f"{round_}\n")
    handle.flush()
    os.fsync(handle.fileno())


def _claim_evaluation(setup: NodeSetup, federation: ringsum.Federation, result_round: int) -> None:
    """Record that this node evaluates the result of `result_round`.

    Refuses a round older than or equal to the last one evaluated, so a
    server gets one evaluation per published model, in order, and never the
    loss of one model twice (also across restarts: the log is in the state
    directory). Rounds are 0..=``federation.rounds``, so a node gives at most
    ``rounds + 1`` losses over the federation's life.
    """
    if not 0 <= result_round <= federation.rounds:
        raise ModError(
            f"the model of round {result_round} is outside the federation's rounds "
            f"0..{federation.rounds}"
        )
    setup.state.mkdir(parents=True, exist_ok=True)
    log = setup.state / f"evaluate-{federation.id[:16]}.rounds"
    with _locked_log(log) as handle:
        done = [int(line) for line in (raw.strip() for raw in handle) if line]
        if done and result_round <= max(done):
            raise ModError(
                f"this node already evaluated the model of round {max(done)}; "
                f"the model of round {result_round} is not newer"
            )
        _append(handle, result_round)


_EVALUATE_OFF = (
    "this node does not evaluate: evaluation metrics reach the server in plaintext, "
    "outside secure aggregation, and losses of models the server chooses reveal a "
    f"client's update; set {p.NODE_ALLOW_EVALUATE}=true in its node_config to evaluate "
    "the models the coordinator signed (once per round)"
)


def _evaluate(
    msg: Message,
    context: Context,
    call_next: ClientAppCallable,
    setup: NodeSetup,
    config: ConfigRecord,
) -> Message:
    federation = setup.load_federation()
    _check_federation(config, federation)
    if not setup.allow_evaluate:
        raise ModError(_EVALUATE_OFF)
    stage = _str(config, p.KEY_STAGE)
    if stage != p.STAGE_EVALUATE:
        raise ModError(f"an evaluate message carries the stage {stage!r}, not {p.STAGE_EVALUATE!r}")
    sent = _only_model_record(msg, setup.arrays_key, "evaluate")
    _, result_round, signed_model = _check_signed_model(
        federation, _bytes(config, p.KEY_SIGNED_MODEL), sent
    )
    _claim_evaluation(setup, federation, result_round)
    # The app evaluates as it always does, without the ringsum record, on the
    # model rebuilt from the signed values.
    del msg.content.config_records[p.RECORD_KEY]
    msg.content[setup.arrays_key] = signed_model
    return _run_app(msg, context, call_next)


def _run_app(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Run the app; its exceptions and error replies reach the server only as APP_FAILED.

    The details (which can hold local data: file names, rows, values) go to
    the node's log.
    """
    try:
        out = call_next(msg, context)
    except Exception as err:  # noqa: BLE001 - any app failure is reported the same way
        log(WARNING, "ringsum: the ClientApp raised %s: %s", type(err).__name__, err)
        raise ModError(APP_FAILED) from err
    if out.has_error():
        log(
            WARNING,
            "ringsum: the ClientApp replied with error %s: %s",
            out.error.code,
            out.error.reason,
        )
        raise ModError(APP_FAILED)
    return out


def _discover(setup: NodeSetup) -> dict[str, Any]:
    # The discovery answer is not signed. It only tells the server where to
    # route the later steps; every later step is signed (submissions by the
    # client's identity key, answers by the holder's) and shares are sealed to
    # the holder's sealing key, so a node that lies here can only get its own
    # messages refused or make the server send a holder the wrong shares,
    # which that holder cannot open. It gains no secret and cannot forge a
    # contribution.
    federation = setup.load_federation()
    values: dict[str, Any] = {
        p.KEY_STAGE: p.STAGE_DISCOVER,
        p.KEY_FEDERATION: federation.id,
        p.KEY_CLIENT_ID: "",
        p.KEY_CLIENT_INDEX: p.NO_ROLE,
        p.KEY_HOLDER_ID: "",
        p.KEY_HOLDER_POINT: p.NO_ROLE,
    }
    if setup.client is not None:
        identity = ringsum.Identity.load(str(setup.client))
        index = federation.client_index(identity.id)
        if index is None:
            raise ModError(f"the client identity {identity.id} is not a client of the federation")
        values[p.KEY_CLIENT_ID] = identity.id
        values[p.KEY_CLIENT_INDEX] = int(index)
    if setup.holder is not None:
        identity = ringsum.Identity.load(str(setup.holder))
        point = federation.holder_point(identity.id)
        if point is None:
            raise ModError(f"the holder identity {identity.id} is not a holder of the federation")
        values[p.KEY_HOLDER_ID] = identity.id
        values[p.KEY_HOLDER_POINT] = int(point)
    return values


def _round_log(setup: NodeSetup, federation: ringsum.Federation, index: int) -> Path:
    setup.state.mkdir(parents=True, exist_ok=True)
    return setup.state / f"client-{federation.id[:16]}-{index}.rounds"


def _refuse_used_round(done: set[str], round_: int) -> None:
    if str(round_) in done:
        raise ModError(
            f"this client {p.ROUND_USED} {round_} of this federation "
            "(a federation is for one run: a second run needs a new federation)"
        )


def _check_round_unused(
    setup: NodeSetup, federation: ringsum.Federation, index: int, round_: int
) -> None:
    """Refuse, before the app runs, a round this client already submitted for.

    Read-only: a used round does not run the app (and its training) again.
    The claim itself is :func:`_claim_round`, after the app, under the lock.
    """
    path = _round_log(setup, federation, index)
    if not path.exists():
        return
    with _locked_log(path) as handle:
        _refuse_used_round({line.strip() for line in handle if line.strip()}, round_)


def _claim_round(setup: NodeSetup, federation: ringsum.Federation, index: int, round_: int) -> None:
    """Record that this client submits for `round_`; refuse a second time.

    ``Client.submit`` must not run twice for one round: two encryptions of
    different updates for the same round would be two chances at one secret.
    The log survives restarts of the ClientApp process (each Flower message may
    run in a fresh process).
    """
    with _locked_log(_round_log(setup, federation, index)) as handle:
        _refuse_used_round({line.strip() for line in handle if line.strip()}, round_)
        _append(handle, round_)


def _train(
    msg: Message,
    context: Context,
    call_next: ClientAppCallable,
    setup: NodeSetup,
    config: ConfigRecord,
) -> Message:
    federation = setup.load_federation()
    _check_federation(config, federation)
    if setup.client is None:
        raise ModError(f"this node has no {p.NODE_CLIENT!r} key directory, it does not train")
    round_ = _int(config, p.KEY_ROUND)
    # Both keys come from the node's configuration, never from the server.
    arrays_key = setup.arrays_key
    weight_key = setup.weight_key
    sent = _only_model_record(msg, arrays_key, "train")
    # The global model must be the one the coordinator signed for this round,
    # in the round's announcement (the result of the round before).
    envelope_round, result_round, global_arrays = _check_signed_model(
        federation, _bytes(config, p.KEY_ANNOUNCEMENT), sent
    )
    if envelope_round != round_:
        raise ModError(
            f"the announcement is for round {envelope_round}, the server asks for round {round_}"
        )
    if result_round != round_ - 1:
        raise ModError(
            f"a train step needs the announcement of round {round_} (the result of round "
            f"{round_ - 1}), not a signed model of round {result_round}"
        )
    client = ringsum.Client(federation, ringsum.Identity.load(str(setup.client)))
    _check_round_unused(setup, federation, client.index, round_)

    # The app never sees the ringsum record: it trains as it always does, from
    # the model rebuilt from the signed values.
    del msg.content.config_records[p.RECORD_KEY]
    msg.content[arrays_key] = global_arrays
    out = _run_app(msg, context, call_next)
    content = out.content
    if len(content.array_records) != 1:
        raise ModError(
            f"the app replied with {len(content.array_records)} ArrayRecords, expected one"
        )
    trained = next(iter(content.array_records.values()))
    samples = None
    for metrics in content.metric_records.values():
        if weight_key in metrics:
            samples = metrics[weight_key]
            break
    if isinstance(samples, float) and samples.is_integer():
        samples = int(samples)
    if not isinstance(samples, int) or isinstance(samples, bool):
        raise ModError(f"the app's reply has no integer {weight_key!r} metric")
    # The count goes out in clear in a good reply; a refused one must not
    # carry it in its error text either.
    if not federation.min_samples <= samples <= federation.max_weight:
        raise ModError(
            f"the app's {weight_key!r} metric is outside the federation's policy "
            f"({federation.min_samples} to {federation.max_weight} samples)"
        )

    update: dict[str, np.ndarray] = {}
    for name, shape in federation.layout:
        if name not in trained or name not in global_arrays:
            raise ModError(f"the model has no array {name!r} of the federation's layout")
        new = trained[name].numpy()
        old = global_arrays[name].numpy()
        # A 0-d tensor counts as shape (1,), as in ringsum.layout_of.
        if _shape(new) != tuple(shape) or _shape(old) != tuple(shape):
            raise ModError(
                f"array {name!r} has shape {tuple(new.shape)}, the layout says {tuple(shape)}"
            )
        update[name] = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    extra = (set(trained.keys()) | set(global_arrays.keys())) - set(update)
    if extra:
        raise ModError(f"arrays outside the federation's layout: {sorted(extra)}")

    _claim_round(setup, federation, client.index, round_)
    submission = client.submit(round_, update, samples)
    # Drop the plaintext model and metrics: the reply is ciphertext only.
    content.array_records.clear()
    return _reply(
        msg,
        {
            p.KEY_STAGE: p.STAGE_TRAIN,
            p.KEY_SUBMISSION: bytes(submission),
            p.KEY_SAMPLES: samples,
        },
    )


def _answer(setup: NodeSetup, config: ConfigRecord) -> dict[str, Any]:
    federation = setup.load_federation()
    _check_federation(config, federation)
    if setup.holder is None:
        raise ModError(f"this node has no {p.NODE_HOLDER!r} key directory, it holds no share")
    shares = config.get(p.KEY_SHARES)
    if not isinstance(shares, list) or not all(isinstance(s, bytes) for s in shares):
        raise ModError(
            f"the server's {p.RECORD_KEY!r} record has no list of bytes {p.KEY_SHARES!r}"
        )
    identity = ringsum.Identity.load(str(setup.holder))
    point = federation.holder_point(identity.id)
    setup.state.mkdir(parents=True, exist_ok=True)
    journal = setup.state / f"holder-{federation.id[:16]}-{point}.journal"
    holder = ringsum.Holder(federation, identity, journal=str(journal))
    answer = holder.answer_round(
        _bytes(config, p.KEY_ANNOUNCEMENT), list(shares), _bytes(config, p.KEY_REQUEST)
    )
    return {p.KEY_STAGE: p.STAGE_ANSWER, p.KEY_ANSWER: bytes(answer)}


def ringsum_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower mod: answer ringsum steps, encrypt training replies, guard the rest.

    On a node with no ``ringsum-federation`` in its node_config, messages
    without a ``ringsum`` record go to the app unchanged. On a node of a
    ringsum federation:

    * a ``train`` message with a ``ringsum`` ConfigRecord is a ringsum step:
      ``discover`` (which roles this node has), ``train`` (check the global
      model against the round's signed announcement, refuse a round already
      submitted for, run the app on the model rebuilt from the signed
      values, then reply with ``Client.submit`` of trained minus that model), ``answer`` (the
      holder's reply from ``Holder.answer_round``);
    * an ``evaluate`` message is refused unless ``ringsum-allow-evaluate`` is
      set, and then evaluated only with a ``ringsum`` record whose
      ``signed-model`` (the coordinator's signature of a round's result)
      equals the message's model, once per round;
    * every other message (``query``, plain ``train``, plain ``evaluate``) is
      refused unless ``ringsum-allow-plaintext`` is set.

    Errors (ringsum's and malformed requests) come back as Flower error
    replies whose reason starts with ``ringsum:``; the node keeps running.
    """
    category = msg.metadata.message_type.split(".")[0]
    try:
        setup = NodeSetup.from_node_config(context.node_config)
        has_record = msg.has_content() and p.RECORD_KEY in msg.content.config_records
        if not has_record:
            if setup.federation is None or setup.allow_plaintext:
                return call_next(msg, context)
            if category == MessageType.EVALUATE:
                if not setup.allow_evaluate:
                    raise ModError(_EVALUATE_OFF)
                raise ModError(
                    "this node evaluates only a model the coordinator signed: the evaluate "
                    f"message has no {p.RECORD_KEY!r} record with the {p.KEY_SIGNED_MODEL!r}"
                )
            raise ModError(
                f"this node answers only ringsum steps; a plain {category!r} message is refused "
                f"(set {p.NODE_ALLOW_PLAINTEXT}=true in its node_config to allow plain messages)"
            )
        config = msg.content.config_records[p.RECORD_KEY]
        if category == MessageType.EVALUATE:
            return _evaluate(msg, context, call_next, setup, config)
        if category != MessageType.TRAIN:
            raise ModError(f"ringsum steps are train or evaluate messages, not {category!r}")
        stage = _str(config, p.KEY_STAGE)
        if stage == p.STAGE_DISCOVER:
            return _reply(msg, _discover(setup))
        if stage == p.STAGE_TRAIN:
            return _train(msg, context, call_next, setup, config)
        if stage == p.STAGE_ANSWER:
            return _reply(msg, _answer(setup, config))
        raise ModError(f"unknown ringsum stage {stage!r}")
    except ringsum.RingsumError as err:
        log(WARNING, "ringsum: %s: %s", type(err).__name__, err)
        return _error_reply(msg, _redact(f"{type(err).__name__}: {err}", context.node_config))
    except ModError as err:
        return _error_reply(msg, str(err))
    except OSError as err:
        # The text without the file name: paths of the node stay local.
        log(WARNING, "ringsum: %s", err)
        return _error_reply(msg, f"{type(err).__name__}: {err.strerror or 'I/O error'}")
    except (ValueError, TypeError, KeyError) as err:
        return _error_reply(msg, f"{type(err).__name__}: {err}")
