"""Render a report HTML file to a PNG with headless Chromium, for docs/.

    python scripts/screenshot_report.py REPORT.html docs/report.png [--size 1200,3000]
    PYTHONPATH=. python scripts/screenshot_report.py --synthetic docs/report.png

`--synthetic` first writes the synthetic study of tests/report_synthetic.py (30 run
directories, in a temporary folder) and its report next to the PNG, and shoots that.
`make report-screenshot` shoots the report of `make reproduce`'s sweep for docs/comparing.md. Chromium (Debian's `chromium`, or $CHROMIUM) runs with
the flags that work on machines with no network: no background networking, no
component updates, a fresh profile.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--force-device-scale-factor=1")


def find_chromium() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html: Path, png: Path, size: str = "1200,3000", timeout: float = 60) -> Path:
    """Shoot `html` at the window `size` ("WIDTH,HEIGHT") into `png`; raises if Chromium fails."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("chromium not found: apt-get install -y chromium, or set $CHROMIUM")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bnexp-chromium-") as profile:
        command = [chromium, *HEADLESS, f"--user-data-dir={profile}", f"--window-size={size}",
                   f"--screenshot={png.resolve()}", html.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, help="the report to shoot")
    parser.add_argument("png", type=Path)
    parser.add_argument("--size", default="1200,3000", help="window WIDTH,HEIGHT in CSS pixels")
    parser.add_argument("--synthetic", action="store_true", help="shoot the synthetic 30-run study")
    args = parser.parse_args()
    html = args.html
    if args.synthetic:
        sys.path.insert(0, str(REPO / "tests"))
        from report_synthetic import synthetic_report

        from bnexp.report import write_report

        with tempfile.TemporaryDirectory(prefix="bnexp-study-") as study:
            data = synthetic_report(Path(study), learning_rates=(0.1, 1.0, 10.0), seeds=5)
        html = write_report(data, args.png.with_suffix(".html"))
    if html is None:
        parser.error("give a report HTML file or --synthetic")
    print(screenshot(html, args.png, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
