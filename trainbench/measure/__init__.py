"""Measuring one point: timing, FLOP and graph counts, the critical path, caches, threads."""

__all__ = [
    "caches",
    "counting",
    "flops",
    "graph",
    "memory",
    "modules",
    "point",
    "recurrent",
    "span",
    "threads",
    "timing",
    "watchdog",
]
