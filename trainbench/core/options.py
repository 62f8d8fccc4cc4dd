"""Options, each declared once (:class:`OptionSpec`): its type, default, choices, range,
help and flag. The command line builds its flags and ``--help`` from these, the harness
checks values against them, and a report turns a run's settings back into flags with them.

A built-in experiment declares its own options (its sizes and its model's options, in
:mod:`trainbench.experiments.builtin`); the measurement options every sweep command shares
are :data:`SWEEP_OPTIONS` below, with their defaults read from :class:`SweepConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainbench.core.settings import BOUNDS, SweepConfig

# Where an option's value goes: a model option (SweepConfig.options), a field of
# SweepConfig, or how the run is written and shown (not part of its configuration).
# ARGUMENT: a command's positional argument.
MODEL, CONFIG, RUN, ARGUMENT = "model", "config", "run", "argument"
REQUIRED = ...  # the default of an option the user must give
MAX_DIM = 1_000_000  # widths, batches, input dimensions


@dataclass(frozen=True)
class OptionSpec:
    name: str  # the model option's key, the SweepConfig field, or the run setting
    kind: type  # int, float, str, bool or Path
    default: Any
    help: str = ""
    where: str = MODEL
    # the flags on the command line (default: --name, with - for _); () for none: the
    # option keeps its default there (ugcnn's kernel)
    flags: tuple[str, ...] | None = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    # a rule beyond the range: (test, what the value must be: "odd")
    rule: tuple[Callable[[Any], bool], str] | None = None
    show_default: bool = True
    metavar: str | None = None

    @property
    def flag_names(self) -> tuple[str, ...]:
        if self.flags is not None:
            return self.flags
        return ("--" + self.name.replace("_", "-"),)

    @property
    def flag(self) -> str | None:
        """The option's long flag (``--max-depth``; for a switch, its "on" form)."""
        names = self.flag_names
        return names[0].split("/")[0] if names else None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this option, in words (None: nothing)."""
        if self.kind is int:
            low = int(self.low) if self.low is not None else None
            high = int(self.high) if self.high is not None else None
            if type(value) is not int or (low is not None and value < low) or (
                    high is not None and value > high):  # fmt: skip
                return f"must be a whole number from {low} to {high}, got {value!r}"
        elif self.kind is str and not isinstance(value, str):
            return f"must be a name, got {value!r}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.rule is not None and not self.rule[0](value):
            return f"must be {self.rule[1]}, got {value!r}"
        return None


_CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SweepConfig)}


def _default(name: str) -> Any:
    return _CONFIG_DEFAULTS[name]


def _bounded(name: str, kind: type, help: str, **kw: Any) -> OptionSpec:
    low, high = BOUNDS[name]
    return OptionSpec(name, kind, _default(name), help, CONFIG, low=low, high=high, **kw)


def size_options(
    unit: str, words: str, letter: str, max_default: int, control_max_default: int,
    control_help: str,
) -> tuple[OptionSpec, OptionSpec, OptionSpec]:  # fmt: skip
    """A built-in experiment's sizes: --max-UNIT, --min-UNIT and --control-max-UNIT."""
    return (
        OptionSpec("max_size", int, max_default, f"Largest {words} {letter}.", CONFIG,
                   (f"--max-{unit}",), low=1),
        OptionSpec("min_size", int, 1, f"Smallest {words} {letter}.", CONFIG,
                   (f"--min-{unit}",), low=1),
        OptionSpec("control_max_size", int, control_max_default, control_help, CONFIG,
                   (f"--control-max-{unit}",), low=1),
    )  # fmt: skip


def dimension(name: str, default: int, help: str, low: int = 1, high: int = MAX_DIM) -> OptionSpec:
    """A whole-number model option (a width, a batch, ...)."""
    return OptionSpec(name, int, default, help, low=low, high=high)


def choice(name: str, default: str, choices: Sequence[str], help: str) -> OptionSpec:
    """A model option that names one of ``choices``."""
    return OptionSpec(name, str, default, help, choices=tuple(choices))


CONTROL = OptionSpec("control", bool, True, "Also measure the O(n²) control.", CONFIG,
                     ("--control/--no-control",))  # fmt: skip

# The measurement options of every sweep command, in the order --help lists them.
SWEEP_OPTIONS: tuple[OptionSpec, ...] = (
    _bounded("repeats", int, "Timing passes at least: each pass times every point once, in a "
             "shuffled order."),
    OptionSpec("min_time", float, _default("min_time"),
               "Seconds of timing per point, phase and pass.", CONFIG, low=0.0),
    _bounded("threads", int, "Threads for torch (0: one on a CPU, torch's default on CUDA)."),
    _bounded("precision", float, "Passes go on until every claimed time exponent's 95% "
             "interval is this narrow (half-width), or --max-passes or --time-budget ends them."),
    _bounded("max_passes", int, "Timing passes at most."),
    OptionSpec("until", str, _default("until"),
               "narrow: a variant's passes end when its claimed time intervals are within "
               "±--precision; confirmed: also when every time claim on it reads confirmed "
               "(fewer passes; the interval may be wider).", CONFIG, ("--until",),
               choices=("narrow", "confirmed")),
    OptionSpec("device", str, _default("device"), "Where to run.", CONFIG,
               choices=("auto", "cpu", "cuda")),
    OptionSpec("dtype", str, _default("dtype"), "Floating point type of the model.", CONFIG,
               choices=("float32", "float64")),
    _bounded("seed", int, "Seed for weights, data and visiting order."),
    OptionSpec("out", Path, Path("results"), "Results folder; the run goes to "
               "OUT/<experiment>/ (rnn-lm: OUT/rnn-lm-<cell>/).", RUN),
    OptionSpec("resume", bool, False, "Continue the partial run in the output folder (same "
               "configuration); without it an earlier run there is kept, renamed with its time.",
               RUN, ("--resume",)),
    OptionSpec("time_budget", float, None, "Seconds for the whole run: stop growing when the "
               "next size is predicted to overrun it.", CONFIG, show_default=False),
    OptionSpec("max_memory", str, None, "Skip sizes predicted to need more (e.g. 8GiB, 500MB; "
               "default: half the RAM, or of the GPU's memory).", CONFIG, show_default=False),
    OptionSpec("compile", bool, False, "Time the model under torch.compile (counts stay eager); "
               "records the compile time and the speed-up over eager.", CONFIG, ("--compile",)),
    OptionSpec("json", bool, False, "Print the summary as JSON on stdout and nothing else.", RUN,
               ("--json",)),
    OptionSpec("quiet", bool, False, "No progress bar and no tables.", RUN, ("--quiet", "-q")),
)  # fmt: skip
SWEEP_OPTION = {o.name: o for o in SWEEP_OPTIONS}
