"""The results format: one folder per experiment run.

    DIR/<experiment>/measurements.csv   tidy: one row per (variant, size)
    DIR/<experiment>/samples.csv        raw timing samples: variant, size, phase, sample_s
    DIR/<experiment>/summary.json       experiment, config, environment, points, fits, claims

Every file carries ``format_version``. Files are replaced atomically (written
to a temporary file in the same folder, fsynced, renamed), so a crash leaves
either the old file or the new one. A new run never overwrites an earlier one:
:func:`keep_earlier_run` moves it aside first. :func:`read_run` reads a sweep's run
back (:func:`read_summary` the summary of any run) and refuses, with one line naming
the file, anything that is not one.
"""

from __future__ import annotations

import datetime as _dt
import functools
import io
import json
import math
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainbench.core.settings import first_line
from trainbench.core.vocabulary import SCHEDULE_COLUMNS, SPAN_METRICS, TIME_METRICS
from trainbench.measure.caches import read_caches
from trainbench.results import fileset

FORMAT_VERSION = 1

POINT_COLUMNS = (
    "variant",
    "size",
    "fwd_s",
    "fwd_iqr_s",
    "bwd_s",
    "bwd_iqr_s",
    "fwd_flops",
    "bwd_flops",
    "graph_nodes",
    "graph_depth",
    "saved_bytes",
    "param_bytes",
    "working_set_bytes",
    "peak_bytes",
    *SPAN_METRICS,
    *SCHEDULE_COLUMNS,
    "gflops",
    "efficiency",
    "noisy",
    "rounds",
    "fwd_runs_per_sample",
    "bwd_runs_per_sample",
    "format_version",
)


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


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(
    *, device: Any, dtype: Any, threads: int, seed: int, version: str
) -> dict[str, Any]:
    """What a reader needs to know about where and how the numbers were taken."""
    # torch is imported here, where a run is written, not at the top: reading a run (a
    # report, a comparison) loads no torch.
    import torch

    dev = torch.device(device)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model()
    env: dict[str, Any] = {
        "trainbench_version": version,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": str(dev),
        "device_name": device_name,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "dtype": str(dtype).replace("torch.", ""),
        "seed": seed,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if dev.type == "cuda":
        env["cuda_version"] = torch.version.cuda
        env["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
    l2 = None
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        l2 = getattr(props, "L2_cache_size", None)
    env["caches"] = read_caches(dev.type, l2)
    return env


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


# --------------------------------------------------------------------------- reading back


class ResultsError(ValueError):
    """A results folder that cannot be read back; the message (one line) names the file."""


# --compile runs add these (after the others): whether the point compiled, its compile
# time (first forward and backward), its eager forward+backward time and the speed-up.
# A column written only where some point has it: the ops that did arithmetic with no FLOP
# formula ("aten._foo × 4"), which leave that point's FLOPs a lower bound.
COUNT_NOTES = ("undercounted",)
COMPILE_COLUMNS = ("compiled", "compile_s", "eager_s", "speedup", "compile_note")
SAMPLE_COLUMNS = ("variant", "size", "phase", "round", "sample_s")
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


# The type of every field of summary.json that a reader uses, by section: "num" (a number,
# not a boolean), "str", "bool", "list", "obj"; "?" after it: null allowed. Fields not
# named here are not checked (a newer writer may add some).
_NUM, _STR, _BOOL, _LIST, _OBJ = "num", "str", "bool", "list", "obj"
FIELDS: dict[str, dict[str, str]] = {
    "top": {"experiment": _STR, "run": _STR + "?", "complete": _BOOL + "?", "notes": _LIST + "?",
            "failed_points": _LIST + "?", "schedule": _OBJ + "?", "baseline": _OBJ + "?",
            "points": _LIST + "?", "gradient_signal": _LIST + "?", "training": _LIST + "?",
            "files": _OBJ + "?", "modules": _LIST + "?", "gates": _LIST + "?"},
    "claims": {"id": _STR, "problem": _STR + "?", "statement": _STR + "?", "variant": _STR + "?",
               "metric": _STR + "?", "metrics": _LIST + "?", "expected": _STR + "?",
               "expected_exponent": _NUM + "?", "expected_class": _STR + "?",
               "tolerance": _NUM + "?", "control": _STR + "?", "is_control": _BOOL + "?",
               "expect": _STR + "?", "verdict": _STR, "reason": _STR + "?",
               "partial": _BOOL + "?", "exponent": _NUM + "?", "ci_low": _NUM + "?",
               "ci_high": _NUM + "?", "best_class": _STR + "?", "by_degree": _BOOL + "?",
               "poly_degree": _NUM + "?", "control_exponent": _NUM + "?",
               "poly_coefficients": _LIST + "?",
               "crossings": _LIST + "?", "fit_sizes": _LIST + "?", "noisy_points": _NUM + "?",
               "baseline": _STR + "?", "ratio": _NUM + "?", "baseline_ratio": _NUM + "?",
               "final_loss": _LIST + "?", "baseline_final_loss": _LIST + "?",
               "loss_metric": _STR + "?", "depth": _NUM + "?", "judged_on": _STR + "?",
               "activation": _STR + "?", "train_depth": _NUM + "?", "gate": _OBJ + "?"},
    "fits": {"variant": _STR, "metric": _STR, "exponent": _NUM + "?", "ci_low": _NUM + "?",
             "ci_high": _NUM + "?", "best_class": _STR + "?", "n_sizes": _NUM + "?",
             "size_range": _NUM + "?", "fit_from": _NUM + "?", "exact": _BOOL + "?",
             "rel_spread": _NUM + "?", "top_slope": _NUM + "?", "top_ci_low": _NUM + "?",
             "top_ci_high": _NUM + "?", "poly_degree": _NUM + "?", "class_bic": _OBJ + "?",
             "poly_coefficients": _LIST + "?",
             "power_bic": _NUM + "?", "verdict": _STR + "?", "partial": _BOOL + "?",
             "pinned": _BOOL + "?", "bic_class": _STR + "?"},
    "config": {"sizes": _LIST + "?", "variants": _LIST + "?", "min_size": _NUM + "?",
               "max_size": _NUM + "?", "repeats": _NUM + "?", "min_time": _NUM + "?",
               "seed": _NUM + "?", "steps": _NUM + "?", "depths": _LIST + "?",
               "options": _OBJ + "?", "time_budget": _NUM + "?", "control": _BOOL + "?"},
    "environment": {"device": _STR + "?", "device_name": _STR + "?", "cpu_model": _STR + "?",
                    "torch_version": _STR + "?", "threads": _NUM + "?", "dtype": _STR + "?",
                    "timestamp": _STR + "?", "caches": _LIST + "?"},
    "failed_points": {"variant": _STR, "size": _NUM, "phase": _STR + "?", "reason": _STR + "?"},
    "gates": {"family": _STR, "baseline": _STR, "activation": _STR, "optimizer": _STR,
              "passed": _BOOL + "?", "loss": _NUM + "?", "depth": _NUM + "?"},
    "gradient_signal": {"variant": _STR, "activation": _STR, "depth": _NUM, "seed": _NUM,
                        "ratio": _NUM + "?", "top_only_ratio": _NUM + "?",
                        "layer_grad_norms": _LIST + "?", "first_layer_grad_norm": _NUM + "?",
                        "last_layer_grad_norm": _NUM + "?"},
    # per seed: the lists; "finetune" an object or null
    "training": {"variant": _STR, "activation": _STR, "depth": _NUM, "optimizer": _STR,
                 "steps": _NUM, "seeds": _LIST, "lr": _NUM, "lr_grid": _LIST,
                 "lr_scores": _LIST, "final_loss": _LIST, "initial_loss": _LIST,
                 "head_losses": _LIST, "deepest_head": _LIST, "deep_head_loss": _LIST,
                 "target_variance": _NUM, "threshold": _NUM, "steps_to_threshold": _LIST,
                 "diverged": _LIST, "trained_ratio": _LIST, "curve": _LIST, "profile": _LIST,
                 "finetune": _OBJ + "?"},
}  # fmt: skip
_KINDS = {_NUM: "a number", _STR: "text", _BOOL: "true or false", _LIST: "a list",
          _OBJ: "an object"}  # fmt: skip


def _is(value: Any, kind: str) -> bool:
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {_STR: str, _BOOL: bool, _LIST: list, _OBJ: dict}[kind])


def _field_error(path: Path, where: str, value: Any, spec: str) -> ResultsError:
    shown = json.dumps(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    expected = _KINDS[spec.rstrip("?")] + (" or null" if spec.endswith("?") else "")
    return ResultsError(f"{path}: {where} is {shown} (expected {expected})")


def check_fields(path: Path, summary: Mapping[str, Any]) -> None:
    """ResultsError naming the file and the first field of :data:`FIELDS` whose value is of
    the wrong type (an entry of a list section that is not an object, too); also every note
    must be text."""

    def check(entry: Mapping[str, Any], section: str, where: str) -> None:
        for key, spec in FIELDS[section].items():
            if key not in entry:
                continue
            value = entry[key]
            if value is None and spec.endswith("?"):
                continue
            if not _is(value, spec.rstrip("?")):
                raise _field_error(path, f"{where}{key}", value, spec)

    check(summary, "top", "")
    for section in ("config", "environment"):
        if isinstance(summary.get(section), dict):
            check(summary[section], section, f"{section}.")
    for section in ("claims", "fits", "failed_points", "gradient_signal", "training", "gates"):
        for i, entry in enumerate(summary.get(section) or []):
            if not isinstance(entry, dict):
                raise _field_error(path, f"{section}[{i}]", entry, _OBJ)
            check(entry, section, f"{section}[{i}].")
    for i, note in enumerate(summary.get("notes") or []):
        if not isinstance(note, str):
            raise _field_error(path, f"notes[{i}]", note, _STR)


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
