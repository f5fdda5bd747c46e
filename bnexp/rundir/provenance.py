"""Where and with what a run was made: hardware, library versions, the git commit, the time.

A run's numbers are bit-identical only when its compiled programs are: XLA compiles the
training step for the instruction set of the CPU it runs on (AVX2, AVX-512, AMX), and
TensorFlow splits reductions by its thread count, so two machines that differ in either
(or in the TensorFlow build, which carries its own XLA) agree only within float32
rounding. Recording them in summary.json and sweep.json lets compare say so when runs
from different hardware meet, instead of leaving a difference in the last bits a mystery.

No TensorFlow here: versions are read from the installed packages' metadata.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# The vector extensions XLA's CPU backend picks its kernels by, best first: /proc/cpuinfo
# flag → the level recorded. AMX implies AVX-512 on every CPU that has it.
VECTOR_LEVELS = (("amx_tile", "amx"), ("avx512f", "avx512"), ("avx2", "avx2"), ("avx", "avx"), ("sse4_2", "sse4.2"))


def hardware() -> dict:
    """summary.json's and sweep.json's `hardware`: what decides a run's last bits.

    `threads` is the TensorFlow thread count a run in this process gets: $BNEXP_THREADS
    when set (sweep workers set it), else every core this process may use. `xla` names
    the TensorFlow release whose bundled XLA compiled the steps (XLA has no version of
    its own in a TensorFlow wheel).
    """
    tensorflow = package_version("tensorflow")
    return {
        "cpu_model": cpu_model(),
        "vector_level": vector_level(),
        "threads": threads(),
        "machine": platform.machine(),
        "tensorflow": tensorflow,
        "xla": f"bundled with tensorflow {tensorflow}" if tensorflow else None,
    }


def cpu_model() -> str:
    """The CPU's name as the OS reports it (/proc/cpuinfo's `model name`), else platform's."""
    for line in _cpuinfo_lines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def vector_level() -> str | None:
    """The best vector extension the CPU reports (`amx`, `avx512`, `avx2`, `avx`, `sse4.2`),
    `baseline` for none of them, None where the OS does not list CPU flags."""
    for line in _cpuinfo_lines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            return next((level for flag, level in VECTOR_LEVELS if flag in flags), "baseline")
    return None


def threads() -> int:
    """TensorFlow's thread count here (bnexp.backend applies $BNEXP_THREADS the same way)."""
    configured = os.environ.get("BNEXP_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity outside Linux
        return os.cpu_count() or 1


def _cpuinfo_lines() -> list[str]:
    try:
        with CPUINFO.open(encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20).splitlines()  # the first CPU's block is all we read; cap the rest
    except OSError:
        return []


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    """summary.json's `versions`: the libraries whose releases change a run's numbers."""
    return {
        "python": platform.python_version(),
        "tensorflow": package_version("tensorflow"),
        "keras": package_version("keras"),
        "numpy": package_version("numpy"),
        "bnexp": package_version("bnexp"),
    }


def same_hardware_key(hardware_record: dict | None) -> tuple | None:
    """What two runs must share to be expected bit-identical, or None when not recorded
    (a run of an older bnexp). Thread count and versions matter too, but a different
    CPU is what a reader cannot see from the config: compare names it."""
    if not isinstance(hardware_record, dict) or not hardware_record.get("cpu_model"):
        return None
    return (str(hardware_record.get("cpu_model")), str(hardware_record.get("vector_level")))


def describe(key: tuple) -> str:
    cpu, level = key
    return cpu if level in (None, "None") else f"{cpu} ({level})"


def different_hardware_line(keys: list[tuple]) -> str:
    """The one line compare and claims print when the runs they set side by side come from
    more than one CPU (`keys` from same_hardware_key, each distinct)."""
    return (f"runs from different hardware ({'; '.join(map(describe, keys))}): "
            "they agree within float32 tolerance, not bit for bit")


def git_commit() -> str | None:
    """The checkout's commit (with -dirty for local changes), or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def environment() -> dict:
    """Summary fields that say where and with what the run trained."""
    return {"versions": versions(), "hardware": hardware(), "git_commit": git_commit(), "host": socket.gethostname()}
