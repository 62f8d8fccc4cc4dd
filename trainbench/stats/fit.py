"""Growth order of a metric against a size: exponent, interval, class, verdict.

No torch in here: numbers in, dataclasses out, so every rule can be tested on
synthetic data of known order.

* Exponent: least squares fit of ``y = a + b * n**k`` (a free, b >= 0, k in
  [0, K_MAX]), weighted by relative error (weights 1/y**2), so a fixed overhead
  ``a`` at small sizes does not bend the exponent and the largest sizes do not
  dominate. For fixed k the model is linear in (a, b); k is found by a grid
  search refined around the best grid point.
* Interval: percentile bootstrap. Times taken in passes (every repeat labelled
  with its pass) are fitted with the passes' drift taken out and bootstrapped over
  whole passes (:mod:`trainbench.stats.drift`). Otherwise, where each size has several raw
  repeats the repeats are resampled within each size (median per size, then refit);
  where a size has fewer than three, the fit's relative residuals are resampled.
  Exact counts (every repeat identical, zero residual) give a zero-width
  interval.
* Class: ``a + b * g(n)`` for g in 1, log n, n, n log n, n^2, n^3, fitted with
  the same weights and ranked by BIC; the simplest class within ``BIC_MARGIN``
  of the best wins.
* Window: the order is asymptotic, so the fit uses the top ``WINDOW`` (16x)
  of the size range, where fixed overheads and the small sizes' cache effects
  no longer dominate; it is widened to take in at least ``WINDOW_MIN_SIZES``
  sizes where the grid is coarse.
* Verdict: see :func:`judge`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import ParamSpec, TypeVar

import numpy as np

from trainbench.core.vocabulary import CONFIRMED, INCONCLUSIVE, REFUTED
from trainbench.stats import drift
from trainbench.stats.drift import pass_matrix

K_MAX = 4.5
BIC_MARGIN = 2.0
LEVEL = 0.95
MIN_SIZES = 4
MIN_RANGE = 8.0
WINDOW = 16.0
WINDOW_MIN_SIZES = 8
TOP_RANGE = 4.0

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
# How far above its power a claimed logarithmic class (log n, n log n) may read.
LOG_BAND = 0.5

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


@dataclass(frozen=True)
class Verdict:
    verdict: str  # confirmed | refuted | inconclusive
    reason: str
    by_degree: bool = False  # judged on an exact count's polynomial degree


# --------------------------------------------------------------------------- fitting


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


def _wls_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
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
        a, b, rss = _wls_line(x, Y[:, None, :], W[:, None, :])
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


def exact_polynomial(
    sizes: Sequence[float], values: Sequence[float], max_degree: int = 3
) -> tuple[int, tuple[float, ...]] | None:
    """The smallest degree d <= max_degree of a polynomial in n with a positive leading
    coefficient that passes through every (size, value) to 1e-9 relative, with at least
    one point more than it needs, and its coefficients in n (lowest power first; whole
    numbers where they are within 1e-6 of one); None if there is none.

    A pure power a + b·n^k cannot describe a count such as αn + βn² over a short
    range (its fitted k lies between 1 and 2); the polynomial's degree is its order.
    """
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(values, dtype=float)
    if not (len(n) and np.all(np.isfinite(y)) and np.all(y > 0)):
        return None
    scale = n.max()
    x = n / scale  # scaled for conditioning
    for degree in range(max_degree + 1):
        if len(n) < degree + 2:
            return None
        coef = np.polynomial.polynomial.polyfit(x, y, degree)
        resid = np.polynomial.polynomial.polyval(x, coef) - y
        if np.max(np.abs(resid) / y) < 1e-9:
            if degree and coef[-1] <= 0:
                return None
            terms = []
            for j, c in enumerate(coef):
                c = float(c) / scale**j
                if np.max(np.abs(c) * n**j / y) < 1e-9:  # what rounding leaves of a zero term
                    c = 0.0
                whole = round(c)
                near = abs(c - whole) <= 1e-6 * max(abs(c), 1.0)
                terms.append(float(whole) if near else float(f"{c:.9g}"))
            return degree, tuple(terms)
    return None


def exact_polynomial_degree(
    sizes: Sequence[float], values: Sequence[float], max_degree: int = 3
) -> int | None:
    """The degree of :func:`exact_polynomial` (None where there is none)."""
    found = exact_polynomial(sizes, values, max_degree)
    return None if found is None else found[0]


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _coefficient(c: float) -> str:
    return f"{c:,.0f}" if float(c).is_integer() else f"{c:,.6g}"


def _term(c: float, power: int, symbol: str) -> str:
    if power == 0:
        return _coefficient(c)
    base = symbol if power == 1 else f"{symbol}{str(power).translate(_SUPERSCRIPTS)}"
    return base if c == 1 else f"{_coefficient(c)}·{base}"


def polynomial_text(coefficients: Sequence[float], symbol: str = "n") -> str:
    """``2,048·n² + 1,298,432·n``: a polynomial's nonzero terms, the highest power first."""
    terms = [(c, j) for j, c in enumerate(coefficients) if c][::-1]
    text = ""
    for i, (c, j) in enumerate(terms):
        sign = ("-" if c < 0 else "") if i == 0 else (" - " if c < 0 else " + ")
        text += sign + _term(abs(c), j, symbol)
    return text or "0"


def crossover_text(coefficients: Sequence[float], symbol: str = "n") -> str | None:
    """Where the top term of a polynomial overtakes the next one down ("2,048·n² overtakes
    1,298,432·n at n ≈ 634"); None for a single term or a negative next term."""
    terms = [(c, j) for j, c in enumerate(coefficients) if c]
    if len(terms) < 2:
        return None
    (c_next, j_next), (c_top, j_top) = terms[-2], terms[-1]
    if c_next <= 0 or c_top <= 0:
        return None
    at = (c_next / c_top) ** (1.0 / (j_top - j_next))
    return (f"{_term(c_top, j_top, symbol)} overtakes {_term(c_next, j_next, symbol)} at "
            f"{symbol} ≈ {at:,.3g}")  # fmt: skip


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


def _bic(rss: float, m: int, params: int) -> float:
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
            _, _, rss_arr = _wls_line(x, y, w)
            rss = float(rss_arr)
            p = 2
        scores[name] = _bic(rss, m, p)
    best = min(scores.values())
    for name in CLASSES:  # simplest first
        if scores[name] <= best + BIC_MARGIN:
            return name, scores
    raise AssertionError("unreachable")


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
    power_bic = _bic(power_rss, len(n), 3)
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


# --------------------------------------------------------------------------- verdicts


def _sizes_that_would_do(fit: OrderFit, min_range: float) -> str:
    """Sizes that would span ``min_range`` with the same largest or smallest size."""
    top = fit.fit_from * fit.size_range
    low = max(1, math.floor(top / min_range))
    return (f"for example {MIN_SIZES}+ sizes from {low:g} to {top:g}, or from "
            f"{fit.fit_from:g} to {math.ceil(fit.fit_from * min_range):g}")  # fmt: skip


def exponent_text(fit: OrderFit) -> str:
    """``k = 1.02 [0.97, 1.08]``; an end of the interval at the fitter's bound reads "≥ 4.5"
    (a bound, not a measurement), and a power pinned there gives its slope at the top."""
    bound = not fit.pinned and fit.ci_high >= K_MAX - 1e-9  # (a top slope has no bound)
    hi = f"≥ {K_MAX:g}" if bound else f"{fit.ci_high:.2f}"
    text = f"k = {fit.exponent:.2f} [{fit.ci_low:.2f}, {hi}]"
    if fit.pinned:
        text += (f" (the log-log slope over the top {TOP_RANGE:g}x: a + b·n^k reached the "
                 f"fitter's bound k = {K_MAX:g})")  # fmt: skip
    return text


def order_label(exponent: float, symbol: str = "n", order_class: str | None = None) -> str:
    """``O(n)``, ``O(n²)`` ... for a claimed exponent; ``O(log n)``, ``O(n log n)`` for a
    logarithmic class."""
    if order_class is not None:
        return f"O({order_class.replace('n', symbol)})"
    if exponent == 0:
        return "O(1)"
    if exponent == 1:
        return f"O({symbol})"
    sup = str(exponent if exponent != int(exponent) else int(exponent))
    sup = sup.translate(str.maketrans("0123456789.", "⁰¹²³⁴⁵⁶⁷⁸⁹·"))
    return f"O({symbol}{sup})"


def _band(expected: float, low: float, high: float) -> str:
    """``1 ± 0.15``, or ``[0.85, 1.5]`` where the band is not symmetric."""
    if math.isclose(expected - low, high - expected):
        return f"{expected:g} ± {high - expected:g}"
    return f"[{low:g}, {high:g}]"


def judge(
    fit: OrderFit,
    expected: float,
    tolerance: float,
    *,
    control: OrderFit | None = None,
    needs_control: bool = False,
    work: OrderFit | None = None,
    work_label: str = "work",
    order_class: str | None = None,
    check_class: bool = True,
    min_range: float = MIN_RANGE,
    beyond: OrderFit | None = None,
    beyond_text: str = "",
    step_at: str | None = None,
) -> Verdict:
    """Judge the claim "metric grows as n**expected" (or, with ``order_class``, as the
    logarithmic class it names: "log n" with expected 0, "n log n" with expected 1).

    * inconclusive when the fitted range is too short to speak of growth;
    * refuted: the interval lies wholly outside ``expected ± tolerance``
      (but inconclusive when ``work``, the exact work count of the same run,
      grows as claimed and the time's log-log slope over the top of the range
      meets the band: the time per unit of work is still settling; or when the work
      grows as claimed, the time grows faster and ``step_at`` names the cache
      crossings at which the time per unit of work steps up);
    * caches: where the working set passes a cache inside the window, ``beyond`` is
      the fit over the sizes beyond the last crossing (``beyond_text`` names them; at
      least MIN_SIZES spanning TOP_RANGE, so it is judged with that minimum range):
      a claim not confirmed over the whole window whose work grows as claimed is
      judged on it instead. A work that does not grow as claimed is never rescued;
    * confirmed: the interval lies wholly inside it, the chosen class has the
      expected degree, and (when ``needs_control``) the control measured in the
      same run was detected as growing faster (its interval lies above ours);
    * an exact count that follows a polynomial in n (``fit.poly_degree``) is
      judged on that degree instead of the fitted exponent: confirmed when it is
      the expected one (control permitting), refuted when it is not;
    * never refuted where the fit and the log-log slope over the top of the range lie on
      opposite sides of the band (no power describes the range): inconclusive;
    * a logarithmic class: a power fitted to log n or n log n reads a little above the
      power (the local slope of n log n is 1 + 1/ln n), so the band is
      [expected - tolerance, expected + LOG_BAND] and the chosen class must be the claimed
      one; an exact count that is a polynomial in n refutes it;
    * inconclusive otherwise, with the reason.
    """
    band_lo, band_hi = expected - tolerance, expected + tolerance
    if order_class is not None:
        band_hi = expected + max(tolerance, LOG_BAND)
    ci = exponent_text(fit)
    short = fit.n_sizes < MIN_SIZES or fit.size_range < min_range
    # An exact count that follows a polynomial in n: its degree is its order,
    # whatever a pure power fitted over a short range reads.
    by_degree = fit.poly_degree is not None and not short
    if order_class is not None and by_degree:
        return Verdict(
            REFUTED,
            f"an exact count, a polynomial of degree {fit.poly_degree} in n ({ci}), "
            f"not {order_class}",
        )
    # A logarithmic class must explain the data about as well as the best power a + b·n^k
    # (which has a parameter more): n^1.5 lies between n log n and n² and would otherwise
    # pass for n log n.
    power_wins = (
        order_class is not None
        and not short
        and fit.class_bic is not None
        and fit.power_bic is not None
        and fit.class_bic.get(order_class, math.inf) > fit.power_bic + BIC_MARGIN
    )
    if power_wins and fit.exact:
        return Verdict(
            REFUTED, f"an exact count that a power n^k fits better than {order_class} ({ci})"
        )
    degree_text = (
        f"an exact count, a polynomial of degree {fit.poly_degree} in n ({ci} over the range)"
    )
    if by_degree and fit.poly_coefficients is not None:
        degree_text += f": {polynomial_text(fit.poly_coefficients)}"
        cross = crossover_text(fit.poly_coefficients)
        degree_text += f"; {cross}" if cross else ""
    if by_degree and fit.poly_degree != expected:
        return Verdict(REFUTED, degree_text, by_degree=True)
    work_grows_as_claimed = work is not None and (
        work.poly_degree == expected or (band_lo <= work.ci_low and work.ci_high <= band_hi)
    )
    if short:
        # Too short a range says nothing about the asymptotic order, either way.
        return Verdict(
            INCONCLUSIVE,
            f"range too short ({ci} from {fit.n_sizes} sizes spanning {fit.size_range:g}x; "
            f"need {MIN_SIZES} sizes spanning {min_range:g}x: "
            f"{_sizes_that_would_do(fit, min_range)})",
        )
    if beyond is not None:

        def again(f: OrderFit, least: float, at: str | None) -> Verdict:
            return judge(f, expected, tolerance, control=control, needs_control=needs_control,
                         work=work, work_label=work_label, order_class=order_class,
                         check_class=check_class, min_range=least, step_at=at)  # fmt: skip

        whole = again(fit, min_range, None)  # step_at only matters where there is no beyond
        if whole.verdict == CONFIRMED or not work_grows_as_claimed:
            return whole
        # The work grows as claimed and the working set outgrew a cache inside the window:
        # the asymptote the claim is about lies beyond the last crossing; judge it there.
        there = again(beyond, TOP_RANGE, None)
        return Verdict(
            there.verdict,
            f"beyond the last cache crossing ({beyond_text or 'the top of the window'}): "
            f"{there.reason}; over the whole window: {whole.reason}",
            by_degree=there.by_degree,
        )
    # A time that tracks its exact work: the work (counted in the same run) is exactly a
    # polynomial of the claimed degree, and the time's interval lies within ± tolerance of
    # the work's own exponent over the same window. Over a finite range an exact count such
    # as αT + βT² reads below its degree (here k_work); the time, work × a time per unit of
    # work that stays flat, reads the same. A time growing faster or slower than its work
    # does not track it, and a work of another degree refutes the claim by itself.
    tracks = (
        not by_degree
        and order_class is None
        and work is not None
        and work.poly_degree is not None
        and float(expected).is_integer()
        and work.poly_degree == int(expected)
        and work.exponent - tolerance <= fit.ci_low
        and fit.ci_high <= work.exponent + tolerance
    )
    if tracks and not (band_lo <= fit.ci_low and fit.ci_high <= band_hi) and work is not None:
        band_lo, band_hi = work.exponent - tolerance, work.exponent + tolerance
    if not by_degree and (fit.ci_high < band_lo or fit.ci_low > band_hi):
        settling = (
            work_grows_as_claimed
            and fit.top_ci_low is not None
            and fit.top_ci_high is not None
            and fit.top_ci_low <= band_hi
            and fit.top_ci_high >= band_lo
        )
        if step_at is not None and work_grows_as_claimed and fit.ci_low > band_hi:
            # The time grows faster than its work, and the time per unit of work steps up
            # where the working set outgrows a cache: the memory hierarchy, with too few
            # sizes beyond the last cache to judge the asymptote there.
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies outside {expected:g} ± {tolerance:g}, but the work ({work_label}) "
                f"grows as claimed and the time per unit of work steps up where {step_at}; "
                f"too few sizes beyond it ({MIN_SIZES} spanning {TOP_RANGE:g}x needed) to "
                "judge the regime there",
            )
        if settling and work is not None:
            # The work grows as claimed and, at the top of the range, so does the
            # time: the time per unit of work was still changing lower down (a
            # working set outgrowing a cache, an overhead fading).
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies outside {expected:g} ± {tolerance:g}, but the work ({work_label}) "
                f"grows as k = {work.exponent:.2f} and the time's slope at the top of the range "
                f"is {fit.top_slope:.2f} [{fit.top_ci_low:.2f}, {fit.top_ci_high:.2f}]: the time "
                "per unit of work is still settling (caches, overheads); a longer range would "
                "tell",
            )
        if (
            fit.ci_high < band_lo
            and work is not None
            and work.poly_degree is not None
            and float(expected).is_integer()
            and work.poly_degree == int(expected)
        ):
            # Slower than claimed, while the work counted in the same run is exactly of the
            # claimed degree. A time is at least its work over the machine's peak rate, so
            # it cannot stay below the work's order: the time per unit of work still falls
            # over this range (overheads and small operands amortised). No refutation.
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies below {_band(expected, band_lo, band_hi)}, but the work "
                f"({work_label}) is exactly a polynomial of degree {work.poly_degree} in n "
                f"(k = {work.exponent:.2f} over the same window): the time per unit of work "
                "still falls over this range, and a time cannot grow more slowly than its "
                "work for long (a machine has a peak rate); larger sizes would tell",
            )
        top_low, top_high = fit.top_ci_low, fit.top_ci_high
        if not fit.exact and top_low is not None and top_high is not None and (
            (fit.ci_low > band_hi and top_high < band_lo)
            or (fit.ci_high < band_lo and top_low > band_hi)
        ):
            # The two estimates of the growth contradict each other: a + b·n^k over the
            # window says faster than claimed, the log-log slope at its top slower (or the
            # reverse). No power describes this range, so neither refutes the claim.
            side, other = ("above", "below") if fit.ci_low > band_hi else ("below", "above")
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies {side} {_band(expected, band_lo, band_hi)}, but the slope at the "
                f"top of the range, {fit.top_slope:.2f} [{top_low:.2f}, {top_high:.2f}], lies "
                f"{other} it: no power a + b·n^k describes this range (the time per unit of "
                "work changes inside it: overheads fading, caches filling); a range where it "
                "has settled would tell",
            )
        return Verdict(REFUTED, f"{ci} lies outside {_band(expected, band_lo, band_hi)}")
    problems: list[str] = []
    if not by_degree and not (band_lo <= fit.ci_low and fit.ci_high <= band_hi):
        width = fit.ci_high - fit.ci_low
        if width > 2 * tolerance:
            spread = f"; worst IQR/median {fit.rel_spread:.0%}" if fit.rel_spread > 0 else ""
            problems.append(
                f"interval too wide ({ci}{spread}): "
                "more repeats, fewer threads or a longer range may help"
            )
        else:
            problems.append(f"{ci} straddles the edge of {_band(expected, band_lo, band_hi)}")
    if power_wins:
        problems.append(f"a power n^k ({ci}) fits better than {order_class}")
    want_class = order_class or CLASS_FOR_EXPONENT.get(float(expected))
    if (
        check_class
        and not by_degree
        and want_class is not None
        and fit.best_class != want_class
        and not (tracks and work is not None
                 and fit.best_class in (work.best_class, work.bic_class))
    ):
        problems.append(f"best class is {fit.best_class}, not {want_class}")
    if needs_control:
        if control is None:
            problems.append("its control was not measured in this run")
        elif control.n_sizes < MIN_SIZES or control.size_range < MIN_RANGE:
            problems.append(
                f"its control's range is too short ({control.n_sizes} sizes spanning "
                f"{control.size_range:g}x)"
            )
        elif not (
            control.ci_low > fit.ci_high
            or (by_degree and (control.poly_degree or 0) > (fit.poly_degree or 0))
        ):
            problems.append(
                f"the control (k = {control.exponent:.2f} [{control.ci_low:.2f}, "
                f"{control.ci_high:.2f}]) was not detected as growing faster"
            )
    if problems:
        return Verdict(INCONCLUSIVE, "; ".join(problems), by_degree=by_degree)
    reason = degree_text if by_degree else ci + (" (exact count)" if fit.exact else "")
    if tracks and work is not None and not math.isclose(band_lo, expected - tolerance):
        reason += (
            f", within ±{tolerance:g} of its work ({work_label}: exactly degree "
            f"{work.poly_degree}, k = {work.exponent:.2f} over the same window)"
        )
    if needs_control and control is not None:
        reason += f"; control grows faster: k = {control.exponent:.2f}"
    return Verdict(CONFIRMED, reason, by_degree=by_degree)
