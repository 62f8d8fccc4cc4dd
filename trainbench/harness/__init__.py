"""The harness: one sweep's validation, pass schedule, budget, resume and analysis."""

__all__ = [
    "analysis",
    "breakdown",
    "counting",
    "hierarchy",
    "instruments",
    "limits",
    "passes",
    "prepare",
    "records",
    "resume",
    "runner",
    "state",
    "sweep",
]
