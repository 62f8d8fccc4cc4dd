"""--resume of a run whose files disagree, or that another machine measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import targets_for_tests as T
from fake_clock import FakeClock

import trainbench
from trainbench.core.settings import SweepError

pytestmark = pytest.mark.slow  # real sweeps or real processes

SIZES = [2, 4, 8, 16, 32, 64]
COMMON = {"repeats": 2, "max_passes": 3, "min_time": 0.001, "threads": 1}


def test_a_point_samples_csv_lost_is_timed_again_not_dropped(tmp_path: Path) -> None:
    trainbench.sweep(T.chain, SIZES, out=tmp_path, **COMMON)  # type: ignore[arg-type]
    samples = tmp_path / "chain" / "samples.csv"
    lines = samples.read_text(encoding="utf-8").splitlines(keepends=True)
    samples.write_text("".join(x for x in lines if not x.startswith("model,64,bwd")),
                       encoding="utf-8")  # fmt: skip
    again = trainbench.sweep(T.chain, SIZES, out=tmp_path, resume=True,  # type: ignore[arg-type]
                             **COMMON)  # fmt: skip
    assert sorted(again.points["size"]) == SIZES  # the point is still there
    assert again.points.set_index("size").loc[64, "rounds"] >= 1
    assert any(re.match(r"the files of the run disagreed: model at n = 64 has [23] rounds in "
                        r"measurements.csv, 0 in samples.csv; timed again", n)
               for n in again.run.notes)  # fmt: skip
    written = json.loads((tmp_path / "chain" / "summary.json").read_text(encoding="utf-8"))
    assert sorted(p["size"] for p in written["points"]) == SIZES and written["complete"]


@pytest.mark.parametrize(("field", "value"), [("torch_version", "1.0.0"),
                                              ("cpu_model", "Some Other CPU")])  # fmt: skip
def test_a_run_from_another_machine_is_not_resumed(
    field: str, value: str, tmp_path: Path
) -> None:
    trainbench.sweep(T.chain, SIZES, out=tmp_path, **COMMON)  # type: ignore[arg-type]
    path = tmp_path / "chain" / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["environment"][field] = value
    summary["complete"] = False
    path.write_text(json.dumps(summary), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in (tmp_path / "chain").iterdir()}
    with pytest.raises(SweepError, match=f"was measured with {field} = {value}, here it is "):
        trainbench.sweep(T.chain, SIZES, out=tmp_path, resume=True,  # type: ignore[arg-type]
                         **COMMON)  # fmt: skip
    assert {p.name: p.read_bytes() for p in (tmp_path / "chain").iterdir()} == before


def test_a_resume_with_a_larger_budget_grows_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    with monkeypatch.context() as m:  # a clock the machine's load cannot move
        FakeClock(m, count_s=0.05, time_s=0.05)
        first = trainbench.sweep(T.chain, sizes, out=tmp_path, time_budget=0.3,  # type: ignore[arg-type]
                                 **COMMON)  # fmt: skip
    measured = set(first.points["size"])
    assert measured and max(measured) < 1024  # the budget stopped the growth
    grown = trainbench.sweep(T.chain, sizes, out=tmp_path, resume=True,  # type: ignore[arg-type]
                             **COMMON)  # fmt: skip
    assert set(grown.points["size"]) == set(sizes)
    assert grown.run.config["time_budget"] is None
    assert any(n.startswith("resumed with --time-budget none (the run had 0.3 s): the ")
               for n in grown.run.notes)  # fmt: skip
    # the same budget again: nothing more to measure, nothing measured again
    samples = (tmp_path / "chain" / "samples.csv").read_text(encoding="utf-8")
    trainbench.sweep(T.chain, sizes, out=tmp_path, resume=True, **COMMON)  # type: ignore[arg-type]
    assert (tmp_path / "chain" / "samples.csv").read_text(encoding="utf-8") == samples
