"""Reference epsilons for the tests of accountant.rs (Gaussian limit).

Independent of the Rust code: Google's dp_accounting (PyPI `dp-accounting`,
version 0.6.0 when the table in accountant.rs was made) composes `T` rounds of
the Gaussian mechanism with noise multiplier `z` (noise std / L2 sensitivity)
with its RDP accountant and converts to (epsilon, delta) with its improved
conversion (Canonne-Kamath-Steinke 2020, Prop. 12).

Two calls per case: the accountant's default order grid, and a fine grid of
3000 orders 1 + 10^u, u in [-2, 6] (the default grid is coarse for small rho
and over-reports epsilon there by up to ~7%). The fine values are the reference.

Regenerate, outside the repository:
    python3 -m venv /tmp/dpacc && /tmp/dpacc/bin/pip install dp-accounting
    /tmp/dpacc/bin/python reference_epsilons.py
and paste the printed rows into REFERENCE in accountant.rs.
"""

from importlib.metadata import version

import numpy as np
from dp_accounting import dp_event
from dp_accounting.rdp import rdp_privacy_accountant as rdp

FINE_ORDERS = list(1 + np.logspace(-2, 6, 3000))
NOISE_MULTIPLIERS = [1.0, 2.5, 5.0, 12.0, 25.0, 50.0]
ROUNDS = [1, 10, 100]
DELTAS = [1e-5, 1e-6]


def epsilon(z: float, rounds: int, delta: float, orders=None) -> float:
    if orders is None:
        accountant = rdp.RdpAccountant()
    else:
        accountant = rdp.RdpAccountant(orders=orders)
    accountant.compose(dp_event.SelfComposedDpEvent(dp_event.GaussianDpEvent(z), rounds))
    return accountant.get_epsilon(delta)


def main() -> None:
    print(f"// dp_accounting {version('dp-accounting')}")
    print("// (z, T, delta, eps with default orders, eps with fine orders)")
    for z in NOISE_MULTIPLIERS:
        for rounds in ROUNDS:
            for delta in DELTAS:
                default = epsilon(z, rounds, delta)
                fine = epsilon(z, rounds, delta, FINE_ORDERS)
                print(f"    ({z:.1f}, {rounds}, {delta:.0e}, {default:.9f}, {fine:.9f}),")


if __name__ == "__main__":
    main()
