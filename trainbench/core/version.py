"""The version of trainbench (read by the packaging and by every run's environment)."""

__version__ = "0.1.0"
