"""A sweep that keeps earlier runs, reads runs back, resumes, and stays within its limits."""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from fake_clock import FakeClock
from fake_instruments import measure_with

import trainbench.harness.limits as limits
import trainbench.harness.runner as sweep
from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.harness.analysis import fit_points, judge_claims
from trainbench.harness.instruments import Instruments
from trainbench.harness.prepare import available_bytes
from trainbench.harness.runner import SweepConfig, SweepError
from trainbench.harness.state import Progress
from trainbench.measure.point import count_point
from trainbench.results.files import keep_earlier_run, write_run
from trainbench.results.reading import read_run, read_summary
from trainbench.results.schema import FORMAT_VERSION, ResultsError

pytestmark = pytest.mark.slow  # real sweeps or real processes

EXP = EXPERIMENTS["mlp-heads"]
RNN = EXPERIMENTS["rnn-lm"]
TINY = {"width": 8, "batch": 4, "in_dim": 3}
RNN_TINY = {"cell": "ugrnn", "vocab": 11, "hidden": 4, "batch": 2}
CPU = torch.device("cpu")
COUNTS = ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes")


@pytest.fixture(autouse=True)
def fixed_reference_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """No run here needs the 0.3 s measurement of torch.mm's rate."""
    measure_with(monkeypatch, matmul_rate=lambda *args, **kwargs: 1e9)


def _cfg(**kw: Any) -> SweepConfig:
    base = dict(
        min_size=1, max_size=8, options=TINY, repeats=1, max_passes=1, min_time=0.0, threads=1
    )
    return SweepConfig(**(base | kw))


def _same_points(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """The same point records (the rates to within rounding: the reference rate is read back)."""
    rates = ("gflops", "efficiency")
    return [{k: v for k, v in p.items() if k not in rates} for p in a] == [
        {k: v for k, v in p.items() if k not in rates} for p in b
    ] and all(p[k] == pytest.approx(q[k], rel=1e-9) for p, q in zip(a, b, strict=True)
               for k in rates)


def _counts(result: sweep.RunResult) -> dict[tuple[str, int], tuple[Any, ...]]:
    return {(p["variant"], p["size"]): tuple(p[m] for m in COUNTS) for p in result.points}


# --------------------------------------------------------------------------- earlier runs


def _fake_run(folder: Path, timestamp: str | None = "2026-11-25T21:45:26+00:00") -> None:
    env = {"timestamp": timestamp} if timestamp else {}
    summary = {"format_version": FORMAT_VERSION, "experiment": "mlp-heads", "config": {},
               "environment": env, "points": []}  # fmt: skip
    write_run(folder, summary, [], [])


def test_keep_earlier_run_renames_to_the_runs_timestamp(tmp_path: Path) -> None:
    folder = tmp_path / "mlp-heads"
    assert keep_earlier_run(folder) is None  # nothing there
    folder.mkdir()
    (folder / "measurements.csv").write_text("x\n")
    assert keep_earlier_run(folder) is None  # no summary: not a run
    _fake_run(folder)
    kept = keep_earlier_run(folder)
    assert kept == tmp_path / "mlp-heads.2026-11-25T21-45-26"
    assert not folder.exists() and (kept / "summary.json").is_file()
    _fake_run(folder)  # a second run with the same timestamp
    assert keep_earlier_run(folder) == tmp_path / "mlp-heads.2026-11-25T21-45-26-2"
    _fake_run(folder)
    assert keep_earlier_run(folder) == tmp_path / "mlp-heads.2026-11-25T21-45-26-3"
    # no readable timestamp: the folder's mtime
    _fake_run(folder, timestamp=None)
    mtime = datetime.datetime.fromtimestamp(folder.stat().st_mtime, tz=datetime.timezone.utc)
    kept = keep_earlier_run(folder)
    assert kept == tmp_path / f"mlp-heads.{mtime:%Y-%m-%dT%H-%M-%S}"


def test_a_second_run_keeps_the_first(tmp_path: Path) -> None:
    first = sweep.run_sweep(EXP, _cfg(max_size=4), out_dir=tmp_path)
    assert first.kept_earlier is None
    assert not any("earlier run" in n for n in first.notes)
    second = sweep.run_sweep(EXP, _cfg(max_size=4), out_dir=tmp_path)
    kept = second.kept_earlier
    assert kept is not None and kept.parent == tmp_path
    assert kept.name == "mlp-heads." + first.environment["timestamp"][:19].replace(":", "-")
    assert f"an earlier run in {tmp_path / 'mlp-heads'} was kept as {kept}" in second.notes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp-heads", kept.name]
    old, _, _ = read_run(kept)
    new, table, samples = read_run(tmp_path / "mlp-heads")
    assert old["environment"] == first.environment and old["complete"] is True
    assert new["environment"] == second.environment and len(table) == len(second.points)
    assert "kept_earlier" not in new and new["failed_points"] == []


# --------------------------------------------------------------------------- reading back


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("good")
    sweep.run_sweep(EXP, _cfg(max_size=4), out_dir=out)
    return out / "mlp-heads"


def _edit_csv(name: str, change: Any) -> Any:
    def edit(folder: Path) -> None:
        path = folder / name
        table = pd.read_csv(path)
        table = change(table)
        path.write_text(table.to_csv(index=False))

    return edit


def _set(column: str, value: Any, row: int = 0) -> Any:
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table[column] = table[column].astype(object)
        table.loc[row, column] = value
        return table

    return change


def _summary(edit: Any) -> Any:
    def change(folder: Path) -> None:
        path = folder / "summary.json"
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))

    return change


CORRUPT = {
    "no summary": (lambda f: (f / "summary.json").unlink(), "summary.json: missing"),
    "empty summary": (lambda f: (f / "summary.json").write_text(""), "summary.json: empty"),
    "invalid JSON": (lambda f: (f / "summary.json").write_text("{\"a\": "), "invalid JSON"),
    "not UTF-8": (lambda f: (f / "summary.json").write_bytes(b"{\"a\": \"\xff\"}"), "not UTF-8"),
    "not an object": (lambda f: (f / "summary.json").write_text("[1, 2]"), "not a JSON object"),
    "summary is a folder": (
        lambda f: ((f / "summary.json").unlink(), (f / "summary.json").mkdir()),
        "summary.json: cannot read",
    ),
    "no format_version": (_summary(lambda s: {k: v for k, v in s.items()
                                              if k != "format_version"}), "no format_version"),
    "another format": (
        _summary(lambda s: s | {"format_version": 7}),
        "written by another version of trainbench (format 7, this one reads 1)",
    ),
    "no experiment": (_summary(lambda s: {k: v for k, v in s.items() if k != "experiment"}),
                      "not a trainbench sweep summary"),
    "a trainability run": (_summary(lambda s: {k: v for k, v in s.items() if k != "points"}),
                           "not a trainbench sweep summary"),
    "claims not a list": (_summary(lambda s: s | {"claims": {"id": "P1"}}),
                          "claims is not a list"),
    "a claim without an id": (_summary(lambda s: s | {"claims": [{"id": 1}]}),
                              'claim 1 is not an object with a text "id"'),
    "fits not a list": (_summary(lambda s: s | {"fits": "none"}), "fits is not a list"),
    "environment not an object": (_summary(lambda s: s | {"environment": "cpu"}),
                                  "environment is not an object"),
    "no measurements": (lambda f: (f / "measurements.csv").unlink(), "measurements.csv: missing"),
    "empty measurements": (lambda f: (f / "measurements.csv").write_text(""),
                           "measurements.csv: empty"),
    "a column missing": (_edit_csv("measurements.csv", lambda t: t.drop(columns=["bwd_s"])),
                         "measurements.csv: missing column bwd_s"),
    "NaN time": (_edit_csv("measurements.csv", _set("fwd_s", "nan")), "fwd_s is NaN"),
    "empty time": (_edit_csv("measurements.csv", _set("bwd_s", None)), "bwd_s is empty"),
    "negative time": (_edit_csv("measurements.csv", _set("bwd_s", -1.0)), "negative"),
    "zero time": (_edit_csv("measurements.csv", _set("fwd_s", 0.0)), "fwd_s is 0.0 (zero"),
    "negative count": (_edit_csv("measurements.csv", _set("saved_bytes", -8)), "negative"),
    "NaN count": (_edit_csv("measurements.csv", _set("graph_nodes", "nan")),
                  "graph_nodes is NaN"),
    "size not a number": (_edit_csv("measurements.csv", _set("size", "big")),
                          "size is 'big', not a number"),
    "size not whole": (_edit_csv("measurements.csv", _set("size", 2.5)), "not a whole number"),
    "a point twice": (_edit_csv("measurements.csv", lambda t: pd.concat([t, t.iloc[:1]])),
                      "a second row"),
    "no samples": (lambda f: (f / "samples.csv").unlink(), "samples.csv: missing"),
    "samples without rounds": (_edit_csv("samples.csv", lambda t: t.drop(columns=["round"])),
                               "samples.csv: missing column round"),
    "negative sample": (_edit_csv("samples.csv", _set("sample_s", -0.5)), "negative"),
    "unknown phase": (_edit_csv("samples.csv", _set("phase", "sideways")), "phase is 'sideways'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CORRUPT))
def test_read_run_refuses_a_corrupt_run_in_one_line(
    case: str, good_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(good_run, folder)
    read_run(folder)  # the copy is good
    corrupt, message = CORRUPT[case]
    corrupt(folder)
    with pytest.raises(ResultsError) as info:
        read_run(folder)
    text = str(info.value)
    assert message in text
    assert text.startswith(str(folder)) and "\n" not in text


def test_read_run_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such folder"):
        read_run(tmp_path / "nothing")


def test_read_summary_of_any_run(good_run: Path, tmp_path: Path) -> None:
    assert read_summary(good_run)["experiment"] == "mlp-heads"
    folder = tmp_path / "trainability"
    folder.mkdir()
    other = {"format_version": FORMAT_VERSION, "experiment": "trainability", "config": {},
             "claims": [{"id": "P1a"}]}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(other))
    assert read_summary(folder, sweep=False) == other
    with pytest.raises(ResultsError, match='no "points"'):
        read_summary(folder)
    (folder / "summary.json").write_text(json.dumps(other | {"config": None}))
    with pytest.raises(ResultsError, match=r'not a trainbench summary \(no "experiment"'):
        read_summary(folder, sweep=False)
    with pytest.raises(ResultsError, match="summary.json: missing"):
        read_summary(tmp_path / "nothing", sweep=False)


def test_read_run_gives_numbers(good_run: Path) -> None:
    summary, table, samples = read_run(good_run)
    assert summary["complete"] is True
    assert table["size"].dtype.kind == "i" and table["bwd_flops"].dtype.kind in "if"
    assert table["noisy"].dtype == bool
    assert set(samples["round"]) == {0} and (samples["sample_s"] > 0).all()


# --------------------------------------------------------------------------- resume


class Recorder:
    """Stands in for the sweep's timing of a visit and remembers which points were timed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, int]] = []
        real = Instruments().time

        def timed(exp: Any, variant: str, size: int, *args: Any) -> Any:
            self.calls.append((variant, size))
            return real(exp, variant, size, *args)

        measure_with(monkeypatch, time=timed)


def _stop_after(k: int) -> Any:
    finished = []

    def on_progress(p: Progress) -> None:
        if p.finished:
            finished.append((p.variant, p.size))
            if len(finished) == k:
                raise KeyboardInterrupt

    return on_progress


def _samples_by_point_round(folder: Path) -> dict[tuple[str, int, str, int], list[float]]:
    out: dict[tuple[str, int, str, int], list[float]] = {}
    for row in pd.read_csv(folder / "samples.csv").itertuples():
        out.setdefault((row.variant, row.size, row.phase, row.round), []).append(row.sample_s)
    return out


def test_resume_measures_only_the_missing_point_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(monkeypatch)
    cfg = _cfg(repeats=2)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(EXP, cfg, out_dir=tmp_path, on_progress=_stop_after(11))
    folder = tmp_path / "mlp-heads"
    first_calls = list(recorder.calls)
    assert len(first_calls) == 11
    before = _samples_by_point_round(folder)
    assert json.loads((folder / "summary.json").read_text())["complete"] is False
    recorder.calls.clear()
    seen: list[Progress] = []
    # --time-budget and --max-memory may change on resume
    result = sweep.run_sweep(EXP, dataclasses.replace(cfg, time_budget=1e6, max_memory=2**40),
                       out_dir=tmp_path, on_progress=seen.append, resume=True)  # fmt: skip
    assert result.complete and result.kept_earlier is None
    assert [p.name for p in tmp_path.iterdir()] == ["mlp-heads"]  # continued, not kept aside
    points = {(p["variant"], p["size"]) for p in result.points}
    assert len(points) == 9  # full at 1, 2, 3, 4, 6, 8; per-head at 2, 4, 8
    assert all(p["rounds"] == 2 for p in result.points)
    # every (point, round) timed exactly once, over both runs
    assert Counter(first_calls + recorder.calls) == Counter({p: 2 for p in points})
    assert len(recorder.calls) == 18 - 11
    assert seen[0].done == 11 and seen[-1].done == seen[-1].total == 18
    after = _samples_by_point_round(folder)
    assert {(v, s, r) for v, s, _, r in after} == {(v, s, r) for v, s in points for r in (0, 1)}
    assert all(after[key] == pytest.approx(before[key]) for key in before)  # kept as measured
    assert any(n.startswith("resumed: 11 of 18 timed point-rounds") for n in result.notes)
    assert not any("interrupted" in n for n in result.notes)
    summary, _, _ = read_run(folder)
    assert summary["complete"] is True and not any(c["partial"] for c in summary["claims"])
    claims = {c["id"]: c for c in summary["claims"]}
    assert claims["P1b-memory"]["verdict"] == "confirmed"

    # resuming a complete run measures nothing: it fits and judges again
    def nothing(*args: Any) -> Any:
        raise AssertionError("measured on resume of a complete run")

    measure_with(monkeypatch, time=nothing, count=nothing, matmul_rate=nothing)
    again = sweep.run_sweep(EXP, cfg, out_dir=tmp_path, resume=True)
    assert again.complete and _same_points(again.points, result.points)
    assert {c["id"]: c["verdict"] for c in again.claims} == {
        c["id"]: c["verdict"] for c in result.claims
    }
    assert again.notes == result.notes


def test_resume_after_an_interrupt_while_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(monkeypatch)

    def stop_at_the_fourth_point(p: Progress) -> None:
        if (p.variant, p.size) == ("full", 3):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(EXP, _cfg(), out_dir=tmp_path, on_progress=stop_at_the_fourth_point)
    assert recorder.calls == []
    result = sweep.run_sweep(EXP, _cfg(), out_dir=tmp_path, resume=True)
    assert result.complete and len(result.points) == 9
    assert Counter(recorder.calls) == Counter({(p["variant"], p["size"]): 1
                                               for p in result.points})  # fmt: skip


def test_resume_refuses_another_configuration(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(EXP, _cfg(), out_dir=tmp_path, on_progress=_stop_after(2))
    folder = tmp_path / "mlp-heads"
    cases = {
        "width = 8, this run asks for width = 16": _cfg(options=TINY | {"width": 16}),
        "activation = sigmoid, this run asks for activation = tanh": _cfg(
            options=TINY | {"activation": "tanh"}
        ),
        "repeats = 1, this run asks for repeats = 2": _cfg(repeats=2),
        "max_size = 8, this run asks for max_size = 16": _cfg(max_size=16),
        "threads = 1, this run asks for threads = 2": _cfg(threads=2),
        "control = true, this run asks for control = false": _cfg(control=False),
    }
    for message, cfg in cases.items():
        with pytest.raises(SweepError) as info:
            sweep.run_sweep(EXP, cfg, out_dir=tmp_path, resume=True)
        assert str(info.value) == f"--resume: {folder} was run with {message}"
    assert not json.loads((folder / "summary.json").read_text())["complete"]  # untouched
    # the threads the run actually used count too
    summary = json.loads((folder / "summary.json").read_text())
    summary["environment"]["threads"] = 7
    (folder / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(SweepError, match="threads = 7, this run asks for threads = 1$"):
        sweep.run_sweep(EXP, _cfg(), out_dir=tmp_path, resume=True)


def test_resume_refuses_a_missing_or_corrupt_run(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="^--resume: .*mlp-heads: no such folder$"):
        sweep.run_sweep(EXP, _cfg(), out_dir=tmp_path, resume=True)
    (tmp_path / "mlp-heads").mkdir()
    (tmp_path / "mlp-heads" / "summary.json").write_text("{")
    with pytest.raises(SweepError, match="summary.json: invalid JSON"):
        sweep.run_sweep(EXP, _cfg(), out_dir=tmp_path, resume=True)
    with pytest.raises(SweepError, match="--resume"):
        sweep.run_sweep(EXP, _cfg(), out_dir=None, resume=True)


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("exp", "options"), [(EXP, TINY), (RNN, RNN_TINY)], ids=["mlp-heads", "rnn-lm"]
)
def test_counts_are_the_same_in_every_run(exp: Any, options: dict[str, Any]) -> None:
    first = sweep.run_sweep(exp, _cfg(options=options, seed=3))
    second = sweep.run_sweep(exp, _cfg(options=options, seed=3))
    assert len(first.points) >= 6
    assert _counts(first) == _counts(second)


def test_counting_visits_the_sizes_in_increasing_order(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[int] = []
    real = Instruments().count

    def count(exp: Any, variant: str, size: int, *args: Any) -> Any:
        order.append(size)
        return real(exp, variant, size, *args)

    measure_with(monkeypatch, count=count)
    sweep.run_sweep(EXP, _cfg(max_size=16))
    assert order == sorted(order) and len(order) == 8 + 4


# --------------------------------------------------------------------------- limits


def test_max_memory_skips_the_sizes_predicted_not_to_fit(tmp_path: Path) -> None:
    saved4 = count_point(EXP.forward("full", 4, EXP.defaults | TINY, CPU, torch.float32), CPU)
    limit = int(2 * saved4["saved_bytes"] * 1.2)  # twice the saved bytes: the margin
    result = sweep.run_sweep(EXP, _cfg(max_memory=limit), out_dir=tmp_path)
    assert result.complete and result.config["max_memory"] == limit
    full = sorted(p["size"] for p in result.points if p["variant"] == "full")
    assert full == [1, 2, 3, 4]
    assert max(p["size"] for p in result.points if p["variant"] == "per-head") <= 4
    note = next(n for n in result.notes if n.startswith("skipped L = 6, 8 (full)"))
    assert "of saved activations, over --max-memory" in note
    assert json.loads((tmp_path / "mlp-heads" / "summary.json").read_text())["notes"] == (
        result.notes
    )
    assert any(f["variant"] == "full" and f["metric"] == "bwd_flops" for f in result.fits)
    # by default: half the memory of the device, recorded
    default = sweep.run_sweep(EXP, _cfg(max_size=2, control=False))
    assert default.config["max_memory"] == available_bytes(CPU) // 2


def test_the_time_budget_stops_the_growth(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch, count_s=1.0, time_s=1.0)
    result = sweep.run_sweep(EXP, _cfg(max_size=64, control=False, time_budget=30.0))
    # Every count takes 1 s (the first one twice: a warm-up), and a round is predicted to
    # take ROUND_COUNTS = 2 counting times (min_time 0). Before L = 32: 10 s spent, 9 · 2 s
    # owed to the rounds of the 9 points counted, and L = 32 is predicted to count in
    # 32/23 s (a counting time grows at least linearly) and time in twice that: 4.2 s.
    assert (limits.ROUND_MIN_TIMES, limits.ROUND_COUNTS) == (3, 2)
    sizes = sorted(p["size"] for p in result.points)
    assert sizes == [1, 2, 3, 4, 6, 8, 11, 16, 23]
    note = next(n for n in result.notes if n.startswith("stopped growing at L = 23: "))
    assert "the next size was predicted to take 4.2 s, 2 s of --time-budget 30 s left" in note
    assert note.endswith("(L = 32, 45, 64 not measured)")
    assert result.complete and clock.now == 10 + 9 <= 30
    assert result.config["time_budget"] == 30.0


def test_the_time_budget_stops_the_timing_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeClock(monkeypatch, count_s=0.1, time_s=10.0)  # timing far dearer than predicted
    result = sweep.run_sweep(EXP, _cfg(control=False, repeats=3, time_budget=25.0))
    assert result.complete
    assert sum(p["rounds"] for p in result.points) == 3  # 3 point-rounds fit in 25 s
    assert all(p["rounds"] == 1 for p in result.points)
    note = next(n for n in result.notes if n.startswith("--time-budget 25 s spent after 3 of"))
    assert "no further rounds were started" in note and "never timed, left out" in note


def _failing(exp: Any, error: BaseException, from_size: int, after_calls: int = 0) -> Any:
    """``exp`` whose model cannot be built at ``from_size`` and above (after
    ``after_calls`` builds there)."""
    calls = Counter()

    def build(size: int, *args: Any) -> Any:
        if size >= from_size:
            calls[size] += 1
            if calls[size] > after_calls:
                raise error
        return exp.build(size, *args)

    return dataclasses.replace(exp, build=build)


def test_out_of_memory_while_counting_stops_the_growth(tmp_path: Path) -> None:
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB\n...")
    exp = _failing(EXP, oom, 8)
    result = sweep.run_sweep(exp, _cfg(max_size=16), out_dir=tmp_path)
    assert result.complete
    failed = {"variant": "full", "size": 8, "phase": "count",
              "reason": "CUDA out of memory. Tried to allocate 2 GiB"}  # fmt: skip
    assert result.failed == [failed]
    summary = json.loads((tmp_path / "mlp-heads" / "summary.json").read_text())
    assert summary["failed_points"] == [failed] and summary["complete"] is True
    assert max(p["size"] for p in result.points) == 6
    assert sorted(p["size"] for p in result.points if p["variant"] == "full") == [1, 2, 3, 4, 6]
    assert any(n.startswith("full at L = 8 ran out of memory while counting") for n in result.notes)
    assert "L = 8, 11, 16 not measured" in result.notes[-1] or any(
        "L = 8, 11, 16 not measured" in n for n in result.notes
    )
    fits = {(f["variant"], f["metric"]) for f in result.fits}
    assert ("full", "bwd_flops") in fits and ("full", "bwd_s") in fits
    # a resumed run keeps the failure and does not try again
    again = sweep.run_sweep(exp, _cfg(max_size=16), out_dir=tmp_path, resume=True)
    assert again.failed == [failed] and _same_points(again.points, result.points)


@pytest.mark.parametrize(
    "error",
    [MemoryError(), RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory")],
    ids=["MemoryError", "RuntimeError"],
)
def test_out_of_memory_while_timing_stops_the_growth(error: BaseException) -> None:
    exp = _failing(EXP, error, 6, after_calls=1)  # counted, then fails when timed
    result = sweep.run_sweep(exp, _cfg(control=False))
    assert result.complete
    assert [(f["variant"], f["size"], f["phase"]) for f in result.failed] == [("full", 6, "time")]
    assert result.failed[0]["reason"] == (str(error) or "MemoryError")
    assert sorted(p["size"] for p in result.points) == [1, 2, 3, 4]
    assert any("while timing" in n and "not measured further" in n for n in result.notes)


def test_other_errors_are_not_taken_for_out_of_memory() -> None:
    exp = _failing(EXP, RuntimeError("mat1 and mat2 shapes cannot be multiplied"), 4)
    with pytest.raises(RuntimeError, match="shapes"):
        sweep.run_sweep(exp, _cfg(control=False))


def test_limits_are_checked_up_front() -> None:
    with pytest.raises(SweepError, match="--time-budget"):
        sweep.run_sweep(EXP, _cfg(time_budget=0.0))
    with pytest.raises(SweepError, match="--max-memory"):
        sweep.run_sweep(EXP, _cfg(max_memory=0))


# --------------------------------------------------------------------------- noise


def test_a_time_claim_says_how_many_of_its_points_are_noisy() -> None:
    result = sweep.run_sweep(EXP, _cfg(max_size=16))
    options = result.config["options"]

    def judged(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        fits, _ = fit_points(points, result.samples)
        variants = {p["variant"] for p in points}
        return {c["id"]: c for c in judge_claims(EXP, fits, variants, options, points=points)}

    quiet = [p | {"fwd_iqr_s": 0.0, "bwd_iqr_s": 0.0, "noisy": False} for p in result.points]
    calm = judged(quiet)
    assert "noisy" not in calm["P1b"]["reason"] and "noisy_points" not in calm["P1b"]
    noisy = [p | ({"bwd_iqr_s": p["bwd_s"] * 0.5, "noisy": True} if p["size"] >= 8 else {})
             for p in quiet]  # fmt: skip
    claims = judged(noisy)
    fitted = [p for p in noisy if p["variant"] == "full"
              and p["size"] >= claims["P1b"]["fit_sizes"][0]]  # fmt: skip
    n_noisy = sum(p["size"] >= 8 for p in fitted)
    assert claims["P1b"]["reason"].endswith(
        f"; {n_noisy} of {len(fitted)} points noisy (IQR/median > 10%)"
    )
    assert claims["P1b"]["noisy_points"] == n_noisy
    assert "noisy" not in claims["P1b-flops"]["reason"]  # counts are never noisy
    # without its own IQR a point's noisy mark counts
    marked = [{k: v for k, v in p.items() if k != "bwd_iqr_s"} for p in noisy]
    assert judged(marked)["P1b"]["noisy_points"] == n_noisy

