"""The growth classes ``a + b * g(n)`` (g in 1, log n, n, n log n, n^2, n^3), fitted with the
power's weights (:func:`trainbench.stats.power.wls_line`) and ranked by BIC; the simplest class
within ``BIC_MARGIN`` of the best wins."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from trainbench.stats.power import wls_line

BIC_MARGIN = 2.0

# Growth classes, simplest first, with their basis function g(n).
CLASSES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "1": lambda n: np.zeros_like(n),
    "log n": np.log,
    "n": lambda n: n,
    "n log n": lambda n: n * np.log(n),
    "n^2": lambda n: n**2,
    "n^3": lambda n: n**3,
}
# The class a claim "grows as n**k" expects.
CLASS_FOR_EXPONENT = {0.0: "1", 1.0: "n", 2.0: "n^2", 3.0: "n^3"}


def bic(rss: float, m: int, params: int) -> float:
    """BIC of a fit with weighted residual sum ``rss`` over ``m`` sizes. Relative residuals
    below 1e-9 are rounding: they count as a perfect fit."""
    return m * math.log(max(rss / m, 1e-18)) + params * math.log(m)


def choose_class(sizes: Sequence[float], values: Sequence[float]) -> tuple[str, dict[str, float]]:
    """Rank the growth classes by BIC; return the simplest within BIC_MARGIN of the best."""
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(values, dtype=float)
    top = float(np.max(np.abs(y))) if len(y) else 1.0
    y = y / top if math.isfinite(top) and top > 0 else y  # relative errors: scale-free
    w = 1.0 / np.maximum(np.abs(y), 1e-300) ** 2
    m = len(n)
    scores: dict[str, float] = {}
    for name, g in CLASSES.items():
        x = g(n)
        if name == "1":
            a = (w * y).sum() / w.sum()
            rss = float((w * (y - a) ** 2).sum())
            p = 1
        else:
            _, _, rss_arr = wls_line(x, y, w)
            rss = float(rss_arr)
            p = 2
        scores[name] = bic(rss, m, p)
    best = min(scores.values())
    for name in CLASSES:  # simplest first
        if scores[name] <= best + BIC_MARGIN:
            return name, scores
    raise AssertionError("unreachable")

