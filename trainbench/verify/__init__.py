"""Every claim of the claims file measured and judged (`trainbench verify`)."""

__all__ = [
    "jobs",
    "run",
]
