"""A sweep's points turned into the rows of its tables.

:func:`point_record` is a timed point's row (its times with the passes' drift taken out,
see :func:`drift_cancelled`), :func:`counted_record` that of a point counted but not
timed, :func:`sample_records` the raw timings; :func:`unspanned_note` says why counted
points have no span columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from trainbench.core.vocabulary import SPAN_METRICS
from trainbench.harness.state import Point
from trainbench.measure import point as measure
from trainbench.measure.point import PointMetrics, Timing
from trainbench.measure.span import SCHEDULE_COLUMNS
from trainbench.measure.timing import NOISY_SPREAD
from trainbench.results.schema import FORMAT_VERSION
from trainbench.stats import drift


def point_record(
    variant: str,
    size: int,
    m: PointMetrics,
    baseline_rate: float,
    rounds: int,
    cancelled: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """A point's row. ``cancelled``: per phase (fwd, bwd), its time with the passes' drift
    taken out and the spread that is left (trainbench.stats.drift); without it, the median and
    IQR/median of the raw samples."""
    if cancelled is None:
        cancelled = {
            "fwd": (m.fwd.median, m.fwd.iqr / m.fwd.median),
            "bwd": (m.bwd.median, m.bwd.iqr / m.bwd.median),
        }
    (fwd_s, fwd_spread), (bwd_s, bwd_spread) = cancelled["fwd"], cancelled["bwd"]
    bwd_runs = m.bwd.number_per_run
    m = replace(m, fwd=Timing([fwd_s], m.fwd.number_per_run), bwd=Timing([bwd_s], bwd_runs))
    rate = m.rate_flops()
    spread = max(fwd_spread, bwd_spread)
    return {
        "variant": variant,
        "size": size,
        "fwd_s": fwd_s,
        "fwd_iqr_s": fwd_s * fwd_spread,
        "bwd_s": bwd_s,
        "bwd_iqr_s": bwd_s * bwd_spread,
        "fwd_flops": m.fwd_flops,
        "bwd_flops": m.bwd_flops,
        "graph_nodes": m.graph_nodes,
        "graph_depth": m.graph_depth,
        "saved_bytes": m.saved_bytes,
        "param_bytes": m.param_bytes,
        "working_set_bytes": m.working_set_bytes,
        "peak_bytes": m.peak_bytes,
        **span_columns(m),
        "undercounted": m.undercounted,
        "census": m.census,
        "modules": m.modules,
        "gflops": rate / 1e9 if rate is not None else None,
        "efficiency": rate / baseline_rate if rate is not None and baseline_rate > 0 else None,
        "noisy": bool(spread > NOISY_SPREAD),
        "rounds": rounds,
        "fwd_runs_per_sample": m.fwd.number_per_run,
        "bwd_runs_per_sample": bwd_runs,
        "format_version": FORMAT_VERSION,
    }


def unspanned_note(points: Sequence[Point], size_name: str) -> str | None:
    """Why points whose FLOPs were counted have no span columns, if any have none."""
    missing = [p for p in points if p.counts.get("bwd_flops") and p.counts.get("span_flops")
               is None]  # fmt: skip
    if not missing:
        return None
    where = ", ".join(f"{p.variant} at {size_name} = {p.size}" for p in missing[:4])
    where += f" and {len(missing) - 4} more" if len(missing) > 4 else ""
    why = ("the FLOPs charged to the backward's nodes do not add up to its counted FLOPs"
           if measure.CHARGES_NODES else "this torch's FLOP counter cannot charge calls to nodes")
    return (f"span not recorded at {where}: {why} (bwd_bytes, span_flops, span_bytes and "
            "sched_p*_flops left empty)")


def schedule_columns(schedule: Mapping[str, int] | None) -> dict[str, int | None]:
    """T_P by column (trainbench.measure.span.SCHEDULE_COLUMNS); empty where not recorded."""
    return {c: (schedule or {}).get(c) for c in SCHEDULE_COLUMNS}


def span_columns(m: PointMetrics) -> dict[str, int | None]:
    """A point's span columns: its backward's bytes, span FLOPs and bytes, and T_P."""
    return {k: getattr(m, k) for k in SPAN_METRICS} | schedule_columns(m.schedule)


def counted_record(variant: str, size: int, counts: Mapping[str, Any]) -> dict[str, Any]:
    """The row of a point counted but not timed: its counts, no times, 0 rounds."""
    keys = ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes",
            "param_bytes", "peak_bytes", *SPAN_METRICS)  # fmt: skip
    none = ("fwd_s", "fwd_iqr_s", "bwd_s", "bwd_iqr_s", "working_set_bytes", "gflops",
            "efficiency", "fwd_runs_per_sample", "bwd_runs_per_sample")  # fmt: skip
    return ({"variant": variant, "size": size} | {k: counts.get(k) for k in keys}
            | schedule_columns(counts.get("schedule")) | dict.fromkeys(none)
            | {"undercounted": counts.get("undercounted"), "census": counts.get("census"),
               "modules": counts.get("modules")}
            | {"noisy": False, "rounds": 0, "format_version": FORMAT_VERSION})  # fmt: skip


def drift_cancelled(points: Sequence[Point]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per point and phase: its time with what each pass shared taken out (the size effect
    of trainbench.stats.drift's two-way model over its variant's points) and the spread left."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for variant in sorted({p.variant for p in points}):
        mine = sorted((p for p in points if p.variant == variant), key=lambda p: p.size)
        for phase in ("fwd", "bwd"):
            data = [p.labels(phase) for p in mine]
            logs = drift.pass_matrix(
                [np.asarray(t) for t, _ in data], [np.asarray(i) for _, i in data]
            )
            mu, delta = drift.polish(logs)
            spread = drift.residual_spread(logs, mu, delta)
            for p, m, sp in zip(mine, mu, spread, strict=True):
                out.setdefault((p.variant, p.size), {})[phase] = (float(np.exp(m)), float(sp))
    return out


def point_records(points: Sequence[Point], rate: float, counting: bool) -> list[dict[str, Any]]:
    """The rows of ``points``: the timed ones; with ``counting`` (a run stopped in its
    counting pass), also those counted so far, with no times and 0 rounds."""
    cancelled = drift_cancelled([p for p in points if p.rounds > 0])
    return [
        point_record(p.variant, p.size, p.metrics(), rate, p.rounds, cancelled[(p.variant, p.size)])
        | p.compile_record()
        if p.rounds > 0
        else counted_record(p.variant, p.size, p.counts)
        for p in points
        if p.rounds > 0 or counting
    ]


def sample_records(points: Sequence[Point]) -> list[dict[str, Any]]:
    """Every raw timing of the timed ``points``, one row a sample, with the pass it was
    taken in."""
    return [
        {
            "variant": p.variant,
            "size": p.size,
            "phase": phase,
            "round": r,  # the pass it was taken in
            "sample_s": t,
            "format_version": FORMAT_VERSION,
        }
        for p in points
        if p.rounds > 0
        for phase in ("fwd", "bwd")
        for t, r in zip(*p.labels(phase), strict=True)
    ]
