"""Claims: a published result written next to its experiment, judged over seeds.

A sweep file's `expect:` list holds claims such as "BN reaches 95% test accuracy in
fewer steps" (Ioffe & Szegedy 2015, Figure 1). Each names a metric, the grid point of
each side (`better`, `than`) and a direction; its verdict is `holds`, `contradicted` or
`inconclusive`, from bnexp.stats' tests over the seeds, chosen by the metric's kind and
the runs (t-tests; exact rank tests when a run diverged or failed to learn, the worst
outcome, or when a time to event is censored; Fisher's exact test for the 0/1 metrics
`diverged` and `failed`), with the claims of one file as one Holm family.
What a metric is, and how `last` aggregates it, is bnexp.metrics' alone.

One module a job:

- `schema`: the `expect:` entry (`Expect`), its checks before anything trains, `--seeds`;
- `verdicts`: one run's value of a claim's metric, the verdicts, `--check`'s exit code;
- `register`: the register a sweep directory keeps of every claim it has seen;
- `report`: `bnexp claims-report`'s Markdown (not imported here: it needs compare and
  matplotlib).

None of them reads a file but the report: bnexp.sweep turns run directories into
`RunRecord`s. No TensorFlow here, and SciPy only once claims are judged.
"""

from bnexp.claims.schema import (
    AVERAGED, BINARY, DIAGNOSTIC_METRICS, MAX_SEED, MAX_SEEDS, METRICS, MIN_SEEDS, RECORDED_BY, ROW_KEYS, RUN_METRICS,
    Expect, check_recorded, diagnostics_file, diagnostics_kind, parse_seeds, validate_claims,
)
from bnexp.claims.verdicts import (
    MetricValue, RunRecord, check_exit_code, design_warnings, judge_entries, metric_kind, run_metric,
)

__all__ = [
    "AVERAGED", "BINARY", "DIAGNOSTIC_METRICS", "MAX_SEED", "MAX_SEEDS", "METRICS", "MIN_SEEDS", "RECORDED_BY",
    "ROW_KEYS", "RUN_METRICS", "Expect", "MetricValue", "RunRecord", "check_exit_code", "check_recorded",
    "design_warnings", "diagnostics_file", "diagnostics_kind", "judge_entries", "metric_kind", "parse_seeds",
    "run_metric", "validate_claims",
]
