"""The power ``a + b * n**k`` fitted by weighted least squares, and the log-log slope over the
top of the size range.

Weighted by relative error (weights 1/y**2), so a fixed overhead ``a`` at small sizes does
not bend the exponent and the largest sizes do not dominate. For fixed k the model is linear
in (a, b); k (in [0, K_MAX]) is found by a grid search refined around the best grid point.
Every function fits many rows at once where the bootstrap needs it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

K_MAX = 4.5
TOP_RANGE = 4.0


def wls_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted least squares of y on [1, x] along the last axis; b clipped at 0.

    ``x`` may carry leading batch axes (one row per candidate exponent).
    Returns (a, b, rss) with the batch shape.
    """
    sw = w.sum(axis=-1)
    mx = (w * x).sum(axis=-1) / sw
    my = (w * y).sum(axis=-1) / sw
    dx = x - mx[..., None]
    sxx = (w * dx * dx).sum(axis=-1)
    sxy = (w * dx * (y - my[..., None])).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(sxx > 0, sxy / sxx, 0.0)
    b = np.maximum(b, 0.0)
    a = my - b * mx
    resid = y - a[..., None] - b[..., None] * x
    rss = (w * resid * resid).sum(axis=-1)
    return a, b, rss


def fit_exponents(sizes: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Fit ``a + b * sizes**k`` to every row of ``values`` (shape B × N); return k (shape B).

    The batched form of :func:`fit_exponent`, used by the bootstrap.
    """
    n = np.asarray(sizes, dtype=float)
    Y = np.atleast_2d(np.asarray(values, dtype=float))
    out = np.empty(len(Y))
    for start in range(0, len(Y), 64):  # blocks keep the (B, K, N) arrays small
        out[start : start + 64] = _fit_block(n, Y[start : start + 64])[0]
    return out


def _fit_block(n: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Each row divided by its largest value: the fit weighs relative errors, so this changes
    # nothing but the range of the numbers (values near 1e-300 or 1e300 stay finite).
    unit = np.max(np.abs(Y), axis=-1, keepdims=True)
    unit = np.where(np.isfinite(unit) & (unit > 0), unit, 1.0)
    k, a, b = _fit_unit_block(n, Y / unit)
    return k, a * unit[:, 0], b * unit[:, 0]


def _fit_unit_block(n: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    W = 1.0 / np.maximum(np.abs(Y), 1e-300) ** 2
    ln = np.log(n)
    scale = (W * Y * Y).sum(axis=-1)  # about len(n): rss is compared relative to it
    rows = np.arange(len(Y))

    def scan(ks: np.ndarray) -> tuple[np.ndarray, ...]:
        """ks: (B, K) candidate exponents per row -> best index and the (B, K) profiles."""
        x = np.exp(ks[..., None] * ln)
        a, b, rss = wls_line(x, Y[:, None, :], W[:, None, :])
        # Differences below 1e-12 of the data's own size are rounding; ties (a
        # flat profile, exact data) go to the smallest k.
        i = np.argmin(np.round(rss / scale[:, None], 12), axis=-1)
        return i, a, b, rss

    ks = np.broadcast_to(np.linspace(0.0, K_MAX, 226), (len(Y), 226))  # steps of 0.02
    i, a, b, _ = scan(ks)
    flat = b[rows, i] <= 0  # best is a constant: no growth
    for step, points in ((0.02, 41), (0.001, 21), (0.0001, 21)):  # to 1e-5
        grid = np.linspace(-1.0, 1.0, points)
        centre = ks[rows, i]
        lo = np.clip(centre - step, 0.0, K_MAX)
        hi = np.clip(centre + step, 0.0, K_MAX)
        ks = lo[:, None] + (hi - lo)[:, None] * (grid + 1.0) / 2.0
        i, a, b, rss = scan(ks)
    k = ks[rows, i]
    a_best, b_best = a[rows, i], b[rows, i]
    # A parabolic step to the profile's minimum between grid points.
    inner = (i > 0) & (i < ks.shape[1] - 1)
    im, ip = np.clip(i - 1, 0, None), np.clip(i + 1, None, ks.shape[1] - 1)
    r0, r1, r2 = rss[rows, im], rss[rows, i], rss[rows, ip]
    curv = r0 - 2 * r1 + r2
    h = ks[rows, ip] - k
    with np.errstate(divide="ignore", invalid="ignore"):
        k_star = np.where(inner & (curv > 0), k + 0.5 * h * (r0 - r2) / curv, k)
    k_star = np.clip(np.nan_to_num(k_star, nan=0.0), 0.0, K_MAX)
    _, a2, b2, rss2 = scan(k_star[:, None])
    better = (k_star != k) & (rss2[:, 0] <= r1) & (b2[:, 0] > 0)
    k = np.where(better, k_star, k)
    a_best = np.where(better, a2[:, 0], a_best)
    b_best = np.where(better, b2[:, 0], b_best)
    k = np.where(flat, 0.0, k)
    b_best = np.where(flat, 0.0, b_best)
    return k, a_best, b_best



def top_slopes(sizes: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Slope of log(value) on log(size) over the top ``TOP_RANGE`` of the sizes (at least
    three), for every row of ``values`` (shape B × N)."""
    n = np.asarray(sizes, dtype=float)
    first = max(min(int(np.searchsorted(n, n[-1] / TOP_RANGE)), len(n) - 3), 0)
    x = np.log(n[first:])
    y = np.log(np.atleast_2d(np.asarray(values, dtype=float))[:, first:])
    dx = x - x.mean()
    return ((y - y.mean(axis=1, keepdims=True)) * dx).sum(axis=1) / (dx * dx).sum()


def fit_exponent(sizes: Sequence[float], values: Sequence[float]) -> tuple[float, float, float]:
    """Fit ``values ≈ a + b * sizes**k``; return (k, a, b).

    Weighted by relative error. A metric that does not grow gets k = 0.
    """
    n = np.asarray(sizes, dtype=float)
    k, a, b = _fit_block(n, np.asarray(values, dtype=float)[None, :])
    return float(k[0]), float(a[0]), float(b[0])
