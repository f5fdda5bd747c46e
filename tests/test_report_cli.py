"""`bnexp report` on a study bnexp trained: its tables equal `bnexp compare --format json`'s.

The study is conftest's `trained_study`, a real sweep with claims. The page is parsed
with html.parser (tests/report_page.py); each number in the statistics, pivot, runs
and claims tables is checked exactly (its data attribute) and as shown (its text)
against what compare prints for the same paths and options.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp import __version__
from bnexp.cli import app
from bnexp.rundir.provenance import git_commit
from report_page import Page, assert_ci, assert_number, exact

REPO = Path(__file__).resolve().parents[1]
OPTIONS = ("--last", "3", "--threshold", "0.8")


def bnexp(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def compare_json(*args) -> dict:
    result = bnexp("compare", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def written(trained_study, tmp_path_factory) -> tuple[Path, str, str]:
    """(the page, its HTML, what the command printed)."""
    out = tmp_path_factory.mktemp("report") / "study.html"
    result = bnexp("report", trained_study, "-o", out, *OPTIONS)
    assert result.exit_code == 0, result.output
    return out, out.read_text(encoding="utf-8"), result.output


@pytest.fixture(scope="module")
def page(written) -> Page:
    return Page(written[1])


@pytest.fixture(scope="module")
def compared(trained_study) -> dict:
    """compare's JSON for the same paths and options, with the pivot the report chose: the sweep's grid key."""
    return compare_json(trained_study, *OPTIONS, "--pivot", "model.norm.kind")


def test_the_command_prints_the_path_and_leaves_only_the_page(written):
    out, _, printed = written
    assert printed.strip() == str(out)
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_statistics_table_equals_compares_comparisons(page, compared):
    rows = page.rows("statistics")
    assert len(rows) == len(compared["comparisons"]) == 1
    for row, c in zip(rows, compared["comparisons"]):
        assert row["b"]["text"] == c["b"] and row["test"]["text"] == c["test"] == "paired"
        for key in ("difference", "effect_size", "p", "p_adjusted"):
            assert_number(row[key], c[key])
        assert_ci(row["ci"], c["ci_low"], c["ci_high"])
        assert (int(row["n"]["attrs"]["data-n-a"]), int(row["n"]["attrs"]["data-n-b"])) == (c["n_a"], c["n_b"]) == (3, 3)
        assert row["verdict"]["text"] == c["verdict"].replace("_", " ")
        assert row["sentence"]["text"] == c["sentence"]


def test_pivot_equals_compares_pivot_of_the_grid_key(page, compared):
    pivot = compared["pivot"]
    assert [row[0]["text"] for row in page.tables["pivot"]] == ["batch", "none"]
    for row, want in zip(page.tables["pivot"], pivot["rows"], strict=True):
        (cell,) = [c for c in row if c["attrs"].get("data-field") == "cell"]
        (expected,) = want["cells"]
        assert exact(cell, "data-mean") == expected["mean"] and exact(cell, "data-std") == expected["std"]
        assert int(cell["attrs"]["data-n"]) == expected["n"] == 3


def test_runs_table_equals_compares_runs(page, compared):
    rows = page.rows("runs")
    assert len(rows) == len(compared["runs"]) == 6
    for row, run in zip(rows, compared["runs"]):
        assert row["label"]["text"] == run["label"] and row["path"]["text"] == run["path"]
        assert row["status"]["text"] == run["status"] == "completed"
        for key in ("final_test_accuracy", "best_test_accuracy", "seconds_per_epoch"):
            assert_number(row[key], run["values"][key])
        assert exact(row["steps"]) == run["values"]["steps"] == 300


def test_claims_table_equals_compares_claims(page, compared):
    rows = page.rows("claims")
    assert len(rows) == len(compared["claims"]) == 2
    for row, claim in zip(rows, compared["claims"]):
        assert row["verdict"]["text"] == claim["verdict"]
        assert claim["source"] in row["claim"]["text"]
        for key in ("difference", "p", "p_adjusted"):
            assert_number(row[key], claim[key])
        assert_ci(row["ci"], claim["ci_low"], claim["ci_high"])
        assert (row["n"]["attrs"]["data-n-better"], row["n"]["attrs"]["data-n-than"]) == ("3", "3")


def test_header_curves_and_diagnostics(written, page, trained_study):
    html = written[1]
    assert "http://" not in html and "https://" not in html
    assert f"<code>{trained_study}</code>" in html
    assert f"<dd>{__version__}</dd>" in html and f"<code>{git_commit()}</code>" in html
    assert "the mean of the last 3 evaluations" in html
    titles = [t for t in html.split("<title>")[2:]]  # the page's <title> first, then one per chart
    assert any(t.startswith("test accuracy against step") for t in titles)
    assert any(t.startswith("mean gap, mean over BN layers") for t in titles)
    assert sum(t.startswith("kind=") and "layer 1, unit 0" in t.split("<")[0] for t in titles) == 2  # Figure 1(b, c), per group


def test_runs_that_are_no_sweep_get_no_pivot_and_no_claims(trained_study, tmp_path):
    paths = [trained_study / "kind=batch" / "seed=0", trained_study / "kind=none" / "seed=1"]
    out = tmp_path / "two.html"
    assert bnexp("report", *paths, "-o", out).exit_code == 0
    page = Page(out.read_text())
    assert "pivot" not in page.tables and "claims" not in page.tables
    compared = compare_json(*paths)
    assert [exact(r["final_test_accuracy"]) for r in page.rows("runs")] == [
        r["values"]["final_test_accuracy"] for r in compared["runs"]]


def test_pivot_options_are_compares(trained_study, tmp_path):
    result = bnexp("report", trained_study, "-o", tmp_path / "r.html", "--pivot", "train.learning_rate")
    assert result.exit_code == 2
    assert result.output.startswith("error: --pivot train.learning_rate: not a config key that differs")


def test_the_command_never_imports_tensorflow(trained_study, tmp_path):
    code = ("import sys; from typer.testing import CliRunner; from bnexp.cli import app; "
            f"r = CliRunner().invoke(app, ['report', {str(trained_study)!r}, '-o', {str(tmp_path / 'r.html')!r}]); "
            "assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("args", "message"), [
    (["missing", "-o", "r.html"], "error: missing: no such directory"),
    (["STUDY", "-o", "r.txt"], "error: -o r.txt: name an .html file"),
    (["STUDY", "-o", "r.html", "--threshold", "2"], "error: --threshold is a test accuracy in (0, 1], not 2.0"),
    (["STUDY", "-o", "r.html", "--last", "0"], "error: bnexp report: Invalid value for '--last'"),
    (["STUDY"], "error: bnexp report: Missing option '--out' / '-o'."),
    (["STUDY", "-o", "MISSING/sub/r.html"], "error: cannot write MISSING/sub/r.html: "),
])
def test_usage_errors_are_one_line_with_exit_2(trained_study, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "MISSING").write_text("a file, so no folder can be made under it")
    result = bnexp("report", *(str(trained_study) if a == "STUDY" else a for a in args))
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MISSING"]  # nothing written


def test_help_explains_every_option():
    result = bnexp("report", "--help")
    assert result.exit_code == 0
    for option in ("--out", "-o", "--threshold", "--last", "--pivot", "--columns"):
        assert option in result.output
    assert "self-contained" in result.output or "no server" in result.output
