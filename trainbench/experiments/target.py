"""Your own model as an experiment: a TARGET function that makes a loss for each size n.

The contract (``trainbench sweep TARGET`` and :func:`trainbench.sweep`)::

    def make(n: int) -> Callable[[], torch.Tensor]:
        model = MyModel(n)                      # build what size n means to you
        x = torch.randn(32, n)
        return lambda: model(x).pow(2).mean()   # one forward pass -> a scalar loss

``make(n)`` is called once per point (and again for each timing round, so that only
one size's model is in memory at a time); the function it returns runs one forward
pass and returns a scalar loss tensor whose graph reaches the parameters. Where
``make`` takes a ``device`` (and a ``dtype``) keyword, the run's device (and dtype)
are passed, so ``--device cuda`` moves the model; otherwise the model runs where
``make`` puts it.

TARGET names the function as ``package.module:function`` (imported as Python imports
it, the current folder included) or ``path/to/file.py:function``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from trainbench.core.settings import SweepError, first_line
from trainbench.experiments.builtin import EXPERIMENTS, Experiment, Variant
from trainbench.measure import watchdog
from trainbench.measure.memory import is_out_of_memory

Factory = Callable[..., Callable[[], Tensor]]

MODEL = Variant("model", "one backward of the target's loss", split=False, stack=False)
DEFAULT_REFERENCE = "1024x1024x1024"  # the torch.mm whose rate is the efficiency reference
MAX_SIZES = 200  # sizes in one --sizes
MAX_TARGET_SIZE = 10**9
# run folders that trainbench's own commands write (verify's results/ holds them all)
RESERVED_NAMES = frozenset([*EXPERIMENTS, "trainability", "report", "quick"])
RESERVED_PREFIXES = ("rnn-lm-",)  # rnn-lm's runs: rnn-lm-<cell>
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class TargetError(SweepError):
    """A target that cannot be loaded or does not keep the contract; one line for the user."""


# --------------------------------------------------------------------------- TARGET


def load_target(spec: str) -> Factory:
    """The function that ``package.module:function`` or ``path/to/file.py:function`` names."""
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise TargetError(
            f"TARGET {spec!r}: expected package.module:function or path/to/file.py:function"
        )
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _import_file(spec, Path(where))
    else:
        module = _import_module(spec, where)
    obj: Any = module
    for part in attr.split("."):
        if not part.isidentifier():
            raise TargetError(f"TARGET {spec!r}: {attr!r} is not a Python name")
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"TARGET {spec!r}: {where} has no attribute {attr!r}") from None
    if not callable(obj):
        raise TargetError(
            f"TARGET {spec!r}: {attr} is not a function of the size n (it is of type "
            f"{type(obj).__name__})"
        )
    return obj  # type: ignore[no-any-return]


def _import_module(spec: str, name: str) -> Any:
    if not all(part.isidentifier() for part in name.split(".")):
        raise TargetError(f"TARGET {spec!r}: {name!r} is not a module name (or a .py file)")
    if os.getcwd() not in sys.path:  # as `python -m` does: the current folder comes first
        sys.path.insert(0, os.getcwd())
    argv, sys.argv = sys.argv, [name]  # as if imported: not trainbench's arguments
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            raise TargetError(f"TARGET {spec!r}: no module named {err.name!r}") from None
        raise TargetError(f"TARGET {spec!r}: importing {name} failed: {first_line(err)}") from None
    except BaseException as err:  # the module's own code raised (or exited: argparse)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise TargetError(
            f"TARGET {spec!r}: importing {name} raised {type(err).__name__}: {first_line(err)}"
        ) from None
    finally:
        sys.argv = argv


def _import_file(spec: str, path: Path) -> Any:
    if not path.is_file():
        raise TargetError(f"TARGET {spec!r}: no such file {str(path)!r}")
    name = "trainbench_target_" + re.sub(r"\W", "_", str(path.resolve()))
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise TargetError(f"TARGET {spec!r}: {str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(loader_spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # the file's imports of its neighbours, also inside functions
        sys.path.insert(0, folder)
    sys.modules[name] = module
    argv, sys.argv = sys.argv, [str(path)]  # as if imported: not trainbench's arguments
    try:
        loader_spec.loader.exec_module(module)
    except BaseException as err:  # SystemExit too: a script that parses sys.argv on import
        sys.modules.pop(name, None)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise TargetError(
            f"TARGET {spec!r}: importing {path} raised {type(err).__name__}: {first_line(err)}"
        ) from None
    finally:
        sys.argv = argv
    return module


def default_name(factory: Factory, spec: str | None = None) -> str:
    """The run's folder name: the function's name (or TARGET's), made a safe folder name."""
    raw = getattr(factory, "__name__", "") or (spec or "").rpartition(":")[2]
    name = re.sub(r"[^A-Za-z0-9._-]", "-", raw).strip("-.") or "target"
    return name if not _reserved(name) else f"{name}-target"


def _reserved(name: str) -> bool:
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TargetError(
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (up to 100; not first '.')"
        )
    if _reserved(name):
        raise TargetError(f"--name {name!r} is a built-in experiment's; choose another")
    return name


# --------------------------------------------------------------------------- --sizes


def parse_sizes(text: str) -> list[int]:
    """``16,32,64`` (a list), ``16:1024`` (doubling) or ``16:1024:1.5`` (times 1.5 each
    step): the sizes, sorted, each once. The end of a range is included where a step
    lands on it."""
    text = str(text).strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = int(parts[0]), int(parts[1])
            factor = float(parts[2].lstrip("x*")) if len(parts) == 3 else 2.0
            if not math.isfinite(factor) or factor <= 1.0:
                raise TargetError(f"--sizes {text!r}: the step factor must be above 1")
            if start < 1 or stop < start:
                raise TargetError(f"--sizes {text!r}: need 1 <= start <= end")
            if math.log(stop / start) / math.log(factor) > MAX_SIZES:
                raise TargetError(f"--sizes {text!r}: more than {MAX_SIZES} sizes")
            sizes, x = set(), float(start)
            while x <= stop * (1 + 1e-9):
                sizes.add(int(round(x)))
                x *= factor
        else:
            sizes = {int(part) for part in text.split(",") if part.strip()}
            if not sizes:
                raise ValueError
    except TargetError:
        raise
    except ValueError:
        raise TargetError(
            f"--sizes {text!r}: expected a list (16,32,64), a doubling range (16:1024) or a "
            "range with a step factor (16:1024:1.5)"
        ) from None
    if len(sizes) > MAX_SIZES:
        raise TargetError(f"--sizes {text!r}: more than {MAX_SIZES} sizes")
    if min(sizes) < 1 or max(sizes) > MAX_TARGET_SIZE:
        raise TargetError(f"--sizes {text!r}: sizes must lie from 1 to {MAX_TARGET_SIZE}")
    return sorted(sizes)


def parse_reference(text: str) -> tuple[int, int, int]:
    """``1024x1024x1024`` (rows x inner x cols of the reference torch.mm), or one width."""
    parts = str(text).lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        dims = []
    if len(dims) == 1:
        dims = dims * 3
    if len(dims) != 3 or not all(1 <= d <= 65536 for d in dims):
        raise TargetError(
            f"--reference {text!r}: expected ROWSxINNERxCOLS such as 1024x1024x1024 (or one "
            "width), each from 1 to 65536"
        )
    return dims[0], dims[1], dims[2]


# --------------------------------------------------------------------------- the experiment


def _takes(factory: Factory, name: str) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_loss(label: str, size: int, loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise TargetError(
            f"{label}({size})() returned a {type(loss).__name__}, not a scalar loss tensor"
        )
    if loss.numel() != 1:
        raise TargetError(
            f"{label}({size})() returned a tensor of shape {tuple(loss.shape)}, not a scalar "
            "loss (reduce it, e.g. .sum() or .mean())"
        )
    if not loss.is_floating_point():
        raise TargetError(f"{label}({size})() returned a {loss.dtype} tensor, not a float loss")
    if loss.grad_fn is None:
        raise TargetError(
            f"{label}({size})() returned a loss with no graph: nothing in it requires a gradient"
        )


def target_experiment(
    factory: Factory,
    name: str,
    *,
    spec: str | None = None,
    reference: str = DEFAULT_REFERENCE,
) -> Experiment:
    """An experiment whose one variant ("model") back-propagates ``factory(n)()``."""
    label = spec.rpartition(":")[2] if spec else getattr(factory, "__name__", "target")
    rows, inner, cols = parse_reference(reference)
    with_device, with_dtype = _takes(factory, "device"), _takes(factory, "dtype")

    def build(
        size: int, options: Mapping[str, Any], device: torch.device, dtype: torch.dtype
    ) -> Callable[[], list[Tensor]]:
        torch.manual_seed(int(options.get("seed", 0)))
        kwargs: dict[str, Any] = {}
        if with_device:
            kwargs["device"] = device
        if with_dtype:
            kwargs["dtype"] = dtype
        seen = watchdog.signals_seen()
        try:
            forward = factory(size, **kwargs)
        except SystemExit as err:  # the target's sys.exit() ends its point, not the tool
            raise TargetError(f"{label}({size}) called sys.exit({err.code!r})") from None
        except KeyboardInterrupt:  # raised by the target, not by Ctrl-C: its point fails
            if watchdog.from_signal(seen):
                raise
            raise TargetError(f"{label}({size}) raised KeyboardInterrupt") from None
        except Exception as err:
            if is_out_of_memory(err):
                raise
            raise TargetError(
                f"{label}({size}) raised {type(err).__name__}: {first_line(err)}"
            ) from None
        if not callable(forward):
            raise TargetError(
                f"{label}({size}) returned a {type(forward).__name__}, not a function that "
                "runs the forward pass and returns the loss"
            )
        checked = False

        def terms() -> list[Tensor]:
            nonlocal checked
            seen = watchdog.signals_seen()
            try:
                loss = forward()
            except SystemExit as err:
                raise TargetError(f"{label}({size})() called sys.exit({err.code!r})") from None
            except KeyboardInterrupt:
                if watchdog.from_signal(seen):
                    raise
                raise TargetError(f"{label}({size})() raised KeyboardInterrupt") from None
            except Exception as err:
                if is_out_of_memory(err):
                    raise
                raise TargetError(
                    f"{label}({size})() raised {type(err).__name__}: {first_line(err)}"
                ) from None
            if not checked:  # once per build: the timed runs pay nothing for it
                _check_loss(label, size, loss)
                checked = True
            return [loss]

        return terms

    return Experiment(
        name=name,
        title=f"{spec or label}: backprop cost against n",
        size_name="n",
        size_option="size",
        variants=(MODEL,),
        build=build,
        defaults={"target": spec or label, "reference": reference},
        reference_matmul=lambda o: (rows, inner, cols),
        estimate_bytes=lambda size, o, itemsize: 0,  # unknown: the limits learn it as it grows
        notes=_argument_notes(with_device, with_dtype),
        foreign=True,
    )


def _argument_notes(with_device: bool, with_dtype: bool) -> tuple[str, ...]:
    missing = [name for name, taken in (("device", with_device), ("dtype", with_dtype))
               if not taken]  # fmt: skip
    if not missing:
        return ()
    return (
        f"the target takes no {' or '.join(missing)} argument: it runs where and in the "
        "precision it makes its tensors (--device and --dtype still set the efficiency "
        "reference)",
    )


def targets_experiment(
    factories: Mapping[str, Factory],
    name: str,
    *,
    specs: Mapping[str, str | None] | None = None,
    reference: str = DEFAULT_REFERENCE,
) -> Experiment:
    """Several targets in one sweep: one variant each (named by its key, in their order),
    timed interleaved in the same passes, fitted and judged each on its own."""
    if len(factories) < 2:
        raise TargetError("several targets: give at least two")
    specs = dict(specs or {})
    variants, notes = [], []
    for key, factory in factories.items():
        one = target_experiment(factory, key, spec=specs.get(key), reference=reference)
        variants.append(replace(MODEL, name=key, build=one.build,
                                description=f"{specs.get(key) or key}: one backward of its loss"))
        notes += [f"{key}: {n}" for n in one.notes]
    first = variants[0]
    labels = [specs.get(k) or k for k in factories]
    return Experiment(
        name=name,
        title=f"{' against '.join(labels)}: backprop cost against n",
        size_name="n",
        size_option="size",
        variants=tuple(variants),
        build=first.build,
        defaults={"targets": labels, "reference": reference},
        reference_matmul=lambda o: parse_reference(reference),
        estimate_bytes=lambda size, o, itemsize: 0,
        notes=tuple(notes),
        foreign=True,
    )
