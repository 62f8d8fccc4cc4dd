"""Tests for ``trainbench rnn-lm`` (Problem 4: the RNN language model against T).

The same style as ``tests/test_cli.py``: every real sweep is tiny (vocabulary 11, hidden 8,
batch 2, T <= 32, one round, no minimum timing time, one thread), so a run costs about a
second, most of it the torch.mm reference rate measured once per run. The runs whose output
several tests read are module-scoped fixtures. Timings are never asserted; counts (FLOPs,
graph nodes, graph depth) are exact and are compared with the closed forms in
:mod:`trainbench.models.rnn_lm`.

The helpers below are small copies of those in ``tests/test_cli.py``: ``tests`` is not a
package, so importing from it depends on how pytest is started.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import FakeSweep, assert_one_line_error, files_under, invoke
from typer.testing import Result

import trainbench.harness.runner
from trainbench.claims.parse import run_claims
from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.harness.runner import SweepConfig
from trainbench.models import rnn_lm

pytestmark = pytest.mark.slow  # real sweeps or real processes

VOCAB, HIDDEN, BATCH, MAX_LEN = 11, 8, 2, 16
MODEL = ["--vocab", str(VOCAB), "--hidden", str(HIDDEN), "--batch", str(BATCH)]
TIMING = ["--repeats", "1", "--max-passes", "1", "--min-time", "0", "--threads", "1"]
TINY = ["--max-len", str(MAX_LEN), *MODEL, *TIMING]
SIZES = [1, 2, 3, 4, 6, 8, 11, 16]  # sqrt(2)-spaced grid from 1 to 16, unique integers
CONTROL_SIZES = [2, 4, 8, 16]  # the control: every other size, counting down from the top
POINTS = sorted([("full", s) for s in SIZES] + [("per-step", s) for s in CONTROL_SIZES])
VARIANTS = ["full", "per-step"]
RESULT_FILES = ("measurements.csv", "samples.csv", "summary.json")
OPTIONS = {"cell": "ugrnn", "vocab": VOCAB, "hidden": HIDDEN, "batch": BATCH}

RNN_LM = EXPERIMENTS["rnn-lm"]
RECURRENT_CLAIMS = ["P4", "P4-flops", "P4-span", "P4-span-flops", "P4-memory", "P4-control",
                    "P4-control-flops"]  # fmt: skip
MAIN_RECURRENT_CLAIMS = ["P4", "P4-flops", "P4-span", "P4-span-flops", "P4-memory"]  # no control
NONE_CLAIMS = ["P4-none", "P4-none-span", "P4-none-span-flops"]
OTHER_CELLS = ["ugrnn2", "gru", "gru-torch", "gru-torch-fast", "torch-gru"]
VERDICTS = {"confirmed", "refuted", "inconclusive"}








def assert_counts_match_closed_forms(points: list[dict[str, Any]], cell: str) -> None:
    """FLOPs, graph nodes and graph depth are counted, not timed: exact closed forms."""
    model = (VOCAB, HIDDEN, BATCH, cell)
    for p in points:
        length, per_step = p["size"], p["variant"] == "per-step"
        assert p["fwd_flops"] == rnn_lm.flops_forward(length, *model), p
        if per_step:
            assert p["bwd_flops"] == rnn_lm.flops_backward_per_step(length, *model), p
        else:
            assert p["bwd_flops"] == rnn_lm.flops_backward(length, *model), p
        if cell in rnn_lm.GRAPH_SHAPE:  # torch-gru's graph is torch's own decomposition
            assert p["graph_nodes"] == rnn_lm.graph_nodes(length, cell, per_step=per_step), p
            assert p["graph_depth"] == rnn_lm.graph_depth(length, cell, per_step=per_step), p


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """``--threads 1`` sets torch's thread count for the whole process: put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- real sweeps


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("rnn-json-run")
    return invoke("rnn-lm", *TINY, "--out", out, "--json"), out


@pytest.fixture(scope="module")
def summary(json_run: tuple[Result, Path]) -> dict[str, Any]:
    result, _ = json_run
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def mlp_point_keys(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The keys of an mlp-heads point, from a very small mlp-heads run."""
    out = tmp_path_factory.mktemp("mlp-json-run")
    result = invoke(
        "mlp-heads", "--max-depth", "3", "--width", "4", "--batch", "2", "--in-dim", "2",
        "--no-control", *TIMING, "--out", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)["points"]
    assert points
    keys = {frozenset(p) for p in points}
    assert len(keys) == 1
    return set(keys.pop())


def test_json_stdout_is_only_json(json_run: tuple[Result, Path]) -> None:
    result, _ = json_run
    assert result.exit_code == 0, result.output
    assert result.exception is None
    json.loads(result.stdout)  # raises on anything before or after the document
    assert result.stdout.lstrip().startswith("{")
    assert "Traceback" not in result.output
    assert result.stderr == ""  # no progress bar, no tables with --json


def test_json_top_level(summary: dict[str, Any]) -> None:
    assert summary["format_version"] == 1
    assert summary["experiment"] == "rnn-lm"
    assert summary["complete"] is True
    for key in ("points", "fits", "claims", "notes"):
        assert isinstance(summary[key], list)


def test_json_config(summary: dict[str, Any]) -> None:
    config = summary["config"]
    assert config["experiment"] == "rnn-lm"
    assert config["cell"] == "ugrnn"  # the options are also given at the top level
    assert config["options"] == OPTIONS
    for key, value in OPTIONS.items():
        assert config[key] == value, key
    assert config["sizes"] == SIZES
    assert config["variants"] == VARIANTS
    assert config["min_size"] == 1 and config["max_size"] == MAX_LEN
    assert config["control"] is True
    assert config["control_max_size"] == 64
    assert config["repeats"] == 1 and config["min_time"] == 0 and config["threads"] == 1
    assert config["device"] == "auto" and config["dtype"] == "float32" and config["seed"] == 0
    assert summary["environment"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_json_notes(summary: dict[str, Any]) -> None:
    assert "the control (per-step) is measured at every other size, T = 2, 4, 8, 16" in summary[
        "notes"
    ]
    assert any(n.startswith("T < 2 is measured but not fitted") for n in summary["notes"])
    assert all(f["fit_from"] >= 2 for f in summary["fits"])


def test_json_points(summary: dict[str, Any], mlp_point_keys: set[str]) -> None:
    points = summary["points"]
    assert sorted((p["variant"], p["size"]) for p in points) == POINTS  # each exactly once
    for p in points:
        assert set(p) == mlp_point_keys, (set(p) ^ mlp_point_keys, p)
        assert p["fwd_s"] > 0 and p["bwd_s"] > 0
        assert p["fwd_iqr_s"] >= 0 and p["bwd_iqr_s"] >= 0
        for count in ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes"):
            assert isinstance(p[count], int) and p[count] > 0, (count, p)
        assert p["rounds"] == 1 and p["format_version"] == 1


def test_json_counts_match_closed_forms(summary: dict[str, Any]) -> None:
    assert_counts_match_closed_forms(summary["points"], "ugrnn")
    # the recurrence: the critical path grows by GRAPH_SHAPE's p nodes per step
    by_key = {(p["variant"], p["size"]): p for p in summary["points"]}
    assert by_key[("full", 8)]["graph_depth"] == 14 + 14 * 7 + 1


def test_json_fits(summary: dict[str, Any]) -> None:
    fits = summary["fits"]
    assert {f["variant"] for f in fits} == set(VARIANTS)
    for f in fits:
        assert f["verdict"] is None or f["verdict"] in VERDICTS
    exact = {(f["variant"], f["metric"]): f for f in fits}
    assert exact[("full", "bwd_flops")]["exponent"] == pytest.approx(1.0, abs=1e-6)
    assert exact[("full", "bwd_flops")]["exact"] is True


def test_json_claims(summary: dict[str, Any]) -> None:
    claims = summary["claims"]
    assert [c["id"] for c in claims] == RECURRENT_CLAIMS  # control on: every claim judged
    assert [c.id for c in run_claims(RNN_LM.name, OPTIONS)] == RECURRENT_CLAIMS
    for c in claims:
        assert c["problem"] == "4"
        assert c["verdict"] in VERDICTS
        assert isinstance(c["reason"], str) and c["reason"]
    assert {c["variant"] for c in claims} == set(VARIANTS)
    assert [c["id"] for c in claims if c["is_control"]] == ["P4-control", "P4-control-flops"]
    # exact counts, exactly affine in T from T = 2 (T = 1 is not fitted): T = 2..16 is 8x
    by_id = {c["id"]: c for c in claims}
    for claim in ("P4-flops", "P4-span", "P4-span-flops", "P4-memory"):
        assert by_id[claim]["verdict"] == "confirmed", by_id[claim]
        assert by_id[claim]["exponent"] == 1.0 and by_id[claim]["fit_sizes"] == [2, 16]


def test_result_files(json_run: tuple[Result, Path], summary: dict[str, Any]) -> None:
    _, out = json_run
    folder = out / "rnn-lm-ugrnn"
    assert sorted(files_under(out)) == sorted(folder / name for name in RESULT_FILES)
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == summary

    with open(folder / "measurements.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["variant"], int(r["size"])) for r in rows) == POINTS
    by_key = {(p["variant"], p["size"]): p for p in summary["points"]}
    for r in rows:
        point = by_key[(r["variant"], int(r["size"]))]
        for count in ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth"):
            assert int(r[count]) == point[count], (count, r)

    with open(folder / "samples.csv", newline="", encoding="utf-8") as f:
        samples = list(csv.DictReader(f))
    assert {(s["variant"], int(s["size"]), s["phase"]) for s in samples} == {
        (v, s, phase) for v, s in POINTS for phase in ("fwd", "bwd")
    }


# ------------------------------------------------------------------- no recurrence


NONE_MAX_LEN = 32
NONE_SIZES = [1, 2, 3, 4, 6, 8, 11, 16, 23, 32]


@pytest.fixture(scope="module")
def none_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    # --max-len 32: T = 1 (no cell step at all, hence a shallower graph) is never fitted, and
    # the fitted range, 2..32, is 16x, above fit.MIN_RANGE.
    out = tmp_path_factory.mktemp("rnn-none-run")
    result = invoke(
        "rnn-lm", "--cell", "none", "--no-control", "--max-len", str(NONE_MAX_LEN), *MODEL,
        *TIMING, "--out", out, "--json",
    )  # fmt: skip
    return result, out


@pytest.fixture(scope="module")
def none_summary(none_run: tuple[Result, Path]) -> dict[str, Any]:
    result, _ = none_run
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_none_config_and_files(none_run: tuple[Result, Path], none_summary: dict[str, Any]) -> None:
    _, out = none_run
    config = none_summary["config"]
    assert none_summary["experiment"] == "rnn-lm"
    assert config["cell"] == "none" and config["options"]["cell"] == "none"
    assert config["control"] is False
    assert config["variants"] == ["full"]
    assert config["sizes"] == NONE_SIZES
    assert sorted(p["size"] for p in none_summary["points"]) == NONE_SIZES
    assert {p["variant"] for p in none_summary["points"]} == {"full"}
    folder = out / "rnn-lm-none"
    assert sorted(files_under(out)) == sorted(folder / name for name in RESULT_FILES)


def test_none_claims(none_summary: dict[str, Any]) -> None:
    assert [c["id"] for c in none_summary["claims"]] == NONE_CLAIMS
    # the per-step claim of `none` is judged only when its variant was measured
    assert [c.id for c in run_claims(RNN_LM.name, {"cell": "none"})] == [
        *NONE_CLAIMS,
        "P4-none-per-step-flops",
    ]


def test_none_counts_and_constant_depth(none_summary: dict[str, Any]) -> None:
    points = none_summary["points"]
    assert_counts_match_closed_forms(points, "none")
    depths = {p["graph_depth"] for p in points if p["size"] >= 2}
    assert depths == {rnn_lm.graph_depth(2, "none")}  # O(1): one constant from T = 2 on
    assert depths == {rnn_lm.graph_depth(NONE_MAX_LEN, "none")}


def test_none_span_is_confirmed(none_summary: dict[str, Any]) -> None:
    span = {c["id"]: c for c in none_summary["claims"]}["P4-none-span"]
    assert span["metric"] == "graph_depth" and span["expected"] == "O(1)"
    assert span["verdict"] == "confirmed", span["reason"]
    assert "exact count" in span["reason"]
    assert span["exponent"] == 0
    assert span["best_class"] == "1"
    assert span["fit_sizes"] == [2, NONE_MAX_LEN]


# ------------------------------------------------------------ gates from x alone (beyond P4)


@pytest.mark.parametrize(
    ("cell", "verdicts"),
    [
        ("ugrnn-x-scan", {"X-scan-span": "confirmed", "X-scan-work-superlinear": "refuted",
                          "X-scan-flops": "confirmed", "X-scan-span-flops": "confirmed"}),
        ("ugrnn-x", {"X-loop-span": "confirmed", "X-loop-not-log": "refuted",
                     "X-loop-memory": "confirmed", "X-loop-span-flops": "confirmed"}),
    ],
)  # fmt: skip
def test_the_x_only_cells_judge_their_own_claims(
    cell: str, verdicts: dict[str, str], tmp_path: Path
) -> None:
    """The scan's depth reads O(log T) and the loop's O(T), from the CLI, on exact counts;
    Problem 4's claims (about a recurrence through a nonlinearity) are not theirs."""
    result = invoke(
        "rnn-lm", "--cell", cell, "--no-control", "--max-len", "32", *MODEL, *TIMING,
        "--out", tmp_path, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    claims = {c["id"]: c for c in summary["claims"]}
    assert not any(i.startswith("P4") for i in claims)
    for cid, verdict in verdicts.items():
        assert claims[cid]["verdict"] == verdict, (cid, claims[cid]["reason"])
    for p in summary["points"]:
        assert p["graph_depth"] == rnn_lm.graph_depth(p["size"], cell), p["size"]
    if cell == "ugrnn-x-scan":  # refuted as O(T) because it grows faster, not slower
        assert claims["X-scan-work-superlinear"]["ci_low"] > 1.02
    # a negative check says it came out as it must, and does not stand for its fit's row
    negative = "X-scan-work-superlinear" if cell == "ugrnn-x-scan" else "X-loop-not-log"
    assert "— refuted (as expected) (" in result_lines(cell, tmp_path / "text")
    fit = {(f["variant"], f["metric"]): f for f in summary["fits"]}
    main = {"ugrnn-x-scan": "X-scan-work", "ugrnn-x": "X-loop-span"}[cell]
    row = fit["full", claims[negative]["metric"]]
    assert row["verdict"] == claims[main]["verdict"] != claims[negative]["verdict"]


def result_lines(cell: str, out: Path) -> str:
    result = invoke(
        "rnn-lm", "--cell", cell, "--no-control", "--max-len", "32", *MODEL, *TIMING,
        "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())


# --------------------------------------------------------------------- the other cells


@pytest.mark.parametrize("cell", OTHER_CELLS)
def test_other_cells(cell: str, tmp_path: Path) -> None:
    result = invoke(
        "rnn-lm", "--cell", cell, "--max-len", "4", "--no-control", *MODEL, *TIMING,
        "--out", tmp_path, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    config = summary["config"]
    assert config["cell"] == cell
    assert config["options"] == OPTIONS | {"cell": cell}
    assert config["variants"] == ["full"]
    assert sorted(p["size"] for p in summary["points"]) == [1, 2, 3, 4]
    assert_counts_match_closed_forms(summary["points"], cell)  # every cell counts on CPU
    assert [c["id"] for c in summary["claims"]] == MAIN_RECURRENT_CLAIMS
    folder = tmp_path / f"rnn-lm-{cell}"
    assert sorted(files_under(tmp_path)) == sorted(folder / name for name in RESULT_FILES)


# ------------------------------------------------------------------------ table output


def verdict_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("Problem 4:")]


def test_table_output(tmp_path: Path) -> None:
    result = invoke("rnn-lm", *TINY, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "rnn-lm: measurements" in result.stdout
    assert "growth order" in result.stdout
    main_claims = [c for c in run_claims(RNN_LM.name, OPTIONS) if not c.is_control]
    assert [c.id for c in main_claims] == MAIN_RECURRENT_CLAIMS
    lines = verdict_lines(result.stdout)
    assert len(lines) == len(main_claims)
    for line, claim in zip(lines, main_claims, strict=True):
        assert line.startswith(f"Problem 4: {claim.statement} — "), line
    # the results line names the run's folder (rich may fold a long path over lines)
    assert "\nresults: " in result.stdout
    tail = result.stdout.split("\nresults: ", 1)[1].replace("\n", "")
    assert tail.startswith(f"{tmp_path / 'rnn-lm-ugrnn'}{os.sep}"), tail
    for name in RESULT_FILES:
        assert (tmp_path / "rnn-lm-ugrnn" / name).is_file()


def test_help_lists_the_options() -> None:
    result = invoke("rnn-lm", "--help")
    assert result.exit_code == 0, result.output
    for option in (
        "--max-len", "--min-len", "--cell", "--vocab", "--hidden", "--batch", "--control",
        "--no-control", "--control-max-len", "--repeats", "--min-time", "--threads",
        "--device", "--dtype", "--seed", "--out", "--json", "--quiet",
    ):  # fmt: skip
        assert option in result.stdout, option


# --------------------------------------------------------------- what reaches the core


@pytest.fixture
def fake_sweep(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeSweep:
    fake = FakeSweep()
    # the CLI imports run_sweep from trainbench.harness.runner inside the command
    monkeypatch.setattr(trainbench.harness.runner, "run_sweep", fake)
    monkeypatch.chdir(tmp_path)
    return fake


@pytest.mark.parametrize("cell", rnn_lm.CELLS)
def test_options_reach_sweep_config(cell: str, fake_sweep: FakeSweep, tmp_path: Path) -> None:
    out = tmp_path / "res"
    result = invoke(
        "rnn-lm", "--max-len", "64", "--min-len", "2", "--cell", cell, "--vocab", "50",
        "--hidden", "16", "--batch", "4", "--no-control", "--control-max-len", "9",
        "--repeats", "2", "--min-time", "0.01", "--threads", "1", "--device", "cpu",
        "--dtype", "float64", "--seed", "7", "--out", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["experiment"] == "rnn-lm"
    (call,) = fake_sweep.calls
    assert call["exp"] is RNN_LM
    assert call["out_dir"] == out
    cfg = call["cfg"]
    assert cfg == SweepConfig(
        min_size=2,
        max_size=64,
        options={"cell": cell, "vocab": 50, "hidden": 16, "batch": 4},
        control=False,
        control_max_size=9,
        repeats=2,
        min_time=0.01,
        threads=1,
        seed=7,
        device="cpu",
        dtype="float64",
    )
    # plain values, not the CLI's enums (which compare equal to their strings)
    for value in (cfg.options["cell"], cfg.device, cfg.dtype):
        assert type(value) is str
    for value in (cfg.options["vocab"], cfg.options["hidden"], cfg.options["batch"]):
        assert type(value) is int
    assert (out / f"rnn-lm-{cell}").is_dir()  # checked writable up front


def test_defaults_reach_sweep_config(fake_sweep: FakeSweep, tmp_path: Path) -> None:
    result = invoke("rnn-lm", "--quiet")  # the fixture runs it in tmp_path
    assert result.exit_code == 0, result.output
    (call,) = fake_sweep.calls
    assert call["exp"] is RNN_LM
    assert call["out_dir"] == Path("results")
    assert call["cfg"] == SweepConfig(
        min_size=1,
        max_size=256,
        options={"cell": "ugrnn", "vocab": 1000, "hidden": 128, "batch": 16},
        control=True,
        control_max_size=64,
        repeats=6,
        min_time=0.01,
        threads=0,
        seed=0,
        device="auto",
        dtype="float32",
    )
    assert (tmp_path / "results" / "rnn-lm-ugrnn").is_dir()


# ---------------------------------------------------------------------------- bad input

BAD_INPUT = [
    pytest.param(["--max-len", "0"], ("--max-len",), id="max-len-0"),
    pytest.param(["--max-len", "-1"], ("--max-len",), id="max-len-negative"),
    pytest.param(["--max-len", "abc"], ("--max-len",), id="max-len-text"),
    pytest.param(["--max-len", "2.5"], ("--max-len",), id="max-len-float"),
    pytest.param(["--min-len", "0"], ("--min-len",), id="min-len-0"),
    pytest.param(["--min-len", "9", "--max-len", "4"], ("--min-len", "--max-len"), id="min-gt-max"),
    pytest.param(["--cell", "foo"], ("--cell", "foo"), id="cell-foo"),
    pytest.param(["--cell", "UGRNN"], ("--cell",), id="cell-upper-case"),
    pytest.param(["--vocab", "1"], ("--vocab",), id="vocab-1"),
    pytest.param(["--vocab", "0"], ("--vocab",), id="vocab-0"),
    pytest.param(["--vocab", "1000001"], ("--vocab",), id="vocab-above-max"),
    pytest.param(["--hidden", "0"], ("--hidden",), id="hidden-0"),
    pytest.param(["--hidden", "99999999999999999999"], ("--hidden",), id="hidden-huge"),
    pytest.param(["--batch", "0"], ("--batch",), id="batch-0"),
    pytest.param(["--control-max-len", "0"], ("--control-max-len",), id="control-max-len-0"),
    pytest.param(["--max-len", "200000"], ("--max-len", "too large"), id="max-len-too-large"),
    pytest.param(
        ["--min-len", "200000", "--max-len", "200000"], ("--max-len",), id="both-too-large"
    ),
    pytest.param(
        ["--vocab", "1000000", "--hidden", "1000000"],
        ("--max-len", "GiB"),
        id="too-big-for-memory",
    ),
    pytest.param(["--repeats", "0"], ("--repeats",), id="repeats-0"),
    pytest.param(["--min-time", "inf"], ("--min-time",), id="min-time-inf"),
    pytest.param(["--dtype", "float16"], ("--dtype",), id="dtype-float16"),
    pytest.param(["--device", "tpu"], ("--device",), id="device-tpu"),
    pytest.param(["--out", "{file}/sub"], ("--out",), id="out-under-file"),
    pytest.param(["--max-depth", "4"], ("--max-depth",), id="mlp-heads-option"),
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
    result = invoke("rnn-lm", *TINY, *args)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, names)
    assert files_under(out) == []
    assert files_under(tmp_path / "results") == []
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["a-file"]


@pytest.mark.parametrize("blocked", ["rnn-lm-ugrnn", "rnn-lm-ugrnn/summary.json"])
def test_out_blocked_by_what_is_there(blocked: str, tmp_path: Path) -> None:
    """A file where the run folder goes, or a folder where a result file goes."""
    target = tmp_path / blocked
    if blocked.endswith(".json"):
        target.mkdir(parents=True)
    else:
        target.write_text("in the way\n", encoding="utf-8")
    result = invoke("rnn-lm", *TINY, "--out", tmp_path)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--out",))
    assert not (tmp_path / "rnn-lm-ugrnn" / "measurements.csv").exists()
