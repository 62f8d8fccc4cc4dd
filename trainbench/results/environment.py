"""The environment record of a run: where and how its numbers were taken (the machine,
its caches, torch, the settings)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from typing import Any

from trainbench.measure.caches import read_caches


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
