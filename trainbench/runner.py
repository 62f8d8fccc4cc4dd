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

Parts of a sweep live beside this module: its settings in :mod:`trainbench.config`
(re-exported here), the predictions of its limits and the recognition of an
out-of-memory error in :mod:`trainbench.limits`, the reading back of an earlier run
for ``--resume`` in :mod:`trainbench.resume`, and the fits and verdicts in
:mod:`trainbench.analysis` (``fit_points`` and ``judge_claims`` re-exported here).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from trainbench import __version__
from trainbench.analysis import finish
from trainbench.analysis import fit_points as fit_points  # re-exported
from trainbench.analysis import judge_claims as judge_claims  # re-exported
from trainbench.claims import Claim
from trainbench.config import SweepConfig, SweepError, first_line
from trainbench.experiments import Experiment
from trainbench.limits import (
    _free_memory,
    _is_out_of_memory,
    _secs_text,
    _sizes_text,
    memory_excess,
    point_cost,
    reserved,
)
from trainbench.measure import (
    NOISY_SPREAD,
    PointMetrics,
    Timing,
    compile_forward,
    count_point,
    matmul_rate,
    time_round,
)
from trainbench.results import FORMAT_VERSION, environment, keep_earlier_run, write_run
from trainbench.resume import _read_earlier

DTYPES = {"float32": torch.float32, "float64": torch.float64}



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
    # points that ran out of memory (or where a target raised: "oom": False):
    # {"variant", "size", "phase": "count" | "time", "reason"}
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
    # --compile: how its first round compiled (compiled, compile_s, reason), and its eager
    # forward+backward time, for the speed-up
    compile: dict[str, Any] | None = None
    eager_s: float | None = None

    @property
    def rounds(self) -> int:
        return len(self.bwd_rounds)

    def compile_record(self) -> dict[str, Any]:
        """--compile: whether it compiled, the compile time, eager time and speed-up."""
        if self.compile is None:
            return {}
        eager = self.eager_s
        now = Timing.merge(self.fwd_rounds).median + Timing.merge(self.bwd_rounds).median
        return {
            "compiled": bool(self.compile.get("compiled")),
            "compile_s": self.compile.get("compile_s"),
            "eager_s": eager,
            "speedup": eager / now if eager and now > 0 else None,
            "compile_note": self.compile.get("reason"),
        }

    def metrics(self) -> PointMetrics:
        return PointMetrics(
            fwd=Timing.merge(self.fwd_rounds), bwd=Timing.merge(self.bwd_rounds), **self.counts
        )



def _what_failed(err: BaseException) -> str:
    return f"{type(err).__name__}: {first_line(err)}"


_now: Callable[[], float] = time.monotonic  # the clock of --time-budget (tests replace it)


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


def _time_compiled(
    exp: Experiment,
    p: _Point,
    options: Mapping[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    threads: int,
    min_time: float,
) -> tuple[Timing, Timing]:
    """A round of a point under torch.compile; its first round also compiles it (timed on
    its own) and times it eagerly, for the speed-up."""
    forward = exp.forward(p.variant, p.size, options, device, dtype)
    c = compile_forward(forward, device)
    if p.compile is None:
        p.compile = {"compiled": c.compiled, "compile_s": c.compile_s, "reason": c.reason}
        p.eager_s = sum(t.median for t in time_round(forward, threads=threads, min_time=min_time))
    return time_round(c.forward, threads=threads, min_time=min_time)


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
            _point_record(p.variant, p.size, p.metrics(), self.rate, p.rounds)
            | p.compile_record()
            for p in timed
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
        _free_memory(self.device)
        self.recount_total()

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
                        _count(self.exp, variant, size, self.options, self.device, self.dtype)
                    self.warm = True
                    start = _now()
                    counts = _count(self.exp, variant, size, self.options, self.device, self.dtype)
                except (RuntimeError, MemoryError) as err:
                    if not _is_out_of_memory(err) and not self.exp.foreign:
                        raise
                    foreign = not _is_out_of_memory(err)
                    failure = _what_failed(err) if foreign else first_line(err)
                except SweepError as err:  # a target that raises at this size
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
                failure, foreign = None, False
                try:
                    if cfg.compile:
                        f, b = _time_compiled(self.exp, p, self.options, self.device,
                                              self.dtype, self.threads, cfg.min_time)  # fmt: skip
                    else:
                        f, b = _time(self.exp, p.variant, p.size, self.options, self.device,
                                     self.dtype, self.threads, cfg.min_time)  # fmt: skip
                except (RuntimeError, MemoryError) as err:
                    if not _is_out_of_memory(err) and not self.exp.foreign:
                        raise
                    foreign = not _is_out_of_memory(err)
                    failure = _what_failed(err) if foreign else first_line(err)
                except SweepError as err:  # a target that raises at this size
                    self.fail(p.variant, p.size, "time", str(err), oom=False)
                    continue
                except Exception as err:  # a target whose backward fails at this size
                    if not self.exp.foreign:
                        raise
                    self.fail(p.variant, p.size, "time", _what_failed(err), oom=False)
                    continue
                if failure is not None:
                    self.fail(p.variant, p.size, "time", failure, oom=not foreign)
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
    old_baseline = earlier.baseline() if earlier is not None else None
    if old_baseline is not None:
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
    if earlier is not None and earlier.take_over(result):  # complete: fit and judge again
        run = _Sweep(exp, cfg, device, dtype, threads, todo, result, rate, folder,
                     on_progress, started, points)  # fmt: skip
        run.save()
        _finish_and_save(result, exp, cfg, run.save, claims)
        return result
    run = _Sweep(exp, cfg, device, dtype, threads, todo, result, rate, folder,
                 on_progress, started, points)  # fmt: skip
    if earlier is not None:
        result.notes.extend(run.failure_note(f) for f in result.failed)
        result.notes.append(earlier.resumed_note(run.done, run.total))
    try:
        run.save()
        run.count()
        run.time_rounds()
        if old_baseline is None:  # measured once more at the end: the faster of the two
            run.rate = max(rate, matmul_rate(rows, inner, cols, device=device, dtype=dtype,
                                             threads=threads))  # fmt: skip
            baseline["gflops"] = run.rate / 1e9
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
