"""What a sweep measures with: the functions that count a point, build it for a pass, time
a visit of it, read the clock and measure the reference matmul rate.

:class:`Instruments` holds them, the real ones by default; ``run_sweep(...,
instruments=Instruments(time=...))`` measures with others (a fake clock, made-up times).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import monotonic
from typing import Any

import torch

from trainbench.core.settings import SweepConfig
from trainbench.experiments.builtin import Experiment
from trainbench.harness.state import Point
from trainbench.measure.modules import count_modules
from trainbench.measure.point import Timing, compile_forward, count_point, time_round
from trainbench.measure.timing import Probe, VisitPlan, matmul_rate


def count(
    exp: Experiment,
    variant: str,
    size: int,
    options: Mapping[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    by_module: int | None = None,
) -> dict[str, Any]:
    """A point's counts (``by_module``: also per module, to that depth)."""
    # (a function of its own, so that the point's model is freed when it returns or raises)
    counts = count_point(exp.forward(variant, size, options, device, dtype), device)
    if by_module is not None:  # counted once more, a newly built model, per module
        counts["modules"] = count_modules(exp.forward(variant, size, options, device, dtype),
                                          by_module)  # fmt: skip
    return counts


def probe(
    exp: Experiment,
    p: Point,
    options: Mapping[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    threads: int,
    cfg: SweepConfig,
    plan: VisitPlan | None = None,
) -> Probe:
    """The point made ready for a pass (a newly built model, a graph kept for its
    backward, block sizes: ``plan``'s where given). Under --compile it is compiled first;
    its first probe also times it eagerly, for the speed-up."""
    forward = exp.forward(p.variant, p.size, options, device, dtype)
    if cfg.compile:
        c = compile_forward(forward, device)
        if p.compile is None:
            p.compile = {"compiled": c.compiled, "compile_s": c.compile_s, "reason": c.reason}
            eager = time_round(forward, threads=threads, min_time=cfg.min_time)
            p.eager_s = sum(t.median for t in eager)
        forward = c.forward
    return Probe(forward, threads=threads, visit_s=cfg.min_time, plan=plan)


def time_visit(
    exp: Experiment, variant: str, size: int, probe: Callable[[], Probe]
) -> tuple[Timing, Timing]:
    """One visit of a point in a pass: its probe (made by ``probe``) timed once, forward
    then backward."""
    return probe().visit()


@dataclass(frozen=True)
class Instruments:
    """The functions a sweep measures with (the real ones by default).

    ``count(exp, variant, size, options, device, dtype[, by_module])``: a point's counts;
    ``probe(exp, point, options, device, dtype, threads, cfg, plan)``: the point made
    ready for a pass; ``time(exp, variant, size, probe)``: one visit timed, forward then
    backward (``probe()`` makes the point); ``now()``: the clock of --time-budget;
    ``matmul_rate(rows, inner, cols, device=, dtype=, threads=)``: the reference rate.
    """

    count: Callable[..., dict[str, Any]] = count
    probe: Callable[..., Probe] = probe
    time: Callable[[Experiment, str, int, Callable[[], Probe]], tuple[Timing, Timing]] = (
        time_visit
    )
    now: Callable[[], float] = monotonic
    matmul_rate: Callable[..., float] = matmul_rate
