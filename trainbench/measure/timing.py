"""Timing one point: blocked samples of its forward and its backward.

``torch.utils.benchmark.Timer`` (its thread setting, and its clock, which synchronizes
CUDA) takes the samples. Forward is timed on its own (it builds a fresh graph each run).
Backward is timed on one graph built beforehand and kept with ``retain_graph=True``.
Parameter gradients accumulate into their ``.grad`` buffers, which the first (warm-up) run
allocates (as after ``zero_grad(set_to_none=False)`` in a training step), so the timed runs
measure the arithmetic rather than the allocator. A sweep times its points in passes, a
short visit of every point each (:class:`Probe`); :func:`time_round` times one point on its
own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils import common

from trainbench.measure.graph import Forward, allocate_gradients, run_backward

NOISY_SPREAD = 0.10  # IQR/median above this marks a point as noisy


@dataclass
class Timing:
    """Raw per-run times of one statement, seconds."""

    samples: list[float]
    number_per_run: int

    @property
    def median(self) -> float:
        return float(np.median(self.samples)) if self.samples else math.nan

    @property
    def iqr(self) -> float:
        if not self.samples:
            return math.nan
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @staticmethod
    def merge(timings: Sequence[Timing]) -> Timing:
        """All samples of several measurements of the same statement."""
        samples = [t for timing in timings for t in timing.samples]
        return Timing(samples, max((t.number_per_run for t in timings), default=0))



SAMPLES_PER_ROUND = 50  # blocks of about min_time / 50: many short samples, not a few long


class _BlockTimer(Timer):
    """``torch.utils.benchmark.Timer`` (threads, CUDA synchronization, blocked sampling),
    with blocks of about ``min_run_time / SAMPLES_PER_ROUND`` instead of the smallest
    power of ten of runs whose block exceeds ``min_run_time / 1000``. For a statement
    of 20 µs that rule gives blocks of 1000 runs, so a 0.05 s round holds three
    samples, each of which averages in every interruption of the machine; with about
    fifty 1 ms blocks the median leaves interrupted blocks out. Blocks stay at least
    1000 times the timer's own cost, so that cost is below 0.1%."""

    # ``_estimate_block_size`` (and ``_timeit``, ``_task_spec``) are torch's own private
    # names: ``blocked_autorange`` calls this method for its block size and its public API
    # has no other way to set one, while ``Timer.timeit`` adds warm-up runs to every call.
    # Doing without them would mean writing torch's Timer again (its clock, which
    # synchronizes CUDA, its thread setting, timeit's loop with the garbage collector off).
    def _estimate_block_size(self, min_run_time: float) -> int:
        with common.set_torch_threads(self._task_spec.num_threads):
            overhead = float(np.median([self._timeit(0) for _ in range(5)]))
            self._timeit(1)  # warm-up
            one = float(np.median([self._timeit(1) for _ in range(3)]))
        target = max(min_run_time / SAMPLES_PER_ROUND, 1000 * overhead)
        return max(1, min(int(target / max(one, 1e-9)), 2**31 - 1))


def time_statement(fn: Callable[[], object], *, threads: int, min_time: float) -> Timing:
    """Samples of ``fn()`` through ``torch.utils.benchmark``'s blocked sampling: it warms
    up, picks the runs per sample (:class:`_BlockTimer`) and takes samples until
    ``min_time`` seconds are spent (at least one sample)."""
    timer_class = _BlockTimer if hasattr(Timer, "_timeit") else Timer
    timer = timer_class(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    m = timer.blocked_autorange(min_run_time=min_time)
    return Timing(samples=list(m.times), number_per_run=m.number_per_run)


VISIT_BLOCKS = 3  # samples per visit of a point in a pass, where its statement is short enough


class _VisitTimer(Timer):
    """``torch.utils.benchmark.Timer`` (its thread setting, and its clock, which synchronizes
    CUDA) timing one short visit at a time: ``blocks`` blocks of ``number`` runs, a sample
    each. :meth:`calibrate` picks both once, from a warm-up."""

    number: int = 1
    blocks: int = 1

    def calibrate(self, visit_s: float) -> None:
        with common.set_torch_threads(self._task_spec.num_threads):
            overhead = float(np.median([self._timeit(0) for _ in range(5)]))
            self._timeit(1)  # warm-up (a backward also allocates its gradient buffers here)
            runs = [self._timeit(1)]
            if runs[0] < visit_s:  # (a run longer than a visit is timed once a visit anyway)
                runs += [self._timeit(1) for _ in range(2)]
            one = float(np.median(runs))
        self.blocks = max(1, min(VISIT_BLOCKS, int(visit_s / max(one, 1e-9))))
        target = max(visit_s / self.blocks, 1000 * overhead)
        self.number = max(1, min(int(round(target / max(one, 1e-9))), 2**31 - 1))

    def visit(self) -> list[float]:
        with common.set_torch_threads(self._task_spec.num_threads):
            return [self._timeit(self.number) / self.number for _ in range(self.blocks)]


@dataclass(frozen=True)
class VisitPlan:
    """The block sizes of a point's visits, picked by its first probe's calibration."""

    fwd_number: int
    fwd_blocks: int
    bwd_number: int
    bwd_blocks: int


class Probe:
    """A point made ready to be timed in a pass: its forward, one graph kept for its
    backward (``retain_graph=True``), and the block sizes of both. While it lives it holds
    the model, the graph's saved tensors and the gradients.

    Without ``plan`` the block sizes are calibrated here; with it (a later pass's probe of
    the same point) they are reused, and the gradients are allocated zero-filled
    (:func:`allocate_gradients`), so that every pass times the same runs on a newly
    built model."""

    def __init__(
        self, forward: Forward, *, threads: int, visit_s: float, plan: VisitPlan | None = None
    ) -> None:
        self.roots = list(forward())  # (also the forward's warm-up)
        roots = self.roots
        self.fwd = _VisitTimer(stmt="fn()", globals={"fn": forward}, num_threads=threads)
        self.bwd = _VisitTimer(
            stmt="fn()",
            globals={"fn": lambda: run_backward(roots, retain_graph=True)},
            num_threads=threads,
        )
        self.time_forward = True  # False: a visit times the backward alone
        if plan is None:
            self.fwd.calibrate(visit_s)
            self.bwd.calibrate(visit_s)
        else:
            self.fwd.number, self.fwd.blocks = plan.fwd_number, plan.fwd_blocks
            self.bwd.number, self.bwd.blocks = plan.bwd_number, plan.bwd_blocks
            allocate_gradients(roots)

    @property
    def plan(self) -> VisitPlan:
        return VisitPlan(self.fwd.number, self.fwd.blocks, self.bwd.number, self.bwd.blocks)

    def visit(self) -> tuple[Timing, Timing]:
        """One visit: the forward's samples (none where ``time_forward`` is off), then the
        backward's."""
        f = Timing(self.fwd.visit() if self.time_forward else [], self.fwd.number)
        return f, Timing(self.bwd.visit(), self.bwd.number)


def time_forward(forward: Forward, *, threads: int, min_time: float) -> Timing:
    """Forward alone: each run builds (and drops) a fresh graph."""
    return time_statement(forward, threads=threads, min_time=min_time)


def time_backward(forward: Forward, *, threads: int, min_time: float) -> Timing:
    """Backward alone, on one graph built here and kept with ``retain_graph=True``."""
    roots = list(forward())
    return time_statement(
        lambda: run_backward(roots, retain_graph=True), threads=threads, min_time=min_time
    )


def time_round(forward: Forward, *, threads: int, min_time: float) -> tuple[Timing, Timing]:
    """One round of a point: its forward timed, then its backward."""
    fwd = time_forward(forward, threads=threads, min_time=min_time)
    bwd = time_backward(forward, threads=threads, min_time=min_time)
    return fwd, bwd



def matmul_rate(
    rows: int, inner: int, cols: int, *, device: torch.device, dtype: torch.dtype, threads: int
) -> float:
    """FLOP/s of ``torch.mm`` on (rows × inner) @ (inner × cols): the machine's reference rate,
    from its fastest sample (the rate the machine reaches; a sample slowed by another
    process would make every efficiency look higher than it is)."""
    a = torch.randn(rows, inner, device=device, dtype=dtype)
    b = torch.randn(inner, cols, device=device, dtype=dtype)
    timing = time_statement(lambda: torch.mm(a, b), threads=threads, min_time=0.1)
    return 2.0 * rows * inner * cols / min(timing.samples)
