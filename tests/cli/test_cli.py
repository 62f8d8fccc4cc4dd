"""Tests for the command line (:mod:`trainbench.cli.app`): ``trainbench mlp-heads`` and
``--version``.

Every real sweep is tiny (width 8, batch 4, in-dim 3, depth <= 4, one round, no minimum
timing time), so a run costs about a second, most of it the torch.mm reference rate the CLI
measures once per run. The runs whose output several tests read are module-scoped fixtures.
Timings are never asserted; counts (FLOPs) are exact and are compared with the closed forms
in :mod:`trainbench.models.mlp_heads`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import FakeSweep, assert_one_line_error, files_under, invoke
from typer.testing import Result

import trainbench.harness.runner
from trainbench import __version__
from trainbench.claims.parse import shipped_claims
from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.harness.runner import SweepConfig
from trainbench.models.mlp_heads import flops_backward, flops_backward_per_head, flops_forward

pytestmark = pytest.mark.slow  # real sweeps or real processes

WIDTH, BATCH, IN_DIM, MAX_DEPTH = 8, 4, 3, 8
TINY = [
    "--max-depth", str(MAX_DEPTH),
    "--width", str(WIDTH),
    "--batch", str(BATCH),
    "--in-dim", str(IN_DIM),
    "--repeats", "1",
    "--max-passes", "1",
    "--min-time", "0",
]  # fmt: skip
SIZES = [1, 2, 3, 4, 6, 8]  # sqrt(2)-spaced grid from 1 to 8, rounded to unique integers
CONTROL_SIZES = [2, 4, 8]  # the O(L²) control: every other size, counting down from the top
POINTS = sorted([("full", s) for s in SIZES] + [("per-head", s) for s in CONTROL_SIZES])
VARIANTS = ["full", "per-head"]
RESULT_FILES = ("measurements.csv", "samples.csv", "summary.json")

POINT_METRICS = (
    "fwd_s", "fwd_iqr_s", "bwd_s", "bwd_iqr_s", "fwd_flops", "bwd_flops", "graph_nodes",
    "graph_depth", "saved_bytes", "peak_bytes", "gflops", "efficiency",
)  # fmt: skip
ENV_KEYS = (
    "torch_version", "device", "threads", "dtype", "seed", "cpu_model", "trainbench_version",
    "timestamp",
)  # fmt: skip
FIT_KEYS = ("variant", "metric", "exponent", "ci_low", "ci_high", "best_class", "verdict")
CLAIM_KEYS = ("id", "statement", "variant", "metric", "expected", "verdict", "reason")
VERDICTS = {"confirmed", "refuted", "inconclusive"}
CLAIM_IDS = [c.id for c in shipped_claims("mlp-heads")]
MAIN_CLAIMS = [c for c in shipped_claims("mlp-heads") if not c.is_control]




def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m trainbench ARGS`` in a fresh interpreter (the real entry point path)."""
    return subprocess.run(
        [sys.executable, "-m", "trainbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )






# --------------------------------------------------------------------------- real sweeps


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("json-run")
    return invoke("mlp-heads", *TINY, "--out", out, "--json"), out


@pytest.fixture(scope="module")
def summary(json_run: tuple[Result, Path]) -> dict[str, Any]:
    result, _ = json_run
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_stdout_is_only_json(json_run: tuple[Result, Path]) -> None:
    result, _ = json_run
    assert result.exit_code == 0, result.output
    assert result.exception is None
    json.loads(result.stdout)  # raises on anything before or after the document
    assert result.stdout.lstrip().startswith("{")
    assert "Traceback" not in result.output
    assert result.stderr == ""  # no progress bar, no tables with --json


def test_json_top_level(summary: dict[str, Any]) -> None:
    for key in ("format_version", "experiment", "complete", "config", "environment"):
        assert key in summary
    for key in ("points", "fits", "claims"):
        assert isinstance(summary[key], list)
    assert summary["format_version"] == 1
    assert summary["experiment"] == "mlp-heads"
    assert summary["complete"] is True


def test_json_config(summary: dict[str, Any]) -> None:
    config = summary["config"]
    assert config["sizes"] == SIZES
    assert config["grid_ratio"] == pytest.approx(math.sqrt(2.0))
    assert config["variants"] == VARIANTS
    assert config["min_size"] == 1 and config["max_size"] == MAX_DEPTH
    assert config["options"] == {
        "width": WIDTH,
        "batch": BATCH,
        "in_dim": IN_DIM,
        "activation": "sigmoid",
        "impl": "einsum",
    }
    assert config["control"] is True
    assert config["repeats"] == 1 and config["min_time"] == 0


def test_json_environment(summary: dict[str, Any]) -> None:
    env = summary["environment"]
    for key in ENV_KEYS:
        assert key in env, key
    assert env["torch_version"] == torch.__version__
    assert env["trainbench_version"] == __version__
    assert env["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert isinstance(env["threads"], int) and env["threads"] >= 1
    assert env["dtype"] == "float32"
    assert env["seed"] == 0
    assert isinstance(env["cpu_model"], str) and env["cpu_model"]
    assert dt.datetime.fromisoformat(env["timestamp"]).tzinfo is not None


def test_json_points(summary: dict[str, Any]) -> None:
    points = summary["points"]
    keys = sorted((p["variant"], p["size"]) for p in points)
    assert keys == POINTS  # each exactly once
    for p in points:
        for metric in POINT_METRICS:
            assert metric in p, (metric, p)
        assert p["fwd_s"] > 0 and p["bwd_s"] > 0
        assert p["fwd_iqr_s"] >= 0 and p["bwd_iqr_s"] >= 0
        for count in ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes"):
            assert isinstance(p[count], int) and p[count] > 0, (count, p)
        assert p["efficiency"] is None or p["efficiency"] > 0


def test_json_flop_counts_match_formulas(summary: dict[str, Any]) -> None:
    """FLOPs are counted, not timed: they must equal the closed forms exactly."""
    args = (WIDTH, BATCH, IN_DIM)
    for p in summary["points"]:
        depth = p["size"]
        assert p["fwd_flops"] == flops_forward(depth, *args), p
        if p["variant"] == "full":
            assert p["bwd_flops"] == flops_backward(depth, *args), p
        else:
            assert p["bwd_flops"] == flops_backward_per_head(depth, *args), p


def test_json_fits(summary: dict[str, Any]) -> None:
    fits = summary["fits"]
    assert fits
    for f in fits:
        for key in FIT_KEYS:
            assert key in f, (key, f)
        assert f["variant"] in VARIANTS
        assert f["verdict"] is None or f["verdict"] in VERDICTS
    assert {f["variant"] for f in fits} == set(VARIANTS)
    exact = {(f["variant"], f["metric"]): f for f in fits}
    assert exact[("full", "bwd_flops")]["exponent"] == pytest.approx(1.0, abs=1e-6)


def test_json_claims(summary: dict[str, Any]) -> None:
    claims = summary["claims"]
    assert [c["id"] for c in claims] == CLAIM_IDS  # control on: every claim judged
    for c in claims:
        for key in CLAIM_KEYS:
            assert key in c, (key, c)
        assert c["verdict"] in VERDICTS
        assert isinstance(c["reason"], str) and c["reason"]
    assert {c["variant"] for c in claims} == set(VARIANTS)


def test_result_files(json_run: tuple[Result, Path], summary: dict[str, Any]) -> None:
    _, out = json_run
    folder = out / "mlp-heads"
    for name in RESULT_FILES:
        assert (folder / name).is_file(), name
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == summary

    with open(folder / "measurements.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    for column in ("variant", "size", "format_version", "fwd_s", "bwd_flops"):
        assert column in columns
    assert sorted((r["variant"], int(r["size"])) for r in rows) == POINTS
    assert {r["format_version"] for r in rows} == {"1"}
    by_key = {(p["variant"], p["size"]): p for p in summary["points"]}
    for r in rows:
        assert int(r["bwd_flops"]) == by_key[(r["variant"], int(r["size"]))]["bwd_flops"]

    with open(folder / "samples.csv", newline="", encoding="utf-8") as f:
        samples = list(csv.DictReader(f))
    assert {(s["variant"], int(s["size"]), s["phase"]) for s in samples} == {
        (v, s, phase) for v, s in POINTS for phase in ("fwd", "bwd")
    }


def test_no_control(tmp_path: Path) -> None:
    result = invoke("mlp-heads", *TINY, "--no-control", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["config"]["control"] is False
    assert summary["config"]["variants"] == ["full"]
    assert sorted(p["size"] for p in summary["points"]) == SIZES
    assert {p["variant"] for p in summary["points"]} == {"full"}
    assert {f["variant"] for f in summary["fits"]} == {"full"}
    assert summary["claims"]
    assert all(c["variant"] != "per-head" for c in summary["claims"])


def verdict_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("Problem 1b:")]


def test_table_output(tmp_path: Path) -> None:
    result = invoke("mlp-heads", *TINY, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "mlp-heads: measurements" in result.stdout
    assert "growth order" in result.stdout
    lines = verdict_lines(result.stdout)
    assert len(lines) == len(MAIN_CLAIMS)
    for line, claim in zip(lines, MAIN_CLAIMS, strict=True):
        assert claim.statement in line
    assert "\nresults: " in result.stdout  # the path may be folded on a long TMPDIR
    for name in RESULT_FILES:
        assert (tmp_path / "mlp-heads" / name).is_file()


def test_quiet_output(tmp_path: Path) -> None:
    result = invoke("mlp-heads", *TINY, "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert len(verdict_lines(result.stdout)) == len(MAIN_CLAIMS)
    assert "measurements" not in result.stdout
    assert "growth order" not in result.stdout
    assert "results:" not in result.stdout
    assert (tmp_path / "mlp-heads" / "summary.json").is_file()


# --------------------------------------------------------------- what reaches the core


@pytest.fixture
def fake_sweep(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeSweep:
    fake = FakeSweep()
    # the CLI imports run_sweep from trainbench.harness.runner inside the command
    monkeypatch.setattr(trainbench.harness.runner, "run_sweep", fake)
    monkeypatch.chdir(tmp_path)
    return fake


def test_options_reach_sweep_config(fake_sweep: FakeSweep, tmp_path: Path) -> None:
    out = tmp_path / "res"
    result = invoke(
        "mlp-heads", "--max-depth", "16", "--min-depth", "2", "--width", "32", "--batch", "8",
        "--in-dim", "5", "--activation", "tanh", "--impl", "fused", "--repeats", "2",
        "--min-time", "0.01", "--threads", "1", "--seed", "7", "--no-control",
        "--control-max-depth", "9", "--out", out, "--json", "--resume", "--time-budget", "90",
        "--max-memory", "1.5GiB",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["experiment"] == "mlp-heads"
    assert len(fake_sweep.calls) == 1
    call = fake_sweep.calls[0]
    assert call["exp"] is EXPERIMENTS["mlp-heads"]
    assert call["out_dir"] == out
    cfg = call["cfg"]
    assert cfg == SweepConfig(
        min_size=2,
        max_size=16,
        options={"width": 32, "batch": 8, "in_dim": 5, "activation": "tanh", "impl": "fused"},
        control=False,
        control_max_size=9,
        repeats=2,
        min_time=0.01,
        threads=1,
        seed=7,
        device="auto",
        dtype="float32",
        time_budget=90.0,
        max_memory=int(1.5 * 2**30),
    )
    assert call["resume"] is True
    # plain values, not the CLI's enums (which compare equal to their strings)
    for value in (cfg.options["activation"], cfg.options["impl"], cfg.device, cfg.dtype):
        assert type(value) is str
    assert type(cfg.min_time) is float and type(cfg.repeats) is int


def test_defaults_reach_sweep_config(
    fake_sweep: FakeSweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out is results/ under the working folder
    result = invoke("mlp-heads", "--quiet")
    assert result.exit_code == 0, result.output
    (call,) = fake_sweep.calls
    assert call["out_dir"] == Path("results")
    assert call["cfg"] == SweepConfig(
        min_size=1,
        max_size=64,
        options={"width": 256, "batch": 64, "in_dim": 32, "activation": "sigmoid",
                 "impl": "einsum"},
        control=True,
        control_max_size=32,
        repeats=6,
        min_time=0.01,
        threads=0,
        seed=0,
        device="auto",
        dtype="float32",
    )  # fmt: skip
    assert call["resume"] is False  # no budget, default memory limit, no resume


def test_cpu_float64_reach_sweep_config(fake_sweep: FakeSweep, tmp_path: Path) -> None:
    result = invoke(
        "mlp-heads",
        "--device",
        "cpu",
        "--dtype",
        "float64",
        "--control",
        "--out",
        tmp_path,
        "--json",
    )
    assert result.exit_code == 0, result.output
    cfg = fake_sweep.calls[0]["cfg"]
    assert (cfg.device, cfg.dtype, cfg.control) == ("cpu", "float64", True)


# ---------------------------------------------------------------------------- bad input

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available")

BAD_INPUT = [
    pytest.param(["--max-depth", "0"], ("--max-depth",), id="max-depth-0"),
    pytest.param(["--max-depth", "-3"], ("--max-depth",), id="max-depth-negative"),
    pytest.param(["--max-depth", "2.5"], ("--max-depth",), id="max-depth-float"),
    pytest.param(["--max-depth", "abc"], ("--max-depth",), id="max-depth-text"),
    pytest.param(
        ["--min-depth", "8", "--max-depth", "4"], ("--min-depth", "--max-depth"), id="min-gt-max"
    ),
    pytest.param(["--width", "0"], ("--width",), id="width-0"),
    pytest.param(["--batch", "0"], ("--batch",), id="batch-0"),
    pytest.param(["--in-dim", "0"], ("--in-dim",), id="in-dim-0"),
    pytest.param(["--repeats", "0"], ("--repeats",), id="repeats-0"),
    pytest.param(["--min-time", "-1"], ("--min-time",), id="min-time-negative"),
    pytest.param(["--device", "tpu"], ("--device",), id="device-tpu"),
    pytest.param(["--device", "cuda"], ("--device",), id="device-cuda", marks=NO_CUDA),
    pytest.param(["--activation", "foo"], ("--activation",), id="activation-foo"),
    pytest.param(["--impl", "foo"], ("--impl",), id="impl-foo"),
    pytest.param(["--out", "{file}/sub"], ("--out",), id="out-under-file"),
    pytest.param(["--dtype", "float16"], ("--dtype",), id="dtype-float16"),
    pytest.param(["--frobnicate"], ("--frobnicate",), id="unknown-option"),
    pytest.param(["--seed", "99999999999999999999"], ("--seed",), id="seed-huge"),
    pytest.param(["--threads", "100000"], ("--threads",), id="threads-huge"),
    pytest.param(["--width", "99999999999999999999"], ("--width",), id="width-huge"),
    pytest.param(
        ["--width", "1000000", "--max-depth", "8"], ("--max-depth", "GiB"), id="too-big-for-memory"
    ),
]


@pytest.mark.parametrize(("args", "names"), BAD_INPUT)
def test_bad_input_is_one_line_error(
    args: list[str], names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [a.replace("{file}", str(blocker)) for a in args]
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    # TINY first: the case's own options come later and win, and should one be accepted by
    # mistake the sweep that runs is a tiny one
    result = invoke("mlp-heads", *TINY, *args)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, names)
    assert files_under(out) == []
    assert files_under(tmp_path / "results") == []
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["a-file"]


def test_unknown_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("frobnicate")
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("frobnicate",))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ version and entry points


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"trainbench {__version__}\n"
    assert result.stderr == ""


def test_version_python_m(tmp_path: Path) -> None:
    proc = run_module("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"trainbench {__version__}\n"
    assert proc.stderr == ""


def test_python_m_bad_input_is_one_line_error(tmp_path: Path) -> None:
    proc = run_module("mlp-heads", "--max-depth", "0", cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, ("--max-depth",))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "1e9"])
def test_infinite_min_time_is_one_line_error(fake_sweep: FakeSweep, value: str) -> None:
    # the core is faked, so with the bug this test records the call instead of hanging
    result = invoke("mlp-heads", *TINY, "--min-time", value, "--out", "out")
    assert fake_sweep.calls == []
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--min-time",))


def test_absurd_depth_is_refused_up_front(fake_sweep: FakeSweep) -> None:
    result = invoke("mlp-heads", *TINY, "--max-depth", "99999999999999999999", "--out", "out")
    assert fake_sweep.calls == []
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--max-depth",))


@pytest.mark.parametrize("blocked", ["mlp-heads", "mlp-heads/summary.json"])
def test_out_blocked_by_what_is_there(blocked: str, tmp_path: Path) -> None:
    """A file where the run folder goes, or a folder where a result file goes."""
    target = tmp_path / blocked
    if blocked.endswith(".json"):
        target.mkdir(parents=True)
    else:
        target.write_text("in the way\n", encoding="utf-8")
    result = invoke("mlp-heads", *TINY, "--out", tmp_path)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--out",))
