"""One writer per run folder (trainbench.core.lock): in-process rules, then real processes racing
for the same --out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainbench.core.lock import LockError, busy, hold, lock_path, owner

pytestmark = pytest.mark.slow  # real sweeps or real processes

TARGETS = Path(__file__).resolve().parents[1] / "targets_for_tests.py"


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with hold(folder):
        info = json.loads(lock_path(folder).read_text(encoding="utf-8"))
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert owner(folder) == info and busy([tmp_path]) == [(folder, info)]
        with pytest.raises(LockError, match=f"being written by another trainbench run \\(pid "
                           f"{os.getpid()} on {socket.gethostname()}"):  # fmt: skip
            with hold(folder):
                pass
    assert not lock_path(folder).exists() and owner(folder) is None
    with hold(folder):  # free again
        pass


def _plant(folder: Path, **fields: object) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": None,
            "since": "2026-01-01T00:00:00", "command": "trainbench sweep"} | fields  # fmt: skip
    lock_path(folder).write_text(json.dumps(info), encoding="utf-8")


def test_a_lock_whose_process_is_gone_is_taken(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    folder = tmp_path / "run"
    _plant(folder, pid=int(dead.stdout))
    assert owner(folder) is None
    with hold(folder):
        assert json.loads(lock_path(folder).read_text(encoding="utf-8"))["pid"] == os.getpid()
    assert not lock_path(folder).exists()


def test_a_pid_reused_by_a_later_process_is_stale(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    _plant(folder, start_time="1")  # this pid, but not started at tick 1 since boot
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("needs /proc")
    assert owner(folder) is None
    with hold(folder):
        pass


def test_a_lock_from_another_host_counts_as_held(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    _plant(folder, host="elsewhere.example", pid=1)
    with pytest.raises(LockError, match=f"pid 1 on elsewhere.example.*remove {lock_path(folder)}"):
        with hold(folder):
            pass
    assert lock_path(folder).exists()  # not ours to remove


def test_a_broken_lock_file_is_taken_once_it_is_old(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    lock_path(folder).write_text("{not json", encoding="utf-8")
    old = time.time() - 60
    os.utime(lock_path(folder), (old, old))
    with hold(folder):
        assert owner(folder) is not None


def _sweep(out: Path, gate: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trainbench", "sweep", f"{TARGETS}:gated", "--sizes", "2:16",
         "--repeats", "2", "--max-passes", "2", "--min-time", "0.001", "--out", str(out), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"TRAINBENCH_TEST_GATE": str(gate)},
    )  # fmt: skip


def test_two_runs_into_the_same_out_one_refused_nothing_renamed(tmp_path: Path) -> None:
    out, gate = tmp_path / "out", tmp_path / "gate"
    first = _sweep(out, gate)  # held open at n = 8 until the gate exists
    folder = out / "gated"
    try:
        deadline = time.time() + 120
        while not lock_path(folder).exists():  # the first holds the folder
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.05)
        second = _sweep(out, gate)
        _, err2 = second.communicate(timeout=120)
        report = subprocess.run([sys.executable, "-m", "trainbench", "report", str(out),
                                 "--out", str(tmp_path / "r")], capture_output=True, text=True,
                                timeout=120)  # fmt: skip
    finally:
        gate.touch()
    _, err1 = first.communicate(timeout=300)
    assert second.returncode == 2, err2
    lines = err2.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainbench: error:"), err2
    assert f"pid {first.pid} on " in lines[0] and str(folder) in lines[0]
    assert first.returncode == 0, err1
    assert "was kept as" not in err1 + err2
    assert sorted(p.name for p in out.iterdir()) == ["gated"]  # no renamed folder, no lock
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["complete"] is True and {p["size"] for p in summary["points"]} >= {8, 16}
    # the report taken while the first was held open said so, and reported what it had
    assert "is still being written (pid" in report.stderr, report.stderr
    assert report.returncode in (0, 2), report.stderr


def test_verify_refuses_a_results_folder_another_verify_holds(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    _plant(out / "verify.json", host="elsewhere.example", pid=1)
    done = subprocess.run([sys.executable, "-m", "trainbench", "verify", "--quick", "--only",
                           "P1b-flops", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "being written by another trainbench run (pid 1 on elsewhere.example" in done.stderr
    assert [p.name for p in out.rglob("*") if p.is_file()] == [".verify.json.lock"]
