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
    """Fail in one line, within `deadline` seconds, when nothing listens at `address`.

    `ray.init` given a dead address retries forever, logging a timeout every 30 s; a TCP
    connection (name lookup included, in a thread so that a slow resolver cannot hold us
    past the deadline) answers at once for a refused port or an unknown host. The sweep
    calls this before it writes anything. "auto" (Ray finds the cluster) is not probed.
    """
    if address == "auto":
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:6379")
    outcome: list[OSError | None] = []

    def probe():
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=deadline).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(e)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(deadline)
    if outcome and outcome[0] is None:
        return
    why = f"no answer within {deadline:g} s" if not outcome else (outcome[0].strerror or str(outcome[0]))
    raise BnexpError(f"no Ray cluster answers at {address} ({why}): start one with `ray start --head --port=PORT` "
                     "and pass --address HOST:PORT")


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
