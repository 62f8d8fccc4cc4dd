"""Growth order of a metric against a size: exponent, interval, class (:func:`fit_order`).

No torch in here: numbers in, dataclasses out, so every rule can be tested on
synthetic data of known order.

* Exponent: least squares fit of ``y = a + b * n**k`` (a free, b >= 0, k in
  [0, K_MAX]), weighted by relative error (:mod:`trainbench.stats.power`).
* Interval: percentile bootstrap. Times taken in passes (every repeat labelled
  with its pass) are fitted with the passes' drift taken out and bootstrapped over
  whole passes (:mod:`trainbench.stats.drift`). Otherwise, where each size has several raw
  repeats the repeats are resampled within each size (median per size, then refit);
  where a size has fewer than three, the fit's relative residuals are resampled.
  Exact counts (every repeat identical, zero residual) give a zero-width
  interval.
* Class: ``a + b * g(n)`` for g in 1, log n, n, n log n, n^2, n^3, ranked by BIC
  (:mod:`trainbench.stats.classes`); an exact count's class is the degree of the
  polynomial it follows (:mod:`trainbench.stats.exact`).
* Window: the order is asymptotic, so the fit uses the top ``WINDOW`` (16x)
  of the size range, where fixed overheads and the small sizes' cache effects
  no longer dominate; it is widened to take in at least ``WINDOW_MIN_SIZES``
  sizes where the grid is coarse.
* Verdict: see :func:`trainbench.stats.judge.judge`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import ParamSpec, TypeVar

import numpy as np

from trainbench.stats import drift
from trainbench.stats.classes import CLASS_FOR_EXPONENT, bic, choose_class
from trainbench.stats.drift import pass_matrix
from trainbench.stats.exact import exact_polynomial
from trainbench.stats.power import K_MAX, fit_exponent, fit_exponents, top_slopes

LEVEL = 0.95
WINDOW = 16.0
WINDOW_MIN_SIZES = 8

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class OrderFit:
    """The fitted growth order of one metric."""

    exponent: float
    ci_low: float
    ci_high: float
    best_class: str
    n_sizes: int
    size_range: float  # largest fitted size over smallest fitted size
    fit_from: float  # smallest size inside the fit window
    exact: bool  # no spread between repeats and no residual: a count
    rel_spread: float  # largest IQR/median over the sizes (0 for counts)
    # Log-log slope over the top TOP_RANGE (4x) of the range and its interval:
    # where the growth is heading. None where not computed.
    top_slope: float | None = None
    top_ci_low: float | None = None
    top_ci_high: float | None = None
    # For a count (identical repeats): the degree of the polynomial in n that the
    # values follow exactly over the fitted sizes (None: no polynomial of degree
    # <= 3 does, or the data are noisy).
    poly_degree: int | None = None
    # ... and that polynomial's coefficients in n, the lowest power first
    poly_coefficients: tuple[float, ...] | None = None
    # The power's k reached the fitter's bound K_MAX: ``exponent`` and its interval are then
    # the log-log slope over the top of the range, not the power's k.
    pinned: bool = False
    # The class BIC chose over the window (``best_class`` unless an exact polynomial's
    # degree set it): what a time that tracks this count is compared with.
    bic_class: str | None = None
    # BIC of each growth class a + b·g(n) and of the power a + b·n^k over the fitted sizes
    # (lower is better): whether a logarithmic class explains the data as well as a power.
    class_bic: dict[str, float] | None = None
    power_bic: float | None = None

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        if self.poly_coefficients is not None:  # as JSON keeps it
            out["poly_coefficients"] = list(self.poly_coefficients)
        return out


def _as_samples(
    values: Sequence[float] | Sequence[Sequence[float]],
    rounds: Sequence[Sequence[int]] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """The finite repeats of every size and, where ``rounds`` is given, their round labels."""
    if rounds is not None and len(rounds) != len(values):
        raise ValueError("rounds and values differ in length")
    samples, labels = [], []
    for i, v in enumerate(values):
        arr = np.atleast_1d(np.asarray(v, dtype=float)).ravel()
        finite = np.isfinite(arr)
        samples.append(arr[finite])
        if rounds is not None:
            lab = np.atleast_1d(np.asarray(rounds[i], dtype=int)).ravel()
            if len(lab) != len(arr):
                raise ValueError("every repeat needs a round label")
            labels.append(lab[finite])
    return samples, (labels if rounds is not None else None)


def _medians(samples: list[np.ndarray]) -> np.ndarray:
    return np.array([np.median(s) for s in samples])


def window_start(sizes: Sequence[float], window: float = WINDOW) -> int:
    """Index of the smallest of the ascending ``sizes`` that the fit window holds: those
    within ``window`` of the largest, widened to at least ``WINDOW_MIN_SIZES`` sizes."""
    n = np.asarray(sizes, dtype=float)
    if not len(n):
        return 0
    first = int(np.searchsorted(n, n[-1] / window))
    return min(first, max(len(n) - WINDOW_MIN_SIZES, 0))


def _quiet_numpy(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with numpy's floating-point warnings kept inside: a zero or a non-finite value
    in the data is handled there (dropped, or read as no growth), and a warning about it
    would only reach the user as noise."""

    @functools.wraps(fn)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> R:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            return fn(*args, **kwargs)

    return quiet


@_quiet_numpy
def fit_order(
    sizes: Sequence[float],
    values: Sequence[float] | Sequence[Sequence[float]],
    *,
    n_boot: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
    window: float | None = WINDOW,
    rounds: Sequence[Sequence[int]] | None = None,
) -> OrderFit:
    """Fit the growth order of ``values`` (one number or a list of raw repeats per size).

    Sizes must be positive; non-finite repeats are dropped and sizes left with
    no repeat are skipped. Only sizes within ``window`` of the largest are
    fitted (None: all). ``rounds`` labels every repeat with the pass (a visit of
    every size, close in time) that took it: each size's value is then its time with
    what a pass shares taken out (a slower moment of the machine is slower at every
    size), and the bootstrap draws whole passes (:mod:`trainbench.stats.drift`). Raises ValueError
    with fewer than three usable sizes.
    """
    n_all = np.asarray(sizes, dtype=float)
    if len(values) != len(n_all):
        raise ValueError("sizes and values differ in length")
    samples_all, labels_all = _as_samples(values, rounds)
    keep = [i for i, s in enumerate(samples_all) if len(s) and n_all[i] > 0 and np.all(s > 0)]
    if len(keep) < 3:
        raise ValueError("need at least three sizes with positive values to fit an order")
    order = sorted(keep, key=lambda i: n_all[i])
    n = n_all[order]
    samples = [samples_all[i] for i in order]
    labels = [labels_all[i] for i in order] if labels_all is not None else None
    if window is not None:
        first = window_start(n, window)
        n, samples = n[first:], samples[first:]
        labels = labels[first:] if labels is not None else None

    passes = labels is not None and len({int(r) for lab in labels for r in lab}) >= 2
    logs = pass_matrix(samples, labels) if passes and labels is not None else None
    # Timed in passes: each size's time with the passes' drift taken out (trainbench.stats.drift).
    y = drift.drift_free(logs) if logs is not None else _medians(samples)
    k, a, b = fit_exponent(n, y)
    best_class, class_bic = choose_class(n, y)
    fitted = a + b * n**k
    rel_resid = y / np.where(fitted > 0, fitted, np.nan) - 1.0
    power_rss = float(np.nansum(((y - fitted) / np.maximum(np.abs(y), 1e-300)) ** 2))
    power_bic = bic(power_rss, len(n), 3)
    if logs is not None:  # what scatters once the passes' drift is taken out
        mu, delta = drift.polish(logs)
        spreads = list(drift.residual_spread(logs, mu, delta))
    else:
        spreads = [
            (np.percentile(s, 75) - np.percentile(s, 25)) / np.median(s) if len(s) > 1 else 0.0
            for s in samples
        ]
    rel_spread = float(max(spreads))
    repeats_identical = all(np.all(s == s[0]) for s in samples)
    # Three parameters pass through any three points: exactness needs a fourth.
    exact = repeats_identical and len(n) > 3 and bool(np.nanmax(np.abs(rel_resid)) < 1e-6)

    rng = np.random.default_rng(seed)
    if exact or n_boot <= 0:
        y_star = y[None, :]
    elif logs is not None:
        y_star = drift.bootstrap(logs, n_boot, rng)
    elif min(len(s) for s in samples) >= 3:
        # Resample each size's repeats (with replacement), n_boot times at once.
        y_star = np.stack(
            [np.median(s[rng.integers(0, len(s), size=(n_boot, len(s)))], axis=1) for s in samples],
            axis=1,
        )
    else:
        res = np.nan_to_num(rel_resid)
        y_star = fitted * (1.0 + res[rng.integers(0, len(res), size=(n_boot, len(res)))])
        y_star = np.maximum(y_star, 1e-300)
    boot = np.array([k]) if len(y_star) == 1 else fit_exponents(n, y_star)
    alpha = (1.0 - level) / 2.0
    # Point estimates always lie inside their intervals.
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    lo, hi = min(float(lo), k), max(float(hi), k)
    pinned = False  # the power's k reached K_MAX (reported: the slope at the top instead)
    found = exact_polynomial(n, y) if repeats_identical else None
    poly, coefficients = found if found is not None else (None, None)
    bic_class = best_class
    if poly is not None:
        # an exact polynomial's class is its degree's, whatever BIC makes of a short range
        best_class = CLASS_FOR_EXPONENT.get(float(poly), best_class)
    top = float(top_slopes(n, y)[0])
    top_lo, top_hi = np.quantile(top_slopes(n, y_star), [alpha, 1.0 - alpha])
    top_lo, top_hi = min(float(top_lo), top), max(float(top_hi), top)
    if not exact and poly is None:
        if best_class == "1" and top_lo <= 1.0:
            # A constant explains the data best: a + b·n^k would reach for any k (up to
            # K_MAX) that bends through the noise of the top point. The growth is at most
            # what the top of the range shows.
            k, lo, hi = 0.0, 0.0, max(top_hi, 0.0)
        elif k >= K_MAX - 1e-9 or best_class == "1":
            # Pinned at the bound: the power only bends through the top point (a flat
            # curve with one high point), or the growth is steeper than any power the
            # fitter tries; either way K_MAX is a bound, not a slope. What is measured is
            # the log-log slope at the top of the range.
            # (Or a constant "explains" it best while the top clearly grows: a growth
            # steeper than every class, n^6 say, which no class fits either.)
            pinned = k >= K_MAX - 1e-9
            k, lo, hi = max(top, 0.0), max(top_lo, 0.0), max(top_hi, 0.0)
    return OrderFit(
        exponent=round(k, 4),
        ci_low=round(lo, 4),
        ci_high=round(hi, 4),
        best_class=best_class,
        n_sizes=len(n),
        size_range=float(n[-1] / n[0]),
        fit_from=float(n[0]),
        exact=exact,
        rel_spread=round(rel_spread, 4),
        top_slope=round(top, 4),
        top_ci_low=round(top_lo, 4),
        top_ci_high=round(top_hi, 4),
        poly_degree=poly,
        poly_coefficients=coefficients,
        pinned=pinned,
        bic_class=bic_class,
        class_bic={name: round(v, 3) for name, v in class_bic.items()},
        power_bic=round(power_bic, 3),
    )

