"""Resuming a sweep (``--resume``): the earlier run read back and checked against this one.

:func:`read_earlier` reads the run in the output folder (strictly, with
:func:`trainbench.results.reading.read_run`), refuses it when it was run with other settings
than this run's (:func:`_difference` names the first; only those in
RESUME_MAY_CHANGE may differ), and turns its points back into points in progress,
with every timing round on disk, for the sweep to continue. :class:`_Earlier` carries
the earlier run's reference rate, failed points and notes over into the new result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainbench.core.settings import SweepConfig, SweepError
from trainbench.core.vocabulary import COUNT_METRICS, SCHEDULE_COLUMNS, SPAN_METRICS
from trainbench.harness.state import Point
from trainbench.measure.timing import Timing
from trainbench.results.environment import cpu_model
from trainbench.results.fileset import disagreements
from trainbench.results.reading import read_run
from trainbench.results.schema import ResultsError

if TYPE_CHECKING:
    from trainbench.experiments.builtin import Experiment
    from trainbench.harness.state import RunResult

# Settings a resumed run may change: they limit the run, they do not change what is measured.
RESUME_MAY_CHANGE = ("time_budget", "max_memory", "precision", "max_passes", "until",
                     "point_timeout")
# What a resumed run's machine must share with the run's (its environment's fields).
MACHINE_FIELDS = ("device_name", "cpu_model", "torch_version")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=1e-12)
    return bool(a == b)


def _difference(
    cfg: SweepConfig, device: torch.device, threads: int, summary: Mapping[str, Any]
) -> tuple[str, Any, Any] | None:
    """The first setting (a SweepConfig field or a model option; then the device and the
    number of threads actually used) in which this run differs from the run in
    ``summary``: (name, the run's value, this run's value); None: the same."""
    old = summary["config"]
    missing = "(not recorded)"
    for f in fields(SweepConfig):
        if f.name in RESUME_MAY_CHANGE:
            continue
        new = getattr(cfg, f.name)
        if f.name == "options":
            old_options = old.get("options")
            if not isinstance(old_options, dict):
                return "options", missing, new
            for key in [*old_options, *(k for k in new if k not in old_options)]:
                if key not in old_options or key not in new:
                    return key, old_options.get(key, missing), new.get(key, missing)
                if not _same(old_options[key], new[key]):
                    return key, old_options[key], new[key]
            continue
        if f.name not in old:
            if new == f.default:  # a setting added later, left at its default
                continue
            return f.name, missing, new
        if not _same(old[f.name], new):
            return f.name, old[f.name], new
    env = summary.get("environment")
    old_device = env.get("device") if isinstance(env, dict) else None
    if old_device is not None and old_device != str(device):
        return "device", old_device, str(device)
    old_threads = env.get("threads") if isinstance(env, dict) else None
    if isinstance(old_threads, int) and old_threads != threads:
        return "threads", old_threads, threads
    # the machine: a resumed run's points must all come from the one its environment names
    for name, now in _machine(device).items():
        old_value = env.get(name) if isinstance(env, dict) else None
        if old_value is not None and old_value != now:
            return name, old_value, now
    return None


def _machine(device: torch.device) -> dict[str, Any]:
    """What ties a run's times to one machine: the device's name, the CPU, torch's version."""
    cpu = cpu_model()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    return {"device_name": name, "cpu_model": cpu, "torch_version": torch.__version__}


@dataclass
class _Earlier:
    """The run that ``--resume`` continues."""

    summary: dict[str, Any]
    points: list[Point]
    failed: list[dict[str, Any]]
    # where the files disagree (a point with fewer rounds in samples.csv than
    # measurements.csv records): those rounds are timed again
    mismatched: list[str] = field(default_factory=list)

    def baseline(self) -> dict[str, Any] | None:
        """The earlier run's reference rate, where it has one: the efficiencies of a resumed
        run are all relative to the same reference."""
        old = self.summary.get("baseline")
        if isinstance(old, dict) and isinstance(old.get("gflops"), (int, float)):
            return old
        return None

    def take_over(self, result: RunResult) -> bool:
        """Carry the earlier run's failed points and notes over into ``result``. True where
        it was complete: then its configuration, environment and notes are ``result``'s
        too, and nothing is left to measure."""
        old = self.summary
        result.failed = self.failed
        if old.get("complete") is True:
            result.config = old["config"]
            if isinstance(old.get("environment"), dict):
                result.environment = old["environment"]
            result.notes = [n for n in old.get("notes") or [] if isinstance(n, str)]
            result.complete = True
            return True
        result.notes.extend(
            n for n in old.get("notes") or [] if isinstance(n, str) and n.startswith("an earlier")
        )
        return False

    def resumed_note(self, done: int, total: int) -> str:
        """The note of a resumed run: ``done`` of its ``total`` point-rounds were on disk."""
        old_env = self.summary.get("environment")
        when = old_env.get("timestamp") if isinstance(old_env, dict) else None
        return f"resumed: {done} of {total} timed point-rounds were on disk" + (
            f" from the run of {when}" if when else ""
        )


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _count_value(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _point_field(summary: dict[str, Any], field: str) -> dict[tuple[str, int], Any]:
    """A per-point dict field of summary.json ("modules", "census"): (variant, size) -> it."""
    return {
        (str(p.get("variant")), int(p.get("size", 0))): p.get(field)
        for p in summary.get("points") or []
        if isinstance(p, dict) and isinstance(p.get(field), dict)
    }


def read_earlier(
    exp: Experiment,
    cfg: SweepConfig,
    device: torch.device,
    threads: int,
    folder: Path | None,
    todo: Sequence[tuple[str, int]],
) -> _Earlier:
    """Read the run to resume and check that ``cfg`` is its configuration."""
    if folder is None:
        raise SweepError("--resume: needs the folder the run was written to (--out)")
    try:
        summary, table, samples = read_run(folder, as_set=False)
    except ResultsError as err:
        raise SweepError(f"--resume: {err}") from None
    if summary["experiment"] != exp.name:
        raise SweepError(f"--resume: {folder} holds a {summary['experiment']} run, not {exp.name}")
    diff = _difference(cfg, device, threads, summary)
    if diff is not None:
        name, old, new = diff
        if name in MACHINE_FIELDS:
            raise SweepError(
                f"--resume: {folder} was measured with {name} = {_show(old)}, here it is "
                f"{_show(new)}: the points of one run come from one machine"
            )
        raise SweepError(
            f"--resume: {folder} was run with {name} = {_show(old)}, "
            f"this run asks for {name} = {_show(new)}"
        )
    # The timings of every round, from samples.csv (its "round" is the round's index).
    timings: dict[tuple[str, int, str], dict[int, list[float]]] = {}
    for v, s, phase, r, t in zip(
        samples["variant"], samples["size"], samples["phase"], samples["round"],
        samples["sample_s"], strict=True,
    ):  # fmt: skip
        timings.setdefault((str(v), int(s), str(phase)), {}).setdefault(int(r), []).append(float(t))
    wanted = set(todo)
    points = []
    mismatched: list[str] = []
    saved = {key: _point_field(summary, key) for key in ("modules", "census")}
    for row in table.to_dict("records"):
        key = (str(row["variant"]), int(row["size"]))
        if key not in wanted:
            continue
        counts = {m: _count_value(row[m]) for m in (*COUNT_METRICS, "peak_bytes")}
        counts["param_bytes"] = _count_value(row.get("param_bytes")) or 0
        counts |= {m: _count_value(row.get(m)) for m in SPAN_METRICS}
        schedule = {c: _count_value(row.get(c)) for c in SCHEDULE_COLUMNS}
        counts["schedule"] = schedule if None not in schedule.values() else None
        under = row.get("undercounted")
        counts["undercounted"] = str(under) if isinstance(under, str) and under else None
        counts["census"] = saved["census"].get(key)
        counts["modules"] = saved["modules"].get(key)
        p = Point(*key, counts)
        fwd, bwd = timings.get((*key, "fwd"), {}), timings.get((*key, "bwd"), {})
        # the passes it was timed in (after its first --repeats, where no claim is on the
        # forward, the backward alone)
        on_disk = sorted(bwd)
        recorded = _count_value(row.get("rounds")) or 0
        if len(on_disk) < recorded:
            mismatched.append(f"{key[0]} at {exp.size_name} = {key[1]} has {recorded} rounds in "
                              f"measurements.csv, {len(on_disk)} in samples.csv")  # fmt: skip
        for r in on_disk[: max(cfg.max_passes, cfg.repeats)]:
            p.add(r, Timing(fwd.get(r, []), int(row["fwd_runs_per_sample"])),
                  Timing(bwd[r], int(row["bwd_runs_per_sample"])))  # fmt: skip
        # Its counting time was not recorded: one forward and one backward take about
        # as long, and that is what the time budget's cost model needs.
        spent = float(row["fwd_s"]) + float(row["bwd_s"])
        p.count_s = spent if math.isfinite(spent) else None
        if cfg.compile and str(row.get("compiled", "")).strip():  # how it compiled, kept
            p.compile = {
                "compiled": str(row["compiled"]).lower() == "true",
                "compile_s": _number(row.get("compile_s")),
                "reason": row.get("compile_note") if isinstance(row.get("compile_note"), str)
                else None,
            }  # fmt: skip
            p.eager_s = _number(row.get("eager_s"))
        points.append(p)
    failed = [
        {k: f.get(k) for k in ("variant", "size", "phase", "reason", "oom") if k in f}
        for f in summary.get("failed_points") or []
        if isinstance(f, dict) and isinstance(f.get("size"), int)
    ]
    notes = [f"the files of the run disagreed: {m}; timed again" for m in mismatched]
    if not mismatched:  # (what a rounds mismatch already says, said once)
        notes += [f"the files of the run disagreed: {m}; the run is measured on from its "
                  "tables" for m in disagreements(folder, summary, table, samples)]  # fmt: skip
    grown = _grows(summary, cfg, todo, points, failed)
    if grown is not None:
        notes.append(grown)
    if notes:  # not finished after all: what is missing is measured now
        summary = dict(summary, complete=False)
    return _Earlier(summary, points, failed, notes)


def _grows(
    summary: Mapping[str, Any],
    cfg: SweepConfig,
    todo: Sequence[tuple[str, int]],
    points: Sequence[Point],
    failed: Sequence[Mapping[str, Any]],
) -> str | None:
    """Where the earlier run's --time-budget left planned points out and this run's budget
    is larger (or none): the note saying those are measured now; else None."""
    old = summary["config"].get("time_budget")
    if not isinstance(old, (int, float)) or (cfg.time_budget is not None
                                             and cfg.time_budget <= old):  # fmt: skip
        return None
    have = {(p.variant, p.size) for p in points}
    stop = min((f["size"] for f in failed), default=math.inf)  # (a failure stops growth)
    missing = [(v, s) for v, s in todo if (v, s) not in have and s < stop]
    if not missing:
        return None
    new = "none" if cfg.time_budget is None else f"{cfg.time_budget:g} s"
    return (f"resumed with --time-budget {new} (the run had {old:g} s): the {len(missing)} "
            "points it left out are measured now")
