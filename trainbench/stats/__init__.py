"""Fitting growth orders and judging claims on them; the drift estimator; the noise simulator
and the calibration of the verdicts on it."""

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
