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

Parts of a sweep live beside this module: its settings in :mod:`trainbench.core.settings`
(re-exported here), the predictions of its limits and the recognition of an
out-of-memory error in :mod:`trainbench.harness.limits`, the reading back of an earlier run
for ``--resume`` in :mod:`trainbench.harness.resume`, and the fits and verdicts in
:mod:`trainbench.harness.analysis` (``fit_points`` and ``judge_claims`` re-exported here).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainbench.claims.parse import Claim, run_claims
from trainbench.core.lock import hold
from trainbench.core.settings import SweepConfig, SweepError, first_line
from trainbench.core.version import __version__
from trainbench.core.vocabulary import CONFIRMED, SCHEDULE_COLUMNS, SPAN_METRICS, TIME_METRICS
from trainbench.experiments.builtin import Experiment
from trainbench.harness.analysis import finish
from trainbench.harness.analysis import fit_points as fit_points  # re-exported
from trainbench.harness.analysis import judge_claims as judge_claims  # re-exported
from trainbench.harness.limits import (
    _secs_text,
    _sizes_text,
    memory_excess,
    point_cost,
    reserved,
)
from trainbench.harness.resume import read_earlier
from trainbench.harness.state import Point, Progress, RunResult
from trainbench.measure import point as measure
from trainbench.measure import watchdog
from trainbench.measure.memory import free_memory, is_out_of_memory
from trainbench.measure.modules import count_modules
from trainbench.measure.point import PointMetrics, compile_forward, count_point
from trainbench.measure.threads import default_threads, keeps_torch_threads
from trainbench.measure.timing import (
    NOISY_SPREAD,
    Probe,
    Timing,
    VisitPlan,
    matmul_rate,
    time_round,
)
from trainbench.measure.watchdog import MAX_POINT_TIMEOUT, PointTimeout, deadline, watching_signals
from trainbench.results.environment import environment
from trainbench.results.files import keep_earlier_run, write_run
from trainbench.results.schema import FORMAT_VERSION
from trainbench.stats import drift
from trainbench.stats.fit import fit_order, window_start

DTYPES = {"float32": torch.float32, "float64": torch.float64}
UNTIL = ("narrow", "confirmed")  # what ends a variant's passes (SweepConfig.until)


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


def sizes_of(cfg: SweepConfig) -> list[int]:
    """The sizes a run measures: its explicit list, or the geometric grid."""
    if cfg.size_list is not None:
        if not cfg.size_list or min(cfg.size_list) < 1:
            raise SweepError(f"sizes must be whole numbers of at least 1: {list(cfg.size_list)}")
        return sorted(set(cfg.size_list))
    return size_grid(cfg.min_size, cfg.max_size, cfg.grid_ratio)


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
            f"{device.type} has {have / 2**30:.3g} GiB: lower "
            + ("the largest of --sizes" if cfg.size_list else f"--max-{exp.size_option}")
            + " or the model's sizes"
        )


# Whole-number model options (widths, batches, sizes) lie in [MIN_OPTION or 1, MAX_OPTION].
MIN_OPTION = {"vocab": 2}
MAX_OPTION = 1_000_000


def with_defaults(exp: Experiment, cfg: SweepConfig) -> SweepConfig:
    """The configuration with the experiment's default for every model option left out."""
    unknown = sorted(set(cfg.options) - set(exp.defaults)) if exp.defaults else []
    if unknown:
        raise SweepError(
            f"{exp.name}: unknown option {unknown[0]!r} (known: {', '.join(exp.defaults)})"
        )
    for name, value in cfg.options.items():
        default = exp.defaults.get(name)
        if isinstance(default, int) and not isinstance(default, bool):
            least = MIN_OPTION.get(name, 1)
            if type(value) is not int or not least <= value <= MAX_OPTION:
                raise SweepError(
                    f"{exp.name}: option {name} must be a whole number from {least} to "
                    f"{MAX_OPTION}, got {value!r}"
                )
        elif isinstance(default, str) and not isinstance(value, str):
            raise SweepError(f"{exp.name}: option {name} must be a name, got {value!r}")
        allowed = exp.choices.get(name)
        if allowed and value not in allowed:
            raise SweepError(
                f"{exp.name}: option {name} must be one of {', '.join(allowed)}, got {value!r}"
            )
    if exp.name == "ugcnn" and int(cfg.options.get("kernel", 3)) % 2 != 1:
        raise SweepError(f"ugcnn: option kernel must be odd, got {cfg.options['kernel']!r}")
    return replace(cfg, options=dict(exp.defaults) | dict(cfg.options))


def validate(exp: Experiment, cfg: SweepConfig) -> tuple[torch.device, torch.dtype]:
    """Check a configuration before anything runs; SweepError says what is wrong."""
    cfg = with_defaults(exp, cfg)
    if cfg.dtype not in DTYPES:
        raise SweepError(f"--dtype: unknown dtype {cfg.dtype!r} (choose float32 or float64)")
    if cfg.by_module is not None and (isinstance(cfg.by_module, bool)
                                      or not isinstance(cfg.by_module, int) or cfg.by_module < 1):
        raise SweepError(f"--by-module: the depth is a whole number of at least 1 (the model "
                         f"itself), got {cfg.by_module!r}")  # fmt: skip
    if cfg.repeats < 1:
        raise SweepError(f"--repeats must be at least 1, got {cfg.repeats}")
    if cfg.max_passes < 1:
        raise SweepError(f"--max-passes must be at least 1, got {cfg.max_passes}")
    if not (math.isfinite(cfg.precision) and cfg.precision > 0):
        raise SweepError(f"--precision must be a positive number, got {cfg.precision:g}")
    if cfg.until not in UNTIL:
        raise SweepError(f"--until: choose {' or '.join(UNTIL)}, got {cfg.until!r}")
    if cfg.time_budget is not None and not (math.isfinite(cfg.time_budget) and cfg.time_budget > 0):
        raise SweepError(
            f"--time-budget must be a positive number of seconds, got {cfg.time_budget:g}"
        )
    if cfg.max_memory is not None and cfg.max_memory < 1:
        raise SweepError(f"--max-memory must be a positive number of bytes, got {cfg.max_memory}")
    timeout = cfg.point_timeout
    if timeout is not None and not (isinstance(timeout, (int, float)) and math.isfinite(timeout)
                                    and 0 < timeout <= MAX_POINT_TIMEOUT):  # fmt: skip
        raise SweepError(f"--point-timeout must be a number of seconds above 0 and up to "
                         f"{MAX_POINT_TIMEOUT:g}, got {timeout!r}")  # fmt: skip
    sizes_of(cfg)
    device = resolve_device(cfg.device)
    dtype = DTYPES[cfg.dtype]
    check_memory(exp, cfg, device, dtype)
    return device, dtype


def plan(exp: Experiment, cfg: SweepConfig) -> list[tuple[str, int]]:
    """The (variant, size) points of the run, in the shuffled order they are visited."""
    sizes = sizes_of(cfg)
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


def _schedule_columns(schedule: Mapping[str, int] | None) -> dict[str, int | None]:
    """T_P by column (trainbench.core.vocabulary.SCHEDULE_COLUMNS); empty where not recorded."""
    return {c: (schedule or {}).get(c) for c in SCHEDULE_COLUMNS}


def span_columns(m: PointMetrics) -> dict[str, int | None]:
    """A point's span columns: its backward's bytes, span FLOPs and bytes, and T_P."""
    return {k: getattr(m, k) for k in SPAN_METRICS} | _schedule_columns(m.schedule)


def _counted_record(variant: str, size: int, counts: Mapping[str, Any]) -> dict[str, Any]:
    """The row of a point counted but not timed: its counts, no times, 0 rounds."""
    keys = ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes",
            "param_bytes", "peak_bytes", *SPAN_METRICS)  # fmt: skip
    none = ("fwd_s", "fwd_iqr_s", "bwd_s", "bwd_iqr_s", "working_set_bytes", "gflops",
            "efficiency", "fwd_runs_per_sample", "bwd_runs_per_sample")  # fmt: skip
    return ({"variant": variant, "size": size} | {k: counts.get(k) for k in keys}
            | _schedule_columns(counts.get("schedule")) | dict.fromkeys(none)
            | {"undercounted": counts.get("undercounted"), "census": counts.get("census"),
               "modules": counts.get("modules")}
            | {"noisy": False, "rounds": 0, "format_version": FORMAT_VERSION})  # fmt: skip


def _drift_cancelled(points: Sequence[Point]) -> dict[tuple[str, int], dict[str, Any]]:
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


def _what_failed(err: BaseException) -> str:
    return f"{type(err).__name__}: {first_line(err)}"


PASS_ID_STRIDE = 100_000  # pass ids of the groups that memory splits a pass into
FALLBACK_PASSES = 12  # passes per group where they are split
CHECK_BOOT = 200  # bootstrap replicates of the check of an interval's width between passes

_now: Callable[[], float] = time.monotonic  # the clock of --time-budget (tests replace it)


# --------------------------------------------------------------------------- the run


def _count(
    exp: Experiment,
    variant: str,
    size: int,
    options: Mapping[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    by_module: int | None = None,
) -> dict[str, Any]:
    # (a function of its own, so that the point's model is freed when it returns or raises)
    counts = count_point(exp.forward(variant, size, options, device, dtype), device)
    if by_module is not None:  # counted once more, a newly built model, per module
        counts["modules"] = count_modules(exp.forward(variant, size, options, device, dtype),
                                          by_module)  # fmt: skip
    return counts


def _probe(
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


def _time(
    exp: Experiment, variant: str, size: int, probe: Callable[[], Probe]
) -> tuple[Timing, Timing]:
    """One visit of a point in a pass: its probe (made by ``probe``) timed once, forward
    then backward."""
    return probe().visit()


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
        points: list[Point],
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
        self.done = sum(p.rounds for p in points)
        self.total = max(len(todo) * cfg.repeats, self.done)
        # the time metrics whose intervals decide when the passes end, per variant
        self.watch: dict[str, tuple[str, ...]] = {}
        self.reached: dict[str, float | None] = {}
        self.settled_at: dict[str, int] = {}
        self.confirmed_at: dict[str, int] = {}  # --until confirmed: the pass it stopped at
        self.claims: Sequence[Claim] | None = None  # the claims judged (None: the file's)
        self.window_passes = 0  # passes after which the points below the fit window stopped
        self.counting = False  # in the counting pass

    # files and progress

    def save(self) -> None:
        """The points in ``result`` (:meth:`collect`), then on disk."""
        self.collect()
        self.write()

    def finish_and_save(self) -> None:
        """Fit what was measured, judge the claims, and save."""
        self.collect()
        if self.result.points:
            finish(self.result, self.exp, self.cfg.seed, self.claims)
        self.write()

    def write(self) -> None:
        """``result`` on disk (where the run has a folder)."""
        if self.folder is not None:
            result = self.result
            result.files = write_run(self.folder, result.summary(), result.points, result.samples)

    def collect(self) -> None:
        """The points in ``result``: the timed ones; while the counting pass is on (a run
        stopped in it), also those counted so far, with no times and 0 rounds, so that
        their counts are kept and fitted. (Once the timing passes have begun, a point not
        timed is left out: one a failure or the budget stopped is not part of the run.)"""
        timed = [p for p in self.points if p.rounds > 0]
        result = self.result
        cancelled = _drift_cancelled(timed)
        result.points = [
            _point_record(
                p.variant, p.size, p.metrics(), self.rate, p.rounds, cancelled[(p.variant, p.size)]
            )
            | p.compile_record()
            if p.rounds > 0
            else _counted_record(p.variant, p.size, p.counts)
            for p in self.points
            if p.rounds > 0 or self.counting
        ]
        result.samples = [
            {
                "variant": p.variant,
                "size": p.size,
                "phase": phase,
                "round": r,  # the pass it was taken in
                "sample_s": t,
                "format_version": FORMAT_VERSION,
            }
            for p in timed
            for phase in ("fwd", "bwd")
            for t, r in zip(*p.labels(phase), strict=True)
        ]

    def tick(self, variant: str, size: int, finished: bool) -> None:
        if self.on_progress:
            self.on_progress(Progress(self.done, self.total, variant, size, finished=finished))

    def recount_total(self) -> None:
        reps = self.cfg.repeats
        self.total = sum(
            max(p.rounds, reps) if p.size < self.grow_limit else p.rounds for p in self.points
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
        assert self.cfg.max_memory is not None
        why = memory_excess(self.points, variant, size, self.cfg.max_memory)
        if why is None:
            return None
        skipped = _sizes_text(self.not_measured(size, variant))
        return f"skipped {self.exp.size_name} = {skipped} ({variant}): {why}"

    def fail(self, variant: str, size: int, phase: str, reason: str, oom: bool = True) -> None:
        record = {"variant": variant, "size": size, "phase": phase, "reason": reason}
        if not oom:  # a target that broke its contract at this size
            record["oom"] = False
        self.result.failed.append(record)
        self.grow_limit = min(self.grow_limit, size)
        self.result.notes.append(self.failure_note(record))
        free_memory(self.device)
        self.recount_total()

    def stuck(self, variant: str, size: int, phase: str) -> Callable[[PointTimeout], None] | None:
        """What to do with a point that swallows its timeout (trainbench.measure.watchdog), where
        the process may be ended (the command line): record it as failed, fit and save
        what was measured, say so on stderr and end the process with exit 1. None (the
        alarms go on) where it may not."""
        if not watchdog.EXIT_WHEN_STUCK:
            return None

        def end(timeout: PointTimeout) -> None:
            self.fail(variant, size, phase, f"{timeout} and did not stop when interrupted",
                      oom=False)  # fmt: skip
            self.result.notes.append(
                "the run was ended there: the point would not stop (--resume goes on without it)"
            )
            self.finish_and_save()
            n = self.exp.size_name
            sys.stderr.write(
                f"trainbench: error: {variant} at {n} = {size} {timeout} and did not stop "
                "when interrupted; the run is saved (incomplete): --resume goes on without "
                "it\n"
            )
            sys.stderr.flush()
            os._exit(1)

        return end

    def failure_note(self, record: Mapping[str, Any]) -> str:
        n, size = self.exp.size_name, record["size"]
        later = sorted({s for _, s in self.todo if s >= size})
        doing = "counting" if record["phase"] == "count" else "timing"
        what = "ran out of memory" if record.get("oom", True) else "failed"
        return (
            f"{record['variant']} at {n} = {size} {what} while {doing} "
            f"({record['reason']}): stopped growing, {n} = {_sizes_text(later)} not "
            + ("measured" if record["phase"] == "count" else "measured further")
        )

    # the two passes

    def count(self) -> None:
        """Count every point without a record, in increasing size, within the limits."""
        self.counting = True
        before = len(self.points)
        self._count_sizes()  # (an exception leaves it on: a run stopped there keeps its counts)
        self.counting = False
        why = unspanned_note(self.points[before:], self.exp.size_name)
        if why:
            self.result.notes.append(why)

    def _count_sizes(self) -> None:
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
                names = [v.name for v in self.exp.variants]
                cost = sum(point_cost(self.points, names, v, size, cfg.repeats, cfg.min_time)
                           for v in accepted)  # fmt: skip
                owed = reserved(self.points, cfg.repeats, cfg.min_time, self.grow_limit)
                left = cfg.time_budget - self.elapsed() - owed
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
                failure, foreign = None, False
                try:
                    if cfg.time_budget is not None and not self.warm:
                        # The first count of a process also pays for one-time set-up
                        # (hundreds of times a small point's count): not the time of
                        # counting, so not what the cost model should grow from.
                        with deadline(cfg.point_timeout, self.stuck(variant, size, "count")):
                            _count(self.exp, variant, size, self.options, self.device,
                                   self.dtype)  # fmt: skip
                    self.warm = True
                    start = _now()
                    with deadline(cfg.point_timeout, self.stuck(variant, size, "count")):
                        counts = _count(self.exp, variant, size, self.options, self.device,
                                        self.dtype, cfg.by_module)  # fmt: skip
                except (RuntimeError, MemoryError) as err:
                    if not is_out_of_memory(err) and not self.exp.foreign:
                        raise
                    foreign = not is_out_of_memory(err)
                    failure = _what_failed(err) if foreign else first_line(err)
                except (SweepError, PointTimeout) as err:  # a target that raises or hangs
                    self.fail(variant, size, "count", str(err), oom=False)
                    return
                except Exception as err:  # a target whose backward fails at this size
                    if not self.exp.foreign:
                        raise
                    self.fail(variant, size, "count", _what_failed(err), oom=False)
                    return
                if failure is not None:
                    self.fail(variant, size, "count", failure, oom=not foreign)
                    return
                if self.uncounted:
                    counts |= dict.fromkeys(("fwd_flops", "bwd_flops", "span_flops", "schedule"))
                self.points.append(Point(variant, size, counts, count_s=_now() - start))
        self.recount_total()

    def time_passes(self) -> None:
        """Time the points in passes: a pass visits every point still being timed once, in
        a newly shuffled order, so the sizes it compares are measured close in time. From
        ``cfg.repeats`` passes on, a variant whose watched time exponents' intervals are
        narrow enough (half-width at most ``cfg.precision``) is visited no more; the passes
        end when none is left, after ``cfg.max_passes``, or when the time budget is spent.
        Every pass's points are kept in memory together (model, one graph for the backward)
        where they fit in --max-memory; where they do not, neighbouring sizes are timed in
        groups that fit, each sharing a size with the next (see :meth:`groups`)."""
        # The same order for a fresh run and a resumed one.
        self.points.sort(key=lambda p: (p.size, self.rank.get(p.variant, 0)))
        self.recount_total()
        live = [p for p in self.points if p.size < self.grow_limit]
        groups = self.groups(live)
        for g, group in enumerate(groups):
            if not self.run_passes(group, first_id=g * PASS_ID_STRIDE, adaptive=len(groups) == 1):
                return

    def groups(self, live: list[Point]) -> list[list[Point]]:
        """The points timed in the same passes: all of them where they fit in --max-memory
        together; else, per variant, runs of neighbouring sizes that fit (at least two),
        each sharing its largest size with the next, so the estimator can chain them."""
        assert self.cfg.max_memory is not None
        total = sum(p.working_set for p in live)
        if total <= self.cfg.max_memory or len(live) <= 2:
            return [live] if live else []
        out: list[list[Point]] = []
        for v in [v.name for v in self.exp.variants]:
            mine = sorted((p for p in live if p.variant == v), key=lambda p: p.size)
            i = 0
            while i < len(mine) - 1:
                j, used = i + 1, mine[i].working_set + mine[i + 1].working_set
                while j + 1 < len(mine) and used + mine[j + 1].working_set <= self.cfg.max_memory:
                    j += 1
                    used += mine[j].working_set
                out.append(mine[i : j + 1])
                i = j
            if len(mine) == 1:
                out.append(mine)
        self.result.notes.append(
            f"the points of a pass do not fit in --max-memory together "
            f"({total / 2**20:.0f} MiB against {self.cfg.max_memory / 2**20:.0f} MiB): timed "
            f"in {len(out)} groups of neighbouring sizes (each sharing a size with the next, "
            f"through which the sizes are chained), {self.fixed_passes()} passes each"
        )
        return out

    def fixed_passes(self) -> int:
        return max(self.cfg.repeats, min(self.cfg.max_passes, FALLBACK_PASSES))

    def run_passes(self, group: list[Point], first_id: int, adaptive: bool) -> bool:
        """The passes of one group; False where the time budget ended them."""
        cfg = self.cfg
        probes: dict[tuple[str, int], Probe] = {}
        active = [p for p in group]
        ids = sorted({i for p in group for i in p.pass_ids})
        next_id = max(ids) + 1 if ids else first_id
        passes = len(ids)
        # A resumed run first finishes the pass it was interrupted in: the points that
        # lack its id while others of their variant have it.
        owed: set[tuple[str, int]] = set()
        if ids:
            with_last = {p.variant for p in group if ids[-1] in p.pass_ids}
            done_with = self.below_window(group) if adaptive and len(ids) > cfg.repeats else []
            owed = {(p.variant, p.size) for p in group
                    if p.variant in with_last and ids[-1] not in p.pass_ids
                    and p not in done_with}  # fmt: skip
            if owed:
                next_id, passes = ids[-1], passes - 1
        cap = max(cfg.max_passes, cfg.repeats) if adaptive else self.fixed_passes()
        stopped = f"{cap} passes (--max-passes)" if adaptive else f"{cap} passes"
        try:
            while active:
                if adaptive and passes >= cfg.repeats and not owed:
                    settled = self.settled({p.variant for p in active}, passes)
                    below = self.below_window(active)
                    if below and not self.window_passes:
                        self.window_passes = cfg.repeats  # (they stop after these, resumed too)
                    gone = {(p.variant, p.size) for p in below}
                    active = [p for p in active if p.variant not in settled
                              and (p.variant, p.size) not in gone]  # fmt: skip
                    for key in [k for k in probes if k[0] in settled or k in gone]:
                        del probes[key]
                    if not active:
                        stopped = f"every watched interval within ±{cfg.precision:g}"
                        if self.confirmed_at:
                            stopped = (f"every time claim confirmed or its interval within "
                                       f"±{cfg.precision:g} (--until confirmed)")  # fmt: skip
                        break
                if passes >= cap:
                    break
                this_pass = len(owed) if owed else len(active)
                self.total = self.done + this_pass + len(active) * max(0, cfg.repeats - passes - 1)
                order = list(active)
                random.Random(cfg.seed * 1_000_003 + next_id).shuffle(order)
                for p in order:
                    if p.size >= self.grow_limit:  # a failure stopped the growth below it
                        continue
                    if owed and (p.variant, p.size) not in owed:  # timed in this pass already
                        continue
                    if cfg.time_budget is not None and self.elapsed() >= cfg.time_budget:
                        self.budget_spent()
                        self.record_schedule(passes, "the time budget", adaptive)
                        return False
                    self.tick(p.variant, p.size, finished=False)
                    timed = self.visit(p, probes)
                    if timed is None:
                        for key in [k for k in probes if k[1] >= self.grow_limit]:
                            del probes[key]
                        continue
                    p.add(next_id, *timed)
                    self.done += 1
                    self.tick(p.variant, p.size, finished=True)
                owed = set()
                active = [p for p in active if p.size < self.grow_limit]
                passes += 1
                next_id += 1
                self.save()
        finally:
            probes.clear()
            free_memory(self.device)
        self.record_schedule(passes, stopped, adaptive)
        return True

    def visit(
        self, p: Point, probes: dict[tuple[str, int], Probe]
    ) -> tuple[Timing, Timing] | None:
        """One visit of ``p`` (its probe built anew); None where it failed (recorded)."""
        key = (p.variant, p.size)
        failure, foreign = None, False

        def probe() -> Probe:
            # Each pass builds the point anew (model, inputs, graph), so that where its
            # tensors lie in memory varies from pass to pass, as the drift does, instead
            # of staying one layout for the whole run; a compiled point is kept (compiling
            # it again would take longer than timing it).
            if key in probes and self.cfg.compile:
                probes[key].time_forward = self.times_forward(p)
                return probes[key]
            probes.pop(key, None)  # the last pass's model and graph, freed first
            made = _probe(self.exp, p, self.options, self.device, self.dtype,
                          self.threads, self.cfg, p.plan)  # fmt: skip
            probes[key], p.plan = made, made.plan
            made.time_forward = self.times_forward(p)
            return made

        try:
            with deadline(self.cfg.point_timeout, self.stuck(p.variant, p.size, "time")):
                return _time(self.exp, p.variant, p.size, probe)
        except PointTimeout as err:  # a point that does not return
            failure, foreign = str(err), True
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err) and not self.exp.foreign:
                raise
            foreign = not is_out_of_memory(err)
            failure = _what_failed(err) if foreign else first_line(err)
        except SweepError as err:  # a target that raises at this size
            failure, foreign = str(err), True
        except Exception as err:  # a target whose backward fails at this size
            if not self.exp.foreign:
                raise
            failure, foreign = _what_failed(err), True
        probes.pop(key, None)
        self.fail(p.variant, p.size, "time", failure, oom=not foreign)
        return None

    def times_forward(self, p: Point) -> bool:
        """Whether a visit of ``p`` times its forward: in every pass where a claim of the
        run is on its variant's forward time; else in its first ``--repeats`` passes only
        (its later samples could neither decide a verdict nor end the passes; the
        backward's passes go on)."""
        return "fwd_s" in self.watch.get(p.variant, ()) or p.rounds < self.cfg.repeats

    def below_window(self, active: list[Point]) -> list[Point]:
        """The points of ``active`` smaller than every size their variant's fit window
        holds (:func:`trainbench.stats.fit.window_start`): their times cannot move an interval,
        so once the first ``--repeats`` passes have timed them they are visited no more."""
        out = []
        for v in {p.variant for p in active}:
            sizes = sorted(p.size for p in self.points if p.variant == v
                           and self.exp.min_fit_size <= p.size < self.grow_limit)  # fmt: skip
            if not sizes:
                continue
            start = sizes[window_start(sizes)]
            out += [p for p in active if p.variant == v and p.size < start]
        return out

    def half_width(self, variant: str, metric: str) -> float | None:
        """Half the width of the interval of ``metric`` (a time) of ``variant`` now."""
        mine = sorted(
            (p for p in self.points
             if p.variant == variant and p.rounds and p.size >= self.exp.min_fit_size),
            key=lambda p: p.size,
        )  # fmt: skip
        data = [p.labels(metric[:3]) for p in mine]
        try:
            fit = fit_order(
                [p.size for p in mine], [t for t, _ in data], rounds=[i for _, i in data],
                n_boot=CHECK_BOOT, seed=self.cfg.seed,
            )  # fmt: skip
        except ValueError:
            return None
        return (fit.ci_high - fit.ci_low) / 2

    def settled(self, variants: set[str], passes: int) -> set[str]:
        """The variants whose watched time metrics are all within ±precision now, and with
        ``--until confirmed`` those whose time claims all read confirmed now."""
        out = set()
        widths_of: dict[str, dict[str, float | None]] = {}
        for v in sorted(variants):
            widths = {m: self.half_width(v, m) for m in self.watch.get(v, ("bwd_s",))}
            widths_of[v] = widths
            for m, w in widths.items():
                self.reached[f"{v}/{m}"] = None if w is None else round(w, 4)
            # (a metric that cannot be fitted yet, too few sizes, is not waited for)
            if all(w is None or w <= self.cfg.precision for w in widths.values()):
                out.add(v)
                self.settled_at[v] = passes
        if self.cfg.until == "confirmed":
            for v in self.confirmed_now(variants - out, widths_of):
                out.add(v)
                self.settled_at[v] = self.confirmed_at[v] = passes
        return out

    def confirmed_now(
        self, variants: set[str], widths: Mapping[str, Mapping[str, float | None]]
    ) -> set[str]:
        """The variants of ``variants`` with time claims, every one of which reads confirmed
        on the points timed so far, judged as at the end of the run (the same fits, bootstrap
        and rules). Judged only where each claimed interval is at most as wide as its band
        (no interval wider can lie inside it)."""
        claims = run_claims(self.exp.name, self.cfg.options, self.claims)
        timed = [c for c in claims if c.metric in TIME_METRICS]
        by_id = {c.id: c for c in claims}
        ready = {
            v for v in variants
            if any(c.variant == v for c in timed)
            and all((w := widths.get(c.variant, {}).get(c.metric)) is not None
                    and w <= c.tolerance for c in timed if c.variant == v)
        }  # fmt: skip
        if not ready:
            return set()
        mine = [c for c in timed if c.variant in ready]
        controls = [by_id[c.control] for c in mine if c.control in by_id]
        need = {(c.variant, c.metric) for c in [*mine, *controls]}
        need |= {(c.variant, c.work_metric) for c in mine if c.work_metric}
        result = self.result
        fits, _ = fit_points(
            result.points, result.samples, self.cfg.seed, self.exp.min_fit_size, only=need
        )
        judged = judge_claims(
            self.exp, fits, {p["variant"] for p in result.points},
            result.config.get("options"), [c for c in claims if c in mine or c in controls],
            points=result.points, samples=result.samples,
            caches=(result.environment or {}).get("caches"), seed=self.cfg.seed,
        )  # fmt: skip
        verdict = {r["id"]: r["verdict"] for r in judged}
        return {v for v in ready
                if all(verdict.get(c.id) == CONFIRMED for c in mine if c.variant == v)}  # fmt: skip

    def record_schedule(self, passes: int, stopped: str, adaptive: bool) -> None:
        cfg = self.cfg
        self.result.schedule = {
            "passes": passes,
            "min_passes": cfg.repeats,
            "max_passes": cfg.max_passes,
            "precision": cfg.precision,
            "adaptive": adaptive,
            "half_widths": dict(self.reached),
            "settled_at": dict(self.settled_at),
            "until": cfg.until,
            "confirmed_at": dict(self.confirmed_at),
            "below_window_passes": self.window_passes or None,
            "stopped": stopped,
        }
        widths = ", ".join(
            f"{k} ±{w:.3f}" + (f" after {self.settled_at[k.split('/')[0]]}"
                               if k.split("/")[0] in self.settled_at else "")
            + (" (confirmed)" if k.split("/")[0] in self.confirmed_at else "")
            for k, w in self.reached.items() if w is not None
        )  # fmt: skip
        note = (
            f"timed in {passes} passes (each visits every point once, in a shuffled order; "
            f"at least {cfg.repeats}"
            + (f", so --max-passes {cfg.max_passes} could not end them sooner"
               if cfg.max_passes < cfg.repeats else "")
            + f"); stopped at {stopped}"
            + (f"; interval half-widths reached: {widths}" if widths else "")
            + (f"; the points below their variant's fit window were timed in the first "
               f"{self.window_passes} passes only (their times do not enter the fit)"
               if self.window_passes and self.window_passes < passes else "")
            + (f"; the forward time (no claim of the run is on it) was timed in the first "
               f"{cfg.repeats} passes only" if passes > cfg.repeats and any(
                   "fwd_s" not in self.watch.get(v.name, ()) for v in self.exp.variants)
               else "")
        )  # fmt: skip
        self.result.notes = [n for n in self.result.notes if not n.startswith("timed in ")]
        self.result.notes.append(note)

    def budget_spent(self) -> None:
        never = sum(1 for p in self.points if p.rounds == 0)
        self.result.notes.append(
            f"--time-budget {self.cfg.time_budget:g} s spent after {self.done} of {self.total} "
            "timed point-rounds: no further rounds were started (the points keep the rounds "
            "they have)"
            + (f"; {never} counted point{'s' * (never > 1)} never timed, left out" if never else "")
        )


def watched_metrics(
    exp: Experiment, options: Mapping[str, Any], claims: Sequence[Claim] | None
) -> dict[str, tuple[str, ...]]:
    """Per variant, the time metrics whose intervals decide when the passes end: those its
    claims in this run are about; none for a variant whose claims are all on counts (its
    times decide no verdict); a variant without claims: its backward time."""
    out: dict[str, list[str]] = {}
    for c in run_claims(exp.name, options, claims):
        out.setdefault(c.variant, [])
        if c.metric in TIME_METRICS:
            out[c.variant].append(c.metric)
    return {v: tuple(dict.fromkeys(m)) for v, m in out.items()}


def _plan_notes(
    exp: Experiment, cfg: SweepConfig, todo: Sequence[tuple[str, int]], device: torch.device
) -> list[str]:
    """What a reader of the run needs to know about its plan."""
    notes = list(exp.notes)
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
    if cfg.compile:
        notes.append(
            "--compile: times are of the model under torch.compile (each point compiled "
            "before its timing; compile_s is that first forward and backward), eager_s and "
            "speedup compare its eager time; FLOPs, graph and saved bytes are counted on the "
            "eager model"
        )
    uncounted = exp.uncounted_flops(cfg.options, device) if exp.uncounted_flops else None
    if uncounted:
        notes.append(uncounted)
    return notes


@keeps_torch_threads
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
      size is predicted to need more (limits.MEMORY_MARGIN times its extrapolated saved
      activations, or on CUDA its extrapolated peak) is not grown further;
    * ``time_budget`` (seconds, for the whole run): the growth stops where the
      time spent, the timing still owed to the points counted, and the predicted
      cost of the next size (see limits.ROUND_COUNTS) would exceed it. In the timing
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
    threads = cfg.threads if cfg.threads > 0 else default_threads(device)
    todo = plan(exp, cfg)
    folder = out_dir / exp.folder(cfg.options) if out_dir is not None else None
    with ExitStack() as owned:
        owned.enter_context(watching_signals())  # a Ctrl-C told from a target's interrupt
        if folder is not None:  # one writer per run folder, from before it is first read
            owned.enter_context(hold(folder))
        earlier = read_earlier(exp, cfg, device, threads, folder, todo) if resume else None
        torch.set_num_threads(threads)
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
        old_baseline = earlier.baseline() if earlier is not None else None
        if old_baseline is not None:
            baseline = old_baseline
            rate = float(old_baseline["gflops"]) * 1e9
        else:
            rate = matmul_rate(rows, inner, cols, device=device, dtype=dtype, threads=threads)
            baseline = {"op": "torch.mm", "shape": [rows, inner, cols], "gflops": rate / 1e9}
            # the rate as a resumed run reads it back, so that its efficiencies are the same
            # to the last digit (gflops * 1e9 need not give back the rate exactly)
            rate = float(baseline["gflops"]) * 1e9
        # The model options are also given at the top level (config.cell, config.width, ...).
        config = (
            asdict(cfg)
            | cfg.options
            | {
                "experiment": exp.name,
                "sizes": sorted({s for _, s in todo}),
                "variants": sorted({v for v, _ in todo}),
            }
        )
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
        if earlier is not None and earlier.take_over(result):  # complete: fit and judge again
            run = _Sweep(exp, cfg, device, dtype, threads, todo, result, rate, folder,
                         on_progress, started, points)  # fmt: skip
            run.claims = claims
            run.finish_and_save()
            return result
        run = _Sweep(exp, cfg, device, dtype, threads, todo, result, rate, folder,
                     on_progress, started, points)  # fmt: skip
        run.watch = watched_metrics(exp, cfg.options, claims)
        run.claims = claims
        if earlier is not None:
            result.notes.extend(earlier.mismatched)
            result.notes.extend(run.failure_note(f) for f in result.failed)
            result.notes.append(earlier.resumed_note(run.done, run.total))
        try:
            run.save()
            run.count()
            run.time_passes()
            if old_baseline is None:  # measured once more at the end: the faster of the two
                best = max(rate, matmul_rate(rows, inner, cols, device=device, dtype=dtype,
                                             threads=threads))  # fmt: skip
                baseline["gflops"] = best / 1e9
                run.rate = float(baseline["gflops"]) * 1e9  # as a resumed run reads it back
        except KeyboardInterrupt:
            result.notes.append(f"interrupted after {run.done} of {run.total} timed point-rounds")
            run.finish_and_save()
            raise
        result.complete = True
        run.finish_and_save()
        return result
