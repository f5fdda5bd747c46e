"""The run directory's formats: run directories written by bnexp 0.1.0 (tests/fixtures) still
evaluate, compare and resume; summaries keep keys of other versions; metrics files of an
older format read as None in the columns they lack."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp import compare, rundir
from bnexp.cli import app
from bnexp.errors import RunFileError
from bnexp.rundir import Summary, metrics, provenance

RELEASE = Path(__file__).resolve().parent / "fixtures" / "release-0.1.0"


# The fixtures were written by bnexp 0.1.0 on a machine that did not record its CPU. XLA
# compiles for the CPU it runs on (AVX2, AVX-512, AMX) and rounds float32 differently on
# each, so on another CPU the release's numbers come back within rounding, not bit for bit:
# losses agree to 1e-6 relative (measured: 1e-9 for an eval, 2e-8 after 200 resumed steps);
# accuracies exactly, as a flip of one of the 1,000 test predictions would need a logit
# margin below that rounding. Bit identity is demanded only where the fixture records this
# very machine (CPU, vector level, threads, TensorFlow); test_train proves it between two
# runs made here.
LOSS_RTOL = 1e-6


def made_here(summary: dict) -> bool:
    """Whether the run recording `summary` was made on hardware exactly like this machine's."""
    recorded, here = summary.get("hardware"), provenance.hardware()
    return (isinstance(recorded, dict) and provenance.same_hardware_key(recorded) == provenance.same_hardware_key(here)
            and all(recorded.get(k) == here[k] for k in ("threads", "tensorflow")))


def assert_same_result(actual: dict, expected: dict, bit_exact: bool) -> None:
    """Metric dicts (rows or summaries) equal: bit for bit, or accuracies exactly and losses to LOSS_RTOL."""
    if bit_exact:
        assert actual == expected
        return
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if "loss" in key and value is not None:
            assert actual[key] == pytest.approx(value, rel=LOSS_RTOL, abs=0), key
        else:
            assert actual[key] == value, key


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(RELEASE / name, tmp_path / name))


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def old_summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def rows_without_timing(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rundir.RunDir(run).read_metrics()]


@pytest.mark.parametrize("name", ["completed", "interrupted"])
def test_eval_of_a_release_run_reproduces_its_summary(name, tmp_path):
    run = copy(name, tmp_path)
    result = cli("eval", run, "--json")
    assert result.exit_code == 0, result.output
    record, release = json.loads(result.stdout), old_summary(run)
    assert_same_result({"accuracy": record["accuracy"], "loss": record["loss"]},
                       {"accuracy": release["test_accuracy"], "loss": release["test_loss"]}, made_here(release))
    assert record["step"] == release["steps"]


def test_release_runs_load_with_typed_rows_and_their_summary(tmp_path):
    runs = compare.load_runs([str(copy("completed", tmp_path)), str(copy("interrupted", tmp_path))])
    assert [r.status for r in runs] == ["completed", "interrupted"]
    assert [m["step"] for m in runs[0].metrics] == [100, 200, 300, 400]
    assert all(isinstance(m["step"], int) and isinstance(m["test_accuracy"], float) for m in runs[0].metrics)
    assert runs[1].summary.signal == "SIGTERM" and runs[1].summary.steps == 200
    assert runs[0].summary.test_accuracy == runs[0].metrics[-1]["test_accuracy"] == old_summary(runs[0].path)["test_accuracy"]
    diagnosed = rundir.RunDir(runs[0].path)
    assert [r["step"] for r in diagnosed.read_diagnostics("bn")] == [100, 200, 300, 400]
    assert {r["unit"] for r in diagnosed.read_diagnostics("activations")} == {0, 1}


def test_compare_accepts_release_runs_and_plots_their_diagnostics(tmp_path):
    completed, interrupted = copy("completed", tmp_path), copy("interrupted", tmp_path)
    result = cli("compare", completed, interrupted, "--format", "json", "--plot", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["status"] for r in doc["runs"]] == ["completed", "interrupted"]
    assert doc["runs"][0]["values"]["final_test_accuracy"] == old_summary(completed)["test_accuracy"]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_a_release_run_to_the_uninterrupted_result(tmp_path):
    """The release's interrupted run, resumed by this code, ends as the release's own
    uninterrupted run did: same config and seed, so bit for bit the same metrics."""
    run = copy("interrupted", tmp_path)
    result = cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    summary = rundir.RunDir(run).read_summary()
    assert (summary.status, summary.steps, summary.sessions, summary.signal) == ("completed", 400, 2, None)
    resumed, release = rows_without_timing(run), rows_without_timing(RELEASE / "completed")
    bit_exact = made_here(old_summary(RELEASE / "interrupted"))
    subset = ("train_set_loss", "train_set_accuracy")  # measured only by the sessions of this version
    assert len(resumed) == len(release)
    for ours, theirs in zip(resumed, release):
        assert_same_result({k: v for k, v in ours.items() if k not in subset},
                           {k: v for k, v in theirs.items() if k not in subset}, bit_exact)
    assert [r["step"] for r in resumed if r["train_set_accuracy"] is not None] == [300, 400]
    assert_same_result({"accuracy": summary.test_accuracy, "loss": summary.test_loss},
                       {"accuracy": old_summary(RELEASE / "completed")["test_accuracy"],
                        "loss": old_summary(RELEASE / "completed")["test_loss"]}, bit_exact)


def test_checkpoint_keys_are_model_variable_paths_with_logits_last(tmp_path):
    saved = rundir.RunDir(copy("completed", tmp_path)).load_checkpoint()
    model_keys = sorted(k for k in saved.arrays if k.startswith("model/"))
    assert "model/mlp/logits/kernel" in model_keys and "model/mlp/logits/bias" in model_keys
    assert "model/mlp/dense_0/kernel" in model_keys and "model/mlp/norm_0/moving_mean" in model_keys
    assert saved.step == 400


def test_summary_keeps_keys_of_other_versions_and_defaults_missing_ones(tmp_path):
    run = rundir.RunDir(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed", "test_accuracy": 0.9, "from_the_future": [1, 2]}))
    summary = run.read_summary()
    assert (summary.status, summary.test_accuracy, summary.steps) == ("completed", 0.9, None)
    assert summary.extra == {"from_the_future": [1, 2]}
    run.write_summary(dataclasses.replace(summary, steps=5))
    again = json.loads((tmp_path / "summary.json").read_text())
    assert again["from_the_future"] == [1, 2] and again["steps"] == 5 and again["test_accuracy"] == 0.9


def test_summary_with_a_number_that_is_not_one_is_corrupt(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed", "best_step": "ten"}))
    with pytest.raises(RunFileError, match="summary.json is corrupt: best_step"):
        rundir.RunDir(tmp_path).read_summary()


def test_metrics_of_an_older_format_read_none_in_the_columns_they_lack(tmp_path, monkeypatch):
    """As when the next version adds a column: today's files become its older format."""
    old_header = ",".join(metrics.NAMES)
    assert old_header == "step,epoch,train_loss,train_accuracy,train_set_loss,train_set_accuracy,test_loss," \
                         "test_accuracy,learning_rate,elapsed_s"
    (tmp_path / "metrics.csv").write_text(old_header + "\n100,1.0,0.5,0.8,0.3,0.9,0.4,0.85,0.1,2.5\n")
    newest = max(c.since for c in metrics.COLUMNS)
    newer = metrics.COLUMNS + (metrics.Column("next_column", float, since=newest + 1),)
    monkeypatch.setattr(metrics, "COLUMNS", newer)
    monkeypatch.setattr(metrics, "NAMES", tuple(c.name for c in newer))
    monkeypatch.setattr(metrics, "HEADERS", metrics.known_headers(newer))
    run = rundir.RunDir(tmp_path)
    [row] = run.read_metrics()
    assert row["step"] == 100 and row["test_accuracy"] == 0.85 and row["next_column"] is None
    run.rewrite_metrics([row])  # as resume does: the current format, the missing cell empty
    assert (tmp_path / "metrics.csv").read_text() == old_header + ",next_column\n100,1.0,0.5,0.8,0.3,0.9,0.4,0.85,0.1,2.5,\n"
    assert run.read_metrics() == [row]


def test_release_runs_read_none_for_the_training_subset(tmp_path):
    completed, interrupted = copy("completed", tmp_path), copy("interrupted", tmp_path)
    rows = rundir.RunDir(completed).read_metrics()
    assert [(r["train_set_accuracy"], r["train_set_loss"]) for r in rows] == [(None, None)] * 4
    summary = rundir.RunDir(completed).read_summary()
    assert (summary.train_set_accuracy, summary.generalization_gap) == (None, None)
    comp = compare.compare(compare.load_runs([str(completed), str(interrupted)]))
    assert comp.rows[0].values["final_train_set_accuracy"] is None and comp.rows[0].values["generalization_gap"] is None
    assert comp.groups[0].test_set == "mnist-sample (1,000 test examples)"


def test_a_summary_status_reads_as_the_enum_and_another_versions_word_as_written(tmp_path):
    from bnexp.errors import RunFileError
    from bnexp.rundir import Summary
    from bnexp.status import Status

    path = tmp_path / "summary.json"
    assert Summary.from_json({"status": "completed"}, path).status is Status.COMPLETED
    assert Summary.from_json({"status": "paused"}, path).status == "paused"  # a newer bnexp's word
    assert Summary.from_json({"status": None}, path).status is None
    with pytest.raises(RunFileError, match="status is 5, expected a str or null"):
        Summary.from_json({"status": 5}, path)
