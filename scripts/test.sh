#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace, then the Python
# package (ringsum._native built by maturin into a virtualenv) with pytest.
#
# Needs Rust and Python 3 with pip and venv; everything else is installed
# into target/python-venv (kept between runs) from
# python/requirements-test.txt.
#
#   RINGSUM_SKIP_CARGO_TEST=1  skip `cargo test` (when iterating on Python)
#   PYTHON=python3.11          the interpreter to make the venv with
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ "${RINGSUM_SKIP_CARGO_TEST:-0}" != "1" ]]; then
    cargo test --workspace --locked
fi

venv="$root/target/python-venv"
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r python/requirements-test.txt

# maturin builds the native module (debug profile: quick to build, and the
# dev profile optimises dependencies) and installs the package editable.
# It reads python/pyproject.toml from the working directory.
(
    cd python
    VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop -q
)

# The Python sources' lint and format (settings in ruff.toml).
"$venv/bin/ruff" check python examples/flower
"$venv/bin/ruff" format --check python examples/flower

"$venv/bin/python" -m pytest -q python/tests
