"""Build bnexp/sample/mnist_sample.npz: a fixed random 5,000/1,000 subset of real MNIST.

Run once from the project root: python scripts/make_sample.py ../shared/data/mnist
"""

import sys
from pathlib import Path

import numpy as np

from bnexp.data import SAMPLE_PATH, load

full = load("mnist", sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist")
rng = np.random.default_rng(0)
train = np.sort(rng.choice(len(full.x_train), 5000, replace=False))
test = np.sort(rng.choice(len(full.x_test), 1000, replace=False))
Path(SAMPLE_PATH).parent.mkdir(parents=True, exist_ok=True)
np.savez_compressed(
    SAMPLE_PATH,
    x_train=full.x_train[train], y_train=full.y_train[train],
    x_test=full.x_test[test], y_test=full.y_test[test],
)
print(f"wrote {SAMPLE_PATH}: {len(train)} train, {len(test)} test")
