"""The drift-cancelling estimator (trainbench.stats.drift) and the pass schedule it serves."""

from __future__ import annotations

import numpy as np
import pytest

from trainbench.stats import drift
from trainbench.stats.fit import fit_order
from trainbench.stats.judge import judge

SIZES = [8, 11, 16, 23, 32, 45, 64, 91, 128]


def _passes(truth: np.ndarray, speed: np.ndarray, noise: float, rng: np.random.Generator):
    """Samples (one per size and pass) and their pass labels: truth × the pass's speed."""
    values = [list(t * speed * np.exp(rng.normal(0, noise, len(speed)))) for t in truth]
    labels = [list(range(len(speed))) for _ in truth]
    return values, labels


def test_polish_recovers_size_effects_exactly_whatever_each_pass_shares() -> None:
    mu = np.log(np.array([1.0, 2.0, 4.0, 8.0]))
    delta = np.array([0.0, 0.3, -0.2, 0.5, 0.1])
    logs = mu[:, None] + delta[None, :]
    got_mu, got_delta = drift.polish(logs)
    # the size effects up to a common constant, the pass effects centred on their median
    assert np.allclose(got_mu - got_mu[0], mu - mu[0], atol=1e-12)
    assert np.allclose(got_delta - got_delta[0], delta - delta[0], atol=1e-12)
    assert drift.residual_spread(logs, got_mu, got_delta) == pytest.approx(np.zeros(4), abs=1e-12)


def test_polish_chains_pairs_that_share_one_size() -> None:
    """Passes that time two neighbouring sizes only (the memory fall-back) are linked
    through the size they share: the size effects come out as if timed together."""
    mu = np.log(np.array([1.0, 3.0, 5.0, 20.0]))
    logs = np.full((4, 9), np.nan)
    speeds = np.linspace(-0.4, 0.4, 9)
    for j, d in enumerate(speeds):
        pair = j % 3  # passes 0, 3, 6: sizes 0-1; 1, 4, 7: sizes 1-2; 2, 5, 8: sizes 2-3
        logs[pair : pair + 2, j] = mu[pair : pair + 2] + d
    got, _ = drift.polish(logs)
    assert np.allclose(got - got[0], mu - mu[0], atol=1e-9)


def test_one_interrupted_block_does_not_move_the_estimate() -> None:
    mu = np.log(np.arange(1.0, 6.0))
    logs = np.repeat(mu[:, None], 8, axis=1)
    logs[2, 3] += np.log(5.0)  # another process stalled one visit five-fold
    got, _ = drift.polish(logs)
    assert np.allclose(got - got[0], mu - mu[0], atol=1e-9)


def test_pass_matrix_takes_each_visits_median() -> None:
    samples = [np.array([1.0, 3.0, 2.0, 10.0]), np.array([4.0])]
    labels = [np.array([0, 0, 0, 1]), np.array([1])]
    logs = drift.pass_matrix(samples, labels)
    assert logs.shape == (2, 2)
    assert logs[0, 0] == pytest.approx(np.log(2.0)) and logs[0, 1] == pytest.approx(np.log(10.0))
    assert np.isnan(logs[1, 0]) and logs[1, 1] == pytest.approx(np.log(4.0))


def test_drift_between_passes_is_cancelled_in_the_fit() -> None:
    """A machine 40% slower in some passes than in others: with pass labels the exponent
    comes out as if the machine were steady; the same samples without them scatter."""
    truth = 0.5 + np.asarray(SIZES, dtype=float)  # a fixed overhead plus linear growth
    with_labels, without = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        speed = np.exp(rng.normal(0, 0.2, 12))
        values, labels = _passes(truth, speed, 0.02, rng)
        # the old design: each size in its own time window (one pass's speed per size)
        windows = [list(np.asarray(v) * speed[i % 12] / speed) for i, v in enumerate(values)]
        with_labels.append(fit_order(SIZES, values, rounds=labels, n_boot=100, seed=seed))
        without.append(fit_order(SIZES, windows, n_boot=100, seed=seed))
    k_labelled = np.array([f.exponent for f in with_labels])
    k_windows = np.array([f.exponent for f in without])
    assert np.all(np.abs(k_labelled - 1.0) < 0.05)
    assert k_labelled.std() < 0.5 * k_windows.std()
    # and the labelled fits confirm the true claim
    assert all(judge(f, 1.0, 0.15).verdict == "confirmed" for f in with_labels)


def test_bootstrap_over_passes_widens_with_fewer_passes() -> None:
    truth = np.asarray(SIZES, dtype=float)
    widths = {}
    for passes in (4, 32):
        rng = np.random.default_rng(3)
        values, labels = _passes(truth, np.exp(rng.normal(0, 0.2, passes)), 0.05, rng)
        fit = fit_order(SIZES, values, rounds=labels, n_boot=300, seed=1)
        widths[passes] = fit.ci_high - fit.ci_low
        assert fit.ci_low <= fit.exponent <= fit.ci_high
    assert widths[32] < widths[4]


def test_a_false_claim_stays_refuted_with_drift() -> None:
    truth = np.asarray(SIZES, dtype=float) ** 1.5
    rng = np.random.default_rng(5)
    values, labels = _passes(truth, np.exp(rng.normal(0, 0.3, 12)), 0.05, rng)
    fit = fit_order(SIZES, values, rounds=labels, n_boot=200)
    assert judge(fit, 1.0, 0.15).verdict == "refuted"


CONTROL_SIZES = [2, 4, 8, 16, 32]


def _timed_like(work: np.ndarray, slope: float, seed: int) -> tuple[list, list]:
    """Times = work × a time per unit of work growing as n^slope, in 12 drifting passes."""
    rng = np.random.default_rng(seed)
    n = np.asarray(CONTROL_SIZES, dtype=float)
    return _passes(work * n**slope * 1e-9, np.exp(rng.normal(0, 0.2, 12)), 0.03, rng)


def test_a_time_that_tracks_its_exact_work_is_judged_against_the_works_exponent() -> None:
    """The per-step control's work αT + βT² reads k ≈ 1.8 over T = 2..32; a time that
    follows it is confirmed as O(T²) (the claim is about the work's degree)."""
    n = np.asarray(CONTROL_SIZES, dtype=float)
    work = 1000.0 * n + 60.0 * n**2
    work_fit = fit_order(CONTROL_SIZES, list(work))
    assert work_fit.poly_degree == 2 and work_fit.exponent < 1.85
    values, labels = _timed_like(work, 0.0, 1)
    time_fit = fit_order(CONTROL_SIZES, values, rounds=labels, n_boot=300)
    assert time_fit.ci_high < 1.9  # outside 2 ± 0.1 on its own
    plain = judge(time_fit, 2.0, 0.1)
    assert plain.verdict != "confirmed"
    v = judge(time_fit, 2.0, 0.1, work=work_fit, work_label="backward FLOPs")
    assert v.verdict == "confirmed" and "within ±0.1 of its work" in v.reason


def test_a_time_growing_faster_than_its_work_does_not_track_it() -> None:
    n = np.asarray(CONTROL_SIZES, dtype=float)
    work = 1000.0 * n + 60.0 * n**2
    work_fit = fit_order(CONTROL_SIZES, list(work))
    values, labels = _timed_like(work, 0.4, 2)  # time per work rising as n^0.4
    time_fit = fit_order(CONTROL_SIZES, values, rounds=labels, n_boot=300)
    assert judge(time_fit, 2.0, 0.1, work=work_fit).verdict != "confirmed"
    # and a linear work cannot carry an O(n²) claim
    lin = fit_order(CONTROL_SIZES, list(1000.0 * n))
    values, labels = _timed_like(1000.0 * n, 0.0, 3)
    time_fit = fit_order(CONTROL_SIZES, values, rounds=labels, n_boot=300)
    assert judge(time_fit, 2.0, 0.25, work=lin).verdict == "refuted"
