"""ClientApp: local logistic regression; ringsum_mod encrypts what leaves the node.

Node configuration (``flower-supernode --node-config``):

* ``partition-id``, ``num-partitions``: this node's share of the data;
* ``data-path``: the breast-cancer CSV (``examples/data/breast_cancer.csv``);
* ``local-epochs``, ``learning-rate``: local training (default 5 and 0.1).
  They are read from the node's own configuration, not from the run config
  or the server's train config: both come from the server unsigned, and a
  server that sets a learning rate or epochs of 0 for the clients it does not
  target makes their updates zero, so the sum reveals the target's update;
* ``ringsum-federation``, ``ringsum-client``, ``ringsum-holder``,
* ``ringsum-federation``, ``ringsum-client``, ``ringsum-holder``,
  ``ringsum-state`` (must persist across restarts),
  ``ringsum-allow-evaluate``: see ``ringsum.flower.mod``. Without
  ``ringsum-allow-evaluate=true`` the mod refuses evaluate messages and
  ``evaluate`` below never runs.
"""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from ringsum.flower import ringsum_mod

from . import task

# The one ringsum line on the client side: the mod wraps every function below.
app = ClientApp(mods=[ringsum_mod])


def _partition(context: Context) -> tuple[task.FloatArray, task.FloatArray]:
    node = context.node_config
    return task.load_partition(
        str(node["data-path"]), int(node["partition-id"]), int(node["num-partitions"])
    )


#: Training settings used when the node's configuration does not set them.
DEFAULT_LOCAL_EPOCHS = 5
DEFAULT_LEARNING_RATE = 0.1


def _training_settings(context: Context) -> tuple[int, float]:
    """Epochs and learning rate from the node's configuration (never the server's)."""
    node = context.node_config
    epochs = int(node.get("local-epochs", DEFAULT_LOCAL_EPOCHS))
    learning_rate = float(node.get("learning-rate", DEFAULT_LEARNING_RATE))
    if epochs < 1 or not learning_rate > 0.0:
        raise ValueError("local-epochs must be at least 1 and learning-rate positive")
    return epochs, learning_rate


def _model(msg: Message) -> dict[str, task.FloatArray]:
    arrays = msg.content.array_records["arrays"]
    return {name: array.numpy() for name, array in arrays.items()}


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train on the local partition from the global model the server sent."""
    features, labels = _partition(context)
    epochs, learning_rate = _training_settings(context)
    model = task.train(_model(msg), features, labels, epochs=epochs, learning_rate=learning_rate)
    loss, _ = task.evaluate(model, features, labels)
    content = RecordDict(
        {
            "arrays": ArrayRecord({name: Array(value) for name, value in model.items()}),
            "metrics": MetricRecord({"train-loss": loss, "num-examples": len(labels)}),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Loss and accuracy of the global model on the local partition.

    The mod lets this run only for the model the coordinator signed as a
    round's result, once per round; the metrics go to the server in plaintext.
    """
    features, labels = _partition(context)
    loss, accuracy = task.evaluate(_model(msg), features, labels)
    metrics = MetricRecord({"eval-loss": loss, "eval-acc": accuracy, "num-examples": len(labels)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
