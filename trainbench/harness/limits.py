"""The limits of a sweep: what ``--time-budget`` and ``--max-memory`` predict, and how a
point that runs out of memory anyway is recognised.

Before each new size the sweep asks :func:`memory_excess` whether a variant's next
point would need more than ``--max-memory``, and compares :func:`point_cost` (plus
:func:`reserved`, the timing still owed) with what is left of ``--time-budget``. Both
extrapolate from the points already counted (:func:`_extrapolate`). The constants
below are the cost model and the memory rule; the text helpers write the run's notes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainbench.harness.state import Point


# The cost model behind --time-budget. Counting a point (its model built, one forward
# and one backward under the counters) takes t_c seconds, measured. A timing round of
# the point times its forward and its backward for at least min_time each, and besides
# builds the model afresh and runs both a few times to warm up and to pick the number
# of runs per sample. So a point costs about
#     t_c + repeats * (ROUND_MIN_TIMES * min_time + ROUND_COUNTS * t_c).
# Calibrated on a 2-core CPU (mlp-heads and rnn-lm, several widths): beyond 2 * min_time
# a round took 0.3 t_c (small ops, where the counters' per-op overhead dominates t_c) to
# 1.8 t_c (large products: 3 runs of each pass plus the graph's forward), and the
# smallest points about 3 * min_time in all. The constants bound those from above.
ROUND_MIN_TIMES = 3
ROUND_COUNTS = 2
# The rule behind --max-memory: a point needs MEMORY_MARGIN times its saved activations
# (the rest for its parameters, their gradients and the backward's temporaries, which
# saved_bytes leaves out), or on CUDA its measured peak where that is larger.
MEMORY_MARGIN = 2
# The next size's value is extrapolated from the last two sizes counted along their
# log-log slope (from one size: linearly). The slope is at least 1: every experiment's
# activations and work grow at least linearly in the size, and at the small end a fixed
# overhead flattens the slope, which would under-predict. A time's slope is at most 3,
# so that one noisy pair of counting times cannot stop a run.
MIN_SLOPE = 1.0
MAX_TIME_SLOPE = 3.0

def _extrapolate(
    history: Sequence[tuple[int, float]], size: int, max_slope: float = math.inf
) -> float | None:
    """A metric at ``size`` from its values at smaller sizes (sorted by size); None: no data."""
    if not history:
        return None
    s2, v2 = history[-1]
    if v2 <= 0:
        return 0.0
    slope = MIN_SLOPE
    if len(history) >= 2:
        s1, v1 = history[-2]
        if v1 > 0 and s2 > s1:
            slope = math.log(v2 / v1) / math.log(s2 / s1)
    slope = min(max(slope, MIN_SLOPE), max_slope)
    return v2 * (size / s2) ** slope


def _bytes_text(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def secs_text(s: float) -> str:
    return f"{s:.0f}" if s >= 10 else f"{s:.2g}"


def sizes_text(sizes: Sequence[int]) -> str:
    return ", ".join(map(str, sizes))


# --------------------------------------------------------------------------- predictions


def memory_excess(points: Sequence[Point], variant: str, size: int, max_memory: int) -> str | None:
    """Why ``variant`` at ``size`` is predicted not to fit in ``max_memory`` bytes, from the
    points of ``variant`` counted at smaller sizes (None: it is predicted to fit)."""
    mine = sorted((p for p in points if p.variant == variant and p.size < size),
                  key=lambda p: p.size)  # fmt: skip
    saved = _extrapolate(
        [(p.size, float(p.counts["saved_bytes"])) for p in mine
         if p.counts.get("saved_bytes") is not None], size,
    )  # fmt: skip
    peak = _extrapolate(
        [(p.size, float(p.counts["peak_bytes"])) for p in mine
         if p.counts.get("peak_bytes") is not None], size,
    )  # fmt: skip
    need_saved = MEMORY_MARGIN * (saved or 0.0)
    if max(need_saved, peak or 0.0) <= max_memory:
        return None
    limit = f"--max-memory {_bytes_text(max_memory)}"
    if peak is not None and peak > need_saved:
        return f"predicted {_bytes_text(peak)} peak memory, over {limit}"
    return (
        f"predicted {_bytes_text(saved or 0.0)} of saved activations, over {limit} "
        f"with the {MEMORY_MARGIN}x margin for parameters, gradients and temporaries"
    )


def round_cost(count_s: float, min_time: float) -> float:
    """Predicted seconds of one timing round of a point that took ``count_s`` to count."""
    return ROUND_MIN_TIMES * min_time + ROUND_COUNTS * count_s


def predicted_count_s(points: Sequence[Point], variant: str, size: int) -> float | None:
    """Predicted seconds to count ``variant`` at ``size`` (None: none of it counted yet)."""
    history = sorted(
        (p.size, p.count_s)
        for p in points
        if p.variant == variant and p.count_s is not None and p.size < size
    )
    return _extrapolate(history, size, MAX_TIME_SLOPE)


def point_cost(
    points: Sequence[Point],
    variants: Sequence[str],
    variant: str,
    size: int,
    repeats: int,
    min_time: float,
) -> float:
    """Predicted seconds to count ``variant`` at ``size`` and time it in every round;
    ``variants``: every variant of the experiment."""
    t = predicted_count_s(points, variant, size)
    if t is None:  # its first point: as costly as the other variants' at this size
        others = (predicted_count_s(points, v, size) for v in variants)
        t = max((o for o in others if o is not None), default=0.0)
    return t + repeats * round_cost(t, min_time)


def reserved(points: Sequence[Point], repeats: int, min_time: float, grow_limit: float) -> float:
    """Predicted seconds of the timing rounds still owed to the points counted so far
    (those below ``grow_limit``)."""
    return sum(
        max(repeats - p.rounds, 0) * round_cost(p.count_s or 0.0, min_time)
        for p in points
        if p.size < grow_limit
    )
