"""A run read back: :func:`read_run` (a sweep's three files), :func:`read_summary` (the
summary of any run), :func:`read_json`. Each refuses, with one line naming the file
(:class:`trainbench.results.schema.ResultsError`), anything that is not one."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainbench.core.settings import first_line
from trainbench.core.vocabulary import SCHEDULE_COLUMNS, SPAN_METRICS, TIME_METRICS
from trainbench.results import fileset
from trainbench.results.schema import (
    FORMAT_VERSION,
    POINT_COLUMNS,
    SAMPLE_COLUMNS,
    ResultsError,
    check_fields,
)

# columns that must hold a number >= 0 in every row ...
_MEASURED = (
    "fwd_s", "fwd_iqr_s", "bwd_s", "bwd_iqr_s", "graph_nodes", "graph_depth", "saved_bytes",
    "rounds", "fwd_runs_per_sample", "bwd_runs_per_sample",
)  # fmt: skip
# (the columns of a point's times may be empty where it was counted and not timed yet:
# 0 rounds) ...
_UNTIMED_EMPTY = ("fwd_s", "fwd_iqr_s", "bwd_s", "bwd_iqr_s", "fwd_runs_per_sample",
                  "bwd_runs_per_sample")  # fmt: skip
# ... and those that may be empty (not counted: FLOPs of a fused kernel, peak bytes on CPU)
_OPTIONAL = ("fwd_flops", "bwd_flops", "peak_bytes", "gflops", "efficiency")
# counts added after the first runs: absent (or empty) in older files
_LATER = ("param_bytes", "working_set_bytes", *SPAN_METRICS, *SCHEDULE_COLUMNS)


def _read_text(path: Path) -> str:
    try:
        if not path.exists():
            raise ResultsError(f"{path}: missing")
        data = path.read_bytes()
    except OSError as err:
        raise ResultsError(f"{err.filename or path}: cannot read ({err.strerror or err})") from None
    if not data.strip():
        raise ResultsError(f"{path}: empty")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path}: not UTF-8 text (byte {err.start})") from None


def read_json(path: Path) -> Any:
    """The JSON value in the file ``path``; :class:`ResultsError` (one line naming the file)
    for a missing, unreadable or empty file, text that is not UTF-8, and invalid JSON."""
    path = Path(path)
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise ResultsError(f"{path}: invalid JSON (nested too deeply)") from None


def read_summary(folder: Path, sweep: bool = True) -> dict[str, Any]:
    """The summary.json of the run in ``folder``, checked.

    Refuses with :class:`ResultsError` (one line naming the file and the problem)
    what :func:`read_json` refuses, and a summary that is not a JSON object, has no
    or another ``format_version``, no ``experiment`` (text) or ``config`` (object),
    ``claims`` that are not a list of objects with a text ``id``, ``fits`` that are
    not a list, or an ``environment`` that is not an object (each may be absent or
    null). With ``sweep`` (the default) it must also be a sweep's, with a ``points`` list.
    """
    path = Path(folder) / "summary.json"
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise ResultsError(f"{path}: not a JSON object")
    if "format_version" not in summary:
        raise ResultsError(f"{path}: no format_version: not a trainbench results file")
    version = summary["format_version"]
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise ResultsError(
            f"{path}: written by another version of trainbench "
            f"(format {json.dumps(version)}, this one reads {FORMAT_VERSION})"
        )
    kind = "sweep summary" if sweep else "summary"
    if not isinstance(summary.get("experiment"), str) or not isinstance(
        summary.get("config"), dict
    ):
        raise ResultsError(f'{path}: not a trainbench {kind} (no "experiment" or "config")')
    for key, expected in (("claims", list), ("fits", list), ("environment", dict)):
        if summary.get(key) is not None and not isinstance(summary[key], expected):
            what = "a list" if expected is list else "an object"
            raise ResultsError(f"{path}: {key} is not {what}")
    for i, claim in enumerate(summary.get("claims") or []):
        if not isinstance(claim, dict) or not isinstance(claim.get("id"), str):
            raise ResultsError(f'{path}: claim {i + 1} is not an object with a text "id"')
    check_fields(path, summary)
    if sweep and not isinstance(summary.get("points"), list):
        raise ResultsError(
            f'{path}: not a trainbench sweep summary (no "points"; a {summary["experiment"]} run?)'
        )
    return summary


def _read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    text = _read_text(path)
    try:
        table = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""], dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        detail = first_line(err)
        raise ResultsError(f"{path}: not a CSV table ({detail})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ResultsError(f"{path}: missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
    return table


def _numbers(
    path: Path,
    table: pd.DataFrame,
    column: str,
    *,
    optional: bool | Sequence[bool] = False,
    whole: bool = False,
    least: float = 0.0,
    positive: bool = False,
) -> pd.Series:
    """``table[column]`` as numbers, refusing text, NaN (unless ``optional``: empty is
    allowed; a list: in the rows where it is true), non-integers (``whole``), values below
    ``least`` and (``positive``) zero."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce")
    optional_at = [optional] * len(raw) if isinstance(optional, bool) else list(optional)
    for i, (text, value) in enumerate(zip(raw, values, strict=True)):
        line, optional = i + 2, optional_at[i]  # (the header is line 1)
        if pd.isna(text):
            if optional:
                continue
            raise ResultsError(f"{path}: line {line}: {column} is empty")
        if pd.isna(value):
            what = "NaN" if str(text).strip().lower() == "nan" else f"{str(text)!r}, not a number"
            if optional and what == "NaN":
                continue
            raise ResultsError(f"{path}: line {line}: {column} is {what}")
        if not math.isfinite(value):
            raise ResultsError(f"{path}: line {line}: {column} is {text}")
        if whole and value != int(value):
            raise ResultsError(f"{path}: line {line}: {column} {text} is not a whole number")
        if value < least:
            raise ResultsError(
                f"{path}: line {line}: {column} is {text}"
                + (" (negative)" if value < 0 else f" (below {least:g})")
            )
        if positive and value == 0:
            raise ResultsError(f"{path}: line {line}: {column} is {text} (zero: not a measurement)")
    return values


def _text_column(path: Path, table: pd.DataFrame, column: str, allowed: Sequence[str] = ()) -> None:
    for i, value in enumerate(table[column]):
        if pd.isna(value) or not str(value).strip():
            raise ResultsError(f"{path}: line {i + 2}: {column} is empty")
        if allowed and value not in allowed:
            raise ResultsError(
                f"{path}: line {i + 2}: {column} is {value!r} (expected {' or '.join(allowed)})"
            )


def read_run(
    folder: Path, *, as_set: bool = True
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """A sweep's folder read back: (summary, measurements, samples).

    Refuses with :class:`ResultsError` (one line naming the file and the problem)
    a missing folder or file, an empty file, text that is not UTF-8, invalid JSON,
    a summary that :func:`read_summary` refuses or that is not of a sweep, a table
    without its columns, sizes, times or counts that are not numbers >= 0 (FLOPs and
    peak bytes may be empty: not counted; a point's times where it has 0 rounds: counted,
    not timed yet), and a median time (fwd_s, bwd_s) of zero.
    With ``as_set`` (the default) it also refuses three files that are not one set
    (:func:`trainbench.results.fileset.disagreements`). Numeric columns come back as numbers.
    """
    folder = Path(folder)
    try:
        if not folder.is_dir():
            raise ResultsError(
                f"{folder}: " + ("not a folder" if folder.exists() else "no such folder")
            )
        summary = read_summary(folder)
        path = folder / "measurements.csv"
        points = _read_table(path, [c for c in POINT_COLUMNS if c not in _LATER])
        for column in _LATER:
            if column not in points.columns:
                points[column] = None
        _text_column(path, points, "variant")
        points["rounds"] = _numbers(path, points, "rounds", whole=True)
        timed = points["rounds"] > 0
        for column in POINT_COLUMNS:
            if column == "size":
                points[column] = _numbers(path, points, column, whole=True, least=1).astype(int)
            elif column in _UNTIMED_EMPTY:  # empty in a row counted but not timed yet
                whole, positive = not column.endswith("_s"), column in TIME_METRICS
                points[column] = _numbers(path, points, column, whole=whole, positive=positive,
                                          optional=list(~timed))  # fmt: skip
            elif column in _MEASURED and column != "rounds":
                whole, positive = not column.endswith("_s"), column in TIME_METRICS
                points[column] = _numbers(path, points, column, whole=whole, positive=positive)
            elif column in _OPTIONAL:
                points[column] = _numbers(path, points, column, optional=True)
            elif column in _LATER:
                points[column] = _numbers(path, points, column, optional=True, whole=True)
        points["noisy"] = points["noisy"].astype(str).str.lower() == "true"
        for column in ("compile_s", "eager_s", "speedup"):
            if column in points.columns:
                points[column] = _numbers(path, points, column, optional=True)
        if "compiled" in points.columns:
            points["compiled"] = points["compiled"].astype(str).str.lower() == "true"
        duplicated = points.duplicated(["variant", "size"])
        if duplicated.any():
            i = int(duplicated.to_numpy().nonzero()[0][0])
            row = points.iloc[i]
            raise ResultsError(
                f"{path}: line {i + 2}: a second row for {row['variant']} at size {row['size']}"
            )
        path = folder / "samples.csv"
        samples = _read_table(path, SAMPLE_COLUMNS)
        _text_column(path, samples, "variant")
        _text_column(path, samples, "phase", ("fwd", "bwd"))
        samples["size"] = _numbers(path, samples, "size", whole=True, least=1).astype(int)
        samples["round"] = _numbers(path, samples, "round", whole=True).astype(int)
        samples["sample_s"] = _numbers(path, samples, "sample_s")
        found = fileset.disagreements(folder, summary, points, samples) if as_set else []
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise ResultsError(
                f"{folder}: the run's files are not one set: {found[0]}{more}; "
                "`--resume` measures again what disagrees"
            )
    except OSError as err:
        where = err.filename or folder
        raise ResultsError(f"{where}: cannot read ({err.strerror or err})") from None
    return summary, points, samples
