"""The one guarded way bnexp touches the disk inside run and sweep directories.

Every file a user hands bnexp is untrusted, and so is every file inside a directory it
names. So, here and only here:

- a path read from a file (a sweep's point folders) is checked to stay inside the
  directory the user named, and no folder on the way to it may be a symbolic link;
- a run file is opened without following a link (O_NOFOLLOW), must be a regular file
  (a FIFO or a device is refused before it can block or stream forever) and is read up
  to a cap for its kind;
- an appended file (log.txt, metrics.csv, .lock) is never created or written through a
  link;
- temporary files are created exclusively in the target's own folder (tempfile), never
  through a link, and renamed into place;
- a folder is deleted only when it holds nothing but the files bnexp writes into a run,
  and never through a link.

Each refusal is a RunFileError or RunDirError naming the file and what is wrong with it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from bnexp.errors import RunDirError, RunFileError

MiB = 1 << 20
# The most bytes bnexp reads of one file of each kind: far above what a run of the
# largest config writes, far below what would exhaust memory.
CAPS = {
    "config.yaml": 1 * MiB,
    "summary.json": 16 * MiB,  # epoch_seconds: up to 100,000 epochs
    "eval.json": 16 * MiB,
    "sweep.json": 64 * MiB,
    "metrics.csv": 512 * MiB,
    "diag": 1024 * MiB,
}
# What bnexp itself writes into a run directory: all that `remove_run` may delete.
RUN_FILES = re.compile(r"^(config\.yaml|metrics\.csv|summary\.json|log\.txt|checkpoint\.npz|checkpoint_tail\.npz|eval\.json|"
                       r"diag_[a-z]+\.csv|\.lock|\.[^/]+\.tmp)$")
RUN_FOLDERS = ("tb",)


def cap_for(path: Path) -> int:
    name = Path(path).name
    return CAPS["diag"] if name.startswith("diag_") else CAPS.get(name, 16 * MiB)


def _refusal(path: Path, error: OSError) -> Exception:
    if error.errno == errno.ELOOP:
        return RunFileError(f"{path} is a symbolic link: bnexp follows no link inside a run or sweep directory")
    if isinstance(error, FileNotFoundError):
        return RunFileError(f"{path} is missing")
    return RunFileError(f"cannot read {path}: {error.strerror or error}")


def open_regular(path: Path, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """A file descriptor of `path`, a regular file opened without following a link.

    O_NONBLOCK keeps a FIFO from blocking the open; it is cleared once the file is known
    to be regular, where it changes nothing anyway.
    """
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        raise _refusal(path, e) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RunFileError(f"{path} is not a regular file")
    return fd


def read_bytes(path: Path, cap: int | None = None) -> bytes:
    """The bytes of the regular file `path` (no link), at most `cap` (its kind's by default)."""
    path = Path(path)
    cap = cap_for(path) if cap is None else cap
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise RunFileError(f"{path} is corrupt: larger than the {cap:,} bytes a {path.name} may have")
    return data


def read_text(path: Path, cap: int | None = None) -> str:
    """read_bytes as UTF-8 text; RunFileError naming the file when it is not."""
    data = read_bytes(path, cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is corrupt: not UTF-8 text") from None


def open_append(path: Path):
    """`path` opened to append text, created if missing, never through a link."""
    fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", encoding="utf-8")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` via a temporary file and a rename, so readers never see half a file.

    The temporary file is created exclusively (tempfile: O_EXCL, O_NOFOLLOW) in `path`'s
    folder, and the rename replaces whatever `path` is, a link included, without writing
    through it. A failed write (a full disk) leaves `path` as it was and no temporary file.
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; run files are for every reader
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_relative(name: str, what: str, where: Path) -> str:
    """`name`, read from `where`, if it is a relative path of plain names (no '..', no
    absolute path, no control characters); RunFileError naming the file otherwise."""
    parts = str(name).split("/") if isinstance(name, str) else []
    if not parts or any(p in ("", ".", "..") or re.search(r"[\x00-\x1f\x7f\\]", p) for p in parts):
        raise RunFileError(f"{where} is corrupt: {what} {str(name)[:80]!r} is not a relative path of plain names")
    return name


def inside(root: Path, relative: str) -> Path:
    """root/relative, refusing a relative path that leaves `root` and any existing folder
    or file on the way that is a symbolic link (RunDirError naming it)."""
    root = Path(root)
    path = root
    for part in Path(relative).parts:
        if part in ("..", "/") or Path(part).is_absolute():
            raise RunDirError(f"{root / relative} leaves {root}")
        path = path / part
        if path.is_symlink():
            raise RunDirError(f"{path} is a symbolic link: bnexp follows no link inside a sweep directory")
    return path


def check_run_entries(folder: Path) -> None:
    """RunDirError naming the first entry of the run directory `folder` that bnexp could
    not safely write: a symbolic link (a linked log.txt would be appended to wherever it
    points), a run file's name on something other than a regular file (a FIFO, a folder),
    or tb/ that is no folder."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(folder) / entry.name
        if entry.is_symlink():
            raise RunDirError(f"{path} is a symbolic link: bnexp follows no link inside a run directory")
        if entry.name in RUN_FOLDERS and not entry.is_dir(follow_symlinks=False):
            raise RunDirError(f"{path} is not a directory")
        if RUN_FILES.match(entry.name) and not entry.is_file(follow_symlinks=False):
            raise RunDirError(f"{path} is not a regular file")


def check_removable(root: Path, relative: str) -> list[os.DirEntry]:
    """The entries of the run folder root/relative (none if it does not exist), if
    remove_run may delete it: no link on the way or in it, nothing but what bnexp writes
    into a run; RunDirError naming what is not otherwise."""
    path = inside(root, relative)
    if not os.path.lexists(path):
        return []
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory: bnexp deletes only its own run folders")
    entries = list(os.scandir(path))
    foreign = [e.name for e in entries
               if not ((e.name in RUN_FOLDERS and e.is_dir(follow_symlinks=False))
                       or (RUN_FILES.match(e.name) and e.is_file(follow_symlinks=False)))]
    if foreign:
        raise RunDirError(f"{path} holds files bnexp did not write ({', '.join(sorted(foreign)[:3])}): "
                          "move them away to start this point again")
    return entries


def remove_run(root: Path, relative: str) -> None:
    """Delete the run folder root/relative, only as check_removable allows; with nothing
    deleted when it refuses."""
    path = inside(root, relative)
    entries = check_removable(root, relative)
    if not os.path.lexists(path):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)  # fd-based on Linux: never follows a link inside
        else:
            os.unlink(entry.path)
    os.rmdir(path)
