# The README's two commands: `make demo` and `make test`. Each creates .venv and installs
# bnexp into it first (once; again when pyproject.toml changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MNIST ?= ../shared/data/mnist
# The claim file make claims runs again on fresh seeds 100-104.
REPLICATE ?= cooijmans2016_rnn_converges_faster

.PHONY: demo test test-long chromium bench reproduce report-screenshot study claims clean

demo: $(VENV)/.installed
	$(BIN)/bnexp train configs/quickstart.yaml

test: $(VENV)/.installed-test chromium
	$(BIN)/python -m pytest

# The tests marked long (pyproject's pytest settings leave them out of make test): kill -9 and
# Ray workers, full MNIST, extensions, whole-config conv and recurrent runs.
test-long: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m long

# The report's browser test (tests/test_report_browser.py) opens it in Debian's Chromium.
# Installed here where apt-get can (as root; `apt-get update` first only if the package
# is not found); anywhere else this never fails make, and the test skips, saying why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser test (apt-get)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; \
	  fi; \
	  command -v chromium >/dev/null 2>&1 || echo "chromium unavailable: the browser test will be skipped"; }

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.created
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $@ $(VENV)/.installed

# Issue 5's speed benchmark: bnexp train against Keras fit and a hand-written floor, and
# issue 15's sweeps (warm workers against one bnexp train per point); then issue 16's: `bnexp report` of 100 runs, its size and time (at most 5 MB and 3 s).
# 5 repetitions of the single-run arms, not the issues' 3: the ratios to the graph floor sit
# near their limits, and this machine's drift moves a 3-repetition median by 5-10%.
bench: $(VENV)/.installed
	$(BIN)/python bench/speed.py --data-dir $(MNIST) --reps 5 --sweeps small,large --json bench/out/speed.json
	$(BIN)/python bench/report_speed.py --json bench/out/report_speed.json

# Ioffe & Szegedy (2015), Figure 1: BN against no BN, 5 seeds each, 50,000 steps (about 15 min on 2 cores).
# Its runs are the claims pack's (runs/claims/ioffe2015_figure1): whichever target runs
# second skips the points the first one finished.
reproduce: $(VENV)/.installed
	$(BIN)/bnexp sweep configs/claims/ioffe2015_figure1.yaml --workers 2 --data-dir $(MNIST) --out runs/claims/ioffe2015_figure1
	$(BIN)/bnexp compare runs/claims/ioffe2015_figure1 --last 5 --threshold 0.95 --plot docs/ioffe2015.png
	$(BIN)/bnexp report runs/claims/ioffe2015_figure1 --last 5 --threshold 0.95 -o runs/ioffe2015-report.html

# docs/comparing.md's screenshot of the report of `make reproduce`'s sweep (run that first), in Chromium.
report-screenshot: $(VENV)/.installed chromium
	$(BIN)/bnexp report runs/claims/ioffe2015_figure1 --last 5 --threshold 0.95 -o runs/ioffe2015-report.html
	$(BIN)/python scripts/screenshot_report.py runs/ioffe2015-report.html docs/report.png --size 1200,2500

# The batch-size study: BN against LayerNorm and GroupNorm at batch sizes 2 to 600, 3 seeds.
study: $(VENV)/.installed
	$(BIN)/bnexp sweep configs/sweeps/batch_size_study.yaml --workers 2 --data-dir $(MNIST) --out runs/batch_size_study
	$(BIN)/bnexp compare runs/batch_size_study --format markdown

# The claims pack: every sweep file in configs/claims/, each into runs/claims/<file name>,
# then docs/claims.md and its figures from whatever the runs hold; and one claim file again
# on fresh seeds 100-104 (runs/claims-replicate/, docs/claims-replicate.md), a replication. A sweep that fails
# does not stop the others or the report (make still fails at the end); Ctrl-C stops all.
claims: $(VENV)/.installed
	@failed=0; for file in configs/claims/*.yaml; do \
	  $(BIN)/bnexp sweep $$file --workers 2 --data-dir $(MNIST) --out runs/claims/$$(basename $$file .yaml) || \
	    { code=$$?; [ $$code -lt 128 ] || exit $$code; failed=1; }; \
	done; \
	$(BIN)/bnexp sweep configs/claims/$(REPLICATE).yaml --seeds 100-104 --workers 2 --data-dir $(MNIST) \
	  --out runs/claims-replicate/$(REPLICATE) || { code=$$?; [ $$code -lt 128 ] || exit $$code; failed=1; }; \
	$(BIN)/bnexp claims-report runs/claims --out docs/claims.md || failed=1; \
	$(BIN)/bnexp claims-report runs/claims-replicate --out docs/claims-replicate.md || failed=1; \
	exit $$failed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
