"""summary.json with fields of the wrong type: one line naming the file (and the field
where the checks know it), exit 2, never a traceback. 200 seeded mutations of the
committed reference runs (a sweep and a trainability run) through `trainbench report`."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import invoke

import trainbench.report.pages

RESULTS = Path(__file__).resolve().parents[2] / "results"
WRONG: list[Any] = ["x", "", -1, 0, 1e300, True, None, [], [1, "a"], {}, {"a": 1}, "NaN"]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the JSON tree (not the points table, which the CSV checks)."""
    if path[:1] == ("points",):
        return []
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += _leaves(v, (*path, i))
    return out


def _set(tree: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        tree = tree[step]
    tree[path[-1]] = value


@pytest.mark.parametrize("run", ["mlp-heads", "trainability"])
def test_mutated_summaries_are_one_line_or_a_report(
    run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the text of the report for every mutation; its plots (seconds) for the first
    drawn = trainbench.report.pages._render
    monkeypatch.setattr(trainbench.report.pages, "_render", lambda *a, **k: ([], []))
    original = json.loads((RESULTS / run / "summary.json").read_text(encoding="utf-8"))
    places = _leaves(original)
    rng = random.Random(run)
    outcomes = {"refused": 0, "reported": 0}
    folder = tmp_path / run
    shutil.copytree(RESULTS / run, folder)  # (only its summary.json changes between trials)
    for trial in range(100):
        summary = json.loads(json.dumps(original))
        place, value = rng.choice(places), rng.choice(WRONG)
        _set(summary, place, value)
        (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
        if trial < 1:
            monkeypatch.setattr(trainbench.report.pages, "_render", drawn)
        result = invoke("report", folder, "--out", tmp_path / f"r{trial}")
        if trial < 1:
            monkeypatch.setattr(trainbench.report.pages, "_render", lambda *a, **k: ([], []))
        what = f"{place} = {value!r}: {result.exit_code} {result.stdout} {result.stderr}"
        assert result.exception is None or isinstance(result.exception, SystemExit), what
        assert "Traceback" not in result.stdout + result.stderr, what
        if result.exit_code == 0:
            outcomes["reported"] += 1
            continue
        outcomes["refused"] += 1
        assert result.exit_code == 2, what
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trainbench: error: "), what
        assert str(folder) in lines[0], what
    assert outcomes["refused"] >= 20 and outcomes["reported"] >= 5, outcomes


def test_a_wrong_type_is_named_with_its_field(tmp_path: Path) -> None:
    folder = tmp_path / "mlp-heads"
    shutil.copytree(RESULTS / "mlp-heads", folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary["claims"][0]["exponent"] = "1.0"
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    result = invoke("report", folder, "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert result.stderr == (f"trainbench: error: {folder / 'summary.json'}: claims[0].exponent "
                             'is "1.0" (expected a number or null)\n')  # fmt: skip
