"""``trainbench sweep TARGET``: bad input is one line and exit 2; a good run, --json,
--strict and --resume of a complete run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import targets_for_tests as T
from cli_helpers import assert_one_line_error, files_under, invoke
from fake_instruments import measure_with

import trainbench.results.reading

pytestmark = pytest.mark.slow  # real sweeps or real processes

FAST = (
    "--repeats", "1", "--max-passes", "1", "--min-time", "0.002", "--reference", "64",
    "--threads", "1",
)  # fmt: skip
RUN_FILES = {"summary.json", "measurements.csv", "samples.csv"}

LINEAR = T.spec("linear")
# (name, arguments after "sweep", words the error line must hold)
BAD = [
    ("no colon", ["targets_for_tests", "--sizes", "2,4"], ["expected package.module:function"]),
    ("empty function", [f"{T.FILE}:", "--sizes", "2,4"], ["expected package.module:function"]),
    ("empty module", [":linear", "--sizes", "2,4"], ["expected package.module:function"]),
    ("missing file", ["/no/such/dir/model.py:make", "--sizes", "2,4"], ["no such file"]),
    ("missing module", ["tb_no_such_module_xyz:make", "--sizes", "2,4"], ["no module named"]),
    ("missing function", [T.spec("nope"), "--sizes", "2,4"], ["has no attribute", "nope"]),
    ("not callable", [T.spec("NOT_A_FUNCTION"), "--sizes", "2,4"], ["not a function"]),
    ("not an identifier", [T.spec("1x"), "--sizes", "2,4"], ["not a Python name"]),
    ("bad module name", ["bad-name:make", "--sizes", "2,4"], ["not a module name"]),
    ("target raises", [T.spec("raises"), "--sizes", "2,4"], ["raises(2) raised ValueError"]),
    ("forward raises", [T.spec("forward_raises"), "--sizes", "2,4"], ["forward_raises(2)()"]),
    ("returns non-callable", [T.spec("not_callable"), "--sizes", "2,4"], ["not_callable(2)"]),
    ("non-scalar", [T.spec("vector"), "--sizes", "2,4"], ["vector(2)()", "not a scalar"]),
    ("no grad", [T.spec("no_grad"), "--sizes", "2,4"], ["no_grad(2)()", "no graph"]),
    ("int loss", [T.spec("integer"), "--sizes", "2,4"], ["integer(2)()", "not a float loss"]),
    ("not a tensor", [T.spec("not_a_tensor"), "--sizes", "2,4"], ["not_a_tensor(2)()"]),
    ("sizes backwards", [LINEAR, "--sizes", "4:2"], ["--sizes", "start <= end"]),
    ("sizes words", [LINEAR, "--sizes", "a,b"], ["--sizes", "expected a list"]),
    ("sizes zero", [LINEAR, "--sizes", "0,4"], ["--sizes", "from 1"]),
    ("sizes factor", [LINEAR, "--sizes", "2:64:1"], ["--sizes", "above 1"]),
    ("sizes four parts", [LINEAR, "--sizes", "1:2:3:4"], ["--sizes"]),
    ("sizes missing", [LINEAR], ["--sizes"]),
    ("builtin too large", ["mlp-heads", "--sizes", "1:200000"], ["--sizes", "too large"]),
    ("bad claim", [LINEAR, "--sizes", "2,4", "--claim", "O(n log m)"], ["--claim"]),
    ("claim no O", [LINEAR, "--sizes", "2,4", "--claim", "n^2"], ["--claim", "not an order"]),
    ("unknown metric", [LINEAR, "--sizes", "2,4", "--claim", "O(n)", "--metric", "wall"],
     ["--metric", "wall"]),
    ("tolerance zero", [LINEAR, "--sizes", "2,4", "--claim", "O(n)", "--tolerance", "0"],
     ["--tolerance"]),
    ("tolerance nan", [LINEAR, "--sizes", "2,4", "--claim", "O(n)", "--tolerance", "nan"],
     ["--tolerance"]),
    ("name of a builtin", [LINEAR, "--sizes", "2,4", "--name", "mlp-heads"],
     ["--name", "built-in"]),
    ("name reserved", [LINEAR, "--sizes", "2,4", "--name", "report"], ["--name"]),
    ("name with slash", [LINEAR, "--sizes", "2,4", "--name", "a/b"], ["--name", "a/b"]),
    ("name dot first", [LINEAR, "--sizes", "2,4", "--name", ".x"], ["--name"]),
    ("name of builtin run", ["mlp-heads", "--sizes", "2,4", "--name", "x"], ["--name"]),
    ("option on a target", [LINEAR, "--sizes", "2,4", "--option", "width=3"], ["--option"]),
    ("option unknown", ["mlp-heads", "--sizes", "2,4", "--option", "colour=3"],
     ["unknown option", "colour"]),
    ("option bad value", ["mlp-heads", "--sizes", "2,4", "--option", "width=0"], ["width"]),
    pytest.param(
        ["mlp-heads", "--sizes", "2,4", "--option", "width"],
        ["--option", "NAME=VALUE"],
        id="option no equals",
    ),
    ("strict without claim", [LINEAR, "--sizes", "2,4", "--strict"], ["--strict", "--claim"]),
    ("bad reference", [LINEAR, "--sizes", "2,4", "--reference", "axb"], ["--reference"]),
    ("reference too big", [LINEAR, "--sizes", "2,4", "--reference", "70000"], ["--reference"]),
    ("negative time budget", [LINEAR, "--sizes", "2,4", "--time-budget", "-1"],
     ["--time-budget"]),
    ("zero time budget", [LINEAR, "--sizes", "2,4", "--time-budget", "0"], ["--time-budget"]),
    ("bad max memory", [LINEAR, "--sizes", "2,4", "--max-memory", "lots"], ["--max-memory"]),
    ("zero max memory", [LINEAR, "--sizes", "2,4", "--max-memory", "0"], ["--max-memory"]),
    ("infinite min time", [LINEAR, "--sizes", "2,4", "--min-time", "inf"], ["--min-time"]),
    ("unknown device", [LINEAR, "--sizes", "2,4", "--device", "tpu"], ["--device"]),
    ("zero repeats", [LINEAR, "--sizes", "2,4", "--repeats", "0"], ["--repeats"]),
    ("backward fails", [T.spec("bad_backward"), "--sizes", "2,4"],
     ["backward of bad_backward(2)()", "RuntimeError"]),
    ("claim beyond the fit", [LINEAR, "--sizes", "2,4", "--claim", "O(n^5)"], ["--claim"]),
    ("name of an rnn-lm run", [LINEAR, "--sizes", "2,4", "--name", "rnn-lm-gru"], ["--name"]),
    ("unknown cell", ["rnn-lm", "--sizes", "2,4", "--option", "cell=nope"],
     ["cell must be one of", "ugrnn"]),
    ("unknown activation", ["mlp-heads", "--sizes", "2,4", "--option", "activation=x"],
     ["activation must be one of"]),
    ("even kernel", ["ugcnn", "--sizes", "2,4", "--option", "kernel=2"], ["kernel must be odd"]),
]  # fmt: skip


@pytest.fixture
def no_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything is counted or timed."""

    def measured(*args: object, **kwargs: object) -> None:
        raise AssertionError("a measurement started")

    measure_with(monkeypatch, count=measured, time=measured, matmul_rate=measured)


def _case(c: Any) -> Any:
    """A row of BAD as a pytest parameter named by its first item (or the one already made)."""
    return pytest.param(*c[1:], id=c[0]) if isinstance(c[0], str) else c


@pytest.mark.parametrize(("args", "words"), [_case(c) for c in BAD])
def test_bad_input_is_one_line_error(
    args: list[str], words: list[str], tmp_path: Path, no_measuring: None
) -> None:
    out = tmp_path / "out"
    result = invoke("sweep", *args, "--out", out, "--quiet")
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, tuple(words))
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("extra", [["--metric", "wall"], ["--tolerance", "-1"]])
def test_metric_and_tolerance_are_checked_without_a_claim(
    extra: list[str], tmp_path: Path, no_measuring: None
) -> None:
    result = invoke("sweep", LINEAR, "--sizes", "2,4", *extra, "--out", tmp_path, "--quiet")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("trainbench: error:")


def test_not_a_cuda_machine_is_one_line_error(tmp_path: Path, no_measuring: None) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = invoke("sweep", LINEAR, "--sizes", "2,4", "--device", "cuda", "--out", tmp_path)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--device cuda",))


# ----------------------------------------------------------------------------- good runs


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("json")
    result = invoke("sweep", LINEAR, "--sizes", "2:16", "--claim", "O(n)", "--metric",
                    "bwd_flops", "--json", "--out", out, *FAST)  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return json.loads(result.stdout), out


def test_json_run(json_run: tuple[dict, Path]) -> None:
    summary, out = json_run
    assert summary["run"] == "linear" and summary["complete"] is True
    assert summary["config"]["sizes"] == [2, 4, 8, 16]
    assert summary["config"]["options"]["target"] == LINEAR
    (claim,) = summary["claims"]
    assert claim["id"] == "claim" and claim["verdict"] == "confirmed"
    assert (claim["metric"], claim["expected"], claim["variant"]) == ("bwd_flops", "O(n)", "model")
    assert {p.name for p in (out / "linear").iterdir()} == RUN_FILES
    on_disk = json.loads((out / "linear" / "summary.json").read_text())
    assert on_disk["claims"][0]["verdict"] == "confirmed"
    assert [p["size"] for p in on_disk["points"]] == [2, 4, 8, 16]


def test_report_of_a_cli_run_reproduces_the_target(json_run: tuple[dict, Path]) -> None:
    _, out = json_run
    result = invoke("report", out / "linear")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    report = (out / "linear" / "report" / "report.md").read_text()
    assert "trainbench sweep" in report and str(T.FILE) in report
    assert "--claim 'O(n)'" in report and "--metric bwd_flops" in report


def _strict(out: Path, claim: str, *extra: str):  # type: ignore[no-untyped-def]
    return invoke("sweep", LINEAR, "--sizes", "2:16", "--claim", claim, "--metric", "bwd_flops",
                  "--strict", "--quiet", "--out", out, *FAST, *extra)  # fmt: skip


def test_strict_exit_codes_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refuted = _strict(tmp_path / "a", "O(n^2)")
    assert refuted.exit_code == 1, (refuted.stdout, refuted.stderr)
    assert "refuted" in refuted.stdout and "Traceback" not in refuted.output
    confirmed = _strict(tmp_path / "b", "O(n)")
    assert confirmed.exit_code == 0, (confirmed.stdout, confirmed.stderr)
    assert "confirmed" in confirmed.stdout

    # --resume of the complete run: nothing is counted or timed again
    folder = tmp_path / "b" / "linear"
    samples = (folder / "samples.csv").read_text()
    measurements = (folder / "measurements.csv").read_text()

    def measured(*args: object, **kwargs: object) -> None:
        raise AssertionError("a measurement started")

    measure_with(monkeypatch, count=measured, time=measured, matmul_rate=measured)
    resumed = _strict(tmp_path / "b", "O(n)", "--resume")
    assert resumed.exit_code == 0, (resumed.stdout, resumed.stderr)
    assert "confirmed" in resumed.stdout
    assert (folder / "samples.csv").read_text() == samples
    assert (folder / "measurements.csv").read_text() == measurements
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["linear"]  # nothing kept aside
    # --resume with another setting is refused
    other = _strict(tmp_path / "b", "O(n)", "--resume", "--seed", "1")
    assert_one_line_error(other.exit_code, other.stdout, other.stderr, ("seed",))


def test_a_target_that_fails_at_a_larger_size_keeps_what_was_measured(tmp_path: Path) -> None:
    result = invoke("sweep", T.spec("raises_from_8"), "--sizes", "2,4,8,16", "--json",
                    "--out", tmp_path, *FAST)  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    summary = json.loads(result.stdout)
    assert [p["size"] for p in summary["points"]] == [2, 4]
    assert [f["size"] for f in summary["failed_points"]] == [8]
    assert summary["failed_points"][0]["oom"] is False


def test_builtin_through_sweep(tmp_path: Path) -> None:
    result = invoke("sweep", "mlp-heads", "--sizes", "1,2,4,8", "--option", "width=8",
                    "--option", "batch=4", "--option", "in-dim=4", "--no-control", "--json",
                    "--out", tmp_path, *FAST)  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    summary = json.loads(result.stdout)
    assert summary["experiment"] == "mlp-heads"
    assert summary["config"]["options"]["in_dim"] == 4
    assert {p["variant"] for p in summary["points"]} == {"full"}
    ids = {c["id"] for c in summary["claims"]}
    assert "P1b-graph" in ids
    assert (tmp_path / "mlp-heads" / "summary.json").is_file()


def test_resume_of_a_compiled_run_keeps_how_each_point_compiled(tmp_path: Path) -> None:
    args = ["sweep", LINEAR, "--sizes", "2,4,8", "--compile", *FAST, "--out", str(tmp_path),
            "--quiet"]  # fmt: skip
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    folder = tmp_path / "linear"
    before = trainbench.results.reading.read_run(folder)[1]
    assert list(before["compiled"]) == [True, True, True] or before["compile_note"].notna().all()
    again = invoke(*args, "--resume")
    assert again.exit_code == 0, again.output
    after = trainbench.results.reading.read_run(folder)[1]
    for column in ("compiled", "compile_s", "eager_s", "speedup"):
        assert list(after[column]) == list(before[column]), column


def test_a_backward_that_fails_at_a_larger_size_is_a_failed_point(tmp_path: Path) -> None:
    result = invoke("sweep", T.spec("bad_backward_from_8"), "--sizes", "2,3,4,6,8,16", *FAST,
                    "--out", str(tmp_path), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["complete"] is True
    (failed,) = summary["failed_points"]
    assert failed["size"] == 8 and failed["oom"] is False
    assert "RuntimeError" in failed["reason"]
    assert sorted(p["size"] for p in summary["points"]) == [2, 3, 4, 6]


def test_a_target_file_that_parses_arguments_on_import(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import argparse, torch\n"
        "args = argparse.ArgumentParser().parse_args()\n"
        "def make(n):\n"
        "    w = torch.ones(n, requires_grad=True)\n"
        "    return lambda: (w * w).sum()\n",
        encoding="utf-8",
    )
    result = invoke("sweep", f"{script}:make", "--sizes", "2,4,8", *FAST,
                    "--out", str(tmp_path / "out"), "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "make" / "summary.json").is_file()
