"""The command line: one Typer app, its renderers."""

__all__ = [
    "app",
    "errors",
    "output",
    "params",
    "render",
    "report_commands",
    "sweep_commands",
    "target_command",
    "trainability_command",
    "verify_command",
]
