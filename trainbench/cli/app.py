"""The command line: parse, call one core function, render. No torch logic here."""

from __future__ import annotations

import contextlib
import enum
import errno
import math
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trainbench.core.settings import BOUNDS, SweepError, first_line
from trainbench.core.version import __version__

try:  # recent typer vendors click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as click_errors  # type: ignore[no-redef]

USAGE_EXIT = 2
MAX_SIZE = int(BOUNDS["max_size"][1])  # larger sweeps are refused up front
MAX_DIM = 1_000_000  # widths, batches, input dimensions
MAX_MIN_TIME = BOUNDS["min_time"][1]
MAX_STEPS = int(BOUNDS["steps"][1])  # training steps per run


class OneLineErrors(typer.core.TyperGroup):
    """Report every usage error as one line on stderr (exit 2), never a traceback."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except SystemExit as end:
            # typer and rich end a write to a closed pipe (``| head``) with exit 1: a
            # reader that has seen enough is no failure.
            from trainbench.core.streams import pipe_closed

            if end.code == 1 and pipe_closed():
                sys.exit(0)
            raise
        except click_errors.UsageError as err:
            if type(err).__name__ == "NoArgsIsHelpError" and err.ctx is not None:
                typer.echo(err.ctx.get_help())
                sys.exit(0)
            typer.echo(f"trainbench: error: {err.format_message()}", err=True)
            sys.exit(USAGE_EXIT)
        except click_errors.ClickException as err:
            typer.echo(f"trainbench: error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except (typer.Abort, KeyboardInterrupt) as err:
            typer.echo("trainbench: interrupted", err=True)
            sys.exit(interrupt_code(err))
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=OneLineErrors,
    help="Tests textbook answers about the cost of backpropagation against measurement.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = USAGE_EXIT) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    typer.echo(f"trainbench: error: {message}", err=True)
    return typer.Exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds like Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    from trainbench.measure.watchdog import note_signal

    note_signal()  # (a signal, not a target's own KeyboardInterrupt)
    raise Terminated()


def interrupt_code(err: BaseException) -> int:
    """130 for Ctrl-C (SIGINT), 143 for SIGTERM: 128 + the signal's number."""
    return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)


def interrupted(err: BaseException, kept: str) -> typer.Exit:
    """One line saying what stopped the run and where its results are; the Exit to raise."""
    what = "terminated" if isinstance(err, Terminated) else "interrupted"
    return fail(f"{what}; {kept}", interrupt_code(err))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trainbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Tests textbook answers about the cost of backpropagation against measurement."""


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Activation(str, enum.Enum):
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"


class Impl(str, enum.Enum):
    einsum = "einsum"
    fused = "fused"


class Cell(str, enum.Enum):
    ugrnn = "ugrnn"
    ugrnn2 = "ugrnn2"
    gru = "gru"
    gru_torch = "gru-torch"
    gru_torch_fast = "gru-torch-fast"
    torch_gru = "torch-gru"
    none = "none"
    ugrnn_x = "ugrnn-x"
    ugrnn_x_scan = "ugrnn-x-scan"


class ConvImpl(str, enum.Enum):
    einsum = "einsum"
    conv = "conv"


class DType(str, enum.Enum):
    float32 = "float32"
    float64 = "float64"


# Options shared by every sweep command.
Repeats = Annotated[
    int,
    typer.Option(
        min=BOUNDS["repeats"][0], max=BOUNDS["repeats"][1],
        help="Timing passes at least: each pass times every point once, in a shuffled order.",
    ),
]  # fmt: skip
MinTime = Annotated[
    float, typer.Option(min=0.0, help="Seconds of timing per point, phase and pass.")
]
Threads = Annotated[
    int,
    typer.Option(
        min=BOUNDS["threads"][0], max=BOUNDS["threads"][1],
        help="Threads for torch (0: one on a CPU, torch's default on CUDA).",
    ),
]
Precision = Annotated[
    float,
    typer.Option(
        min=BOUNDS["precision"][0], max=BOUNDS["precision"][1],
        help="Passes go on until every claimed time exponent's 95% interval is this narrow "
        "(half-width), or --max-passes or --time-budget ends them.",
    ),
]  # fmt: skip
MaxPasses = Annotated[
    int,
    typer.Option(min=BOUNDS["max_passes"][0], max=BOUNDS["max_passes"][1],
                 help="Timing passes at most."),
]  # fmt: skip


class UntilChoice(str, enum.Enum):
    narrow = "narrow"
    confirmed = "confirmed"


UntilOpt = Annotated[
    UntilChoice,
    typer.Option(
        "--until",
        help="narrow: a variant's passes end when its claimed time intervals are within "
        "±--precision; confirmed: also when every time claim on it reads confirmed (fewer "
        "passes; the interval may be wider).",
    ),
]  # fmt: skip
DeviceOpt = Annotated[Device, typer.Option(help="Where to run.")]
DTypeOpt = Annotated[DType, typer.Option(help="Floating point type of the model.")]
Seed = Annotated[
    int,
    typer.Option(min=BOUNDS["seed"][0], max=BOUNDS["seed"][1],
                 help="Seed for weights, data and visiting order."),
]
Out = Annotated[
    Path,
    typer.Option(
        help="Results folder; the run goes to OUT/<experiment>/ (rnn-lm: OUT/rnn-lm-<cell>/)."
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print the summary as JSON on stdout and nothing else.")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no tables.")]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the partial run in the output folder (same configuration); "
        "without it an earlier run there is kept, renamed with its time.",
    ),
]
TimeBudget = Annotated[
    float | None,
    typer.Option(
        help="Seconds for the whole run: stop growing when the next size is predicted to "
        "overrun it.",
        show_default=False,
    ),
]
MaxMemory = Annotated[
    str | None,
    typer.Option(
        help="Skip sizes predicted to need more (e.g. 8GiB, 500MB; default: half the RAM, or "
        "of the GPU's memory).",
        show_default=False,
    ),
]
Control = Annotated[
    bool, typer.Option("--control/--no-control", help="Also measure the O(n²) control.")
]


CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile",
        help="Time the model under torch.compile (counts stay eager); records the compile "
        "time and the speed-up over eager.",
    ),
]


RUN_FILES = ("measurements.csv", "samples.csv", "summary.json")


def parse_bytes(text: str, flag: str = "--max-memory") -> int:
    """``8GiB``, ``500MB``, ``1.5g``, ``1000000``: a positive number of bytes."""
    from trainbench.core.settings import SweepError, bytes_of

    try:
        return bytes_of(text, flag)
    except SweepError as err:
        raise fail(str(err)) from None


def _check_limits(time_budget: float | None) -> None:
    if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
        raise fail(f"--time-budget must be a positive number of seconds, got {time_budget}")


def _check_writable(folder: Path, names: tuple[str, ...] = RUN_FILES) -> None:
    """Refuse up front a folder that cannot be written or whose file names are taken."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".trainbench-write-test-"):
            pass
        for name in names:
            if (folder / name).is_dir():
                raise IsADirectoryError(21, "Is a directory", str(folder / name))
    except OSError as err:
        where = err.filename or folder
        raise fail(f"--out: cannot write to {str(where)!r}: {err.strerror or err}") from None


def _progress_bar(*, hidden: bool, unit: str = "") -> Progress:
    """A progress bar on stderr, shown only on a terminal and unless ``hidden``."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *((TextColumn(unit),) if unit else ()),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=hidden or not console.is_terminal,
    )


def _run_and_render(
    experiment: str,
    *,
    min_size: int,
    max_size: int,
    size_flag: str,
    options: dict[str, Any],
    control: bool,
    control_max_size: int,
    repeats: int,
    min_time: float,
    threads: int,
    precision: float,
    max_passes: int,
    until: UntilChoice,
    device: Device,
    dtype: DType,
    seed: int,
    out: Path,
    json_out: bool,
    quiet: bool,
    resume: bool = False,
    time_budget: float | None = None,
    max_memory: str | None = None,
    compile_: bool = False,
) -> None:
    _check_limits(time_budget)
    memory = parse_bytes(max_memory) if max_memory is not None else None
    if min_size > max_size:
        raise fail(f"--min-{size_flag} ({min_size}) is above --max-{size_flag} ({max_size})")
    if max_size > MAX_SIZE:
        raise fail(f"--max-{size_flag} {max_size} is too large (at most {MAX_SIZE})")
    if not math.isfinite(min_time) or min_time > MAX_MIN_TIME:
        raise fail(f"--min-time must be a finite number of seconds up to {MAX_MIN_TIME:g}")

    from trainbench.experiments.builtin import EXPERIMENTS
    from trainbench.harness.runner import SweepConfig

    exp = EXPERIMENTS[experiment]
    cfg = SweepConfig(
        min_size=min_size,
        max_size=max_size,
        options=options,
        control=control,
        control_max_size=control_max_size,
        repeats=repeats,
        min_time=min_time,
        threads=threads,
        precision=precision,
        max_passes=max_passes,
        until=until.value,
        device=device.value,
        dtype=dtype.value,
        seed=seed,
        time_budget=time_budget,
        max_memory=memory,
        compile=compile_,
    )
    _measure_and_render(exp, cfg, out=out, json_out=json_out, quiet=quiet, resume=resume)


def _measure_and_render(
    exp: Any,
    cfg: Any,
    *,
    out: Path,
    json_out: bool,
    quiet: bool,
    resume: bool,
    claims: Any = None,
) -> str | None:
    """Run a sweep of ``exp`` (an Experiment) with ``cfg`` into ``out`` and print it;
    return the verdict of the user's claim (``--claim``), where there is one."""
    from trainbench.harness.runner import SweepError, run_sweep, validate
    from trainbench.results.files import to_json

    try:
        validate(exp, cfg)
    except SweepError as err:
        raise fail(str(err)) from None
    folder = out / exp.folder(cfg.options)
    _check_writable(folder)
    progress = _progress_bar(hidden=quiet or json_out, unit="points")
    name = folder.name
    task = progress.add_task(name, total=None)

    def on_progress(p: Any) -> None:
        progress.update(
            task,
            total=p.total,
            completed=p.done,
            description=f"{name}  {p.variant:<9} {exp.size_name} = {p.size:<5}",
        )

    from trainbench.core.streams import stdout_to_stderr

    # with --json, stdout carries the JSON alone: what a target prints goes to stderr
    quiet_stdout = stdout_to_stderr() if json_out else contextlib.nullcontext()
    try:
        with progress, quiet_stdout:
            result = run_sweep(exp, cfg, out_dir=out, on_progress=on_progress, resume=resume,
                               claims=claims)  # fmt: skip
    except SweepError as err:
        raise fail(str(err)) from None
    except KeyboardInterrupt as err:
        raise interrupted(err, f"the points measured so far are in {folder}") from None
    except (RuntimeError, MemoryError, OSError) as err:  # out of memory, disk full, ...
        full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        why = (f"cannot write the run's files in {folder} ({err.strerror}): what is there is "
               "what was saved before (`--resume` goes on from it once there is room)"
               if isinstance(err, OSError) and full else
               f"measurement failed: {first_line(err)}; points measured so far are in {folder}")
        raise fail(why, 1) from None
    if result.kept_earlier is not None:
        typer.echo(f"trainbench: the earlier run in {folder} was kept as {result.kept_earlier}",
                   err=True)  # fmt: skip
    summary = result.summary()
    mine = [c["verdict"] for c in summary["claims"]
            if c.get("id") == "claim" or str(c.get("id")).startswith("claim:")]  # fmt: skip
    own = next((v for v in mine if v != "confirmed"), mine[0] if mine else None)
    if json_out:
        sys.stdout.write(to_json(summary))
        _no_false_green(summary, claims, folder)
        return own
    from trainbench.cli.render import fits_table, points_table, verdict_lines

    console = Console(width=None if sys.stdout.isatty() else 160)
    if not quiet:
        console.print(points_table(summary, exp.size_name, width=console.width))
        for note in summary["notes"]:
            console.print(f"note: {note}", soft_wrap=True)
        console.print()
        console.print(fits_table(summary))
        if summary.get("modules"):
            from trainbench.cli.render import modules_lines, modules_table

            console.print(modules_table(summary, exp.size_name))
            for line in modules_lines(summary, exp.size_name):
                console.print(line, soft_wrap=True)
    descriptions = {v.name: v.description for v in exp.variants}
    for line in verdict_lines(summary, descriptions, exp.size_name):
        console.print(line, soft_wrap=True)

    if not quiet:
        console.print(f"results: {folder}{os.sep}")
    _no_false_green(summary, claims, folder)
    return own


def _no_false_green(summary: dict[str, Any], claims: Any, folder: Path) -> None:
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


@app.command("mlp-heads")
def mlp_heads(
    max_depth: Annotated[int, typer.Option(min=1, help="Largest depth L.")] = 64,
    min_depth: Annotated[int, typer.Option(min=1, help="Smallest depth L.")] = 1,
    width: Annotated[int, typer.Option(min=1, max=MAX_DIM, help="Hidden width (size of I).")] = 256,
    batch: Annotated[int, typer.Option(min=1, max=MAX_DIM, help="Batch size (size of b).")] = 64,
    in_dim: Annotated[
        int, typer.Option(min=1, max=MAX_DIM, help="Input dimension (size of K).")
    ] = 32,
    activation: Annotated[Activation, typer.Option(help="σ of the hidden layers.")] = (
        Activation.sigmoid
    ),
    impl: Annotated[
        Impl, typer.Option(help="einsum: reads like the problem; fused: addmm, faster.")
    ] = Impl.einsum,
    control: Control = True,
    control_max_depth: Annotated[
        int, typer.Option(min=1, help="Largest depth for the per-head control (it is O(L²)).")
    ] = 32,
    repeats: Repeats = 6,
    min_time: MinTime = 0.01,
    threads: Threads = 0,
    precision: Precision = 0.05,
    max_passes: MaxPasses = 40,
    until: UntilOpt = UntilChoice.narrow,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 0,
    out: Out = Path("results"),
    resume: Resume = False,
    time_budget: TimeBudget = None,
    max_memory: MaxMemory = None,
    compile_: CompileOpt = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Problem 1b: backprop time of the L-layer MLP with a loss head per layer, against L."""
    _run_and_render(
        "mlp-heads",
        min_size=min_depth,
        max_size=max_depth,
        size_flag="depth",
        options={
            "width": width,
            "batch": batch,
            "in_dim": in_dim,
            "activation": activation.value,
            "impl": impl.value,
        },
        control=control,
        control_max_size=control_max_depth,
        repeats=repeats,
        min_time=min_time,
        threads=threads,
        precision=precision,
        max_passes=max_passes,
        until=until,
        device=device,
        dtype=dtype,
        seed=seed,
        out=out,
        json_out=json_out,
        quiet=quiet,
        resume=resume,
        time_budget=time_budget,
        max_memory=max_memory,
        compile_=compile_,
    )


@app.command("rnn-lm")
def rnn_lm(
    max_len: Annotated[int, typer.Option(min=1, help="Largest sentence length T.")] = 256,
    min_len: Annotated[int, typer.Option(min=1, help="Smallest sentence length T.")] = 1,
    cell: Annotated[
        Cell,
        typer.Option(
            help="ugrnn, ugrnn2 (Problem 3), gru (Problem 5), gru-torch (nn.GRUCell's "
            "convention), gru-torch-fast (the same, fused products), torch-gru (nn.GRU), "
            "none (no recurrence), ugrnn-x (gate and update from x alone, a time loop), "
            "ugrnn-x-scan (the same by a parallel prefix scan)."
        ),
    ] = Cell.ugrnn,
    vocab: Annotated[
        int, typer.Option(min=2, max=MAX_DIM, help="Vocabulary size (words w).")
    ] = 1000,
    hidden: Annotated[
        int, typer.Option(min=1, max=MAX_DIM, help="Hidden size (size of I, J and K).")
    ] = 128,
    batch: Annotated[int, typer.Option(min=1, max=MAX_DIM, help="Sentences per batch.")] = 16,
    control: Control = True,
    control_max_len: Annotated[
        int, typer.Option(min=1, help="Largest T for the per-step control (it is O(T²)).")
    ] = 64,
    repeats: Repeats = 6,
    min_time: MinTime = 0.01,
    threads: Threads = 0,
    precision: Precision = 0.05,
    max_passes: MaxPasses = 40,
    until: UntilOpt = UntilChoice.narrow,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 0,
    out: Out = Path("results"),
    resume: Resume = False,
    time_budget: TimeBudget = None,
    max_memory: MaxMemory = None,
    compile_: CompileOpt = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Problem 4: backprop time of the RNN language model against the sentence length T."""
    _run_and_render(
        "rnn-lm",
        min_size=min_len,
        max_size=max_len,
        size_flag="len",
        options={"cell": cell.value, "vocab": vocab, "hidden": hidden, "batch": batch},
        control=control,
        control_max_size=control_max_len,
        repeats=repeats,
        min_time=min_time,
        threads=threads,
        precision=precision,
        max_passes=max_passes,
        until=until,
        device=device,
        dtype=dtype,
        seed=seed,
        out=out,
        json_out=json_out,
        quiet=quiet,
        resume=resume,
        time_budget=time_budget,
        max_memory=max_memory,
        compile_=compile_,
    )


@app.command("ugcnn")
def ugcnn(
    max_depth: Annotated[int, typer.Option(min=1, help="Largest depth L.")] = 32,
    min_depth: Annotated[int, typer.Option(min=1, help="Smallest depth L.")] = 1,
    channels: Annotated[
        int, typer.Option(min=1, max=4096, help="Channels of every box (size of j).")
    ] = 8,
    image_size: Annotated[
        int, typer.Option(min=1, max=4096, help="Images are SIZE × SIZE pixels (x, y).")
    ] = 16,
    batch: Annotated[int, typer.Option(min=1, max=MAX_DIM, help="Images per batch (b).")] = 8,
    impl: Annotated[
        ConvImpl, typer.Option(help="einsum: shifted views, the problem's letters; conv: conv2d.")
    ] = ConvImpl.einsum,
    control: Control = True,
    control_max_depth: Annotated[
        int, typer.Option(min=1, help="Largest depth for the per-head control (it is O(L²)).")
    ] = 32,
    repeats: Repeats = 6,
    min_time: MinTime = 0.01,
    threads: Threads = 0,
    precision: Precision = 0.05,
    max_passes: MaxPasses = 40,
    until: UntilOpt = UntilChoice.narrow,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 0,
    out: Out = Path("results"),
    resume: Resume = False,
    time_budget: TimeBudget = None,
    max_memory: MaxMemory = None,
    compile_: CompileOpt = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Problem 2: backprop time of a stack of L UGCNN layers (a head on each), against L."""
    _run_and_render(
        "ugcnn",
        min_size=min_depth,
        max_size=max_depth,
        size_flag="depth",
        options={
            "channels": channels,
            "image_size": image_size,
            "batch": batch,
            "kernel": 3,
            "impl": impl.value,
        },
        control=control,
        control_max_size=control_max_depth,
        repeats=repeats,
        min_time=min_time,
        threads=threads,
        precision=precision,
        max_passes=max_passes,
        until=until,
        device=device,
        dtype=dtype,
        seed=seed,
        out=out,
        json_out=json_out,
        quiet=quiet,
        resume=resume,
        time_budget=time_budget,
        max_memory=max_memory,
        compile_=compile_,
    )


def _options(pairs: list[str] | None) -> dict[str, Any]:
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


@app.command("sweep")
def sweep_command(
    target: Annotated[
        list[str],
        typer.Argument(
            help="package.module:function or path/to/file.py:function (the function takes "
            "the size n and returns a zero-argument function that runs the forward pass and "
            "returns a scalar loss), or a built-in experiment (mlp-heads, rnn-lm, ugcnn). "
            "Several TARGETs are measured together, interleaved in the same passes, each "
            "judged on its own and compared with the first.",
            show_default=False,
        ),
    ],
    sizes: Annotated[
        str,
        typer.Option(
            help="16,32,64 (a list), 16:1024 (doubling) or 16:1024:1.5 (a step factor).",
            show_default=False,
        ),
    ],
    claim: Annotated[
        str | None,
        typer.Option(
            help="The order to judge: O(1), O(log n), O(n), O(n log n), O(n^2), O(n^3), "
            "O(n^k) with a number k.",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            help="What --claim is about: bwd_s, fwd_s, bwd_flops, fwd_flops, graph_nodes, "
            "graph_depth, saved_bytes, peak_bytes (CUDA; on a CPU judged on the working "
            "set), working_set_bytes, bwd_bytes, span_flops (the backward's critical path "
            "weighted by FLOPs), span_bytes."
        ),
    ] = "bwd_s",
    tolerance: Annotated[
        float, typer.Option(help="How far the fitted exponent may lie from the claim's.")
    ] = 0.15,
    name: Annotated[
        str | None,
        typer.Option(
            help="The run's name: OUT/NAME/ (default: the function's name).", show_default=False
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            help="A built-in experiment's model option, NAME=VALUE (repeatable).",
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        str,
        typer.Option(
            help="The torch.mm (ROWSxINNERxCOLS) whose FLOP/s the efficiency is relative to."
        ),
    ] = "1024x1024x1024",
    control: Control = True,
    control_max_size: Annotated[
        int, typer.Option(min=1, help="Largest size for a built-in experiment's control.")
    ] = 256,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit 1 unless --claim is confirmed."),
    ] = False,
    repeats: Repeats = 6,
    min_time: MinTime = 0.01,
    threads: Threads = 0,
    precision: Precision = 0.05,
    max_passes: MaxPasses = 40,
    until: UntilOpt = UntilChoice.narrow,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.float32,
    seed: Seed = 0,
    out: Annotated[Path, typer.Option(help="Results folder; the run goes to OUT/NAME/.")] = Path(
        "results"
    ),
    resume: Resume = False,
    time_budget: TimeBudget = None,
    max_memory: MaxMemory = None,
    compile_: CompileOpt = False,
    point_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds one count or one timed visit of a point may take; a point that "
            "takes longer fails and the sweep goes on without it (0: no limit).",
        ),
    ] = 300.0,
    by_module: Annotated[
        int | None,
        typer.Option(
            "--by-module", metavar="DEPTH", show_default=False,
            help="Also count FLOPs and saved bytes per module of the model, to DEPTH levels "
            "of its module tree (1: the model itself), each with its order and share.",
        ),
    ] = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Any model: how its forward and backward cost grows with a size n you choose."""
    _check_limits(time_budget)
    memory = parse_bytes(max_memory) if max_memory is not None else None
    if not math.isfinite(min_time) or min_time > MAX_MIN_TIME:
        raise fail(f"--min-time must be a finite number of seconds up to {MAX_MIN_TIME:g}")
    if strict and claim is None:
        raise fail("--strict needs --claim")
    from trainbench.api import claims_for, make_config, preflight, resolve
    from trainbench.experiments.builtin import EXPERIMENTS
    from trainbench.harness.runner import SweepError

    options = _options(option)

    from trainbench.core.streams import stdout_to_stderr

    # with --json, what the target prints (on import, in its first forward) goes to stderr
    muted = stdout_to_stderr if json_out else contextlib.nullcontext
    try:
        with muted():
            exp = resolve(target if len(target) > 1 else target[0], name=name,
                          reference=reference)  # fmt: skip
        if exp.name in EXPERIMENTS and name is not None:
            raise SweepError("--name: a built-in experiment's run is named by the experiment")
        if exp.name not in EXPERIMENTS and option:
            raise SweepError("--option: only for the built-in experiments (mlp-heads, ...)")
        cfg = make_config(
            sizes, options=options, control=control,
            control_max_size=control_max_size, repeats=repeats, min_time=min_time,
            threads=threads, device=device.value, dtype=dtype.value, seed=seed,
            time_budget=time_budget, max_memory=memory, compile=compile_,
            precision=precision, max_passes=max_passes, until=until.value,
            point_timeout=point_timeout if point_timeout != 0 else None, by_module=by_module,
        )  # fmt: skip
        if by_module is not None and by_module < 1:
            raise SweepError(f"--by-module: the depth is at least 1 (the model itself), "
                             f"got {by_module}")  # fmt: skip
        if cfg.max_size > MAX_SIZE and exp.name in EXPERIMENTS:
            raise SweepError(f"--sizes: {cfg.max_size} is too large (at most {MAX_SIZE})")
        claims = claims_for(exp, claim, metric=metric, tolerance=tolerance)
        if exp.name not in EXPERIMENTS:
            with muted():
                preflight(exp, cfg)
    except SweepError as err:
        raise fail(str(err)) from None
    except (RuntimeError, MemoryError) as err:  # out of memory in the first forward pass
        if isinstance(err, typer.Exit):
            raise
        raise fail(f"{target}: {first_line(err)}") from None
    verdict = _measure_and_render(exp, cfg, out=out, json_out=json_out, quiet=quiet,
                                  resume=resume, claims=claims)  # fmt: skip
    if strict and verdict != "confirmed":
        raise typer.Exit(1)


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


@contextmanager
def _owned(folder: Path) -> Iterator[None]:
    """Hold the run folder's lock (trainbench.core.lock) while the block writes it; another
    run holding it is one line and exit 2."""
    from trainbench.core.lock import hold

    owned = ExitStack()
    try:
        owned.enter_context(hold(folder))
    except SweepError as err:  # (LockError: held by another run, or not writable)
        raise fail(str(err)) from None
    with owned:
        yield


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


@app.command("trainability")
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
    threads: Threads = 0,
    seed: Seed = 0,
    out: Annotated[
        Path, typer.Option(help="Results folder; the run goes to OUT/trainability/.")
    ] = Path("results"),
    resume: Resume = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Problems 1a, 1c, 2: gradient signal at initialisation and training, against depth."""
    from trainbench.trainability.run import (
        TrainabilityConfig,
        TrainabilityError,
        run_trainability,
    )

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

    _check_writable(folder, FILES)
    with _owned(folder):
        earlier, kept = _earlier_trainability(folder, resume)
        progress = _progress_bar(hidden=quiet or json_out)
        task = progress.add_task("trainability", total=None)

        def on_progress(what: str, done: int, total: int) -> None:
            progress.update(task, total=total, completed=done, description=f"trainability  {what}")

        from trainbench.trainability.files import write_files

        def save(result: Any) -> None:  # the tables after every record, the plots at the end
            write_files(folder, result.summary(), plots=result.complete)

        try:
            with progress:
                result = run_trainability(cfg, on_progress=on_progress, save=save, earlier=earlier)
            summary = result.summary()
        except KeyboardInterrupt as err:
            raise interrupted(err, f"what was measured so far is in {folder}") from None
        except TrainabilityError as err:
            raise fail(str(err)) from None
        except (RuntimeError, MemoryError, OSError) as err:
            raise fail(f"trainability failed: {first_line(err)}", 1) from None
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


class Format(str, enum.Enum):
    png = "png"
    svg = "svg"


def _write_report(
    run_dirs: list[Path], out: Path, fmt: str, command: str | None, rendered: Any = None,
    force: bool = False,
) -> Path:  # fmt: skip
    """Read the result folders and write the report; one line and exit 2 for a bad folder.
    ``rendered``: the runs whose plots were drawn already (see report.write_report)."""
    from trainbench.report.pages import ReportError, load_runs, write_report

    try:
        runs = load_runs(run_dirs)
    except ReportError as err:
        raise fail(str(err)) from None
    _check_writable(out, ("report.md", "report.html"))
    try:
        write_report(runs, out, fmt=fmt, command=command, rendered=rendered, force=force)
    except ReportError as err:
        raise fail(str(err)) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        # a value the checks of summary.json let through that the report cannot use
        where = ", ".join(str(r.folder) for r in runs)
        raise fail(
            f"cannot report on {where}: a value in its files is not what a trainbench "
            f"run writes ({type(err).__name__}: {first_line(err)})"
        ) from None
    except OSError as err:
        raise fail(f"--out: cannot write the report: {first_line(err)}", 1) from None
    return out / "report.md"


@app.command("compare")
def compare_runs(
    old: Annotated[Path, typer.Argument(help="The earlier run's folder (OUT/<name>/).",
                                        show_default=False)],
    new: Annotated[Path, typer.Argument(help="The later run's folder, of the same sweep.",
                                        show_default=False)],
    json_out: Json = False,
) -> None:
    """Which metrics moved between two saved runs of one sweep, beyond what was measured.

    A regression: an exponent whose 95% interval now lies wholly above the old one (an
    exact count: its degree or exponent rose), or a count that rose. Times' values are
    said (slower, faster) but are not regressions by themselves. Exit 1 on a regression."""
    from trainbench.results.compare import as_records, compare, regressions
    from trainbench.results.reading import read_summary
    from trainbench.results.schema import ResultsError

    try:
        summaries = [read_summary(Path(folder)) for folder in (old, new)]
    except ResultsError as err:
        raise fail(str(err)) from None
    if summaries[0]["experiment"] != summaries[1]["experiment"]:
        raise fail(f"{old} is a run of {summaries[0]['experiment']}, {new} of "
                   f"{summaries[1]['experiment']}: compare two runs of one sweep")  # fmt: skip
    from trainbench.experiments.builtin import EXPERIMENTS

    exp = EXPERIMENTS.get(summaries[0]["experiment"])
    changes = compare(*summaries, size_name=exp.size_name if exp else "n")
    if not changes:
        raise fail(f"{old} and {new} have no metric in common to compare")
    bad = regressions(changes)
    if json_out:
        import json

        sys.stdout.write(json.dumps({"changes": as_records(changes),
                                     "regressions": len(bad)}, indent=1) + "\n")  # fmt: skip
    else:
        from trainbench.cli.render import compare_table

        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(compare_table(changes, f"{old} → {new}"))
        console.print(f"{len(bad)} regression{'s' * (len(bad) != 1)}" + (
            ": " + ", ".join(f"{c.variant} {c.metric} ({c.what})" for c in bad) if bad else ""))
    if bad:
        raise typer.Exit(1)


@app.command("report")
def report(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Result folders: a run (OUT/mlp-heads/) or a folder of runs (verify's OUT). "
            "Folders from several machines are overlaid, labelled by device.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where report.md, report.html and plots/ go (default: RUN_DIR/report "
            "for one folder, ./report for several)."
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Image format of the plots.")] = (
        Format.png
    ),
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite a report.md or report.html in OUT that trainbench did not write.",
        ),
    ] = False,
) -> None:
    """Plots, report.md and a self-contained report.html from result folders.

    Only the files of OUT's last report are replaced or removed; a run still being
    written is reported as it stands, with a line saying so."""
    from trainbench.core.lock import busy, describe
    from trainbench.report.pages import default_out

    for folder, owner in busy(run_dirs):
        typer.echo(f"trainbench: {folder} is still being written ({describe(owner)}); the "
                   "report shows it as it stands", err=True)  # fmt: skip
    target = out if out is not None else default_out(run_dirs)
    path = _write_report(run_dirs, target, fmt.value, None, force=force)
    typer.echo(f"report: {path}  (and {path.with_suffix('.html').name}, plots/)")


def _ids(values: list[str] | None) -> list[str]:
    return [i.strip() for v in values or [] for i in v.split(",") if i.strip()]


@app.command("verify")
def verify(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller sizes, the same bands (minutes).")
    ] = False,
    claims: Annotated[
        Path | None,
        typer.Option(help="Claims file (TOML; default: the one shipped, seeds/claims.toml)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these claim ids (repeat or comma-separate); their controls come along."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Results folder (default: results/, or results/quick/ with --quick)."),
    ] = None,
    device: DeviceOpt = Device.auto,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the runs in OUT (same configuration): what "
            "finished is not measured again.",
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            max=64,
            show_default=False,
            help="Runs at once, each in its own process on one thread (default: 2 "
            "for --quick where there are two cores, else 1: the thorough run times "
            "each sweep with the machine to itself).",
        ),
    ] = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Run the experiments the claims need, judge every claim, write results and a report.

    Exit 0 when every claim's verdict is the one the claims file expects, 1 otherwise."""
    from trainbench.claims.parse import ClaimsError, default_claims, load_claims
    from trainbench.harness.runner import SweepError
    from trainbench.results.schema import ResultsError
    from trainbench.trainability.run import TrainabilityError
    from trainbench.verify.run import (
        PlanError,
        check_plans,
        check_run_tables,
        default_jobs,
        plan_runs,
        run_verify,
    )

    try:
        claim_set = load_claims(claims) if claims is not None else default_claims()
        check_run_tables(claim_set)
        ids = _ids(only)
        if only is not None and not ids:
            raise ClaimsError("--only: name at least one claim id")
        if ids:
            claim_set = claim_set.select(ids)
    except ClaimsError as err:
        raise fail(str(err)) from None
    except PlanError as err:
        raise fail(f"{claims if claims is not None else 'seeds/claims.toml'}: {err}") from None
    plans = plan_runs(claim_set, quick)
    if device != Device.auto:
        plans = [replace(p, settings=dict(p.settings) | {"device": device.value})
                 if p.experiment != "trainability" else p for p in plans]  # fmt: skip
    try:
        check_plans(plans)
    except PlanError as err:
        raise fail(f"{claims if claims is not None else 'seeds/claims.toml'}: {err}") from None
    target = out if out is not None else Path("results/quick" if quick else "results")
    for plan in plans:
        _check_writable(target / plan.folder)
    from trainbench.report.pages import ReportError, check_report_folder

    try:  # (before measuring: the report is written after the runs)
        check_report_folder(target / "report")
    except ReportError as err:
        raise fail(str(err)) from None
    command = " ".join(
        ["trainbench verify", *(["--quick"] if quick else []),
         *([f"--claims {claims}"] if claims is not None else []),
         *([f"--only {','.join(ids)}"] if ids else []),
         *([f"--device {device.value}"] if device != Device.auto else []),
         *(["--resume"] if resume else []),
         *([f"--jobs {jobs}"] if jobs is not None else []),
         *([f"--out {out}"] if out is not None else [])]
    )  # fmt: skip
    progress = _progress_bar(hidden=quiet or json_out)
    task = progress.add_task("verify", total=None)

    def on_progress(what: str, done: int, total: int) -> None:
        progress.update(task, total=total, completed=done, description=f"verify  {what}")

    source = str(claims) if claims is not None else "seeds/claims.toml"
    try:
        with progress:
            result = run_verify(
                plans, target, command=command, quick=quick, claims_file=source,
                on_progress=on_progress, resume=resume,
                jobs=jobs if jobs is not None else default_jobs(quick, plans),
                report=target / "report",
            )  # fmt: skip
    except KeyboardInterrupt as err:
        raise interrupted(err, f"what was measured so far is in {target}") from None
    except (SweepError, TrainabilityError) as err:
        raise fail(str(err)) from None
    except ResultsError as err:  # --resume of a missing or corrupt run
        raise fail(f"--resume: {err}") from None
    except (RuntimeError, MemoryError, OSError) as err:
        message = f"measurement failed: {first_line(err)}; results so far in {target}"
        raise fail(message, 1) from None
    report_md = _write_report([target], target / "report", "png", command, result.rendered)
    summary = result.summary()
    failed = result.failed()
    if json_out:
        from trainbench.results.files import to_json

        sys.stdout.write(to_json(summary))
    else:
        from trainbench.cli.render import verdict_table

        console = Console(width=None if sys.stdout.isatty() else 200)
        console.print(verdict_table(summary["rows"], title="trainbench verify" + (
            " --quick" if quick else "")))  # fmt: skip
        if not quiet:
            console.print(f"results: {target}{os.sep}   report: {report_md}")
    for r in failed:
        typer.echo(
            f"trainbench: claim {r['id']} is {r['verdict']} (expected {r['expect']}): "
            f"{r['reason']}",
            err=True,
        )
    if failed:
        raise typer.Exit(1)


def main() -> None:
    from trainbench.core import streams
    signal.signal(signal.SIGTERM, _on_sigterm)
    from trainbench.measure import watchdog
    watchdog.EXIT_WHEN_STUCK = True  # (this process is the tool's)
    streams.prepare()
    code: Any = 0
    try:
        with watchdog.watching_signals():  # a Ctrl-C told from a target's own KeyboardInterrupt
            app()
    except SystemExit as end:
        code = end.code
    except BrokenPipeError:  # stdout's reader went away (``| head``): as Unix tools do
        code = 0
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # (the same, noticed at the last write)
        streams.quiet_broken_pipe()
    sys.exit(code)
