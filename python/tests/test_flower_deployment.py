"""The example app on Flower's deployment engine: real SuperLink and SuperNodes.

Starts `flower-superlink --insecure` and four `flower-supernode --insecure`
on free loopback ports (nodes 0..3 are clients 0..3, nodes 0..2 are also the
holders, threshold 2), runs the example with `flwr run` for three rounds,
waits for the run to finish (hard timeout), and checks the ServerApp's trace:

(a) every round's encrypted FedAvg equals plaintext FedAvg of the same
    updates (recomputed here) within the round's error bound;
(b) every reply the ServerApp process received from a client or a holder
    held one ringsum ConfigRecord of bytes (and ints), no ArrayRecord, no
    floats, and no received payload contains a client's plaintext update;
(c) the run finished all rounds.

All processes started here are killed in the fixture's finalizer, with the
SuperExec/ClientApp children they spawned.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import flwr  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip(
        "flwr is not installed (pip install -r python/requirements-test.txt)",
        allow_module_level=True,
    )

import contextlib

from _flower_common import (  # noqa: E402
    DATA,
    EXAMPLE,
    LEARNING_RATE,
    LOCAL_EPOCHS,
    Setup,
    check_ciphertext_only,
    check_rounds,
    make_setup,
    read_trace,
)

NODES = 4
HOLDERS = 3
THRESHOLD = 2
ROUNDS = 3
#: Hard limit for the whole run once `flwr run` returned.
RUN_TIMEOUT = 240.0
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"port {port} did not open in {timeout} s")


def descendants(pid: int) -> list[int]:
    """The process ids below `pid` (Linux /proc), children first found first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Deployment:
    setup: Setup
    root: Path
    env: dict[str, str]
    superlink_port: int
    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def flwr(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "flwr"), *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def dump_logs(self) -> str:
        parts = []
        for log in self.logs:
            if log.exists():
                parts.append(f"==== {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each started process and what it spawned, then SIGKILL leftovers."""
    targets: list[int] = []
    for process in processes:
        if process.poll() is None:
            targets.extend(descendants(process.pid))
            targets.append(process.pid)
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for process in processes:
        if process.poll() is None:
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    for tool in ("flower-superlink", "flower-supernode", "flower-superexec", "flwr"):
        if not (BIN / tool).exists():
            pytest.fail(f"{tool} is missing next to {sys.executable}")
    root = tmp_path_factory.mktemp("flower-deployment")
    setup = make_setup(root / "keys", clients=NODES, holders=HOLDERS, threshold=THRESHOLD)
    home = root / "flwr-home"
    home.mkdir()
    superlink_port = free_port()
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "ringsum-test"\n\n'
        f'[superlink.ringsum-test]\naddress = "127.0.0.1:{superlink_port}"\ninsecure = true\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env.update(
        {
            "FLWR_HOME": str(home),
            # SuperLink and SuperNodes start `flower-superexec` from PATH.
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            # Everything is installed in this venv; nothing is fetched at run time.
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = root / f"{name}.log"
        logs.append(log)
        handle = open(log, "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args, env=env, cwd=root, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        processes.append(process)
        return process

    deployment = Deployment(setup, root, env, superlink_port, processes, logs)
    try:
        link = start(
            "superlink",
            [
                str(BIN / "flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(superlink_port),
                "--disable-runtime-dependency-installation",
            ],
        )
        wait_for_port(superlink_port, link, logs[-1])
        for node in range(NODES):
            config = [
                f"partition-id={node}",
                f"num-partitions={NODES}",
                f'data-path="{DATA}"',
                # Training settings come from the node, never from the server.
                f"local-epochs={LOCAL_EPOCHS}",
                f"learning-rate={LEARNING_RATE}",
                f'ringsum-federation="{setup.federation_path}"',
                f'ringsum-client="{setup.clients[node]}"',
                f'ringsum-state="{root / f"state-{node}"}"',
                # Evaluation is off by default on a ringsum node; the test opts
                # in, so the signed-model path runs end to end.
                "ringsum-allow-evaluate=true",
            ]
            if node < HOLDERS:
                config.append(f'ringsum-holder="{setup.holders[node]}"')
            start(
                f"supernode-{node}",
                [
                    str(BIN / "flower-supernode"),
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{superlink_port}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(free_port()),
                    "--node-config",
                    " ".join(config),
                ],
            )
        yield deployment
    finally:
        stop(processes)


def test_ringsum_fedavg_on_the_deployment_engine(deployment: Deployment) -> None:
    setup = deployment.setup
    trace = deployment.root / "trace.jsonl"
    app = deployment.root / "app"
    # `flwr run` builds the FAB from a directory; a copy keeps the tree clean.
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("__pycache__", "*.fab"))
    run_config = " ".join(
        [
            f"num-server-rounds={ROUNDS}",
            "fraction-evaluate=0.5",
            "round-timeout=60.0",
            "secure=true",
            f'ringsum-federation="{setup.federation_path}"',
            f'ringsum-coordinator="{setup.coordinator}"',
            f'ringsum-trace="{trace}"',
            "ringsum-trace-payloads=true",
            f'data-path="{DATA}"',
        ]
    )
    started = time.monotonic()
    run = deployment.flwr(
        "run", str(app), "ringsum-test", "--run-config", run_config, "--format", "json"
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{deployment.dump_logs()}"
    run_id = json.loads(run.stdout)["run-id"]

    status = ""
    while time.monotonic() - started < RUN_TIMEOUT:
        listed = deployment.flwr("ls", "ringsum-test", "--run-id", str(run_id), "--format", "json")
        if listed.returncode == 0:
            runs = json.loads(listed.stdout).get("runs", [])
            status = runs[0]["status"] if runs else ""
            if status.startswith("finished"):
                break
        time.sleep(2)
    elapsed = time.monotonic() - started
    logs = deployment.flwr("log", str(run_id), "ringsum-test", "--show", timeout=30)
    context = (
        f"status {status!r} after {elapsed:.0f} s\n{logs.stdout[-6000:]}\n{deployment.dump_logs()}"
    )

    # (c) the run finished, all rounds published.
    assert status == "finished:completed", context
    events = read_trace(trace)
    assert [e for e in events if e["event"] == "finished"] == [
        {"event": "finished", "rounds": ROUNDS}
    ], context
    assert not [e for e in events if e["event"] in {"refused", "round-failed"}], context
    # Each published model was evaluated by half the nodes, with the signed model.
    evaluations = [e for e in events if e["event"] == "reply" and e["stage"] == "evaluate"]
    assert len(evaluations) == ROUNDS * (NODES // 2), context
    assert not [e for e in evaluations if "error" in e], context

    # (a) encrypted FedAvg == plaintext FedAvg of the same updates, within the bound.
    deviations = check_rounds(
        events, setup, NODES, ROUNDS, expected_clients=set(setup.partition_of)
    )
    # (b) the ServerApp process only ever received ciphertext from clients and holders.
    replies = check_ciphertext_only(events, setup, NODES)
    assert replies == ROUNDS * (NODES + HOLDERS) or replies >= ROUNDS * (NODES + THRESHOLD)
    print(
        f"deployment run: {elapsed:.1f} s, {replies} replies checked, "
        f"largest deviation per round {deviations}"
    )
