"""Issue 25: nothing bnexp reads can make it write outside its directories, hang, or run
out of memory. One test (or a few) per numbered reproduction of the issue, each asserting
the safe outcome: a one-line error naming the file, the right exit code, nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import HANG_GUARD_SECONDS
from typer.testing import CliRunner

from bnexp import rundir, sweep as sweep_module
from bnexp.sweep import run as sweep_run
from bnexp.cli import app
from bnexp.errors import RunDirError, RunFileError
from bnexp.present import markdown_text

RELEASE = Path(__file__).resolve().parent / "fixtures" / "release-0.1.0"
REPO = Path(__file__).resolve().parents[1]


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def one_line_error(result, *words) -> str:
    """The error line of a failed command: one line, no traceback, no 'unexpected', naming `words`."""
    text = result.output.strip()
    assert "Traceback" not in text and "unexpected" not in text, text
    assert len(text.splitlines()) == 1, text
    for word in words:
        assert word in text, text
    return text


def copy_run(name: str, to: Path) -> Path:
    return Path(shutil.copytree(RELEASE / name, to))


def tree(path: Path) -> dict[str, bytes]:
    """Every regular file under `path` and its bytes, but a run's (empty) lock file: what
    'nothing lost' compares."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != ".lock"}


# --- 1. a sweep rerun deletes only its own run folders ------------------------------------

SWEEP = """\
name: linked
base: {name: p, data: {dataset: mnist-sample}, model: {hidden: [8]}, train: {steps: 10, eval_every: 5}}
grid: {model.norm.kind: [batch, none]}
"""


@pytest.fixture
def finished_sweep(tmp_path) -> tuple[Path, Path]:
    """A sweep file and its sweep directory with sweep.json (as a run of it leaves), no training."""
    spec = tmp_path / "linked.yaml"
    spec.write_text(SWEEP)
    out = tmp_path / "out"
    out.mkdir()
    sweep_module.write_manifest(sweep_module.load_sweep(spec, out))
    return spec, out


def thesis(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    (folder / "seed=0").mkdir(parents=True)
    (folder / "seed=0" / "thesis.tex").write_text("three years of work")
    return folder


def test_a_rerun_refuses_a_point_folder_that_is_a_link_and_deletes_nothing(finished_sweep, tmp_path):
    spec, out = finished_sweep
    elsewhere = thesis(tmp_path)
    (out / "kind=batch").symlink_to(elsewhere, target_is_directory=True)
    result = cli("sweep", spec, "--out", out, "--quiet")
    assert result.exit_code == 2
    one_line_error(result, "kind=batch", "symbolic link")
    assert (elsewhere / "seed=0" / "thesis.tex").read_text() == "three years of work"
    assert sorted(p.name for p in (elsewhere / "seed=0").iterdir()) == ["thesis.tex"]


def test_a_rerun_writes_no_lock_through_a_linked_seed_folder(finished_sweep, tmp_path):
    spec, out = finished_sweep
    elsewhere = thesis(tmp_path)
    (out / "kind=batch").mkdir()
    (out / "kind=batch" / "seed=0").symlink_to(elsewhere / "seed=0", target_is_directory=True)
    result = cli("sweep", spec, "--out", out, "--quiet")
    assert result.exit_code == 2
    one_line_error(result, "seed=0", "symbolic link")
    assert sorted(p.name for p in (elsewhere / "seed=0").iterdir()) == ["thesis.tex"]


def test_a_point_folder_is_deleted_only_when_it_holds_nothing_but_a_runs_files(tmp_path):
    foreign = tmp_path / "kind=batch" / "seed=0"
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("mine")
    (foreign / "log.txt").write_text("a log")
    with pytest.raises(RunDirError, match="thesis.tex"):
        sweep_run.prepare(tmp_path, "kind=batch/seed=0")
    assert tree(foreign) == {"thesis.tex": b"mine", "log.txt": b"a log"}

    ours = tmp_path / "kind=none" / "seed=0"
    (ours / "tb").mkdir(parents=True)
    for name in ("config.yaml", "summary.json", "metrics.csv", "log.txt", "tb/events.out"):
        (ours / name).write_text("x")
    assert sweep_run.prepare(tmp_path, "kind=none/seed=0") is False
    assert not ours.exists() and (tmp_path / "kind=none").is_dir()


def test_a_run_dir_in_sweep_json_that_leaves_the_sweep_is_refused(finished_sweep):
    spec, out = finished_sweep
    manifest = json.loads((out / "sweep.json").read_text())
    manifest["points"][0]["run_dir"] = "../../victim"
    (out / "sweep.json").write_text(json.dumps(manifest))
    result = cli("claims-report", out, "--out", out.parent / "claims.md")
    assert result.exit_code == 1
    one_line_error(result, "sweep.json is corrupt", "run_dir")


# --- 2. claims-report: names from sweep.json never become paths unchecked ------------------


@pytest.mark.parametrize("name", ["../../../../tmp/x/pwn", "/tmp/x/pwn"])
def test_claims_report_refuses_a_sweep_name_that_is_a_path(finished_sweep, tmp_path, name):
    spec, out = finished_sweep
    manifest = json.loads((out / "sweep.json").read_text())
    manifest["name"] = name
    (out / "sweep.json").write_text(json.dumps(manifest))
    before = tree(tmp_path)
    result = cli("claims-report", out, "--out", tmp_path / "docs" / "claims.md")
    assert result.exit_code == 1
    one_line_error(result, "sweep.json is corrupt", "name")
    assert tree(tmp_path) == before and not (tmp_path / "docs").exists()


# --- 3. report -o: its temporary file is never a planted link -------------------------------


def test_report_writes_through_no_link_planted_for_its_temporary_file(tmp_path):
    from bnexp.report import write_report
    from bnexp.report_data import Header, ReportData

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "page.html"
    for pid in range(os.getpid() - 50, os.getpid() + 50):  # the old name's every guess
        (tmp_path / f".page.html.{pid}.tmp").symlink_to(victim)
    write_report(ReportData(header=Header(inputs=["x"])), out)
    assert victim.read_text() == "precious"
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_a_whole_file_write_replaces_a_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "summary.json").symlink_to(victim)
    rundir.write_atomic(tmp_path / "summary.json", "{}")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "summary.json").is_symlink() and (tmp_path / "summary.json").read_text() == "{}"


# --- 4. YAML alias bombs are refused before they are built ----------------------------------


def alias_bomb(levels: int = 9) -> str:
    """Nine levels of ×10 aliases: 10⁹ values from about 500 bytes."""
    anchors = ["&l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    anchors += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "x:\n" + "".join(f"  - {a}\n" for a in anchors), "[" + ", ".join([f"*l{levels - 1}"] * 10) + "]"


def test_an_alias_bomb_under_seed_is_refused_at_once(tmp_path):
    anchors, bomb = alias_bomb()
    config = tmp_path / "bomb.yaml"
    config.write_text(f"name: bomb\n{anchors}seed: {bomb}\n")
    assert len(config.read_bytes()) < 1000
    result = cli("train", config)
    assert result.exit_code == 2
    one_line_error(result, "bomb.yaml", "100,000 values")
    assert not (tmp_path / "runs").exists()


def test_an_alias_bomb_in_a_sweeps_set_is_refused(tmp_path):
    anchors, bomb = alias_bomb()
    spec = tmp_path / "bomb.yaml"
    spec.write_text(f"name: bomb\n{anchors}base: {{name: p}}\nset: {{model.hidden: {bomb}}}\n".replace("x:\n", "expect: []\nx:\n"))
    result = cli("sweep", spec, "--dry-run")
    assert result.exit_code == 2
    one_line_error(result, "bomb.yaml", "100,000 values")


def test_an_alias_bomb_in_a_runs_config_is_a_corrupt_file_for_compare(tmp_path):
    a, b = copy_run("completed", tmp_path / "a"), copy_run("completed", tmp_path / "b")
    anchors, bomb = alias_bomb()
    (b / "config.yaml").write_text(anchors + (b / "config.yaml").read_text().replace("seed: 0", f"seed: {bomb}"))
    result = cli("compare", a, b)
    assert result.exit_code == 1
    one_line_error(result, str(b / "config.yaml"), "100,000 values")


def test_a_self_referring_alias_is_refused(tmp_path):
    config = tmp_path / "loop.yaml"
    config.write_text("name: loop\nmodel: &m {hidden: [8], norm: *m}\n")
    result = cli("train", config)
    assert result.exit_code == 2
    one_line_error(result, "loop.yaml", "refers to itself")


def test_a_large_bad_value_is_shown_as_a_short_excerpt(tmp_path):
    config = tmp_path / "big.yaml"
    config.write_text("name: big\nseed: [" + ", ".join(["12345"] * 50_000) + "]\n")
    result = cli("train", config)
    assert result.exit_code == 2
    line = one_line_error(result, "seed")
    assert len(line) < 300


def test_grid_points_and_seeds_are_capped_before_any_is_listed(tmp_path):
    spec = tmp_path / "huge.yaml"
    values = list(range(1, 1001))
    spec.write_text(yaml.safe_dump({"name": "huge", "base": {"name": "p"},
                                    "grid": {"train.batch_size": values, "train.learning_rate": [0.1 * i for i in range(1, 1001)]}}))
    result = cli("sweep", spec, "--dry-run")
    assert result.exit_code == 2
    one_line_error(result, "1,000,000 points", "at most 10,000")
    spec.write_text(yaml.safe_dump({"name": "huge", "base": {"name": "p"}, "seeds": list(range(2000))}))
    result = cli("sweep", spec, "--dry-run")
    assert result.exit_code == 2
    one_line_error(result, "seeds")


def test_json_nested_too_deeply_is_a_corrupt_file(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunFileError, match="summary.json is corrupt"):
        rundir.read_json(path)


# --- 5. Ray: a dead --address fails within the deadline, before sweep.json ------------------


@pytest.mark.parametrize("address", ["127.0.0.1:1", "nonexistent.invalid:6379"])
def test_a_dead_ray_address_fails_in_one_line_before_anything_is_written(tmp_path, address):
    pytest.importorskip("ray")
    spec = tmp_path / "s.yaml"
    spec.write_text(SWEEP)
    result = cli("sweep", spec, "--executor", "ray", "--address", address, "--out", tmp_path / "out")
    assert result.exit_code == 1
    one_line_error(result, f"no Ray cluster answers at {address}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("reply, why", [(b"HTTP/1.0 400 Bad request\r\n\r\n", "not as Ray's GCS"),
                                        (None, "no answer within 1 s")])
def test_an_address_where_something_else_listens_is_refused_not_waited_on(reply, why):
    """ray.init would retry forever against a port that accepts connections but is no GCS:
    a web server, or one that never says a word (the deadline, here 1 s, ends that)."""
    import socket
    import threading

    from bnexp.errors import BnexpError
    from bnexp.sweep.raycluster import check_reachable

    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve():
        connection, _ = server.accept()
        if reply:
            connection.recv(100)
            connection.sendall(reply)
        done.wait(10)
        connection.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(BnexpError, match=why):
            check_reachable(f"127.0.0.1:{server.getsockname()[1]}", deadline=1)
    finally:
        done.set()
        server.close()


def test_the_ray_address_deadline_is_at_most_30_seconds():
    from bnexp.sweep.raycluster import CONNECT_DEADLINE

    assert 0 < CONNECT_DEADLINE <= 30


# --- 6. a checkpoint's loop state is validated before anything is rewritten -----------------


def with_state(run: Path, **changes) -> None:
    path = run / "checkpoint.npz"
    with np.load(path) as f:
        arrays = {name: f[name] for name in f.files}
    state = json.loads(arrays["state"].tobytes()) | changes
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("changes, named", [
    ({"step": -100}, "step"), ({"step": 10**12}, "step"), ({"elapsed": "soon"}, "elapsed"),
    ({"row_totals": ["a", "b"]}, "row_totals"), ({"best_step": 10**9}, "best_step"),
])
def test_a_resume_refuses_an_impossible_loop_state_and_loses_nothing(tmp_path, changes, named):
    run = copy_run("interrupted", tmp_path / "run")
    with_state(run, **changes)
    before = tree(run)
    result = cli("train", "--resume", run)
    assert result.exit_code == 1
    one_line_error(result, "corrupt checkpoint", str(run / "checkpoint.npz"), named)
    assert tree(run) == before  # metrics.csv, summary.json, log.txt: untouched


# --- 7. links, devices, FIFOs and inflating archives inside a run directory -----------------


@pytest.mark.parametrize("name", ["log.txt", ".lock", "metrics.csv"])
def test_resume_refuses_a_run_with_a_link_inside_and_writes_nothing_outside(tmp_path, name):
    run = copy_run("interrupted", tmp_path / "run")
    outside = tmp_path / "outside.txt"
    outside.write_text("not bnexp's")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(outside)
    result = cli("train", "--resume", run)
    assert result.exit_code == 2
    one_line_error(result, name, "symbolic link")
    assert outside.read_text() == "not bnexp's"


def test_a_lock_link_to_a_missing_file_creates_nothing(tmp_path):
    run = rundir.RunDir(tmp_path)
    (tmp_path / ".lock").symlink_to(tmp_path / "created-outside")
    with pytest.raises(RunFileError, match="symbolic link"):
        run.lock()
    assert not (tmp_path / "created-outside").exists()


def test_a_run_file_linked_to_dev_zero_is_refused_unread(tmp_path):
    a, b = copy_run("completed", tmp_path / "a"), copy_run("completed", tmp_path / "b")
    (b / "metrics.csv").unlink()
    (b / "metrics.csv").symlink_to("/dev/zero")
    result = cli("compare", a, b)
    assert result.exit_code == 1
    one_line_error(result, "metrics.csv", "symbolic link")


def test_a_summary_that_is_a_fifo_does_not_hang_compare(tmp_path):
    a, b = copy_run("completed", tmp_path / "a"), copy_run("completed", tmp_path / "b")
    (b / "summary.json").unlink()
    os.mkfifo(b / "summary.json")
    result = cli("compare", a, b)
    assert result.exit_code == 1
    one_line_error(result, "summary.json", "not a regular file")


def test_a_file_over_its_size_cap_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"#" * (rundir.guard.CAPS["config.yaml"] + 1))
    with pytest.raises(RunFileError, match="config.yaml is corrupt: larger than"):
        rundir.RunDir(tmp_path).read_config()


def test_a_checkpoint_that_inflates_past_its_model_is_refused_before_inflating(tmp_path):
    run = copy_run("completed", tmp_path / "run")
    limit = rundir.checkpoint.max_bytes([32])
    np.savez_compressed(run / "checkpoint.npz", state=np.frombuffer(b'{"step": 400}', np.uint8),
                        bomb=np.zeros(limit // 8 + 1_000_000))
    assert (run / "checkpoint.npz").stat().st_size < limit / 100
    result = cli("eval", run)
    assert result.exit_code == 1
    one_line_error(result, "checkpoint.npz is corrupt", "inflates to")


# --- 8. the smaller ones ----------------------------------------------------------------------


def test_a_worker_dies_with_its_sweep(tmp_path):
    """kill -9 of the sweep while its worker trains a point takes the worker with it, so no
    orphan trains on holding the point's lock: the point can be taken again at once."""
    run = tmp_path / "point"
    config = "name: orphan\ndata: {dataset: mnist-sample}\nmodel: {hidden: [8]}\ntrain: {batch_size: 50, steps: 10000000, eval_every: 10}\n"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from bnexp.sweep.local import Worker
        w = Worker(1)
        w.send({config!r}, {str(run)!r}, None)
        print(w.process.pid, flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    worker = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS  # a guard against a hang, not a measurement
        while not ((run / "metrics.csv").exists() and len((run / "metrics.csv").read_text().splitlines()) > 1):
            if time.monotonic() > deadline:
                pytest.fail("the point never started training")
            time.sleep(0.1)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    again, deadline = rundir.RunDir(run), time.monotonic() + HANG_GUARD_SECONDS
    while True:  # the worker's threads end, and with them its hold on the lock
        try:
            again.lock()  # what a rerun does first
            break
        except RunDirError:
            if time.monotonic() > deadline:
                os.kill(worker, signal.SIGKILL)
                pytest.fail("the worker outlived its sweep, still holding the point's lock")
            time.sleep(0.1)
    again.unlock()


def test_a_signal_during_the_final_summary_write_waits_for_it(monkeypatch):
    """A second SIGINT while the final summary is written is delivered after the write
    (to the handler that was there, here one that raises), never in the middle of it."""
    from bnexp.training import signals_held

    class Second(Exception):
        pass

    def handler(signum, frame):
        raise Second

    previous = signal.signal(signal.SIGINT, handler)
    written = []
    try:
        with pytest.raises(Second):
            with signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # give the signal every chance to arrive inside
                written.append("summary")
        assert written == ["summary"]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_second_sigint_as_the_final_summary_is_written_leaves_it_interrupted(tmp_path, monkeypatch):
    """The race of issue 25, made certain: the first SIGINT comes with the first metrics row,
    the second in the very call that writes the final summary. The summary must still end
    `interrupted`, and the command exit 130."""
    config = tmp_path / "c.yaml"
    config.write_text("name: race\ndata: {dataset: mnist-sample}\nmodel: {hidden: [8]}\n"
                      "train: {batch_size: 50, steps: 40, eval_every: 10}\n")
    append, write = rundir.RunDir.append_metrics, rundir.RunDir.write_summary

    def first_signal(self, row):
        append(self, row)
        if row["step"] == 10:
            os.kill(os.getpid(), signal.SIGINT)

    def second_signal(self, summary):
        if summary.status == "interrupted":
            os.kill(os.getpid(), signal.SIGINT)
        write(self, summary)

    monkeypatch.setattr(rundir.RunDir, "append_metrics", first_signal)
    monkeypatch.setattr(rundir.RunDir, "write_summary", second_signal)
    result = cli("train", config, "--run-dir", tmp_path / "run", "--quiet")
    assert result.exit_code == 130, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGINT"


def test_terminal_escapes_in_a_run_never_reach_the_terminal(tmp_path):
    a = copy_run("completed", tmp_path / "a\x1b[2Jclear")
    b = copy_run("interrupted", tmp_path / "b")
    summary = json.loads((b / "summary.json").read_text())
    summary["message"] = "stopped \x1b[2J\x1b]0;owned\x07 \x9b31m"
    (b / "summary.json").write_text(json.dumps(summary))
    for fmt in ("table", "markdown", "csv"):
        result = cli("compare", a, b, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert not any(c in result.output for c in "\x1b\x07\x9b"), (fmt, result.output)


def test_markdown_cells_show_file_text_as_text():
    cell = markdown_text("<script>alert(1)</script>\nnext | line $\\frac{$ \x1b[2J")
    assert "\n" not in cell and "<" not in cell and "\x1b" not in cell
    assert "\\|" in cell and "\\$\\frac{\\$" in cell
    assert cell.startswith("&lt;script&gt;")


def test_a_claim_with_html_newlines_and_bad_tex_gives_a_whole_claims_report(tmp_path):
    """claims.md keeps one table row per claim, no HTML and no TeX from the claim, and the
    claim's figure is drawn with its title shown literally."""
    out = tmp_path / "sweep"
    for point in ("kind=batch/seed=0", "kind=none/seed=0"):
        copy_run("completed", out / point)
    claim = {"name": "bn-wins", "claim": "BN <b>wins</b>\n| twice $\\frac{$", "source": "me\n$x^$",
             "metric": "final_accuracy", "direction": "higher", "better": {"model.norm.kind": "batch"},
             "than": {"model.norm.kind": "none"}}
    (out / "sweep.json").write_text(json.dumps({
        "name": "tex", "seeds": [0], "expect": [claim],
        "points": [{"run_dir": "kind=batch/seed=0", "overrides": {"model.norm.kind": "batch", "seed": 0}},
                   {"run_dir": "kind=none/seed=0", "overrides": {"model.norm.kind": "none", "seed": 0}}]}))
    report = tmp_path / "docs" / "claims.md"
    result = cli("claims-report", out, "--out", report)
    assert result.exit_code == 0, result.output
    text = report.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| **bn-wins**")]
    assert len(rows) == 1 and "<b>" not in text and "&lt;b&gt;" in rows[0] and "\\$\\frac{\\$" in rows[0]
    assert (tmp_path / "docs" / "claims" / "tex-bn-wins.png").stat().st_size > 0


def test_a_huge_step_size_is_refused_before_a_run_directory_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("BNEXP_RUNS_DIR", str(tmp_path / "runs"))
    config = tmp_path / "c.yaml"
    config.write_text("name: big\ntrain: {schedule: {kind: step, step_size: 100000000000000000000000000000}}\n")
    result = cli("train", config)
    assert result.exit_code == 2
    one_line_error(result, "train.schedule.step_size")
    assert not (tmp_path / "runs").exists()


def test_threads_below_one_in_sweep_json_are_refused(finished_sweep):
    spec, out = finished_sweep
    manifest = json.loads((out / "sweep.json").read_text())
    manifest["threads"] = -4
    (out / "sweep.json").write_text(json.dumps(manifest))
    result = cli("sweep", spec, "--out", out, "--quiet")
    assert result.exit_code == 1
    one_line_error(result, "sweep.json is corrupt", "threads")


def test_a_plot_on_a_full_disk_leaves_no_empty_file(tmp_path, monkeypatch):
    a, b = copy_run("completed", tmp_path / "a"), copy_run("completed", tmp_path / "b")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir.guard.os, "fsync", full)
    result = cli("compare", a, b, "--plot", tmp_path / "curves.png")
    assert result.exit_code == 2
    one_line_error(result, "curves.png", "No space left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
