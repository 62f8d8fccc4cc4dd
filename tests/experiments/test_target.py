"""TARGET strings, --sizes, logarithmic orders and the target's contract (no sweep is run)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import targets_for_tests as T
import torch

from trainbench.claims.claim import parse_order_class
from trainbench.core.settings import SweepError
from trainbench.core.vocabulary import CONFIRMED, INCONCLUSIVE, REFUTED
from trainbench.experiments.target import (
    MAX_SIZES,
    TargetError,
    check_name,
    default_name,
    load_target,
    parse_reference,
    parse_sizes,
    target_experiment,
)
from trainbench.stats.fit import fit_order
from trainbench.stats.judge import judge

MODEL_SOURCE = textwrap.dedent(
    """
    import torch

    def make(n):
        w = torch.randn(n, requires_grad=True)
        return lambda: w.sum()

    class Holder:
        class Inner:
            @staticmethod
            def make(n):
                return make(n)

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A folder on sys.path (and the current folder) holding a good module, a module whose
    import raises and one whose import of a dependency fails; their names carry the test's
    name so that no two tests share a cached module. Returns the name prefix."""
    prefix = "tb_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    (tmp_path / f"{prefix}_model.py").write_text(MODEL_SOURCE)
    (tmp_path / f"{prefix}_raising.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / f"{prefix}_dep.py").write_text("import tb_no_such_dependency_xyz\n")
    pkg = tmp_path / f"{prefix}_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return prefix


# ----------------------------------------------------------------------------- TARGET


def _is_make(fn: object) -> bool:
    return callable(fn) and getattr(fn, "__name__", "") == "make"


def test_module_form(modules: str) -> None:
    fn = load_target(f"{modules}_model:make")
    assert _is_make(fn)
    loss = fn(5)()
    assert isinstance(loss, torch.Tensor) and loss.grad_fn is not None
    assert _is_make(load_target(f"{modules}_pkg.models:make"))  # a dotted module


def test_module_form_dotted_attribute(modules: str) -> None:
    assert _is_make(load_target(f"{modules}_model:Holder.Inner.make"))


def test_file_form_relative_and_absolute(modules: str, tmp_path: Path) -> None:
    assert _is_make(load_target(f"{modules}_model.py:make"))  # relative to the current folder
    assert _is_make(load_target(f"./{modules}_pkg/models.py:make"))
    assert _is_make(load_target(f"{tmp_path / (modules + '_model.py')}:make"))
    assert _is_make(load_target(f"{tmp_path / (modules + '_model.py')}:Holder.Inner.make"))


def test_file_form_of_the_helper_module() -> None:
    fn = load_target(T.spec("linear"))
    assert fn.__name__ == "linear"
    assert fn(3)().shape == ()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("{p}_model", ("expected package.module:function",)),  # no colon
        ("{p}_model:", ("expected package.module:function",)),  # empty function
        (":make", ("expected package.module:function",)),  # empty module
        (":", ("expected package.module:function",)),
        ("", ("expected package.module:function",)),
        ("{p}_missing.py:make", ("no such file", "_missing.py")),
        ("no_such_dir/{p}_model.py:make", ("no such file",)),
        ("{p}_no_such_module:make", ("no module named", "_no_such_module")),
        ("{p}_model.sub:make", ("no module named",)),
        ("{p}_raising:make", ("raised RuntimeError", "boom at import")),
        ("{p}_raising.py:make", ("raised RuntimeError", "boom at import")),
        ("{p}_dep:make", ("failed", "tb_no_such_dependency_xyz")),
        ("{p}_model:nope", ("has no attribute", "nope")),
        ("{p}_model:Holder.nope", ("has no attribute", "Holder.nope")),
        ("{p}_model.py:nope", ("has no attribute", "nope")),
        ("{p}_model:NOT_CALLABLE", ("not a function of the size n", "int")),
        ("{p}_model:1bad", ("not a Python name",)),
        ("{p}_model:a-b", ("not a Python name",)),
        ("{p}_model:Holder..make", ("not a Python name",)),
        ("1bad.mod:make", ("not a module name",)),
        ("bad-name:make", ("not a module name",)),
        ("{p}_model::make", ("not a module name",)),
    ],
)
def test_bad_target(modules: str, spec: str, words: tuple[str, ...]) -> None:
    spec = spec.format(p=modules)
    with pytest.raises(TargetError) as info:
        load_target(spec)
    message = str(info.value)
    assert "\n" not in message
    assert f"TARGET {spec!r}" in message
    for word in words:
        assert word in message, (word, message)
    assert isinstance(info.value, SweepError) and isinstance(info.value, ValueError)


def test_a_failed_file_import_leaves_no_module_behind(modules: str) -> None:
    import sys

    before = set(sys.modules)
    with pytest.raises(TargetError):
        load_target(f"{modules}_raising.py:make")
    assert not {m for m in set(sys.modules) - before if "raising" in m}


def test_names() -> None:
    assert default_name(T.linear) == "linear"
    assert default_name(lambda n: n) == "lambda"

    def mlp_heads(n: int) -> None: ...

    mlp_heads.__name__ = "mlp-heads"
    assert default_name(mlp_heads) == "mlp-heads-target"  # not a built-in's folder
    assert check_name("my.model_2-a") == "my.model_2-a"
    for bad in ("", ".hidden", "a/b", "a b", "x" * 101, "mlp-heads", "rnn-lm", "report"):
        with pytest.raises(TargetError, match="--name"):
            check_name(bad)


@pytest.mark.parametrize("reserved", ["quick", "report", "trainability"])
def test_default_name_of_a_function_with_a_reserved_name_is_usable(reserved: str) -> None:
    def fn(n: int) -> None: ...

    fn.__name__ = reserved
    check_name(default_name(fn))


def test_reference() -> None:
    assert parse_reference("1024x1024x1024") == (1024, 1024, 1024)
    assert parse_reference("64") == (64, 64, 64)
    assert parse_reference("2X3x4") == (2, 3, 4)
    for bad in ("", "axb", "1x2", "0", "1x2x3x4", "70000", "-1x2x3"):
        with pytest.raises(TargetError, match="--reference"):
            parse_reference(bad)


# ----------------------------------------------------------------------------- --sizes


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("16,32,64", [16, 32, 64]),
        ("64, 16,16 ,32", [16, 32, 64]),  # sorted, each once, spaces allowed
        ("7", [7]),
        ("16:1024", [16, 32, 64, 128, 256, 512, 1024]),
        ("16:100", [16, 32, 64]),  # the end where a step does not land on it is left out
        ("5:5", [5]),
        ("16:54:1.5", [16, 24, 36, 54]),  # the end included where the step hits it
        ("16:60:1.5", [16, 24, 36, 54]),
        ("16:1024:1.5", [16, 24, 36, 54, 81, 122, 182, 273, 410, 615, 923]),
        ("10:1000:10", [10, 100, 1000]),  # 10 * 10 * 10 is 1000.0000000000001 in floats
        ("100:110:1.1", [100, 110]),
        ("1:9:3", [1, 3, 9]),
        ("1:10:3", [1, 3, 9]),
        ("16:64:x2", [16, 32, 64]),
        ("1:3:1.1", [1, 2, 3]),  # steps that round to the same size count once
    ],
)
def test_sizes(text: str, sizes: list[int]) -> None:
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("4:2", ("1 <= start <= end",)),
        ("0:4", ("1 <= start <= end",)),
        ("4:8:1", ("factor must be above 1",)),
        ("4:8:0.5", ("factor must be above 1",)),
        ("4:8:-2", ("factor must be above 1",)),
        ("4:8:nan", ("factor must be above 1",)),
        ("4:8:inf", ("factor must be above 1",)),
        ("a,b", ("expected a list",)),
        ("1.5,2", ("expected a list",)),
        ("", ("expected a list",)),
        (",", ("expected a list",)),
        ("1:2:3:4", ("expected a list",)),
        ("1:", ("expected a list",)),
        ("1:2:", ("expected a list",)),
        ("0,4", ("from 1 to",)),
        ("-1,4", ("from 1 to",)),
        ("2000000000", ("from 1 to",)),
        (",".join(str(i) for i in range(1, MAX_SIZES + 2)), (f"more than {MAX_SIZES}",)),
        ("1:1000000:1.01", (f"more than {MAX_SIZES}",)),
        ("1:2:1.0000000001", (f"more than {MAX_SIZES}",)),
    ],
)
def test_bad_sizes(text: str, words: tuple[str, ...]) -> None:
    with pytest.raises(TargetError) as info:
        parse_sizes(text)
    assert str(info.value).startswith("--sizes")
    for word in words:
        assert word in str(info.value)


def test_most_sizes_are_accepted() -> None:
    sizes = ",".join(str(i) for i in range(1, MAX_SIZES + 1))
    assert parse_sizes(sizes) == list(range(1, MAX_SIZES + 1))


# ----------------------------------------------------------------------------- orders


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("O(log n)", (0.0, "log n")),
        ("O(log(n))", (0.0, "log n")),
        ("O(logn)", (0.0, "log n")),
        ("O(n log n)", (1.0, "n log n")),
        ("O(nlogn)", (1.0, "n log n")),
        ("O(n*log(n))", (1.0, "n log n")),
        ("O(n * log n)", (1.0, "n log n")),
        ("O(L log L)", (1.0, "n log n")),
        ("O(T log T)", (1.0, "n log n")),
        ("O(1)", (0.0, None)),
        ("O(n)", (1.0, None)),
        ("O(L)", (1.0, None)),
        ("O(n^2)", (2.0, None)),
        ("O(n²)", (2.0, None)),
        ("O(n**3)", (3.0, None)),
        ("O(n^1.5)", (1.5, None)),
        ("O( n ^ 2 )", (2.0, None)),
    ],
)
def test_order_class(text: str, parsed: tuple[float, str | None]) -> None:
    assert parse_order_class(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["", "n", "n^2", "O()", "O(log)", "O(n log m)", "O(L log n)", "O(n^)", "O(n^2 log n)",
     "O(2^n)", "O(n^-1)", "O(n!)", "O(nn)", "o(n)", "O(log log n)"],
)  # fmt: skip
def test_order_class_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not an order"):
        parse_order_class(text)


# ----------------------------------------------------------------------------- judge

SIZES = np.array([16 * 2**i for i in range(9)], dtype=float)  # 16 .. 4096


def _judge(values: np.ndarray | list, order: str, tolerance: float = 0.15) -> str:
    expected, order_class = parse_order_class(order)
    fit = fit_order(SIZES, values)
    return judge(fit, expected, tolerance, order_class=order_class).verdict


def test_n_log_n_is_n_log_n() -> None:
    y = SIZES * np.log(SIZES)
    fit = fit_order(SIZES, y)
    assert fit.best_class == "n log n"
    assert _judge(y, "O(n log n)") == CONFIRMED
    # n log n is not O(n): never confirmed (its fitted power, ~1.15, sits at the band's edge)
    assert _judge(y, "O(n)") != CONFIRMED
    assert _judge(y, "O(n^2)") == REFUTED
    assert _judge(y, "O(log n)") == REFUTED
    assert _judge(y, "O(1)") == REFUTED


def test_log_n_is_log_n() -> None:
    y = 3.0 * np.log(SIZES) + 1.0
    assert fit_order(SIZES, y).best_class == "log n"
    assert _judge(y, "O(log n)") == CONFIRMED
    assert _judge(y, "O(1)") != CONFIRMED
    assert _judge(y, "O(n)") == REFUTED
    assert _judge(y, "O(n log n)") == REFUTED


def test_noisy_logarithmic_data() -> None:
    rng = np.random.default_rng(0)
    nlogn = [list(n * np.log(n) * (1 + 0.02 * rng.standard_normal(5))) for n in SIZES]
    assert _judge(nlogn, "O(n log n)") == CONFIRMED
    assert _judge(nlogn, "O(n^2)") == REFUTED
    logn = [list(np.log(n) * (1 + 0.02 * rng.standard_normal(5))) for n in SIZES]
    assert _judge(logn, "O(log n)") == CONFIRMED
    assert _judge(logn, "O(n)") == REFUTED


@pytest.mark.parametrize(
    ("values", "order"),
    [
        (3 * SIZES + 5, "O(n log n)"),
        (3 * SIZES + 5, "O(log n)"),
        (SIZES**2 + SIZES, "O(n log n)"),
        (SIZES**2, "O(log n)"),
        (np.full_like(SIZES, 7.0), "O(log n)"),  # a constant
    ],
)
def test_exact_polynomial_counts_refute_a_logarithmic_claim(values: np.ndarray, order: str) -> None:
    expected, order_class = parse_order_class(order)
    fit = fit_order(SIZES, values)
    assert fit.poly_degree is not None
    verdict = judge(fit, expected, 0.15, order_class=order_class)
    assert verdict.verdict == REFUTED
    assert "polynomial" in verdict.reason


def test_exact_polynomial_counts_confirm_their_degree() -> None:
    assert _judge(3 * SIZES + 5, "O(n)") == CONFIRMED
    assert _judge(SIZES**2 + SIZES, "O(n^2)") == CONFIRMED
    assert _judge(SIZES**2 + SIZES, "O(n)") == REFUTED


def test_a_short_range_is_inconclusive_for_a_logarithmic_claim() -> None:
    n = np.array([16.0, 20.0, 24.0, 28.0])
    fit = fit_order(n, n * np.log(n))
    assert judge(fit, 1.0, 0.15, order_class="n log n").verdict == INCONCLUSIVE


@pytest.mark.parametrize(("power", "order"), [(1.5, "O(n log n)"), (1.3, "O(n log n)"),
                                              (0.5, "O(log n)"), (0.3, "O(log n)")])  # fmt: skip
def test_a_power_is_not_a_logarithmic_class(power: float, order: str) -> None:
    assert _judge(SIZES**power, order) != CONFIRMED


# ----------------------------------------------------------------------------- contract


def _forward(factory, size: int = 3):  # type: ignore[no-untyped-def]
    exp = target_experiment(factory, "t")
    return exp.forward("model", size, {"seed": 0}, torch.device("cpu"), torch.float32)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("raises", ("raises(3) raised ValueError", "cannot build size 3")),
        ("forward_raises", ("forward_raises(3)() raised KeyError", "forward broke")),
        ("not_callable", ("not_callable(3) returned a int", "not a function")),
        ("not_a_tensor", ("not_a_tensor(3)() returned a float", "not a scalar loss tensor")),
        ("vector", ("vector(3)() returned a tensor of shape (3,)", "not a scalar")),
        ("integer", ("integer(3)() returned a torch.int64 tensor", "not a float loss")),
        ("no_grad", ("no_grad(3)() returned a loss with no graph",)),
    ],
)
def test_contract_errors_name_the_function_and_size(name: str, words: tuple[str, ...]) -> None:
    factory = getattr(T, name)
    with pytest.raises(TargetError) as info:
        _forward(factory)()
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_a_good_target_gives_its_loss_as_the_root() -> None:
    roots = _forward(T.chain, 4)()
    assert len(roots) == 1 and roots[0].shape == () and roots[0].grad_fn is not None
    roots[0].backward()


def test_device_and_dtype_keywords_are_passed() -> None:
    seen: list[tuple[object, object]] = []

    def with_device(n: int, device: torch.device, dtype: torch.dtype = torch.float32):
        seen.append((device, dtype))
        return T.linear(n)

    def with_kwargs(n: int, **kwargs: object):
        seen.append((kwargs.get("device"), kwargs.get("dtype")))
        return T.linear(n)

    def plain(n: int):
        seen.append(("none", "none"))
        return T.linear(n)

    for factory in (with_device, with_kwargs, plain):
        exp = target_experiment(factory, "t")
        exp.forward("model", 2, {"seed": 0}, torch.device("cpu"), torch.float64)
    assert seen == [
        (torch.device("cpu"), torch.float64),
        (torch.device("cpu"), torch.float64),
        ("none", "none"),
    ]
    assert target_experiment(plain, "t").notes  # says it runs where it puts its tensors
    assert not target_experiment(with_device, "t").notes


def test_the_seed_is_set_before_each_build() -> None:
    a = _forward(T.linear, 4)()[0].item()
    b = _forward(T.linear, 4)()[0].item()
    assert a == b
