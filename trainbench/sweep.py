"""A sweep: every variant of an experiment over a geometric grid of sizes.

Every point is counted first, in increasing size (so that the limits below can
stop the growth before a size that would not fit); then the timing rounds visit
the points in a seeded shuffled order (so machine drift is not read as growth);
every finished point is written to disk at once; at the end every metric is
fitted and every claim judged.

Limits: ``--max-memory`` and ``--time-budget`` stop the growth of a run before a
size predicted to exceed them, and a point that runs out of memory anyway is
recorded as failed and stops the growth there (see :func:`run_sweep`). A run
never overwrites an earlier one (it is kept beside it), and ``--resume``
continues an interrupted run, measuring only what is missing.
"""

from __future__ import annotations

import gc
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from trainbench import __version__
from trainbench.claims import Claim
from trainbench.experiments import Experiment
from trainbench.fit import OrderFit, fit_order, judge, order_label
from trainbench.measure import (
    NOISY_SPREAD,
    PointMetrics,
    Timing,
    count_point,
    matmul_rate,
    time_round,
)
from trainbench.results import (
    COUNT_METRICS,
    FIT_METRICS,
    FORMAT_VERSION,
    METRIC_LABELS,
    TIME_METRICS,
    ResultsError,
    environment,
    keep_earlier_run,
    read_run,
    write_run,
)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class SweepError(ValueError):
    """A configuration the sweep cannot run; the message is for the user."""


@dataclass(frozen=True)
class SweepConfig:
    min_size: int
    max_size: int
    options: dict[str, Any]  # the experiment's model options (width, batch, ...)
    control: bool = True
    control_max_size: int = 256
    repeats: int = 3  # timing rounds: every point is timed once per round
    min_time: float = 0.05  # seconds of timing per point and round
    threads: int = 0  # 0: torch's default
    device: str = "auto"
    dtype: str = "float32"
    seed: int = 0
    grid_ratio: float = math.sqrt(2.0)
    # Limits (see run_sweep). time_budget: seconds for the whole run, None: no limit.
    # max_memory: bytes a point may be predicted to need; None: half the device's memory
    # (the run records the value it used).
    time_budget: float | None = None
    max_memory: int | None = None


# Settings a resumed run may change: they limit the run, they do not change what is measured.
RESUME_MAY_CHANGE = ("time_budget", "max_memory")


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
    # points that ran out of memory: {"variant", "size", "phase": "count" | "time", "reason"}
    failed: list[dict[str, Any]] = field(default_factory=list)
    # where an earlier run in the same folder was moved to (not part of the summary)
    kept_earlier: Path | None = None

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
            "points": self.points,
            "fits": self.fits,
            "claims": self.claims,
        }


def size_grid(min_size: int, max_size: int, ratio: float = math.sqrt(2.0)) -> list[int]:
    """Integers from min_size to max_size, about ``ratio`` apart, both ends included."""
    if min_size < 1 or max_size < min_size:
        raise SweepError(f"need 1 <= min size <= max size, got {min_size} and {max_size}")
    sizes = {min_size, max_size}
    x = float(min_size)
    while x < max_size:
        sizes.add(int(round(x)))
        x *= ratio
    return sorted(s for s in sizes if min_size <= s <= max_size)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SweepError("--device cuda: no CUDA device is available (try --device cpu)")
        return torch.device("cuda")
    raise SweepError(f"--device: unknown device {name!r} (choose auto, cpu or cuda)")


def available_bytes(device: torch.device) -> int:
    """The memory a run may plan on: the GPU's, or the machine's physical memory."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(
    exp: Experiment, cfg: SweepConfig, device: torch.device, dtype: torch.dtype
) -> None:
    """Refuse up front a largest point that cannot fit in memory."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    need = exp.estimate_bytes(cfg.max_size, cfg.options, itemsize)
    have = available_bytes(device)
    if need > have:
        shape = ", ".join(f"{k} {v}" for k, v in cfg.options.items() if isinstance(v, int))
        raise SweepError(
            f"the largest point ({exp.size_name} = {cfg.max_size}; {shape}) needs about "
            f"{need / 2**30:.3g} GiB for parameters, gradients and activations, and "
            f"{device.type} has {have / 2**30:.3g} GiB: lower --max-{exp.size_option} "
            "or the model's sizes"
        )


def with_defaults(exp: Experiment, cfg: SweepConfig) -> SweepConfig:
    """The configuration with the experiment's default for every model option left out."""
    unknown = sorted(set(cfg.options) - set(exp.defaults)) if exp.defaults else []
    if unknown:
        raise SweepError(
            f"{exp.name}: unknown option {unknown[0]!r} (known: {', '.join(exp.defaults)})"
        )
    return replace(cfg, options=dict(exp.defaults) | dict(cfg.options))


def validate(exp: Experiment, cfg: SweepConfig) -> tuple[torch.device, torch.dtype]:
    """Check a configuration before anything runs; SweepError says what is wrong."""
    cfg = with_defaults(exp, cfg)
    if cfg.dtype not in DTYPES:
        raise SweepError(f"--dtype: unknown dtype {cfg.dtype!r} (choose float32 or float64)")
    if cfg.repeats < 1:
        raise SweepError(f"--repeats must be at least 1, got {cfg.repeats}")
    if cfg.time_budget is not None and not (
        math.isfinite(cfg.time_budget) and cfg.time_budget > 0
    ):
        raise SweepError(
            f"--time-budget must be a positive number of seconds, got {cfg.time_budget:g}"
        )
    if cfg.max_memory is not None and cfg.max_memory < 1:
        raise SweepError(f"--max-memory must be a positive number of bytes, got {cfg.max_memory}")
    size_grid(cfg.min_size, cfg.max_size, cfg.grid_ratio)
    device = resolve_device(cfg.device)
    dtype = DTYPES[cfg.dtype]
    check_memory(exp, cfg, device, dtype)
    return device, dtype


def plan(exp: Experiment, cfg: SweepConfig) -> list[tuple[str, int]]:
    """The (variant, size) points of the run, in the shuffled order they are visited."""
    sizes = size_grid(cfg.min_size, cfg.max_size, cfg.grid_ratio)
    # The control costs O(n²): it gets every other size (counting down from the
    # largest it may have), which is plenty to tell its growth from the claim's.
    control_sizes = [s for s in sizes if s <= cfg.control_max_size][::-2][::-1]
    points = []
    for v in exp.variants:
        if v.split and not cfg.control:
            continue
        points.extend((v.name, s) for s in (control_sizes if v.split else sizes))
    random.Random(cfg.seed).shuffle(points)
    return points


def _point_record(
    variant: str, size: int, m: PointMetrics, baseline_rate: float, rounds: int
) -> dict[str, Any]:
    rate = m.rate_flops()
    spread = max(m.fwd.iqr / m.fwd.median, m.bwd.iqr / m.bwd.median)
    return {
        "variant": variant,
        "size": size,
        "fwd_s": m.fwd.median,
        "fwd_iqr_s": m.fwd.iqr,
        "bwd_s": m.bwd.median,
        "bwd_iqr_s": m.bwd.iqr,
        "fwd_flops": m.fwd_flops,
        "bwd_flops": m.bwd_flops,
        "graph_nodes": m.graph_nodes,
        "graph_depth": m.graph_depth,
        "saved_bytes": m.saved_bytes,
        "peak_bytes": m.peak_bytes,
        "gflops": rate / 1e9 if rate is not None else None,
        "efficiency": rate / baseline_rate if rate is not None and baseline_rate > 0 else None,
        "noisy": bool(spread > NOISY_SPREAD),
        "rounds": rounds,
        "fwd_runs_per_sample": m.fwd.number_per_run,
        "bwd_runs_per_sample": m.bwd.number_per_run,
        "format_version": FORMAT_VERSION,
    }


@dataclass
class _Point:
    """A point being measured: its counts and its timings, one per round."""

    variant: str
    size: int
    counts: dict[str, Any]
    fwd_rounds: list[Timing] = field(default_factory=list)
    bwd_rounds: list[Timing] = field(default_factory=list)
    count_s: float | None = None  # seconds its counting took (the time budget's yardstick)

    @property
    def rounds(self) -> int:
        return len(self.bwd_rounds)

    def metrics(self) -> PointMetrics:
        return PointMetrics(
            fwd=Timing.merge(self.fwd_rounds), bwd=Timing.merge(self.bwd_rounds), **self.counts
        )


def fit_points(
    points: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    seed: int = 0,
    min_fit_size: int = 1,
) -> tuple[dict[tuple[str, str], OrderFit], list[str]]:
    """Fit every metric of every variant over the sizes from ``min_fit_size`` on; return the
    fits and notes on what was not fitted."""
    fits: dict[tuple[str, str], OrderFit] = {}
    notes: list[str] = []
    variants = sorted({p["variant"] for p in points})
    raw: dict[tuple[str, int, str], tuple[list[float], list[int]]] = {}
    for smp in samples:
        times, labels = raw.setdefault((smp["variant"], smp["size"], smp["phase"]), ([], []))
        times.append(smp["sample_s"])
        labels.append(smp.get("round", 0))
    for v in variants:
        rows = sorted(
            (p for p in points if p["variant"] == v and p["size"] >= min_fit_size),
            key=lambda p: p["size"],
        )
        sizes = [p["size"] for p in rows]
        if len(sizes) < 3:
            notes.append(f"{v}: not fitted (measured at {len(sizes)} sizes; a fit needs 3)")
            continue
        for metric in FIT_METRICS:
            values = [p.get(metric) for p in rows]
            if all(val is None or val == 0 for val in values):
                if metric != "peak_bytes":
                    notes.append(f"{v}/{metric}: not counted (zero or missing at every size)")
                continue
            rounds = None
            if metric in TIME_METRICS:
                phase = metric[:3]
                empty: tuple[list[float], list[int]] = ([], [])
                data: list[Any] = [raw.get((v, size, phase), empty)[0] for size in sizes]
                rounds = [raw.get((v, size, phase), empty)[1] for size in sizes]
            else:
                data = [val if val is not None else math.nan for val in values]
            try:
                fits[(v, metric)] = fit_order(sizes, data, seed=seed, rounds=rounds)
            except ValueError as err:
                notes.append(f"{v}/{metric}: not fitted ({err})")
    return fits, notes


def judge_claims(
    exp: Experiment,
    fits: dict[tuple[str, str], OrderFit],
    measured_variants: set[str],
    options: dict[str, Any] | None = None,
    claims: Sequence[Claim] | None = None,
    *,
    points: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Judge the claims (default: the claims file's) that apply to a run with ``options``.

    ``points``: the run's point records. A time claim whose fitted points include
    noisy ones (IQR/median over NOISY_SPREAD) says how many in its reason and
    carries ``noisy_points``.
    """
    claims = exp.claims_for(options or {}, claims)
    claims_by_id = {c.id: c for c in claims}
    out = []
    for c in claims:
        if c.variant not in measured_variants:
            continue
        fit = fits.get((c.variant, c.metric))
        record: dict[str, Any] = {
            "id": c.id,
            "problem": c.problem,
            "statement": c.statement,
            "variant": c.variant,
            "metric": c.metric,
            "expected": order_label(c.expected, exp.size_name),
            "expected_exponent": c.expected,
            "tolerance": c.tolerance,
            "control": c.control,
            "is_control": c.is_control,
            "expect": c.expect,
        }
        if fit is None:
            record.update(verdict="inconclusive", reason="the metric could not be fitted")
            out.append(record)
            continue
        control_fit = None
        if c.control is not None and c.control in claims_by_id:
            cc = claims_by_id[c.control]
            control_fit = fits.get((cc.variant, cc.metric))
        v = judge(
            fit,
            c.expected,
            c.tolerance,
            control=control_fit,
            needs_control=c.control is not None,
            work=fits.get((c.variant, c.work_metric)) if c.work_metric else None,
            work_label=METRIC_LABELS.get(c.work_metric or "", "work"),
        )
        record.update(
            verdict=v.verdict,
            reason=v.reason,
            exponent=fit.exponent,
            ci_low=fit.ci_low,
            ci_high=fit.ci_high,
            best_class=fit.best_class,
            poly_degree=fit.poly_degree,
            by_degree=v.by_degree,
            fit_sizes=[fit.fit_from, round(fit.fit_from * fit.size_range)],
            control_exponent=control_fit.exponent if control_fit else None,
        )
        if c.metric in TIME_METRICS and points:
            fitted = _fitted_points(points, c.variant, fit)
            noisy = sum(_is_noisy(p, c.metric) for p in fitted)
            if noisy:
                record["reason"] += (
                    f"; {noisy} of {len(fitted)} points noisy (IQR/median > {NOISY_SPREAD:.0%})"
                )
                record["noisy_points"] = noisy
        out.append(record)
    return out


def _fitted_points(
    points: Sequence[Mapping[str, Any]], variant: str, fit: OrderFit
) -> list[Mapping[str, Any]]:
    """The points of ``variant`` inside the fit's window."""
    top = fit.fit_from * fit.size_range * (1 + 1e-9)
    return [
        p
        for p in points
        if p.get("variant") == variant and fit.fit_from * (1 - 1e-9) <= p.get("size", 0) <= top
    ]


def _is_noisy(point: Mapping[str, Any], metric: str) -> bool:
    """Whether the time ``metric`` (fwd_s, bwd_s) of a point is noisy: its own IQR/median
    where the record has both, else the point's ``noisy`` mark (forward or backward)."""
    median, iqr = point.get(metric), point.get(metric.replace("_s", "_iqr_s"))
    if isinstance(median, (int, float)) and isinstance(iqr, (int, float)):
        if math.isfinite(median) and math.isfinite(iqr) and median > 0:
            return iqr / median > NOISY_SPREAD
    return bool(point.get("noisy"))


def finish(
    result: RunResult, exp: Experiment, seed: int, claims: Sequence[Claim] | None = None
) -> None:
    """Fit the measured points and judge the claims (also for a partial run)."""
    fits, notes = fit_points(result.points, result.samples, seed, exp.min_fit_size)
    judged = judge_claims(
        exp,
        fits,
        {p["variant"] for p in result.points},
        result.config.get("options"),
        claims,
        points=result.points,
    )
    verdict_of = {(c["variant"], c["metric"]): c["verdict"] for c in judged}
    partial = not result.complete  # fitted over an interrupted run's points
    result.fits = [
        {
            "variant": v,
            "metric": m,
            **f.to_dict(),
            "verdict": verdict_of.get((v, m)),
            "partial": partial,
        }
        for (v, m), f in fits.items()
    ]
    result.claims = [c | {"partial": partial} for c in judged]
    result.notes.extend(n for n in notes if n not in result.notes)  # a resumed run has them


# --------------------------------------------------------------------------- limits

_now: Callable[[], float] = time.monotonic  # the clock of --time-budget (tests replace it)

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

# How torch and Python say that an allocation failed (lower case).
OOM_MESSAGES = (
    "out of memory",
    "not enough memory",
    "defaultcpuallocator: can't allocate memory",
)


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


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(m in text for m in OOM_MESSAGES)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _bytes_text(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _secs_text(s: float) -> str:
    return f"{s:.0f}" if s >= 10 else f"{s:.2g}"


def _sizes_text(sizes: Sequence[int]) -> str:
    return ", ".join(map(str, sizes))


# --------------------------------------------------------------------------- resume


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=1e-12)
    return bool(a == b)


def _difference(
    cfg: SweepConfig, device: torch.device, threads: int, summary: Mapping[str, Any]
) -> tuple[str, Any, Any] | None:
    """The first setting (a SweepConfig field or a model option; then the device and the
    number of threads actually used) in which this run differs from the run in
    ``summary``: (name, the run's value, this run's value); None: the same."""
    old = summary["config"]
    missing = "(not recorded)"
    for f in fields(SweepConfig):
        if f.name in RESUME_MAY_CHANGE:
            continue
        new = getattr(cfg, f.name)
        if f.name == "options":
            old_options = old.get("options")
            if not isinstance(old_options, dict):
                return "options", missing, new
            for key in [*old_options, *(k for k in new if k not in old_options)]:
                if key not in old_options or key not in new:
                    return key, old_options.get(key, missing), new.get(key, missing)
                if not _same(old_options[key], new[key]):
                    return key, old_options[key], new[key]
            continue
        if f.name not in old:
            return f.name, missing, new
        if not _same(old[f.name], new):
            return f.name, old[f.name], new
    env = summary.get("environment")
    old_device = env.get("device") if isinstance(env, dict) else None
    if old_device is not None and old_device != str(device):
        return "device", old_device, str(device)
    old_threads = env.get("threads") if isinstance(env, dict) else None
    if isinstance(old_threads, int) and old_threads != threads:
        return "threads", old_threads, threads
    return None


@dataclass
class _Earlier:
    """The run that ``--resume`` continues."""

    summary: dict[str, Any]
    points: list[_Point]
    failed: list[dict[str, Any]]


def _count_value(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _read_earlier(
    exp: Experiment,
    cfg: SweepConfig,
    device: torch.device,
    threads: int,
    folder: Path | None,
    todo: Sequence[tuple[str, int]],
) -> _Earlier:
    """Read the run to resume and check that ``cfg`` is its configuration."""
    if folder is None:
        raise SweepError("--resume: needs the folder the run was written to (--out)")
    try:
        summary, table, samples = read_run(folder)
    except ResultsError as err:
        raise SweepError(f"--resume: {err}") from None
    if summary["experiment"] != exp.name:
        raise SweepError(
            f"--resume: {folder} holds a {summary['experiment']} run, not {exp.name}"
        )
    diff = _difference(cfg, device, threads, summary)
    if diff is not None:
        name, old, new = diff
        raise SweepError(
            f"--resume: {folder} was run with {name} = {_show(old)}, "
            f"this run asks for {name} = {_show(new)}"
        )
    # The timings of every round, from samples.csv (its "round" is the round's index).
    timings: dict[tuple[str, int, str], dict[int, list[float]]] = {}
    for v, s, phase, r, t in zip(
        samples["variant"], samples["size"], samples["phase"], samples["round"],
        samples["sample_s"], strict=True,
    ):  # fmt: skip
        timings.setdefault((str(v), int(s), str(phase)), {}).setdefault(int(r), []).append(
            float(t)
        )
    wanted = set(todo)
    points = []
    for row in table.to_dict("records"):
        key = (str(row["variant"]), int(row["size"]))
        if key not in wanted:
            continue
        counts = {m: _count_value(row[m]) for m in (*COUNT_METRICS, "peak_bytes")}
        p = _Point(*key, counts)
        fwd, bwd = timings.get((*key, "fwd"), {}), timings.get((*key, "bwd"), {})
        r = 0
        while r in fwd and r in bwd and r < cfg.repeats:  # the rounds 0, 1, ... on disk
            p.fwd_rounds.append(Timing(fwd[r], int(row["fwd_runs_per_sample"])))
            p.bwd_rounds.append(Timing(bwd[r], int(row["bwd_runs_per_sample"])))
            r += 1
        # Its counting time was not recorded: one forward and one backward take about
        # as long, and that is what the time budget's cost model needs.
        spent = float(row["fwd_s"]) + float(row["bwd_s"])
        p.count_s = spent if math.isfinite(spent) else None
        points.append(p)
    failed = [
        {k: f.get(k) for k in ("variant", "size", "phase", "reason")}
        for f in summary.get("failed_points") or []
        if isinstance(f, dict) and isinstance(f.get("size"), int)
    ]
    return _Earlier(summary, points, failed)


# --------------------------------------------------------------------------- the run


def _count(
    exp: Experiment,
    variant: str,
    size: int,
    options: Mapping[str, Any],
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, Any]:
    # (a function of its own, so that the point's model is freed when it returns or raises)
    return count_point(exp.forward(variant, size, options, device, dtype), device)


def _time(
    exp: Experiment,
    variant: str,
    size: int,
    options: Mapping[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    threads: int,
    min_time: float,
) -> tuple[Timing, Timing]:
    # Built afresh (same seed, same weights) so that only one point's model and graph
    # are in memory at a time.
    forward = exp.forward(variant, size, options, device, dtype)
    return time_round(forward, threads=threads, min_time=min_time)


class _Sweep:
    """One run while it measures: its points, its limits and its files."""

    def __init__(
        self,
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
        points: list[_Point],
    ) -> None:
        self.exp, self.cfg, self.device, self.dtype, self.threads = exp, cfg, device, dtype, threads
        self.todo, self.result, self.rate, self.folder = todo, result, rate, folder
        self.on_progress, self.started = on_progress, started
        self.points = points
        self.options = cfg.options | {"seed": cfg.seed}
        self.uncounted = bool(exp.uncounted_flops and exp.uncounted_flops(cfg.options, device))
        self.rank = {v.name: i for i, v in enumerate(exp.variants)}
        self.grow_limit: float = math.inf  # no point this large or larger is measured any more
        self.warm = False  # a point has been counted in this run
        for f in result.failed:
            self.grow_limit = min(self.grow_limit, f["size"])
        self.done = sum(min(p.rounds, cfg.repeats) for p in points)
        self.total = len(todo) * cfg.repeats

    # files and progress

    def save(self) -> None:
        timed = [p for p in self.points if p.rounds > 0]
        result = self.result
        result.points = [
            _point_record(p.variant, p.size, p.metrics(), self.rate, p.rounds) for p in timed
        ]
        result.samples = [
            {
                "variant": p.variant,
                "size": p.size,
                "phase": phase,
                "round": r,
                "sample_s": t,
                "format_version": FORMAT_VERSION,
            }
            for p in timed
            for phase, timings in (("fwd", p.fwd_rounds), ("bwd", p.bwd_rounds))
            for r, timing in enumerate(timings)
            for t in timing.samples
        ]
        if self.folder is not None:
            write_run(self.folder, result.summary(), result.points, result.samples)

    def tick(self, variant: str, size: int, finished: bool) -> None:
        if self.on_progress:
            self.on_progress(Progress(self.done, self.total, variant, size, finished=finished))

    def recount_total(self) -> None:
        reps = self.cfg.repeats
        self.total = sum(
            reps if p.size < self.grow_limit else min(p.rounds, reps) for p in self.points
        )

    # limits

    def elapsed(self) -> float:
        return _now() - self.started

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
        cfg, n = self.cfg, self.exp.size_name
        assert cfg.max_memory is not None
        mine = sorted((p for p in self.points if p.variant == variant and p.size < size),
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
        if max(need_saved, peak or 0.0) <= cfg.max_memory:
            return None
        head = f"skipped {n} = {_sizes_text(self.not_measured(size, variant))} ({variant})"
        limit = f"--max-memory {_bytes_text(cfg.max_memory)}"
        if peak is not None and peak > need_saved:
            return f"{head}: predicted {_bytes_text(peak)} peak memory, over {limit}"
        return (
            f"{head}: predicted {_bytes_text(saved or 0.0)} of saved activations, over {limit} "
            f"with the {MEMORY_MARGIN}x margin for parameters, gradients and temporaries"
        )

    def round_cost(self, count_s: float) -> float:
        return ROUND_MIN_TIMES * self.cfg.min_time + ROUND_COUNTS * count_s

    def predicted_count_s(self, variant: str, size: int) -> float | None:
        history = sorted(
            (p.size, p.count_s)
            for p in self.points
            if p.variant == variant and p.count_s is not None and p.size < size
        )
        return _extrapolate(history, size, MAX_TIME_SLOPE)

    def point_cost(self, variant: str, size: int) -> float:
        """Predicted seconds to count ``variant`` at ``size`` and time it in every round."""
        t = self.predicted_count_s(variant, size)
        if t is None:  # its first point: as costly as the other variants' at this size
            others = (self.predicted_count_s(v.name, size) for v in self.exp.variants)
            t = max((o for o in others if o is not None), default=0.0)
        return t + self.cfg.repeats * self.round_cost(t)

    def reserved(self) -> float:
        """Predicted seconds of the timing rounds still owed to the points counted so far."""
        return sum(
            max(self.cfg.repeats - p.rounds, 0) * self.round_cost(p.count_s or 0.0)
            for p in self.points
            if p.size < self.grow_limit
        )

    def fail(self, variant: str, size: int, phase: str, reason: str) -> None:
        record = {"variant": variant, "size": size, "phase": phase, "reason": reason}
        self.result.failed.append(record)
        self.grow_limit = min(self.grow_limit, size)
        self.result.notes.append(self.failure_note(record))
        _free_memory(self.device)
        self.recount_total()

    def failure_note(self, record: Mapping[str, Any]) -> str:
        n, size = self.exp.size_name, record["size"]
        later = sorted({s for _, s in self.todo if s >= size})
        doing = "counting" if record["phase"] == "count" else "timing"
        return (
            f"{record['variant']} at {n} = {size} ran out of memory while {doing} "
            f"({record['reason']}): stopped growing, {n} = {_sizes_text(later)} not "
            + ("measured" if record["phase"] == "count" else "measured further")
        )

    # the two passes

    def count(self) -> None:
        """Count every point without a record, in increasing size, within the limits."""
        cfg, n = self.cfg, self.exp.size_name
        wanted = set(self.todo)
        cut: set[str] = set()  # variants stopped by --max-memory
        for size in sorted({s for _, s in self.todo}):
            if size >= self.grow_limit:
                break
            have = {(p.variant, p.size) for p in self.points}
            group = [
                v.name
                for v in self.exp.variants
                if (v.name, size) in wanted and (v.name, size) not in have and v.name not in cut
            ]
            accepted = []
            for variant in group:
                why = self.over_memory(variant, size)
                if why is None:
                    accepted.append(variant)
                else:
                    cut.add(variant)
                    self.result.notes.append(why)
            if not accepted:
                continue
            # The first point is always counted: there is nothing to predict from.
            if cfg.time_budget is not None and self.points:
                cost = sum(self.point_cost(v, size) for v in accepted)
                left = cfg.time_budget - self.elapsed() - self.reserved()
                if cost > left:
                    last = max(p.size for p in self.points)
                    self.result.notes.append(
                        f"stopped growing at {n} = {last}: the next size was predicted to take "
                        f"{_secs_text(cost)} s, {_secs_text(max(left, 0.0))} s of --time-budget "
                        f"{cfg.time_budget:g} s left ({n} = "
                        f"{_sizes_text(self.not_measured(size))} not measured)"
                    )
                    self.grow_limit = size
                    break
            for variant in accepted:
                self.tick(variant, size, finished=False)
                failure = None
                try:
                    if cfg.time_budget is not None and not self.warm:
                        # The first count of a process also pays for one-time set-up
                        # (hundreds of times a small point's count): not the time of
                        # counting, so not what the cost model should grow from.
                        _count(self.exp, variant, size, self.options, self.device, self.dtype)
                    self.warm = True
                    start = _now()
                    counts = _count(self.exp, variant, size, self.options, self.device, self.dtype)
                except (RuntimeError, MemoryError) as err:
                    if not _is_out_of_memory(err):
                        raise
                    failure = _first_line(err)
                if failure is not None:
                    self.fail(variant, size, "count", failure)
                    return
                if self.uncounted:
                    counts |= {"fwd_flops": None, "bwd_flops": None}
                self.points.append(_Point(variant, size, counts, count_s=_now() - start))
        self.recount_total()

    def time_rounds(self) -> None:
        """Time every point once per round; a round visits the points in a shuffled order."""
        cfg = self.cfg
        # The same order for a fresh run and a resumed one.
        self.points.sort(key=lambda p: (p.size, self.rank.get(p.variant, 0)))
        self.recount_total()
        for r in range(cfg.repeats):
            order = list(self.points)
            random.Random(cfg.seed * 1_000_003 + r).shuffle(order)
            for p in order:
                if p.rounds != r or p.size >= self.grow_limit:  # measured, or not to be
                    continue
                if cfg.time_budget is not None and self.elapsed() >= cfg.time_budget:
                    self.budget_spent()
                    return
                self.tick(p.variant, p.size, finished=False)
                failure = None
                try:
                    f, b = _time(self.exp, p.variant, p.size, self.options, self.device,
                                 self.dtype, self.threads, cfg.min_time)  # fmt: skip
                except (RuntimeError, MemoryError) as err:
                    if not _is_out_of_memory(err):
                        raise
                    failure = _first_line(err)
                if failure is not None:
                    self.fail(p.variant, p.size, "time", failure)
                    continue
                p.fwd_rounds.append(f)
                p.bwd_rounds.append(b)
                self.save()
                self.done += 1
                self.tick(p.variant, p.size, finished=True)

    def budget_spent(self) -> None:
        never = sum(1 for p in self.points if p.rounds == 0)
        self.result.notes.append(
            f"--time-budget {self.cfg.time_budget:g} s spent after {self.done} of {self.total} "
            "timed point-rounds: no further rounds were started (the points keep the rounds "
            "they have)"
            + (f"; {never} counted point{'s' * (never > 1)} never timed, left out" if never else "")
        )


def _plan_notes(
    exp: Experiment, cfg: SweepConfig, todo: Sequence[tuple[str, int]], device: torch.device
) -> list[str]:
    """What a reader of the run needs to know about its plan."""
    notes = []
    control_sizes = sorted({s for v, s in todo if exp.variant(v).split})
    if control_sizes:
        capped = cfg.max_size > cfg.control_max_size
        notes.append(
            f"the control ({', '.join(sorted({v for v, _ in todo if exp.variant(v).split}))}) "
            f"is measured at every other size, {exp.size_name} = "
            + ", ".join(map(str, control_sizes))
            + (
                f" (capped at --control-max-{exp.size_option} {cfg.control_max_size})"
                if capped
                else ""
            )
        )
    if min(s for _, s in todo) < exp.min_fit_size:
        notes.append(
            f"{exp.size_name} < {exp.min_fit_size} is measured but not fitted"
            + (f": {exp.min_fit_reason}" if exp.min_fit_reason else "")
        )
    uncounted = exp.uncounted_flops(cfg.options, device) if exp.uncounted_flops else None
    if uncounted:
        notes.append(uncounted)
    return notes


def run_sweep(
    exp: Experiment,
    cfg: SweepConfig,
    out_dir: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    claims: Sequence[Claim] | None = None,
    *,
    resume: bool = False,
) -> RunResult:
    """Count every point, then time all of them in ``cfg.repeats`` interleaved rounds.

    The counting pass visits the points in increasing size (variants interleaved;
    counts are exact, so the order does not bias them). Each timing round visits
    every point once, in a shuffled order, so slow drift of the machine spreads
    over all sizes instead of bending the growth curve. The files are rewritten
    after every point of every round. On KeyboardInterrupt what was measured is
    fitted and written with ``complete: false`` and the interrupt is raised
    again. ``claims``: the claims to judge (default: the claims file's claims of
    this experiment that apply to the run's options).

    Files: an earlier run in ``out_dir/<folder>`` is first moved aside (see
    :func:`keep_earlier_run`; ``result.kept_earlier``, and a note). With
    ``resume``, the run in that folder is continued instead: it must have been run
    with the same settings (only ``time_budget`` and ``max_memory`` may differ;
    SweepError names the first difference). A complete run is only refitted and
    rejudged; a partial one keeps every point-round on disk and measures only the
    missing ones (points without a record are counted again).

    Limits, before counting each new size:

    * ``max_memory`` (default: half the device's memory): a variant whose next
      size is predicted to need more (MEMORY_MARGIN times its extrapolated saved
      activations, or on CUDA its extrapolated peak) is not grown further;
    * ``time_budget`` (seconds, for the whole run): the growth stops where the
      time spent, the timing still owed to the points counted, and the predicted
      cost of the next size (see ROUND_COUNTS) would exceed it. In the timing
      rounds no new point-round starts once the budget is spent;
    * a point that runs out of memory anyway is recorded in ``result.failed``
      (summary: ``failed_points``) and stops the growth at its size for every
      variant; the run carries on with what was measured.
    """
    started = _now()
    cfg = with_defaults(exp, cfg)
    device, dtype = validate(exp, cfg)
    if cfg.max_memory is None:
        cfg = replace(cfg, max_memory=available_bytes(device) // 2)
    threads = cfg.threads if cfg.threads > 0 else torch.get_num_threads()
    todo = plan(exp, cfg)
    folder = out_dir / exp.folder(cfg.options) if out_dir is not None else None
    earlier = _read_earlier(exp, cfg, device, threads, folder, todo) if resume else None
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    threads = torch.get_num_threads()
    kept = None
    if folder is not None and earlier is None:
        try:
            kept = keep_earlier_run(folder)
        except OSError as err:
            raise SweepError(
                f"--out: cannot keep the earlier run in {folder}: {err.strerror or err}"
            ) from None

    rows, inner, cols = exp.reference_matmul(cfg.options)
    old_baseline = earlier.summary.get("baseline") if earlier is not None else None
    if isinstance(old_baseline, dict) and isinstance(old_baseline.get("gflops"), (int, float)):
        # the efficiencies of a resumed run are all relative to the same reference
        baseline = old_baseline
        rate = float(old_baseline["gflops"]) * 1e9
    else:
        rate = matmul_rate(rows, inner, cols, device=device, dtype=dtype, threads=threads)
        baseline = {"op": "torch.mm", "shape": [rows, inner, cols], "gflops": rate / 1e9}
    # The model options are also given at the top level (config.cell, config.width, ...).
    config = asdict(cfg) | cfg.options | {
        "experiment": exp.name,
        "sizes": sorted({s for _, s in todo}),
        "variants": sorted({v for v, _ in todo}),
    }
    result = RunResult(
        experiment=exp.name,
        run=exp.folder(cfg.options),
        config=config,
        environment=environment(
            device=device, dtype=dtype, threads=threads, seed=cfg.seed, version=__version__
        ),
        baseline=baseline,
        notes=_plan_notes(exp, cfg, todo, device),
        kept_earlier=kept,
    )
    if kept is not None:
        result.notes.append(f"an earlier run in {folder} was kept as {kept}")
    points = earlier.points if earlier is not None else []
    if earlier is not None:
        old = earlier.summary
        result.failed = earlier.failed
        if old.get("complete") is True:  # nothing to measure: fit and judge again
            result.config = old["config"]
            if isinstance(old.get("environment"), dict):
                result.environment = old["environment"]
            result.notes = [n for n in old.get("notes") or [] if isinstance(n, str)]
            result.complete = True
            run = _Sweep(exp, cfg, device, dtype, threads, todo, result, rate, folder,
                         on_progress, started, points)  # fmt: skip
            run.save()
            _finish_and_save(result, exp, cfg, run.save, claims)
            return result
        result.notes.extend(
            n for n in old.get("notes") or [] if isinstance(n, str) and n.startswith("an earlier")
        )
    run = _Sweep(exp, cfg, device, dtype, threads, todo, result, rate, folder,
                 on_progress, started, points)  # fmt: skip
    if earlier is not None:
        result.notes.extend(run.failure_note(f) for f in result.failed)
        old_env = earlier.summary.get("environment")
        when = old_env.get("timestamp") if isinstance(old_env, dict) else None
        result.notes.append(
            f"resumed: {run.done} of {run.total} timed point-rounds were on disk"
            + (f" from the run of {when}" if when else "")
        )
    try:
        run.save()
        run.count()
        run.time_rounds()
    except KeyboardInterrupt:
        result.notes.append(f"interrupted after {run.done} of {run.total} timed point-rounds")
        _finish_and_save(result, exp, cfg, run.save, claims)
        raise
    result.complete = True
    _finish_and_save(result, exp, cfg, run.save, claims)
    return result


def _finish_and_save(
    result: RunResult,
    exp: Experiment,
    cfg: SweepConfig,
    save: Callable[[], None],
    claims: Sequence[Claim] | None,
) -> None:
    if result.points:
        finish(result, exp, cfg.seed, claims)
    save()
