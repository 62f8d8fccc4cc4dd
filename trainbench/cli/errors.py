"""How the command line ends: every usage error one line on stderr and exit 2, never a
traceback; Ctrl-C 130 and SIGTERM 143; and the one table (:func:`exits`) that turns what a
command's core call raises into a line and an exit code."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from trainbench.core.settings import SweepError, first_line

try:  # recent typer vendors click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as click_errors  # type: ignore[no-redef]

USAGE_EXIT = 2


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


def fail(message: str, code: int = USAGE_EXIT) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    typer.echo(f"trainbench: error: {message}", err=True)
    return typer.Exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds like Ctrl-C."""


def on_sigterm(signum: int, frame: Any) -> None:
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


def user_errors() -> tuple[type[BaseException], ...]:
    """What a core call raises for settings or files a user gave: one line and exit 2."""
    from trainbench.claims.claim import ClaimsError
    from trainbench.trainability.config import TrainabilityError

    return (SweepError, TrainabilityError, ClaimsError)


@contextmanager
def exits(
    kept: str,
    failed: str | Callable[[BaseException], str],
    prefix: dict[type[BaseException], str] | None = None,
) -> Iterator[None]:
    """The one error-to-exit table of the commands that measure.

    * a user's error (:func:`user_errors`): its message, exit 2 (``prefix`` puts words
      before the messages of some error types: ``--resume: ``);
    * Ctrl-C or SIGTERM: "interrupted; ``kept``", exit 130 or 143;
    * anything the machine refused (out of memory, a disk error, a failed kernel):
      ``failed`` with ``{why}`` for the error's first line (or ``failed(err)``), exit 1.
    """
    prefixed = tuple(prefix or {})
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as err:
        raise interrupted(err, kept) from None
    except prefixed as err:
        raise fail(f"{next(p for t, p in (prefix or {}).items() if isinstance(err, t))}{err}",
                   ) from None  # fmt: skip
    except user_errors() as err:
        raise fail(str(err)) from None
    except (RuntimeError, MemoryError, OSError) as err:
        why = failed(err) if callable(failed) else failed.format(why=first_line(err))
        raise fail(why, 1) from None
