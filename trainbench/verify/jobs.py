"""Runs of ``trainbench verify`` in child processes, several at a time (``--jobs``).

Each child runs plans (a sweep, or the trainability run) one at a time on one thread, so
two jobs keep to two cores, and writes each run's folder as it goes. What this does to a time
verdict was measured, not assumed: ``verify --quick`` with two jobs on a 2-core machine
against one job (docs/performance.md, "verify --quick"); the thorough run keeps one job,
so that the reference times are each taken with the machine to itself.

A child is started with ``spawn`` (a forked torch process can deadlock in its thread
pools) and sends back its progress, each plan's summary, or the one-line error that
ended it. What a child runs for each plan is given (:func:`run_jobs`' ``run``:
:func:`trainbench.verify.run.run_plan`); under ``spawn`` it travels by reference, so it
must be a module-level function.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainbench.core.settings import first_line
from trainbench.report.pages import ReportError, render_run

# What runs one plan in a child: (plan, out, resume, on_progress) -> the run's summary.
PlanRunner = Callable[..., dict[str, Any]]

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


def _worker(
    run: PlanRunner, out: str, resume: bool, report: str | None, core: int | None, tasks: Any,
    messages: Any,
) -> None:  # fmt: skip
    """The child's body: the plans it is given (``(index, plan)`` from ``tasks``, until
    None), each run by ``run`` into its folder under ``out``, then its plots drawn for the
    report in ``report`` (where given); on ``core`` alone where given. One child runs several plans
    in turn, so that each plan does not pay for starting torch again."""
    # Started with SIGINT ignored (see Job): out of the terminal's process group first, so
    # that only the parent's one interrupt (Job.interrupt) reaches this process; ended
    # with the parent, however the parent ends (Linux).
    try:
        os.setpgrp()
    except OSError:
        pass
    _end_with_parent()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if core is not None:
        try:
            os.sched_setaffinity(0, {core})
        except (AttributeError, OSError):
            pass
    index = None
    try:
        while (task := tasks.get()) is not None:
            index, plan = task
            _run_one(index, plan, out, resume, report, messages, run)
            index = None
    except KeyboardInterrupt:
        messages.put(("interrupted", index))
    except BaseException as err:  # noqa: BLE001 - every error goes back to the parent
        messages.put(("error", index, type(err).__name__, first_line(err)))


def _run_one(
    index: int, plan: Any, out: str, resume: bool, report: str | None, messages: Any,
    run_plan: PlanRunner,
) -> None:  # fmt: skip
    """One plan in the child: its run, then its report plots; "done" with both."""
    summary = run_plan(plan, Path(out), resume,
                       lambda *what: messages.put(("progress", index, *what)))  # fmt: skip
    rendered, stop = None, False
    if report is not None:
        try:
            rendered = render_run(Path(out) / plan.folder, Path(report))
        except KeyboardInterrupt:  # the run is saved: send it, then stop
            stop = True
        except (ReportError, Exception):  # the report draws them again
            pass
    messages.put(("done", index, summary, rendered))
    if stop:
        raise KeyboardInterrupt


def _end_with_parent() -> None:
    """Have the kernel interrupt this process when its parent dies (Linux's
    PR_SET_PDEATHSIG): a child left measuring after its parent was killed would write into
    a run nobody reads."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGINT), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent was gone before the request
        os._exit(1)


class Job:
    """A child process that runs the plans it is given one at a time (:meth:`submit`);
    :meth:`poll` it for their results, :meth:`interrupt` or :meth:`finish` it."""

    def __init__(
        self, run: PlanRunner, out: Path, resume: bool, report: Path | None = None,
        core: int | None = None, name: str = "trainbench verify job",
    ) -> None:  # fmt: skip
        ctx = multiprocessing.get_context("spawn")
        self.tasks: Any = ctx.Queue()
        self.messages: Any = ctx.Queue()
        self.process = ctx.Process(
            target=_worker,
            args=(run, str(out), resume, None if report is None else str(report), core,
                  self.tasks, self.messages),
            name=name, daemon=True,
        )  # fmt: skip
        self.core = core
        self.current: int | None = None  # the index of the plan it runs now
        self.progress: tuple[str, int, int] | None = None
        self.results: list[tuple[Any, ...]] = []  # "done", "error", "interrupted" messages
        # Ignored until the child has left the terminal's process group (in _worker).
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.process.start()
        finally:
            signal.signal(signal.SIGINT, previous)

    def submit(self, index: int, plan: Any) -> None:
        self.current, self.progress = index, None
        self.tasks.put((index, plan))

    def poll(self, timeout: float = 0.0) -> None:
        """Read what the child sent: keep its latest progress and its results."""
        while True:
            try:
                message = self.messages.get(timeout=timeout) if timeout else (
                    self.messages.get_nowait())  # fmt: skip
            except queue.Empty:
                return
            if message[0] == "progress":
                self.progress = message[2:]
            else:
                self.results.append(message)
            timeout = 0.0

    def take(self) -> tuple[Any, ...] | None:
        """The next result the child sent, if any; one for its current plan frees it. A
        child that ended without the result of its current plan gives an "error"."""
        self.poll()
        if not self.results and self.current is not None and not self.process.is_alive():
            self.poll(timeout=0.5)  # (what it sent last may still be on its way)
            if not self.results:
                code = self.process.exitcode
                self.results.append(("error", self.current, "exit",
                                     f"the {self.process.name} process ended without a "
                                     f"result (exit code {code})"))  # fmt: skip
        if not self.results:
            return None
        message = self.results.pop(0)
        if message[1] == self.current:
            self.current = None
        return message

    def interrupt(self) -> None:
        """Ask the child to stop: it saves what it measured and sends "interrupted"."""
        if self.process.is_alive() and self.process.pid is not None:
            try:
                os.kill(self.process.pid, signal.SIGINT)
            except OSError:
                pass

    def finish(self) -> None:
        """No more plans: the child ends."""
        self.tasks.put(None)
        self.process.join(STOP_GRACE_S)


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
    run: PlanRunner,
    jobs: int,
    out: Path,
    resume: bool,
    report: Path | None,
    on_done: Callable[[int, dict[str, Any], Any], None],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """Run ``plans`` in up to ``jobs`` children at once (``run(plan, out, resume,
    on_progress)`` in each: a module-level function), each child on a core of its own
    where there is one for it (no migrations) and given the next plan as it finishes one:
    the sweeps in their order, then the trainability run. With the claims file's order the
    two RNN LM sweeps (whose backwards are bound by memory traffic) then overlap for less
    of their time; with the trainability run first, the clean-clone CI read P4-none low
    (k = 0.89, 0.88) twice on a loaded host, where seven runs with it last did not
    (docs/performance.md, "verify --quick"). ``on_done(i, summary, rendered)`` as each
    ends. A child's error is raised as :class:`JobError`, its interruption as
    KeyboardInterrupt; on any exception (an interrupt included) the children still
    running are stopped first."""
    waiting = sorted(range(len(plans)), key=lambda i: plans[i].experiment == "trainability")
    allowed = allowed_cores()
    count = min(jobs, len(plans))
    free = allowed if len(allowed) >= count else []
    workers = [Job(run, out, resume, report, core=free[k] if free else None,
                   name=f"trainbench verify job {k + 1}") for k in range(count)]  # fmt: skip
    try:
        while waiting or any(w.current is not None for w in workers):
            for w in workers:
                while (message := w.take()) is not None:
                    kind, index = message[0], message[1]
                    if kind == "done":
                        on_done(index, message[2], message[3])
                    elif kind == "interrupted":
                        raise KeyboardInterrupt
                    else:
                        raise JobError(message[2], message[3])
                if w.current is None and waiting:
                    i = waiting.pop(0)
                    w.submit(i, plans[i])
            shown = [w.progress for w in workers if w.current is not None and w.progress]
            if on_progress and shown:
                on_progress("  |  ".join(str(p[0]) for p in shown), shown[0][1], shown[0][2])
            time.sleep(0.2)
        for w in workers:
            w.finish()
    except BaseException:
        stop_jobs(workers)
        raise
