"""The HTML report's renderer: its tables hold exactly the input's numbers, and the file stands alone.

The input is `bnexp report`'s dict of a synthetic study written as run directories
(tests/report_synthetic.py). The page is parsed with the standard library's
html.parser; every number is checked twice: its `data-value` attribute against the
input exactly, and the text a reader sees against the same value to the precision
shown. tests/test_report_cli.py checks the command on a study bnexp trained.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import math
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from bnexp import svgchart
from bnexp.bands import PALETTE, seed_band
from bnexp.formats import measured, p_value
from bnexp.report import render_html, write_report
from bnexp.report_data import Curve, ReportData, RunEntry
from report_page import Page, assert_ci, assert_number, assert_shown, exact, shown
from report_synthetic import synthetic_report

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return synthetic_report(tmp_path_factory.mktemp("study"), learning_rates=(0.1, 1.0, 10.0), seeds=5, points=60)


@pytest.fixture(scope="module")
def html(data) -> str:
    return render_html(data)


@pytest.fixture(scope="module")
def page(html) -> Page:
    return Page(html)


def test_statistics_table_holds_the_comparisons_numbers(data, page):
    rows = page.rows("statistics")
    assert len(rows) == len(data.comparisons) > 0
    for row, c in zip(rows, data.comparisons):
        assert row["b"]["text"] == c.b
        assert row["test"]["text"] == c.test
        for key in ("difference", "effect_size", "p", "p_adjusted"):
            assert_number(row[key], getattr(c, key))
        assert_ci(row["ci"], c.ci_low, c.ci_high)
        assert int(row["n"]["attrs"]["data-n-a"]) == c.n_a and int(row["n"]["attrs"]["data-n-b"]) == c.n_b
        assert row["verdict"]["text"] == c.verdict.replace("_", " ")
        assert row["sentence"]["text"] == c.sentence
    # One baseline: named once in the caption, not in every row.
    assert {r["data-a"] for r in page.row_attrs["statistics"]} == {data.comparisons[0].a}
    assert "a" not in rows[0]


def test_statistics_table_names_each_baseline_when_there_are_several(data):
    data = copy.deepcopy(data)
    data.comparisons[-1].a = "another baseline"
    rows = Page(render_html(data)).rows("statistics")
    assert [r["a"]["text"] for r in rows] == [c.a for c in data.comparisons]


def test_a_comparison_without_a_p_value_shows_dashes(data):
    data = copy.deepcopy(data)
    data.comparisons = [dataclasses.replace(data.comparisons[0], test="none", p=None, p_adjusted=None, ci_low=None,
                                            ci_high=None, effect_size=None, verdict="too_few_seeds")]
    row = Page(render_html(data)).rows("statistics")[0]
    for key in ("p", "p_adjusted", "effect_size"):
        assert row[key]["text"] == "—" and row[key]["attrs"]["data-value"] == ""
    assert row["ci"]["text"] == "—"
    assert row["verdict"]["text"] == "too few seeds"


def test_excluded_runs_and_not_comparable_reasons_are_listed(data, html):
    text = unescape(html)
    excluded = [e for c in data.comparisons for e in c.excluded]
    assert {e.why for e in excluded} >= {"diverged", "failed"}
    assert all(e.path in text and e.why in text for e in excluded)
    apart = dataclasses.replace(data, not_comparable=["runs/other/seed=1: tested on mnist (10,000 test examples), not the baseline's"])
    assert f"Not comparable: {apart.not_comparable[0]}" in unescape(render_html(apart))


def pivot_cells(page: Page) -> list[list[dict]]:
    """Each pivot row's value cells (its first cells are the row keys' values)."""
    return [[c for c in row if c["attrs"].get("data-field") == "cell"] for row in page.tables["pivot"]]


def test_pivot_cells_hold_mean_std_and_n(data, page):
    pivot = data.pivots[0]
    assert pivot.row_keys == ["model.norm.kind"] and pivot.column_key == "train.learning_rate"
    assert [[c["text"] for c in row[:1]] for row in page.tables["pivot"]] == [
        [row.values["model.norm.kind"]] for row in pivot.rows]
    for cells, expected in zip(pivot_cells(page), pivot.rows, strict=True):
        assert len(cells) == len(pivot.columns) == len(expected.cells)
        for cell, want in zip(cells, expected.cells):
            if want is None:
                assert cell["text"] == "—"
                continue
            if want.mean is None:  # no run counted: compare says why ('—: 0 of 5, 5 diverged')
                assert cell["text"] == want.text and cell["text"].startswith("—")
                continue
            assert exact(cell, "data-mean") == want.mean and exact(cell, "data-std") == want.std
            assert int(cell["attrs"]["data-n"]) == want.n and cell["attrs"]["data-group"] == want.group
            assert cell["text"] == want.text  # compare's own cell (issue 23: with the runs not counted)
            if ": " in want.text:  # '0.9400 ± 0.0100: 2 of 3, 1 diverged'
                assert int(cell["attrs"]["data-n-diverged"]) == want.n_diverged
                continue
            mean, rest = cell["text"].split(" ± ")
            std, n = rest.split(" ")
            assert_shown(mean, want.mean)
            assert_shown(std, want.std)
            assert n == f"({want.n})"


def test_runs_table_holds_every_run(data, page):
    rows = page.rows("runs")
    assert len(rows) == len(data.runs)
    assert {run.status for run in data.runs} == {"completed", "running", "interrupted", "failed", "diverged"}
    for row, run in zip(rows, data.runs):
        assert row["label"]["text"] == run.label
        assert row["status"]["text"] == run.status
        assert ("span", {"class": f"pill status-{run.status}"}) in row["status"]["tags"]
        for key in ("final_test_accuracy", "best_test_accuracy", "seconds_per_epoch"):
            assert_number(row[key], run.values[key])
        assert exact(row["steps"]) == run.values["steps"]
        assert shown(row["steps"]["text"]) == run.values["steps"]
        assert row["path"]["text"] == run.path
        assert not any(tag == "a" for tag, _ in row["path"]["tags"]), "a run's path is plain text, not a link"
    keys = list(data.diff)
    assert keys == ["seed", "model.norm.kind", "train.learning_rate"]
    for row, run in zip(page.tables["runs"], data.runs):
        config = [c["text"] for c in row if c["attrs"].get("data-field") == "config"]
        assert config == [run.settings[key] for key in keys]


def test_claims_table_holds_verdicts_sources_and_numbers(data, page):
    rows = page.rows("claims")
    assert len(rows) == len(data.claims) > 0
    colours = {"holds": "holds", "contradicted": "contradicted", "inconclusive": "inconclusive"}
    for row, claim in zip(rows, data.claims):
        assert row["verdict"]["text"] == claim.verdict
        assert ("span", {"class": f"pill verdict-{colours[claim.verdict]}"}) in row["verdict"]["tags"]
        text = row["claim"]["text"]
        assert claim.name in text and claim.claim in text
        assert text.endswith(claim.source + "".join(claim.notes))  # the cite with its URL readable, the notes
        for key in ("difference", "p", "p_adjusted"):
            assert_number(row[key], getattr(claim, key))
        assert_ci(row["ci"], claim.ci_low, claim.ci_high)
        assert exact(row["seeds_needed"]) == claim.seeds_needed
        assert row["n"]["attrs"]["data-n-better"] == str(claim.n_better)
    captions = [re.sub(r"<.*?>", "", c) for c in re.findall(r"<caption>(.*?)</caption>", render_html(data))]
    assert any(c.startswith("Holm family claims in sweep synthetic-study:") for c in captions)


@pytest.mark.parametrize(("value", "signed", "text"), [
    (0.98123456, False, "0.9812"), (0.0123, True, "+0.0123"), (-0.00004, True, "-0.0000"),
    (2.71, False, "2.710"), (-123.456, True, "-123.5"), (-8500.0, True, "-8,500"), (49500, False, "49,500"),
    (None, False, "—"),
])
def test_numbers_share_one_style(value, signed, text):
    """Accuracies and their differences to 4 decimals, as compare prints them; counts grouped."""
    assert measured(value, signed) == text


@pytest.mark.parametrize(("p", "text"), [(0.0490, "0.049"), (0.13, "0.13"), (0.00065, "0.00065"), (0.00005, "< 0.0001"),
                                         (None, "—"), (float("nan"), "—")])
def test_p_values_are_written_by_the_one_formatter(p, text):
    """The page's p-values are bnexp.formats.p_value's: 2 significant digits, floored at 0.0001."""
    assert p_value(p) == text


def test_verdict_colours_are_green_red_amber(html):
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)

    def colour_of(selector: str) -> str:
        rule = next(r for r in css.split("}") if selector in r.split("{")[0])
        return re.search(r"color:var\(--(\w+)\)", rule).group(1)

    assert colour_of(".verdict-holds") == "green"
    assert colour_of(".verdict-contradicted") == "red"
    assert colour_of(".verdict-inconclusive") == "amber"
    assert colour_of(".status-completed") == "green"
    assert colour_of(".status-diverged") == colour_of(".status-failed") == "red"
    assert colour_of(".status-interrupted") == colour_of(".status-running") == "amber"


def test_no_url_anywhere_yet_a_cited_url_still_reads(data, html):
    assert "http://" not in html and "https://" not in html
    assert any("https://arxiv.org/abs/1502.03167" in c.source for c in data.claims)
    assert "https://arxiv.org/abs/1502.03167" in unescape(html)


def test_the_page_loads_nothing_from_outside(page, html):
    for tag, attrs in page.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base"), tag
        assert not (tag == "script" and "src" in attrs)
        assert tag != "a" or attrs.get("href", "").startswith("#"), attrs
        for name, value in attrs.items():
            assert name not in ("src", "srcset", "xlink:href") and "url(" not in (value or ""), (tag, name)
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    assert "@import" not in css and "url(" not in css and "@font-face" not in css


def test_user_text_is_escaped(data):
    data = copy.deepcopy(data)
    data.runs[0].label = "<script>alert(1)</script>"
    data.claims[0].claim = 'a "quoted" & <b>bold</b> claim'
    html = render_html(data)
    assert "<script>alert" not in html and "<b>bold" not in html
    page = Page(html)
    assert page.rows("runs")[0]["label"]["text"] == "<script>alert(1)</script>"
    assert 'a "quoted" & <b>bold</b> claim' in page.rows("claims")[0]["claim"]["text"]


def test_each_run_and_group_is_drawn_in_its_own_toggleable_g(data, page):
    charts = sum(1 for tag, attrs in page.tags if tag == "svg" and attrs.get("class") == "chart")
    assert charts >= 2 + 6  # two learning-curve panels, and diagnostics
    drawn_runs = [int(a["data-run"]) for t, a in page.tags if t == "g" and "data-run" in a]
    with_curve = [i for i, run in enumerate(data.runs) if run.curve.step]
    assert len(with_curve) == len(data.runs) - 1  # the failed run has no evaluation
    for i in with_curve:
        assert drawn_runs.count(i) >= 2, f"run {i} is not in both curve panels"
    groups = [a["data-group"] for t, a in page.tags if t == "g" and a.get("class") == "group"]
    banded = [str(g) for g, group in enumerate(data.groups) if len(group.runs) >= 2]
    assert sorted(set(groups)) == banded and len(banded) < len(data.groups)  # a group of diverged runs has no band
    toggles = {a["data-toggle"] for t, a in page.tags if t == "input"}
    assert toggles == {"seeds"} | {f"run:{i}" for i in range(len(data.runs))} | {
        f"group:{g}" for g in range(len(data.groups))}


def test_band_is_min_to_max_over_the_seeds_that_reached_each_step():
    """bnexp.bands.seed_band: the one band of the page and of `compare --plot`."""
    curves = [([0, 10, 20], [0.1, 0.5, 0.9]), ([0, 10, 20], [0.2, 0.6, 0.95]),
              ([0, 10], [0.15, 0.7])]  # a seed still running
    steps, mean, low, high = seed_band(curves)
    assert steps == [0, 10, 20]
    for k, values in enumerate(([0.1, 0.2, 0.15], [0.5, 0.6, 0.7], [0.9, 0.95])):
        assert mean[k] == pytest.approx(np.mean(values))
        assert (low[k], high[k]) == (min(values), max(values))
    steps, mean, low, high = seed_band(curves[:1])
    assert mean == [0.1, 0.5, 0.9] and low == high == [None, None, None]  # one seed: the line alone


def test_the_page_and_compare_plot_share_one_palette():
    from bnexp import plots

    assert plots._colours(3) == list(PALETTE[:3])


def test_missing_sections_are_left_out():
    html = render_html(ReportData())
    assert "<h1>bnexp report</h1>" in html
    assert not re.search(r'<section id="(curves|statistics|claims|diagnostics|runs|pivots|config)"', html)
    minimal = ReportData(runs=[RunEntry("a", "runs/a", "failed"),
                               RunEntry("b", "runs/b", "completed", values={"final_test_accuracy": 0.9},
                                        curve=Curve([0, 100], [0.1, 0.9], [2.3, 0.3]))])
    html = render_html(minimal)
    assert '<section id="runs">' in html and '<section id="curves">' in html
    assert '<section id="statistics">' not in html and '<section id="diagnostics">' not in html
    assert [r["status"]["text"] for r in Page(html).rows("runs")] == ["failed", "completed"]


def test_a_hundred_runs_fit_in_five_megabytes(tmp_path):
    data = synthetic_report(tmp_path / "study", seeds=10, points=100, diagnosed_seeds=1)
    assert len(data.runs) == 100
    path = write_report(data, tmp_path / "out" / "report.html")
    assert path.stat().st_size <= 5_000_000
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary file left


def test_rendering_never_imports_tensorflow(tmp_path, data):
    source = tmp_path / "data.pickle"
    source.write_bytes(pickle.dumps(data))
    code = ("import pickle, sys; from bnexp.report import write_report; "
            f"write_report(pickle.load(open({str(source)!r}, 'rb')), {str(tmp_path / 'r.html')!r}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


# --- the SVG charts --------------------------------------------------------------------


def _paths(svg: str) -> list[str]:
    return re.findall(r'<path d="([^"]*)"', svg)


def test_chart_breaks_a_line_at_non_finite_values_and_keeps_its_axis():
    line = svgchart.Line([0, 1, 2, 3, 4], [1.0, 2.0, math.inf, 3.0, 4.0], "#000")
    svg = svgchart.render(svgchart.Chart("t", "x", "y", [svgchart.Layer(lines=[line])]))
    (d,) = _paths(svg)
    assert d.count("M") == 2 and d.count("L") == 2
    y_ticks = [float(t) for t in re.findall(r'<text class="tick"[^>]*text-anchor="end">([^<]*)</text>', svg)]
    assert max(y_ticks) == 4  # the axis spans the finite values only


def test_chart_on_a_log_axis_drops_values_it_cannot_show():
    line = svgchart.Line([0, 1, 2], [0.1, 0.0, 1e9], "#000")
    svg = svgchart.render(svgchart.Chart("t", "x", "loss", [svgchart.Layer(lines=[line])], log_y=True))
    (d,) = _paths(svg)
    assert d.count("M") == 2 and "L" not in d
    assert "10⁹" in svg and "(log)" in svg


def test_chart_thins_long_lines_keeping_both_ends():
    n = 2001
    line = svgchart.Line(list(range(n)), [float(i) for i in range(n)], "#000")
    (d,) = _paths(svgchart.render(svgchart.Chart("t", "x", "y", [svgchart.Layer(lines=[line])])))
    points = re.findall(r"[ML]([\d.]+),([\d.]+)", d)
    assert len(points) == svgchart.MAX_POINTS
    assert float(points[0][0]) == svgchart.MARGIN_LEFT
    assert float(points[-1][0]) == svgchart.WIDTH - svgchart.MARGIN_RIGHT


def test_chart_with_nothing_finite_is_left_out():
    line = svgchart.Line([0, 1], [math.nan, math.nan], "#000")
    assert svgchart.render(svgchart.Chart("t", "x", "y", [svgchart.Layer(lines=[line])])) == ""
