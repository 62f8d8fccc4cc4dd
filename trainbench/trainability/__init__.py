"""The trainability experiments of Problems 1 and 2: training, judging, their files."""

__all__ = [
    "config",
    "ensemble",
    "files",
    "gradients",
    "judge",
    "run",
    "tasks",
    "training",
]
