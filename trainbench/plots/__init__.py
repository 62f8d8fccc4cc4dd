"""The figures of a run."""

__all__ = [
    "figures",
    "schedule",
]
