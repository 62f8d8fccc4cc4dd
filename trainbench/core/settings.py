"""The settings of a sweep (:class:`SweepConfig`) and the error for settings it cannot run
(:class:`SweepError`).

A module of its own so that the modules a sweep is made of (sweep, resume) can share them
without importing one another; ``trainbench.harness.runner`` re-exports both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any


class SweepError(ValueError):
    """A configuration the sweep cannot run; the message is for the user."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none): what a
    one-line error on stderr quotes."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# The bounds (inclusive) of the settings a user gives both on the command line and in the
# claims file's [runs] tables: one table, so that the two accept the same values.
BOUNDS: dict[str, tuple[float, float]] = {
    "repeats": (1, 1000), "max_passes": (1, 1000), "threads": (0, 1024), "seed": (0, 2**32 - 1),
    "min_size": (1, 100_000), "max_size": (1, 100_000), "control_max_size": (1, 100_000),
    "steps": (0, 1_000_000), "min_time": (0.0, 3600.0), "precision": (0.001, 1.0),
}  # fmt: skip
WHOLE = frozenset(BOUNDS) - {"min_time", "precision"}  # the settings that are whole numbers


def bound_words(key: str) -> str:
    """The values ``key`` accepts, in words (``a whole number from 1 to 1000``)."""
    low, high = BOUNDS[key]
    kind = "a whole number" if key in WHOLE else "a number"
    return f"{kind} from {low:g} to {high:g}" if key not in WHOLE else (
        f"{kind} from {int(low)} to {int(high)}")  # fmt: skip


@dataclass(frozen=True)
class SweepConfig:
    min_size: int
    max_size: int
    options: dict[str, Any]  # the experiment's model options (width, batch, ...)
    control: bool = True
    control_max_size: int = 256
    repeats: int = 6  # timing passes at least: a pass times every point once
    min_time: float = 0.01  # seconds of timing per point, phase and pass
    threads: int = 0  # 0: one on a CPU (see docs/method.md, "Threads"), torch's default on CUDA
    device: str = "auto"
    dtype: str = "float32"
    seed: int = 0
    grid_ratio: float = math.sqrt(2.0)
    # Limits (see run_sweep). time_budget: seconds for the whole run, None: no limit.
    # max_memory: bytes a point may be predicted to need; None: half the device's memory
    # (the run records the value it used).
    time_budget: float | None = None
    max_memory: int | None = None
    # The sizes to measure, where given (``trainbench sweep --sizes``): then min_size and
    # max_size are their ends and grid_ratio is not used. None: the geometric grid.
    size_list: tuple[int, ...] | None = None
    # Time the model under torch.compile (counts stay eager: see measure.compiled).
    compile: bool = False
    # Passes go on (from ``repeats`` up to ``max_passes``) until the interval of every
    # watched time exponent has a half-width of at most ``precision``.
    precision: float = 0.05
    max_passes: int = 40
    # "confirmed": a variant's passes also end once every time claim on it reads confirmed
    # (judged as at the end of the run); "narrow": only its intervals' width ends them.
    until: str = "narrow"
    # Seconds one count or one timed visit of a point may take before the point fails
    # (trainbench.measure.watchdog); None: no limit.
    point_timeout: float | None = 300.0
    # Count FLOPs and saved bytes per module, to this depth of the model's module tree
    # (trainbench.measure.modules); None: not.
    by_module: int | None = None


UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
         "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
         "tib": 2**40}  # fmt: skip


def bytes_of(text: str, flag: str = "--max-memory") -> int:
    """``8GiB``, ``500MB``, ``1.5g``, ``1000000``: a positive number of bytes; SweepError
    naming ``flag`` otherwise."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in UNITS:
        raise SweepError(f"{flag}: expected a size such as 8GiB, 500MB or 1000000, got {text!r}")
    value = float(m.group(1)) * UNITS[unit]
    if not 1 <= value < 2**63:
        raise SweepError(f"{flag}: must be at least 1 byte, got {text!r}")
    return int(value)

