"""Typed errors. The CLI turns each into one line on stderr and its exit code.

Exit codes are the same for every command: 2 for usage, config and not-a-run
errors; 1 for data, weights, divergence and other runtime errors.
"""


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
    """Training produced a NaN or infinite loss."""

    exit_code = 1
