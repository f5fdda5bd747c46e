"""Runs record the hardware that made them, and compare and claims say when runs from
different CPUs meet (their numbers then agree within float tolerance, not bit for bit)."""

from __future__ import annotations

import json
import os

import pytest

from bnexp import claims as C
from bnexp.rundir import provenance
from conftest import REPO
from test_claims import PLANTED, THAN, entry, groups_of, judged
from test_compare import compare_cli, make_run

SAPPHIRE = {"cpu_model": "Intel(R) Xeon(R) Platinum 8480+", "vector_level": "amx", "threads": 2}
ZEN4 = {"cpu_model": "AMD EPYC 9R14 96-Core Processor", "vector_level": "avx512", "threads": 2}
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu vme sse sse2 {flags}
"""


@pytest.mark.parametrize("flags, level", [
    ("ssse3 sse4_1 sse4_2 avx avx2 fma avx512f avx512bw amx_bf16 amx_tile amx_int8", "amx"),
    ("sse4_2 avx avx2 avx512f avx512_bf16", "avx512"),
    ("sse4_2 avx avx2 fma", "avx2"),
    ("sse4_2 avx", "avx"),
    ("ssse3", "baseline"),
])
def test_the_vector_level_is_the_best_extension_the_cpu_lists(tmp_path, monkeypatch, flags, level):
    (tmp_path / "cpuinfo").write_text(CPUINFO.format(flags=flags))
    monkeypatch.setattr(provenance, "CPUINFO", tmp_path / "cpuinfo")
    assert provenance.vector_level() == level
    assert provenance.cpu_model() == "Intel(R) Xeon(R) Processor"


def test_without_cpuinfo_the_model_falls_back_and_the_level_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "CPUINFO", tmp_path / "absent")
    assert provenance.vector_level() is None
    assert provenance.cpu_model()  # platform's word for it, never empty


def test_threads_are_bnexp_threads_when_set_else_the_usable_cores(monkeypatch):
    monkeypatch.setenv("BNEXP_THREADS", "3")
    assert provenance.hardware()["threads"] == 3
    monkeypatch.delenv("BNEXP_THREADS")
    assert provenance.hardware()["threads"] == len(os.sched_getaffinity(0))


def test_hardware_names_cpu_threads_and_the_tensorflow_that_carries_xla():
    from importlib import metadata

    record = provenance.hardware()
    assert record["cpu_model"] and isinstance(record["threads"], int) and record["threads"] >= 1
    assert record["tensorflow"] == metadata.version("tensorflow")
    assert record["xla"] == f"bundled with tensorflow {record['tensorflow']}"


def test_compare_says_once_when_runs_come_from_different_cpus(tmp_path):
    a = make_run(tmp_path, "a", summary={"hardware": SAPPHIRE})
    b = make_run(tmp_path, "b", seed=1, summary={"hardware": ZEN4})
    result = compare_cli(a, b)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "different hardware" in line]
    assert lines == ["Hardware: runs from different hardware (AMD EPYC 9R14 96-Core Processor (avx512); "
                     "Intel(R) Xeon(R) Platinum 8480+ (amx)): they agree within float32 tolerance, not bit for bit."]
    doc = json.loads(compare_cli(a, b, "--format", "json").stdout)
    assert "AMD EPYC" in doc["hardware_note"] and "Platinum" in doc["hardware_note"]
    assert "different hardware" in compare_cli(a, b, "--format", "markdown").stdout


@pytest.mark.parametrize("second", [SAPPHIRE, {**SAPPHIRE, "threads": 1}, None])
def test_compare_says_nothing_of_hardware_when_the_cpus_match_or_one_is_unrecorded(tmp_path, second):
    a = make_run(tmp_path, "a", summary={"hardware": SAPPHIRE})
    b = make_run(tmp_path, "b", seed=1, summary={"hardware": second})
    result = compare_cli(a, b)
    assert result.exit_code == 0, result.output
    assert "hardware" not in result.output.lower()
    assert json.loads(compare_cli(a, b, "--format", "json").stdout)["hardware_note"] is None


def test_a_claim_notes_runs_from_different_cpus_and_only_then():
    key_a, key_b = provenance.same_hardware_key(SAPPHIRE), provenance.same_hardware_key(ZEN4)
    mixed_better = {s: C.RunRecord(r.status, r.total_steps, r.metrics, hardware=key_b) for s, r in PLANTED.items()}
    same_than = {s: C.RunRecord(r.status, r.total_steps, r.metrics, hardware=key_a) for s, r in THAN.items()}
    same_better = {s: C.RunRecord(r.status, r.total_steps, r.metrics, hardware=key_a) for s, r in PLANTED.items()}
    [mixed] = judged([entry()], groups_of(same_than, mixed_better))
    [same] = judged([entry()], groups_of(same_than, same_better))
    assert [n for n in mixed["notes"] if "different hardware" in n] == [provenance.different_hardware_line([key_b, key_a])]
    assert not [n for n in same["notes"] if "hardware" in n]
    assert mixed["verdict"] == same["verdict"] == "holds"  # a note, not a change of verdict


def test_a_new_run_records_its_hardware(tmp_path):
    from typer.testing import CliRunner

    from bnexp.cli import app

    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(REPO / "configs" / "quickstart.yaml"), "--set", "train.steps=20", "--set",
                                      "train.eval_every=20", "--quiet", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    hardware = json.loads((run / "summary.json").read_text())["hardware"]
    assert hardware["cpu_model"] == provenance.cpu_model()
    assert hardware["threads"] == provenance.threads()
    assert hardware["vector_level"] == provenance.vector_level()
