"""A run's three files as one set (trainbench.results.fileset): a run stopped between two of its
writes is refused by `report`, naming the file and the point, and `--resume` makes it one
set again, keeping every sample on disk and measuring none twice. First stops at chosen
writes (in process), then SIGKILL at seeded random moments (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import targets_for_tests as T
from cli_helpers import assert_one_line_error, invoke

import trainbench
import trainbench.results.files
from trainbench.core.lock import lock_path
from trainbench.results.reading import read_run
from trainbench.results.schema import ResultsError

pytestmark = pytest.mark.slow  # real sweeps or real processes

SIZES = [1, 2, 4, 8, 16, 32]
COMMON = {"repeats": 2, "max_passes": 2, "min_time": 0.002, "threads": 1, "reference": "64"}
WRITES = 3  # files per save: measurements.csv, samples.csv, summary.json


class _Killed(BaseException):
    """The process ending at a write, as SIGKILL would end it (nothing runs after it)."""


def _sweep(out: Path, resume: bool = False) -> None:
    trainbench.sweep(T.chain, SIZES, out=out, resume=resume, **COMMON)  # type: ignore[arg-type]


def _stop_at(monkeypatch: pytest.MonkeyPatch, write: int) -> None:
    """The run ends just before its ``write``-th file write (counted from 1)."""
    real, done = trainbench.results.files.atomic_write_text, [0]

    def counted(path: Path, text: str) -> None:
        done[0] += 1
        if done[0] == write:
            raise _Killed
        real(path, text)

    monkeypatch.setattr(trainbench.results.files, "atomic_write_text", counted)


def _samples(folder: Path) -> dict[tuple[str, int, str, int], list[str]]:
    """Each (variant, size, phase, pass) of samples.csv and its samples, as written."""
    table = pd.read_csv(folder / "samples.csv", dtype=str)
    out: dict[tuple[str, int, str, int], list[str]] = {}
    for v, s, ph, r, t in zip(table["variant"], table["size"], table["phase"], table["round"],
                              table["sample_s"], strict=True):  # fmt: skip
        out.setdefault((v, int(s), ph, int(r)), []).append(t)
    return out


def assert_one_set_nothing_lost(before: Path | None, after: Path) -> None:
    """``after`` (the resumed run) is complete and one set; every pass of a point that
    ``before`` (what the stop left) has on disk is in it with the same samples."""
    summary, points, _ = read_run(after)  # refuses a set that disagrees
    assert summary["complete"] is True
    assert sorted(points["size"]) == SIZES
    assert not lock_path(after).exists()
    if before is None or not (before / "samples.csv").exists():
        return
    kept, now = _samples(before), _samples(after)
    for key, values in kept.items():
        assert now.get(key) == values, f"{key}: {values} on disk before, {now.get(key)} after"


@pytest.mark.parametrize("write", [2 * WRITES + 2, 2 * WRITES + 3, 3 * WRITES + 1])
def test_a_run_stopped_between_its_writes(
    write: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after the measurements.csv (or also the samples.csv) of its third save (after
    its second pass): the tables are newer than summary.json, and `report` names the file
    and the point. Stopped between two saves: one set, incomplete. `--resume` finishes both."""
    _stop_at(monkeypatch, write)
    with pytest.raises(_Killed):
        _sweep(tmp_path)
    monkeypatch.undo()
    folder = tmp_path / "chain"
    if write == 3 * WRITES + 1:
        assert read_run(folder)[0]["complete"] is False
        _sweep(tmp_path, resume=True)
        assert_one_set_nothing_lost(None, folder)
        return
    with pytest.raises(ResultsError, match=r"not one set: model at size 1: \d rounds in "
                       r"measurements.csv, \d in (summary.json|samples.csv) \(and \d+ more\); "
                       r"`--resume`"):  # fmt: skip
        read_run(folder)
    r = invoke("report", folder, "--out", tmp_path / "report")
    assert_one_line_error(r.exit_code, r.stdout, r.stderr, ("not one set", "measurements.csv"))
    before = tmp_path / "before"
    shutil.copytree(folder, before)
    _sweep(tmp_path, resume=True)
    assert_one_set_nothing_lost(before, folder)
    notes = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["notes"]
    assert any(n.startswith("the files of the run disagreed: ") for n in notes)


def test_a_table_changed_after_the_run_is_named(tmp_path: Path) -> None:
    _sweep(tmp_path)
    folder = tmp_path / "chain"
    read_run(folder)  # one set as written
    path = folder / "measurements.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",False,", ",True,", 1),
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(ResultsError, match="measurements.csv is not the file summary.json was "
                       "written with"):  # fmt: skip
        read_run(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    del summary["files"]  # a run written before the digests: only the rounds are compared
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    read_run(folder)


KILL_TRIALS = 20


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    """KILL_TRIALS seeded trials in two processes of half each (kill_trials.py): every trial
    ends with one complete set, every pass on disk at the kill kept as it was."""
    script = Path(__file__).with_name("kill_trials.py")
    half = KILL_TRIALS // 2
    drivers = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(first),
                                 str(half)], stdout=subprocess.PIPE, text=True)
               for first in (0, half)]  # fmt: skip
    trials = []
    for d in drivers:
        out, _ = d.communicate(timeout=300)
        assert d.returncode == 0
        trials += [json.loads(line) for line in out.splitlines()]
    assert len(trials) == KILL_TRIALS
    disagreed = 0
    for t in trials:
        assert t["code"] == 0, t
        before = tmp_path / f"trial-{t['seed']}-before"
        if t["resumed"]:
            try:
                read_run(before)
            except ResultsError:
                disagreed += 1
        assert_one_set_nothing_lost(before if t["resumed"] else None,
                                    tmp_path / f"trial-{t['seed']}" / "chain")  # fmt: skip
    print(
        f"{KILL_TRIALS} trials: {sum(t['resumed'] for t in trials)} resumed, "
        f"{disagreed} left files that disagreed, "
        f"{sum(t['finished_first'] for t in trials)} finished before the kill"
    )


DISK_SCRIPT = """
set -u
mount -t tmpfs -o size={size}k tmpfs "$DISK"
python -m trainbench {args} --out "$DISK" > "$LOG/first.out" 2> "$LOG/first.err"
echo $? > "$LOG/first.rc"
cp -r "$DISK/chain" "$LOG/before"
mount -o remount,size=64m "$DISK"
resume=""; [ -e "$DISK/chain/summary.json" ] && resume="--resume"
python -m trainbench {args} --out "$DISK" $resume > "$LOG/second.out" 2> "$LOG/second.err"
echo $? > "$LOG/second.rc"
cp -r "$DISK/chain" "$LOG/after"
"""


def _can_mount() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
                              capture_output=True, timeout=30).returncode == 0  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_mount(), reason="needs a private tmpfs mount (unshare -rm)")
def test_a_full_disk_is_one_line_and_resume_finishes_once_there_is_room(tmp_path: Path) -> None:
    """A 20 KiB disk fills during the run: one line, exit 1, no traceback; what is on it is
    one set or one the reader names; with room again, --resume ends with one complete set
    that keeps every pass that was on the disk."""
    args = (f"sweep {T.spec('chain')} --sizes {','.join(map(str, SIZES))} --repeats 2 "
            "--max-passes 2 --min-time 0.002 --threads 1 --reference 64 --quiet")  # fmt: skip
    disk, log = tmp_path / "disk", tmp_path / "log"
    disk.mkdir()
    log.mkdir()
    subprocess.run(["unshare", "-rm", "sh", "-c", DISK_SCRIPT.format(size=20, args=args)],
                   env=os.environ | {"DISK": str(disk), "LOG": str(log)}, check=True,
                   timeout=300)  # fmt: skip
    err = (log / "first.err").read_text()
    assert (log / "first.rc").read_text().strip() == "1", err
    assert err.startswith("trainbench: error: cannot write the run's files in ") and (
        "(No space left on device): what is there is what was saved before" in err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (log / "second.rc").read_text().strip() == "0", (log / "second.err").read_text()
    assert_one_set_nothing_lost(log / "before", log / "after")
