"""A sweep: every variant of an experiment over a geometric grid of sizes.

Every point is counted first, in increasing size (so that the limits below can
stop the growth before a size that would not fit); then the timing rounds visit
the points in a seeded shuffled order (so machine drift is not read as growth);
every finished point is written to disk at once; at the end every metric is
fitted and every claim judged.

Limits: ``--max-memory`` and ``--time-budget`` stop the growth of a run before a
size predicted to exceed them, and a point that runs out of memory anyway is
recorded as failed and stops the growth there (see :func:`run_sweep`). A run
never overwrites an earlier one (it is kept beside it), and ``--resume``
continues an interrupted run, measuring only what is missing.

Parts of a sweep live beside this module: its settings in :mod:`trainbench.core.settings`,
the checks and plan of its configuration in :mod:`trainbench.harness.prepare`, the run
while it measures in :mod:`trainbench.harness.sweep` (its counting pass in
:mod:`trainbench.harness.counting`, its timing passes in :mod:`trainbench.harness.passes`,
its rows in :mod:`trainbench.harness.records`), what it measures with in
:mod:`trainbench.harness.instruments`, the predictions of its limits in
:mod:`trainbench.harness.limits`, the reading back of an earlier run for ``--resume`` in
:mod:`trainbench.harness.resume`, and the fits and verdicts in
:mod:`trainbench.harness.analysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path

import torch

from trainbench.claims.claim import Claim
from trainbench.core.lock import hold
from trainbench.core.settings import SweepConfig, SweepError
from trainbench.core.version import __version__
from trainbench.experiments.builtin import Experiment
from trainbench.harness.counting import count
from trainbench.harness.instruments import Instruments
from trainbench.harness.passes import Passes, watched_metrics
from trainbench.harness.prepare import Prepared, available_bytes, plan, plan_notes, prepare
from trainbench.harness.resume import read_earlier
from trainbench.harness.state import Progress, RunResult
from trainbench.harness.sweep import Sweep
from trainbench.measure.threads import default_threads, keeps_torch_threads
from trainbench.measure.watchdog import watching_signals
from trainbench.results.environment import environment
from trainbench.results.files import keep_earlier_run


@keeps_torch_threads
def run_sweep(
    exp: Experiment,
    cfg: SweepConfig | Prepared,
    out_dir: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    claims: Sequence[Claim] | None = None,
    *,
    resume: bool = False,
    instruments: Instruments | None = None,
) -> RunResult:
    """Count every point, then time all of them in ``cfg.repeats`` interleaved rounds.

    ``cfg``: a configuration, checked here, or one :func:`trainbench.harness.prepare.prepare`
    checked already (then it is not checked again).

    The counting pass visits the points in increasing size (variants interleaved;
    counts are exact, so the order does not bias them). Each timing round visits
    every point once, in a shuffled order, so slow drift of the machine spreads
    over all sizes instead of bending the growth curve. The files are rewritten
    after every point of every round. On KeyboardInterrupt what was measured is
    fitted and written with ``complete: false`` and the interrupt is raised
    again. ``claims``: the claims to judge (default: the claims file's claims of
    this experiment that apply to the run's options).

    Files: an earlier run in ``out_dir/<folder>`` is first moved aside (see
    :func:`keep_earlier_run`; ``result.kept_earlier``, and a note). With
    ``resume``, the run in that folder is continued instead: it must have been run
    with the same settings (only ``time_budget`` and ``max_memory`` may differ;
    SweepError names the first difference). A complete run is only refitted and
    rejudged; a partial one keeps every point-round on disk and measures only the
    missing ones (points without a record are counted again).

    Limits, before counting each new size:

    * ``max_memory`` (default: half the device's memory): a variant whose next
      size is predicted to need more (limits.MEMORY_MARGIN times its extrapolated saved
      activations, or on CUDA its extrapolated peak) is not grown further;
    * ``time_budget`` (seconds, for the whole run): the growth stops where the
      time spent, the timing still owed to the points counted, and the predicted
      cost of the next size (see limits.ROUND_COUNTS) would exceed it. In the timing
      rounds no new point-round starts once the budget is spent;
    * a point that runs out of memory anyway is recorded in ``result.failed``
      (summary: ``failed_points``) and stops the growth at its size for every
      variant; the run carries on with what was measured.

    ``instruments``: what it counts, times, reads the clock and measures the reference
    rate with (default: the real ones, :class:`trainbench.harness.instruments.Instruments`).
    """
    instruments = instruments if instruments is not None else Instruments()
    started = instruments.now()
    ready = cfg if isinstance(cfg, Prepared) else prepare(exp, cfg)
    cfg, device, dtype = ready.cfg, ready.device, ready.dtype
    if cfg.max_memory is None:
        cfg = replace(cfg, max_memory=available_bytes(device) // 2)
    threads = cfg.threads if cfg.threads > 0 else default_threads(device)
    todo = plan(exp, cfg)
    folder = out_dir / exp.folder(cfg.options) if out_dir is not None else None
    with ExitStack() as owned:
        owned.enter_context(watching_signals())  # a Ctrl-C told from a target's interrupt
        if folder is not None:  # one writer per run folder, from before it is first read
            owned.enter_context(hold(folder))
        earlier = read_earlier(exp, cfg, device, threads, folder, todo) if resume else None
        torch.set_num_threads(threads)
        threads = torch.get_num_threads()
        kept = None
        if folder is not None and earlier is None:
            try:
                kept = keep_earlier_run(folder)
            except OSError as err:
                raise SweepError(
                    f"--out: cannot keep the earlier run in {folder}: {err.strerror or err}"
                ) from None

        rows, inner, cols = exp.reference_matmul(cfg.options)
        old_baseline = earlier.baseline() if earlier is not None else None
        if old_baseline is not None:
            baseline = old_baseline
            rate = float(old_baseline["gflops"]) * 1e9
        else:
            rate = instruments.matmul_rate(rows, inner, cols, device=device, dtype=dtype,
                                           threads=threads)
            baseline = {"op": "torch.mm", "shape": [rows, inner, cols], "gflops": rate / 1e9}
            # the rate as a resumed run reads it back, so that its efficiencies are the same
            # to the last digit (gflops * 1e9 need not give back the rate exactly)
            rate = float(baseline["gflops"]) * 1e9
        # The model options are also given at the top level (config.cell, config.width, ...).
        config = (
            asdict(cfg)
            | cfg.options
            | {
                "experiment": exp.name,
                "sizes": sorted({s for _, s in todo}),
                "variants": sorted({v for v, _ in todo}),
            }
        )
        result = RunResult(
            experiment=exp.name,
            run=exp.folder(cfg.options),
            config=config,
            environment=environment(
                device=device, dtype=dtype, threads=threads, seed=cfg.seed, version=__version__
            ),
            baseline=baseline,
            notes=plan_notes(exp, cfg, todo, device),
            kept_earlier=kept,
        )
        if kept is not None:
            result.notes.append(f"an earlier run in {folder} was kept as {kept}")
        points = earlier.points if earlier is not None else []
        complete = earlier is not None and earlier.take_over(result)  # then: fit, judge again
        run = Sweep(exp=exp, cfg=cfg, device=device, dtype=dtype, threads=threads, todo=todo,
                    result=result, rate=rate, folder=folder, on_progress=on_progress,
                    started=started, points=points, claims=claims,
                    instruments=instruments)  # fmt: skip
        if complete:
            run.finish_and_save()
            return result
        if earlier is not None:
            result.notes.extend(earlier.mismatched)
            result.notes.extend(run.failure_note(f) for f in result.failed)
            result.notes.append(earlier.resumed_note(run.done, run.total))
        try:
            run.save()
            count(run)
            Passes(run, watched_metrics(exp, cfg.options, claims)).time()
            if old_baseline is None:  # measured once more at the end: the faster of the two
                best = max(rate, instruments.matmul_rate(rows, inner, cols, device=device,
                                                         dtype=dtype, threads=threads))  # fmt: skip
                baseline["gflops"] = best / 1e9
                run.rate = float(baseline["gflops"]) * 1e9  # as a resumed run reads it back
        except KeyboardInterrupt:
            result.notes.append(f"interrupted after {run.done} of {run.total} timed point-rounds")
            run.finish_and_save()
            raise
        result.complete = True
        run.finish_and_save()
        return result
