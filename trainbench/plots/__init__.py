"""The figures of a run."""

__all__ = [
    "drawing",
    "figures",
    "schedule",
]
