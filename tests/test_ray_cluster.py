"""bnexp sweep --executor ray --address against a Ray head started as Ray now ships it.

From Ray 2.59, a head runs with token authentication whenever its machine has a token,
which a local `ray.init()` or `ray get-auth-token --generate` writes to ~/.ray/auth_token.
The test does that in a HOME of its own, starts a head with `ray start --head` (no
RAY_AUTH_* settings), and connects the sweep to it by address, as a user would.

Hermetic: everything listens on loopback only (--node-ip-address=127.0.0.1, with
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 so that Ray does not swap 127.0.0.1 for the machine's
address, which it otherwise does to let other nodes join), on free ports, with its own
--temp-dir. The head runs with --block in a session of its own, so the teardown stops
exactly its process group: never `ray stop`, which would stop every Ray of this user,
other tests' included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import HANG_GUARD_SECONDS
import yaml

from bnexp.sweep.raycluster import connection_advice

pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e .[ray]")

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"
TINY = {
    "name": "tiny",
    "data": {"dataset": "mnist-sample"},
    "model": {"hidden": [16]},
    "train": {"optimizer": "sgd", "learning_rate": 0.05, "batch_size": 50, "steps": 20, "eval_every": 20},
}
HEAD_START_SECONDS = HANG_GUARD_SECONDS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path) -> dict:
    """This process's environment with its own HOME and no Ray settings but the loopback switch."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), BNEXP_OFFLINE="1", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


@pytest.fixture(scope="module")
def head():
    """A default `ray start --head` on this machine with a token: yields (address, env, head log)."""
    if not RAY.exists():
        pytest.skip(f"no `ray` command next to {sys.executable}")
    # A short path: Ray's unix sockets live under --temp-dir and a socket path has ~107 bytes.
    root = Path(tempfile.mkdtemp(prefix="bnexp-ray-"))
    env = clean_env(root / "home")
    subprocess.run([str(RAY), "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    port, log_path = free_port(), root / "head.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--node-ip-address=127.0.0.1", f"--ray-client-server-port={free_port()}",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={root / 'ray'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + HEAD_START_SECONDS
        while "Ray runtime started" not in log_path.read_text():
            if process.poll() is not None or time.time() > deadline:
                pytest.fail(f"ray start --head did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env, log_path.read_text()
    finally:
        stop_group(process)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the head's process group, then SIGKILL what is left (Ray drains for 30 s otherwise)."""
    for signum, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass


def run_sweep(folder: Path, address: str, env: dict) -> tuple[subprocess.CompletedProcess, Path]:
    spec = folder / "study.yaml"
    spec.write_text(yaml.safe_dump({"name": "tiny", "base": TINY, "seeds": [0, 1]}, sort_keys=False))
    out = folder / "out"
    process = subprocess.run(
        [sys.executable, "-m", "bnexp", "sweep", str(spec), "--out", str(out), "--executor", "ray", "--address", address],
        cwd=folder, env=env, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS)
    return process, out


@pytest.mark.slow
def test_sweep_runs_on_a_default_head_with_token_authentication(head, tmp_path):
    address, env, head_log = head
    assert "Token authentication is enabled" in head_log  # the head really demands a token
    process, out = run_sweep(tmp_path, address, env)
    assert process.returncode == 0, process.stderr[-3000:]
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert [(p["run_dir"], p["status"]) for p in points] == [("seed=0", "completed"), ("seed=1", "completed")]
    for seed in (0, 1):
        summary = json.loads((out / f"seed={seed}" / "summary.json").read_text())
        assert (summary["status"], summary["seed"], summary["steps"]) == ("completed", seed, 20)


@pytest.mark.slow
def test_a_wrong_token_fails_in_one_line_naming_the_fix(head, tmp_path):
    address, env, _ = head
    # Ray retries a refused connection for 20 s by default; one try says as much.
    env = env | {"RAY_AUTH_TOKEN": "wrong", "RAY_gcs_server_port_wait_time_s": "1"}
    process, out = run_sweep(tmp_path, address, env)
    assert process.returncode == 1
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == process.stderr.strip().splitlines()[-1], process.stderr[-3000:]
    for needed in (address, "RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "`ray get-auth-token`"):
        assert needed in errors[0]
    assert not (out / "seed=0").exists()


def test_advice_tells_a_refused_token_from_an_absent_cluster():
    """The two causes, as ray.init raises them: a ConnectionError over the GCS client's error."""

    def chained(inner: str) -> ConnectionError:
        try:
            try:
                raise RuntimeError(inner)
            except RuntimeError as e:
                raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from e
        except ConnectionError as e:
            return e

    refused = connection_advice("h:1", chained("Unauthenticated: RPC error: InvalidAuthToken: Authentication token is missing"))
    absent = connection_advice("h:1", chained("TimedOut: Timed out while waiting for GCS to become available."))
    assert refused.startswith("Ray at h:1 wants an authentication token") and "RAY_AUTH_TOKEN" in refused
    assert absent.startswith("no Ray cluster answers at h:1")
