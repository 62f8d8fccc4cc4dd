"""One writer per run folder: a lock file beside the folder, taken before anything in it
is read for a resume, renamed or written, and removed when the run ends.

The lock is ``.<name>.lock`` next to ``<name>`` (so that moving an earlier run aside
does not move the lock with it). It is created complete and exclusively: its content
(pid, host, the process's start time, when, the command) is written to a private file
first and hard-linked into place, which fails where a lock is already there. A lock whose
process is gone (same host, no such pid, or a pid now used by a process started later) is
stale: it is renamed away (only one taker can) and taken afresh. A lock from another host
cannot be checked and counts as held; the message names the file to remove.
No torch in here.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainbench.core.settings import SweepError


class LockError(SweepError):
    """The run folder is being written by another run; the message (one line) names it."""


def lock_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.lock")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the fields after the command name (which may hold spaces and parentheses)
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(info: dict[str, Any]) -> bool:
    """Whether the lock's process may still be running (True where it cannot be told)."""
    if info.get("host") != socket.gethostname():
        return True
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    started = info.get("start_time")
    now = _start_time(pid)
    return started is None or now is None or started == now


def owner(folder: Path) -> dict[str, Any] | None:
    """The lock's content where a live run holds ``folder``, else None."""
    info = _read(lock_path(folder))
    return info if info is not None and _alive(info) else None


def busy(folders: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """The folders among ``folders`` and the runs in them (one level down; a verify's
    verify.json too) that a live run holds, with the lock's content."""
    out = []
    for folder in folders:
        folder = Path(folder)
        candidates = [folder]
        try:  # the locks in it: ".<name>.lock" holds <name>
            locks = [c.name for c in folder.iterdir()]
            candidates += sorted(folder / n[1:-5] for n in locks
                                 if n.startswith(".") and n.endswith(".lock"))  # fmt: skip
        except OSError:
            pass
        for c in candidates:
            info = owner(c)
            if info is not None:
                out.append((c, info))
    return out


def describe(info: dict[str, Any]) -> str:
    when = info.get("since")
    return (f"pid {info.get('pid')} on {info.get('host')}"
            + (f", since {when}" if when else ""))  # fmt: skip


def _break_stale(path: Path) -> None:
    """Take a stale lock out of the way; where another taker did it first, nothing."""
    aside = path.with_name(f"{path.name}.stale-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        aside.unlink()
    except OSError:
        pass


def _take(folder: Path) -> dict[str, Any]:
    path = lock_path(folder)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start_time": _start_time(os.getpid()),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    try:
        for _ in range(5):
            try:
                os.link(tmp, path)
                return info
            except FileExistsError:
                held = _read(path)
                if held is None:  # (a lock is created complete: unreadable is broken)
                    age = time.time() - _mtime(path)
                    if age < 5.0:  # or in the middle of being broken by another taker
                        time.sleep(0.05)
                        continue
                elif _alive(held):
                    raise LockError(
                        f"{folder} is being written by another trainbench run "
                        f"({describe(held)}: {held.get('command') or '?'}); wait for it to "
                        f"end or choose another --out (if that run is gone, remove {path})"
                    ) from None
                _break_stale(path)
            except OSError:  # no hard links here: an exclusive create instead
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(json.dumps(info))
                return info
        raise LockError(f"{folder}: could not take its lock {path}; remove it if no run is writing")
    finally:
        tmp.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextmanager
def hold(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs (its parent is created where missing).
    LockError where a live run holds it, or where the lock cannot be written."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        info = _take(folder)
    except OSError as err:
        raise LockError(f"--out: cannot take the lock of {folder}: {err.strerror or err}") from None
    try:
        yield
    finally:
        path = lock_path(folder)
        if _read(path) == info:  # (still ours)
            path.unlink(missing_ok=True)
