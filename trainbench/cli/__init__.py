"""The command line: one Typer app, its renderers."""

__all__ = [
    "app",
    "render",
]
