"""The results format: one folder per experiment run.

    DIR/<experiment>/measurements.csv   tidy: one row per (variant, size)
    DIR/<experiment>/samples.csv        raw timing samples: variant, size, phase, sample_s
    DIR/<experiment>/summary.json       experiment, config, environment, points, fits, claims

Every file carries ``format_version``. Files are replaced atomically (written
to a temporary file in the same folder, fsynced, renamed), so a crash leaves
either the old file or the new one. A new run never overwrites an earlier one:
:func:`keep_earlier_run` moves it aside first. Writing a run is here; reading it back in
:mod:`trainbench.results.reading`, its schema in :mod:`trainbench.results.schema`, its
environment record in :mod:`trainbench.results.environment`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainbench.results import fileset
from trainbench.results.schema import COMPILE_COLUMNS, COUNT_NOTES, POINT_COLUMNS


@functools.cache
def _file_mode() -> int:
    """What open() would give a new file; mkstemp alone gives 0600. (The umask can only
    be read by setting it, so it is read once, at the first write.)"""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and inf become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _clean(value.item())
    return value


def to_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(_clean(summary), indent=2, ensure_ascii=False) + "\n"


def write_run(
    folder: Path,
    summary: Mapping[str, Any],
    points: Sequence[Mapping[str, Any]],
    samples: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Write the three files of a run (each atomically), summary.json last with the
    digests of the two tables (see :mod:`trainbench.results.fileset`); return that manifest."""
    extra = [c for c in COMPILE_COLUMNS if any(c in p for p in points)]
    extra += [c for c in COUNT_NOTES if any(p.get(c) for p in points)]
    table = pd.DataFrame(list(points), columns=[*POINT_COLUMNS, *extra])
    raw = pd.DataFrame(
        list(samples), columns=["variant", "size", "phase", "round", "sample_s", "format_version"]
    )
    texts = {"measurements.csv": table.to_csv(index=False), "samples.csv": raw.to_csv(index=False)}
    for name in fileset.TABLES:
        atomic_write_text(folder / name, texts[name])
    files = fileset.manifest(texts)
    atomic_write_text(folder / "summary.json", to_json(dict(summary, files=files)))
    return files



# --------------------------------------------------------------------------- earlier runs

STAMP_FORMAT = "%Y-%m-%dT%H-%M-%S"  # a timestamp that is also a portable file name


def _run_stamp(folder: Path) -> str:
    """When the run in ``folder`` was taken: its summary's timestamp, else the folder's mtime."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        when = _dt.datetime.fromisoformat(summary["environment"]["timestamp"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        when = _dt.datetime.fromtimestamp(folder.stat().st_mtime, tz=_dt.timezone.utc)
    return when.strftime(STAMP_FORMAT)


def keep_earlier_run(folder: Path) -> Path | None:
    """Move an earlier run out of the way of a new one.

    If ``folder`` holds a run (its summary.json exists), rename the folder to the
    sibling ``<name>.<timestamp>`` (the run's own timestamp, else the folder's
    mtime, as 2026-11-25T21-45-26; ``-2``, ``-3``, ... where that name is taken)
    and return the new path; otherwise return None. OSError: the rename failed.
    """
    if not (folder / "summary.json").exists():
        return None
    stamp = _run_stamp(folder)
    attempt = 1
    while True:
        target = folder.with_name(f"{folder.name}.{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        attempt += 1
        if target.exists() or target.is_symlink():
            continue
        try:
            folder.rename(target)
        except OSError as err:
            if target.exists():  # taken in the meantime: try the next name
                continue
            raise err
        return target
