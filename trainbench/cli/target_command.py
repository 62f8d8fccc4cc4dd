"""``trainbench sweep TARGET``: any model (or a built-in experiment over sizes of your
choice), its flags declared once below and the shared measurement options beside them."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from trainbench.cli.errors import fail
from trainbench.cli.params import command
from trainbench.cli.sweep_commands import (
    MAX_SIZE,
    check_min_time,
    check_time_budget,
    max_memory_bytes,
    measure_and_render,
)
from trainbench.core.options import (
    ARGUMENT,
    CONFIG,
    CONTROL,
    REQUIRED,
    RUN,
    SWEEP_OPTION,
    SWEEP_OPTIONS,
    OptionSpec,
)
from trainbench.core.settings import SweepError, first_line
from trainbench.core.streams import stdout_to_stderr

_OWN = (
    OptionSpec("target", list, REQUIRED, "package.module:function or path/to/file.py:function "
               "(the function takes the size n and returns a zero-argument function that runs "
               "the forward pass and returns a scalar loss), or a built-in experiment "
               "(mlp-heads, rnn-lm, ugcnn). Several TARGETs are measured together, interleaved "
               "in the same passes, each judged on its own and compared with the first.",
               ARGUMENT, show_default=False),
    OptionSpec("sizes", str, REQUIRED, "16,32,64 (a list), 16:1024 (doubling) or 16:1024:1.5 (a "
               "step factor).", RUN, show_default=False),
    OptionSpec("claim", str, None, "The order to judge: O(1), O(log n), O(n), O(n log n), "
               "O(n^2), O(n^3), O(n^k) with a number k.", RUN, show_default=False),
    OptionSpec("metric", str, "bwd_s", "What --claim is about: bwd_s, fwd_s, bwd_flops, "
               "fwd_flops, graph_nodes, graph_depth, saved_bytes, peak_bytes (CUDA; on a CPU "
               "judged on the working set), working_set_bytes, bwd_bytes, span_flops (the "
               "backward's critical path weighted by FLOPs), span_bytes.", RUN),
    OptionSpec("tolerance", float, 0.15, "How far the fitted exponent may lie from the claim's.",
               RUN),
    OptionSpec("name", str, None, "The run's name: OUT/NAME/ (default: the function's name).",
               RUN, show_default=False),
    OptionSpec("option", list, None, "A built-in experiment's model option, NAME=VALUE "
               "(repeatable).", RUN, show_default=False),
    OptionSpec("reference", str, "1024x1024x1024", "The torch.mm (ROWSxINNERxCOLS) whose FLOP/s "
               "the efficiency is relative to.", RUN),
    CONTROL,
    OptionSpec("control_max_size", int, 256, "Largest size for a built-in experiment's control.",
               CONFIG, low=1),
    OptionSpec("strict", bool, False, "Exit 1 unless --claim is confirmed.", RUN, ("--strict",)),
)  # fmt: skip
_TIMEOUT = (
    OptionSpec("point_timeout", float, 300.0, "Seconds one count or one timed visit of a point "
               "may take; a point that takes longer fails and the sweep goes on without it "
               "(0: no limit).", CONFIG),
    OptionSpec("by_module", int, None, "Also count FLOPs and saved bytes per module of the "
               "model, to DEPTH levels of its module tree (1: the model itself), each with its "
               "order and share.", CONFIG, ("--by-module",), show_default=False, metavar="DEPTH"),
)  # fmt: skip
_SHOWN = ("json", "quiet")  # after the timeout and --by-module, as --help has always listed
OPTIONS = (
    *_OWN,
    *(replace(o, help="Results folder; the run goes to OUT/NAME/.") if o.name == "out" else o
      for o in SWEEP_OPTIONS if o.name not in _SHOWN),
    *_TIMEOUT,
    *(SWEEP_OPTION[n] for n in _SHOWN),
)  # fmt: skip


def model_options(pairs: list[str] | None) -> dict[str, Any]:
    """``--option width=512`` (repeatable): a built-in experiment's model options."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"--option: expected NAME=VALUE, got {pair!r}")
        text = value.strip()
        try:
            options[key.strip().replace("-", "_")] = int(text)
        except ValueError:
            options[key.strip().replace("-", "_")] = text
    return options


def run_target(v: dict[str, Any]) -> None:
    """Any model: how its forward and backward cost grows with a size n you choose."""
    check_time_budget(v["time_budget"])
    memory = max_memory_bytes(v["max_memory"])
    check_min_time(v["min_time"])
    if v["strict"] and v["claim"] is None:
        raise fail("--strict needs --claim")
    from trainbench.api import claims_for, make_config, preflight, prepare, resolve
    from trainbench.experiments.builtin import EXPERIMENTS

    options = model_options(v["option"])
    target = v["target"]
    # with --json, what the target prints (on import, in its first forward) goes to stderr
    muted = stdout_to_stderr if v["json"] else contextlib.nullcontext
    try:
        with muted():
            exp = resolve(target if len(target) > 1 else target[0], name=v["name"],
                          reference=v["reference"])  # fmt: skip
        if exp.name in EXPERIMENTS and v["name"] is not None:
            raise SweepError("--name: a built-in experiment's run is named by the experiment")
        if exp.name not in EXPERIMENTS and v["option"]:
            raise SweepError("--option: only for the built-in experiments (mlp-heads, ...)")
        settings = {o.name: v[o.name] for o in OPTIONS if o.where == CONFIG}
        timeout = v["point_timeout"]
        cfg = make_config(v["sizes"], options=options, **settings | {
            "max_memory": memory, "point_timeout": timeout if timeout != 0 else None})
        if v["by_module"] is not None and v["by_module"] < 1:
            raise SweepError(f"--by-module: the depth is at least 1 (the model itself), "
                             f"got {v['by_module']}")  # fmt: skip
        if cfg.max_size > MAX_SIZE and exp.name in EXPERIMENTS:
            raise SweepError(f"--sizes: {cfg.max_size} is too large (at most {MAX_SIZE})")
        claims = claims_for(exp, v["claim"], metric=v["metric"], tolerance=v["tolerance"])
        if exp.name not in EXPERIMENTS:
            cfg = prepare(exp, cfg)  # (checked once, here: measure_and_render takes it as it is)
            with muted():
                preflight(exp, cfg)
    except SweepError as err:
        raise fail(str(err)) from None
    except (RuntimeError, MemoryError) as err:  # out of memory in the first forward pass
        if isinstance(err, typer.Exit):
            raise
        raise fail(f"{target}: {first_line(err)}") from None
    verdict = measure_and_render(exp, cfg, out=Path(v["out"]), json_out=v["json"],
                                 quiet=v["quiet"], resume=v["resume"], claims=claims)  # fmt: skip
    if v["strict"] and verdict != "confirmed":
        raise typer.Exit(1)


sweep_command = command(OPTIONS, run_target, run_target.__doc__ or "")
