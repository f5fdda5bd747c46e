"""The command line's own contract: every usage error is one line `error: …` with exit 2,
and a second signal stops training at once with that signal's exit code."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from test_train import write_config
from typer.testing import CliRunner

from bnexp.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args, named", [
    (["train", "--bogus"], "--bogus"),
    (["eval", "RUN", "--stats", "nonsense"], "nonsense"),
    (["eval", "RUN", "--split", "validation"], "validation"),
    (["sweep", str(REPO / "configs" / "claims" / "ioffe2015_figure1.yaml"), "--workers", "0"], "--workers"),
    (["compare", "a", "b", "--format", "html"], "html"),
    (["compare", "a", "b", "--last", "0"], "--last"),
    (["eval"], "Missing argument"),
    (["trian"], "No such command"),
])
def test_usage_errors_are_one_line_and_exit_2(args, named):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr


def test_python_m_bnexp_usage_error_is_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "bnexp", "train", "--bogus"], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["error: bnexp train: No such option: --bogus"]


def test_help_into_a_pipe_closed_early_ends_without_a_traceback(tmp_path):
    """`bnexp sweep --help | head -1`: the reader goes away mid-help; Rich then exits 1.
    The exit passed through bnexp's error handler, which once failed on a name Typer 0.29 lacks."""
    import subprocess
    import sys

    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    result = subprocess.run([sys.executable, "-m", "bnexp", "sweep", "--help"], stdout=reader.stdin, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"})
    reader.stdin.close()
    reader.wait()
    assert "Traceback" not in result.stderr and "AttributeError" not in result.stderr, result.stderr


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_stops_at_once_with_its_exit_code(tmp_path, monkeypatch, signum, code):
    from bnexp.present.training import TrainDisplay

    def progress(self, at, *args):  # a user who sends the signal twice, quickly
        if not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), signum)
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(TrainDisplay, "progress", progress)
    config = write_config(tmp_path, {"train.steps": 1000, "train.eval_every": 1000})
    result = CliRunner().invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == code, result.output
    assert result.stderr.splitlines() == [f"error: interrupted twice by {signal.Signals(signum).name}"]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "interrupted twice" in summary["message"]
    assert summary["signal"] == signal.Signals(signum).name and summary["steps"] == 100  # the first boundary: one epoch of the sample


@pytest.mark.parametrize("command", ["train", "eval", "compare", "report", "sweep", "claims-report"])
def test_help_prose_wraps_at_80_columns_between_words(command):
    """Each paragraph of a command's description fills its lines greedily up to the 80-column
    width (a line ends only where the next word would not fit), and reads as the docstring."""
    import inspect
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    shown = subprocess.run([sys.executable, "-m", "bnexp", command, "--help"], capture_output=True, text=True,
                           env=env, check=True).stdout
    lines = shown.split("╭")[0].splitlines()[3:]  # the description, before the first box
    callback = next(c.callback for c in app.registered_commands if (c.name or c.callback.__name__) in (
        command, command.replace("-", "_"), command + "_"))
    paragraphs = [" ".join(p.split()) for p in inspect.getdoc(callback).split("\n\n")]
    blocks = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    assert [" ".join(line.strip() for line in b) for b in blocks] == paragraphs
    for block in blocks:
        assert all(len(line) <= 80 for line in block)
        for line, following in zip(block, block[1:]):
            assert len(line) + 1 + len(following.split()[0]) > 79, (line, following)
