"""A run on disk: writing and reading its files, comparing two runs, verdict rows."""

__all__ = [
    "compare",
    "environment",
    "files",
    "fileset",
    "reading",
    "schema",
    "verdicts",
]
