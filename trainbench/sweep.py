"""A sweep: every variant of an experiment over a geometric grid of sizes.

Points are visited in a seeded shuffled order (so machine drift is not read as
growth); every finished point is written to disk at once; at the end every
metric is fitted and every claim judged.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
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
    FIT_METRICS,
    FORMAT_VERSION,
    METRIC_LABELS,
    TIME_METRICS,
    environment,
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
) -> list[dict[str, Any]]:
    """Judge the claims (default: the claims file's) that apply to a run with ``options``."""
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
        out.append(record)
    return out


def finish(
    result: RunResult, exp: Experiment, seed: int, claims: Sequence[Claim] | None = None
) -> None:
    """Fit the measured points and judge the claims (also for a partial run)."""
    fits, notes = fit_points(result.points, result.samples, seed, exp.min_fit_size)
    judged = judge_claims(
        exp, fits, {p["variant"] for p in result.points}, result.config.get("options"), claims
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
    result.notes.extend(notes)


def run_sweep(
    exp: Experiment,
    cfg: SweepConfig,
    out_dir: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    claims: Sequence[Claim] | None = None,
) -> RunResult:
    """Count every point, then time all of them in ``cfg.repeats`` interleaved rounds.

    Each round visits every point once, in a shuffled order, so slow drift of
    the machine spreads over all sizes instead of bending the growth curve. The
    files are rewritten after every point of every round. On KeyboardInterrupt
    what was measured is fitted and written with ``complete: false`` and the
    interrupt is raised again. ``claims``: the claims to judge (default: the
    claims file's claims of this experiment that apply to the run's options).
    """
    cfg = with_defaults(exp, cfg)
    device, dtype = validate(exp, cfg)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    threads = torch.get_num_threads()
    todo = plan(exp, cfg)
    folder = out_dir / exp.folder(cfg.options) if out_dir is not None else None

    rows, inner, cols = exp.reference_matmul(cfg.options)
    rate = matmul_rate(rows, inner, cols, device=device, dtype=dtype, threads=threads)
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
        baseline={"op": "torch.mm", "shape": [rows, inner, cols], "gflops": rate / 1e9},
    )
    control_sizes = sorted({s for v, s in todo if exp.variant(v).split})
    if control_sizes:
        capped = cfg.max_size > cfg.control_max_size
        result.notes.append(
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
        result.notes.append(
            f"{exp.size_name} < {exp.min_fit_size} is measured but not fitted"
            + (f": {exp.min_fit_reason}" if exp.min_fit_reason else "")
        )
    points: list[_Point] = []

    def save() -> None:
        timed = [p for p in points if p.rounds > 0]
        result.points = [
            _point_record(p.variant, p.size, p.metrics(), rate, p.rounds) for p in timed
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
        if folder is not None:
            write_run(folder, result.summary(), result.points, result.samples)

    total = len(todo) * cfg.repeats
    done = 0
    options = cfg.options | {"seed": cfg.seed}
    uncounted = exp.uncounted_flops(cfg.options, device) if exp.uncounted_flops else None
    if uncounted:
        result.notes.append(uncounted)
    try:
        save()
        for variant, size in todo:  # counting pass: exact counts, once per point
            if on_progress:
                on_progress(Progress(0, total, variant, size, finished=False))
            counts = count_point(exp.forward(variant, size, options, device, dtype), device)
            if uncounted:
                counts |= {"fwd_flops": None, "bwd_flops": None}
            points.append(_Point(variant, size, counts))
        for r in range(cfg.repeats):
            order = list(points)
            random.Random(cfg.seed * 1_000_003 + r).shuffle(order)
            for p in order:
                if on_progress:
                    on_progress(Progress(done, total, p.variant, p.size, finished=False))
                # Built afresh (same seed, same weights) so that only one point's
                # model and graph are in memory at a time.
                forward = exp.forward(p.variant, p.size, options, device, dtype)
                f, b = time_round(forward, threads=threads, min_time=cfg.min_time)
                del forward
                p.fwd_rounds.append(f)
                p.bwd_rounds.append(b)
                save()
                done += 1
                if on_progress:
                    on_progress(Progress(done, total, p.variant, p.size, finished=True))
    except KeyboardInterrupt:
        result.notes.append(f"interrupted after {done} of {total} timed point-rounds")
        _finish_and_save(result, exp, cfg, save, claims)
        raise
    result.complete = True
    _finish_and_save(result, exp, cfg, save, claims)
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
