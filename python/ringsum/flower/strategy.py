"""The server-side strategy: FedAvg whose average is computed by ringsum.

:class:`SecureFedAvg` has the shape of the strategies in
``flwr.serverapp.strategy``: build it, then call
``strategy.start(grid, initial_arrays, num_rounds, ...)`` from a ServerApp's
``@app.main()``; it returns a Flower ``Result``. What differs is what happens
between the train messages and the new global model:

1. discovery (once): every node says which client index or holder point it
   holds (see ``mod._discover`` for why that answer needs no signature);
   claims outside the federation and indices or points claimed by two nodes
   are refused;
2. per round: ``Coordinator.open_round``; a train message (global
   ArrayRecord, train config, ``ringsum`` record with the signed announcement,
   which the node checks the global model against) to each client node; each
   reply must be exactly the ``ringsum`` record with the submission bytes and
   the sample count, anything else (an ArrayRecord, metrics, other records or
   keys) is refused, logged and never aggregated; ``Coordinator.accept``;
   ``close``; one message per holder with the announcement, its shares and the
   signed request; ``accept_answer``; ``finish``; the published model becomes
   the new global ArrayRecord;
3. after a round that published a model, optionally: evaluate messages with
   that model and its signed publication (nodes evaluate only with
   ``ringsum-allow-evaluate=true``, and only a signed model, once per round).

Clients that fail or time out are left out of the round's set (down to the
federation's ``min_clients``); holders beyond the threshold are optional.
"""

from __future__ import annotations

import base64
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from logging import INFO, WARNING
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords

import ringsum

from . import _protocol as p

#: How often replies are pulled from the SuperLink while waiting.
POLL_INTERVAL = 0.5


class RefusedReply(Exception):
    """A reply the strategy does not aggregate; the text says why."""


def _arrays_to_structure(arrays: ArrayRecord) -> dict[str, np.ndarray]:
    return {name: array.numpy() for name, array in arrays.items()}


def _structure_to_arrays(structure: Mapping[str, Any]) -> ArrayRecord:
    return ArrayRecord({name: Array(np.asarray(value)) for name, value in structure.items()})


def _describe_value(value: Any, payloads: bool) -> dict[str, Any]:
    """Type and size of one record entry, for the trace."""
    if isinstance(value, Array):
        entry: dict[str, Any] = {
            "type": "array",
            "dtype": value.dtype,
            "shape": list(value.shape),
            "bytes": len(value.data),
        }
        if payloads:
            entry["payload"] = base64.b64encode(value.data).decode("ascii")
        return entry
    if isinstance(value, bytes):
        entry = {"type": "bytes", "bytes": len(value)}
        if payloads:
            entry["payload"] = base64.b64encode(value).decode("ascii")
        return entry
    if isinstance(value, list):
        items = [_describe_value(item, payloads) for item in value]
        return {
            "type": "list",
            "bytes": sum(int(item.get("bytes", 0)) for item in items),
            "items": items,
        }
    if isinstance(value, bool):
        return {"type": "bool", "bytes": 1}
    if isinstance(value, int):
        return {"type": "int", "bytes": 8}
    if isinstance(value, float):
        return {"type": "float", "bytes": 8}
    if isinstance(value, str):
        return {"type": "str", "bytes": len(value.encode("utf-8"))}
    return {"type": type(value).__name__, "bytes": 0}


def describe_content(content: RecordDict, payloads: bool = False) -> list[dict[str, Any]]:
    """Each record of a reply: its kind, key, and per entry type and byte size."""
    records: list[dict[str, Any]] = []
    for kind, group in (
        ("array", content.array_records),
        ("metric", content.metric_records),
        ("config", content.config_records),
    ):
        for key, record in group.items():
            records.append(
                {
                    "kind": kind,
                    "key": key,
                    "entries": {
                        name: _describe_value(value, payloads) for name, value in record.items()
                    },
                }
            )
    return records


def _evaluate_reply_problem(metrics: MetricRecord, weight_key: str) -> str | None:
    """Why an evaluate reply's metrics cannot be averaged, or None."""
    weight = metrics.get(weight_key)
    if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
        return f"{weight_key!r} is not a positive integer"
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"metric {key!r} is not an int or a float"
        if isinstance(value, float) and not math.isfinite(value):
            return f"metric {key!r} is not finite"
    return None


def _listify(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _listify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


class SecureFedAvg(Strategy):
    """Federated averaging where the server only ever sees ringsum ciphertexts.

    One run per federation: a Coordinator starts at round 1 in every
    :meth:`start`, and the nodes refuse rounds they already took part in
    (their logs and journals in ``ringsum-state``). A second run of the same
    federation therefore stops at its first round with a ``RuntimeError``
    saying so: create a new federation description for each run.

    Federated evaluation is outside ringsum's protection: the metrics the
    nodes return are plaintext to the server. Nodes refuse evaluate messages
    unless their node_config says ``ringsum-allow-evaluate=true``, and then
    evaluate only a model the coordinator signed as a round's result, once per
    round. Set ``fraction_evaluate=0`` when the nodes do not opt in.

    Limits: the nodes check the models they receive against the coordinator's
    signature, not against each other, so a coordinator that signs two models
    for one round (equivocation) can send clients different models; and a
    server that re-sends models learns differences of sums across rounds,
    which is inherent to secure aggregation.

    Parameters
    ----------
    federation : ringsum.Federation | str
        The federation description, or the path of its JSON file.
    coordinator : ringsum.Identity | str
        The coordinator's identity, or its key directory.
    audit_log : str, optional
        Where the coordinator writes its signed audit log (else in memory).
    fraction_evaluate : float (default: 1.0)
        Fraction of the client nodes asked to evaluate each new global model
        (0 skips federated evaluation). Nodes that do not allow evaluation
        answer with an error, which is logged and left out.
    min_evaluate_nodes : int (default: 1)
        At least this many client nodes evaluate (when fraction_evaluate > 0).
    arrayrecord_key, configrecord_key : str
        Keys of the global ArrayRecord and of the ConfigRecord in the train
        and evaluate messages (as in Flower's FedAvg). The nodes read the
        model from their own ``ringsum-arrays-key`` (default ``arrays``),
        never from a key the server names, so the two must agree.
    weighted_by_key : str (default: "num-examples")
        The MetricRecord key of the sample count in evaluation replies. In
        training the nodes read it from their ``ringsum-weight-key``.
    evaluate_metrics_aggr_fn : callable, optional
        Aggregates evaluation MetricRecords (Flower's weighted average by default).
    discovery_timeout : float (default: 120)
        How long to wait for every member of the federation to connect.
    holder_grace : float (default: 2)
        Once ``threshold`` holders have answered, how long to wait for the rest.
    trace : str, optional
        A JSON-lines file: one line per reply received (its records' kinds,
        keys and byte sizes) and one per round (clients, weights, published
        model, error bound).
    trace_payloads : bool (default: False)
        Also write each received byte string (base64) into the trace.
    """

    # pylint: disable=too-many-arguments,too-many-instance-attributes
    def __init__(
        self,
        federation: ringsum.Federation | str,
        coordinator: ringsum.Identity | str,
        *,
        audit_log: str | None = None,
        fraction_evaluate: float = 1.0,
        min_evaluate_nodes: int = 1,
        arrayrecord_key: str = "arrays",
        configrecord_key: str = "config",
        weighted_by_key: str = "num-examples",
        evaluate_metrics_aggr_fn: Callable[[list[RecordDict], str], MetricRecord] | None = None,
        discovery_timeout: float = 120.0,
        holder_grace: float = 2.0,
        trace: str | None = None,
        trace_payloads: bool = False,
    ) -> None:
        self.federation = (
            federation
            if isinstance(federation, ringsum.Federation)
            else ringsum.Federation.load(str(federation))
        )
        self.identity = (
            coordinator
            if isinstance(coordinator, ringsum.Identity)
            else ringsum.Identity.load(str(coordinator))
        )
        self.audit_log = audit_log
        self.fraction_evaluate = fraction_evaluate
        self.min_evaluate_nodes = min_evaluate_nodes
        self.arrayrecord_key = arrayrecord_key
        self.configrecord_key = configrecord_key
        self.weighted_by_key = weighted_by_key
        self.evaluate_metrics_aggr_fn = evaluate_metrics_aggr_fn or aggregate_metricrecords
        self.discovery_timeout = discovery_timeout
        self.holder_grace = holder_grace
        self.trace = Path(trace) if trace else None
        self.trace_payloads = trace_payloads
        #: node id -> client index, and node id -> holder point, from discovery.
        self.client_nodes: dict[int, int] = {}
        self.holder_nodes: dict[int, int] = {}
        self.coordinator: ringsum.Coordinator | None = None
        self._round_nodes: dict[int, int] = {}
        #: The signed announcement of the open round (sent with train messages).
        self._announcement: bytes | None = None
        #: The signed publication of the last round with a result (sent with
        #: evaluate messages); None before the first.
        self._publication: bytes | None = None
        #: Client indices and holder points claimed by more than one node.
        self._contested_clients: set[int] = set()
        self._contested_holders: set[int] = set()

    # ----------------------------------------------------------------- trace

    def _trace(self, event: dict[str, Any]) -> None:
        if self.trace is None:
            return
        self.trace.parent.mkdir(parents=True, exist_ok=True)
        with open(self.trace, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(_listify(event)) + "\n")

    def _trace_reply(self, round_: int, stage: str, reply: Message) -> None:
        if self.trace is None:
            return
        event: dict[str, Any] = {
            "event": "reply",
            "round": round_,
            "stage": stage,
            "node": reply.metadata.src_node_id,
        }
        if reply.has_error():
            event["error"] = reply.error.reason
            event["records"] = []
        else:
            event["records"] = describe_content(reply.content, self.trace_payloads)
        self._trace(event)

    # --------------------------------------------------------- messaging

    def _exchange(
        self,
        grid: Grid,
        messages: list[Message],
        timeout: float,
        *,
        enough: int | None = None,
        grace: float = 0.0,
    ) -> list[Message]:
        """Push `messages` and pull replies until all came, or the timeout.

        With `enough`, stop `grace` seconds after that many replies without
        error are in (the optional holders beyond the threshold).
        """
        if not messages:
            return []
        pending = set(grid.push_messages(messages))
        replies: list[Message] = []
        deadline = time.monotonic() + timeout
        enough_at: float | None = None
        while pending:
            now = time.monotonic()
            if now >= deadline or (enough_at is not None and now >= enough_at + grace):
                break
            got = list(grid.pull_messages(pending))
            replies.extend(got)
            pending.difference_update(m.metadata.reply_to_message_id for m in got)
            if (
                enough is not None
                and enough_at is None
                and sum(1 for m in replies if not m.has_error()) >= enough
            ):
                enough_at = time.monotonic()
            if pending:
                time.sleep(POLL_INTERVAL)
        return replies

    def _ringsum_message(
        self, node_id: int, round_: int, values: dict[str, Any], content: RecordDict | None = None
    ) -> Message:
        record = content if content is not None else RecordDict()
        config = {p.KEY_FEDERATION: self.federation.id, p.KEY_ROUND: round_}
        config.update(values)
        record.config_records[p.RECORD_KEY] = ConfigRecord(config)
        return Message(
            content=record,
            dst_node_id=node_id,
            message_type=MessageType.TRAIN,
            group_id=str(round_),
        )

    # --------------------------------------------------------- discovery

    def discover(self, grid: Grid, timeout: float) -> None:
        """Learn which node holds which client index and holder point.

        Asks every connected node (and nodes that connect later) until all
        members answered or `discovery_timeout` passed; then needs at least
        ``min_clients`` clients and ``threshold`` holders.
        """
        wanted_clients = set(range(self.federation.num_clients))
        wanted_holders = set(self.federation.holders)
        asked: set[int] = set()
        deadline = time.monotonic() + self.discovery_timeout
        while True:
            new = [n for n in grid.get_node_ids() if n not in asked]
            if new:
                asked.update(new)
                messages = [
                    self._ringsum_message(n, 0, {p.KEY_STAGE: p.STAGE_DISCOVER}) for n in new
                ]
                remaining = max(1.0, min(timeout, deadline - time.monotonic()))
                for reply in self._exchange(grid, messages, remaining):
                    self._trace_reply(0, p.STAGE_DISCOVER, reply)
                    self._read_discovery(reply)
            # Every member's index and point claimed (by one node each): only
            # claims inside the federation count, so bogus ones cannot end
            # discovery early.
            if (
                set(self.client_nodes.values()) | self._contested_clients >= wanted_clients
                and set(self.holder_nodes.values()) | self._contested_holders >= wanted_holders
            ):
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)
        log(
            INFO,
            "ringsum discovery: %d of %d clients, %d of %d holders",
            len(self.client_nodes),
            len(wanted_clients),
            len(self.holder_nodes),
            len(wanted_holders),
        )
        self._trace(
            {
                "event": "discovery",
                "clients": {str(n): i for n, i in self.client_nodes.items()},
                "holders": {str(n): h for n, h in self.holder_nodes.items()},
            }
        )
        if len(self.client_nodes) < self.federation.min_clients:
            raise RuntimeError(
                f"ringsum: only {len(self.client_nodes)} client nodes answered discovery, "
                f"the federation needs {self.federation.min_clients}"
            )
        if len(self.holder_nodes) < self.federation.threshold:
            raise RuntimeError(
                f"ringsum: only {len(self.holder_nodes)} holder nodes answered discovery, "
                f"the threshold is {self.federation.threshold}"
            )

    def _read_discovery(self, reply: Message) -> None:
        node = reply.metadata.src_node_id
        if reply.has_error():
            log(INFO, "ringsum discovery: node %d is not a member: %s", node, reply.error.reason)
            return
        try:
            config = self._only_ringsum_record(reply, p.DISCOVER_REPLY_KEYS, p.STAGE_DISCOVER)
        except RefusedReply as err:
            log(WARNING, "ringsum discovery: node %d refused: %s", node, err)
            return
        if config.get(p.KEY_FEDERATION) != self.federation.id:
            log(WARNING, "ringsum discovery: node %d is in another federation", node)
            return
        index = config.get(p.KEY_CLIENT_INDEX, p.NO_ROLE)
        point = config.get(p.KEY_HOLDER_POINT, p.NO_ROLE)
        self._claim(
            node,
            "client index",
            index,
            range(self.federation.num_clients),
            self.client_nodes,
            self._contested_clients,
        )
        self._claim(
            node,
            "holder point",
            point,
            self.federation.holders,
            self.holder_nodes,
            self._contested_holders,
        )

    @staticmethod
    def _claim(
        node: int,
        role: str,
        value: Any,
        valid: Iterable[int],
        claims: dict[int, int],
        contested: set[int],
    ) -> None:
        """Record `node`'s claim of `value`, unless it is bogus or contested.

        A value outside the federation is refused. A value two nodes claim is
        refused for both (the answers are unsigned: the server cannot tell
        which one is the member) and for any later claimant.
        """
        if value == p.NO_ROLE and isinstance(value, int) and not isinstance(value, bool):
            return
        if not isinstance(value, int) or isinstance(value, bool) or value not in valid:
            log(
                WARNING,
                "ringsum discovery: node %d claims %s %r, which is not in the federation: ignored",
                node,
                role,
                value,
            )
            return
        if value in contested:
            log(
                WARNING,
                "ringsum discovery: node %d also claims %s %d, already claimed twice: ignored",
                node,
                role,
                value,
            )
            return
        others = [n for n, v in claims.items() if v == value]
        if others:
            for other in others:
                del claims[other]
            contested.add(value)
            log(
                WARNING,
                "ringsum discovery: nodes %s and %d both claim %s %d: both claims refused",
                ", ".join(str(n) for n in others),
                node,
                role,
                value,
            )
            return
        claims[node] = value

    # ----------------------------------------------------- reply checking

    @staticmethod
    def _only_ringsum_record(reply: Message, allowed: frozenset[str], stage: str) -> ConfigRecord:
        """The reply's ringsum ConfigRecord, or RefusedReply if it carries anything else."""
        content = reply.content
        if len(content.array_records) > 0:
            raise RefusedReply(
                f"the reply carries ArrayRecord(s) {list(content.array_records)}: "
                "plaintext arrays are never aggregated"
            )
        if len(content.metric_records) > 0:
            raise RefusedReply(f"the reply carries MetricRecord(s) {list(content.metric_records)}")
        if set(content.config_records) != {p.RECORD_KEY}:
            raise RefusedReply(
                f"the reply carries ConfigRecord(s) {list(content.config_records)}, "
                f"expected only {p.RECORD_KEY!r}"
            )
        config = content.config_records[p.RECORD_KEY]
        extra = set(config) - allowed
        if extra:
            raise RefusedReply(f"unexpected keys in the ringsum record: {sorted(extra)}")
        if config.get(p.KEY_STAGE) != stage:
            raise RefusedReply(f"the reply is for stage {config.get(p.KEY_STAGE)!r}, not {stage!r}")
        return config

    # ------------------------------------------------------------ training

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """One train message per client node: global model, config, ringsum record.

        The ringsum record carries the round's signed announcement: the node
        checks that the global model it receives is the one signed there.
        """
        if self._announcement is None:
            raise RuntimeError("ringsum: configure_train before the round was opened")
        config = ConfigRecord(dict(config))
        config["server-round"] = server_round
        messages = []
        for node in self.client_nodes:
            content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
            messages.append(
                self._ringsum_message(
                    node,
                    server_round,
                    {
                        p.KEY_STAGE: p.STAGE_TRAIN,
                        p.KEY_ANNOUNCEMENT: self._announcement,
                    },
                    content,
                )
            )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Hand each reply's submission to the coordinator.

        Returns no arrays: the average exists only once the holders answered
        (see :meth:`finish_round`). Replies that are not exactly a submission
        are refused.
        """
        if self.coordinator is None:
            raise RuntimeError("ringsum: aggregate_train before start()")
        received, refused, failed = 0, 0, 0
        used: list[int] = []
        for reply in replies:
            self._trace_reply(server_round, p.STAGE_TRAIN, reply)
            node = reply.metadata.src_node_id
            if reply.has_error():
                failed += 1
                if p.ROUND_USED in reply.error.reason:
                    used.append(node)
                log(
                    INFO,
                    "ringsum round %d: node %d dropped out: %s",
                    server_round,
                    node,
                    reply.error.reason,
                )
                continue
            try:
                if node not in self.client_nodes:
                    raise RefusedReply("the node is not a discovered client")
                config = self._only_ringsum_record(reply, p.TRAIN_REPLY_KEYS, p.STAGE_TRAIN)
                submission = config.get(p.KEY_SUBMISSION)
                samples = config.get(p.KEY_SAMPLES)
                if not isinstance(submission, bytes):
                    raise RefusedReply("the reply has no submission bytes")
                if not isinstance(samples, int) or isinstance(samples, bool):
                    raise RefusedReply("the reply has no integer sample count")
                try:
                    index = self.coordinator.accept(submission)
                except ringsum.RingsumError as err:
                    raise RefusedReply(f"{type(err).__name__}: {err}") from err
            except RefusedReply as err:
                refused += 1
                log(
                    WARNING,
                    "ringsum round %d: reply of node %d refused: %s",
                    server_round,
                    node,
                    err,
                )
                self._trace(
                    {"event": "refused", "round": server_round, "node": node, "reason": str(err)}
                )
                continue
            if index != self.client_nodes[node]:
                log(
                    WARNING,
                    "ringsum round %d: node %d sent the submission of client %d (discovered as %d)",
                    server_round,
                    node,
                    index,
                    self.client_nodes[node],
                )
            received += 1
            self._round_nodes[index] = node
        log(
            INFO,
            "ringsum round %d: %d submissions accepted, %d refused, %d failures",
            server_round,
            received,
            refused,
            failed,
        )
        # The reason is free text from the nodes: only as many of them as a
        # round needs, and no accepted submission, make it a second run.
        if received == 0 and len(used) >= self.federation.min_clients:
            self._trace({"event": "round-used", "round": server_round, "nodes": used})
            raise RuntimeError(
                f"ringsum: round {server_round} got no submission, and client nodes "
                f"{sorted(used)} refused it because they already submitted for round "
                f"{server_round} of federation {self.federation.id[:16]}...: this federation "
                "was used by an earlier run (every run's coordinator starts at round 1, and "
                "nodes never take part in a round twice). Create a new federation description "
                "for each run, and give the nodes its path."
            )
        return None, MetricRecord({"submissions": received, "refused": refused, "failures": failed})

    def finish_round(
        self, grid: Grid, server_round: int, announcement: bytes, timeout: float
    ) -> ringsum.RoundResult | None:
        """Close the round, ask the holders, combine; None if the round failed."""
        coordinator = self.coordinator
        if coordinator is None:
            raise RuntimeError("ringsum: finish_round before start()")
        try:
            request = coordinator.close()
        except ringsum.RingsumError as err:
            log(WARNING, "ringsum round %d: cannot close: %s", server_round, err)
            coordinator.abandon(str(err))
            self._trace({"event": "round-failed", "round": server_round, "reason": str(err)})
            return None
        messages = [
            self._ringsum_message(
                node,
                server_round,
                {
                    p.KEY_STAGE: p.STAGE_ANSWER,
                    p.KEY_ANNOUNCEMENT: announcement,
                    p.KEY_SHARES: [bytes(s) for s in coordinator.shares_for(point)],
                    p.KEY_REQUEST: request,
                },
            )
            for node, point in self.holder_nodes.items()
        ]
        replies = self._exchange(
            grid,
            messages,
            timeout,
            enough=self.federation.threshold,
            grace=self.holder_grace,
        )
        for reply in replies:
            self._trace_reply(server_round, p.STAGE_ANSWER, reply)
            node = reply.metadata.src_node_id
            if reply.has_error():
                log(
                    INFO,
                    "ringsum round %d: holder node %d failed: %s",
                    server_round,
                    node,
                    reply.error.reason,
                )
                continue
            try:
                config = self._only_ringsum_record(reply, p.ANSWER_REPLY_KEYS, p.STAGE_ANSWER)
                answer = config.get(p.KEY_ANSWER)
                if not isinstance(answer, bytes):
                    raise RefusedReply("the reply has no answer bytes")
                try:
                    coordinator.accept_answer(answer)
                except ringsum.RingsumError as err:
                    raise RefusedReply(f"{type(err).__name__}: {err}") from err
            except RefusedReply as err:
                log(
                    WARNING,
                    "ringsum round %d: answer of node %d refused: %s",
                    server_round,
                    node,
                    err,
                )
                self._trace(
                    {"event": "refused", "round": server_round, "node": node, "reason": str(err)}
                )
        try:
            result = coordinator.finish()
        except ringsum.RoundFailedError as err:
            # The coordinator is ready for the next round already.
            log(WARNING, "ringsum round %d failed: %s", server_round, err)
            self._trace({"event": "round-failed", "round": server_round, "reason": str(err)})
            return None
        except ringsum.RingsumError as err:
            # Too few holders answered in time: the round would keep waiting;
            # end it so the next round can open.
            log(WARNING, "ringsum round %d failed: %s", server_round, err)
            coordinator.abandon(str(err))
            self._trace({"event": "round-failed", "round": server_round, "reason": str(err)})
            return None
        self._trace(
            {
                "event": "round",
                "round": result.round,
                "clients": list(result.clients),
                "client_nodes": {str(i): self._round_nodes.get(i) for i in result.clients},
                # From the clients' signed submissions, not from the replies.
                "samples": {str(i): n for i, n in result.samples.items()},
                "total_samples": result.total_samples,
                "weight_sum": result.weight_sum,
                "error_bound": result.error_bound,
                "liars": list(result.liars),
                "model": result.model,
                "average": result.average,
            }
        )
        if result.liars:
            log(
                WARNING,
                "ringsum round %d: holders named as liars: %s",
                server_round,
                list(result.liars),
            )
        return result

    # ---------------------------------------------------------- evaluation

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Evaluate messages to a sample of the client nodes.

        Each carries, in its ringsum record, the coordinator's signed
        publication of the model (the last round's result): nodes evaluate
        nothing else. Without a published model there is nothing to evaluate.
        """
        if self.fraction_evaluate <= 0.0 or not self.client_nodes or self._publication is None:
            return []
        nodes = list(self.client_nodes)
        count = min(
            len(nodes), max(int(len(nodes) * self.fraction_evaluate), self.min_evaluate_nodes)
        )
        config = ConfigRecord(dict(config))
        config["server-round"] = server_round
        ringsum_record = ConfigRecord(
            {
                p.KEY_STAGE: p.STAGE_EVALUATE,
                p.KEY_FEDERATION: self.federation.id,
                p.KEY_ROUND: server_round,
                p.KEY_SIGNED_MODEL: self._publication,
            }
        )
        return [
            Message(
                content=RecordDict(
                    {
                        self.arrayrecord_key: arrays,
                        self.configrecord_key: config,
                        p.RECORD_KEY: ringsum_record,
                    }
                ),
                dst_node_id=node,
                message_type=MessageType.EVALUATE,
                group_id=str(server_round),
            )
            for node in random.sample(nodes, count)
        ]

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Weighted average of the evaluation metrics (Flower's default).

        Each reply must be one MetricRecord with a positive integer weight and
        finite int or float values only; other replies are dropped and
        logged, so no client can end the run with its evaluate reply.
        """
        contents = []
        for reply in replies:
            self._trace_reply(server_round, "evaluate", reply)
            if reply.has_error():
                log(
                    INFO,
                    "evaluate round %d: node %d failed: %s",
                    server_round,
                    reply.metadata.src_node_id,
                    reply.error.reason,
                )
                continue
            content = reply.content
            if len(content.metric_records) != 1 or not any(
                self.weighted_by_key in m for m in content.metric_records.values()
            ):
                log(
                    WARNING,
                    "evaluate round %d: reply of node %d has no %r metric",
                    server_round,
                    reply.metadata.src_node_id,
                    self.weighted_by_key,
                )
                continue
            problem = _evaluate_reply_problem(
                next(iter(content.metric_records.values())), self.weighted_by_key
            )
            if problem is not None:
                log(
                    WARNING,
                    "evaluate round %d: reply of node %d dropped: %s",
                    server_round,
                    reply.metadata.src_node_id,
                    problem,
                )
                continue
            contents.append(content)
        if not contents:
            return None
        try:
            return self.evaluate_metrics_aggr_fn(contents, self.weighted_by_key)
        except Exception as err:  # noqa: BLE001 - evaluation must not end the run
            log(
                WARNING,
                "evaluate round %d: the metrics could not be aggregated: %s: %s",
                server_round,
                type(err).__name__,
                err,
            )
            return None

    def summary(self) -> None:
        """Log the configuration."""
        fed = self.federation
        log(INFO, "\t├──> ringsum federation %s...", fed.id[:16])
        log(
            INFO, "\t│\t├── parameter set %s, %d parameters", fed.parameter_set, fed.parameter_count
        )
        log(INFO, "\t│\t├── %d clients (at least %d per round)", fed.num_clients, fed.min_clients)
        log(INFO, "\t│\t└── %d holders, threshold %d", len(fed.holders), fed.threshold)
        log(INFO, "\t└──> Evaluation fraction %.2f", self.fraction_evaluate)

    # ---------------------------------------------------------------- run

    # pylint: disable=too-many-locals
    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Run `num_rounds` rounds of ringsum-secured FedAvg; same contract as Flower's.

        `timeout` bounds each wait for replies (train, holders, evaluate).
        """
        log(INFO, "Starting %s strategy:", type(self).__name__)
        self.summary()
        train_config = ConfigRecord() if train_config is None else train_config
        evaluate_config = ConfigRecord() if evaluate_config is None else evaluate_config
        result = Result(arrays=initial_arrays)
        t_start = time.time()
        self._announcement = None
        self._publication = None

        self.coordinator = ringsum.Coordinator(
            self.federation,
            self.identity,
            _arrays_to_structure(initial_arrays),
            audit_log=self.audit_log,
        )
        self.discover(grid, timeout)
        if evaluate_fn:
            res = evaluate_fn(0, initial_arrays)
            if res is not None:
                result.evaluate_metrics_serverapp[0] = res

        arrays = initial_arrays
        for current_round in range(1, num_rounds + 1):
            log(INFO, "")
            log(INFO, "[ROUND %s/%s] (ringsum)", current_round, num_rounds)
            self._round_nodes.clear()
            try:
                announcement = self.coordinator.open_round()
            except ringsum.RingsumError as err:
                log(WARNING, "ringsum: cannot open round %d: %s", current_round, err)
                break
            ringsum_round = self.coordinator.round
            self._announcement = announcement
            replies = self._exchange(
                grid, list(self.configure_train(ringsum_round, arrays, train_config, grid)), timeout
            )
            _, train_metrics = self.aggregate_train(ringsum_round, replies)
            round_result = self.finish_round(grid, ringsum_round, announcement, timeout)
            if round_result is not None:
                arrays = _structure_to_arrays(round_result.model)
                result.arrays = arrays
                self._publication = bytes(round_result.publication)
                metrics = dict(train_metrics or {})
                metrics["clients"] = len(round_result.clients)
                metrics["num-examples"] = int(round_result.total_samples)
                metrics["error-bound"] = float(np.max(np.asarray(round_result.error_bound)))
                result.train_metrics_clientapp[current_round] = MetricRecord(metrics)
                log(
                    INFO,
                    "ringsum round %d: averaged %d clients, error bound %.3g",
                    ringsum_round,
                    len(round_result.clients),
                    metrics["error-bound"],
                )

            # Only a newly published model is evaluated: the nodes evaluate
            # each round's result once.
            if round_result is not None:
                evaluate_replies = self._exchange(
                    grid,
                    list(self.configure_evaluate(current_round, arrays, evaluate_config, grid)),
                    timeout,
                )
                agg = self.aggregate_evaluate(current_round, evaluate_replies)
                if agg is not None:
                    result.evaluate_metrics_clientapp[current_round] = agg
            if evaluate_fn:
                res = evaluate_fn(current_round, arrays)
                if res is not None:
                    result.evaluate_metrics_serverapp[current_round] = res

        log(INFO, "Strategy execution finished in %.2fs", time.time() - t_start)
        self._trace({"event": "finished", "rounds": self.coordinator.round})
        return result
