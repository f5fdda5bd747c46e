"""Connecting a sweep to an existing Ray cluster, token authentication included.

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
import socket
import threading

from bnexp.errors import BnexpError, UsageError

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
