"""The command line: one Typer app. Each command parses its flags, calls the core once and
renders what comes back; the commands live beside this module, the built-in experiments'
commands are built from their declared options (:mod:`trainbench.cli.sweep_commands`).

Only what ``--help`` needs is imported here: torch loads when a command runs.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated, Any

import typer

from trainbench.cli.errors import OneLineErrors, on_sigterm
from trainbench.cli.report_commands import compare_runs, report
from trainbench.cli.sweep_commands import builtin_command
from trainbench.cli.target_command import sweep_command
from trainbench.cli.trainability_command import trainability
from trainbench.cli.verify_command import verify
from trainbench.core.version import __version__
from trainbench.experiments.specs import BUILT_IN_SPECS

app = typer.Typer(
    cls=OneLineErrors,
    help="Tests textbook answers about the cost of backpropagation against measurement.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trainbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Tests textbook answers about the cost of backpropagation against measurement."""


for _name, _declared in BUILT_IN_SPECS.items():
    app.command(_name)(builtin_command(_name, _declared))
app.command("sweep")(sweep_command)
app.command("trainability")(trainability)
app.command("compare")(compare_runs)
app.command("report")(report)
app.command("verify")(verify)


def main() -> None:
    from trainbench.core import streams
    from trainbench.measure import watchdog

    signal.signal(signal.SIGTERM, on_sigterm)
    watchdog.EXIT_WHEN_STUCK = True  # (this process is the tool's)
    streams.prepare()
    code: Any = 0
    try:
        with watchdog.watching_signals():  # a Ctrl-C told from a target's own KeyboardInterrupt
            app()
    except SystemExit as end:
        code = end.code
    except BrokenPipeError:  # stdout's reader went away (``| head``): as Unix tools do
        code = 0
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # (the same, noticed at the last write)
        streams.quiet_broken_pipe()
    sys.exit(code)
