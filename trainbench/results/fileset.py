"""The three files of a sweep's run as one set.

A run's files are written one after the other (each atomically): ``measurements.csv``,
``samples.csv``, then ``summary.json``, which records the SHA-256 digest of the two
tables it was written with (``"files"``). A run stopped between two of those writes
(SIGKILL, a full disk, a power cut) leaves a table that summary.json does not vouch for;
so does a table edited afterwards. :func:`disagreements` finds both: which file, and
where the content says which, which point. Readers refuse such a set
(``trainbench report``) or measure again what disagrees (``--resume``).

Runs written before the digests existed have no ``"files"``; for them only the points'
rounds are compared (summary.json, measurements.csv and samples.csv must agree on them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

TABLES = ("measurements.csv", "samples.csv")  # written in this order, before summary.json


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest(texts: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """What summary.json records of the tables it is written with."""
    return {name: {"sha256": digest(texts[name])} for name in TABLES}


def _where(variant: Any, size: Any) -> str:
    return f"{variant} at size {size}"


def disagreements(
    folder: Path, summary: Mapping[str, Any], points: pd.DataFrame, samples: pd.DataFrame
) -> list[str]:
    """Where the run's three files are not one set, each as one line (first the points
    they disagree on, then the files summary.json does not vouch for); empty: one set."""
    found: list[str] = []
    files = summary.get("files")
    if isinstance(files, Mapping):
        for name in TABLES:
            entry = files.get(name)
            expected = entry.get("sha256") if isinstance(entry, Mapping) else None
            if not isinstance(expected, str):
                found.append(f"summary.json records no digest of {name}")
                continue
            try:
                actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
            except OSError:  # (the reader has read it: gone since)
                actual = None
            if actual != expected:
                found.append(
                    f"{name} is not the file summary.json was written with (the run was "
                    "stopped between its writes, or the file was changed since)"
                )
    unvouched = list(found)
    recorded = {
        (str(p.get("variant")), p.get("size")): p.get("rounds")
        for p in summary.get("points") or []
        if isinstance(p, Mapping)
    }
    rows = {
        (str(v), int(s)): r
        for v, s, r in zip(points["variant"], points["size"], points["rounds"], strict=True)
    }
    for key, rounds in rows.items():
        if key in recorded and recorded[key] != rounds:
            found.append(
                f"{_where(*key)}: {rounds} rounds in measurements.csv, {recorded[key]} in "
                "summary.json"
            )
        elif key not in recorded and summary.get("points") is not None:
            found.append(f"{_where(*key)}: in measurements.csv, not in summary.json")
    for key in recorded:
        if key not in rows:
            found.append(f"{_where(*key)}: in summary.json, not in measurements.csv")
    bwd = samples[samples["phase"] == "bwd"]
    on_disk = bwd.groupby(["variant", "size"])["round"].nunique().to_dict()
    for key, rounds in rows.items():
        have = int(on_disk.get(key, 0))
        if have != rounds:
            found.append(
                f"{_where(*key)}: {rounds} rounds in measurements.csv, {have} in samples.csv"
            )
    for key in on_disk:
        if (str(key[0]), int(key[1])) not in rows:
            found.append(f"{_where(*key)}: in samples.csv, not in measurements.csv")
    return found[len(unvouched):] + unvouched
