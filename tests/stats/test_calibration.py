"""Calibration of the verdicts on simulated sweeps: how often a true claim is confirmed and
a false one is not, on a machine whose noise was measured (trainbench.stats.noise, the presets
from benchmarks/noise_probe.py).

Every trial simulates a sweep of the √2 grid 8..128 timed the way the harness times it
(12 passes, each visiting every size once in a shuffled order, a visit of about 10 ms in
up to three blocks, another 10 ms of untimed work between visits) of a statement that
takes 0.5 ms + c·g(n) (20 ms at n = 128), fits it with ``fit_order(..., rounds=labels,
n_boot=200)`` and judges the claim with ``judge(fit, expected, 0.15)``.

``TRAINBENCH_CALIBRATION_TRIALS`` sets the trials per case (default 60),
``TRAINBENCH_CALIBRATION_SEED`` the first seed (default 0). ``python -m trainbench.stats.noise
--trials 400`` prints the table of docs/method.md (Calibration).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from trainbench.core.vocabulary import CONFIRMED, REFUTED
from trainbench.stats.noise import Trial, TrialResult, Workload, run_trials
from trainbench.stats.simulator import (
    LOADED,
    QUIET,
    SILENT,
    NoiseModel,
    simulate_passes,
    slowness_series,
)

SIZES = (8, 11, 16, 23, 32, 45, 64, 91, 128)
TRIALS = int(os.environ.get("TRAINBENCH_CALIBRATION_TRIALS", "60"))
FIRST_SEED = int(os.environ.get("TRAINBENCH_CALIBRATION_SEED", "0"))
TOLERANCE = 0.15

Mapper = Callable[[Callable[[Trial], TrialResult], list[Trial]], Iterator[TrialResult]]


@pytest.fixture(scope="module")
def mapper() -> Iterator[Mapper]:
    """The trials spread over the machine's cores (fresh processes: numpy only)."""
    workers = max(1, min(2, os.cpu_count() or 1))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:

        def spread(fn: Callable[[Trial], TrialResult], items: list[Trial]) -> Iterator[TrialResult]:
            return ex.map(fn, items, chunksize=max(1, len(items) // (4 * workers)))

        yield spread


def trials(growth: str, expected: float, model: NoiseModel = QUIET, **kw: object) -> list[Trial]:
    return [
        Trial(Workload(growth), expected, TOLERANCE, seed, model=model, **kw)  # type: ignore[arg-type]
        for seed in range(FIRST_SEED, FIRST_SEED + TRIALS)
    ]


_done: dict[tuple[Trial, ...], list[TrialResult]] = {}


def run(batch: list[Trial], mapper: Mapper) -> list[TrialResult]:
    """``run_trials``, once per batch in this session (two tests share one)."""
    key = tuple(batch)
    if key not in _done:
        _done[key] = run_trials(batch, mapper)
    return _done[key]


def tally(results: list[TrialResult]) -> Counter[str]:
    return Counter(r.verdict for r in results)


# --------------------------------------------------------------------------- the simulator


def test_silent_machine_gives_the_true_times() -> None:
    work = Workload("n^2")
    values, labels = simulate_passes(SIZES, work, 5, SILENT, np.random.default_rng(0))
    truth = work(np.asarray(SIZES, dtype=float))
    for v, lab, t in zip(values, labels, truth, strict=True):
        assert len(v) == len(lab) == 5
        assert sorted(lab) == [0, 1, 2, 3, 4]
        np.testing.assert_allclose(v, t, rtol=1e-12)


def test_harness_rule_blocks_per_visit() -> None:
    """Short statements get three blocks a visit, long ones one (trainbench.measure.timing)."""
    values, labels = simulate_passes(
        SIZES, Workload("n^2"), 4, SILENT, np.random.default_rng(0), 3, visit_s=0.01
    )
    assert len(values[0]) == 12  # 0.58 ms: three blocks of about 3.3 ms
    assert len(values[-1]) == 4  # 20 ms: one block
    assert all(len(v) == len(lab) for v, lab in zip(values, labels, strict=True))


def test_drift_is_drift() -> None:
    """Consecutive passes share the machine's slowness: the simulated drift is slow next to
    a pass, large next to the jitter, and what a pass shares is most of the spread; so the
    calibration below tests the cancelling of drift, not the averaging of white noise."""
    rng = np.random.default_rng(1)
    lag1, shared, within = [], [], []
    for _ in range(10):
        values, labels = simulate_passes(
            SIZES, Workload("n"), 40, QUIET, rng, 3, visit_s=0.01, gap_s=0.01
        )
        logs = np.full((len(SIZES), 40), np.nan)
        for i, (v, lab) in enumerate(zip(values, labels, strict=True)):
            for p in range(40):
                logs[i, p] = np.log(np.median(np.asarray(v)[np.asarray(lab) == p]))
        rel = logs - np.median(logs, axis=1, keepdims=True)  # size effect out
        delta = np.median(rel, axis=0)  # each pass's shared slowness
        d = delta - delta.mean()
        lag1.append(float((d[:-1] * d[1:]).mean() / (d * d).mean()))
        shared.append(float(delta.std()))
        within.append(float(np.median(np.abs(rel - delta[None, :]))) * 1.4826)
    assert np.median(lag1) > 0.4
    assert np.median(shared) > 0.05  # a pass is 5% or more off the typical one
    assert np.median(shared) > 2 * np.median(within)

    # The slowness process itself: its autocorrelation at the drift's time constant is
    # about 1/e (a little less: the fast wander adds to the variance), and its spread about
    # the model's.
    s = slowness_series(QUIET, 3000.0, 0.05, np.random.default_rng(2))
    lag = round(QUIET.drift_time_s / 0.05)
    c = s - s.mean()
    acf = float((c[:-lag] * c[lag:]).mean() / (c * c).mean())
    assert 0.27 < acf < 0.43
    total = math.hypot(QUIET.drift_sd, QUIET.wander_sd)
    assert 0.9 * total < s.std() < 1.1 * total


def test_interruptions_follow_the_clock() -> None:
    """A block of the probe's length is interrupted as often as the probe's blocks were;
    a block ten times as long reads slower (it cannot dodge the interruptions)."""
    model = LOADED
    short = Workload("n", overhead_s=model.spike_ref_s, top_s=model.spike_ref_s * 1.0001)
    values, _ = simulate_passes([1.0], short, 4000, model, np.random.default_rng(3))
    ratio = np.asarray(values[0]) / model.spike_ref_s
    base = np.percentile(ratio, 25)
    frac = float(np.mean(ratio > 1.5 * base))
    assert abs(frac - model.spike_prob) < 0.05
    long = Workload("n", overhead_s=10 * model.spike_ref_s, top_s=10 * model.spike_ref_s * 1.0001)
    values_long, _ = simulate_passes([1.0], long, 1000, model, np.random.default_rng(4))
    slow_long = np.median(values_long[0]) / (10 * model.spike_ref_s)
    assert slow_long > 1.3 * np.median(ratio)


# --------------------------------------------------------------------------- the verdicts

TRUE_CLAIMS = [("n", 1.0), ("n^2", 2.0)]
FALSE_CLAIMS = [("n^1.3", 1.0), ("n^1.5", 1.0), ("n log n", 1.0)]


@pytest.mark.parametrize(("growth", "expected"), TRUE_CLAIMS)
def test_true_claim_confirmed(mapper: Mapper, growth: str, expected: float) -> None:
    results = run(trials(growth, expected), mapper)
    counts = tally(results)
    assert counts[CONFIRMED] >= 0.95 * TRIALS, counts
    assert counts[REFUTED] == 0, counts


@pytest.mark.parametrize(("growth", "expected"), FALSE_CLAIMS)
def test_false_claim_not_confirmed(mapper: Mapper, growth: str, expected: float) -> None:
    results = run(trials(growth, expected), mapper)
    counts = tally(results)
    assert counts[CONFIRMED] <= 0.01 * TRIALS, counts


def test_pass_labels_beat_medians(mapper: Mapper) -> None:
    """The same simulated sweeps fitted with their pass labels (the drift cancelled) and
    without (each size's median over its samples): the labels give the exponent with a
    smaller error and confirm the true claim at least as often."""
    with_labels = run(trials("n", 1.0), mapper)
    without = run(trials("n", 1.0, labelled=False), mapper)

    def rmse(results: list[TrialResult]) -> float:
        return float(np.sqrt(np.mean([(r.exponent - 1.0) ** 2 for r in results])))

    assert rmse(with_labels) < 0.85 * rmse(without)
    assert tally(with_labels)[CONFIRMED] >= tally(without)[CONFIRMED]


@pytest.mark.parametrize(("growth", "expected"), TRUE_CLAIMS + FALSE_CLAIMS)
def test_loaded_machine_never_misleads(mapper: Mapper, growth: str, expected: float) -> None:
    """With a process competing for the cores, the intervals widen and the exponents read
    high (a long block cannot dodge the interruptions a short one can): the verdicts are
    mostly inconclusive, but a true claim is not refuted and a false one not confirmed."""
    few = trials(growth, expected, model=LOADED)[: max(1, TRIALS // 2)]
    counts = tally(run(few, mapper))
    if (growth, expected) in TRUE_CLAIMS:
        # A long block's interruptions make the top sizes read slow: n² was refuted in 14 of
        # 400 trials (3.5%), n in 3 of 400.
        assert counts[REFUTED] <= 0.1 * len(few), counts
    else:
        assert counts[CONFIRMED] == 0, counts


def test_stopping_at_the_first_confirmation_on_a_loaded_machine(mapper: Mapper) -> None:
    """``--until confirmed`` judges after every pass from the 6th: on the loaded machine,
    whose intervals stay wide and whose exponents read high, looking again and again for a
    confirmation lets no false claim through (none of 300 in docs/method.md's table, up to
    40 passes)."""
    few = trials("n^1.3", 1.0, model=LOADED, until="confirmed", passes=24)[: max(1, TRIALS // 4)]
    results = run(few, mapper)
    assert tally(results)[CONFIRMED] == 0, tally(results)
    assert max(r.passes for r in results) > 6  # it did look more than once

