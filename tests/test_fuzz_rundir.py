"""Issue 25's fuzz test: every file of a run and a sweep directory, damaged every way a
disk, a crash or a hostile hand can damage it (random bytes, truncations, values of the
wrong JSON or YAML type, links, FIFOs, folders), read by the commands that read it.

Each damaged directory must give exit 0 (the damage did not matter) or one line naming
the damaged file, with exit 1 or 2: never a traceback, never "unexpected" (a bug of
ours), never a hang. The cases are drawn from a fixed seed, so a failure reproduces.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bnexp.cli import app

RELEASE = Path(__file__).resolve().parent / "fixtures" / "release-0.1.0"
RANDOM = random.Random(25)
WRONG = [None, "x", "\x1b[2J", -1, 0, 1.5, 10**30, -1e308, True, [], [1, "a"], {}, {"a": {"b": []}}]


def random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000)))


def damaged_texts(original: bytes, rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """Random bytes, truncations and flipped bytes of `original`."""
    cases = [("empty", b""), ("random bytes", random_bytes(rng)), ("random bytes", random_bytes(rng))]
    cases += [(f"cut at {k}", original[:k]) for k in sorted(rng.sample(range(1, len(original)), min(n, len(original) - 1)))]
    for _ in range(n):
        flipped = bytearray(original)
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        cases.append(("flipped byte", bytes(flipped)))
    return cases


def wrong_types(doc, rng: random.Random, n: int) -> list[tuple[str, object]]:
    """`doc` with one value, at any depth, replaced by one of another type: n of them."""
    paths = []

    def walk(node, path):
        paths.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            walk(value, path + [key])

    walk(doc, [])
    cases = []
    for _ in range(n):
        path, value = rng.choice(paths), rng.choice(WRONG)
        copy = json.loads(json.dumps(doc))
        if not path:
            copy = value
        else:
            node = copy
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        cases.append((f"{'.'.join(map(str, path)) or 'the document'} = {value!r}", copy))
    return cases


def file_cases(name: str, rng: random.Random, n: int = 12) -> list[tuple[str, object]]:
    """(what, damage) for one run file: bytes to write, or a callable that damages the path."""
    original = (RELEASE / "completed" / name).read_bytes()
    cases: list[tuple[str, object]] = list(damaged_texts(original, rng, n))
    if name.endswith(".json"):
        cases += [(what, json.dumps(doc).encode()) for what, doc in wrong_types(json.loads(original), rng, 3 * n)]
        cases += [("deep JSON", b"[" * 50_000 + b"]" * 50_000)]
    if name.endswith(".yaml"):
        cases += [(what, yaml.safe_dump(doc).encode()) for what, doc in wrong_types(yaml.safe_load(original), rng, 3 * n)]
    if name.endswith(".csv"):
        lines = original.decode().splitlines(keepends=True)
        for _ in range(n):
            i = rng.randrange(len(lines))
            cells = lines[i].rstrip("\n").split(",")
            cells[rng.randrange(len(cells))] = rng.choice(["x", "nan", "-1", "1e999", "", '"', "1,2"])
            cases.append((f"line {i + 1} cell", "".join(lines[:i] + [",".join(cells) + "\n"] + lines[i + 1:]).encode()))
    cases += [
        ("a link to /dev/zero", lambda p: p.symlink_to("/dev/zero")),
        ("a link outside", lambda p: p.symlink_to(RELEASE / "completed" / name)),
        ("a link to itself", lambda p: p.symlink_to(p.name)),
        ("a FIFO", lambda p: os.mkfifo(p)),
        ("a folder", lambda p: p.mkdir()),
        ("missing", lambda p: None),
    ]
    return cases


def damage(path: Path, how) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if callable(how):
        how(path)
    else:
        path.write_bytes(how)


def check(result, name: str, what: str) -> None:
    text = result.output.strip()
    where = f"{name} {what}: exit {result.exit_code}: {text[-400:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), where
    assert "Traceback" not in text and "unexpected" not in text, where
    if result.exit_code:
        assert result.exit_code in (1, 2), where
        assert len(text.splitlines()) == 1 and text.startswith("error:"), where
        assert name in text or "checkpoint" in text or name == "config.yaml" and "config" in text, where


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


RUN_FILES = ["summary.json", "config.yaml", "metrics.csv", "diag_bn.csv", "diag_activations.csv", "diag_gradients.csv"]


@pytest.mark.parametrize("name", RUN_FILES)
def test_damaged_run_files_give_one_line_naming_the_file(name, tmp_path):
    rng = random.Random(f"{RANDOM.random()}-{name}")
    base = Path(shutil.copytree(RELEASE / "completed", tmp_path / "a"))
    for i, (what, how) in enumerate(file_cases(name, rng)):
        run = Path(shutil.copytree(RELEASE / "completed", tmp_path / f"b{i}"))
        damage(run / name, how)
        check(cli("compare", base, run, "--format", "json"), name, what)
        check(cli("report", base, run, "-o", tmp_path / f"r{i}.html"), name, what)
        shutil.rmtree(run)


def test_a_damaged_sweep_json_gives_one_line_naming_it(tmp_path):
    rng = random.Random("sweep.json")
    out = tmp_path / "sweep"
    for point in ("kind=batch/seed=0", "kind=none/seed=0"):
        shutil.copytree(RELEASE / "completed", out / point)
    doc = {"name": "fuzz", "seeds": [0], "threads": 1, "grid": {"model.norm.kind": ["batch", "none"]},
           "expect": [{"name": "bn", "claim": "BN ends higher", "source": "me", "metric": "final_accuracy",
                       "direction": "higher", "better": {"model.norm.kind": "batch"}, "than": {"model.norm.kind": "none"}}],
           "points": [{"run_dir": "kind=batch/seed=0", "overrides": {"model.norm.kind": "batch", "seed": 0}},
                      {"run_dir": "kind=none/seed=0", "overrides": {"model.norm.kind": "none", "seed": 0}}]}
    original = json.dumps(doc).encode()
    cases = damaged_texts(original, rng, 15) + [(w, json.dumps(d).encode()) for w, d in wrong_types(doc, rng, 60)]
    cases += [("a link to /dev/zero", lambda p: p.symlink_to("/dev/zero")), ("a FIFO", lambda p: os.mkfifo(p)),
              ("a folder", lambda p: p.mkdir())]
    for what, how in cases:
        damage(out / "sweep.json", how)
        check(cli("compare", out, "--format", "json"), "sweep.json", what)
        check(cli("claims-report", out, "--out", tmp_path / "claims.md"), "sweep.json", what)


def test_damaged_checkpoints_give_one_line_naming_the_file(tmp_path):
    """The checkpoint through `bnexp eval`: damaged archives, states of the wrong type, links."""
    rng = random.Random("checkpoint.npz")
    original = (RELEASE / "completed" / "checkpoint.npz").read_bytes()
    with np.load(RELEASE / "completed" / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files}
    state = json.loads(arrays["state"].tobytes())

    def with_state(doc) -> bytes:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **(arrays | {"state": np.frombuffer(json.dumps(doc).encode(), np.uint8)}))
        return buffer.getvalue()

    cases = damaged_texts(original, rng, 4) + [(w, with_state(d)) for w, d in wrong_types(state, rng, 4)]
    cases += [("a link to /dev/zero", lambda p: p.symlink_to("/dev/zero")), ("a FIFO", lambda p: os.mkfifo(p))]
    run = Path(shutil.copytree(RELEASE / "completed", tmp_path / "run"))
    for what, how in cases:
        damage(run / "checkpoint.npz", how)
        check(cli("eval", run, "--json"), "checkpoint.npz", what)


@pytest.mark.parametrize("name", ["metrics.csv", "diag_bn.csv", "log.txt", ".lock", "summary.json", "tb"])
def test_a_resume_of_a_damaged_run_refuses_it_before_changing_anything(name, tmp_path):
    """`train --resume` of a run with one file damaged (random bytes where bytes are
    read, a FIFO, a folder or a link): one line naming it, and the run left as it was."""
    rng = random.Random(f"resume-{name}")
    cases = [("a FIFO", lambda p: os.mkfifo(p)), ("a link", lambda p: p.symlink_to("/dev/zero"))]
    cases += [("a folder", lambda p: p.mkdir())] if name != "tb" else [("a file", b"x")]
    if name.endswith((".csv", ".json")):
        cases.append(("random bytes", random_bytes(rng)))
    for what, how in cases:
        run = Path(shutil.copytree(RELEASE / "interrupted", tmp_path / "run"))
        damage(run / name, how)
        before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and not p.is_symlink() and p.name != ".lock"}
        result = cli("train", "--resume", run, "--quiet")
        check(result, name, what)
        assert result.exit_code in (1, 2), f"{name} {what}: {result.output}"
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and not p.is_symlink() and p.name != ".lock"} == before
        shutil.rmtree(run)
