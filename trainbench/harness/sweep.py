"""One run while it measures (:class:`Sweep`): its points, its limits, its files and the
progress it reports.

The counting pass (:mod:`trainbench.harness.counting`) and the timing passes
(:mod:`trainbench.harness.passes`) work on a :class:`Sweep`;
:func:`trainbench.harness.runner.run_sweep` makes it and runs them.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainbench.claims.parse import Claim
from trainbench.core.settings import SweepConfig, first_line
from trainbench.experiments.builtin import Experiment
from trainbench.harness.analysis import finish
from trainbench.harness.instruments import Instruments
from trainbench.harness.limits import memory_excess, sizes_text
from trainbench.harness.records import point_records, sample_records
from trainbench.harness.state import Point, Progress, RunResult
from trainbench.measure import watchdog
from trainbench.measure.memory import free_memory
from trainbench.measure.watchdog import PointTimeout
from trainbench.results.files import write_run


def what_failed(err: BaseException) -> str:
    """An error in a line: its type and its first line."""
    return f"{type(err).__name__}: {first_line(err)}"



class Sweep:
    """One run while it measures: its points, its limits and its files.

    ``todo``: the (variant, size) points of its plan; ``rate``: the reference matmul rate
    its efficiencies are over; ``folder``: where its files go (None: nowhere);
    ``started``: when it began, on ``instruments.now``'s clock; ``points``: those an
    earlier run measured (``--resume``); ``claims``: the claims judged (None: the file's).
    """

    def __init__(
        self,
        *,
        exp: Experiment,
        cfg: SweepConfig,
        device: torch.device,
        dtype: torch.dtype,
        threads: int,
        todo: list[tuple[str, int]],
        result: RunResult,
        rate: float,
        folder: Path | None,
        on_progress: Callable[[Progress], None] | None,
        started: float,
        points: list[Point],
        claims: Sequence[Claim] | None,
        instruments: Instruments,
    ) -> None:
        self.exp, self.cfg, self.device, self.dtype, self.threads = exp, cfg, device, dtype, threads
        self.todo, self.result, self.rate, self.folder = todo, result, rate, folder
        self.on_progress, self.started = on_progress, started
        self.points = points
        self.claims = claims
        self.instruments = instruments
        self.options = cfg.options | {"seed": cfg.seed}
        self.uncounted = bool(exp.uncounted_flops and exp.uncounted_flops(cfg.options, device))
        self.rank = {v.name: i for i, v in enumerate(exp.variants)}
        self.grow_limit: float = math.inf  # no point this large or larger is measured any more
        self.warm = False  # a point has been counted in this run
        for f in result.failed:
            self.grow_limit = min(self.grow_limit, f["size"])
        self.done = sum(p.rounds for p in points)
        self.total = max(len(todo) * cfg.repeats, self.done)
        self.counting = False  # in the counting pass

    # files and progress

    def save(self) -> None:
        """The points in ``result`` (:meth:`collect`), then on disk."""
        self.collect()
        self.write()

    def finish_and_save(self) -> None:
        """Fit what was measured, judge the claims, and save."""
        self.collect()
        if self.result.points:
            finish(self.result, self.exp, self.cfg.seed, self.claims)
        self.write()

    def write(self) -> None:
        """``result`` on disk (where the run has a folder)."""
        if self.folder is not None:
            result = self.result
            result.files = write_run(self.folder, result.summary(), result.points, result.samples)

    def collect(self) -> None:
        """The points in ``result``: the timed ones; while the counting pass is on (a run
        stopped in it), also those counted so far, with no times and 0 rounds, so that
        their counts are kept and fitted. (Once the timing passes have begun, a point not
        timed is left out: one a failure or the budget stopped is not part of the run.)"""
        self.result.points = point_records(self.points, self.rate, self.counting)
        self.result.samples = sample_records(self.points)

    def tick(self, variant: str, size: int, finished: bool) -> None:
        if self.on_progress:
            self.on_progress(Progress(self.done, self.total, variant, size, finished=finished))

    def recount_total(self) -> None:
        reps = self.cfg.repeats
        self.total = sum(
            max(p.rounds, reps) if p.size < self.grow_limit else p.rounds for p in self.points
        )

    # limits

    def elapsed(self) -> float:
        return self.instruments.now() - self.started

    def not_measured(self, size: int, variant: str | None = None) -> list[int]:
        """The sizes from ``size`` on (of ``variant``, or of any) that have no point yet."""
        have = {(p.variant, p.size) for p in self.points}
        return sorted(
            {
                s
                for v, s in self.todo
                if s >= size and (variant is None or v == variant) and (v, s) not in have
            }
        )

    def over_memory(self, variant: str, size: int) -> str | None:
        """Why ``variant`` at ``size`` is predicted not to fit in --max-memory (None: it is not)."""
        assert self.cfg.max_memory is not None
        why = memory_excess(self.points, variant, size, self.cfg.max_memory)
        if why is None:
            return None
        skipped = sizes_text(self.not_measured(size, variant))
        return f"skipped {self.exp.size_name} = {skipped} ({variant}): {why}"

    def fail(self, variant: str, size: int, phase: str, reason: str, oom: bool = True) -> None:
        record = {"variant": variant, "size": size, "phase": phase, "reason": reason}
        if not oom:  # a target that broke its contract at this size
            record["oom"] = False
        self.result.failed.append(record)
        self.grow_limit = min(self.grow_limit, size)
        self.result.notes.append(self.failure_note(record))
        free_memory(self.device)
        self.recount_total()

    def stuck(self, variant: str, size: int, phase: str) -> Callable[[PointTimeout], None] | None:
        """What to do with a point that swallows its timeout (trainbench.measure.watchdog), where
        the process may be ended (the command line): record it as failed, fit and save
        what was measured, say so on stderr and end the process with exit 1. None (the
        alarms go on) where it may not."""
        if not watchdog.EXIT_WHEN_STUCK:
            return None

        def end(timeout: PointTimeout) -> None:
            self.fail(variant, size, phase, f"{timeout} and did not stop when interrupted",
                      oom=False)  # fmt: skip
            self.result.notes.append(
                "the run was ended there: the point would not stop (--resume goes on without it)"
            )
            self.finish_and_save()
            n = self.exp.size_name
            sys.stderr.write(
                f"trainbench: error: {variant} at {n} = {size} {timeout} and did not stop "
                "when interrupted; the run is saved (incomplete): --resume goes on without "
                "it\n"
            )
            sys.stderr.flush()
            os._exit(1)

        return end

    def failure_note(self, record: Mapping[str, Any]) -> str:
        n, size = self.exp.size_name, record["size"]
        later = sorted({s for _, s in self.todo if s >= size})
        doing = "counting" if record["phase"] == "count" else "timing"
        what = "ran out of memory" if record.get("oom", True) else "failed"
        return (
            f"{record['variant']} at {n} = {size} {what} while {doing} "
            f"({record['reason']}): stopped growing, {n} = {sizes_text(later)} not "
            + ("measured" if record["phase"] == "count" else "measured further")
        )
