"""Runs of ``trainbench verify`` in child processes, several at a time (``--jobs``).

Each child runs one plan (a sweep, or the trainability run) on one thread, so two jobs
keep to two cores, and writes its own run folder as it goes. What this does to a time
verdict was measured, not assumed: ``verify --quick`` with two jobs on a 2-core machine
against one job (docs/performance.md, "verify --quick"); the thorough run keeps one job,
so that the reference times are each taken with the machine to itself.

A child is started with ``spawn`` (a forked torch process can deadlock in its thread
pools) and sends back its progress, its summary, or the one-line error that ended it.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from pathlib import Path
from typing import Any

# How long a child that was told to stop may take to save what it measured.
STOP_GRACE_S = 30.0


class JobError(RuntimeError):
    """The child's run ended with an error; ``kind`` is the error's class name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def allowed_cores() -> list[int]:
    """The cores this process may run on (empty where that cannot be read)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def cores() -> int:
    """How many cores this process may run on."""
    return len(allowed_cores()) or os.cpu_count() or 1


def _child(
    plan: Any, out: str, resume: bool, report: str | None, core: int | None, messages: Any
) -> None:
    """The child's body: the run of ``plan`` into its folder under ``out``, then its plots
    for the report in ``report`` (where given); on ``core`` alone where given."""
    from trainbench.verify import run_plan

    if core is not None:
        try:
            os.sched_setaffinity(0, {core})
        except (AttributeError, OSError):
            pass

    try:
        summary = run_plan(plan, Path(out), resume,
                           lambda *what: messages.put(("progress", *what)))  # fmt: skip
    except KeyboardInterrupt:
        messages.put(("interrupted", None))
        return
    except BaseException as err:  # noqa: BLE001 - every error goes back to the parent
        from trainbench.config import first_line

        messages.put(("error", type(err).__name__, first_line(err)))
        return
    rendered = None
    if report is not None:
        from trainbench.report import ReportError, render_run

        try:
            rendered = render_run(Path(out) / plan.folder, Path(report))
        except (ReportError, KeyboardInterrupt):  # the report draws them again, or says why
            pass
    messages.put(("done", summary, rendered))


class Job:
    """One run of ``verify`` in a child process: :meth:`poll` it, :meth:`wait` for its
    summary, :meth:`stop` it."""

    def __init__(
        self, plan: Any, out: Path, resume: bool, report: Path | None = None,
        core: int | None = None,
    ) -> None:  # fmt: skip
        ctx = multiprocessing.get_context("spawn")
        self.plan = plan
        self.rendered: Any = None  # the run's plots for the report: (made, notes)
        self.messages: Any = ctx.Queue()
        self.process = ctx.Process(
            target=_child,
            args=(plan, str(out), resume, None if report is None else str(report), core,
                  self.messages),
            name=f"trainbench {plan.folder}", daemon=True,
        )  # fmt: skip
        self.core = core
        self.progress: tuple[str, int, int] | None = None
        self.result: tuple[Any, ...] | None = None
        self.process.start()

    def poll(self, timeout: float = 0.0) -> None:
        """Read what the child sent; keep its latest progress and its result."""
        while self.result is None:
            try:
                message = self.messages.get(timeout=timeout) if timeout else (
                    self.messages.get_nowait())  # fmt: skip
            except queue.Empty:
                return
            if message[0] == "progress":
                self.progress = message[1:]
            else:
                self.result = message
            timeout = 0.0

    @property
    def finished(self) -> bool:
        """Whether the child has sent its result (or ended without one)."""
        self.poll()
        return self.result is not None or not self.process.is_alive()

    def wait(self) -> dict[str, Any]:
        """The child's summary, once it ends; its error raised as :class:`JobError`,
        its interruption as KeyboardInterrupt."""
        while self.result is None:
            self.poll(timeout=0.2)
            if self.result is None and not self.process.is_alive():
                self.poll(timeout=0.5)  # (what it sent last may still be on its way)
                if self.result is None:
                    code = self.process.exitcode
                    raise JobError("exit", f"the {self.process.name} process ended "
                                          f"without a result (exit code {code})")  # fmt: skip
        self.process.join(STOP_GRACE_S)
        kind = self.result[0]
        if kind == "done":
            self.rendered = self.result[2]
            return self.result[1]
        if kind == "interrupted":
            raise KeyboardInterrupt
        raise JobError(self.result[1], self.result[2])

    def stop(self) -> None:
        """Interrupt the child (unless the terminal's interrupt reached it too), let it save
        what it measured, then end it."""
        self.process.join(1.0)
        if self.process.is_alive() and self.process.pid is not None:
            try:
                os.kill(self.process.pid, signal.SIGINT)
            except OSError:
                pass
        self.process.join(STOP_GRACE_S)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)
