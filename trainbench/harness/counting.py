"""The counting pass of a sweep: every point without a record counted, in increasing size
(variants interleaved), within --max-memory and --time-budget; a point that runs out of
memory, raises or hangs is recorded as failed and stops the growth at its size.
"""

from __future__ import annotations

from trainbench.core.settings import SweepError, first_line
from trainbench.harness.limits import point_cost, reserved, secs_text, sizes_text
from trainbench.harness.records import unspanned_note
from trainbench.harness.state import Point
from trainbench.harness.sweep import Sweep, what_failed
from trainbench.measure.memory import is_out_of_memory
from trainbench.measure.watchdog import PointTimeout, deadline


def count(run: Sweep) -> None:
    """Count every point without a record, in increasing size, within the limits."""
    run.counting = True
    before = len(run.points)
    count_sizes(run)  # (an exception leaves it on: a run stopped there keeps its counts)
    run.counting = False
    why = unspanned_note(run.points[before:], run.exp.size_name)
    if why:
        run.result.notes.append(why)


def count_sizes(run: Sweep) -> None:
    """The counting of :func:`count`, size by size, until a limit or a failure stops it."""
    cfg, n = run.cfg, run.exp.size_name
    wanted = set(run.todo)
    cut: set[str] = set()  # variants stopped by --max-memory
    for size in sorted({s for _, s in run.todo}):
        if size >= run.grow_limit:
            break
        have = {(p.variant, p.size) for p in run.points}
        group = [
            v.name
            for v in run.exp.variants
            if (v.name, size) in wanted and (v.name, size) not in have and v.name not in cut
        ]
        accepted = []
        for variant in group:
            why = run.over_memory(variant, size)
            if why is None:
                accepted.append(variant)
            else:
                cut.add(variant)
                run.result.notes.append(why)
        if not accepted:
            continue
        # The first point is always counted: there is nothing to predict from.
        if cfg.time_budget is not None and run.points:
            names = [v.name for v in run.exp.variants]
            cost = sum(point_cost(run.points, names, v, size, cfg.repeats, cfg.min_time)
                       for v in accepted)  # fmt: skip
            owed = reserved(run.points, cfg.repeats, cfg.min_time, run.grow_limit)
            left = cfg.time_budget - run.elapsed() - owed
            if cost > left:
                last = max(p.size for p in run.points)
                run.result.notes.append(
                    f"stopped growing at {n} = {last}: the next size was predicted to take "
                    f"{secs_text(cost)} s, {secs_text(max(left, 0.0))} s of --time-budget "
                    f"{cfg.time_budget:g} s left ({n} = "
                    f"{sizes_text(run.not_measured(size))} not measured)"
                )
                run.grow_limit = size
                break
        for variant in accepted:
            if not count_one(run, variant, size):
                return
    run.recount_total()


def count_one(run: Sweep, variant: str, size: int) -> bool:
    """Count ``variant`` at ``size`` (a new point of the run); False where it failed
    (recorded: the counting stops there)."""
    cfg = run.cfg
    run.tick(variant, size, finished=False)
    failure, foreign = None, False
    try:
        if cfg.time_budget is not None and not run.warm:
            # The first count of a process also pays for one-time set-up (hundreds of
            # times a small point's count): not the time of counting, so not what the
            # cost model should grow from.
            with deadline(cfg.point_timeout, run.stuck(variant, size, "count")):
                run.instruments.count(run.exp, variant, size, run.options, run.device,
                                      run.dtype)  # fmt: skip
        run.warm = True
        start = run.instruments.now()
        with deadline(cfg.point_timeout, run.stuck(variant, size, "count")):
            counts = run.instruments.count(run.exp, variant, size, run.options, run.device,
                                           run.dtype, cfg.by_module)  # fmt: skip
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err) and not run.exp.foreign:
            raise
        foreign = not is_out_of_memory(err)
        failure = what_failed(err) if foreign else first_line(err)
    except (SweepError, PointTimeout) as err:  # a target that raises or hangs
        run.fail(variant, size, "count", str(err), oom=False)
        return False
    except Exception as err:  # a target whose backward fails at this size
        if not run.exp.foreign:
            raise
        run.fail(variant, size, "count", what_failed(err), oom=False)
        return False
    if failure is not None:
        run.fail(variant, size, "count", failure, oom=not foreign)
        return False
    if run.uncounted:
        counts |= dict.fromkeys(("fwd_flops", "bwd_flops", "span_flops", "schedule"))
    run.points.append(Point(variant, size, counts, count_s=run.instruments.now() - start))
    return True
