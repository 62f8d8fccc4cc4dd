"""The harness: one sweep's validation, pass schedule, budget, resume and analysis."""

__all__ = [
    "analysis",
    "limits",
    "resume",
    "runner",
    "state",
]
