"""Size and speed of `bnexp report` on a study of 100 runs (issue 16: at most 5 MB, at most 3 s, no TensorFlow).

    PYTHONPATH=. .venv/bin/python bench/report_speed.py [--seeds 10] [--reps 3] [--json bench/out/report_speed.json]

Writes tests/report_synthetic.py's study as run directories, through bnexp.rundir and
bnexp.sweep as `bnexp sweep` writes them: a sweep of 2 norm kinds × 5 learning rates ×
10 seeds, 100 evaluations per run, diagnostics on one seed per grid point, and claims.
Then runs the real command, `python -m bnexp report STUDY -o FILE.html --last 5
--threshold 0.95`, `--reps` times, each in a fresh interpreter, and reports the median
wall time from start to exit (imports included), the file's size, and where the time
goes in one process (reading and comparing the runs, rendering the page). For scale,
`bnexp compare STUDY --format json` with the same options is timed alternately with
it: the report reads what compare reads (SciPy's import and 100 YAML configs are most of
both). Each command's CPU time (user + system) is given beside its wall time: on this
shared 2-core machine other work stretches the wall time, and the CPU time says what
the command costs on a quiet one. The targets are checked on the report's median wall time; the exit status is 1 when one
is missed or TensorFlow was imported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from bnexp.rundir import find_runs  # noqa: E402
from report_synthetic import write_study  # noqa: E402

OPTIONS = ["--last", "5", "--threshold", "0.95"]
# One process: the same command's two halves timed apart, and whether TensorFlow came in.
PHASES = """
import json, sys, time
start = time.perf_counter()
from bnexp.report_data import report_data
from bnexp.report import write_report
imported = time.perf_counter()
data = report_data([sys.argv[1]], threshold=0.95, last=5)
read = time.perf_counter()
write_report(data, sys.argv[2])
done = time.perf_counter()
print(json.dumps({"imports_s": imported - start, "read_and_compare_s": read - imported, "render_and_write_s": done - read,
                  "tensorflow_imported": any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per grid point (10 points)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        study = write_study(Path(tmp) / "study", seeds=args.seeds)
        out = Path(tmp) / "report.html"
        commands = {"report": ["report", str(study), "-o", str(out), *OPTIONS],
                     "compare": ["compare", str(study), "--format", "json", *OPTIONS]}
        times = {name: [] for name in commands}
        cpu = {name: [] for name in commands}
        for _ in range(args.reps):
            for name, command in commands.items():
                start, used = time.perf_counter(), children_cpu()
                subprocess.run([sys.executable, "-m", "bnexp", *command], check=True, capture_output=True, env=env, cwd=tmp)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(children_cpu() - used)
        size = out.stat().st_size
        runs = len(find_runs([study]))
        phases = json.loads(subprocess.run([sys.executable, "-c", PHASES, str(study), str(Path(tmp) / "phases.html")],
                                           check=True, capture_output=True, text=True, env=env, cwd=tmp).stdout)
    result = {"runs": runs, "mb": round(size / 1e6, 3), "median_s": round(statistics.median(times["report"]), 3),
              "times_s": [round(t, 3) for t in times["report"]],
              "cpu_s": round(statistics.median(cpu["report"]), 3),
              "compare_median_s": round(statistics.median(times["compare"]), 3),
              "compare_cpu_s": round(statistics.median(cpu["compare"]), 3), "load_average": round(os.getloadavg()[0], 2),
              **{k: round(v, 3) if isinstance(v, float) else v for k, v in phases.items()}}
    print(json.dumps(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["mb"] <= 5 and result["median_s"] <= 3 and not result["tensorflow_imported"] else 1


def children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
