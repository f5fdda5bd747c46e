"""Size and speed of `bnexp report`'s renderer on a synthetic study of 100 runs (issue 16).

    PYTHONPATH=. .venv/bin/python bench/report_speed.py [--seeds 10] [--reps 3] [--json bench/out/report_speed.json]

Builds tests/report_synthetic.py's study (2 norm kinds × 5 learning rates × 10 seeds,
100 evaluations per run, diagnostics on one seed of each group), then times
`render_html` + writing the file, `--reps` times in this process, and prints the file
size and the median time. The first rep includes the imports it pays for (SciPy's t
distribution, matplotlib's tick locators); "cold" times a fresh interpreter doing
everything, imports included. The targets are ≤ 5 MB and ≤ 3 s; no TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from report_synthetic import synthetic_report  # noqa: E402

COLD = """
import sys, time
start = time.perf_counter()
from bnexp.report import write_report
write_report(__import__("json").load(open(sys.argv[1])), sys.argv[2])
assert "tensorflow" not in sys.modules
print(time.perf_counter() - start)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per grid point (10 points)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    data = synthetic_report(seeds=args.seeds)
    from bnexp.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            write_report(data, out)
            times.append(time.perf_counter() - start)
        size = out.stat().st_size
        source = Path(tmp) / "data.json"
        source.write_text(json.dumps(data))
        cold = subprocess.run([sys.executable, "-c", COLD, str(source), str(Path(tmp) / "cold.html")],
                              capture_output=True, text=True, check=True, cwd=REPO)
    result = {"runs": len(data["runs"]), "mb": round(size / 1e6, 3), "median_s": round(statistics.median(times), 3),
              "times_s": [round(t, 3) for t in times], "cold_s": round(float(cold.stdout), 3),
              "tensorflow_imported": "tensorflow" in sys.modules}
    print(json.dumps(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["mb"] <= 5 and result["median_s"] <= 3 and result["cold_s"] <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
