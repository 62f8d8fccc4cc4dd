"""Verdict rates on simulated sweeps: the calibration of the fit's verdicts.

Seeded trials of a statement of known growth (:class:`Workload`) are timed on the noise
simulator (:mod:`trainbench.stats.simulator`) the way the harness times a sweep, fitted
(:func:`trainbench.stats.fit.fit_order`) and judged (:func:`trainbench.stats.judge.judge`);
:func:`calibration_table` counts the verdicts of every case, the table of the Calibration
section of ``docs/method.md``. ``python -m trainbench.stats.noise [--trials N]`` prints it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainbench.core.vocabulary import CONFIRMED
from trainbench.stats.fit import fit_order
from trainbench.stats.judge import judge
from trainbench.stats.simulator import PRESETS, QUIET, NoiseModel, simulate_passes


def _linear(n: np.ndarray) -> np.ndarray:
    return n


def _n_log_n(n: np.ndarray) -> np.ndarray:
    return n * np.log(n)


def _power(k: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda n: n**k


GROWTHS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "n": _linear,
    "n log n": _n_log_n,
    "n^1.3": _power(1.3),
    "n^1.5": _power(1.5),
    "n^2": _power(2.0),
    "n^3": _power(3.0),
}


@dataclass(frozen=True)
class Workload:
    """A statement whose true time is ``overhead_s + c·g(n)``, with ``g = GROWTHS[growth]``
    and ``c`` such that the time at ``top_n`` is ``top_s``."""

    growth: str
    overhead_s: float = 5e-4
    top_s: float = 0.02
    top_n: float = 128.0

    def __call__(self, n: np.ndarray) -> np.ndarray:
        g = GROWTHS[self.growth]
        c = (self.top_s - self.overhead_s) / float(g(np.asarray(self.top_n, dtype=float)))
        return self.overhead_s + c * g(np.asarray(n, dtype=float))


@dataclass(frozen=True)
class Trial:
    """One seeded trial: simulate a sweep, fit it, judge a claim."""

    workload: Workload
    expected: float  # the claimed exponent
    tolerance: float
    seed: int
    sizes: tuple[float, ...] = (8, 11, 16, 23, 32, 45, 64, 91, 128)
    model: NoiseModel = QUIET
    passes: int = 12
    blocks_per_visit: int = 3
    visit_s: float | None = 0.01  # the harness's rule (trainbench.measure.timing)
    gap_s: float = 0.01  # the other phase's visit, untimed here
    n_boot: int = 200
    labelled: bool = True  # give fit_order the pass labels (False: medians per size)
    # "fixed": judged after ``passes`` passes. "confirmed": the harness's --until confirmed,
    # judged after every pass from ``min_passes`` on, stopping at the first that reads
    # confirmed or whose interval's half-width is at most ``precision`` (its --precision
    # rule); ``passes`` is then --max-passes.
    until: str = "fixed"
    min_passes: int = 6
    precision: float = 0.05


@dataclass(frozen=True)
class TrialResult:
    verdict: str
    exponent: float
    ci_low: float
    ci_high: float
    best_class: str
    passes: int = 0  # the passes it was judged after


def run_trial(trial: Trial) -> TrialResult:
    """Simulate ``trial``'s sweep on its machine, fit it and judge its claim."""
    rng = np.random.default_rng(trial.seed)
    values, labels = simulate_passes(
        trial.sizes,
        trial.workload,
        trial.passes,
        trial.model,
        rng,
        blocks_per_visit=trial.blocks_per_visit,
        visit_s=trial.visit_s,
        gap_s=trial.gap_s,
    )

    def judged(passes: int) -> tuple[str, Any]:
        kept = [[i for i, lab in enumerate(mine) if lab < passes] for mine in labels]
        fit = fit_order(
            trial.sizes,
            [[v[i] for i in k] for v, k in zip(values, kept, strict=True)],
            rounds=[[lab[i] for i in k] for lab, k in zip(labels, kept, strict=True)]
            if trial.labelled else None,
            seed=trial.seed,
            n_boot=trial.n_boot,
        )  # fmt: skip
        return judge(fit, trial.expected, trial.tolerance).verdict, fit

    passes = trial.passes
    if trial.until == "confirmed":
        for passes in range(min(trial.min_passes, trial.passes), trial.passes + 1):
            verdict, fit = judged(passes)
            if verdict == CONFIRMED or (fit.ci_high - fit.ci_low) / 2 <= trial.precision:
                break
    else:
        verdict, fit = judged(passes)
    return TrialResult(verdict, fit.exponent, fit.ci_low, fit.ci_high, fit.best_class, passes)


def run_trials(
    trials: Sequence[Trial], map_fn: Callable[..., object] | None = None
) -> list[TrialResult]:
    """:func:`run_trial` over ``trials``, through ``map_fn`` (an executor's ``map``, say)."""
    mapper = map if map_fn is None else map_fn
    return list(mapper(run_trial, trials))  # type: ignore[call-overload]


# The cases of tests/test_calibration.py: (true growth, claimed exponent).
CASES: tuple[tuple[str, float], ...] = (
    ("n", 1.0),
    ("n^2", 2.0),
    ("n^1.3", 1.0),
    ("n^1.5", 1.0),
    ("n log n", 1.0),
)


def calibration_table(
    trials: int = 100,
    *,
    models: Sequence[str] = ("quiet", "loaded"),
    labelled: Sequence[bool] = (True, False),
    first_seed: int = 0,
    workers: int = 2,
    passes: int = 12,
    until: str = "fixed",
) -> list[dict[str, object]]:
    """The verdict counts of every case, preset and estimator (with pass labels or on
    per-size medians), ``trials`` seeded trials each: the table of docs/method.md."""
    # This module by its import name: run as ``python -m trainbench.stats.noise`` it is
    # ``__main__``, and the spawned workers could not unpickle its trials and run_trial by
    # that name. (A module importing itself: here, where it is sure to be complete.)
    import trainbench.stats.noise as noise

    rows: list[dict[str, object]] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        for name in models:
            for lab in labelled:
                for growth, expected in CASES:
                    batch = [
                        noise.Trial(
                            noise.Workload(growth),
                            expected,
                            0.15,
                            first_seed + s,
                            model=PRESETS[name],
                            passes=passes,
                            labelled=lab,
                            until=until,
                        )
                        for s in range(trials)
                    ]
                    res = list(ex.map(noise.run_trial, batch, chunksize=max(1, trials // 8)))
                    k = np.array([r.exponent for r in res])
                    truth = float(growth[2:]) if growth.startswith("n^") else None
                    truth = 1.0 if growth == "n" else truth
                    row: dict[str, object] = {
                        "machine": name,
                        "estimator": "pass labels" if lab else "medians",
                        "true": growth,
                        "claim": expected,
                        **{v: 0 for v in ("confirmed", "refuted", "inconclusive")},
                        **Counter(r.verdict for r in res),
                        "k_median": round(float(np.median(k)), 3),
                        "k_sd": round(float(k.std()), 3),
                        "width_median": round(
                            float(np.median([r.ci_high - r.ci_low for r in res])), 3
                        ),
                        "passes_median": float(np.median([r.passes for r in res])),
                    }
                    if truth is not None:
                        cover = np.mean([r.ci_low <= truth <= r.ci_high for r in res])
                        row["covered"] = round(float(cover), 3)
                    rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trainbench.stats.noise [--trials N]``: print the calibration table."""
    p = argparse.ArgumentParser(description="Verdict rates on simulated sweeps.")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--passes", type=int, default=12)
    p.add_argument("--models", default="quiet,loaded")
    p.add_argument("--until", choices=("fixed", "confirmed"), default="fixed",
                   help="confirmed: stop at the first confirmed pass from 6 on (--passes: "
                   "the most)")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    args = p.parse_args(argv)
    rows = calibration_table(
        args.trials,
        models=args.models.split(","),
        first_seed=args.first_seed,
        workers=args.workers,
        passes=args.passes,
        until=args.until,
    )
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"| {row['machine']} | {row['estimator']} | {row['true']} | "
                f"O(n^{row['claim']:g}) | {row['confirmed']} | {row['refuted']} | "
                f"{row['inconclusive']} | {row['k_median']} ± {row['k_sd']} | "
                f"{row['width_median']} | {row.get('covered', '')} | {row['passes_median']:g} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
