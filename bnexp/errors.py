"""Typed errors and exit codes. The CLI turns each error into one line on stderr and its exit code.

Exit codes are the same for every command: 2 for usage, config and not-a-run
errors; 1 for data, weights, divergence and other runtime errors; 130 and 143 when
SIGINT or SIGTERM stopped training (SIGNAL_EXIT, shared by train and sweep).
"""

import signal

SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def signal_exit_code(name: str | None) -> int:
    """The exit code of a command stopped by the signal `name` (130 when it is not known)."""
    return SIGNAL_EXIT.get(name, 130)


class BnexpError(Exception):
    """Base class: an error the user can fix, reported as one line."""

    exit_code = 1


class ConfigError(BnexpError):
    """The config (file, key, value or --set override) is invalid."""

    exit_code = 2


class UsageError(BnexpError):
    """The command line is wrong (bad option combination, missing argument)."""

    exit_code = 2


class RunDirError(BnexpError):
    """A path is not a run directory, or a run directory cannot be used."""

    exit_code = 2


class RunFileError(BnexpError):
    """A file inside a run directory is missing or corrupt (weights, metrics)."""

    exit_code = 1


class DataError(BnexpError):
    """Dataset files are missing, truncated or corrupt."""

    exit_code = 1


class DivergedError(BnexpError):
    """Training produced a NaN or infinite loss, or one above train.divergence_loss."""

    exit_code = 1


class Stopped(KeyboardInterrupt):
    """A second SIGINT or SIGTERM during training: stop at once, without a new checkpoint."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signal = signal.Signals(signum).name
