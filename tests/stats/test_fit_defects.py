"""The fitter's small defects, each with the case that showed it: an exponent pinned at the
fitter's bound is not reported as a measurement; a too-short range says which sizes would
do; a one-pass point says it has no spread; no numpy warning reaches the user."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from trainbench.cli.render import points_table
from trainbench.core.vocabulary import REFUTED
from trainbench.stats.fit import OrderFit, fit_order
from trainbench.stats.judge import exponent_text, judge
from trainbench.stats.power import K_MAX

SIZES = [1, 2, 4, 8, 16, 32, 64]


def _noisy(values: list[float], seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [[v * (1 + 0.05 * rng.standard_normal()) for _ in range(5)] for v in values]


def test_a_growth_steeper_than_the_fitters_bound_reads_its_top_slope() -> None:
    fit = fit_order(SIZES, _noisy([float(n) ** 6 for n in SIZES]))
    assert fit.pinned
    assert fit.exponent == pytest.approx(6.0, abs=0.1) and fit.ci_low > K_MAX
    verdict = judge(fit, 2.0, 0.15)
    assert verdict.verdict == REFUTED
    assert "the log-log slope over the top 4x: a + b·n^k reached the fitter's bound" in (
        verdict.reason
    )
    assert f"k = {K_MAX:.2f}" not in verdict.reason  # the bound is not quoted as a slope


def test_an_interval_ending_at_the_bound_says_so() -> None:
    fit = OrderFit(exponent=2.31, ci_low=1.04, ci_high=K_MAX, best_class="n", n_sizes=5,
                   size_range=16.0, fit_from=8.0, exact=False, rel_spread=0.1)  # fmt: skip
    assert exponent_text(fit) == f"k = 2.31 [1.04, ≥ {K_MAX:g}]"
    top = replace(fit, exponent=6.0, ci_low=5.5, ci_high=6.5, pinned=True)
    assert exponent_text(top).startswith("k = 6.00 [5.50, 6.50] (the log-log slope")


def test_a_cubic_is_still_measured_as_a_cubic() -> None:
    fit = fit_order(SIZES, _noisy([float(n) ** 3 for n in SIZES]))
    assert not fit.pinned and fit.exponent == pytest.approx(3.0, abs=0.1)


def test_a_too_short_range_suggests_sizes_that_would_do() -> None:
    sizes = [32, 64, 128, 224]  # the natural image range: 7x
    verdict = judge(fit_order(sizes, [3.0 * n for n in sizes]), 1.0, 0.15)
    assert verdict.reason.endswith(
        "need 4 sizes spanning 8x: for example 4+ sizes from 28 to 224, or from 32 to 256)"
    )


@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e300])
def test_no_numpy_warning_reaches_the_user_whatever_the_scale(scale: float) -> None:
    sizes = [1, 2, 4, 8, 16]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_order(sizes, [scale * n for n in sizes])
    assert fit.exponent == 1.0 and fit.poly_degree == 1


def test_a_one_pass_point_says_it_has_no_spread() -> None:
    point = {"variant": "model", "size": 8, "fwd_s": 0.0158, "fwd_iqr_s": 0.0, "bwd_s": 0.02,
             "bwd_iqr_s": 0.0, "fwd_flops": 10, "bwd_flops": 20, "graph_nodes": 3,
             "graph_depth": 2, "saved_bytes": 100, "rounds": 1}  # fmt: skip
    summary = {"experiment": "e", "points": [point, point | {"size": 16, "rounds": 6}]}
    table = points_table(summary, "n")
    cells = [list(c._cells) for c in table.columns]
    assert cells[2][0] == "15.8 (1 pass: no spread measured)"
    assert cells[2][1] == "15.8 ±0"  # six passes that agree: a measured zero spread


def test_peak_bytes_on_a_cpu_are_judged_on_the_working_set() -> None:
    import targets_for_tests as T

    import trainbench

    result = trainbench.sweep(T.linear, [2, 4, 8, 16, 32], claim="O(n)", metric="peak_bytes",
                              repeats=1, max_passes=1, min_time=0.002)  # fmt: skip
    claim = result.run.claims[0]
    assert claim["verdict"] == "confirmed" and claim["judged_on"] == "working_set_bytes"
    assert claim["reason"].startswith("judged on the working set (parameters, their gradients")
    fit = result.fits[result.fits.metric == "working_set_bytes"].iloc[0]
    assert fit["poly_degree"] == 1  # 2 × the weights (and their gradient) + n rows saved
