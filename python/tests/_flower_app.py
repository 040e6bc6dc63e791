"""Flower pieces shared by the Flower test modules (they import flwr, so only
modules that skip without it import this one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _flower_common import Setup
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.supercore.task_identity import TaskIdentity
from ringsum.flower import SecureFedAvg

Mod = Callable[[Message, Context, Callable[[Message, Context], Message]], Message]


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    """Messages are built outside a Flower process: give them a run and node id."""
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)  # noqa: SLF001
    TaskIdentity.run_id = 1
    TaskIdentity.node_id = 0
    TaskIdentity.task_id = 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved  # noqa: SLF001


def example_app(mod: Mod) -> ClientApp:
    """The example's ClientApp (its train and evaluate) behind `mod`."""
    from ringsum_flower_example import client_app

    app = ClientApp(mods=[mod])
    app.train()(client_app.train)
    app.evaluate()(client_app.evaluate)
    return app


def secure_fedavg(setup: Setup, **options: object) -> SecureFedAvg:
    """The strategy as the coordinator of `setup`, with short waits (the
    in-process grid answers at once): `options` override them."""
    settings: dict[str, object] = {"discovery_timeout": 5, "holder_grace": 0, **options}
    return SecureFedAvg(setup.federation, str(setup.coordinator), **settings)
