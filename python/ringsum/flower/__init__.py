"""ringsum for Flower: secure aggregation as a ClientApp mod and a server strategy.

Client side (each SuperNode gets its ringsum files through ``--node-config``)::

    from ringsum.flower import ringsum_mod
    app = ClientApp(mods=[ringsum_mod])

Server side, in the ServerApp's ``@app.main()``::

    from ringsum.flower import SecureFedAvg
    strategy = SecureFedAvg(federation="federation.json", coordinator="coordinator-keys/")
    result = strategy.start(grid=grid, initial_arrays=arrays, num_rounds=3)

Requires ``flwr`` (tested with 1.42.0).
"""

from ._protocol import RECORD_KEY
from .mod import ModError, NodeSetup, ringsum_mod
from .strategy import RefusedReply, SecureFedAvg, describe_content

__all__ = [
    "RECORD_KEY",
    "ModError",
    "NodeSetup",
    "RefusedReply",
    "SecureFedAvg",
    "describe_content",
    "ringsum_mod",
]
