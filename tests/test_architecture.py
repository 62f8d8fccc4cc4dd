"""The shape of the package (docs/architecture.md): layers that import only downwards
(import-linter's contract, also run by CI), small modules, no private name across a
package's border, and every package saying what it holds."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "trainbench"
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _package(path: Path) -> str:
    """The package a module belongs to: trainbench.<package> (or the top level)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert long == {}


def test_no_private_name_is_imported_from_another_package() -> None:
    crossing = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trainbench."):
                target = ".".join(node.module.split(".")[:2])
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and target != _package(path):
                        crossing.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
    assert crossing == []


def test_every_package_declares_its_modules_in_all() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init}: no docstring"
        declared = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                        and any(getattr(t, "id", "") == "__all__" for t in n.targets))  # fmt: skip
        modules = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
        assert sorted(declared) == modules, init


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("lint-imports")
    if tool is None:
        pytest.skip("import-linter is not installed")
    env = {"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([tool, "--config", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, env=env)  # fmt: skip


def test_the_layers_contract_holds_and_catches_an_upward_import(tmp_path: Path) -> None:
    kept = _lint_imports(ROOT)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    copy = tmp_path / "tree"
    shutil.copytree(PACKAGE, copy / "trainbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    settings = copy / "trainbench" / "core" / "settings.py"
    settings.write_text(settings.read_text() + "\nimport trainbench.cli.app  # upwards\n")
    broken = _lint_imports(copy)
    assert broken.returncode != 0
    assert "trainbench.core.settings -> trainbench.cli.app" in broken.stdout


@pytest.mark.parametrize("args", [["--help"], ["mlp-heads", "--help"], ["rnn-lm", "--help"],
                                  ["sweep", "--help"], ["verify", "--help"]])  # fmt: skip
def test_help_loads_no_torch(args: list[str]) -> None:
    script = ("import sys\nfrom trainbench.cli.app import app\ntry:\n"
              f"    app({args!r})\nexcept SystemExit:\n    pass\n"
              "print('torch loaded' if 'torch' in sys.modules else 'no torch')\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("no torch")


# Function-local imports of trainbench keep `trainbench --help` from loading torch; only the
# command line needs them. The calibration module imports itself by name for its workers.
LAZY = ("trainbench/cli/",)
SELF = {"trainbench/stats/noise.py": "trainbench.stats.noise"}


def test_imports_are_at_the_top_outside_the_command_line() -> None:
    inner = []
    for path in _modules():
        rel = str(path.relative_to(ROOT))
        if rel.startswith(LAZY):
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                         [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                if any(n.startswith("trainbench") and n != SELF.get(rel) for n in names):
                    inner.append(f"{rel}:{node.lineno}")
    assert inner == []
