"""Encrypting one update from Python against the same Rust call timed in Rust.

The issue's target: `Client.submit` on 10^6 float32 values from Python
within 1.2x of the Rust call. Both sides run in this one process, on the
same build of the native module, federation, key and values:

- Rust: `ringsum._native._bench_rust_submit` times, inside Rust, exactly
  what `Client.submit` runs once its arrays are read: a fresh OS-seeded
  generator, `Client::submit` (encrypt, share the round key, seal a share to
  each holder, sign) and `Submission::to_bytes`. Its values are read before
  the clock starts.
- Python: `time.perf_counter()` around `client.submit(1, update, samples)`,
  so it adds everything the binding does: reading the dict of numpy arrays
  into the flat float32 vector (one copy), releasing and re-taking the GIL,
  and making the `bytes` object.

The two are interleaved call by call (after one warm-up call each) so that
both see the same machine state; the medians and their ratio are printed.
Build the module with `maturin develop --release` first: a debug build
measures the binding's overhead against unoptimised code.

    python python/benches/bench_encrypt.py [--parameters 1000000] [--repetitions 9]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import ringsum
from ringsum import _native


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parameters", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=9, help="at least 7")
    parser.add_argument("--parameter-set", default="rk128-n16384")
    parser.add_argument("--holders", type=int, default=3)
    args = parser.parse_args()
    if args.repetitions < 7:
        parser.error("--repetitions must be at least 7")

    # A model of a few tensors, 10^6 float32 values in all by default.
    rows = 1000
    cols, rest = divmod(args.parameters - 1000, rows)
    model = {
        "layer.weight": np.zeros((rows, cols), dtype=np.float32),
        "layer.bias": np.zeros(1000 + rest, dtype=np.float32),
    }
    rng = np.random.default_rng(0)
    update = {k: (rng.normal(size=v.shape) * 0.01).astype(np.float32) for k, v in model.items()}
    assert sum(v.size for v in update.values()) == args.parameters

    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp)
        ringsum.keygen(keys / "coordinator")
        holders = []
        for i in range(args.holders):
            ringsum.keygen(keys / f"holder-{i}", holder=True)
            holders.append(keys / f"holder-{i}")
        clients = []
        for i in range(2):
            ringsum.keygen(keys / f"client-{i}")
            clients.append(keys / f"client-{i}")
        federation = ringsum.Federation.create(
            layout=model,
            coordinator=keys / "coordinator",
            holders=holders,
            clients=clients,
            threshold=args.holders // 2 + 1,
            parameter_set=args.parameter_set,
        )
        identity = ringsum.Identity.load(keys / "client-0")
    client = ringsum.Client(federation, identity)

    def python_call() -> float:
        start = time.perf_counter()
        submission = client.submit(1, update, 10)
        seconds = time.perf_counter() - start
        # Freed after the clock stops, as the Rust side drops its bytes.
        del submission
        return seconds

    def rust_call() -> float:
        (seconds,) = _native._bench_rust_submit(federation, identity, update, 10, 1)
        return seconds

    size = len(client.submit(1, update, 10))
    rust_call()
    python_times, rust_times = [], []
    for _ in range(args.repetitions):
        rust_times.append(rust_call())
        python_times.append(python_call())

    rust = statistics.median(rust_times)
    python = statistics.median(python_times)
    print(
        f"{args.parameters} float32 parameters, {args.parameter_set}, {args.holders} holders, "
        f"submission {size / 1e6:.2f} MB, median of {args.repetitions}"
    )
    print(f"rust   Client::submit + to_bytes: {rust * 1e3:9.2f} ms")
    print(f"python Client.submit            : {python * 1e3:9.2f} ms")
    print(f"ratio python / rust             : {python / rust:9.3f}")


if __name__ == "__main__":
    main()
