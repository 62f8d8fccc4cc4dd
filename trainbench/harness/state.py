"""The state of a sweep: a point being measured (:class:`Point`), the progress reported to
a caller (:class:`Progress`) and the finished run (:class:`RunResult`).

The data types every part of a sweep shares, in a module of their own so that the parts
(the schedule, the limits, resume, the analysis) import them from below instead of from
the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainbench.measure.point import PointMetrics
from trainbench.measure.timing import Timing, VisitPlan
from trainbench.results.schema import FORMAT_VERSION


@dataclass
class Progress:
    done: int
    total: int
    variant: str
    size: int
    finished: bool  # False when a point starts, True when it is written


@dataclass
class RunResult:
    experiment: str
    config: dict[str, Any]
    environment: dict[str, Any]
    baseline: dict[str, Any]
    points: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    fits: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False
    notes: list[str] = field(default_factory=list)
    run: str = ""  # the run's folder name (rnn-lm-none, ...); default: the experiment's
    # points that ran out of memory (or where a target raised: "oom": False):
    # {"variant", "size", "phase": "count" | "time", "reason"}
    failed: list[dict[str, Any]] = field(default_factory=list)
    # how the timing passes went: how many, why they stopped, the interval widths reached
    schedule: dict[str, Any] = field(default_factory=dict)
    # --by-module: per variant, module and metric, its order and share (breakdown.module_fits)
    modules: list[dict[str, Any]] = field(default_factory=list)
    # where an earlier run in the same folder was moved to (not part of the summary)
    kept_earlier: Path | None = None
    # the digests of the tables last written with the summary (trainbench.results.fileset)
    files: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "experiment": self.experiment,
            "run": self.run or self.experiment,
            "complete": self.complete,
            "config": self.config,
            "environment": self.environment,
            "baseline": self.baseline,
            "notes": self.notes,
            "failed_points": self.failed,
            "schedule": self.schedule,
            "points": self.points,
            "fits": self.fits,
            "claims": self.claims,
        } | ({"modules": self.modules} if self.modules else {}) | (
            {"files": self.files} if self.files else {})


@dataclass
class Point:
    """A point being measured: its counts and its timings, one per pass it was visited in
    (``pass_ids``: which)."""

    variant: str
    size: int
    counts: dict[str, Any]
    fwd_rounds: list[Timing] = field(default_factory=list)
    bwd_rounds: list[Timing] = field(default_factory=list)
    pass_ids: list[int] = field(default_factory=list)
    count_s: float | None = None  # seconds its counting took (the time budget's yardstick)
    # --compile: how its first round compiled (compiled, compile_s, reason), and its eager
    # forward+backward time, for the speed-up
    compile: dict[str, Any] | None = None
    eager_s: float | None = None
    plan: VisitPlan | None = None  # its block sizes, calibrated at its first visit

    @property
    def rounds(self) -> int:
        return len(self.bwd_rounds)

    def add(self, pass_id: int, fwd: Timing, bwd: Timing) -> None:
        self.fwd_rounds.append(fwd)
        self.bwd_rounds.append(bwd)
        self.pass_ids.append(pass_id)

    def labels(self, phase: str) -> tuple[list[float], list[int]]:
        """Every sample of ``phase`` (fwd, bwd) and the pass it was taken in."""
        timings = self.fwd_rounds if phase == "fwd" else self.bwd_rounds
        ids = self.pass_ids or list(range(len(timings)))
        return (
            [t for timing in timings for t in timing.samples],
            [i for timing, i in zip(timings, ids, strict=False) for _ in timing.samples],
        )

    @property
    def working_set(self) -> int:
        """Bytes it holds while it waits for its next visit: parameters, their gradients
        and the saved activations of its kept graph."""
        return 2 * int(self.counts.get("param_bytes") or 0) + int(
            self.counts.get("saved_bytes") or 0
        )

    def compile_record(self) -> dict[str, Any]:
        """--compile: whether it compiled, the compile time, eager time and speed-up."""
        if self.compile is None:
            return {}
        eager = self.eager_s
        now = Timing.merge(self.fwd_rounds).median + Timing.merge(self.bwd_rounds).median
        return {
            "compiled": bool(self.compile.get("compiled")),
            "compile_s": self.compile.get("compile_s"),
            "eager_s": eager,
            "speedup": eager / now if eager and now > 0 else None,
            "compile_note": self.compile.get("reason"),
        }

    def metrics(self) -> PointMetrics:
        return PointMetrics(
            fwd=Timing.merge(self.fwd_rounds), bwd=Timing.merge(self.bwd_rounds), **self.counts
        )
