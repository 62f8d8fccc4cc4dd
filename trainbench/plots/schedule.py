"""The figure of a run's simulated machines (trainbench.measure.span): per variant, the backward's
predicted time T_P on P = 1, 2, 4, ..., ∞ processors against size, with Brent's bounds.

T_1 is the work (``bwd_flops``), T_∞ the span (``span_flops``), T_P the greedy schedule
of the recorded backward graph (``sched_p{P}_flops``): all in FLOPs, the time of a
machine on which only the counted products take time. A band per P shows Brent's bounds
max(W/P, S) ≤ T_P ≤ (W - S)/P + S. Where the span grows as the work (a chain) every
line is the same; where it is flat (no recurrence), T_P falls towards it as P grows.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from trainbench.core.vocabulary import PROCESSORS, SCHEDULE_COLUMNS
from trainbench.plots.figures import (
    DPI,
    FIGSIZE,
    SIZE,
    Run,
    _pyplot,
    _size_axis,
    _variants,
    log_scale,
)
from trainbench.stats.fit import window_start
from trainbench.stats.power import fit_exponent

COLUMNS = ("bwd_flops", *SCHEDULE_COLUMNS, "span_flops")  # T_1, T_2 .. T_16, T_∞
CAPTION = ("greedy list scheduling of the recorded backward graph, each node costing its "
           "FLOPs; bands: Brent's bounds max(W/P, S) ≤ T_P ≤ (W − S)/P + S; "
           "k: the work's and the span's fitted exponents")  # fmt: skip


def schedule_table(points: pd.DataFrame, variant: str) -> pd.DataFrame:
    """Sizes and T_1 .. T_∞ of ``variant``, the rows where every one was recorded."""
    if any(c not in points.columns for c in COLUMNS):
        return pd.DataFrame(columns=["size", *COLUMNS])
    rows = points[points["variant"] == variant].sort_values("size")
    table = rows[["size", *COLUMNS]].apply(pd.to_numeric, errors="coerce")
    return table[table[list(COLUMNS)].notna().all(axis=1) & (table["span_flops"] > 0)]


def _exponent(n: np.ndarray, y: np.ndarray) -> float | None:
    start = window_start(n)
    if len(n) - start < 3:
        return None
    return float(fit_exponent(n[start:], y[start:])[0])


def _labels() -> list[str]:
    return ["P = 1 (work)", *(f"P = {p}" for p in PROCESSORS), "P = ∞ (span)"]


def plot_schedule(runs: Sequence[Run]) -> Any:
    """One panel per variant of the first run; None where no point has the schedule (a run
    made before it was recorded, or FLOPs that could not be counted)."""
    run = runs[0]
    tables = [(v, schedule_table(run.points, v)) for v in _variants([run])]
    tables = [(v, t) for v, t in tables if len(t)]
    if not tables:
        return None
    plt = _pyplot()
    letter = SIZE.get(run.experiment, ("n",))[0]
    cols = min(len(tables), 3)
    rows = -(-len(tables) // cols)
    width = max(FIGSIZE[0], 4.2 * cols + 0.6)  # inches: one panel as wide as other figures
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.7 * rows + 1.1), squeeze=False)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(COLUMNS)))
    for ax, (variant, table) in zip(axes.flat, tables, strict=False):
        n = table["size"].to_numpy(float)
        work, depth = table["bwd_flops"].to_numpy(float), table["span_flops"].to_numpy(float)
        for j, (column, label) in enumerate(zip(COLUMNS, _labels(), strict=True)):
            y = table[column].to_numpy(float)
            if 0 < j < len(COLUMNS) - 1:
                p = PROCESSORS[j - 1]
                low, high = np.maximum(work / p, depth), (work - depth) / p + depth
                ax.fill_between(n, low, high, color=colors[j], alpha=0.14, lw=0)
            ends = j in (0, len(COLUMNS) - 1)  # work and span: a fitted order each
            k = _exponent(n, y) if ends else None
            text = label + (f", k = {k:.2f}" if k is not None else "")
            ls = "-" if ends else "--"
            ax.plot(n, y, ls, marker="o", ms=3.5, color=colors[j], lw=1.4, label=text)
        if (table["sched_p2_flops"] == table["bwd_flops"]).all():  # every line is one
            ax.text(0.97, 0.04, "every P the same: a chain (span = work)", ha="right",
                    va="bottom", fontsize=8, color="0.3", transform=ax.transAxes)  # fmt: skip
        _size_axis(ax)
        log_scale(ax)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlabel(f"size {letter}", fontsize=9.5)
        ax.set_title(variant, fontsize=9.5, loc="left")
        ax.legend(fontsize=7.5, loc="upper left", framealpha=0.85)
    for ax in list(axes.flat)[len(tables):]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("simulated backward time T_P (FLOPs)", fontsize=9.5)
    title = (f"{run.name}: the backward on P processors, simulated from its graph (T_1 the "
             "work, T_∞ the span)")  # fmt: skip
    chars = int(width * 12.5)  # about what a line of 10.5-point text holds per inch
    lines = textwrap.wrap(title, chars)
    fig.suptitle("\n".join(lines), fontsize=10.5, x=0.01, ha="left")
    caption = "\n".join(textwrap.wrap(CAPTION, int(width * 18)))
    fig.text(0.01, 0.01, caption, fontsize=7.5, color="0.35", ha="left", va="bottom")
    height = 3.7 * rows + 1.1
    top = 1 - (0.3 + 0.2 * len(lines)) / height  # inches kept above the panels
    bottom = (0.55 + 0.13 * (caption.count("\n") + 1)) / height  # the x label and the caption
    fig.subplots_adjust(left=0.85 / width, right=1 - 0.15 / width, bottom=bottom, top=top,
                        wspace=0.22, hspace=0.45)  # fmt: skip
    fig.set_dpi(DPI)
    return fig
