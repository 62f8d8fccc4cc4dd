"""The experiment contract, the built-in experiments and TARGET models."""

__all__ = [
    "builtin",
    "specs",
    "target",
]
