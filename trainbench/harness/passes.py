"""The timing passes of a sweep: their schedule (a pass visits every point still being
timed once, in a newly shuffled order; groups of neighbouring sizes where a pass does not
fit in --max-memory) and when they end (intervals narrow enough, claims confirmed, the
pass cap, the time budget), recorded in the run's ``schedule``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from trainbench.claims.parse import Claim, run_claims
from trainbench.core.settings import SweepError, first_line
from trainbench.core.vocabulary import CONFIRMED, TIME_METRICS
from trainbench.experiments.builtin import Experiment
from trainbench.harness.analysis import fit_points, judge_claims
from trainbench.harness.state import Point
from trainbench.harness.sweep import Sweep, what_failed
from trainbench.measure.memory import free_memory, is_out_of_memory
from trainbench.measure.point import Timing
from trainbench.measure.timing import Probe
from trainbench.measure.watchdog import PointTimeout, deadline
from trainbench.stats.fit import fit_order, window_start

PASS_ID_STRIDE = 100_000  # pass ids of the groups that memory splits a pass into
FALLBACK_PASSES = 12  # passes per group where they are split
CHECK_BOOT = 200  # bootstrap replicates of the check of an interval's width between passes


def watched_metrics(
    exp: Experiment, options: Mapping[str, Any], claims: Sequence[Claim] | None
) -> dict[str, tuple[str, ...]]:
    """Per variant, the time metrics whose intervals decide when the passes end: those its
    claims in this run are about; none for a variant whose claims are all on counts (its
    times decide no verdict); a variant without claims: its backward time."""
    out: dict[str, list[str]] = {}
    for c in run_claims(exp.name, options, claims):
        out.setdefault(c.variant, [])
        if c.metric in TIME_METRICS:
            out[c.variant].append(c.metric)
    return {v: tuple(dict.fromkeys(m)) for v, m in out.items()}


class Passes:
    """The timing passes of one run, and what they reached: the interval half-widths,
    the pass each variant settled at (``--until confirmed``: was confirmed at), the
    passes the points below the fit window were timed in.

    ``watch``: per variant, the time metrics whose intervals decide when its passes end
    (:func:`watched_metrics`; a variant not in it: its backward time).
    """

    def __init__(self, run: Sweep, watch: Mapping[str, tuple[str, ...]]) -> None:
        self.run, self.cfg, self.exp = run, run.cfg, run.exp
        self.watch = dict(watch)
        self.reached: dict[str, float | None] = {}
        self.settled_at: dict[str, int] = {}
        self.confirmed_at: dict[str, int] = {}  # --until confirmed: the pass it stopped at
        self.window_passes = 0  # passes after which the points below the fit window stopped

    def time(self) -> None:
        """Time the points in passes: a pass visits every point still being timed once, in
        a newly shuffled order, so the sizes it compares are measured close in time. From
        ``cfg.repeats`` passes on, a variant whose watched time exponents' intervals are
        narrow enough (half-width at most ``cfg.precision``) is visited no more; the passes
        end when none is left, after ``cfg.max_passes``, or when the time budget is spent.
        Every pass's points are kept in memory together (model, one graph for the backward)
        where they fit in --max-memory; where they do not, neighbouring sizes are timed in
        groups that fit, each sharing a size with the next (see :meth:`groups`)."""
        # The same order for a fresh run and a resumed one.
        self.run.points.sort(key=lambda p: (p.size, self.run.rank.get(p.variant, 0)))
        self.run.recount_total()
        live = [p for p in self.run.points if p.size < self.run.grow_limit]
        groups = self.groups(live)
        for g, group in enumerate(groups):
            if not self.run_passes(group, first_id=g * PASS_ID_STRIDE, adaptive=len(groups) == 1):
                return

    def groups(self, live: list[Point]) -> list[list[Point]]:
        """The points timed in the same passes: all of them where they fit in --max-memory
        together; else, per variant, runs of neighbouring sizes that fit (at least two),
        each sharing its largest size with the next, so the estimator can chain them."""
        assert self.cfg.max_memory is not None
        total = sum(p.working_set for p in live)
        if total <= self.cfg.max_memory or len(live) <= 2:
            return [live] if live else []
        out: list[list[Point]] = []
        for v in [v.name for v in self.exp.variants]:
            mine = sorted((p for p in live if p.variant == v), key=lambda p: p.size)
            i = 0
            while i < len(mine) - 1:
                j, used = i + 1, mine[i].working_set + mine[i + 1].working_set
                limit = self.cfg.max_memory
                while j + 1 < len(mine) and used + mine[j + 1].working_set <= limit:
                    j += 1
                    used += mine[j].working_set
                out.append(mine[i : j + 1])
                i = j
            if len(mine) == 1:
                out.append(mine)
        self.run.result.notes.append(
            f"the points of a pass do not fit in --max-memory together "
            f"({total / 2**20:.0f} MiB against {self.cfg.max_memory / 2**20:.0f} MiB): timed "
            f"in {len(out)} groups of neighbouring sizes (each sharing a size with the next, "
            f"through which the sizes are chained), {self.fixed_passes()} passes each"
        )
        return out

    def fixed_passes(self) -> int:
        return max(self.cfg.repeats, min(self.cfg.max_passes, FALLBACK_PASSES))

    def run_passes(self, group: list[Point], first_id: int, adaptive: bool) -> bool:
        """The passes of one group; False where the time budget ended them."""
        cfg = self.cfg
        probes: dict[tuple[str, int], Probe] = {}
        active = [p for p in group]
        ids = sorted({i for p in group for i in p.pass_ids})
        next_id = max(ids) + 1 if ids else first_id
        passes = len(ids)
        # A resumed run first finishes the pass it was interrupted in: the points that
        # lack its id while others of their variant have it.
        owed: set[tuple[str, int]] = set()
        if ids:
            with_last = {p.variant for p in group if ids[-1] in p.pass_ids}
            done_with = self.below_window(group) if adaptive and len(ids) > cfg.repeats else []
            owed = {(p.variant, p.size) for p in group
                    if p.variant in with_last and ids[-1] not in p.pass_ids
                    and p not in done_with}  # fmt: skip
            if owed:
                next_id, passes = ids[-1], passes - 1
        cap = max(cfg.max_passes, cfg.repeats) if adaptive else self.fixed_passes()
        stopped = f"{cap} passes (--max-passes)" if adaptive else f"{cap} passes"
        try:
            while active:
                if adaptive and passes >= cfg.repeats and not owed:
                    settled = self.settled({p.variant for p in active}, passes)
                    below = self.below_window(active)
                    if below and not self.window_passes:
                        self.window_passes = cfg.repeats  # (they stop after these, resumed too)
                    gone = {(p.variant, p.size) for p in below}
                    active = [p for p in active if p.variant not in settled
                              and (p.variant, p.size) not in gone]  # fmt: skip
                    for key in [k for k in probes if k[0] in settled or k in gone]:
                        del probes[key]
                    if not active:
                        stopped = f"every watched interval within ±{cfg.precision:g}"
                        if self.confirmed_at:
                            stopped = (f"every time claim confirmed or its interval within "
                                       f"±{cfg.precision:g} (--until confirmed)")  # fmt: skip
                        break
                if passes >= cap:
                    break
                this_pass = len(owed) if owed else len(active)
                later = len(active) * max(0, cfg.repeats - passes - 1)
                self.run.total = self.run.done + this_pass + later
                order = list(active)
                random.Random(cfg.seed * 1_000_003 + next_id).shuffle(order)
                for p in order:
                    if p.size >= self.run.grow_limit:  # a failure stopped the growth below it
                        continue
                    if owed and (p.variant, p.size) not in owed:  # timed in this pass already
                        continue
                    if cfg.time_budget is not None and self.run.elapsed() >= cfg.time_budget:
                        self.budget_spent()
                        self.record_schedule(passes, "the time budget", adaptive)
                        return False
                    self.run.tick(p.variant, p.size, finished=False)
                    timed = self.visit(p, probes)
                    if timed is None:
                        for key in [k for k in probes if k[1] >= self.run.grow_limit]:
                            del probes[key]
                        continue
                    p.add(next_id, *timed)
                    self.run.done += 1
                    self.run.tick(p.variant, p.size, finished=True)
                owed = set()
                active = [p for p in active if p.size < self.run.grow_limit]
                passes += 1
                next_id += 1
                self.run.save()
        finally:
            probes.clear()
            free_memory(self.run.device)
        self.record_schedule(passes, stopped, adaptive)
        return True

    def visit(
        self, p: Point, probes: dict[tuple[str, int], Probe]
    ) -> tuple[Timing, Timing] | None:
        """One visit of ``p`` (its probe built anew); None where it failed (recorded)."""
        key = (p.variant, p.size)
        failure, foreign = None, False

        def probe() -> Probe:
            # Each pass builds the point anew (model, inputs, graph), so that where its
            # tensors lie in memory varies from pass to pass, as the drift does, instead
            # of staying one layout for the whole run; a compiled point is kept (compiling
            # it again would take longer than timing it).
            if key in probes and self.cfg.compile:
                probes[key].time_forward = self.times_forward(p)
                return probes[key]
            probes.pop(key, None)  # the last pass's model and graph, freed first
            run = self.run
            made = run.instruments.probe(self.exp, p, run.options, run.device, run.dtype,
                                         run.threads, self.cfg, p.plan)  # fmt: skip
            probes[key], p.plan = made, made.plan
            made.time_forward = self.times_forward(p)
            return made

        try:
            with deadline(self.cfg.point_timeout, self.run.stuck(p.variant, p.size, "time")):
                return self.run.instruments.time(self.exp, p.variant, p.size, probe)
        except PointTimeout as err:  # a point that does not return
            failure, foreign = str(err), True
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err) and not self.exp.foreign:
                raise
            foreign = not is_out_of_memory(err)
            failure = what_failed(err) if foreign else first_line(err)
        except SweepError as err:  # a target that raises at this size
            failure, foreign = str(err), True
        except Exception as err:  # a target whose backward fails at this size
            if not self.exp.foreign:
                raise
            failure, foreign = what_failed(err), True
        probes.pop(key, None)
        self.run.fail(p.variant, p.size, "time", failure, oom=not foreign)
        return None

    def times_forward(self, p: Point) -> bool:
        """Whether a visit of ``p`` times its forward: in every pass where a claim of the
        run is on its variant's forward time; else in its first ``--repeats`` passes only
        (its later samples could neither decide a verdict nor end the passes; the
        backward's passes go on)."""
        return "fwd_s" in self.watch.get(p.variant, ()) or p.rounds < self.cfg.repeats

    def below_window(self, active: list[Point]) -> list[Point]:
        """The points of ``active`` smaller than every size their variant's fit window
        holds (:func:`trainbench.stats.fit.window_start`): their times cannot move an interval,
        so once the first ``--repeats`` passes have timed them they are visited no more."""
        out = []
        for v in {p.variant for p in active}:
            sizes = sorted(p.size for p in self.run.points if p.variant == v
                           and self.exp.min_fit_size <= p.size < self.run.grow_limit)  # fmt: skip
            if not sizes:
                continue
            start = sizes[window_start(sizes)]
            out += [p for p in active if p.variant == v and p.size < start]
        return out

    def half_width(self, variant: str, metric: str) -> float | None:
        """Half the width of the interval of ``metric`` (a time) of ``variant`` now."""
        mine = sorted(
            (p for p in self.run.points
             if p.variant == variant and p.rounds and p.size >= self.exp.min_fit_size),
            key=lambda p: p.size,
        )  # fmt: skip
        data = [p.labels(metric[:3]) for p in mine]
        try:
            fit = fit_order(
                [p.size for p in mine], [t for t, _ in data], rounds=[i for _, i in data],
                n_boot=CHECK_BOOT, seed=self.cfg.seed,
            )  # fmt: skip
        except ValueError:
            return None
        return (fit.ci_high - fit.ci_low) / 2

    def settled(self, variants: set[str], passes: int) -> set[str]:
        """The variants whose watched time metrics are all within ±precision now, and with
        ``--until confirmed`` those whose time claims all read confirmed now."""
        out = set()
        widths_of: dict[str, dict[str, float | None]] = {}
        for v in sorted(variants):
            widths = {m: self.half_width(v, m) for m in self.watch.get(v, ("bwd_s",))}
            widths_of[v] = widths
            for m, w in widths.items():
                self.reached[f"{v}/{m}"] = None if w is None else round(w, 4)
            # (a metric that cannot be fitted yet, too few sizes, is not waited for)
            if all(w is None or w <= self.cfg.precision for w in widths.values()):
                out.add(v)
                self.settled_at[v] = passes
        if self.cfg.until == "confirmed":
            for v in self.confirmed_now(variants - out, widths_of):
                out.add(v)
                self.settled_at[v] = self.confirmed_at[v] = passes
        return out

    def confirmed_now(
        self, variants: set[str], widths: Mapping[str, Mapping[str, float | None]]
    ) -> set[str]:
        """The variants of ``variants`` with time claims, every one of which reads confirmed
        on the points timed so far, judged as at the end of the run (the same fits, bootstrap
        and rules). Judged only where each claimed interval is at most as wide as its band
        (no interval wider can lie inside it)."""
        claims = run_claims(self.exp.name, self.cfg.options, self.run.claims)
        timed = [c for c in claims if c.metric in TIME_METRICS]
        by_id = {c.id: c for c in claims}
        ready = {
            v for v in variants
            if any(c.variant == v for c in timed)
            and all((w := widths.get(c.variant, {}).get(c.metric)) is not None
                    and w <= c.tolerance for c in timed if c.variant == v)
        }  # fmt: skip
        if not ready:
            return set()
        mine = [c for c in timed if c.variant in ready]
        controls = [by_id[c.control] for c in mine if c.control in by_id]
        need = {(c.variant, c.metric) for c in [*mine, *controls]}
        need |= {(c.variant, c.work_metric) for c in mine if c.work_metric}
        result = self.run.result
        fits, _ = fit_points(
            result.points, result.samples, self.cfg.seed, self.exp.min_fit_size, only=need
        )
        judged = judge_claims(
            self.exp, fits, {p["variant"] for p in result.points},
            result.config.get("options"), [c for c in claims if c in mine or c in controls],
            points=result.points, samples=result.samples,
            caches=(result.environment or {}).get("caches"), seed=self.cfg.seed,
        )  # fmt: skip
        verdict = {r["id"]: r["verdict"] for r in judged}
        return {v for v in ready
                if all(verdict.get(c.id) == CONFIRMED for c in mine if c.variant == v)}  # fmt: skip

    def record_schedule(self, passes: int, stopped: str, adaptive: bool) -> None:
        cfg = self.cfg
        self.run.result.schedule = {
            "passes": passes,
            "min_passes": cfg.repeats,
            "max_passes": cfg.max_passes,
            "precision": cfg.precision,
            "adaptive": adaptive,
            "half_widths": dict(self.reached),
            "settled_at": dict(self.settled_at),
            "until": cfg.until,
            "confirmed_at": dict(self.confirmed_at),
            "below_window_passes": self.window_passes or None,
            "stopped": stopped,
        }
        widths = ", ".join(
            f"{k} ±{w:.3f}" + (f" after {self.settled_at[k.split('/')[0]]}"
                               if k.split("/")[0] in self.settled_at else "")
            + (" (confirmed)" if k.split("/")[0] in self.confirmed_at else "")
            for k, w in self.reached.items() if w is not None
        )  # fmt: skip
        note = (
            f"timed in {passes} passes (each visits every point once, in a shuffled order; "
            f"at least {cfg.repeats}"
            + (f", so --max-passes {cfg.max_passes} could not end them sooner"
               if cfg.max_passes < cfg.repeats else "")
            + f"); stopped at {stopped}"
            + (f"; interval half-widths reached: {widths}" if widths else "")
            + (f"; the points below their variant's fit window were timed in the first "
               f"{self.window_passes} passes only (their times do not enter the fit)"
               if self.window_passes and self.window_passes < passes else "")
            + (f"; the forward time (no claim of the run is on it) was timed in the first "
               f"{cfg.repeats} passes only" if passes > cfg.repeats and any(
                   "fwd_s" not in self.watch.get(v.name, ()) for v in self.exp.variants)
               else "")
        )  # fmt: skip
        self.run.result.notes = [n for n in self.run.result.notes if not n.startswith("timed in ")]
        self.run.result.notes.append(note)

    def budget_spent(self) -> None:
        run = self.run
        never = sum(1 for p in run.points if p.rounds == 0)
        run.result.notes.append(
            f"--time-budget {self.cfg.time_budget:g} s spent after {run.done} of {run.total} "
            "timed point-rounds: no further rounds were started (the points keep the rounds "
            "they have)"
            + (f"; {never} counted point{'s' * (never > 1)} never timed, left out" if never else "")
        )

