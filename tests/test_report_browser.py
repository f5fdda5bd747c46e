"""The report in a real browser: Debian's headless Chromium, driven by Playwright.

Two reports: `bnexp report` of a study bnexp trained (conftest's `trained_study`), and
of the synthetic study (tests/report_synthetic.py), which has every status, a
diverged loss and every verdict, for the interactions.

Playwright is used as a driver only (`executable_path`), never with a browser of its
own: its download does not work on these machines. Skipped, saying why, where the
playwright package or Chromium is missing or Chromium cannot start; `make test`
installs Chromium where it can.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp.cli import app
from bnexp.report import write_report
from report_synthetic import synthetic_report

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: pip install -e '.[test]'")

# Playwright already passes the offline flags (no background networking, component
# updates or first-run screens) and a fresh profile; these are the rest of the set
# known to work here.
EXTRA_FLAGS = ["--disable-gpu", "--disable-quic", "--disable-sync"]
VERDICT_COLOURS = {"holds": "rgb(26, 127, 55)", "contradicted": "rgb(207, 34, 46)", "inconclusive": "rgb(154, 103, 0)"}


@pytest.fixture(scope="module")
def browser():
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; make test does it as root)")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium, args=EXTRA_FLAGS, timeout=60_000)
        except sync_api.Error as error:
            pytest.skip(f"chromium cannot start: {str(error).splitlines()[0]}")
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return synthetic_report(tmp_path_factory.mktemp("study"), learning_rates=(0.1, 1.0, 10.0), seeds=4, points=80)


@pytest.fixture(scope="module")
def report(data, tmp_path_factory):
    return write_report(data, tmp_path_factory.mktemp("report") / "report.html")


DESKTOP = {"width": 1200, "height": 900}


@contextlib.contextmanager
def open_page(browser, report, **context):
    """The report in a new page, with every console error, page error and request recorded;
    its browser context is closed on leaving, a failed assertion included."""
    page = browser.new_context(**context).new_page()
    try:
        page.errors, page.requests = [], []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: page.requests.append(r.url))
        page.goto(report.as_uri(), wait_until="load")
        yield page
    finally:
        page.context.close()


@pytest.fixture
def page(browser, report):
    with open_page(browser, report, viewport=DESKTOP) as page:
        yield page


@pytest.fixture(scope="module")
def trained_report(trained_study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained_report") / "study.html"
    result = CliRunner().invoke(app, ["report", str(trained_study), "-o", str(out), "--threshold", "0.8"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def trained_page(browser, trained_report):
    with open_page(browser, trained_report, viewport=DESKTOP) as page:
        yield page


def compared_claims(trained_study) -> list[dict]:
    result = CliRunner().invoke(app, ["compare", str(trained_study), "--format", "json"])
    return json.loads(result.output)["claims"]


def test_page_loads_with_no_console_error_and_no_request_beyond_itself(page, report, data):
    assert page.title() == f"bnexp report: {data.header.inputs[0]}"
    assert page.errors == []
    assert page.requests == [report.as_uri()]


def test_trained_report_loads_with_no_console_error_and_no_request_beyond_itself(trained_page, trained_report):
    assert trained_page.errors == []
    assert trained_page.requests == [trained_report.as_uri()]


def rendered_charts(page) -> list[dict]:
    """Each chart's title, size on screen, drawn paths with an extent, and axis ticks."""
    return page.eval_on_selector_all("svg.chart", """svgs => svgs.map(svg => {
        const box = svg.getBoundingClientRect();
        const drawn = [...svg.querySelectorAll('g[data-run] path, g[data-group] path')]
            .map(p => p.getBBox()).filter(b => b.width > 0 || b.height > 0);
        return {title: svg.querySelector('title').textContent, width: box.width, height: box.height,
                drawn: drawn.length, ticks: svg.querySelectorAll('text.tick').length};
    })""")


def assert_every_chart_drawn(charts: list[dict]) -> None:
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 100, chart
        assert chart["drawn"] > 0 and chart["ticks"] >= 4, chart


def test_every_plot_is_rendered(page):
    charts = rendered_charts(page)
    titles = [c["title"] for c in charts]
    assert "test accuracy against step" in titles and "test loss against step" in titles
    assert any("layer 2, unit 0" in t for t in titles) and "mean gap, mean over BN layers" in titles
    assert_every_chart_drawn(charts)


def test_every_plot_of_the_trained_report_is_rendered(trained_page):
    charts = rendered_charts(trained_page)
    titles = [c["title"] for c in charts]
    assert titles[:2] == ["test accuracy against step", "test loss against step"]
    assert sum("layer 1, unit 0" in t for t in titles) == 2 and "variance gap, mean over BN layers" in titles
    # Diagnostics are drawn per seed group, as the mean over seeds with its band.
    assert "ICS ℓ2 distance, layer 0" in titles and "loss range along the gradient, mean over seeds" in titles
    assert_every_chart_drawn(charts)


def verdict_pills(page) -> list[dict]:
    return page.eval_on_selector_all("table.claims td[data-field=verdict] .pill", """pills => pills.map(p => ({
        text: p.innerText, colour: getComputedStyle(p).color, visible: p.getBoundingClientRect().width > 0}))""")


def test_claims_table_shows_its_verdicts_in_their_colours(page, data):
    cells = verdict_pills(page)
    assert [c["text"] for c in cells] == [claim.verdict for claim in data.claims]
    assert {c["text"] for c in cells} == set(VERDICT_COLOURS)
    for cell, claim in zip(cells, data.claims):
        assert cell["visible"] and cell["colour"] == VERDICT_COLOURS[claim.verdict]
    sources = page.eval_on_selector_all("table.claims cite", "cs => cs.map(c => c.innerText)")
    assert sources == [claim.source for claim in data.claims]


def test_trained_reports_claims_table_shows_compares_verdicts(trained_page, trained_study):
    claims = compared_claims(trained_study)
    cells = verdict_pills(trained_page)
    assert len(cells) == len(claims) == 2
    for cell, claim in zip(cells, claims):
        assert cell["text"] == claim["verdict"] and cell["visible"]
        assert cell["colour"] == VERDICT_COLOURS[claim["verdict"]]


def displayed(page, selector: str) -> list[bool]:
    return page.eval_on_selector_all(selector, "gs => gs.map(g => getComputedStyle(g).display !== 'none')")


def test_a_run_a_group_and_all_seeds_can_be_hidden_and_shown(page):
    page.click("details.seeds >> nth=0")  # unfold the first group's runs
    run = 'g[data-run="1"]'
    assert all(displayed(page, run)) and len(displayed(page, run)) >= 2
    page.uncheck('input[data-toggle="run:1"]')
    assert not any(displayed(page, run))
    assert all(displayed(page, 'g[data-run="2"]'))
    page.check('input[data-toggle="run:1"]')
    assert all(displayed(page, run))

    page.uncheck('input[data-toggle="group:0"]')
    assert not any(displayed(page, 'g[data-group="0"]'))
    assert all(displayed(page, 'g[data-group="1"]'))
    page.check('input[data-toggle="group:0"]')

    page.uncheck('input[data-toggle="seeds"]')
    assert not any(displayed(page, "g.seed")) and all(displayed(page, "g.group"))
    assert page.errors == []


def test_without_javascript_every_run_is_visible_and_no_dead_checkbox_shows(browser, report):
    with open_page(browser, report, java_script_enabled=False) as page:
        assert all(displayed(page, "g[data-run], g[data-group]"))
        assert not any(displayed(page, "input[data-toggle]"))


def test_a_narrow_window_scrolls_tables_not_the_page(browser, report):
    with open_page(browser, report, viewport={"width": 390, "height": 800}) as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        widths = page.eval_on_selector_all("svg.chart", "svgs => svgs.map(s => s.getBoundingClientRect().width)")
        assert max(widths) <= 390


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory) -> Path:
    """A hundred runs, with claims, sources, labels and paths far longer than a table column."""
    data = synthetic_report(tmp_path_factory.mktemp("wide"), seeds=10, points=40, diagnosed_seeds=1)
    words = " ".join(["a claim whose text goes on and on, as a paper's sentence can"] * 6)
    for claim in data.claims:
        claim.claim = f"{claim.claim}: {words}"
        claim.source = f"{claim.source}, " + "https://example.org/" + "very-long-path-segment/" * 12
        claim.notes = [*claim.notes, "note-without-any-space-" * 8]
    long = "/" + "nested-folder-" * 10
    data.header.inputs = [path + long for path in data.header.inputs]
    for run in data.runs:
        run.path += long
    for comparison in data.comparisons:
        for excluded in comparison.excluded:
            excluded.path += long
    return write_report(data, tmp_path_factory.mktemp("wide_report") / "report.html")


def test_every_table_fits_a_1200_pixel_window(browser, wide_report):
    """Long claims and a hundred runs wrap or scroll inside their own box; the page never widens."""
    with open_page(browser, wide_report, viewport=DESKTOP) as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
        boxes = page.eval_on_selector_all(".table-wrap", "ws => ws.map(w => w.getBoundingClientRect().right)")
        assert boxes and max(boxes) <= DESKTOP["width"]
        assert page.errors == []


def test_print_hides_the_controls(page):
    page.emulate_media(media="print")
    assert not any(displayed(page, "nav, input[data-toggle]"))
    assert all(displayed(page, "svg.chart, table.claims"))


def test_screenshot_script_shoots_the_report(browser, report, tmp_path):
    """scripts/screenshot_report.py: Chromium's own --screenshot, at the window size asked for."""
    import importlib.util

    from PIL import Image

    path = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_report.py"
    spec = importlib.util.spec_from_file_location("screenshot_report", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    png = script.screenshot(report, tmp_path / "shot.png", size="800,600")
    with Image.open(png) as image:
        assert image.size == (800, 600)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # drawn text and lines, not a blank page
