"""A sweep's configuration checked and completed before anything is measured.

:func:`validate` refuses a configuration that cannot run (SweepError says what is wrong),
:func:`with_defaults` completes its model options, :func:`plan` lists the points it
visits, and :func:`plan_notes` says what a reader of the run needs to know about them.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from trainbench.core.options import MAX_DIM, OptionSpec
from trainbench.core.settings import SweepConfig, SweepError
from trainbench.experiments.builtin import Experiment
from trainbench.measure.watchdog import MAX_POINT_TIMEOUT

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


def option_spec(exp: Experiment, name: str) -> OptionSpec | None:
    """What ``exp`` declares of its model option ``name`` (an experiment that declares no
    options, such as one made in Python: what its default's type allows)."""
    spec = exp.option(name)
    if spec is not None or exp.options:
        return spec
    default = exp.defaults.get(name)
    if isinstance(default, int) and not isinstance(default, bool):
        return OptionSpec(name, int, default, low=1, high=MAX_DIM)
    if isinstance(default, str):
        return OptionSpec(name, str, default, choices=tuple(exp.choices.get(name, ())))
    return None


def with_defaults(exp: Experiment, cfg: SweepConfig) -> SweepConfig:
    """The configuration with the experiment's default for every model option left out;
    SweepError where an option is unknown or its value is not what its declaration allows."""
    unknown = sorted(set(cfg.options) - set(exp.defaults)) if exp.defaults else []
    if unknown:
        raise SweepError(
            f"{exp.name}: unknown option {unknown[0]!r} (known: {', '.join(exp.defaults)})"
        )
    for name, value in cfg.options.items():
        spec = option_spec(exp, name)
        problem = spec.problem(value) if spec is not None else None
        if problem:
            raise SweepError(f"{exp.name}: option {name} {problem}")
    return replace(cfg, options=dict(exp.defaults) | dict(cfg.options))


@dataclass(frozen=True)
class Prepared:
    """A configuration checked once and completed with the experiment's defaults, with the
    device and dtype it runs on: what :func:`trainbench.harness.runner.run_sweep` runs."""

    cfg: SweepConfig
    device: torch.device
    dtype: torch.dtype


def validate(exp: Experiment, cfg: SweepConfig) -> tuple[torch.device, torch.dtype]:
    """Check a configuration before anything runs; SweepError says what is wrong."""
    prepared = prepare(exp, cfg)
    return prepared.device, prepared.dtype


def prepare(exp: Experiment, cfg: SweepConfig) -> Prepared:
    """The one check of a configuration before anything runs (SweepError says what is
    wrong), and the configuration completed with the experiment's defaults."""
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
    return Prepared(cfg, device, dtype)


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


def plan_notes(
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
