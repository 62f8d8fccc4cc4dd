"""The sweep commands: one per built-in experiment (``mlp-heads``, ``rnn-lm``, ``ugcnn``),
built from the experiment's declared options, and ``sweep TARGET`` for any model. Each
parses its flags, calls the API once and renders what comes back."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from trainbench.cli.errors import exits, fail
from trainbench.cli.output import check_writable, progress_bar
from trainbench.cli.params import command
from trainbench.core.options import CONFIG, CONTROL, MODEL, SWEEP_OPTIONS, OptionSpec
from trainbench.core.settings import BOUNDS, SweepConfig, SweepError, bytes_of, first_line
from trainbench.core.streams import stdout_to_stderr
from trainbench.experiments.specs import Declared

MAX_SIZE = int(BOUNDS["max_size"][1])  # larger sweeps are refused up front
MAX_MIN_TIME = BOUNDS["min_time"][1]


def command_options(declared: Declared) -> list[OptionSpec]:
    """A built-in experiment's flags in the order ``--help`` lists them: its sizes, its
    model's options, the control, then the measurement options every sweep shares."""
    own = [o for o in declared.options if o.flag_names]
    sizes = [o for o in own if o.name in ("max_size", "min_size")]
    control = [o for o in own if o.name == "control_max_size"]
    model = [o for o in own if o.where == MODEL]
    return [*sizes, *model, CONTROL, *control, *SWEEP_OPTIONS]


def builtin_command(name: str, declared: Declared) -> Callable[..., None]:
    """The typer command of a built-in experiment (its experiment loads when it runs)."""
    return command(command_options(declared), lambda values: run_builtin(name, values),
                   declared.summary)  # fmt: skip


def max_memory_bytes(text: str | None) -> int | None:
    """``--max-memory 8GiB``: its bytes (None: not given)."""
    try:
        return bytes_of(text) if text is not None else None
    except SweepError as err:
        raise fail(str(err)) from None


def check_time_budget(time_budget: float | None) -> None:
    if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
        raise fail(f"--time-budget must be a positive number of seconds, got {time_budget}")


def check_min_time(min_time: float) -> None:
    if not math.isfinite(min_time) or min_time > MAX_MIN_TIME:
        raise fail(f"--min-time must be a finite number of seconds up to {MAX_MIN_TIME:g}")


def run_builtin(name: str, values: dict[str, Any]) -> None:
    """``trainbench mlp-heads ...``: the values of its flags to one sweep, rendered."""
    from trainbench.experiments.builtin import EXPERIMENTS

    exp = EXPERIMENTS[name]
    min_flag, max_flag = exp.option("min_size").flag, exp.option("max_size").flag
    check_time_budget(values["time_budget"])
    memory = max_memory_bytes(values["max_memory"])
    if values["min_size"] > values["max_size"]:
        raise fail(f"{min_flag} ({values['min_size']}) is above {max_flag} ({values['max_size']})")
    if values["max_size"] > MAX_SIZE:
        raise fail(f"{max_flag} {values['max_size']} is too large (at most {MAX_SIZE})")
    check_min_time(values["min_time"])
    model = {o.name: values.get(o.name, o.default) for o in exp.options if o.where == MODEL}
    config = {o.name: values[o.name] for o in (*exp.options, CONTROL, *SWEEP_OPTIONS)
              if o.where == CONFIG and o.name in values}  # fmt: skip
    cfg = SweepConfig(options=model, **(config | {"max_memory": memory}))
    measure_and_render(exp, cfg, out=values["out"], json_out=values["json"],
                       quiet=values["quiet"], resume=values["resume"])  # fmt: skip


def _failed(folder: Path) -> Callable[[BaseException], str]:
    def why(err: BaseException) -> str:
        full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        if full:
            return (f"cannot write the run's files in {folder} ({err.strerror}): what is there "
                    "is what was saved before (`--resume` goes on from it once there is room)")
        return f"measurement failed: {first_line(err)}; points measured so far are in {folder}"

    return why


def measure_and_render(
    exp: Any, cfg: Any, *, out: Path, json_out: bool, quiet: bool, resume: bool,
    claims: Any = None,
) -> str | None:  # fmt: skip
    """Run a sweep of ``exp`` (an Experiment) with ``cfg`` into ``out`` and print it;
    return the verdict of the user's claim (``--claim``), where there is one."""
    from trainbench.api import Prepared, measure, prepare
    from trainbench.results.files import to_json

    try:  # (the one check of the configuration; a TARGET's was checked before its preflight)
        ready = cfg if isinstance(cfg, Prepared) else prepare(exp, cfg)
    except SweepError as err:
        raise fail(str(err)) from None
    folder = out / exp.folder(ready.cfg.options)
    check_writable(folder)
    progress = progress_bar(hidden=quiet or json_out, unit="points")
    name = folder.name
    task = progress.add_task(name, total=None)

    def on_progress(p: Any) -> None:
        progress.update(task, total=p.total, completed=p.done,
                        description=f"{name}  {p.variant:<9} {exp.size_name} = {p.size:<5}")

    # with --json, stdout carries the JSON alone: what a target prints goes to stderr
    quiet_stdout = stdout_to_stderr() if json_out else contextlib.nullcontext()
    with exits(f"the points measured so far are in {folder}", _failed(folder)):
        with progress, quiet_stdout:
            result = measure(exp, ready, out=out, on_progress=on_progress, resume=resume,
                         claims=claims)  # fmt: skip
    if result.kept_earlier is not None:
        typer.echo(f"trainbench: the earlier run in {folder} was kept as {result.kept_earlier}",
                   err=True)  # fmt: skip
    summary = result.summary()
    mine = [c["verdict"] for c in summary["claims"]
            if c.get("id") == "claim" or str(c.get("id")).startswith("claim:")]  # fmt: skip
    own = next((v for v in mine if v != "confirmed"), mine[0] if mine else None)
    if json_out:
        sys.stdout.write(to_json(summary))
    else:
        render_sweep(exp, summary, quiet, folder)
    no_false_green(summary, claims, folder)
    return own


def render_sweep(exp: Any, summary: dict[str, Any], quiet: bool, folder: Path) -> None:
    """The points and fits tables, the notes and the verdict lines of a sweep."""
    from trainbench.cli.render import (
        fits_table,
        modules_lines,
        modules_table,
        points_table,
        verdict_lines,
    )

    console = Console(width=None if sys.stdout.isatty() else 160)
    if not quiet:
        console.print(points_table(summary, exp.size_name, width=console.width))
        for note in summary["notes"]:
            console.print(f"note: {note}", soft_wrap=True)
        console.print()
        console.print(fits_table(summary))
        if summary.get("modules"):
            console.print(modules_table(summary, exp.size_name))
            for line in modules_lines(summary, exp.size_name):
                console.print(line, soft_wrap=True)
    descriptions = {v.name: v.description for v in exp.variants}
    for line in verdict_lines(summary, descriptions, exp.size_name):
        console.print(line, soft_wrap=True)
    if not quiet:
        console.print(f"results: {folder}{os.sep}")


def no_false_green(summary: dict[str, Any], claims: Any, folder: Path) -> None:
    """Exit 1, with a line saying why, where the run measured no point or a claim the user
    asked for (``claims``) was not judged: a run that found nothing out is no success."""
    if not any(p.get("rounds", 1) for p in summary.get("points") or []):  # none timed
        failed = summary.get("failed_points") or []
        why = (f"{failed[0]['variant']} at size {failed[0]['size']} failed: {failed[0]['reason']}"
               if failed else next((n for n in summary.get("notes") or []
                                    if "time-budget" in n or "stopped growing" in n),
                                   "no point was counted or timed"))  # fmt: skip
        raise fail(f"nothing was measured ({why}); see {folder}", 1)
    from trainbench.harness.analysis import NOT_FITTED

    reasons = {c.get("id"): str(c.get("reason") or "") for c in summary.get("claims") or []}
    for claim in claims or []:
        reason = reasons.get(claim.id)
        if reason is None or reason.startswith(NOT_FITTED):
            why = reason[len(NOT_FITTED):].strip() if reason else ""
            raise fail(f"claim {claim.id!r} on {claim.metric} could not be judged on what "
                       f"was measured{' ' + why if why else ''}; see the notes in {folder}",
                       1)  # fmt: skip
