"""Tests for :mod:`trainbench.stats.fit` on synthetic data of known growth order.

Noise model used throughout: *multiplicative normal* noise,
``y = truth * (1 + sigma * N(0, 1))`` (not lognormal). Every random draw comes from a
seeded ``numpy.random.default_rng``, so every number asserted here is deterministic.

Grids:

* ``POW2``: the powers of two 1, 2, 4, ..., 1024 (11 sizes), used for class recovery.
  A denser grid was tried (sqrt(2) steps, 1..1024, 21 sizes) and recovered the classes
  equally well (the same up to a trial or two of the constant class), so the grid the issue
  names is kept.
* ``SQRT2``: sqrt(2) steps from 1 to 128, rounded to unique integers (14 sizes:
  1 2 3 4 6 8 11 16 23 32 45 64 91 128).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from trainbench.core.vocabulary import CONFIRMED, INCONCLUSIVE, REFUTED
from trainbench.stats.classes import CLASSES, choose_class
from trainbench.stats.exact import exact_polynomial_degree
from trainbench.stats.fit import OrderFit, fit_order
from trainbench.stats.judge import Verdict, judge, order_label
from trainbench.stats.power import K_MAX, fit_exponent

POW2 = 2.0 ** np.arange(11)  # 1 .. 1024
SQRT2 = np.unique(np.round(np.sqrt(2.0) ** np.arange(15)))  # 1 .. 128, 14 sizes
NAMES = list(CLASSES)

N_TRIALS = 200
CLASS_NOISE = 0.1
CLASS_SEED = 0  # the trials of class i draw from default_rng(CLASS_SEED + i)


def _class_truth(name: str, n: np.ndarray, a: float = 1.0, b: float = 1.0) -> np.ndarray:
    """``a + b * g(n)``; for class "1" just the constant ``a``."""
    if name == "1":
        return np.full_like(n, a)
    g = CLASSES[name]
    return a + b * g(n)


def _class_counts(
    name: str, *, index: int, a: float = 1.0, sigma: float = CLASS_NOISE
) -> dict[str, int]:
    """Chosen-class counts over N_TRIALS seeded noisy trials of true class ``name``."""
    truth = _class_truth(name, POW2, a=a)
    noise = np.random.default_rng(CLASS_SEED + index).standard_normal((N_TRIALS, POW2.size))
    counts = dict.fromkeys(NAMES, 0)
    for row in noise:
        chosen, _ = choose_class(POW2, truth * (1.0 + sigma * row))
        counts[chosen] += 1
    return counts


@pytest.fixture(scope="module")
def confusion() -> dict[str, dict[str, int]]:
    """true class -> chosen class -> count (out of N_TRIALS)."""
    return {name: _class_counts(name, index=i) for i, name in enumerate(NAMES)}


def _format_matrix(matrix: dict[str, dict[str, int]]) -> str:
    head = "true \\ chosen".ljust(14) + "".join(c.rjust(9) for c in NAMES)
    rows = [
        name.ljust(14) + "".join(str(matrix[name][c]).rjust(9) for c in NAMES) for name in matrix
    ]
    return "\n".join([head, *rows])


# --------------------------------------------------------------------- class recovery


def test_n_and_n_squared_recovered_in_95_percent(confusion: dict[str, dict[str, int]]) -> None:
    """True n is chosen as n, and true n^2 as n^2, in at least 95% of 200 trials each.

    Measured: n -> n 200/200, n^2 -> n^2 200/200; no trial of one was taken for the other.
    """
    assert confusion["n"]["n"] / N_TRIALS >= 0.95
    assert confusion["n^2"]["n^2"] / N_TRIALS >= 0.95
    assert confusion["n"]["n^2"] <= 0.05 * N_TRIALS
    assert confusion["n^2"]["n"] <= 0.05 * N_TRIALS


def test_n_versus_n_log_n(confusion: dict[str, dict[str, int]]) -> None:
    """n against n log n, truth ``1 + g(n)`` on 1..1024 (powers of two), 10% noise.

    Measured (200 seeded trials each):

    * true n       -> n 200, n log n 0 (recovery 100%)
    * true n log n -> n log n 200, n 0 (recovery 100%)

    With a = b = 1 the two are far apart over a 1024x range; the bounds below (98%,
    at most 4 crossings) sit slightly under the measurement to catch regressions. A harder
    case is in :func:`test_n_versus_n_log_n_large_intercept`.
    """
    assert confusion["n"]["n"] >= 196
    assert confusion["n log n"]["n log n"] >= 196
    assert confusion["n"]["n log n"] <= 4
    assert confusion["n log n"]["n"] <= 4


def test_n_versus_n_log_n_large_intercept() -> None:
    """Same as above with a large fixed overhead, truth ``100 + g(n)``, 10% noise.

    Here the overhead swamps the small sizes and the two classes are close. Measured
    (200 seeded trials each, chosen-class counts over 1, log n, n, n log n, n^2, n^3):

    * true n       -> [0, 0, 183, 17, 0, 0]  (n recovered 91.5%)
    * true n log n -> [0, 0, 7, 193, 0, 0]   (n log n recovered 96.5%)
    """
    as_n = _class_counts("n", index=100, a=100.0)
    as_nlogn = _class_counts("n log n", index=101, a=100.0)
    print("\ntrue n      ", as_n, "\ntrue n log n", as_nlogn)
    assert as_n["n"] >= 178
    assert as_n["n log n"] <= 22
    assert as_nlogn["n log n"] >= 190
    assert as_nlogn["n"] <= 10
    # Neither is ever mistaken for a class of another degree.
    for counts in (as_n, as_nlogn):
        assert counts["n"] + counts["n log n"] >= 198


# Slightly below the measured diagonal of the matrix recorded in test_confusion_matrix.
RECOVERY_FLOOR = {"1": 182, "log n": 196, "n": 196, "n log n": 196, "n^2": 196, "n^3": 196}


def test_confusion_matrix(confusion: dict[str, dict[str, int]]) -> None:
    """Full confusion matrix, 200 seeded trials per class, truth ``1 + g(n)`` (class "1":
    the constant 1), 10% multiplicative normal noise, sizes 1, 2, 4, ..., 1024.

    Measured (rows: true class, columns: chosen class)::

        true \\ chosen       1    log n        n  n log n      n^2      n^3
        1                186       10        4        0        0        0
        log n              0      200        0        0        0        0
        n                  0        0      200        0        0        0
        n log n            0        0        0      200        0        0
        n^2                0        0        0        0      200        0
        n^3                0        0        0        0        0      200

    Recovery: 1 93.0%, log n 100%, n 100%, n log n 100%, n^2 100%, n^3 100%.
    A constant is taken for growth in 7% of trials (BIC with a margin of 2 lets a
    two-parameter class win on noise now and then); growth is never taken for a constant.
    """
    print("\n" + _format_matrix(confusion))
    for name in NAMES:
        assert sum(confusion[name].values()) == N_TRIALS
        assert confusion[name][name] >= RECOVERY_FLOOR[name], (name, confusion[name])
    # Growth is never missed: no growing class is taken for a constant.
    for name in NAMES[1:]:
        assert confusion[name]["1"] <= 2, (name, confusion[name])


@pytest.mark.parametrize("name", NAMES)
def test_choose_class_exact_data(name: str) -> None:
    """Noise-free ``2 + 3 g(n)`` gives its own class on both grids."""
    for grid in (POW2, SQRT2):
        assert choose_class(grid, _class_truth(name, grid, a=2.0, b=3.0))[0] == name


# --------------------------------------------------------------------- exact counts


EXACT_CASES = [
    (lambda n: 3 + 5 * n, 1.0, "n"),
    (lambda n: 7 * n**2 + 2, 2.0, "n^2"),
    (lambda n: n**3, 3.0, "n^3"),
    (lambda n: 4 * n + 0, 1.0, "n"),
]


@pytest.mark.parametrize("grid", [SQRT2, POW2], ids=["1..128 sqrt2", "1..1024 pow2"])
@pytest.mark.parametrize(("count", "k", "cls"), EXACT_CASES, ids=["3+5n", "7n2+2", "n3", "4n"])
def test_exact_counts(grid: np.ndarray, count, k: float, cls: str) -> None:
    sizes = [int(s) for s in grid]
    values = [count(s) for s in sizes]  # Python ints: a count, exactly
    fit = fit_order(sizes, values, window=None)
    assert abs(fit.exponent - k) < 0.01
    assert fit.exact is True
    assert fit.ci_low == fit.ci_high == fit.exponent
    assert fit.best_class == cls
    assert fit.rel_spread == 0.0
    assert fit.n_sizes == len(sizes)
    assert fit.size_range == sizes[-1] / sizes[0]
    windowed = fit_order(sizes, values)  # the default: the top 16x of the range
    assert abs(windowed.exponent - k) < 0.01 and windowed.exact is True


def test_exact_counts_with_identical_repeats() -> None:
    """Raw repeats that all agree are still an exact count."""
    values = [[3 + 5 * int(s)] * 5 for s in SQRT2]
    fit = fit_order(SQRT2, values)
    assert fit.exact is True
    assert abs(fit.exponent - 1.0) < 0.01
    assert fit.ci_low == fit.ci_high


@pytest.mark.parametrize("grid", [SQRT2, POW2], ids=["1..128 sqrt2", "1..1024 pow2"])
def test_constant_count(grid: np.ndarray) -> None:
    fit = fit_order(grid, [42] * len(grid))
    assert fit.exponent == 0.0
    assert fit.best_class == "1"
    assert fit.exact is True
    assert fit.ci_low == fit.ci_high == 0.0


@pytest.mark.parametrize(("a", "b", "k"), [(3.0, 5.0, 1.0), (2.0, 7.0, 2.0), (1.0, 2.0, 1.5)])
def test_fit_exponent_recovers_parameters(a: float, b: float, k: float) -> None:
    got_k, got_a, got_b = fit_exponent(POW2, a + b * POW2**k)
    assert abs(got_k - k) < 0.001
    assert math.isclose(got_a, a, rel_tol=0.01)
    assert math.isclose(got_b, b, rel_tol=0.01)


def test_fit_exponent_constant_is_zero() -> None:
    k, a, b = fit_exponent(POW2, np.full(POW2.size, 5.0))
    assert (k, b) == (0.0, 0.0)
    assert math.isclose(a, 5.0, rel_tol=1e-12)


def test_exact_count_is_not_exact_once_one_value_is_off() -> None:
    values = [3 + 5 * int(s) for s in SQRT2]
    values[5] += 1
    fit = fit_order(SQRT2, values, n_boot=200)
    assert fit.exact is False
    assert fit.ci_high > fit.ci_low


# --------------------------------------------------------------------- noisy data


REPEAT_A, REPEAT_B = 2.0, 3.0
REPEAT_NOISE = 0.05
N_REPEATS = 7


def _noisy_repeats(k: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = REPEAT_A + REPEAT_B * SQRT2**k
    return [t * (1.0 + REPEAT_NOISE * rng.standard_normal(N_REPEATS)) for t in truth]


@pytest.mark.parametrize("k", [0.5, 1.0, 1.5, 2.0])
def test_raw_repeats_interval_contains_truth_and_is_narrow(k: float) -> None:
    """``2 + 3 n**k``, 5% noise, 7 repeats per size, sizes 1..128 in sqrt(2) steps.

    Measured over data seeds 0..19 (bootstrap seed = data seed): the interval held the
    truth in 19, 20, 20, 20 of 20 for k = 0.5, 1, 1.5, 2 and never reached further than
    0.07 from it. Here: data seed 1, bootstrap seed 0.
    """
    fit = fit_order(SQRT2, _noisy_repeats(k, seed=1))
    assert fit.exact is False
    assert fit.ci_low <= k <= fit.ci_high
    assert fit.ci_low > k - 0.1
    assert fit.ci_high < k + 0.1
    assert fit.ci_high - fit.ci_low < 0.2
    assert fit.ci_low <= fit.exponent <= fit.ci_high
    assert fit.rel_spread > 0.0


def test_raw_repeats_fit_is_deterministic() -> None:
    values = _noisy_repeats(1.5, seed=2)
    first = fit_order(SQRT2, values, seed=3)
    np.random.default_rng().random(10)  # unrelated draws must not matter
    np.random.random(10)
    second = fit_order(SQRT2, [v.copy() for v in values], seed=3)
    assert first == second
    other = fit_order(SQRT2, values, seed=4)
    assert other.exponent == first.exponent  # the point fit does not depend on the seed
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)


@pytest.mark.parametrize(("k", "grid"), [(1.0, SQRT2), (2.0, POW2)], ids=["n 1..128", "n2 1..1024"])
def test_residual_bootstrap_interval(k: float, grid: np.ndarray) -> None:
    """One noisy value per size: the fit's relative residuals are resampled.

    Truth ``1 + n**k`` with 5% noise, data seed 1. Note: this interval undercovers;
    over data seeds 0..99 (k = 1, 1..128) it held the truth in 85 of 100 at the
    nominal 95%, so the seed matters here.
    """
    rng = np.random.default_rng(1)
    values = (1.0 + grid**k) * (1.0 + 0.05 * rng.standard_normal(grid.size))
    fit = fit_order(grid, values)
    assert fit.exact is False
    assert fit.ci_high - fit.ci_low > 0.0
    assert fit.ci_low <= k <= fit.ci_high
    assert fit.ci_high - fit.ci_low < 0.2
    assert fit.rel_spread == 0.0  # one value per size: no spread between repeats
    assert fit_order(grid, values) == fit


def test_two_repeats_per_size_use_residual_bootstrap() -> None:
    """Sizes with fewer than three repeats still get a nonzero-width interval."""
    rng = np.random.default_rng(5)
    truth = 1.0 + SQRT2
    values = [t * (1.0 + 0.05 * rng.standard_normal(2)) for t in truth]
    fit = fit_order(SQRT2, values, n_boot=300)
    assert fit.ci_high > fit.ci_low
    assert abs(fit.exponent - 1.0) < 0.1
    assert fit.rel_spread > 0.0


def test_median_per_size_resists_an_outlier_repeat() -> None:
    """One wild repeat (20x) at each of the three largest sizes does not bend the fit."""
    values = _noisy_repeats(1.0, seed=9)
    for v in values[-3:]:
        v[0] *= 20.0
    fit = fit_order(SQRT2, values, n_boot=200)
    assert abs(fit.exponent - 1.0) < 0.05


def test_order_of_sizes_does_not_matter() -> None:
    rng = np.random.default_rng(11)
    values = (1.0 + SQRT2) * (1.0 + 0.05 * rng.standard_normal(SQRT2.size))
    perm = rng.permutation(SQRT2.size)
    want = fit_order(SQRT2, values, n_boot=200, window=None)
    got = fit_order(SQRT2[perm], values[perm], n_boot=200, window=None)
    assert got == want
    assert got.size_range == 128.0


# --------------------------------------------------------------------- input validation


def test_fewer_than_three_sizes_raises() -> None:
    with pytest.raises(ValueError, match="three"):
        fit_order([1, 2], [1.0, 2.0])


def test_fewer_than_three_usable_sizes_raises() -> None:
    with pytest.raises(ValueError, match="three"):
        fit_order([1, 2, 4], [[1.0, 1.1], [2.0], [math.nan, math.inf]])


def test_exactly_three_sizes_is_enough() -> None:
    fit = fit_order([1, 2, 4], [3.0, 5.0, 9.0], n_boot=0)
    assert fit.n_sizes == 3
    assert abs(fit.exponent - 1.0) < 0.01


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="length"):
        fit_order([1, 2, 4, 8], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="length"):
        fit_order([1, 2, 4], [[1.0], [2.0], [3.0], [4.0]])


def test_non_finite_repeats_are_dropped() -> None:
    clean = _noisy_repeats(1.0, seed=7)
    dirty = []
    for i, v in enumerate(clean):
        junk = [math.nan, math.inf, -math.inf][: 1 + i % 3]
        dirty.append(np.concatenate([junk[:1], v, junk[1:]]))
    assert any(not np.all(np.isfinite(d)) for d in dirty)
    got = fit_order(SQRT2, dirty, n_boot=200)
    want = fit_order(SQRT2, clean, n_boot=200)
    assert got == want
    assert math.isfinite(got.exponent) and abs(got.exponent - 1.0) < 0.1


def test_size_with_only_non_finite_repeats_is_skipped() -> None:
    clean = _noisy_repeats(1.0, seed=8)
    dirty = list(clean)
    dirty[3] = np.array([math.nan, math.inf])
    got = fit_order(SQRT2, dirty, n_boot=200, window=None)
    keep = [i for i in range(len(SQRT2)) if i != 3]
    want = fit_order(SQRT2[keep], [clean[i] for i in keep], n_boot=200, window=None)
    assert got.n_sizes == len(SQRT2) - 1
    assert got == want


# --------------------------------------------------------------------- verdicts


def _fit(
    lo: float,
    hi: float,
    *,
    cls: str = "n",
    n_sizes: int = 10,
    size_range: float = 128.0,
    exact: bool = False,
) -> OrderFit:
    return OrderFit(
        exponent=round((lo + hi) / 2, 4),
        ci_low=lo,
        ci_high=hi,
        best_class=cls,
        n_sizes=n_sizes,
        size_range=size_range,
        fit_from=1.0,
        exact=exact,
        rel_spread=0.03,
    )


GOOD = _fit(0.95, 1.05)
FASTER = _fit(1.9, 2.1, cls="n^2")


def test_judge_confirmed() -> None:
    v = judge(GOOD, 1.0, 0.15, control=FASTER, needs_control=True)
    assert isinstance(v, Verdict)
    assert v.verdict == CONFIRMED
    assert "control grows faster" in v.reason
    assert judge(GOOD, 1.0, 0.15).verdict == CONFIRMED


def test_judge_confirmed_exact_count() -> None:
    v = judge(_fit(2.0, 2.0, cls="n^2", exact=True), 2.0, 0.1)
    assert v.verdict == CONFIRMED
    assert "exact count" in v.reason


@pytest.mark.parametrize(("lo", "hi"), [(1.8, 2.1), (0.2, 0.6)], ids=["above", "below"])
def test_judge_refuted(lo: float, hi: float) -> None:
    v = judge(_fit(lo, hi, cls="n^2"), 1.0, 0.15, control=FASTER, needs_control=True)
    assert v.verdict == REFUTED
    assert "outside" in v.reason


def test_judge_interval_touching_band_edge_is_not_refuted() -> None:
    assert judge(_fit(1.15, 1.4), 1.0, 0.15).verdict == INCONCLUSIVE


def test_judge_inconclusive_interval_too_wide() -> None:
    v = judge(_fit(0.6, 1.5), 1.0, 0.15, control=_fit(1.8, 2.2, cls="n^2"), needs_control=True)
    assert v.verdict == INCONCLUSIVE
    assert "too wide" in v.reason
    assert "range too short" not in v.reason and "best class" not in v.reason


def test_judge_inconclusive_straddling_edge() -> None:
    v = judge(_fit(1.05, 1.2), 1.0, 0.15)
    assert v.verdict == INCONCLUSIVE
    assert "straddles" in v.reason
    assert "too wide" not in v.reason


@pytest.mark.parametrize(
    "short", [{"n_sizes": 3}, {"size_range": 4.0}], ids=["three sizes", "4x range"]
)
def test_judge_inconclusive_range_too_short(short: dict[str, float]) -> None:
    v = judge(_fit(0.95, 1.05, **short), 1.0, 0.15)
    assert v.verdict == INCONCLUSIVE
    assert "range too short" in v.reason


def test_judge_inconclusive_class_disagrees() -> None:
    v = judge(_fit(0.95, 1.05, cls="n log n"), 1.0, 0.15, control=FASTER, needs_control=True)
    assert v.verdict == INCONCLUSIVE
    assert "best class is n log n, not n" in v.reason


def test_judge_class_ignored_for_exponent_without_a_class() -> None:
    """k = 1.5 has no class of its own, so any best class is accepted."""
    assert judge(_fit(1.45, 1.55, cls="n log n"), 1.5, 0.1).verdict == CONFIRMED


def test_judge_inconclusive_control_missing() -> None:
    v = judge(GOOD, 1.0, 0.15, control=None, needs_control=True)
    assert v.verdict == INCONCLUSIVE
    assert "control was not measured" in v.reason


@pytest.mark.parametrize(
    "control", [_fit(1.0, 1.2), _fit(0.9, 1.1), _fit(0.5, 0.7)], ids=["overlap", "same", "slower"]
)
def test_judge_inconclusive_control_not_faster(control: OrderFit) -> None:
    v = judge(GOOD, 1.0, 0.15, control=control, needs_control=True)
    assert v.verdict == INCONCLUSIVE
    assert "not detected as growing faster" in v.reason


def test_judge_control_ignored_when_not_needed() -> None:
    assert judge(GOOD, 1.0, 0.15, control=_fit(0.5, 0.7)).verdict == CONFIRMED


def test_judge_reports_every_problem() -> None:
    v = judge(_fit(0.95, 1.05, cls="n^2"), 1.0, 0.15, needs_control=True)
    assert v.verdict == INCONCLUSIVE
    for part in ("best class is n^2", "control was not measured"):
        assert part in v.reason


def test_judge_never_refutes_on_a_short_range() -> None:
    """Four points spanning 4x say nothing about asymptotic growth, either way."""
    v = judge(_fit(0.90, 0.93, size_range=4.0), 1.0, 0.02)
    assert v.verdict == INCONCLUSIVE
    assert "range too short" in v.reason


# --------------------------------------------------------------------- labels


def test_order_label() -> None:
    assert order_label(1, "L") == "O(L)"
    assert order_label(2, "T") == "O(T²)"
    assert order_label(0) == "O(1)"
    assert order_label(1) == "O(n)"
    assert order_label(3.0) == "O(n³)"
    assert order_label(1.5) == "O(n¹·⁵)"


def test_order_fit_to_dict_round_trips() -> None:
    fit = _fit(0.9, 1.1)
    assert OrderFit(**fit.to_dict()) == fit


# --------------------------------------------------------------------- fit window


def test_window_ignores_small_size_transient() -> None:
    """A per-unit cost that doubles between n = 1 and n = 8 and is flat after (a cache
    running out) bends the whole-range exponent above 1; the default window (top 16x of
    the range) fits the flat part and reads the asymptotic k = 1."""
    per_unit = np.where(SQRT2 < 8, 1.0 + SQRT2 / 8.0, 2.0)
    values = SQRT2 * per_unit
    whole = fit_order(SQRT2, values, window=None)
    windowed = fit_order(SQRT2, values)
    assert whole.exponent > 1.05
    assert abs(windowed.exponent - 1.0) < 0.01
    assert windowed.fit_from == 8.0 and windowed.size_range == 16.0


def test_window_keeps_at_least_eight_sizes_on_a_coarse_grid() -> None:
    pow2 = [2**i for i in range(11)]  # 1..1024: only five sizes lie in the top 16x
    fit = fit_order(pow2, [3 + 2 * n for n in pow2])
    assert fit.n_sizes == 8
    assert fit.fit_from == 8.0


def test_judge_time_outside_the_band_while_the_work_grows_as_claimed_is_inconclusive() -> None:
    """A working set outgrowing a cache makes time per FLOP rise over a range: the time
    exponent reads high although the work is linear. That is no refutation."""
    work = _fit(1.0, 1.0, exact=True)
    settling = replace(_fit(1.16, 1.20), top_slope=1.1, top_ci_low=1.05, top_ci_high=1.16)
    v = judge(settling, 1.0, 0.15, work=work, work_label="backward FLOPs")
    assert v.verdict == INCONCLUSIVE
    assert "backward FLOPs" in v.reason and "longer range" in v.reason
    # time growing faster than the work all the way to the top: refuted all the same
    steady = replace(_fit(1.9, 2.1, cls="n^2"), top_slope=2.0, top_ci_low=1.9, top_ci_high=2.1)
    assert judge(steady, 1.0, 0.15, work=work).verdict == REFUTED
    quadratic_work = _fit(2.0, 2.0, cls="n^2", exact=True)
    assert judge(settling, 1.0, 0.15, work=quadratic_work).verdict == REFUTED
    assert judge(settling, 1.0, 0.15).verdict == REFUTED


def test_judge_time_slower_than_its_exact_work_of_the_claimed_degree_is_inconclusive() -> None:
    """An attention's backward: work exactly a·n + b·n² (reads k = 1.76 over 32..512), time
    k = 1.54 as its time per FLOP still falls. Claimed O(n²): not refuted (a time cannot
    stay below its work's order); claimed O(n) or O(n³): refuted by the work's degree."""
    work = replace(_fit(1.76, 1.76, cls="n^2", exact=True), poly_degree=2)
    slow = replace(_fit(1.50, 1.61, cls="n log n"), top_slope=1.6, top_ci_low=1.5, top_ci_high=1.7)
    v = judge(slow, 2.0, 0.15, work=work, work_label="backward FLOPs")
    assert v.verdict == INCONCLUSIVE
    assert "exactly a polynomial of degree 2" in v.reason and "larger sizes" in v.reason
    for wrong in (1.0, 3.0):
        assert judge(slow, wrong, 0.15, work=work).verdict == REFUTED
    # without the exact work, or with work of another degree, slower than claimed refutes
    assert judge(slow, 2.0, 0.15).verdict == REFUTED
    cubic = replace(work, poly_degree=3, exponent=2.9, ci_low=2.9, ci_high=2.9)
    assert judge(slow, 2.0, 0.15, work=cubic).verdict == REFUTED
    # faster than its work stays refuted (no crossing named)
    fast = replace(_fit(2.3, 2.4, cls="n^3"), top_slope=2.4, top_ci_low=2.3, top_ci_high=2.5)
    assert judge(fast, 2.0, 0.15, work=work).verdict == REFUTED


def test_judge_does_not_refute_where_the_fit_and_the_top_slope_disagree() -> None:
    """nn.Conv2d's backward over image sides 8..128 (batch 2, 16 channels; measured): the
    time per FLOP falls 16x from n = 8 to 91 (overheads) and rises 1.3x at 128 (L2). The
    work is exactly n^2; a + b·n^k reads k = 2.4 while the slope over the top 4x reads 1.8.
    Opposite sides of 2 ± 0.15: no power describes the range, so no refutation."""
    sides = np.array([8, 11, 16, 23, 32, 45, 64, 91, 128], dtype=float)
    per_flop = np.array([496.0, 277.8, 143.7, 79.9, 54.5, 39.0, 33.9, 31.1, 39.9])
    rng = np.random.default_rng(0)
    times = [per_flop[i] * n * n * (1 + 0.01 * rng.standard_normal(12)) for i, n in
             enumerate(sides)]  # fmt: skip
    fit = fit_order(sides, times, n_boot=300)
    assert fit.ci_low > 2.15 and fit.top_ci_high is not None and fit.top_ci_high < 1.85
    v = judge(fit, 2.0, 0.15)
    assert v.verdict == INCONCLUSIVE and "slope at the top of the range" in v.reason
    # a false claim is still refuted: O(n) and O(n^3) lie on one side of both estimates
    assert judge(fit, 1.0, 0.15).verdict == REFUTED
    assert judge(fit, 3.0, 0.15).verdict == REFUTED
    # both estimates above the band: refuted as before
    cubic = [n**3 * (1 + 0.01 * rng.standard_normal(12)) for n in sides]
    assert judge(fit_order(sides, cubic, n_boot=300), 2.0, 0.15).verdict == REFUTED


def test_judge_needs_a_control_with_range() -> None:
    short = _fit(1.9, 2.1, cls="n^2", n_sizes=3, size_range=4.0)
    v = judge(GOOD, 1.0, 0.15, control=short, needs_control=True)
    assert v.verdict == INCONCLUSIVE and "control's range is too short" in v.reason


def test_top_slope_reads_the_local_growth() -> None:
    values = [(1.0 + n) if n < 32 else 0.2 * n**1.5 for n in SQRT2]
    fit = fit_order(SQRT2, values, window=None)
    assert abs(fit.top_slope - 1.5) < 1e-9


# --------------------------------------------------------------------- rounds


def _rounds_data(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """a + b*n, three rounds; the first ran on a machine 30% faster at every size."""
    rng = np.random.default_rng(seed)
    values, labels = [], []
    for n in SQRT2:
        per_round = [
            factor * (1.0 + n) * (1.0 + 0.03 * rng.standard_normal(7)) for factor in (0.7, 1, 1)
        ]
        values.append(np.concatenate(per_round))
        labels.append(np.repeat([0, 1, 2], 7))
    return values, labels


def test_round_bootstrap_treats_a_round_as_one_replicate_of_the_whole_curve() -> None:
    """A round-wide slowdown moves every size alike: it must not read as growth noise. With
    the rounds named, the interval holds the truth and stays narrow; treating each size's
    round medians as independent repeats makes it several times wider."""
    values, labels = _rounds_data(seed=3)
    named = fit_order(SQRT2, values, rounds=labels)
    assert named.ci_low <= 1.0 <= named.ci_high
    assert named.ci_high - named.ci_low < 0.2
    medians = [
        [np.median(v[lab == r]) for r in range(3)] for v, lab in zip(values, labels, strict=True)
    ]
    independent = fit_order(SQRT2, medians)
    assert (independent.ci_high - independent.ci_low) > 2 * (named.ci_high - named.ci_low)
    assert fit_order(SQRT2, values, rounds=labels) == named  # seeded


def test_round_labels_must_match_the_repeats() -> None:
    values, labels = _rounds_data(seed=4)
    with pytest.raises(ValueError, match="round"):
        fit_order(SQRT2, values, rounds=[lab[:-1] for lab in labels])
    with pytest.raises(ValueError, match="length"):
        fit_order(SQRT2, values, rounds=labels[:-1])


# --------------------------------------------------------------------------- exact polynomials

CONTROL_SIZES = np.array([2, 4, 8, 16, 32, 64], dtype=float)


def quadratic_count(n: np.ndarray, linear: float = 4.0) -> np.ndarray:
    """α·n + β·n(n-1) with a large linear term: a pure power reads well below 2."""
    return np.round(linear * 1e6 * n + 1e6 * n * (n - 1))


@pytest.mark.parametrize(
    ("values", "degree"),
    [
        (np.full(6, 25.0), 0),
        (72 * CONTROL_SIZES - 45, 1),
        (quadratic_count(CONTROL_SIZES), 2),
        (3 * CONTROL_SIZES**3 + CONTROL_SIZES, 3),
        (CONTROL_SIZES * np.log(CONTROL_SIZES) + 1, None),
        (2.0**CONTROL_SIZES[:5], None),
        (1e6 - 10 * CONTROL_SIZES, None),  # decreasing: not a growth order
    ],
)
def test_exact_polynomial_degree(values: np.ndarray, degree: int | None) -> None:
    n = CONTROL_SIZES[: len(values)]
    assert exact_polynomial_degree(n, values) == degree


def test_exact_polynomial_degree_needs_a_point_more_than_it_fits() -> None:
    assert exact_polynomial_degree([1, 2, 3], [1, 4, 9]) is None  # 3 points fit any quadratic
    assert exact_polynomial_degree([1, 2, 3, 4], [1, 4, 9, 16]) == 2


def test_an_exact_quadratic_count_is_judged_on_its_degree() -> None:
    values = quadratic_count(CONTROL_SIZES, linear=40.0)
    fit = fit_order(CONTROL_SIZES, values)
    assert fit.poly_degree == 2
    assert fit.exponent < 1.8  # what a pure power reads over this range
    v = judge(fit, 2.0, 0.1)
    assert (v.verdict, v.by_degree) == (CONFIRMED, True)
    assert "polynomial of degree 2" in v.reason
    assert judge(fit, 1.0, 0.1).verdict == REFUTED
    assert judge(fit, 3.0, 0.1).verdict == REFUTED


def test_a_noisy_metric_is_never_judged_on_a_degree() -> None:
    rng = np.random.default_rng(0)
    repeats = [quadratic_count(CONTROL_SIZES) * (1 + 0.01 * rng.standard_normal(3)[:, None])]
    fit = fit_order(CONTROL_SIZES, np.stack(repeats[0], axis=1))
    assert fit.poly_degree is None
    assert judge(fit, 2.0, 0.1).by_degree is False


def test_a_control_of_higher_degree_counts_as_growing_faster() -> None:
    claim = fit_order(CONTROL_SIZES, 1e6 * CONTROL_SIZES + 5)
    control = fit_order(CONTROL_SIZES, quadratic_count(CONTROL_SIZES, linear=1e3))
    # its fitted power (about 1.03) barely exceeds the claim's; its degree says O(n²)
    assert control.exponent < 1.1 and control.poly_degree == 2 and claim.poly_degree == 1
    v = judge(claim, 1.0, 0.02, control=control, needs_control=True)
    assert v.verdict == CONFIRMED, v.reason


def _flat(levels: list[float], seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(v * 1e-6 * (1 + 0.01 * rng.standard_normal(80))) for v in levels]


def test_a_flat_metric_is_not_read_as_the_largest_exponent() -> None:
    # a constant 25 µs whose medians wander by a few percent: a + b·n^k alone would bend
    # through the top point with k at its bound (4.5) and a zero-width interval
    fit = fit_order([16, 32, 64, 128], _flat([24.4, 26.0, 25.1, 27.6]))
    assert fit.exponent < 0.2 and fit.ci_high < 0.2
    assert judge(fit, 4.5, 0.15).verdict == "refuted"


def test_a_constant_is_confirmed_as_o1() -> None:
    fit = fit_order([16, 32, 64, 128], _flat([32.9, 35.1, 28.4, 36.1], seed=1))
    assert fit.best_class == "1"
    assert (fit.exponent, fit.ci_low) == (0.0, 0.0)
    assert judge(fit, 0.0, 0.15).verdict == "confirmed"
    assert judge(fit, 1.0, 0.15).verdict == "refuted"


def test_exponents_stay_within_the_search_range() -> None:
    sizes = [16, 32, 64, 128, 256]
    fit = fit_order(sizes, [[1.0], [1.0], [1.0], [1.0], [40.0]])
    assert 0.0 <= fit.ci_low <= fit.exponent <= fit.ci_high <= K_MAX
