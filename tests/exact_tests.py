"""Exact tests written out by enumeration: the independent references the statistics tests
check bnexp.stats' SciPy calls against. Tiny n only."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats as sps


def mann_whitney_by_enumeration(a, b) -> float:
    """Two-sided exact Mann–Whitney p by listing every split of the pooled values (ties 1/2)."""
    pooled, n_b = list(a) + list(b), len(b)

    def u(chosen):
        rest = [v for i, v in enumerate(pooled) if i not in chosen]
        return sum((pooled[i] > r) + 0.5 * (pooled[i] == r) for i in chosen for r in rest)

    splits = list(itertools.combinations(range(len(pooled)), n_b))
    centre, observed = len(a) * n_b / 2, u(set(range(len(a), len(pooled))))
    return sum(abs(u(set(c)) - centre) >= abs(observed - centre) - 1e-9 for c in splits) / len(splits)


def mann_whitney_by_counts(a, b) -> float:
    """The same exact p for data with few distinct values: list how many runs of each value
    fall in b (multivariate hypergeometric weights), not every split of the runs."""
    values, counts = np.unique(list(a) + list(b), return_counts=True)
    n_b, total = len(b), math.comb(len(a) + len(b), len(b))

    def u(taken):
        rest = counts - np.array(taken)
        return sum(t * (r_count * (v > w) + 0.5 * r_count * (v == w))
                   for t, v in zip(taken, values) for r_count, w in zip(rest, values))

    observed = u([list(b).count(v) for v in values])
    centre = len(a) * n_b / 2
    p = 0.0
    for taken in itertools.product(*(range(c + 1) for c in counts)):
        if sum(taken) == n_b and abs(u(taken) - centre) >= abs(observed - centre) - 1e-9:
            p += math.prod(math.comb(c, t) for c, t in zip(counts, taken)) / total
    return p


def wilcoxon_by_enumeration(d) -> float:
    """Two-sided exact signed-rank p by listing every sign flip (zeros dropped, ties averaged)."""
    d = [x for x in d if x != 0]
    ranks = sps.rankdata(np.abs(d))
    centre, observed = ranks.sum() / 2, sum(r for r, x in zip(ranks, d) if x > 0)
    flips = list(itertools.product([0, 1], repeat=len(d)))
    return sum(abs(sum(r for r, f in zip(ranks, fl) if f) - centre) >= abs(observed - centre) - 1e-9
               for fl in flips) / len(flips)
