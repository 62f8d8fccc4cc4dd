"""Torch's thread count: the default a run times with, and leaving it as it was found."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch

_F = TypeVar("_F", bound=Callable[..., Any])


def default_threads(device: torch.device) -> int:
    """The threads a run times with unless --threads says otherwise: one on a CPU (a
    parallel region waits for its slowest thread, so on a shared CPU every interruption
    of any core stalls it: docs/method.md, "Threads"); torch's default where a GPU runs
    the model."""
    return 1 if device.type == "cpu" else torch.get_num_threads()


def keeps_torch_threads(fn: _F) -> _F:
    """``fn`` with torch's thread count restored afterwards, as it was before the call."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads = torch.get_num_threads()
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return cast(_F, wrapper)
