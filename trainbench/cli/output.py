"""What the commands share around a run: checking up front that its folder can be written,
holding its lock, and the progress bar on stderr."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trainbench.cli.errors import fail
from trainbench.core.settings import SweepError

RUN_FILES = ("measurements.csv", "samples.csv", "summary.json")


def check_writable(folder: Path, names: tuple[str, ...] = RUN_FILES) -> None:
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


def progress_bar(*, hidden: bool, unit: str = "") -> Progress:
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


@contextmanager
def owned(folder: Path) -> Iterator[None]:
    """Hold the run folder's lock (trainbench.core.lock) while the block writes it; another
    run holding it is one line and exit 2."""
    from trainbench.core.lock import hold

    holding = ExitStack()
    try:
        holding.enter_context(hold(folder))
    except SweepError as err:  # (LockError: held by another run, or not writable)
        raise fail(str(err)) from None
    with holding:
        yield
