"""The plots of `trainbench report`: per-family figures (time, FLOPs, graph, memory), the
local slope, time per unit of work and forward-against-backward figures of a sweep run, and
the files they are written to, with the constants they use (families, axis labels, captions,
title widths). Runs of the same name from several folders are overlaid: one colour per
variant, one marker per device. A fitted line or exponent is the run's own fit (its summary's
``fits``), never fitted again here. No torch in here.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainbench.core.vocabulary import COUNT_METRICS, METRIC_LABELS
from trainbench.measure.caches import Crossing, run_crossings, time_per_work
from trainbench.plots.drawing import (
    DPI,
    FIGSIZE,
    MARKERS,
    SIZE,
    Run,
    device_labels,
    finish,
    legend,
    log_scale,
    measured_variants,
    point_records,
    pyplot,
    run_fit,
    series,
    size_axis,
)
from trainbench.plots.schedule import plot_schedule
from trainbench.results.verdicts import verdict_rows

FAMILIES = {
    "time": ("bwd_s", "fwd_s"),
    "flops": ("bwd_flops", "fwd_flops"),
    "graph": ("graph_nodes", "graph_depth"),
    "memory": ("saved_bytes", "peak_bytes"),
}
Y_LABELS = {"time": "median time per pass (s)", "flops": "FLOPs per pass",
            "graph": "autograd graph: nodes, depth", "memory": "bytes"}  # fmt: skip
SWEEP_COLUMNS = ("variant", "size", "fwd_s", "fwd_iqr_s", "bwd_s", "bwd_iqr_s", *COUNT_METRICS)
WIDE = (10.0, 4.6)
TITLE_WIDTH, TITLE_LINES = 70, 3
NBSP = "\u00a0"  # keeps " (k = 1.01 [0.97, 1.05])" on one title line
CAPTION = "points: medians (bars ±IQR/2); lines: a + b·{0}^k fitted over the fit window"
CROSSING_CAPTION = "; dotted verticals: cache crossings"
PLOTS = (*FAMILIES, "time-per-work", "local-slope", "fwd-bwd", "schedule")


def local_slopes(sizes: Sequence[float], values: Sequence[float]) -> list[float]:
    """d log value / d log size between consecutive sizes (sorted by size); NaN where a
    value is not positive."""
    pairs = sorted(zip(sizes, values, strict=True))
    out = []
    for (n0, y0), (n1, y1) in zip(pairs, pairs[1:], strict=False):
        ok = y0 > 0 and y1 > 0 and n1 > n0 > 0
        out.append(math.log(y1 / y0) / math.log(n1 / n0) if ok else math.nan)
    return out


def fit_line(run: Run, variant: str, metric: str, n: np.ndarray, y: np.ndarray) -> Any:
    """The run's fit of ``metric`` of ``variant`` as a line over its fit window (fit_from to
    fit_from · size_range; to the largest size where the range is not recorded); None where
    the run did not fit it. An exact count's line is the polynomial the run found. Otherwise
    the run records the exponent k of a + b·n^k, not a and b: those are the least squares,
    relative errors, of the points in the window with the run's k (the exponent is not fitted
    again)."""
    fit = run_fit(run, variant, metric)
    if fit is None or fit.get("exponent") is None or fit.get("fit_from") is None:
        return None
    low = float(fit["fit_from"])
    high = low * float(fit["size_range"]) if fit.get("size_range") else max([low, *n])
    xs = np.geomspace(low, high, 60)
    if fit.get("poly_coefficients"):
        ys = np.polynomial.polynomial.polyval(xs, [float(c) for c in fit["poly_coefficients"]])
    else:
        sel = (n >= low * (1 - 1e-9)) & (n <= high * (1 + 1e-9))
        if sel.sum() < 3:
            return None
        k = float(fit["exponent"])
        weight = 1.0 / y[sel]
        basis = np.column_stack([np.ones(int(sel.sum())), n[sel] ** k])
        (a, b), *_ = np.linalg.lstsq(basis * weight[:, None], y[sel] * weight, rcond=None)
        ys = a + b * xs**k
    return xs[ys > 0], ys[ys > 0]


def _crossings(run: Run, variant: str) -> list[Crossing]:
    """Where the variant's working set passes one of the run's caches (none for runs
    without ``working_set_bytes`` or ``caches``)."""
    caches = (run.summary.get("environment") or {}).get("caches")
    if not caches or "working_set_bytes" not in run.points.columns:
        return []
    return run_crossings(point_records(run), variant, caches)


def _crossing_lines(ax: Any, runs: Sequence[Run], variants: Sequence[str]) -> bool:
    """A dotted vertical at each cache crossing (between its two sizes, at their geometric
    mean), in the variant's colour, labelled with the cache level; whether any was drawn."""
    from matplotlib.transforms import blended_transform_factory

    where = blended_transform_factory(ax.transData, ax.transAxes)
    seen: set[tuple[str, float, int]] = set()
    for run in runs:
        for vi, variant in enumerate(variants):
            for c in _crossings(run, variant):
                x = math.sqrt(c.n_lo * c.n_hi)
                if (c.level, x, vi) in seen:
                    continue
                seen.add((c.level, x, vi))
                ax.axvline(x, ls=":", color=f"C{vi}", alpha=0.7, lw=1.2, zorder=0)
                ax.text(x, 0.98, f" {c.level}", transform=where, rotation=90, fontsize=7.5,
                        color=f"C{vi}", ha="right", va="top", alpha=0.9)  # fmt: skip
    return bool(seen)


def _title(runs: Sequence[Run], metrics: Sequence[str], fallback: str) -> str:
    """A line per claim on these metrics, wrapped; shortened (controls by id only, then no
    measured order, then ids only) until it fits TITLE_LINES lines."""
    labels = device_labels(runs)
    rows = [{r["id"]: r for r in verdict_rows([run.summary])} for run in runs]
    claims = [c for c in runs[0].summary.get("claims") or [] if c.get("metric") in metrics]
    if not claims:
        return fallback
    texts: list[str] = []
    for full, full_control, measured in ((1, 1, 1), (1, 0, 1), (1, 0, 0), (0, 0, 0)):
        texts = []
        for c in claims:
            found = [(lab, by_id[c["id"]]) for lab, by_id in zip(labels, rows, strict=True)
                     if c["id"] in by_id]  # fmt: skip
            said = [r["verdict"] + (f" ({r['measured']})".replace(" ", NBSP) if measured else "")
                    for _, r in found]  # fmt: skip
            if len(runs) > 1:
                said = [f"{lab}: {v}" for (lab, _), v in zip(found, said, strict=True)]
            head = full_control if c.get("is_control") else full
            head_text = f"{c['id']}: {c.get('statement', '')}" if head else c["id"]
            texts.append(f"{head_text} — " + "; ".join(said))
        lines = [w for text in texts for w in textwrap.wrap(text, TITLE_WIDTH)]
        if len(lines) <= TITLE_LINES:
            return "\n".join(lines)
    wrapped = textwrap.wrap("; ".join(texts), TITLE_WIDTH, max_lines=TITLE_LINES, placeholder=" …")
    return "\n".join(wrapped)


def _reference_slopes(ax: Any, n0: float, y0: float, n_max: float, letter: str) -> None:
    """Faint n¹ and n² through (n0, y0), drawn without widening the axes."""
    ylim = ax.get_ylim()
    ax.set_autoscale_on(False)
    for power, sup in ((1, "¹"), (2, "²")):
        x_end = min(n_max, n0 * (ylim[1] / y0) ** (1 / power))
        xs = np.geomspace(n0, max(x_end, n0 * 1.0001), 20)
        ax.plot(xs, y0 * (xs / n0) ** power, ":", color="0.65", lw=1.1, zorder=0)
        ax.annotate(f"{letter}{sup}", (xs[-1], y0 * (xs[-1] / n0) ** power), fontsize=8,
                    color="0.5", xytext=(2, -10), textcoords="offset points")  # fmt: skip


def plot_family(runs: Sequence[Run], family: str) -> tuple[Any, list[str]]:
    """A figure of one metric family (time, flops, graph, memory) for runs of one experiment,
    overlaid; None where nothing was counted. Also what was skipped, as notes."""
    plt = pyplot()
    letter = SIZE.get(runs[0].experiment, ("n",))[0]
    variants, metrics = measured_variants(runs), FAMILIES[family]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.set_xscale("log")
    log_scale(ax)
    styles, skipped, anchor, n_max = [], [], None, 1.0
    for j, metric in enumerate(metrics):
        claimed = any(c.get("metric") == metric for c in runs[0].summary.get("claims") or [])
        ls, mfc, alpha = ("-", None, 1.0) if j == 0 else ("--", "none", 1.0 if claimed else 0.55)
        drawn = False
        for i, run in enumerate(runs):
            for vi, variant in enumerate(variants):
                n, y, err = series(run, variant, metric)
                if not len(n):
                    continue
                drawn, color = True, f"C{vi}"
                anchor, n_max = anchor or (n[0], y[0]), max(n_max, n[-1])
                yerr = np.vstack([np.minimum(err, 0.95 * y), err]) if err.any() else None
                ax.errorbar(n, y, yerr=yerr, fmt=MARKERS[i % len(MARKERS)], color=color, ms=5,
                            mfc=mfc or color, alpha=alpha, capsize=2, elinewidth=1)  # fmt: skip
                line = fit_line(run, variant, metric, n, y)
                if line is not None:
                    ax.plot(*line, ls, color=color, alpha=alpha, lw=1.5)
        if drawn:
            styles.append((METRIC_LABELS[metric], ls, mfc, alpha))
        else:
            skipped.append(METRIC_LABELS[metric])
    name = runs[0].name
    notes = [f"{name}: {m} " + ("not measured (CUDA only)" if m == "peak bytes" else
             "not timed at any size yet (not plotted)" if family == "time" else
             "not counted at any size (not plotted)") for m in skipped]  # fmt: skip
    if not styles:
        plt.close(fig)
        return None, notes
    _reference_slopes(ax, anchor[0], anchor[1], n_max, letter)
    crossed = family == "time" and _crossing_lines(ax, runs, variants)
    ax.set_ylabel(Y_LABELS[family], fontsize=10)
    legend(ax, runs, variants, styles)
    caption = CAPTION.format(letter) + f"; dotted: slopes {letter}¹, {letter}²"
    caption += CROSSING_CAPTION if crossed else ""
    caption += "".join(
        f"; {m}: " + ("CUDA only" if m == "peak bytes" else "not counted") for m in skipped
    )
    fallback = f"{name}: {' and '.join(METRIC_LABELS[m] for m in metrics)} against {letter}"
    finish(fig, ax, f"size {letter}", _title(runs, metrics, fallback), caption)
    return fig, notes


def plot_figure(
    summary: dict[str, Any],
    points: pd.DataFrame,
    samples: pd.DataFrame,
    family: str,
    path: str | Path | None = None,
) -> Any:
    """One of a run's figures from the run in memory: a metric family (time, flops, graph,
    memory), "time-per-work", "local-slope", "fwd-bwd" or "schedule"; saved to ``path``
    where given (its suffix is the format). None where the family was not counted at any
    size."""
    if family not in PLOTS:
        raise ValueError(f"unknown plot {family!r} (known: {', '.join(PLOTS)})")
    points = points.copy()
    for col in (*SWEEP_COLUMNS[2:], "peak_bytes", "working_set_bytes"):
        if col in points.columns:
            points[col] = pd.to_numeric(points[col], errors="coerce").astype(float)
    env = summary.get("environment") or {}
    label = " · ".join(str(env[k]) for k in ("device", "device_name") if env.get(k))
    name = str(summary.get("run") or summary["experiment"])
    run = Run(Path(name), name, summary, points, samples, Path("."), label or "unknown device")
    if family == "local-slope":
        fig = _plot_local_slope([run])
    elif family == "fwd-bwd":
        fig = _plot_fwd_bwd([run])
    elif family == "time-per-work":
        fig = _plot_time_per_work([run])
    elif family == "schedule":
        fig = plot_schedule([run])
    else:
        fig, _ = plot_family([run], family)
    if fig is not None and path is not None:
        fig.savefig(path, dpi=DPI)
    return fig


def _plot_local_slope(runs: Sequence[Run]) -> Any:
    """The log-log slope of the times between consecutive sizes. Not a fit the run made (a
    slope between two adjacent sizes, no window): computed here, from the points."""
    plt = pyplot()
    letter = SIZE.get(runs[0].experiment, ("n",))[0]
    variants = measured_variants(runs)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, run in enumerate(runs):
        for vi, variant in enumerate(variants):
            for metric, ls, alpha in (("bwd_s", "-", 1.0), ("fwd_s", "--", 0.45)):
                n, y, _ = series(run, variant, metric)
                if len(n) > 1:
                    ax.plot(np.sqrt(n[:-1] * n[1:]), local_slopes(n, y), ls, alpha=alpha,
                            marker=MARKERS[i % len(MARKERS)], color=f"C{vi}", ms=4)  # fmt: skip
    for level in (1, 2):
        ax.axhline(level, color="0.55", ls=":", lw=1.2, zorder=0)
    ax.set_xscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, -1.0), min(max(high, 2.5), 4.0))
    ax.set_ylabel(f"local slope  d log t / d log {letter}", fontsize=10)
    legend(ax, runs, variants, [("backward", "-", None, 1.0), ("forward", "--", "none", 0.45)])
    title = (f"{runs[0].name}: local slope of the time between consecutive sizes (1: linear, "
             "2: quadratic); where it settles, the fixed overheads have ended")  # fmt: skip
    caption = f"each point lies at the geometric mean of two consecutive {letter}; y within [-1, 4]"
    finish(fig, ax, f"size {letter}", "\n".join(textwrap.wrap(title, TITLE_WIDTH)), caption)
    return fig


def _plot_time_per_work(runs: Sequence[Run]) -> Any:
    """Backward seconds per backward FLOP (per graph node where the FLOPs are not counted)
    against size, log-log, with the cache crossings; None where nothing can be drawn."""
    plt = pyplot()
    letter = SIZE.get(runs[0].experiment, ("n",))[0]
    variants = measured_variants(runs)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    units: dict[str, tuple[str, str | None]] = {}
    for i, run in enumerate(runs):
        records = point_records(run)
        for vi, variant in enumerate(variants):
            tpw = time_per_work(records, variant, "bwd_s")
            if not tpw.sizes:
                continue
            style = ("-", None) if tpw.unit == "FLOP" else ("--", "none")
            ls, mfc = units.setdefault(tpw.unit, style)
            ax.plot(tpw.sizes, tpw.values, ls, marker=MARKERS[i % len(MARKERS)], color=f"C{vi}",
                    ms=4, mfc=mfc or f"C{vi}")  # fmt: skip
    if not units:
        plt.close(fig)
        return None
    log_scale(ax)
    crossed = _crossing_lines(ax, runs, variants)
    ax.set_ylabel("backward time per unit of work (s)", fontsize=10)
    legend(ax, runs, variants, [(f"per {u}", ls, mfc, 1.0) for u, (ls, mfc) in units.items()])
    title = (f"{runs[0].name}: backward time per unit of work; flat where the time grows as its "
             "work, a step where the working set outgrows a cache")  # fmt: skip
    caption = "medians of the backward time over the exact work of the same pass"
    caption += CROSSING_CAPTION if crossed else ""
    finish(fig, ax, f"size {letter}", "\n".join(textwrap.wrap(title, TITLE_WIDTH)), caption)
    return fig


def _plot_fwd_bwd(runs: Sequence[Run]) -> Any:
    plt = pyplot()
    letter = SIZE.get(runs[0].experiment, ("n",))[0]
    variants = measured_variants(runs)
    fig, (left, right) = plt.subplots(1, 2, figsize=WIDE)
    for i, run in enumerate(runs):
        marker = MARKERS[i % len(MARKERS)]
        for vi, variant in enumerate(variants):
            color = f"C{vi}"
            nf, fwd, _ = series(run, variant, "fwd_s")
            nb, bwd, _ = series(run, variant, "bwd_s")
            left.plot(nb, bwd, "-", marker=marker, color=color, ms=4)
            left.plot(nf, fwd, "--", marker=marker, color=color, ms=4, mfc="none", alpha=0.55)
            common, fi, bi = np.intersect1d(nf, nb, return_indices=True)
            right.plot(common, bwd[bi] / fwd[fi], "-", marker=marker, color=color, ms=4)
            n1, f1, _ = series(run, variant, "fwd_flops")
            n2, b1, _ = series(run, variant, "bwd_flops")
            common, fi, bi = np.intersect1d(n1, n2, return_indices=True)
            right.plot(common, b1[bi] / f1[fi], ":", color=color, alpha=0.6, lw=1.5)
    for ax in (left, right):
        size_axis(ax)
        log_scale(ax)
        ax.set_xlabel(f"size {letter}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    right.axhline(2.0, color="0.55", ls=":", lw=1.2, zorder=0)
    left.set_ylabel("median time per pass (s)", fontsize=10)
    right.set_ylabel("backward / forward", fontsize=10)
    left.set_title("time: backward (solid), forward (dashed)", fontsize=9.5)
    right.set_title("ratio: time (solid), FLOPs (dotted); grey: 2×", fontsize=9.5)
    legend(left, runs, variants, [])
    fig.suptitle(f"{runs[0].name}: forward against backward", fontsize=10.5)
    fig.subplots_adjust(left=0.075, right=0.985, bottom=0.12, top=0.86, wspace=0.22)
    return fig


def _save(fig: Any, path: Path, fmt: str) -> Path:
    plt = pyplot()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, format=fmt, dpi=DPI)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def sweep_plots(runs: Sequence[Run], prefix: str, plots: Path, fmt: str) -> tuple[list, list]:
    """Every figure of sweep runs of one name, written to ``plots/<prefix>-<plot>.<fmt>``:
    the figures made (path, caption) and what was skipped, as notes."""
    made, notes = [], []
    if all(r.points.empty for r in runs):
        return made, [f"{runs[0].name}: no point measured yet"]
    for family in FAMILIES:
        fig, skipped = plot_family(runs, family)
        notes += skipped
        if fig is not None:
            made.append((_save(fig, plots / f"{prefix}-{family}.{fmt}", fmt), family))
    fig = plot_schedule(runs)
    if fig is not None:
        made.append((_save(fig, plots / f"{prefix}-schedule.{fmt}", fmt),
                     "the backward on P processors, simulated"))  # fmt: skip
    if not any((r.points["rounds"] > 0).any() for r in runs if "rounds" in r.points.columns):
        return made, notes  # counted, not timed yet (an interrupted counting pass)
    fig = _plot_time_per_work(runs)
    if fig is not None:
        made.append((_save(fig, plots / f"{prefix}-time-per-work.{fmt}", fmt),
                     "backward time per unit of work"))  # fmt: skip
    made.append((_save(_plot_local_slope(runs), plots / f"{prefix}-local-slope.{fmt}", fmt),
                 "local slope of the time"))  # fmt: skip
    made.append((_save(_plot_fwd_bwd(runs), plots / f"{prefix}-fwd-bwd.{fmt}", fmt),
                 "forward against backward"))  # fmt: skip
    return made, notes
