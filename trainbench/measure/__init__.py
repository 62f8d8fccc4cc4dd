"""Measuring one point: timing, FLOP and graph counts, the critical path, caches, threads."""

__all__ = [
    "caches",
    "counting",
    "flops",
    "memory",
    "modules",
    "point",
    "span",
    "threads",
    "watchdog",
]
