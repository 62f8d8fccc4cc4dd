"""The results format: one folder per experiment run.

    DIR/<experiment>/measurements.csv   tidy: one row per (variant, size)
    DIR/<experiment>/samples.csv        raw timing samples: variant, size, phase, sample_s
    DIR/<experiment>/summary.json       experiment, config, environment, points, fits, claims

Every file carries ``format_version``. Files are replaced atomically (written
to a temporary file in the same folder, fsynced, renamed), so a crash leaves
either the old file or the new one.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

FORMAT_VERSION = 1

# Metrics of a point, in table order. Counts are exact; times are medians.
TIME_METRICS = ("fwd_s", "bwd_s")
COUNT_METRICS = ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes")
FIT_METRICS = TIME_METRICS + COUNT_METRICS + ("peak_bytes",)
METRIC_LABELS = {
    "fwd_s": "forward time",
    "bwd_s": "backward time",
    "fwd_flops": "forward FLOPs",
    "bwd_flops": "backward FLOPs",
    "graph_nodes": "graph nodes",
    "graph_depth": "graph depth",
    "saved_bytes": "saved bytes",
    "peak_bytes": "peak bytes",
}
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
    "peak_bytes",
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
) -> None:
    """Write the three files of a run (each atomically)."""
    table = pd.DataFrame(list(points), columns=list(POINT_COLUMNS))
    atomic_write_text(folder / "measurements.csv", table.to_csv(index=False))
    raw = pd.DataFrame(
        list(samples), columns=["variant", "size", "phase", "round", "sample_s", "format_version"]
    )
    atomic_write_text(folder / "samples.csv", raw.to_csv(index=False))
    atomic_write_text(folder / "summary.json", to_json(summary))


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
    return env
