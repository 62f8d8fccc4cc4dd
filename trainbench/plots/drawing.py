"""The parts every figure of a run draws with: the `Run` a figure draws, pyplot (Agg), log
axes with plain-text tick labels, the size axis, a variant's series, the legend, the margins,
and the run's own fits (the rows of its summary's ``fits``), which the figures read instead of
fitting again. Used by trainbench.plots.figures, trainbench.plots.schedule and the trainability
figures (trainbench.trainability.files). No torch in here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainbench.experiments.specs import BUILT_IN_SPECS

# each built-in experiment's size: its letter (L, T) and the word of its flags (depth, len)
SIZE = {name: (d.size_name, d.size_option) for name, d in BUILT_IN_SPECS.items()}
MARKERS = "osD^vP*X"
FIGSIZE, DPI = (7.0, 4.8), 110


@dataclass
class Run:
    """A run as a figure draws it: its summary, points and samples, where it was read from
    (``source``) and the device it ran on (``label``)."""

    folder: Path
    name: str
    summary: dict[str, Any]
    points: pd.DataFrame
    samples: pd.DataFrame
    source: Path
    label: str

    @property
    def experiment(self) -> str:
        return str(self.summary["experiment"])

    @property
    def is_sweep(self) -> bool:
        return self.experiment != "trainability"


def pyplot() -> Any:
    """matplotlib's pyplot, on the Agg backend (chosen when a figure is first drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A title at a fixed height, above the axes: matplotlib otherwise measures every tick
    # label to place it (a third of a plot's drawing time, for the same picture here).
    matplotlib.rcParams["axes.titley"] = 1.0
    return plt


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def plain_text(label: str) -> str:
    """matplotlib's log tick label ("$\\mathdefault{2\\times10^{-3}}$") as plain text
    ("2×10⁻³")."""
    if not label.startswith("$"):
        return label
    text = label.strip("$").replace(r"\mathdefault{", "", 1).removesuffix("}")
    text = text.replace(r"\times", "\u00d7").replace(r"\,", "")
    return re.sub(r"\^\{([^}]*)\}", lambda m: m.group(1).translate(SUPERSCRIPT), text)


def log_scale(ax: Any, which: str = "y", base: float = 10) -> None:
    """A log axis whose tick labels (matplotlib's choice of which to label) are plain text
    with superscripts, not mathtext: parsing mathtext took a fifth of a report's drawing."""
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLog(LogFormatterSciNotation):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return plain_text(super().__call__(x, pos))

    getattr(ax, f"set_{which}scale")("log", base=base)
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(PlainLog(base))
    axis.set_minor_formatter(PlainLog(base, labelOnlyBase=False))


def size_axis(ax: Any) -> None:
    """A log x axis labelled with plain numbers (1, 2, 5, 10, 20, ...), no minor ticks (a
    tick is costly to draw, and these would be unlabelled)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def measured_variants(runs: Sequence[Run]) -> list[str]:
    seen = [v for r in runs for v in (r.summary.get("config") or {}).get("variants") or []]
    seen += [v for r in runs for v in r.points["variant"]]
    measured = {v for r in runs for v in r.points["variant"]}
    return [v for v in dict.fromkeys(seen) if v in measured]


def series(run: Run, variant: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes, positive values, and half-IQR error bars (zeros but for times)."""
    if metric not in run.points.columns:
        return np.empty(0), np.empty(0), np.empty(0)
    rows = run.points[run.points["variant"] == variant].sort_values("size")
    n, y = rows["size"].to_numpy(float), rows[metric].to_numpy(float)
    iqr = metric.replace("_s", "_iqr_s")
    err = rows[iqr].to_numpy(float) / 2 if metric.endswith("_s") else np.zeros(len(y))
    ok = np.isfinite(y) & (y > 0)
    return n[ok], y[ok], np.nan_to_num(err[ok])


def point_records(run: Run) -> list[dict[str, Any]]:
    frame = run.points.astype(object).where(run.points.notna(), None)
    return list(frame.to_dict("records"))


def device_labels(runs: Sequence[Run]) -> list[str]:
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{r.label} ({r.source})" for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
    return labels


def legend(ax: Any, runs: Sequence[Run], variants: Sequence[str], styles: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{i}", marker="o", label=v) for i, v in enumerate(variants)]
    handles += [Line2D([], [], color="0.35", ls=ls, marker="o", mfc=mfc, alpha=alpha, label=text)
                for text, ls, mfc, alpha in styles]  # fmt: skip
    if len(runs) > 1:
        handles += [Line2D([], [], color="0.35", ls="none", marker=MARKERS[i % len(MARKERS)],
                           label=lab) for i, lab in enumerate(device_labels(runs))]  # fmt: skip
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.85)


def finish(fig: Any, ax: Any, xlabel: str, title: str, caption: str) -> None:
    size_axis(ax)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title, fontsize=9.5, loc="left")
    fig.text(0.01, 0.01, caption, fontsize=7.5, color="0.35", ha="left", va="bottom")
    # Fixed margins: tight_layout measured every label and took half of a report's time.
    lines, below = title.count("\n") + 1, caption.count("\n") + 1
    fig.subplots_adjust(left=0.11, right=0.975, bottom=0.115 + 0.025 * below,
                        top=0.975 - 0.037 * lines)  # fmt: skip


def run_fit(run: Run, variant: str, metric: str) -> dict[str, Any] | None:
    """The fit the run made of ``metric`` of ``variant`` (a row of its summary's ``fits``:
    exponent, interval, fit_from, size_range, an exact count's poly_coefficients ...); None
    where the run did not fit it."""
    for fit in run.summary.get("fits") or []:
        if fit.get("variant") == variant and fit.get("metric") == metric:
            return dict(fit)
    return None
