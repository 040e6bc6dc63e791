"""ServerApp: FedAvg, with the average computed by ringsum (or plain, for comparison).

Run configuration (``[tool.flwr.app.config]``, or ``flwr run --run-config``):

* ``secure``: true for ringsum (default), false for Flower's plain FedAvg;
* ``ringsum-federation``: the federation description (JSON) on the server;
* ``ringsum-coordinator``: the coordinator's key directory on the server;
* ``ringsum-trace``: optional JSON-lines trace of every reply received;
* ``data-path``: optional CSV for a central evaluation of each global model.
"""

from __future__ import annotations

import json

from flwr.app import Array, ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from ringsum.flower import SecureFedAvg

from . import task

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the rounds, then optionally write the final model as JSON."""
    cfg = context.run_config
    initial = ArrayRecord({k: Array(v) for k, v in task.initial_model().items()})
    fraction_evaluate = float(cfg["fraction-evaluate"])

    if bool(cfg["secure"]):
        # The ringsum lines on the server side: SecureFedAvg instead of FedAvg.
        strategy = SecureFedAvg(
            federation=str(cfg["ringsum-federation"]),
            coordinator=str(cfg["ringsum-coordinator"]),
            fraction_evaluate=fraction_evaluate,
            trace=str(cfg["ringsum-trace"]) or None,
            trace_payloads=bool(cfg["ringsum-trace-payloads"]),
        )
    else:
        strategy = FedAvg(
            fraction_evaluate=fraction_evaluate,
            min_train_nodes=int(cfg["min-nodes"]),
            min_evaluate_nodes=int(cfg["min-nodes"]) if fraction_evaluate > 0 else 0,
            min_available_nodes=int(cfg["min-nodes"]),
        )

    data_path = str(cfg["data-path"])

    def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if not data_path:
            return None
        features, labels = task.load_all(data_path)
        model = {name: array.numpy() for name, array in arrays.items()}
        loss, accuracy = task.evaluate(model, features, labels)
        return MetricRecord({"loss": loss, "accuracy": accuracy})

    result = strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=int(cfg["num-server-rounds"]),
        timeout=float(cfg["round-timeout"]),
        evaluate_fn=central_evaluate,
    )

    output = str(cfg["output"])
    if output:
        final = {name: array.numpy().tolist() for name, array in result.arrays.items()}
        with open(output, "w", encoding="utf-8") as handle:
            json.dump({"model": final}, handle)
