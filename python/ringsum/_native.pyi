"""Type stubs of ringsum._native, the Rust part of ringsum (crates/ringsum-py).

A *structure* is how model updates and models are passed: a Mapping of str
to numpy arrays (matched to the layout by name; its insertion order is its
order), a list or tuple of numpy arrays (matched by position), or one numpy
array (read flat over the whole layout). Arrays may have any shape and must
be float16, float32 or float64; they are read in C order, and a 0-d array
counts as shape (1,). Each array is copied once, straight from its buffer
into the flat float32 vector the protocol encrypts.
"""

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypedDict

import numpy as np
import numpy.typing as npt
from typing_extensions import Required

__version__: Final[str]

FloatArray = npt.NDArray[np.floating[Any]]
Structure = Mapping[str, FloatArray] | Sequence[FloatArray] | FloatArray
Layout = list[tuple[str, tuple[int, ...]]]
PathLike = str | os.PathLike[str]
Records = FloatArray | Iterable[Structure]

class PrivacySettings(TypedDict, total=False):
    """The ``privacy`` argument of ``Federation.create``."""

    epsilon: Required[float]
    """Target epsilon over all the federation's rounds."""
    delta: Required[float]
    """Target delta over all the rounds, in (0, 1)."""
    clip: float
    """L2 norm every record's gradient is clipped to, in [1e-6, 1e6]
    (default 1.0)."""
    learning_rate: float
    """The rate of the gradient step the round makes (default 2.0); the
    integer weight must express it to within 1%."""
    records_per_client: Required[int]
    """The planned, public number of records per client: the step divides
    the noised gradient sum by this times the number of clients."""
    max_records: Required[int]
    """The most records a client adds up in one round."""
    noise_clients: int
    """The fewest clients whose noise every opened sum holds, at most
    min_clients (default min_clients): up to min_clients - noise_clients
    clients of a set may add no noise."""

class PrivacyPlan(TypedDict):
    """``Federation.privacy``: the settings and what follows from them."""

    epsilon: float
    delta: float
    clip: float
    learning_rate: float
    records_per_client: int
    max_records: int
    noise_clients: int
    declared_samples: int
    """The sample count every submission declares (a public constant
    that sets the step's weight, not a count of records)."""
    effective_learning_rate: float
    """The rate the round's step has: learning_rate as the integer weight
    can express it."""
    noise_std: float
    """The standard deviation of the noise a sum of noise_clients
    contributions holds per parameter, in gradient units (of the sum of
    clipped gradients, before the step divides it)."""
    scale_bits: int
    """Gradients are quantized at scale 2**scale_bits."""
    planned_epsilon: float
    """Epsilon after all the rounds if every round is charged for exactly
    noise_clients honest clients, as a set of min_clients is (at most the
    target)."""

class RingsumError(Exception):
    """The base of every ringsum error; the message is the Rust error's text."""

class InputError(RingsumError, ValueError):
    """Bad values from the caller: a dtype that is not float16/32/64 (ints,
    complex, object), a structure or shape that does not match the layout,
    NaN or infinity in an update (naming the tensor and index; in a
    ``submit_private`` record it counts as a zero gradient), samples outside the
    policy, an unknown parameter set name."""

class FormatError(RingsumError):
    """Bytes or files that do not decode (truncated, wrong version, too large)."""

class AuthenticationError(RingsumError):
    """A bad signature, a signer that is not a member, bytes of another
    federation, a share bound to another update."""

class RefusedError(RingsumError):
    """The protocol refuses: wrong round or phase, a replay or a duplicate,
    too few clients, a holder asked for a second set in a round, a share
    missing."""

class RoundFailedError(RingsumError):
    """The round could not be opened (not enough honest answers, a weight
    that disagrees with the declared samples); the coordinator's next round
    still works."""

class SetupError(RingsumError):
    """Keys, descriptions or federations that are invalid (2t <= n, an
    identity that is not a member in the role asked for, unreadable key
    files, an audit log file that exists)."""

def keygen(directory: PathLike, *, holder: bool = False, hybrid: bool = False) -> str:
    """Writes identity.key and identity.pub (and sealing.key, sealing.pub for
    a key holder) into `directory` (created if missing) exactly as
    `ringsum keygen` does; existing key files are never overwritten. Hybrid
    keys are ML-DSA-65 + Ed25519 and ML-KEM-1024 + X25519. Returns the
    member id (64 hex digits)."""

def parameter_sets() -> list[str]:
    """The shipped per-round-key parameter set ids (rk128-n4096 ... rk128-n32768)."""

def layout_of(arrays: Structure) -> Layout:
    """Names and shapes of a structure: a Mapping uses its keys, a list or
    tuple "0", "1", ..., one array "0". A 0-d array has shape (1,)."""

class Federation:
    """What every participant of a federation agrees on: parameter set,
    layout, policy, threshold and everyone's public keys. Its id hashes all
    of it. Immutable; equal when the descriptions are; pickles as its JSON."""

    @staticmethod
    def create(
        *,
        layout: Layout | Structure,
        coordinator: PathLike,
        holders: Sequence[PathLike],
        clients: Sequence[PathLike],
        threshold: int,
        parameter_set: str = "rk128-n16384",
        min_clients: int = 2,
        min_samples: int = 1,
        max_weight: int = 10000,
        rounds: int = 100,
        hybrid: bool = False,
        application: Any = None,
        privacy: PrivacySettings | None = None,
    ) -> Federation:
        """A federation from keygen directories: `coordinator`'s identity.pub,
        each holder's identity.pub and sealing.pub (holders get the Shamir
        points 1..n in list order) and each client's identity.pub (clients
        get their index in list order). `layout` is (name, shape) pairs as
        `layout_of` gives, or a structure whose layout is taken.
        `application` is any JSON-serialisable value carried in the
        description (not part of the id). SetupError for 2t <= n, a policy
        out of bounds or unreadable keys; InputError for an unknown
        parameter set or a bad layout.

        `privacy` makes every round one step of differentially private
        gradient descent (clients call ``Client.submit_private``, never
        ``submit``): a dict of epsilon, delta, records_per_client and
        max_records, and optionally clip (1.0), learning_rate (2.0) and
        noise_clients (min_clients). The settings are part of the id.
        InputError for a missing key, an unknown one or a value out of
        range (a clip outside [1e-6, 1e6]); SetupError for a target this
        parameter set, model and federation cannot meet (sums that would
        overflow the slots, a learning rate the integer weight cannot
        express to within 1%, more noise than the sampler supports, a
        declared sample count below min_samples, noise_clients above
        min_clients)."""

    @staticmethod
    def load(path: PathLike) -> Federation:
        """Reads a federation description file (JSON version 2)."""

    @staticmethod
    def from_json(text: str) -> Federation:
        """Parses a federation description (JSON version 2, as `ringsum
        serve` publishes it). FormatError for JSON that does not parse or
        another version."""

    def to_json(self) -> str:
        """The description as JSON."""

    def save(self, path: PathLike) -> None:
        """Writes the description to `path`."""

    @property
    def id(self) -> str:
        """The federation id: 64 hex digits."""

    @property
    def parameter_set(self) -> str: ...
    @property
    def layout(self) -> Layout:
        """(name, shape) per tensor, in layout order."""

    @property
    def parameter_count(self) -> int: ...
    @property
    def threshold(self) -> int:
        """Holders whose answers open a sum (2t > n)."""

    @property
    def holders(self) -> list[int]:
        """The holders' Shamir points."""

    @property
    def num_clients(self) -> int: ...
    @property
    def min_clients(self) -> int: ...
    @property
    def min_samples(self) -> int: ...
    @property
    def max_weight(self) -> int: ...
    @property
    def rounds(self) -> int: ...
    @property
    def clip(self) -> float:
        """Values are clipped to [-clip, clip] before quantization."""

    @property
    def hybrid(self) -> bool:
        """Whether keys are hybrid (ML-DSA-65 + Ed25519, ML-KEM-1024 + X25519)."""

    @property
    def application(self) -> Any:
        """The application's JSON value, or None."""

    @property
    def privacy(self) -> PrivacyPlan | None:
        """The differential-privacy settings with what the plan derives from
        them, or None for a federation without."""

    def read_publication(self, publication: bytes) -> tuple[int, int, npt.NDArray[np.float32]]:
        """Checks that ``publication`` is a round result signed by this
        federation's coordinator (the announcement ``Coordinator.open_round``
        returns, or ``RoundResult.publication``) and returns the round it was
        signed for, the round whose result the model is (0: the initial
        model), and the model as a flat float32 array in layout order.
        ``FormatError`` for bytes that do not decode, ``AuthenticationError``
        for a signature that is not the coordinator's of this federation,
        ``RefusedError`` for a result round beyond the federation's rounds or
        a pair of rounds that is neither an announcement (signed for round
        r + 1, the result of round r) nor a publication (both r)."""
        ...
    def client_index(self, identity: Identity | str) -> int | None:
        """The client index of an Identity (or member id), None if it is not
        a client."""

    def holder_point(self, identity: Identity | str) -> int | None:
        """The Shamir point of an Identity (or member id), None if it is not
        a key holder."""

    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Identity:
    """A participant's secret keys from a keygen directory. Kept in memory
    that is wiped when the object is dropped; repr shows the id only; not
    picklable (TypeError): load it where it is used."""

    @staticmethod
    def load(directory: PathLike) -> Identity:
        """Reads identity.key (and sealing.key when present). SetupError for
        missing, unreadable or group/world-readable key files."""

    @property
    def id(self) -> str:
        """The member id: 64 hex digits."""

    @property
    def algorithm(self) -> str:
        """The signature algorithm ("ML-DSA-65" or the hybrid)."""

    @property
    def is_holder(self) -> bool:
        """Whether it has a sealing key."""

class Client:
    """A client of a federation: encrypts its model updates."""

    def __init__(self, federation: Federation, identity: Identity) -> None:
        """SetupError if `identity` is not a client of `federation`."""

    @property
    def index(self) -> int:
        """Its index in the federation's client list."""

    def submit(self, round: int, update: Structure, samples: int) -> bytes:
        """Encrypts `update` (trained minus global, a structure matching the
        layout) declared as trained on `samples` records, for `round`
        (1-based), under a fresh per-round key; returns the submission's
        bytes (the signed update and one sealed key share per holder). The
        GIL is released while encrypting. InputError for a bad dtype,
        shape, name, NaN/inf or samples outside [min_samples, max_weight];
        RefusedError for a round outside 1..rounds, or in a federation
        with differential privacy (use submit_private). Do not call it
        twice for one round unless the coordinator refused the
        submission."""

    def submit_private(self, round: int, gradients: Records) -> bytes:
        """In a federation with differential privacy: this client's
        contribution to `round`'s gradient step. `gradients` holds one
        gradient per training record, at the global model of the round:
        a 2-D float16/32/64 array of shape (records, parameter_count), any
        memory order, or an iterable of per-record structures (each as
        ``submit`` takes an update). Each record's gradient is clipped to
        L2 norm ``clip``, quantized with stochastic rounding and summed; a
        record with a NaN or an infinity anywhere counts as a zero
        gradient, not as an error (whether a client submits must not
        depend on one record: check the gradients first to find such
        records). This client's share of the discrete Gaussian noise is
        added and the noised sum encrypted (the step's sign and weight are
        the protocol's: the round's average is -effective_learning_rate
        times the noised sum over num_clients * records_per_client).
        Returns the submission's bytes; the true record count is not sent.
        Zero records is allowed: the client still adds its noise. The GIL
        is released while summing and encrypting. InputError for a shape,
        dtype, names or structure (naming the record) or more than
        max_records records; RefusedError in a federation without
        privacy or for a round outside 1..rounds."""

class RoundStatus(TypedDict):
    phase: Literal["idle", "collecting", "answering"]
    round: int
    accepted: int
    answers: int

class RoundResult:
    """A finished round. Pickles (a plain record); what a participant checks
    is its signed ``publication`` (``Federation.read_publication``)."""

    def __init__(
        self,
        round: int,
        clients: list[int],
        weight_sum: int,
        samples: dict[int, int],
        total_samples: int,
        error_bound: float,
        liars: list[int],
        used: list[int],
        model: Structure,
        average: Structure,
        publication: bytes,
        epsilon: float | None = None,
    ) -> None:
        """From its parts, as ``Coordinator.finish`` makes it and unpickling
        rebuilds it."""

    @property
    def round(self) -> int: ...
    @property
    def clients(self) -> list[int]:
        """The client indices summed."""

    @property
    def weight_sum(self) -> int:
        """The protocol's quantized weight sum: each client's samples /
        max_weight of the parameter set, in units of 2^-fraction_bits (not
        a sample count: see total_samples)."""

    @property
    def samples(self) -> dict[int, int]:
        """Client index -> the samples it declared in its signed submission."""

    @property
    def total_samples(self) -> int:
        """The declared samples of the clients summed (FedAvg's num_examples)."""

    @property
    def error_bound(self) -> float:
        """Per-parameter bound on the quantization error of `average`."""

    @property
    def liars(self) -> list[int]:
        """Holder points whose wrong answers were corrected."""

    @property
    def used(self) -> list[int]:
        """Holder points whose answers were used."""

    @property
    def model(self) -> Structure:
        """The new global model, in the initial model's structure and dtypes."""

    @property
    def average(self) -> Structure:
        """The weighted average of the updates, in the same structure."""

    @property
    def publication(self) -> bytes:
        """The coordinator's signed result."""

    @property
    def epsilon(self) -> float | None:
        """With differential privacy: the epsilon spent by the rounds this
        coordinator object finished so far, this one included, at the
        plan's delta. A round of n clients is charged for the noise of
        max(noise_clients, n - (min_clients - noise_clients)) honest
        clients, never more than the plan's round; None without."""

class Coordinator:
    """The coordinator of a federation. Thread-safe; heavy calls release the GIL."""

    def __init__(
        self,
        federation: Federation,
        identity: Identity,
        model: Structure,
        *,
        audit_log: PathLike | None = None,
    ) -> None:
        """`model` is the initial global model; its structure (dict or list,
        names, shapes, dtypes) is how models and averages come back.
        `audit_log` is a new file for the signed audit log (SetupError if it
        exists); without it the log is kept in memory."""

    @property
    def round(self) -> int:
        """The last round opened (0 before the first)."""

    @property
    def status(self) -> RoundStatus: ...
    @property
    def epsilon(self) -> float | None:
        """With differential privacy: the epsilon spent by the rounds this
        object finished, including a round that failed to decode after the
        holders answered, and a round abandoned after close() at the plan's
        worst case, since its sum may have been opened (0.0 before the
        first; a round abandoned before close() is not charged; the count
        covers this object only, a new Coordinator starts again at 0);
        None without."""

    def open_round(self) -> bytes:
        """Opens the next round; returns the signed announcement the holders
        follow. RefusedError while a round is open or after the last round."""

    def accept(self, submission: bytes) -> int:
        """Checks and adds one submission; returns its client index. On any
        error the round's state is unchanged."""

    @property
    def accepted(self) -> list[int]:
        """The client indices accepted in the open round."""

    def close(self) -> bytes:
        """Signs the set of accepted clients and returns the request for the
        holders (RefusedError below min_clients; the round keeps collecting).
        Called again while the holders answer, it returns the same request."""

    def shares_for(self, point: int) -> list[bytes]:
        """The sealed key shares addressed to holder `point` from the round's
        accepted clients."""

    def accept_answer(self, answer: bytes) -> int:
        """Adds one holder's answer; returns the number of answers so far."""

    def finish(self) -> RoundResult:
        """Combines the answers (at least t), decodes the average and
        publishes the new model. RefusedError with fewer than t answers (the
        round keeps waiting); RoundFailedError if the round cannot be
        decoded (the next open_round works)."""

    def abandon(self, reason: str) -> None:
        """Ends the open round without a result, with `reason` in the log."""

    def model(self) -> Structure:
        """The current global model, in the initial model's structure."""

    def audit_lines(self) -> list[str]:
        """The signed, hash-chained audit log (one JSON object per line)."""

class Holder:
    """A key holder. Thread-safe; heavy calls release the GIL."""

    def __init__(
        self, federation: Federation, identity: Identity, *, journal: PathLike | None = None
    ) -> None:
        """`journal` is a file (redb) recording the sets answered, so that a
        holder never answers a second set in a round, also across restarts;
        None keeps it in memory. SetupError if `identity` is not a holder of
        the federation or has no sealing key, or the journal belongs to
        another federation or holder (or another process holds it). The
        journal file stays open, and locked, until the Holder is dropped."""

    @property
    def point(self) -> int:
        """Its Shamir point."""

    def follow(self, announcement: bytes) -> int:
        """Follows the coordinator's signed announcement; returns the round."""

    def receive_share(self, share: bytes) -> int:
        """Checks, opens and keeps a client's sealed key share; returns the
        client index."""

    def answer(self, request: bytes) -> bytes:
        """Answers the coordinator's signed request for a set of clients. The
        same set again gets the same answer; another set in the same round
        is refused (RefusedError)."""

    def answer_round(self, announcement: bytes, shares: Sequence[bytes], request: bytes) -> bytes:
        """follow, receive_share for each share, then answer, in one call.
        A share this holder already accepted (the exact bytes) is skipped,
        so a call that failed part-way can be repeated with the same
        arguments."""

def _bench_rust_submit(
    federation: Federation,
    identity: Identity,
    values: Structure,
    samples: int,
    repetitions: int,
) -> list[float]:
    """For python/benches: the seconds of each of `repetitions` Rust calls
    that Client.submit makes, timed inside Rust."""
