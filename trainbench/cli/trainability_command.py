"""``trainbench trainability``: the gradient signal at initialisation and training against
depth (Problems 1a, 1c, 2)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from trainbench.cli.errors import exits, fail
from trainbench.cli.output import check_writable, owned, progress_bar
from trainbench.cli.params import SHARED_DEFAULT, Json, Quiet, Seed, Threads, shared
from trainbench.core.settings import BOUNDS

MAX_STEPS = int(BOUNDS["steps"][1])  # training steps per run
Resume = shared("resume")


def _earlier_trainability(folder: Path, resume: bool) -> tuple[dict | None, Path | None]:
    """With --resume, the earlier run's summary to continue; without, the earlier run kept
    under a new name (and that name)."""
    from trainbench.results.files import keep_earlier_run
    from trainbench.results.reading import read_summary
    from trainbench.results.schema import ResultsError

    try:
        if resume:
            return read_summary(folder, sweep=False), None
        return None, keep_earlier_run(folder)
    except ResultsError as err:
        raise fail(f"--resume: {err}") from None
    except OSError as err:
        raise fail(f"--out: cannot keep the earlier run in {folder}: {err.strerror}") from None


QUICK_DEPTHS = "2,8,16"
QUICK_TRAIN_DEPTHS = "2,8"
DEFAULT_DEPTHS = "2,4,8,16,32,64"
DEFAULT_TRAIN_DEPTHS = "2,16"


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names, each once, in order."""
    return tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))


def _rates(text: str, flag: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise fail(f"{flag}: every rate must be a positive number, got {text!r}") from None
    if not rates or not all(math.isfinite(r) and r > 0 for r in rates):
        raise fail(f"{flag}: every rate must be a positive number, got {text!r}")
    return tuple(dict.fromkeys(rates))


def _cores() -> int:
    """Worker processes by default: one per core this process may run on, at most 4."""
    from trainbench.verify.jobs import cores

    return max(1, min(cores(), 4))


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise fail(f"{flag}: expected comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise fail(f"{flag}: name at least one value")
    if min(values) < 1:
        raise fail(f"{flag}: every depth must be at least 1, got {min(values)}")
    if max(values) > 4096:
        raise fail(f"{flag}: depths above 4096 are refused, got {max(values)}")
    return tuple(sorted(set(values)))


def trainability(
    quick: Annotated[
        bool,
        typer.Option("--quick", help=f"Depths {QUICK_DEPTHS} (trained at {QUICK_TRAIN_DEPTHS}), "
                     "2000 steps, one seed, sigmoid only (under a minute)."),
    ] = False,
    depths: Annotated[
        str | None, typer.Option(help=f"Comma-separated depths (default {DEFAULT_DEPTHS}).")
    ] = None,
    train_depths: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated: the depths trained, of --depths (default: "
                     f"{DEFAULT_TRAIN_DEPTHS} of the default depths, else every depth given; "
                     "the others have their gradient signal measured)."),
    ] = None,
    variants: Annotated[
        str,
        typer.Option(help="Comma-separated: plain, heads, residual (MLPs), cnn, rescnn, ugcnn "
                     "(CNNs)."),
    ] = "plain,heads,residual,cnn,rescnn,ugcnn",
    activations: Annotated[
        str | None,
        typer.Option(help="Comma-separated, the MLPs' activation and initialisation: sigmoid "
                     "(unit gain), sigmoid-glorot (gain 4), tanh, relu (He); the CNNs use tanh "
                     "(default: all four; --quick: sigmoid)."),
    ] = None,
    trained: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: the variants trained (default: every one of "
            "--variants; the others have their gradient signal measured only)."
        ),
    ] = None,
    optimizers: Annotated[
        str, typer.Option(help="Comma-separated: the optimizers each variant is trained with "
                          "(sgd, adam).")
    ] = "sgd",
    steps: Annotated[
        int | None, typer.Option(help="Training steps per run (default 3000; --quick 2000; "
                                 "0: no training).")
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Seeds per configuration (default 3; --quick 1).")
    ] = None,
    finetune_steps: Annotated[
        int | None,
        typer.Option(help="Steps on the top head's loss alone after training, at the deepest "
                     "trained depth (default 500; --quick 0)."),
    ] = None,
    lr_sgd: Annotated[
        str, typer.Option(help="Comma-separated SGD learning rates, the grid a rate is chosen "
                          "from per variant.")
    ] = "0.01,0.03,0.1,0.3",
    lr_adam: Annotated[
        str, typer.Option(help="Comma-separated Adam learning rates (the grid).")
    ] = "0.0003,0.001,0.003",
    jobs: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per core, at most 4).")
    ] = None,
    threads: Threads = SHARED_DEFAULT["threads"],
    seed: Seed = SHARED_DEFAULT["seed"],
    out: Annotated[
        Path, typer.Option(help="Results folder; the run goes to OUT/trainability/.")
    ] = Path("results"),
    resume: Resume = SHARED_DEFAULT["resume"],
    json_out: Json = SHARED_DEFAULT["json"],
    quiet: Quiet = SHARED_DEFAULT["quiet"],
) -> None:
    """Problems 1a, 1c, 2: gradient signal at initialisation and training, against depth."""
    from trainbench.trainability.config import TrainabilityConfig, TrainabilityError
    from trainbench.trainability.run import run_trainability

    # the default depths train at their default subset; depths given are trained, all of them
    trained_at: tuple[int, ...] | None = None
    if train_depths is not None:
        trained_at = _int_list(train_depths, "--train-depths")
    elif depths is None:
        default = QUICK_TRAIN_DEPTHS if quick else DEFAULT_TRAIN_DEPTHS
        trained_at = _int_list(default, "--train-depths")
    if depths is None:
        depths = QUICK_DEPTHS if quick else DEFAULT_DEPTHS
    depth_list = _int_list(depths, "--depths")
    if steps is not None and not 0 <= steps <= MAX_STEPS:
        raise fail(f"--steps must be from 0 to {MAX_STEPS}, got {steps}")
    if finetune_steps is not None and not 0 <= finetune_steps <= MAX_STEPS:
        raise fail(f"--finetune-steps must be from 0 to {MAX_STEPS}, got {finetune_steps}")
    if seeds is not None and not 1 <= seeds <= 100:
        raise fail(f"--seeds must be from 1 to 100, got {seeds}")
    if jobs is not None and not 1 <= jobs <= 64:
        raise fail(f"--jobs must be from 1 to 64, got {jobs}")
    default_acts = "sigmoid" if quick else "sigmoid,sigmoid-glorot,tanh,relu"
    cfg = TrainabilityConfig(
        depths=depth_list,
        train_depths=trained_at,
        variants=_names(variants),
        activations=_names(activations if activations is not None else default_acts),
        steps=steps if steps is not None else (2000 if quick else 3000),
        seeds=seeds if seeds is not None else (1 if quick else 3),
        finetune_steps=finetune_steps if finetune_steps is not None else (0 if quick else 500),
        lr_sgd=_rates(lr_sgd, "--lr-sgd"),
        lr_adam=_rates(lr_adam, "--lr-adam"),
        seed=seed,
        threads=threads,
        jobs=jobs if jobs is not None else _cores(),
        trained=_names(trained) if trained is not None else None,
        optimizers=_names(optimizers),
    )
    try:
        cfg.validate()
    except TrainabilityError as err:
        raise fail(str(err)) from None
    folder = out / "trainability"
    from trainbench.trainability.files import FILES

    check_writable(folder, FILES)
    with owned(folder):
        earlier, kept = _earlier_trainability(folder, resume)
        progress = progress_bar(hidden=quiet or json_out)
        task = progress.add_task("trainability", total=None)

        def on_progress(what: str, done: int, total: int) -> None:
            progress.update(task, total=total, completed=done, description=f"trainability  {what}")

        from trainbench.trainability.files import write_files

        def save(result: Any) -> None:  # the tables after every record, the plots at the end
            write_files(folder, result.summary(), plots=result.complete)

        with exits(f"what was measured so far is in {folder}", "trainability failed: {why}"):
            with progress:
                result = run_trainability(cfg, on_progress=on_progress, save=save, earlier=earlier)
            summary = result.summary()
    if kept is not None:
        typer.echo(f"trainbench: the earlier run in {folder} was kept as {kept}", err=True)
    if json_out:
        from trainbench.results.files import to_json

        sys.stdout.write(to_json(summary))
        return
    from trainbench.cli.render import trainability_tables, verdict_lines

    console = Console(width=None if sys.stdout.isatty() else 160)
    if not quiet:
        for table in trainability_tables(summary):
            console.print(table)
    for line in verdict_lines(summary, {}, "L"):
        console.print(line, soft_wrap=True)
    if not quiet:
        console.print(f"results: {folder}{os.sep}")
