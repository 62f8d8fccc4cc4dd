"""Typer parameters from option declarations (:class:`trainbench.core.options.OptionSpec`):
a flag, its type, range, choices and help come from the one declaration, and a command of a
built-in experiment is built from its experiment's options."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any

import typer

from trainbench.core.options import ARGUMENT, REQUIRED, SWEEP_OPTION, OptionSpec

_ENUMS: dict[tuple[str, tuple[str, ...]], type[enum.Enum]] = {}


def choices_type(spec: OptionSpec) -> type[enum.Enum]:
    """The Enum typer turns into the option's choices (one per name and set of choices)."""
    key = (spec.name, spec.choices)
    if key not in _ENUMS:
        _ENUMS[key] = enum.Enum(  # type: ignore[misc]
            spec.name.title().replace("_", ""), [(c, c) for c in spec.choices], type=str
        )
    return _ENUMS[key]


def option_type(spec: OptionSpec) -> tuple[Any, Any]:
    """The annotation (a typer Option in ``Annotated``) and the default of ``spec``."""
    kind: Any = choices_type(spec) if spec.choices else spec.kind
    if kind is list:
        kind = list[str]
    default = kind(spec.default) if spec.choices and spec.default is not None else spec.default
    if spec.default is None:
        kind = kind | None
    if spec.where == ARGUMENT:
        info = typer.Argument(help=spec.help, show_default=spec.show_default)
    else:
        info = typer.Option(
            *spec.flag_names, min=spec.low, max=spec.high, help=spec.help,
            show_default=spec.show_default, metavar=spec.metavar,
        )  # fmt: skip
    return Annotated[kind, info], default


def shared(name: str, **changes: Any) -> Any:
    """A shared measurement option's annotation, for a command written out by hand
    (``changes``: another help text, ...)."""
    spec = SWEEP_OPTION[name]
    return option_type(replace(spec, **changes) if changes else spec)[0]


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed values with every choice as its text."""
    return {k: v.value if isinstance(v, enum.Enum) else v for k, v in values.items()}


def command(
    specs: Sequence[OptionSpec], run: Callable[[dict[str, Any]], None], doc: str
) -> Callable[..., None]:
    """A typer command function taking one flag per spec (in order), calling
    ``run({name: value})`` with every choice as its text."""
    params = []
    for spec in specs:
        annotation, default = option_type(spec)
        if default is REQUIRED:
            default = inspect.Parameter.empty
        params.append(inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY,
                                        default=default, annotation=annotation))  # fmt: skip

    def invoked(**values: Any) -> None:
        run(plain(values))

    invoked.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    invoked.__annotations__ = {p.name: p.annotation for p in params}
    invoked.__doc__ = doc
    return invoked



# the shared options' defaults, for the commands written out by hand
SHARED_DEFAULT = {name: spec.default for name, spec in SWEEP_OPTION.items()}
# The shared options of the commands written out by hand (trainability, verify): the same
# declarations as the sweep commands'.
Threads = shared("threads")
Seed = shared("seed")
Json = shared("json")
Quiet = shared("quiet")
DeviceOpt = shared("device")
