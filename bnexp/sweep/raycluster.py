"""Points on Ray: long-lived actors (WarmActor), each holding one warm worker
(bnexp.sweep.local.Worker), on an existing cluster or on a Ray instance started for the
sweep (RayExecutor); and connecting to an existing cluster, token authentication included.

Ray 2.52 added token authentication; from 2.59 a local cluster turns it on by default:
`ray.init()` without an address writes a token to ~/.ray/auth_token, and `ray start
--head` runs in token mode whenever this machine has a token (2.61 extends that to every
cluster). A client, though, connects in token mode only when RAY_AUTH_MODE=token is set or
when `ray.init` finds the cluster itself: given an explicit address, as `bnexp sweep
--address` does, it stays in the default mode "disabled", sends no token, and the head
refuses it, which `ray.init` reports as a bare ConnectionError after about 20 s of retries.

So `connect_ray` does what `ray.init` does for a cluster it finds itself: when
RAY_AUTH_MODE is unset and a token is at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
~/.ray/auth_token, in Ray's own order), it connects in token mode. A head without
authentication accepts a token-mode client as well, so nothing is lost by it. When the
connection still fails, the error says in one line whether the token was refused or
nobody answered, and what to do.
See https://docs.ray.io/en/latest/ray-security/token-auth.html.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnexp.training.programs import program_key
from bnexp.errors import BnexpError, UsageError
from bnexp.sweep.local import Worker, available_cores, default_threads, take_next
from bnexp.sweep.spec import Point

AUTH_MODE = "RAY_AUTH_MODE"
# Words of Ray's own messages (C++ gRPC status and ray.exceptions.AuthenticationError)
# when the head refuses a client's token or the client has none.
REFUSED = ("Unauthenticated", "InvalidAuthToken", "AuthenticationError")
CONNECT_DEADLINE = 30.0  # seconds: the longest `--address` may take to answer


def connect_ray(address: str, **options) -> None:
    """`ray.init(address=...)`, in token mode when this machine has a token; one-line errors."""
    import ray

    use_local_token()
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ray.exceptions.RayError) as e:
        raise BnexpError(connection_advice(address, e)) from None


def check_reachable(address: str, deadline: float = CONNECT_DEADLINE) -> None:
    """Fail in one line, within `deadline` seconds, unless a gRPC server (as Ray's GCS is)
    answers at `address`.

    `ray.init` given an address where no GCS answers retries forever, logging a timeout
    every 30 s, and that whether nothing listens there or something else does. So this
    opens a TCP connection (the name lookup included) and sends HTTP/2's client preface,
    which a gRPC server answers at once with a SETTINGS frame: a refused port, an unknown
    host, a silent one or a server of another protocol is told apart in one line before
    the sweep writes anything. The probe runs in a daemon thread, so that a resolver that
    never answers cannot hold the sweep past the deadline. "auto" (Ray finds the cluster)
    and TLS clusters (RAY_USE_TLS) are not probed past the TCP connection.
    """
    if address == "auto":
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:6379")
    outcome: list[str | None] = []
    tls = os.environ.get("RAY_USE_TLS", "0").lower() not in ("0", "false", "")
    thread = threading.Thread(target=lambda: outcome.append(_probe(host.strip("[]"), int(port), deadline, tls)),
                              daemon=True)
    thread.start()
    thread.join(deadline)
    why = f"no answer within {deadline:g} s" if not outcome else outcome[0]
    if why:
        raise BnexpError(f"no Ray cluster answers at {address} ({why}): start one with `ray start --head --port=PORT` "
                         "and pass --address HOST:PORT")


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # and an empty SETTINGS frame
SETTINGS = 4  # the frame type a gRPC server sends first


def _probe(host: str, port: int, timeout: float, tls: bool) -> str | None:
    """None when a gRPC server answers at host:port, else why not (a few words)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            if tls:
                return None
            connection.sendall(HTTP2_PREFACE)
            header = b""
            while len(header) < 9:
                chunk = connection.recv(9 - len(header))
                if not chunk:
                    break
                header += chunk
    except OSError as e:
        return e.strerror or str(e) or type(e).__name__
    if len(header) == 9 and header[3] == SETTINGS:
        return None
    return "something answers there, but not as Ray's GCS (gRPC) does"


def use_local_token() -> None:
    """Turn on token mode for this process if RAY_AUTH_MODE is unset and a token is at hand."""
    if AUTH_MODE in os.environ:  # the user chose: respect it
        return
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # a Ray before 2.52 has no token authentication
        return
    if AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        os.environ[AUTH_MODE] = "token"
        # Ray reads its settings once, at import; ray.init refreshes them the same way
        # when it turns token mode on for a cluster it found itself.
        Config.initialize("")


def connection_advice(address: str, error: BaseException) -> str:
    """One line: why the connection to `address` failed and what fixes it."""
    mode = os.environ.get(AUTH_MODE, "disabled")
    if refused(error):
        return (f"Ray at {address} wants an authentication token that this client lacks or has wrong (RAY_AUTH_MODE={mode}): "
                f"run `ray get-auth-token` on the head node and set RAY_AUTH_TOKEN to its output here "
                f"(or copy it to ~/.ray/auth_token); if the head runs without authentication, set RAY_AUTH_MODE=disabled")
    return (f"no Ray cluster answers at {address}: start one with `ray start --head --port=PORT` and pass "
            f"--address HOST:PORT (if it uses token authentication, RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
            f"from `ray get-auth-token` on the head)")


def refused(error: BaseException) -> bool:
    """Whether `error` or any exception behind it is Ray's authentication failure."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(word in f"{type(error).__name__}: {error}" for word in REFUSED):
            return True
        error = error.__cause__ or error.__context__
    return False


class WarmActor:
    """A Ray actor holding one warm worker. The worker is a process of its own, so a point
    that crashes it leaves the actor alive to start another, and `interrupt` (the actor
    runs two calls at once) reaches it while `train` waits for its reply."""

    def __init__(self, threads: int):
        self.threads = threads
        self.worker = Worker(threads)

    def train(self, config_yaml: str | None, run_dir: str, data_dir: str | None) -> tuple[int, str]:
        if not self.worker.alive:  # the last point crashed it
            self.worker.wait()
            self.worker = Worker(self.threads)
        self.worker.send(config_yaml, run_dir, data_dir)
        while not self.worker.answered(0.5):
            pass
        return self.worker.reply()

    def interrupt(self, signum: int) -> None:
        self.worker.interrupt(signum)


@dataclass(eq=False)
class Actor:
    """A WarmActor's handle and the program keys of the points it has trained."""

    handle: Any
    keys: set[str] = field(default_factory=set)


class RayExecutor:
    """Points on long-lived Ray actors (WarmActor), on the cluster at `address` or on a Ray
    instance started for the sweep.

    Each actor asks for the CPUs its TensorFlow threads use, so Ray packs as many on a
    machine as its cores allow. Run directories are written by the workers: on a real
    cluster the sweep directory must be on a file system every node shares.
    """

    def __init__(self, workers: int, address: str | None, data_dir: str | None):
        try:
            import ray
        except ImportError:
            raise BnexpError("--executor ray needs Ray: pip install -e .[ray]") from None
        self.ray, self.address, self.data_dir = ray, address, data_dir
        if address:  # before anything is written: a dead address fails here, in one line
            check_reachable(address)
        self.threads = default_threads(workers)
        self.idle: list[Actor] = []  # actors with no point
        self.running: dict[Any, tuple[Point, Actor]] = {}  # call reference -> (point, actor)

    def open(self, threads: int) -> None:
        import logging

        self.threads = threads
        options = {"logging_level": logging.ERROR}
        if self.address:
            connect_ray(self.address, **options)
        else:  # "local": a new instance of its own, never a cluster that happens to run here (or RAY_ADDRESS)
            self.ray.init(address="local", num_cpus=available_cores(), include_dashboard=False, log_to_driver=False,
                          **options)
        # No restarts: a restarted actor would retry nothing, and a lost one is replaced at the next point.
        self.actor = self.ray.remote(num_cpus=threads, max_concurrency=2, max_restarts=0)(WarmActor)
        self.slots = max(1, int(self.ray.cluster_resources().get("CPU", 1) // threads))

    def take(self, todo: deque) -> Point:
        """The next point for the first idle actor (take_next), which `start` then gives it."""
        actors = self.idle + [actor for _, actor in self.running.values()]
        return take_next(todo, self.idle[0].keys if self.idle else None, set().union(*(a.keys for a in actors)))

    def start(self, point: Point, config_yaml: str | None, run: Path) -> None:
        actor = self.idle.pop(0) if self.idle else Actor(self.actor.remote(self.threads))
        actor.keys.add(program_key(point.config))
        self.running[actor.handle.train.remote(config_yaml, str(run.resolve()), self.data_dir)] = (point, actor)

    def finished(self, timeout: float) -> list[tuple[Point, int, str]]:
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        results = []
        for ref in ready:
            point, actor = self.running.pop(ref)
            try:
                code, error = self.ray.get(ref)
                self.idle.append(actor)
            except Exception as e:  # the actor itself died (worker lost, node down)
                code, error = -1, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            results.append((point, code, error))
        return results

    def interrupt(self, signum: int) -> None:
        for _, actor in self.running.values():
            actor.handle.interrupt.remote(signum)

    def close(self) -> None:
        if not self.ray.is_initialized():
            return
        if self.running:  # after an error of the sweep's own: let the points checkpoint
            self.interrupt(signal.SIGINT)
            self.ray.wait(list(self.running), num_returns=len(self.running), timeout=120)
        self.ray.shutdown()  # the actors go, and their workers, reading the end of their input, follow
