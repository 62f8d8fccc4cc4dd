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
import time
from collections.abc import Callable, Sequence
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
    # Started with SIGINT ignored (see Job): out of the terminal's process group first, so
    # that only the parent's one interrupt (Job.interrupt) reaches this process; ended
    # with the parent, however the parent ends (Linux).
    try:
        os.setpgrp()
    except OSError:
        pass
    _end_with_parent()
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
        except (ReportError, KeyboardInterrupt, Exception):  # the report draws them again
            pass
    messages.put(("done", summary, rendered))


def _end_with_parent() -> None:
    """Have the kernel interrupt this process when its parent dies (Linux's
    PR_SET_PDEATHSIG): a child left measuring after its parent was killed would write into
    a run nobody reads."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGINT), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent was gone before the request
        os._exit(1)


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
        # Ignored until the child has left the terminal's process group (in _child).
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.process.start()
        finally:
            signal.signal(signal.SIGINT, previous)

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

    def interrupt(self) -> None:
        """Ask the child to stop: it saves what it measured and sends "interrupted"."""
        if self.process.is_alive() and self.process.pid is not None:
            try:
                os.kill(self.process.pid, signal.SIGINT)
            except OSError:
                pass


def stop_jobs(jobs: list[Job], grace: float = STOP_GRACE_S) -> None:
    """Interrupt every job at once, then wait (reading what they send, so that none is
    held up writing to a full pipe) until they end or ``grace`` seconds pass; end the rest."""
    for job in jobs:
        job.interrupt()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(j.process.is_alive() for j in jobs):
        for job in jobs:
            job.poll(timeout=0.05)
    for job in jobs:
        if job.process.is_alive():
            job.process.terminate()
            job.process.join(5.0)


def run_jobs(
    plans: Sequence[Any],
    jobs: int,
    out: Path,
    resume: bool,
    report: Path | None,
    on_done: Callable[[int, dict[str, Any], Any], None],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """Run ``plans`` in up to ``jobs`` children at once, the trainability run (training takes
    about as long as the longest sweep) first, then the rest in their order; each child on
    a core of its own where there is one for it (no migrations). ``on_done(i, summary,
    rendered)`` as each ends. A child's error is raised as :class:`JobError`; on any
    exception (an interrupt included) the children still running are stopped first."""
    waiting = sorted(range(len(plans)), key=lambda i: plans[i].experiment != "trainability")
    allowed = allowed_cores()
    free = allowed if len(allowed) >= jobs else []
    running: dict[int, Job] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                i = waiting.pop(0)
                running[i] = Job(plans[i], out, resume, report,
                                 core=free.pop(0) if free else None)  # fmt: skip
            for i, job in list(running.items()):
                if job.finished:
                    del running[i]
                    if job.core is not None:
                        free.append(job.core)
                    on_done(i, job.wait(), job.rendered)
            shown = [j.progress for j in running.values() if j.progress]
            if on_progress and shown:
                on_progress("  |  ".join(str(p[0]) for p in shown), shown[0][1], shown[0][2])
            time.sleep(0.2)
    except BaseException:
        stop_jobs(list(running.values()))
        raise
