"""Fitting growth orders and judging claims on them; the drift estimator; the noise simulator."""

__all__ = [
    "classes",
    "drift",
    "exact",
    "fit",
    "judge",
    "noise",
    "power",
    "simulator",
]
