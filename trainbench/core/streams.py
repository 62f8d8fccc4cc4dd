"""The command line's output streams, whatever they turn out to be: closed (``>&-``), a
pipe that its reader closes early (``| head -1``), or an encoding that cannot write the
symbols the tables use (±, ≈, ×, superscripts). No torch in here.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

ERRORS = "trainbench-ascii"
# What each symbol the output uses reads as in plain ASCII.
ASCII = {
    "±": "+/-", "≈": "~", "×": "x", "·": "*", "—": "-", "–": "-", "→": "->", "←": "<-",
    "≤": "<=", "≥": ">=", "≠": "!=", "µ": "u", "…": "...", "‖": "||", "∂": "d", "ℓ": "l",
    "⁻": "-", "⁰": "0", "¹": "1", "⁴": "4", "⁵": "5", "⁶": "6",
    "⁷": "7", "⁸": "8", "⁹": "9", "\u00a0": " ", "✓": "v", "✗": "x", "²": "^2", "³": "^3",
}  # fmt: skip


def _ascii(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeEncodeError):
        raise err
    bad = err.object[err.start : err.end]
    return "".join(ASCII.get(c, "?") for c in bad), err.end


codecs.register_error(ERRORS, _ascii)

_started_on: tuple[int, int] | None = None  # what file descriptor 1 was at the start


def _identity(file: int | str) -> tuple[int, int] | None:
    """(device, inode) of an open file descriptor or a path; None where it has none."""
    try:
        st = os.fstat(file) if isinstance(file, int) else os.stat(file)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def pipe_closed() -> bool:
    """Whether stdout's reader went away during the run: typer and rich then point file
    descriptor 1 at the null device (and end with exit 1); it was something else at the
    start (:func:`prepare`)."""
    if type(sys.stdout).__name__ == "PacifyFlushWrapper":
        return True
    now, null = _identity(1), _identity(os.devnull)
    return now is not None and now == null and _started_on not in (None, null)


def prepare() -> None:
    """A closed stdout or stderr becomes the null device (the run goes on, quietly); an
    encoding that lacks a symbol writes its ASCII form instead of raising."""
    global _started_on
    _started_on = _identity(1)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or _closed(stream):
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
            continue
        try:
            stream.reconfigure(errors=ERRORS)
        except (AttributeError, ValueError, OSError):
            pass


def _closed(stream: object) -> bool:
    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
        os.fstat(fileno)
    except (AttributeError, ValueError, OSError):
        return not hasattr(stream, "write")
    return False


def quiet_broken_pipe() -> None:
    """After the reader of stdout went away: send what is still buffered nowhere, so that
    the interpreter's own flush at exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While the block runs, whatever is written to stdout (``print`` in a target, or a C
    library writing to file descriptor 1) goes to stderr, so that stdout carries only
    what the tool writes after it (its JSON)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 1)
        os.close(saved)
