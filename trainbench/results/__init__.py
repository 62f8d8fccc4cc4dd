"""A run on disk: writing and reading its files, comparing two runs, verdict rows."""

__all__ = [
    "compare",
    "files",
    "fileset",
    "verdicts",
]
