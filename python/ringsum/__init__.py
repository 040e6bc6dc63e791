"""ringsum: post-quantum secure aggregation for federated learning.

Clients encrypt their model updates under a fresh key per round; the
coordinator sums the ciphertexts and asks a threshold of key holders for
the sum of the round's keys, so that it learns the weighted average of the
updates and nothing about any single one. Everything is signed with
ML-DSA-65 (optionally hybrid with Ed25519) and the key shares are sealed
with ML-KEM-1024.

The classes wrap the Rust implementation (``ringsum._native``):

- :class:`Federation`: what every participant agrees on (layout, policy,
  keys); the same JSON description that ``ringsum serve`` publishes.
- :class:`Identity`: a participant's secret keys, from a :func:`keygen`
  directory.
- :class:`Client`: encrypts an update (a dict or list of numpy arrays).
- :class:`Coordinator`: collects submissions, asks the holders, publishes
  the new global model (:class:`RoundResult`).
- :class:`Holder`: a key holder, answering one set of clients per round.

Every error is a :class:`RingsumError`; see its subclasses.
"""

from ringsum._native import (
    AuthenticationError,
    Client,
    Coordinator,
    Federation,
    FormatError,
    Holder,
    Identity,
    InputError,
    RefusedError,
    RingsumError,
    RoundFailedError,
    RoundResult,
    SetupError,
    __version__,
    keygen,
    layout_of,
    parameter_sets,
)

__all__ = [
    "AuthenticationError",
    "Client",
    "Coordinator",
    "Federation",
    "FormatError",
    "Holder",
    "Identity",
    "InputError",
    "RefusedError",
    "RingsumError",
    "RoundFailedError",
    "RoundResult",
    "SetupError",
    "__version__",
    "keygen",
    "layout_of",
    "parameter_sets",
]
