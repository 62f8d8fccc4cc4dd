"""Real processes stopped by signals: SIGINT and SIGTERM keep what was measured and
`--resume` finishes the run without measuring a point twice; SIGKILL during a write
leaves a whole file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import ctrl_c_heard, invoke

pytestmark = pytest.mark.slow  # real sweeps or real processes

REPEATS = 3
SWEEP = ["mlp-heads", "--max-depth", "32", "--width", "64", "--batch", "16", "--threads", "1",
         "--repeats", str(REPEATS), "--max-passes", str(REPEATS),
         "--min-time", "0.02"]  # fmt: skip
KEY = ["variant", "size", "phase", "round"]


def _wait_for_points(summary_file: Path, proc: subprocess.Popen, count: int) -> None:
    """Until the run has written ``count`` timed points (or has ended)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(json.loads(summary_file.read_text())["points"]) >= count:
                return
        except (OSError, ValueError, KeyError):
            pass  # not written yet
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_keeps_the_points_and_resume_finishes_the_run(
    tmp_path: Path, signum: int, code: int, word: str
) -> None:
    folder = tmp_path / "mlp-heads"
    cmd = [sys.executable, "-m", "trainbench", *SWEEP, "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_heard)  # fmt: skip
    _wait_for_points(folder / "summary.json", proc, 3)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    summary = json.loads((folder / "summary.json").read_text())
    if summary["complete"]:
        pytest.skip("the sweep finished before the signal arrived")
    assert proc.returncode == code, (out, err)
    assert "Traceback" not in out + err
    assert err.strip().splitlines() == [err.strip()]  # one line, the terminal left clean
    assert err.startswith(f"trainbench: error: {word};") and str(folder) in err
    assert summary["points"] and all(c["partial"] for c in summary["claims"])
    before = pd.read_csv(folder / "samples.csv")
    assert len(pd.read_csv(folder / "measurements.csv")) == len(summary["points"])

    result = invoke(*SWEEP, "--out", tmp_path, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] is True
    assert not any(c["partial"] for c in summary["claims"])
    assert any(n.startswith("resumed:") for n in summary["notes"])
    after = pd.read_csv(folder / "samples.csv")
    # every point has every round, each measured once ...
    blocks = after.groupby(["variant", "size", "phase"])["round"].unique()
    assert all(sorted(rounds) == list(range(REPEATS)) for rounds in blocks)
    points = pd.read_csv(folder / "measurements.csv")
    assert (points["rounds"] == REPEATS).all()
    # ... and what was on disk before the signal was kept, not measured again
    kept = after.merge(before[KEY].drop_duplicates(), on=KEY)
    assert kept.sort_values([*KEY, "sample_s"])["sample_s"].tolist() == (
        before.sort_values([*KEY, "sample_s"])["sample_s"].tolist()
    )
    assert [p.name for p in tmp_path.iterdir()] == ["mlp-heads"]  # resumed in place


WRITER = """
import json, sys
from pathlib import Path
from trainbench.results.files import atomic_write_text
path = Path(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    i += 1
    atomic_write_text(path, json.dumps({"i": i, "payload": "x" * 2_000_000, "end": i}))
"""


def test_sigkill_during_writes_leaves_a_whole_file(tmp_path: Path) -> None:
    """Killed at random moments while rewriting a 2 MB file: the file is always whole."""
    path = tmp_path / "summary.json"
    seen = set()
    for delay in (0.05, 0.13, 0.21, 0.34, 0.55):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if not path.exists():
            continue  # killed before its first rename
        data = json.loads(path.read_text())
        assert data["i"] == data["end"] and len(data["payload"]) == 2_000_000
        seen.add(data["i"])
    assert seen, "no write finished before a kill: lengthen the delays"
