"""The bottom layer: settings, bounds, errors, the shared words, the file lock (no torch)."""

__all__ = [
    "lock",
    "options",
    "settings",
    "streams",
    "version",
    "vocabulary",
]
