"""The result of a sweep: :class:`SweepResult` (the run, and views of it as DataFrames; its
claims judged again, its figures, its files) and :class:`ClaimVerdict`; the claims a user
states (:func:`user_claim`); a saved run read back (:func:`load`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import pandas as pd
from torch import Tensor

from trainbench.claims.claim import Claim, parse_order_class
from trainbench.core.lock import hold
from trainbench.core.settings import SweepError
from trainbench.core.vocabulary import FIT_METRICS, METRIC_LABELS, TIME_METRICS
from trainbench.experiments.builtin import EXPERIMENTS, Experiment
from trainbench.experiments.target import (
    DEFAULT_REFERENCE,
    MODEL,
    TargetError,
    target_experiment,
    targets_experiment,
)
from trainbench.harness.analysis import judge_claims
from trainbench.harness.breakdown import ratios
from trainbench.harness.runner import RunResult
from trainbench.measure.caches import work_metric_for
from trainbench.plots.figures import plot_figure
from trainbench.results.files import COMPILE_COLUMNS, POINT_COLUMNS, keep_earlier_run, write_run
from trainbench.results.reading import read_run
from trainbench.stats.fit import K_MAX, OrderFit

DEFAULT_TOLERANCE = 0.15


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim judged against a sweep's fits."""

    claim: str  # "O(n^2)"
    metric: str
    variant: str
    verdict: str  # confirmed | refuted | inconclusive
    reason: str
    exponent: float | None
    ci_low: float | None
    ci_high: float | None
    best_class: str | None

    def __str__(self) -> str:
        return f"{self.metric} of {self.variant} is {self.claim}: {self.verdict} ({self.reason})"


def user_claim(
    order: str, experiment: str, *, metric: str = "bwd_s", variant: str = MODEL.name,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Claim:  # fmt: skip
    """The claim "``metric`` of ``variant`` grows as ``order``" (``O(n log n)``, ``O(n^2)`` ...)."""
    try:
        exponent, order_class = parse_order_class(order)
    except ValueError as err:
        raise SweepError(f"--claim: {err}") from None
    if exponent > K_MAX:
        raise SweepError(f"--claim {order}: exponents above {K_MAX:g} cannot be fitted")
    if metric not in FIT_METRICS:
        raise SweepError(f"--metric {metric!r}: unknown (known: {', '.join(FIT_METRICS)})")
    if not 0 < tolerance < 5:
        raise SweepError(f"--tolerance must lie between 0 and 5, got {tolerance:g}")
    return Claim(
        id="claim",
        problem="",
        statement=f"{METRIC_LABELS[metric]} of {experiment} ({variant}): {order}",
        experiment=experiment,
        variant=variant,
        metric=metric,
        metrics=(metric,),
        expected=exponent,
        order_class=order_class,
        tolerance=tolerance,
        # a time is judged beside its work (its FLOPs, counted in the same run), as the
        # built-in claims are: docs/method.md, "Judging a claim"
        work_metric=work_metric_for(metric) if metric in TIME_METRICS else None,
    )


@dataclass
class SweepResult:
    """What :func:`sweep` measured: the run, and views of it as DataFrames."""

    run: Any  # trainbench.harness.runner.RunResult
    experiment: Experiment
    folder: Path | None = None  # where the run was written, if it was

    @property
    def name(self) -> str:
        return str(self.run.run or self.run.experiment)

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.run.summary())

    @property
    def points(self) -> pd.DataFrame:
        """One row per (variant, size): medians, IQRs, counts, efficiency, noise."""
        extra = [c for c in COMPILE_COLUMNS if any(c in p for p in self.run.points)]
        return pd.DataFrame(self.run.points, columns=[*POINT_COLUMNS, *extra])

    @property
    def samples(self) -> pd.DataFrame:
        return pd.DataFrame(self.run.samples)

    @property
    def fits(self) -> pd.DataFrame:
        """One row per (variant, metric): exponent k, its interval, class, verdict."""
        return pd.DataFrame(self.run.fits)

    @property
    def ratios(self) -> pd.DataFrame:
        """Several targets: per target, metric and size, its value over the first target's."""
        return pd.DataFrame(ratios(self.run.points, [v.name for v in self.experiment.variants]))

    @property
    def modules(self) -> pd.DataFrame:
        """--by-module: one row per (variant, module, metric): its order and its share of
        the total at the largest size."""
        return pd.DataFrame(self.run.modules)

    @property
    def claims(self) -> pd.DataFrame:
        """One row per claim judged in the run."""
        return pd.DataFrame(self.run.claims)

    def verdict(
        self,
        claim: str,
        metric: str = "bwd_s",
        *,
        variant: str | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> ClaimVerdict:
        """Judge "``metric`` grows as ``claim``" (``O(n)``, ``O(n log n)``, ``O(n^2)`` ...)
        against this run's fits."""
        variant = variant or self.experiment.variants[0].name
        c = user_claim(claim, self.experiment.name, metric=metric, variant=variant,
                       tolerance=tolerance)  # fmt: skip
        judged = judge_claims(
            self.experiment, self._fits(), {p["variant"] for p in self.run.points},
            self.run.config.get("options"), [c], points=self.run.points,
        )  # fmt: skip
        if not judged:
            why = f"no points of variant {variant!r}"
            return ClaimVerdict(claim, metric, variant, "inconclusive", why, *[None] * 4)
        r = judged[0]
        return ClaimVerdict(
            claim=claim, metric=metric, variant=variant, verdict=r["verdict"],
            reason=r["reason"], exponent=r.get("exponent"), ci_low=r.get("ci_low"),
            ci_high=r.get("ci_high"), best_class=r.get("best_class"),
        )  # fmt: skip

    def _fits(self) -> dict[tuple[str, str], OrderFit]:
        """The run's fits as OrderFit objects (as the run made them: nothing refitted)."""
        names = {f.name for f in dataclass_fields(OrderFit)}
        return {
            (r["variant"], r["metric"]): OrderFit(**{k: v for k, v in r.items() if k in names})
            for r in self.run.fits
        }

    def plot(self, family: str = "time", path: str | Path | None = None) -> Any:
        """A log-log figure of one metric family (time, flops, graph, memory), as
        ``trainbench report`` draws it; written to ``path`` where given."""
        return plot_figure(self.summary, self.points, self.samples, family, path)

    def save(self, folder: str | Path) -> Path:
        """Write the run to ``folder/<name>/`` (summary.json, measurements.csv, samples.csv),
        where ``trainbench report`` reads it."""
        target = Path(folder) / self.name
        with hold(target):  # one writer per run folder (trainbench.core.lock)
            if target != self.folder:  # an earlier run there is kept, renamed with its time
                keep_earlier_run(target)
            self.run.files = write_run(
                target, self.run.summary(), self.run.points, self.run.samples
            )
        self.folder = target
        return target


def load(folder: str | Path) -> SweepResult:
    """A saved sweep (a folder ``trainbench sweep`` or :meth:`SweepResult.save` wrote) read
    back as the :class:`SweepResult` it was: its points, samples, fits and verdicts as they
    were measured and judged, to judge other claims (:meth:`SweepResult.verdict`) or plot,
    without measuring. A run of a user's target does not import the target: the loaded
    result cannot measure. ResultsError (one line) for a folder that is not a sweep run."""
    path = Path(folder)
    summary, _, samples = read_run(path)
    name = str(summary["experiment"])
    config = summary.get("config") or {}
    exp = EXPERIMENTS.get(name)
    if exp is None:
        spec = config.get("target")

        def not_here(n: int) -> Callable[[], Tensor]:
            raise TargetError(f"{name}: a run loaded from {path} cannot measure its target")

        reference = str((config.get("options") or {}).get("reference", DEFAULT_REFERENCE))
        names = list(dict.fromkeys(  # in their run's order: as its points list them
            [str(p.get("variant")) for p in summary.get("points") or []]
            + [str(v) for v in config.get("variants") or []]))
        if len(names) > 1:  # several targets swept together
            targets = (config.get("options") or {}).get("targets") or names
            specs = {v: str(t) for v, t in zip(names, targets, strict=False)}
            exp = targets_experiment(dict.fromkeys(names, not_here), name, specs=specs,
                                     reference=reference)  # fmt: skip
        else:
            exp = target_experiment(not_here, name, spec=str(spec) if spec else None,
                                    reference=reference)  # fmt: skip
    run = RunResult(
        experiment=name, config=config, environment=summary.get("environment") or {},
        baseline=summary.get("baseline") or {}, points=list(summary.get("points") or []),
        samples=samples.to_dict("records"), fits=list(summary.get("fits") or []),
        claims=list(summary.get("claims") or []), complete=bool(summary.get("complete")),
        notes=list(summary.get("notes") or []), run=str(summary.get("run") or name),
        failed=list(summary.get("failed_points") or []),
        schedule=dict(summary.get("schedule") or {}),
        modules=list(summary.get("modules") or []),
    )  # fmt: skip
    return SweepResult(run, exp, path)
