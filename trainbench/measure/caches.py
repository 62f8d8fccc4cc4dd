"""The memory hierarchy: the machine's caches, where a sweep's working set outgrows them,
and the time per unit of work on either side.

A point's working set (``working_set_bytes``: parameters, their gradients and the
activations kept for the backward pass) grows with the size. Where it passes a cache's
size between two measured sizes, each unit of work (a FLOP, a graph node) may cost more
from then on: a step in the time per unit of work that is the memory hierarchy, not noise.
No torch in here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SYSFS_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int | None:
    """Bytes of a sysfs cache size ("32K", "1024K", "32768K", "2M", "512"); None if not one."""
    text = text.strip().upper().removesuffix("B")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    number = text[: len(text) - len(unit)]
    return int(number) * _UNITS[unit] if number.isdigit() else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def read_caches(
    device_type: str = "cpu", cuda_l2_bytes: int | None = None, *, root: Path = SYSFS_CACHES
) -> list[dict[str, Any]]:
    """The data caches a sweep's working set lives in, smallest first, as
    ``{"level": "L1d", "bytes": 32768}``.

    CPU: from sysfs (``root``/index*/{level,type,size}; instruction caches skipped, each
    level once); [] where sysfs is missing. CUDA: the GPU's L2 (``cuda_l2_bytes``, from
    ``torch.cuda.get_device_properties(d).L2_cache_size``), as "GPU L2"; [] without it.
    """
    if device_type == "cuda":
        return [{"level": "GPU L2", "bytes": int(cuda_l2_bytes)}] if cuda_l2_bytes else []
    found: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        entries = sorted(root.glob("index*"))
    except OSError:
        return []
    for entry in entries:
        level, kind, size = (_read(entry / name) for name in ("level", "type", "size"))
        if level is None or kind is None or size is None or kind == "Instruction":
            continue
        nbytes = parse_size(size)
        if nbytes is None or nbytes <= 0:
            continue
        name = f"L{level}" + ("d" if kind == "Data" else "")
        found.setdefault((name, nbytes), {"level": name, "bytes": nbytes})
    return sorted(found.values(), key=lambda c: (c["bytes"], c["level"]))


def bytes_text(nbytes: float) -> str:
    """``48 KiB``, ``2 MiB``, ``300 MiB``, ``1.5 GiB``."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:g} B"


# --------------------------------------------------------------------------- crossings


@dataclass(frozen=True)
class Crossing:
    """The working set passes a cache between two adjacent measured sizes."""

    level: str
    cache_bytes: int
    n_lo: int  # the last size whose working set fits the cache
    n_hi: int  # the next measured size: its working set does not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self, symbol: str = "n") -> str:
        return (
            f"the working set passes {self.level} ({bytes_text(self.cache_bytes)}) "
            f"between {symbol} = {self.n_lo} and {self.n_hi}"
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def crossings(
    sizes: Sequence[int],
    working_sets: Sequence[float | None],
    caches: Sequence[Mapping[str, Any]] | None,
) -> list[Crossing]:
    """For each cache, the adjacent pair of measured sizes where the working set goes from
    <= the cache's size to > it (the first such pair); sizes without a working set (older
    runs) are skipped. Ordered by size."""
    pairs = sorted(
        (int(n), float(w)) for n, w in zip(sizes, working_sets, strict=True) if _finite(w)
    )
    out = []
    for cache in caches or []:
        nbytes = cache.get("bytes")
        if not _finite(nbytes) or nbytes <= 0:
            continue
        for (n0, w0), (n1, w1) in zip(pairs, pairs[1:], strict=False):
            if w0 <= nbytes < w1:
                out.append(Crossing(str(cache.get("level", "cache")), int(nbytes), n0, n1))
                break
    return sorted(out, key=lambda c: (c.n_hi, c.cache_bytes))


def run_crossings(
    points: Sequence[Mapping[str, Any]],
    variant: str,
    caches: Sequence[Mapping[str, Any]] | None,
) -> list[Crossing]:
    """:func:`crossings` of one variant's points (records with ``working_set_bytes``)."""
    rows = sorted((p for p in points if p.get("variant") == variant), key=lambda p: p["size"])
    return crossings([p["size"] for p in rows], [p.get("working_set_bytes") for p in rows], caches)


def in_window(found: Sequence[Crossing], fit_from: float, fit_to: float) -> list[Crossing]:
    """The crossings with both sizes inside the fit window [fit_from, fit_to]. A crossing
    that straddles the window's bottom edge is not one: every fitted size lies beyond it,
    so it cannot bend the fit."""
    lo, hi = fit_from * (1 - 1e-9), fit_to * (1 + 1e-9)
    return [c for c in found if lo <= c.n_lo and c.n_hi <= hi]


# --------------------------------------------------------------------------- time per work


@dataclass(frozen=True)
class TimePerWork:
    """Seconds of a time metric per unit of its work, per size (sorted)."""

    sizes: tuple[int, ...]
    values: tuple[float, ...]
    unit: str  # "FLOP" or "graph node"

    def at(self, size: int) -> float | None:
        return dict(zip(self.sizes, self.values, strict=True)).get(size)

    def ratio(self, crossing: Crossing) -> float | None:
        """The time per unit of work at ``n_hi`` over that at ``n_lo``: the step across the
        crossing, from the two measured sizes either side of it (adjacent by construction,
        so nothing else changes between them but one grid step of size)."""
        lo, hi = self.at(crossing.n_lo), self.at(crossing.n_hi)
        return hi / lo if lo and hi else None


def work_metric_for(metric: str) -> str:
    """The FLOP count behind a time metric: bwd_s -> bwd_flops, fwd_s -> fwd_flops."""
    return metric.replace("_s", "_flops")


def time_per_work(
    points: Sequence[Mapping[str, Any]], variant: str, metric: str = "bwd_s"
) -> TimePerWork:
    """``metric`` (a median time) per FLOP of the same pass, at every size of ``variant``;
    per graph node where the FLOPs are not counted (zero or missing) at some size, so the
    whole series has one unit. Sizes without a positive time or work are left out."""
    rows = sorted((p for p in points if p.get("variant") == variant), key=lambda p: p["size"])
    flops = work_metric_for(metric)
    counted = bool(rows) and all(_finite(p.get(flops)) and p[flops] > 0 for p in rows)
    work, unit = (flops, "FLOP") if counted else ("graph_nodes", "graph node")
    sizes, values = [], []
    for p in rows:
        t, w = p.get(metric), p.get(work)
        if _finite(t) and _finite(w) and t > 0 and w > 0:
            sizes.append(int(p["size"]))
            values.append(float(t) / float(w))
    return TimePerWork(tuple(sizes), tuple(values), unit)


def step_at_crossings(
    tpw: TimePerWork, inside: Sequence[Crossing], fit_from: float, fit_to: float, tolerance: float
) -> bool:
    """Whether the change of the time per unit of work over the fit window is located at the
    crossings: it rises across them and, with those steps divided out, its log-log slope over
    the rest of the window is within ``tolerance`` of flat."""
    window = [(n, v) for n, v in zip(tpw.sizes, tpw.values, strict=True)
              if fit_from * (1 - 1e-9) <= n <= fit_to * (1 + 1e-9)]  # fmt: skip
    if len(window) < 2 or not inside:
        return False
    ratios = [tpw.ratio(c) for c in inside]
    if any(r is None for r in ratios):
        return False
    rise = sum(math.log(r) for r in ratios if r is not None)
    (n0, v0), (n1, v1) = window[0], window[-1]
    rest = (math.log(v1 / v0) - rise) / math.log(n1 / n0)
    return rise > 0 and abs(rest) <= tolerance


def beyond_last(sizes: Sequence[int], inside: Sequence[Crossing], fit_to: float) -> list[int]:
    """The measured sizes from the last crossing's ``n_hi`` to the top of the fit window."""
    if not inside:
        return []
    start = max(c.n_hi for c in inside)
    return sorted(n for n in sizes if start <= n <= fit_to * (1 + 1e-9))
