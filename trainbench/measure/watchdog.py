"""Limits on one call of a model's code: a point that never returns, and an interrupt the
code raises itself.

* :func:`deadline` turns a call that runs past ``--point-timeout`` into
  :class:`PointTimeout` (the runner records a failed point and the sweep goes on). It
  is enforced with a real-time interval timer (``setitimer``) whose SIGALRM handler
  raises in the main thread: the Python code of the target stops at its next bytecode,
  ``time.sleep`` and blocking reads included. A target that catches the exception and
  goes on is interrupted again every second; where it still has not given up after
  STUCK_ALARMS of those, the ``on_stuck`` callback runs (the command line's records the
  failed point, saves the run and ends the process: nothing else can stop such code in
  its own process; called from Python, the alarms go on). What a timer cannot stop
  is one native call that never returns to Python (a deadlock inside a C library):
  that point ends only with Ctrl-C or a kill, and what was measured before it is on
  disk already. Outside the main thread (or where the platform has no ``setitimer``)
  there is no timeout.
* :func:`watching_signals` counts the SIGINTs (and, through :func:`note_signal`, the
  SIGTERMs) the process receives, so that :func:`from_signal` can tell a Ctrl-C from a
  ``KeyboardInterrupt`` the target raised itself: the first stops the run (saved), the
  second is the target's failure at that size.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_POINT_TIMEOUT = 300.0  # seconds one count or one timed visit of a point may take
MAX_POINT_TIMEOUT = 86_400.0  # (setitimer takes any float; a day is beyond any point)
AGAIN_S = 1.0  # after the first alarm, again every this many seconds until the call ends
STUCK_ALARMS = 5  # alarms swallowed after the first before the call counts as stuck
# Whether a stuck point may end the process (the command line sets it; an API caller's
# process is not the tool's to end).
EXIT_WHEN_STUCK = False


class PointTimeout(BaseException):
    """A call ran past its deadline. A BaseException, so that a target's own ``except
    Exception`` does not swallow it."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not return within {seconds:g} s (--point-timeout)")
        self.seconds = seconds


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def deadline(
    seconds: float | None, on_stuck: Callable[[PointTimeout], None] | None = None
) -> Iterator[None]:
    """Raise :class:`PointTimeout` in the body once it has run ``seconds`` (None: never).
    An exception of any other type that the body raises after the deadline (a target
    that wrapped the timeout in its own) also becomes the timeout, and so does a body
    that returns after it. ``on_stuck``: called (from the alarm) where the body has
    swallowed the timeout STUCK_ALARMS more times; it should not return."""
    if seconds is None or not _main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    expired, alarms = False, 0

    def on_alarm(signum: int, frame: Any) -> None:
        nonlocal expired, alarms
        expired, alarms = True, alarms + 1
        if on_stuck is not None and alarms > STUCK_ALARMS:
            signal.setitimer(signal.ITIMER_REAL, 0)
            on_stuck(PointTimeout(seconds))
        raise PointTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, AGAIN_S)
    try:
        yield
    except PointTimeout:
        raise
    except BaseException as err:
        if expired and not isinstance(err, KeyboardInterrupt):
            raise PointTimeout(seconds) from err
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if expired:
        raise PointTimeout(seconds)


_signals = 0  # the interrupting signals received while watching_signals was on


def note_signal() -> None:
    """Count an interrupting signal (a SIGTERM handler calls this before it raises)."""
    global _signals
    _signals += 1


def signals_seen() -> int:
    """How many interrupting signals have arrived so far (a read of one number: it is
    taken before every forward pass of a target, inside the timed runs)."""
    return _signals


def _counting() -> bool:
    """Whether every interrupting signal is counted: SIGINT is this module's handler, or
    ignored (a process started in the background: no Ctrl-C can arrive, only the
    SIGTERMs that :func:`note_signal` counts). Otherwise no KeyboardInterrupt can be told
    apart from Ctrl-C."""
    handler = signal.getsignal(signal.SIGINT)
    return handler is _on_sigint or handler == signal.SIG_IGN


def from_signal(seen_before: int) -> bool:
    """Whether a KeyboardInterrupt caught now came from a signal, given
    :func:`signals_seen` taken when the call began (True where that cannot be told)."""
    return not _counting() or _signals != seen_before


def _on_sigint(signum: int, frame: Any) -> None:
    note_signal()
    raise KeyboardInterrupt


@contextmanager
def watching_signals() -> Iterator[None]:
    """Count SIGINTs while inside (where Python's own Ctrl-C handler is the one installed,
    in the main thread); they still raise KeyboardInterrupt as before."""
    if not _main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
