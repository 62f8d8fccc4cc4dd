"""Shared by every test: typer builds the click command tree of an app anew for every
``CliRunner.invoke`` (about 80 ms for trainbench's); it is built once per app here. The
command functions look up what they call at call time, so monkeypatched functions of
trainbench.cli.app still take effect."""

from __future__ import annotations

from typing import Any

import typer.testing

_built: dict[int, tuple[Any, Any]] = {}
_get_command = typer.testing._get_command


def _cached_command(app: Any) -> Any:
    held = _built.get(id(app))
    if held is None or held[0] is not app:
        held = (app, _get_command(app))
        _built[id(app)] = held
    return held[1]


typer.testing._get_command = _cached_command  # type: ignore[attr-defined]
