"""Fitting growth orders and judging claims on them; the drift estimator; the noise simulator."""

__all__ = [
    "drift",
    "fit",
    "noise",
]
