"""One voice: a comparison's p reads the same (bnexp.formats.p_value) in every output.

One comparison of two seed groups, written as fake run directories (test_compare's
helpers), is read through the public commands: `bnexp compare` on the terminal,
`bnexp compare --format markdown`, and the HTML page of `bnexp report`.
"""

from __future__ import annotations

import html
import json

from test_compare import two_arms
from test_report_cli import bnexp

from bnexp import formats

METRIC = ("--metric", "final_test_accuracy")


def test_the_p_value_reads_the_same_on_the_terminal_in_markdown_and_in_the_html_report(tmp_path):
    paths = two_arms(tmp_path / "runs")
    compared = bnexp("compare", *paths, *METRIC, "--format", "json")
    assert compared.exit_code == 0, compared.output
    [c] = json.loads(compared.output)["comparisons"]
    assert c["test"] == "paired" and c["p"] is not None and c["p_adjusted"] == c["p"]  # a family of one
    said = f"p {formats.p_relation(c['p'])}"  # the sentence's `p = 0.0031`
    shown = formats.p_value(c["p"])  # a table cell's `0.0031`
    assert said.endswith(shown)

    terminal = bnexp("compare", *paths, *METRIC)
    markdown = bnexp("compare", *paths, *METRIC, "--format", "markdown")
    out = tmp_path / "study.html"
    page = bnexp("report", *paths, *METRIC, "-o", out)
    for result in (terminal, markdown, page):
        assert result.exit_code == 0, result.output
    text = html.unescape(out.read_text(encoding="utf-8"))

    assert said in terminal.output and c["sentence"] in terminal.output
    assert said in markdown.output and c["sentence"] in markdown.output
    assert said in text and c["sentence"] in text
    assert f">{shown}<" in text  # the statistics table's p cell, formatted by the same function
