"""The learning task: logistic regression in NumPy on the breast-cancer data set.

Everything here is deterministic: the same global model and the same partition
give bit-for-bit the same local update, so a test can recompute what each
client submitted from the published models alone.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

NUM_FEATURES = 30


def initial_model() -> dict[str, FloatArray]:
    """The starting global model: zero weights and bias, in a fixed key order."""
    return {
        "w": np.zeros(NUM_FEATURES, dtype=np.float64),
        "b": np.zeros(1, dtype=np.float64),
    }


def load_csv(path: str | Path) -> tuple[FloatArray, FloatArray]:
    """Read the shipped CSV: features first, the 0/1 label last.

    The first line of `breast_cancer.csv` is a header
    (`569,30,malignant,benign`) and is skipped.
    """
    rows: list[list[float]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle)):
            if line_number == 0 and len(row) != NUM_FEATURES + 1:
                continue
            if len(row) != NUM_FEATURES + 1:
                raise ValueError(
                    f"{path}: line {line_number + 1} has {len(row)} fields, "
                    f"expected {NUM_FEATURES + 1}"
                )
            rows.append([float(value) for value in row])
    table = np.asarray(rows, dtype=np.float64)
    return table[:, :NUM_FEATURES], table[:, NUM_FEATURES]


def standardize(features: FloatArray) -> FloatArray:
    """Zero mean, unit variance per feature, with the statistics of this data only."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std[std == 0.0] = 1.0
    return (features - mean) / std


def load_partition(
    path: str | Path, partition_id: int, num_partitions: int
) -> tuple[FloatArray, FloatArray]:
    """Rows `partition_id, partition_id + num_partitions, ...`, standardized locally."""
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition-id {partition_id} is outside 0..{num_partitions - 1}")
    features, labels = load_csv(path)
    rows = np.arange(partition_id, len(labels), num_partitions)
    return standardize(features[rows]), labels[rows]


def load_all(path: str | Path) -> tuple[FloatArray, FloatArray]:
    """The whole data set, standardized (for a central evaluation)."""
    features, labels = load_csv(path)
    return standardize(features), labels


def _sigmoid(z: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def train(
    model: dict[str, FloatArray],
    features: FloatArray,
    labels: FloatArray,
    *,
    epochs: int,
    learning_rate: float,
) -> dict[str, FloatArray]:
    """Full-batch gradient descent on the mean logistic loss; returns a new model."""
    w = np.array(model["w"], dtype=np.float64, copy=True)
    b = np.array(model["b"], dtype=np.float64, copy=True)
    n = float(len(labels))
    for _ in range(epochs):
        error = _sigmoid(features @ w + b[0]) - labels
        w -= learning_rate * (features.T @ error) / n
        b -= learning_rate * np.array([error.sum() / n])
    return {"w": w, "b": b}


def evaluate(
    model: dict[str, FloatArray], features: FloatArray, labels: FloatArray
) -> tuple[float, float]:
    """Mean logistic loss and accuracy."""
    p = _sigmoid(features @ model["w"] + model["b"][0])
    eps = 1e-12
    loss = float(-np.mean(labels * np.log(p + eps) + (1 - labels) * np.log(1 - p + eps)))
    accuracy = float(np.mean((p >= 0.5) == (labels >= 0.5)))
    return loss, accuracy
