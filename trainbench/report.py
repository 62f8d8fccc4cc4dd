"""`trainbench report`: plots and a Markdown/HTML report over one or more result folders.

    OUT/report.md      the verdict table, then per run its plots, notes, environment, command
    OUT/report.html    the same, self-contained (images embedded as data URIs)
    OUT/plots/         <run>-time, -flops, -graph, -memory, -local-slope, -fwd-bwd (.png/.svg);
                       trainability-<plot>.png for a trainability run

Runs of the same name from several folders (two machines, say) are overlaid on one set of
plots: one colour per variant, one marker per device. No torch in here.
"""

from __future__ import annotations

import base64
import html
import math
import os
import shlex
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainbench.fit import WINDOW, WINDOW_MIN_SIZES, fit_exponent
from trainbench.results import (
    COUNT_METRICS,
    METRIC_LABELS,
    ResultsError,
    atomic_write_text,
    read_json,
    read_run,
    read_summary,
)
from trainbench.verdicts import verdict_rows

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
FAMILIES = {
    "time": ("bwd_s", "fwd_s"),
    "flops": ("bwd_flops", "fwd_flops"),
    "graph": ("graph_nodes", "graph_depth"),
    "memory": ("saved_bytes", "peak_bytes"),
}
Y_LABELS = {"time": "median time per pass (s)", "flops": "FLOPs per pass",
            "graph": "autograd graph: nodes, depth", "memory": "bytes"}  # fmt: skip
SIZE = {"mlp-heads": ("L", "depth"), "ugcnn": ("L", "depth"), "rnn-lm": ("T", "len")}
SWEEP_COLUMNS = ("variant", "size", "fwd_s", "fwd_iqr_s", "bwd_s", "bwd_iqr_s", *COUNT_METRICS)
SAMPLE_COLUMNS = ("variant", "size", "phase", "sample_s")
MARKERS = "osD^vP*X"
FIGSIZE, WIDE, DPI = (7.0, 4.8), (10.0, 4.6), 110
TITLE_WIDTH, TITLE_LINES = 70, 3
NBSP = "\u00a0"  # keeps " (k = 1.01 [0.97, 1.05])" on one title line
CAPTION = "points: medians (bars ±IQR/2); lines: a + b·{0}^k fitted over the fit window"


class ReportError(ResultsError):
    """A result folder or report target that cannot be used; the message is one line."""


@dataclass
class Run:
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


def default_out(paths: Sequence[Path]) -> Path:
    return Path(paths[0]) / "report" if len(paths) == 1 else Path("report")


# --------------------------------------------------------------------------- loading


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Every run under ``paths`` (run folders, or folders of run folders), in order.

    ReportError (one line naming the folder or file) for anything that is not a run:
    see :func:`trainbench.results.read_run` and :func:`trainbench.results.read_summary`.
    """
    try:
        return [_load_run(folder, Path(p)) for p in paths for folder in _run_folders(Path(p))]
    except ReportError:
        raise
    except ResultsError as err:
        raise ReportError(str(err)) from None


def _run_folders(path: Path) -> list[Path]:
    try:
        if not path.exists():
            raise ReportError(f"{path}: no such folder")
        if not path.is_dir():
            raise ReportError(f"{path}: not a folder")
        if (path / "summary.json").exists():
            return [path]
        verify = read_json(path / "verify.json") if (path / "verify.json").is_file() else None
        names = verify.get("runs") if isinstance(verify, dict) else None
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            for name in names:
                if not (path / name / "summary.json").is_file():
                    raise ReportError(f"{path / name}: in verify.json but has no summary.json")
            return [path / name for name in names]
        folders = sorted(
            p for p in path.iterdir()
            if p.is_dir() and p.name != "report" and (p / "summary.json").is_file()
        )  # fmt: skip
    except OSError as err:
        raise ReportError(f"{path}: cannot be read ({err.strerror or _first_line(err)})") from None
    if not folders:
        raise ReportError(f"{path}: not a trainbench result folder (no summary.json in it)")
    return folders


def _load_run(folder: Path, source: Path) -> Run:
    if not (folder / "summary.json").is_file():
        raise ReportError(f"{folder}: not a trainbench result folder (no summary.json)")
    summary = read_summary(folder, sweep=False)
    points = pd.DataFrame(columns=list(SWEEP_COLUMNS))
    samples = pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    if summary["experiment"] != "trainability":
        summary, points, samples = read_run(folder)
        for col in (*SWEEP_COLUMNS[2:], "peak_bytes"):  # the plots take every value as a float
            points[col] = points[col].astype(float)
    env = summary.get("environment") or {}
    label = " · ".join(str(env[k]) for k in ("device", "device_name") if env.get(k))
    name = folder.absolute().name or str(folder)
    return Run(folder, name, summary, points, samples, source, label or "unknown device")


# --------------------------------------------------------------------------- commands


def _arg(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_arg(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def reproduce_command(summary: dict[str, Any]) -> str:
    """The trainbench command line that makes a run like ``summary``'s, from its config."""
    exp, cfg = str(summary.get("experiment", "")), summary.get("config") or {}
    parts = ["trainbench", exp]

    def add(flag: str, value: Any) -> None:
        if value is not None:
            parts.extend([f"--{flag}", _arg(value)])

    options = cfg.get("options") or {}
    if exp == "trainability":
        for key in ("depths", "variants", "steps", "lr_sgd", "lr_adam"):
            add(key.replace("_", "-"), cfg.get(key))
    elif exp not in SIZE and "target" in options:  # trainbench sweep TARGET
        parts[1:] = ["sweep", str(options["target"])]
        add("sizes", cfg.get("sizes"))
        add("name", summary.get("run") or exp)
        add("reference", options.get("reference"))
        for c in summary.get("claims") or []:
            if c.get("id") == "claim":
                add("claim", c.get("expected"))
                add("metric", c.get("metric"))
                add("tolerance", c.get("tolerance"))
        add("repeats", cfg.get("repeats"))
        add("min-time", cfg.get("min_time"))
    else:
        unit = SIZE.get(exp, ("n", "size"))[1]
        listed = bool(cfg.get("size_list"))  # trainbench sweep EXPERIMENT --sizes ...
        if listed:
            parts[1:] = ["sweep", exp, "--sizes", _arg(cfg["size_list"])]
            unit = "size"
        else:
            add(f"min-{unit}", cfg.get("min_size"))
            add(f"max-{unit}", cfg.get("max_size"))
        for key, value in options.items():
            if listed:
                add("option", f"{key}={_arg(value)}")
            elif key != "kernel":  # fixed at 3; it has no flag
                add(key.replace("_", "-"), value)
        if cfg.get("control") is False:
            parts.append("--no-control")
        else:
            add(f"control-max-{unit}", cfg.get("control_max_size"))
        add("repeats", cfg.get("repeats"))
        add("min-time", cfg.get("min_time"))
    add("threads", cfg.get("threads") or None)
    if cfg.get("compile"):
        parts.append("--compile")
    if cfg.get("device") not in (None, "auto"):
        add("device", cfg.get("device"))
    add("seed", cfg.get("seed"))
    if exp != "trainability":
        add("dtype", cfg.get("dtype"))
    return " ".join(shlex.quote(p) for p in parts)


# --------------------------------------------------------------------------- plots


def local_slopes(sizes: Sequence[float], values: Sequence[float]) -> list[float]:
    """d log value / d log size between consecutive sizes (sorted by size); NaN where a
    value is not positive."""
    pairs = sorted(zip(sizes, values, strict=True))
    out = []
    for (n0, y0), (n1, y1) in zip(pairs, pairs[1:], strict=False):
        ok = y0 > 0 and y1 > 0 and n1 > n0 > 0
        out.append(math.log(y1 / y0) / math.log(n1 / n0) if ok else math.nan)
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _variants(runs: Sequence[Run]) -> list[str]:
    seen = [v for r in runs for v in (r.summary.get("config") or {}).get("variants") or []]
    seen += [v for r in runs for v in r.points["variant"]]
    measured = {v for r in runs for v in r.points["variant"]}
    return [v for v in dict.fromkeys(seen) if v in measured]


def _series(run: Run, variant: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes, positive values, and half-IQR error bars (zeros but for times)."""
    if metric not in run.points.columns:
        return np.empty(0), np.empty(0), np.empty(0)
    rows = run.points[run.points["variant"] == variant].sort_values("size")
    n, y = rows["size"].to_numpy(float), rows[metric].to_numpy(float)
    iqr = metric.replace("_s", "_iqr_s")
    err = rows[iqr].to_numpy(float) / 2 if metric.endswith("_s") else np.zeros(len(y))
    ok = np.isfinite(y) & (y > 0)
    return n[ok], y[ok], np.nan_to_num(err[ok])


def _fit_from(run: Run, variant: str, metric: str, n: np.ndarray) -> float:
    for rec in (run.summary.get("fits") or []) + (run.summary.get("claims") or []):
        if rec.get("variant") == variant and rec.get("metric") == metric:
            start = rec.get("fit_from") or (rec.get("fit_sizes") or [None])[0]
            if start is not None:
                return float(start)
    first = min(int(np.searchsorted(n, n[-1] / WINDOW)), max(len(n) - WINDOW_MIN_SIZES, 0))
    return float(n[first])


def _fit_line(run: Run, variant: str, metric: str, n: np.ndarray, y: np.ndarray) -> Any:
    sel = n >= _fit_from(run, variant, metric, n)
    if sel.sum() < 3:
        return None
    k, a, b = fit_exponent(n[sel], y[sel])
    xs = np.geomspace(n[sel][0], n[sel][-1], 60)
    ys = a + b * xs**k
    return xs[ys > 0], ys[ys > 0]


def _device_labels(runs: Sequence[Run]) -> list[str]:
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{r.label} ({r.source})" for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
    return labels


def _title(runs: Sequence[Run], metrics: Sequence[str], fallback: str) -> str:
    """A line per claim on these metrics, wrapped; shortened (controls by id only, then no
    measured order, then ids only) until it fits TITLE_LINES lines."""
    labels = _device_labels(runs)
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


def _legend(ax: Any, runs: Sequence[Run], variants: Sequence[str], styles: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{i}", marker="o", label=v) for i, v in enumerate(variants)]
    handles += [Line2D([], [], color="0.35", ls=ls, marker="o", mfc=mfc, alpha=alpha, label=text)
                for text, ls, mfc, alpha in styles]  # fmt: skip
    if len(runs) > 1:
        handles += [Line2D([], [], color="0.35", ls="none", marker=MARKERS[i % len(MARKERS)],
                           label=lab) for i, lab in enumerate(_device_labels(runs))]  # fmt: skip
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.85)


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


def _size_axis(ax: Any) -> None:
    """A log x axis labelled with plain numbers (1, 2, 5, 10, 20, ...), no minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _finish(fig: Any, ax: Any, xlabel: str, title: str, caption: str) -> None:
    _size_axis(ax)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title, fontsize=9.5, loc="left")
    fig.text(0.01, 0.01, caption, fontsize=7.5, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))


def plot_family(runs: Sequence[Run], family: str) -> tuple[Any, list[str]]:
    """A figure of one metric family (time, flops, graph, memory) for runs of one experiment,
    overlaid; None where nothing was counted. Also what was skipped, as notes."""
    plt = _pyplot()
    letter = SIZE.get(runs[0].experiment, ("n",))[0]
    variants, metrics = _variants(runs), FAMILIES[family]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.set_xscale("log")
    ax.set_yscale("log")
    styles, skipped, anchor, n_max = [], [], None, 1.0
    for j, metric in enumerate(metrics):
        claimed = any(c.get("metric") == metric for c in runs[0].summary.get("claims") or [])
        ls, mfc, alpha = ("-", None, 1.0) if j == 0 else ("--", "none", 1.0 if claimed else 0.55)
        drawn = False
        for i, run in enumerate(runs):
            for vi, variant in enumerate(variants):
                n, y, err = _series(run, variant, metric)
                if not len(n):
                    continue
                drawn, color = True, f"C{vi}"
                anchor, n_max = anchor or (n[0], y[0]), max(n_max, n[-1])
                yerr = np.vstack([np.minimum(err, 0.95 * y), err]) if err.any() else None
                ax.errorbar(n, y, yerr=yerr, fmt=MARKERS[i % len(MARKERS)], color=color, ms=5,
                            mfc=mfc or color, alpha=alpha, capsize=2, elinewidth=1)  # fmt: skip
                line = _fit_line(run, variant, metric, n, y)
                if line is not None:
                    ax.plot(*line, ls, color=color, alpha=alpha, lw=1.5)
        if drawn:
            styles.append((METRIC_LABELS[metric], ls, mfc, alpha))
        else:
            skipped.append(METRIC_LABELS[metric])
    name = runs[0].name
    notes = [f"{name}: {m} " + ("not measured (CUDA only)" if m == "peak bytes" else
             "not counted at any size (not plotted)") for m in skipped]  # fmt: skip
    if not styles:
        plt.close(fig)
        return None, notes
    _reference_slopes(ax, anchor[0], anchor[1], n_max, letter)
    ax.set_ylabel(Y_LABELS[family], fontsize=10)
    _legend(ax, runs, variants, styles)
    caption = CAPTION.format(letter) + f"; dotted: slopes {letter}¹, {letter}²"
    caption += "".join(
        f"; {m}: " + ("CUDA only" if m == "peak bytes" else "not counted") for m in skipped
    )
    fallback = f"{name}: {' and '.join(METRIC_LABELS[m] for m in metrics)} against {letter}"
    _finish(fig, ax, f"size {letter}", _title(runs, metrics, fallback), caption)
    return fig, notes


def plot_figure(
    summary: dict[str, Any],
    points: pd.DataFrame,
    samples: pd.DataFrame,
    family: str,
    path: str | Path | None = None,
) -> Any:
    """One of a run's figures from the run in memory: a metric family (time, flops, graph,
    memory), "local-slope" or "fwd-bwd"; saved to ``path`` where given (its suffix is the
    format). None where the family was not counted at any size."""
    if family not in (*FAMILIES, "local-slope", "fwd-bwd"):
        raise ValueError(
            f"unknown plot {family!r} (known: {', '.join([*FAMILIES, 'local-slope', 'fwd-bwd'])})"
        )
    points = points.copy()
    for col in (*SWEEP_COLUMNS[2:], "peak_bytes"):
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
    else:
        fig, _ = plot_family([run], family)
    if fig is not None and path is not None:
        fig.savefig(path, dpi=DPI)
    return fig


def _plot_local_slope(runs: Sequence[Run]) -> Any:
    plt = _pyplot()
    letter = SIZE.get(runs[0].experiment, ("n",))[0]
    variants = _variants(runs)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, run in enumerate(runs):
        for vi, variant in enumerate(variants):
            for metric, ls, alpha in (("bwd_s", "-", 1.0), ("fwd_s", "--", 0.45)):
                n, y, _ = _series(run, variant, metric)
                if len(n) > 1:
                    ax.plot(np.sqrt(n[:-1] * n[1:]), local_slopes(n, y), ls, alpha=alpha,
                            marker=MARKERS[i % len(MARKERS)], color=f"C{vi}", ms=4)  # fmt: skip
    for level in (1, 2):
        ax.axhline(level, color="0.55", ls=":", lw=1.2, zorder=0)
    ax.set_xscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, -1.0), min(max(high, 2.5), 4.0))
    ax.set_ylabel(f"local slope  d log t / d log {letter}", fontsize=10)
    _legend(ax, runs, variants, [("backward", "-", None, 1.0), ("forward", "--", "none", 0.45)])
    title = (f"{runs[0].name}: local slope of the time between consecutive sizes (1: linear, "
             "2: quadratic); where it settles, the fixed overheads have ended")  # fmt: skip
    caption = f"each point lies at the geometric mean of two consecutive {letter}; y within [-1, 4]"
    _finish(fig, ax, f"size {letter}", "\n".join(textwrap.wrap(title, TITLE_WIDTH)), caption)
    return fig


def _plot_fwd_bwd(runs: Sequence[Run]) -> Any:
    plt = _pyplot()
    letter = SIZE.get(runs[0].experiment, ("n",))[0]
    variants = _variants(runs)
    fig, (left, right) = plt.subplots(1, 2, figsize=WIDE)
    for i, run in enumerate(runs):
        marker = MARKERS[i % len(MARKERS)]
        for vi, variant in enumerate(variants):
            color = f"C{vi}"
            nf, fwd, _ = _series(run, variant, "fwd_s")
            nb, bwd, _ = _series(run, variant, "bwd_s")
            left.plot(nb, bwd, "-", marker=marker, color=color, ms=4)
            left.plot(nf, fwd, "--", marker=marker, color=color, ms=4, mfc="none", alpha=0.55)
            common, fi, bi = np.intersect1d(nf, nb, return_indices=True)
            right.plot(common, bwd[bi] / fwd[fi], "-", marker=marker, color=color, ms=4)
            n1, f1, _ = _series(run, variant, "fwd_flops")
            n2, b1, _ = _series(run, variant, "bwd_flops")
            common, fi, bi = np.intersect1d(n1, n2, return_indices=True)
            right.plot(common, b1[bi] / f1[fi], ":", color=color, alpha=0.6, lw=1.5)
    for ax in (left, right):
        _size_axis(ax)
        ax.set_yscale("log")
        ax.set_xlabel(f"size {letter}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    right.axhline(2.0, color="0.55", ls=":", lw=1.2, zorder=0)
    left.set_ylabel("median time per pass (s)", fontsize=10)
    right.set_ylabel("backward / forward", fontsize=10)
    left.set_title("time: backward (solid), forward (dashed)", fontsize=9.5)
    right.set_title("ratio: time (solid), FLOPs (dotted); grey: 2×", fontsize=9.5)
    _legend(left, runs, variants, [])
    fig.suptitle(f"{runs[0].name}: forward against backward", fontsize=10.5)
    fig.tight_layout()
    return fig


def _save(fig: Any, path: Path, fmt: str) -> Path:
    plt = _pyplot()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, format=fmt, dpi=DPI)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def _sweep_plots(runs: Sequence[Run], prefix: str, plots: Path, fmt: str) -> tuple[list, list]:
    made, notes = [], []
    if all(r.points.empty for r in runs):
        return made, [f"{runs[0].name}: no point measured yet"]
    for family in FAMILIES:
        fig, skipped = plot_family(runs, family)
        notes += skipped
        if fig is not None:
            made.append((_save(fig, plots / f"{prefix}-{family}.{fmt}", fmt), family))
    made.append((_save(_plot_local_slope(runs), plots / f"{prefix}-local-slope.{fmt}", fmt),
                 "local slope of the time"))  # fmt: skip
    made.append((_save(_plot_fwd_bwd(runs), plots / f"{prefix}-fwd-bwd.{fmt}", fmt),
                 "forward against backward"))  # fmt: skip
    return made, notes


def _trainability_plots(run: Run, prefix: str, plots: Path) -> list[tuple[Path, str]]:
    """trainability_report.plot_all's figures (PNG whatever the format), renamed."""
    from trainbench.trainability_report import plot_all

    if not run.summary.get("gradient_signal"):
        return []
    plt = _pyplot()
    before = set(plt.get_fignums())
    with tempfile.TemporaryDirectory(dir=plots, prefix=".tmp-") as tmp:
        try:
            made = plot_all(Path(tmp), run.summary)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as err:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
            raise ReportError(f"{run.folder}: summary.json cannot be plotted ({err!r})") from None
        out = []
        for path in made:
            dest = plots / f"{prefix}-{path.name}"
            os.replace(path, dest)
            out.append((dest, path.stem.replace("_", " ")))
    return out


# --------------------------------------------------------------------------- documents


class Strong(str):
    """A table cell to set in bold."""


def _verdict_table(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "claim", "problem", "expected", "measured", "class", "verdict", "control"]
    several = len({r.label for r in runs}) > 1
    table = []
    for run in runs:
        for row in verdict_rows([run.summary]):
            verdict = row["verdict"] + (" (partial)" if row["partial"] else "")
            if not row["as_expected"]:
                verdict = Strong(f"{verdict} (expected {row['expect']})")
            where = f"{run.name} ({run.label})" if several else run.name
            table.append([where, f"{row['id']}: {row['statement']}", row["problem"],
                          row["expected"], row["measured"], row["class"], verdict,
                          row["control"]])  # fmt: skip
    return header, table


def _environment(run: Run) -> str:
    env = run.summary.get("environment") or {}
    torch, cpus, threads, dtype, time = (env.get(k, "?") for k in (
        "torch_version", "cpu_count", "threads", "dtype", "timestamp"))  # fmt: skip
    return (f"{run.label}: torch {torch}, {cpus} CPUs, {threads} threads, {dtype}, "
            f"{time} ({run.folder})")  # fmt: skip


def _document(groups: list[tuple[str, list[Run], list, list[str]]], command: str | None) -> list:
    """The report as blocks (kind, body), for _markdown and _html alike."""
    runs = [r for _, group, _, _ in groups for r in group]
    doc: list[tuple[str, Any]] = [("h1", "trainbench report")]
    doc.append(("p", "Runs: " + ", ".join(f"{r.name} ({r.label}, {r.folder})" for r in runs)))
    doc += [("h2", "Verdicts"), ("table", _verdict_table(runs))]
    if any(not row["as_expected"] for r in runs for row in verdict_rows([r.summary])):
        doc.append(("p", "Rows in bold did not get the verdict their claim expects."))
    for name, group, plots, notes in groups:
        doc.append(("h2", name))
        partial = [r.label for r in group if r.summary.get("complete") is False]
        if partial:
            doc.append(("p", f"Partial run (interrupted): {', '.join(partial)}."))
        doc += [("img", (f"plots/{path.name}", f"{name}: {what}")) for path, what in plots]
        several = len(group) > 1
        notes = [f"{r.label}: {n}" if several else str(n)
                 for r in group for n in r.summary.get("notes") or []] + notes  # fmt: skip
        doc += [("h3", "Notes"), ("ul", notes)] if notes else []
        doc += [("h3", "Environment"), ("ul", [_environment(r) for r in group])]
        commands = [command] if command else [reproduce_command(r.summary) for r in group]
        doc += [("h3", "Reproduce"), *(("code", c) for c in dict.fromkeys(commands))]
    return doc


def _md_cell(cell: str) -> str:
    text = str(cell).replace("|", "\\|").replace("\n", " ")
    return f"**{text}**" if isinstance(cell, Strong) else text


def _markdown(doc: list) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(map(_md_cell, r)) + " |" for r in lines)

    render = {
        "h1": "# {}".format, "h2": "## {}".format, "h3": "### {}".format, "p": str,
        "ul": lambda b: "\n".join(f"* {i}" for i in b), "img": lambda b: f"![{b[1]}]({b[0]})",
        "code": "```bash\n{}\n```".format, "table": lambda b: table(*b),
    }  # fmt: skip
    return "\n\n".join(render[kind](body) for kind, body in doc) + "\n"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}strong{color:#b00020}img{max-width:100%;display:block;margin:1em 0}"
    "pre{background:#f6f8fa;padding:.8em;overflow-x:auto}"
)


def _html(doc: list, out: Path) -> str:
    """The blocks as one self-contained page: every image inlined as a data URI."""
    esc = html.escape

    def cell(c: str, tag: str = "td") -> str:
        text = f"<strong>{esc(c)}</strong>" if isinstance(c, Strong) else esc(str(c))
        return f"<{tag}>{text}</{tag}>"

    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = ["".join(cell(h, "th") for h in header)] + ["".join(map(cell, r)) for r in rows]
        return "<table>" + "".join(f"<tr>{line}</tr>" for line in lines) + "</table>"

    def img(body: tuple[str, str]) -> str:
        path = out / body[0]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:{FORMATS[path.suffix[1:]]};base64,{data}" alt="{esc(body[1])}">'

    render = {
        "h1": lambda b: f"<h1>{esc(b)}</h1>", "h2": lambda b: f"<h2>{esc(b)}</h2>",
        "h3": lambda b: f"<h3>{esc(b)}</h3>", "p": lambda b: f"<p>{esc(b)}</p>",
        "ul": lambda b: "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b) + "</ul>",
        "img": img, "code": lambda b: f"<pre><code>{esc(b)}</code></pre>",
        "table": lambda b: table(*b),
    }  # fmt: skip
    body = "\n".join(render[kind](b) for kind, b in doc)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>trainbench report</title><style>{CSS}</style></head><body>\n{body}\n"
            "</body></html>\n")  # fmt: skip


def _groups(runs: Sequence[Run]) -> list[tuple[str, list[Run]]]:
    """Runs of the same name and experiment, to overlay; named by the run (or run-experiment
    where two experiments share a name)."""
    by_key: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_key.setdefault((run.name, run.experiment), []).append(run)
    names = [name for name, _ in by_key]
    return [(name if names.count(name) == 1 else f"{name}-{exp}", group)
            for (name, exp), group in by_key.items()]  # fmt: skip


def write_report(
    runs: Sequence[Run], out: Path, fmt: str = "png", command: str | None = None
) -> list[Path]:
    """Write OUT/plots/*, OUT/report.md and OUT/report.html; return the paths written."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown image format {fmt!r}: use {' or '.join(FORMATS)}")
    if not runs:
        raise ReportError(f"{out}: no runs to report on")
    out, groups, written = Path(out), [], []
    plots = out / "plots"
    try:
        plots.mkdir(parents=True, exist_ok=True)
        for name, group in _groups(runs):
            if group[0].is_sweep:
                made, notes = _sweep_plots(group, name, plots, fmt)
            else:
                made, notes = [], []
                for i, run in enumerate(group):
                    made += _trainability_plots(run, name if i == 0 else f"{name}-{i + 1}", plots)
            groups.append((name, group, made, notes))
            written += [path for path, _ in made]
        for stale in plots.iterdir():
            if stale.is_file() and stale not in written:
                stale.unlink()
        doc = _document(groups, command)
        atomic_write_text(out / "report.md", _markdown(doc))
        atomic_write_text(out / "report.html", _html(doc, out))
    except OSError as err:
        raise ReportError(f"{out}: cannot write the report ({err.strerror or err})") from None
    return [*written, out / "report.md", out / "report.html"]
