"""The claims file: parsing and validating claims."""

__all__ = [
    "claim",
    "parse",
]
