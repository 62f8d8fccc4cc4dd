"""Running out of memory: how torch and Python say that an allocation failed, and giving the
memory back after a point."""

from __future__ import annotations

import gc

import torch

# How torch and Python say that an allocation failed (lower case).
OOM_MESSAGES = (
    "out of memory",
    "not enough memory",
    "defaultcpuallocator: can't allocate memory",
)


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` says that an allocation failed (on the CPU or on CUDA)."""
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(m in text for m in OOM_MESSAGES)


def free_memory(device: torch.device) -> None:
    """Collect garbage and, on CUDA, return the cached blocks."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
