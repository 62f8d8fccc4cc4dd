"""Tests for ``trainbench verify`` (:mod:`trainbench.verify.run` and the ``verify`` command).

The exit-code tests run a FAKE experiment registered in ``EXPERIMENTS`` for the module: a
chain of ``n`` products of fixed 2×2 matrices, one loss term per product, so that its counts
are exact and known (graph nodes 2n + 3, graph depth n + 4, backward FLOPs 32n − 16; with one
backward per term, n(n + 1)/2 + 2n nodes and 16n² FLOPs). Its claims are on counts only, so
every verdict is deterministic; times are measured (that is what a run does) but never judged
here. A run costs about three seconds, most of it the report's plots.

``plan_runs``, ``sweep_config`` and ``VerifyResult`` are also tested without running anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import assert_one_line_error, ctrl_c_heard, files_under, invoke
from typer.testing import Result

import trainbench.claims.parse
import trainbench.experiments.builtin
from trainbench.claims.claim import Claim, ClaimsError
from trainbench.claims.parse import default_claims, load_claims
from trainbench.experiments.builtin import FULL, PER_HEAD, Experiment
from trainbench.stats.fit import fit_order
from trainbench.stats.judge import judge
from trainbench.trainability.config import VARIANTS
from trainbench.verify.run import (
    FALLBACK,
    VERIFY_FILE,
    RunPlan,
    VerifyResult,
    check_plans,
    plan_runs,
    sweep_config,
    trainability_config,
    widen,
)

pytestmark = pytest.mark.slow  # real sweeps or real processes

MAX_SIZE = 16
SIZES = [1, 2, 3, 4, 6, 8, 11, 16]
CONTROL_SIZES = [2, 4, 8, 16]


def _build_fake(
    n: int, options: Mapping[str, Any], device: torch.device, dtype: torch.dtype
) -> Any:
    w = torch.full((2, 2), 0.5, device=device, dtype=dtype, requires_grad=True)
    x = torch.ones(2, 2, device=device, dtype=dtype)

    def forward() -> list[torch.Tensor]:
        h, terms = x, []
        for _ in range(n):
            h = torch.mm(h, w)
            terms.append(h.sum())
        return terms

    return forward


FAKE = Experiment(
    name="fake",
    title="a chain of n 2×2 products, a loss term on each",
    size_name="n",
    size_option="size",
    variants=(FULL, PER_HEAD),
    build=_build_fake,
    reference_matmul=lambda o: (2, 2, 2),
    estimate_bytes=lambda n, o, itemsize: 1000,
    defaults={"width": 4},
)

SETTINGS = (
    f"max_size = {MAX_SIZE}, control_max_size = {MAX_SIZE}, repeats = 1, max_passes = 2, "
    "min_time = 0.001, threads = 1"
)
RUNS = f"\n[runs.fake]\nquick = {{ {SETTINGS} }}\nthorough = {{ {SETTINGS} }}\n"


def fake_claim(cid: str, variant: str, metric: str, expected: str, **extra: Any) -> str:
    lines = [
        "[[claim]]",
        f'id = "{cid}"',
        'problem = "fake"',
        f'statement = "{metric} of {variant} is {expected}"',
        'experiment = "fake"',
        f'variant = "{variant}"',
        f'metric = "{metric}"',
        f'expected = "{expected}"',
        f"tolerance = {extra.pop('tolerance', 0.02)}",
    ]
    for key, value in extra.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n\n"


# Every claim comes out as the file expects: F-nodes holds (its control grows faster),
# F-depth-square is false and the file says so.
PASSING = (
    fake_claim("F-nodes", "full", "graph_nodes", "O(n)", control="F-control")
    + fake_claim("F-flops", "full", "bwd_flops", "O(n)")
    + fake_claim("F-depth-square", "full", "graph_depth", "O(n^2)", expect="refuted")
    + fake_claim("F-control", "per-head", "graph_nodes", "O(n^2)", tolerance=0.3, is_control=True)
)
PASSING_IDS = ["F-nodes", "F-flops", "F-depth-square", "F-control"]
# ... and one claim that is false where the file expects it to hold.
FAILING = PASSING + fake_claim("F-square", "full", "graph_nodes", "O(n^2)")
FAILING_IDS = [*PASSING_IDS, "F-square"]


@pytest.fixture(scope="module")
def fake() -> Iterator[Experiment]:
    """The fake experiment in EXPERIMENTS for this module's tests (the CLI runs in-process)."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(trainbench.experiments.builtin.EXPERIMENTS, "fake", FAKE)
        yield FAKE
    torch.set_num_threads(threads)  # the runs set one thread


def write_claims(folder: Path, text: str, name: str = "claims.toml") -> Path:
    path = folder / name
    path.write_text(text + RUNS, encoding="utf-8")
    return path


def verify(claims: Path, out: Path, *extra: str) -> Result:
    return invoke("verify", "--quick", "--claims", claims, "--out", out, "--quiet", *extra)


def read_verify(out: Path) -> dict[str, Any]:
    return json.loads((out / VERIFY_FILE).read_text(encoding="utf-8"))


def rows_by_id(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in summary["rows"]}


# --------------------------------------------------------------------------- the fake itself


def test_fake_claims_file_loads(fake: Experiment, tmp_path: Path) -> None:
    claim_set = load_claims(write_claims(tmp_path, FAILING))
    assert [c.id for c in claim_set.claims] == FAILING_IDS
    assert claim_set.by_id()["F-depth-square"].expect == "refuted"
    assert claim_set.runs["fake"]["quick"]["max_size"] == MAX_SIZE


# ---------------------------------------------------------------------- every claim as expected


@pytest.fixture(scope="module")
def passing_run(fake: Experiment, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    folder = tmp_path_factory.mktemp("verify-pass")
    out = folder / "out"
    return verify(write_claims(folder, PASSING), out), out


def test_pass_exits_0(passing_run: tuple[Result, Path]) -> None:
    # (--quick's two jobs fall back to this process: FAKE is registered only here)
    result, _ = passing_run
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    assert result.stderr == ""  # no claim failed, --quiet: no progress


def test_pass_table_lists_every_claim(passing_run: tuple[Result, Path]) -> None:
    result, _ = passing_run
    for cid in PASSING_IDS:
        assert cid in result.stdout, cid
    assert "trainbench verify --quick" in result.stdout  # the table's title
    assert "refuted (as expected)" in result.stdout


def test_pass_verify_json(passing_run: tuple[Result, Path]) -> None:
    _, out = passing_run
    summary = read_verify(out)
    assert summary["kind"] == "verify"
    assert summary["failed"] == []
    assert summary["complete"] is True
    assert summary["quick"] is True
    assert summary["runs"] == ["fake"]
    assert summary["claims_file"].endswith("claims.toml")
    assert summary["command"].startswith("trainbench verify --quick --claims ")
    assert [r["id"] for r in summary["rows"]] == PASSING_IDS
    rows = rows_by_id(summary)
    for cid in ("F-nodes", "F-flops", "F-control"):
        assert rows[cid]["verdict"] == "confirmed", rows[cid]
        assert rows[cid]["expect"] == "confirmed"
        assert rows[cid]["as_expected"] is True
        assert rows[cid]["run"] == "fake"
    assert rows["F-nodes"]["control"].startswith("F-control: degree 2")
    assert rows["F-nodes"]["measured"].startswith("degree 1 (exact")


def test_expected_refutation_passes(passing_run: tuple[Result, Path]) -> None:
    _, out = passing_run
    row = rows_by_id(read_verify(out))["F-depth-square"]
    assert row["verdict"] == "refuted"
    assert row["expect"] == "refuted"
    assert row["as_expected"] is True
    assert row["measured"].startswith("degree 1")  # the depth is linear


def test_pass_run_folder(passing_run: tuple[Result, Path]) -> None:
    _, out = passing_run
    summary = json.loads((out / "fake" / "summary.json").read_text(encoding="utf-8"))
    assert summary["experiment"] == "fake"
    assert summary["complete"] is True
    assert [c["id"] for c in summary["claims"]] == PASSING_IDS
    # the counts of the fake are what it was built to give
    points = {(p["variant"], p["size"]): p for p in summary["points"]}
    assert sorted(points) == sorted(
        [("full", n) for n in SIZES] + [("per-head", n) for n in CONTROL_SIZES]
    )
    for (variant, n), p in points.items():
        if variant == "full":
            assert (p["graph_nodes"], p["graph_depth"]) == (2 * n + 3, n + 4), p
            assert p["bwd_flops"] == 32 * n - 16, p
        else:
            assert p["graph_nodes"] == n * (n + 1) // 2 + 2 * n, p
            assert p["bwd_flops"] == 16 * n * n, p
    for name in ("measurements.csv", "samples.csv"):
        assert (out / "fake" / name).is_file(), name


def test_pass_report_written(passing_run: tuple[Result, Path]) -> None:
    _, out = passing_run
    report = out / "report" / "report.md"
    assert report.is_file()
    assert report.stat().st_size > 0


# --------------------------------------------------------------------------- a claim refuted


@pytest.fixture(scope="module")
def failing_run(fake: Experiment, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    folder = tmp_path_factory.mktemp("verify-fail")
    out = folder / "out"
    return verify(write_claims(folder, FAILING), out), out


def test_fail_exits_1(failing_run: tuple[Result, Path]) -> None:
    result, _ = failing_run
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # only the failed claim
    assert lines[0].startswith("trainbench: claim F-square is refuted (expected confirmed)")
    for cid in PASSING_IDS:
        assert f"claim {cid} " not in result.stderr


def test_fail_table_still_printed(failing_run: tuple[Result, Path]) -> None:
    result, _ = failing_run
    for cid in FAILING_IDS:
        assert cid in result.stdout, cid


def test_fail_verify_json(failing_run: tuple[Result, Path]) -> None:
    _, out = failing_run
    summary = read_verify(out)
    assert summary["failed"] == ["F-square"]
    assert summary["complete"] is True
    rows = rows_by_id(summary)
    assert list(rows) == FAILING_IDS
    assert rows["F-square"]["verdict"] == "refuted"
    assert rows["F-square"]["as_expected"] is False
    assert all(rows[cid]["as_expected"] for cid in PASSING_IDS)
    assert (out / "fake" / "summary.json").is_file()
    assert (out / "report" / "report.md").is_file()


# --------------------------------------------------------------------------- --only, --json


def test_only_runs_the_claim_and_its_control(fake: Experiment, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = verify(write_claims(tmp_path, FAILING), out, "--only", "F-nodes")
    # F-square is not run: nothing fails
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    summary = read_verify(out)
    assert [r["id"] for r in summary["rows"]] == ["F-nodes", "F-control"]
    assert summary["failed"] == []
    assert "--only F-nodes" in summary["command"]
    assert "F-square" not in result.stdout
    run = json.loads((out / "fake" / "summary.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in run["claims"]] == ["F-nodes", "F-control"]


def test_json_prints_verify_json(fake: Experiment, tmp_path: Path) -> None:
    out = tmp_path / "out"
    claims = write_claims(tmp_path, FAILING)
    result = invoke("verify", "--quick", "--claims", claims, "--out", out, "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    printed = json.loads(result.stdout)  # nothing but the document on stdout
    assert printed == read_verify(out)
    assert printed["failed"] == ["F-square"]
    assert [r["id"] for r in printed["rows"]] == FAILING_IDS
    # the failure is still said on stderr, and nothing else is (no progress with --json)
    assert result.stderr.splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("trainbench: claim ")
    ]
    assert "F-square" in result.stderr


# --------------------------------------------------------------------------- usage errors


def test_only_unknown_id(fake: Experiment, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = verify(write_claims(tmp_path, PASSING), out, "--only", "nope")
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("'nope'", "--only"))
    assert files_under(out) == []


def test_only_nothing_named(fake: Experiment, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = verify(write_claims(tmp_path, PASSING), out, "--only", " , ")
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--only",))
    assert files_under(out) == []


def test_missing_claims_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "missing.toml"
    result = verify(missing, out)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, (str(missing),))
    assert files_under(out) == []


def test_claims_file_is_a_folder(tmp_path: Path) -> None:
    result = verify(tmp_path, tmp_path / "out")
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, (str(tmp_path),))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[[claim]\n", ("not valid TOML",)),
        (fake_claim("F-x", "full", "graph_nodes", "O(banana)"), ("'F-x'", "O(banana)")),
        (fake_claim("F-x", "sideways", "graph_nodes", "O(n)"), ("'F-x'", "'sideways'")),
        (PASSING + "[runs.fake.quick]\ncolour = 1\n", ("'colour'",)),
    ],
    ids=["not TOML", "bad order", "unknown variant", "unknown run setting"],
)
def test_malformed_claims_file(fake: Experiment, tmp_path: Path, text: str, names: Any) -> None:
    out = tmp_path / "out"
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    result = verify(path, out)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, (str(path), *names))
    assert files_under(out) == []


def test_runs_setting_the_sweep_refuses(fake: Experiment, tmp_path: Path) -> None:
    """A [runs] setting that the sweep cannot run is refused before anything runs."""
    out = tmp_path / "out"
    path = tmp_path / "claims.toml"
    path.write_text(PASSING + "[runs.fake]\nquick = { min_size = 32, max_size = 16 }\n", "utf-8")
    result = verify(path, out)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("min size",))
    assert files_under(out) == []


# --------------------------------------------------------------------------- plan_runs


SHIPPED_FOLDERS = [
    "mlp-heads", "rnn-lm-ugrnn", "rnn-lm-none", "rnn-lm-ugrnn-x-scan", "rnn-lm-ugrnn-x", "ugcnn",
    "trainability",
]  # fmt: skip


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "thorough"])
def test_plan_runs_shipped(quick: bool) -> None:
    claim_set = default_claims()
    plans = plan_runs(claim_set, quick=quick)
    assert [p.folder for p in plans] == SHIPPED_FOLDERS
    planned = [c.id for p in plans for c in p.claims]
    # each exactly once; the quick trainability run judges the sigmoid claims only
    other_acts = {c.id for c in claim_set.claims if c.options.get("activation", "sigmoid")
                  != "sigmoid"}  # fmt: skip
    assert other_acts == {f"P1{p}-{a}" for p in "ac" for a in ("glorot", "tanh", "relu")}
    assert sorted(planned) == sorted(
        c.id for c in claim_set.claims if not (quick and c.id in other_acts)
    )
    assert len(planned) == len(set(planned))
    for p in plans:
        assert {c.experiment for c in p.claims} == {p.experiment}
        if p.experiment != "trainability":  # one run measures every activation
            assert all(dict(c.options) == dict(p.options) for c in p.claims)
    by_folder = {p.folder: p for p in plans}
    assert [c.id for c in by_folder["rnn-lm-none"].claims] == [
        "P4-none", "P4-none-span", "P4-none-span-flops", "P4-none-per-step-flops",
    ]  # fmt: skip
    assert dict(by_folder["rnn-lm-ugrnn"].options) == {"cell": "ugrnn"}
    mode = "quick" if quick else "thorough"
    for folder, exp in [("mlp-heads", "mlp-heads"), ("rnn-lm-ugrnn", "rnn-lm"), ("ugcnn", "ugcnn")]:
        settings = by_folder[folder].settings
        written = dict(claim_set.runs[exp][mode])
        widened = written.pop("time_tolerance", None)
        assert dict(settings) == FALLBACK[mode] | written, folder
        for c in by_folder[folder].claims:
            original = claim_set.by_id()[c.id]
            if widened is not None and c.metric in ("fwd_s", "bwd_s"):
                # a quick run judges time claims on its wider band, not on their class
                assert c.tolerance == max(original.tolerance, widened) and not c.check_class
            else:
                assert c == original
    assert (
        by_folder["rnn-lm-ugrnn"].settings["max_size"] == claim_set.runs["rnn-lm"][mode]["max_size"]
    )
    # the `none` cell's own table: its fit window where its time per step is flat
    none = by_folder["rnn-lm-none"].settings
    assert dict(none) == FALLBACK[mode] | dict(claim_set.runs["rnn-lm"][mode]) | dict(
        claim_set.runs["rnn-lm-none"][mode])  # fmt: skip
    assert none["max_size"] == 1024
    assert by_folder["rnn-lm-ugrnn"].settings["max_size"] == (128 if quick else 256)
    train = by_folder["trainability"].settings
    assert list(train["depths"]) == claim_set.runs["trainability"][mode]["depths"]
    check_plans(plans)  # the shipped settings are ones the runs accept


def test_sweep_config_of_shipped_plans() -> None:
    plans = {p.folder: p for p in plan_runs(default_claims(), quick=True)}
    cfg = sweep_config(plans["mlp-heads"])
    assert cfg.control is True  # P1b-control is per-head
    assert (cfg.max_size, cfg.control_max_size, cfg.repeats) == (64, 32, 6)
    assert cfg.min_size == 1
    rnn = sweep_config(plans["rnn-lm-ugrnn"])
    assert rnn.options == {"cell": "ugrnn"} and rnn.max_size == 128 and rnn.control is True
    # the cell-less run's per-step claim needs the per-step variant measured
    assert sweep_config(plans["rnn-lm-none"]).control is True
    # select the full-variant claims of the cell-less run only: no control
    only_full = default_claims().select(["P4-none", "P4-none-span"])
    (plan,) = plan_runs(only_full, quick=True)
    assert sweep_config(plan).control is False


def test_a_runs_table_must_name_an_experiment_or_a_run(tmp_path: Path) -> None:
    from trainbench.verify.run import PlanError, check_run_tables

    check_run_tables(default_claims())
    text = (Path(trainbench.claims.parse.DEFAULT_CLAIMS).read_text(encoding="utf-8")
            + "\n[runs.rnn-lm-nnoe]\nquick = { max_size = 8 }\n")  # fmt: skip
    path = tmp_path / "claims.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError, match=r"\[runs.rnn-lm-nnoe\] names no run.*rnn-lm-none"):
        check_run_tables(load_claims(path))
    result = invoke("verify", "--quick", "--claims", str(path), "--out", str(tmp_path / "o"))
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("rnn-lm-nnoe",))
    assert not (tmp_path / "o").exists()


def test_trainability_config_of_shipped_plan() -> None:
    (plan,) = [p for p in plan_runs(default_claims(), quick=True) if p.folder == "trainability"]
    cfg = trainability_config(plan)
    assert (cfg.depths, cfg.train_depths, cfg.steps, cfg.seeds) == ((2, 8, 16), (2, 8), 2000, 1)
    assert cfg.activations == ("sigmoid",)  # P2's tanh is the CNNs' own, not the MLPs'
    wanted = {"heads", "plain", "residual", "ugcnn", "cnn"}
    assert cfg.variants == tuple(v for v in VARIANTS if v in wanted)
    assert set(cfg.variants) == wanted
    assert cfg.trained == cfg.variants and cfg.optimizers == ("sgd",) and cfg.jobs == 1
    (plan,) = [p for p in plan_runs(default_claims(), quick=False) if p.folder == "trainability"]
    cfg = trainability_config(plan)
    assert cfg.variants == VARIANTS and cfg.trained is None  # the residual CNN beside
    assert cfg.activations == ("sigmoid", "sigmoid-glorot", "tanh", "relu")
    assert (cfg.train_depths, cfg.steps, cfg.seeds, cfg.jobs) == ((2, 16), 3000, 3, 2)


def test_sweep_config_without_a_control(tmp_path: Path) -> None:
    """A plan whose claims are all on the full variant measures no control; an experiment the
    [runs] table leaves out gets the fallback sizes."""
    text = "".join(
        "[[claim]]\n"
        f'id = "{cid}"\nproblem = "1b"\nstatement = "s"\nexperiment = "mlp-heads"\n'
        f'variant = "full"\nmetric = "{metric}"\nexpected = "O(L)"\ntolerance = 0.02\n\n'
        for cid, metric in (("A", "graph_nodes"), ("B", "bwd_flops"))
    )
    path = tmp_path / "claims.toml"
    path.write_text(text, encoding="utf-8")
    for quick in (True, False):
        (plan,) = plan_runs(load_claims(path), quick=quick)
        assert [c.id for c in plan.claims] == ["A", "B"]
        assert dict(plan.settings) == FALLBACK["quick" if quick else "thorough"]
        cfg = sweep_config(plan)
        assert cfg.control is False
        assert cfg.max_size == plan.settings["max_size"]
    # the same file with a per-head claim added: the control is measured
    path.write_text(
        text + text.replace('"A"', '"C"').replace('"B"', '"D"').replace('"full"', '"per-head"'),
        encoding="utf-8",
    )
    (plan,) = plan_runs(load_claims(path), quick=True)
    assert sweep_config(plan).control is True


# --------------------------------------------------------------------------- VerifyResult


def claim_record(c: Claim, verdict: str) -> dict[str, Any]:
    return c.as_record() | {"verdict": verdict, "reason": f"made up: {verdict}"}


def test_failed_lists_claims_not_judged() -> None:
    chosen = default_claims().select(["P1b-graph", "P1b-memory", "P1b-flops"])
    plans = plan_runs(chosen, quick=True)
    by_id = chosen.by_id()
    # the run judged two of the four planned claims (P1b-control-flops came with P1b-flops)
    summary = {
        "experiment": "mlp-heads",
        "run": "mlp-heads",
        "claims": [
            claim_record(by_id["P1b-flops"], "confirmed"),
            claim_record(by_id["P1b-graph"], "confirmed"),
        ],
    }
    result = VerifyResult("trainbench verify", True, "claims.toml", plans, [summary])
    failed = result.failed()
    assert [f["id"] for f in failed] == ["P1b-memory", "P1b-control-flops"]
    assert all(f["verdict"] == "not judged" for f in failed)
    assert all(f["expect"] == "confirmed" for f in failed)
    out = result.summary()
    assert out["failed"] == ["P1b-memory", "P1b-control-flops"]
    assert [r["id"] for r in out["rows"]] == ["P1b-flops", "P1b-graph"]
    assert out["runs"] == ["mlp-heads"]
    assert out["complete"] is False  # until run_verify says so
    # with nothing judged at all every planned claim is listed
    empty = VerifyResult("trainbench verify", True, "claims.toml", plans)
    assert [f["id"] for f in empty.failed()] == [c.id for c in chosen.claims]


def test_failed_compares_with_expect() -> None:
    by_id = default_claims().by_id()
    claims = (by_id["P1b-graph"], by_id["P1b-memory"])
    top = by_id["P2"]  # expect = "inconclusive"
    plans = [
        RunPlan("mlp-heads", {}, claims, {}),
        RunPlan("trainability", {}, (top, by_id["P1a"]), {}),
    ]
    summaries = [
        {"experiment": "mlp-heads", "claims": [
            claim_record(claims[0], "confirmed"), claim_record(claims[1], "inconclusive"),
        ]},
        {"experiment": "trainability", "claims": [
            claim_record(top, "inconclusive"), claim_record(by_id["P1a"], "refuted"),
        ]},
    ]  # fmt: skip
    result = VerifyResult("c", False, "claims.toml", plans, summaries)
    failed = {f["id"]: f for f in result.failed()}
    # an inconclusive claim fails; an inconclusive claim expected inconclusive passes; a
    # refuted one expected confirmed fails
    assert list(failed) == ["P1b-memory", "P1a"]
    assert failed["P1b-memory"]["verdict"] == "inconclusive"
    assert failed["P1a"]["verdict"] == "refuted" and failed["P1a"]["expect"] == "confirmed"
    assert result.summary()["runs"] == ["mlp-heads", "trainability"]
    # the same file's expectation the other way round
    summaries[1]["claims"][0] = claim_record(top, "confirmed")
    assert [f["id"] for f in result.failed()] == ["P1b-memory", "P2", "P1a"]


def test_widen_touches_only_time_claims_with_a_narrower_band() -> None:
    by_id = default_claims().by_id()
    time_claim, count_claim = by_id["P4"], by_id["P4-flops"]
    wide = widen(time_claim, 0.5)
    assert (wide.tolerance, wide.check_class) == (0.5, False)
    assert widen(count_claim, 0.5) is count_claim  # counts keep their exact judgement
    narrow = widen(time_claim, 0.01)  # a band already wider is kept, the class not checked
    assert (narrow.tolerance, narrow.check_class) == (time_claim.tolerance, False)


def test_a_widened_claim_is_judged_on_its_band_alone() -> None:
    # n log n measured as a time: a power fit reads about 1.2 and the class is n log n
    sizes = [2.0**i for i in range(4, 11)]
    values = [[n * math.log(n) * f for f in (1.0, 1.01, 0.99)] for n in sizes]
    fit = fit_order(sizes, values)
    assert fit.best_class == "n log n"
    strict = judge(fit, 1.0, 0.5)
    assert strict.verdict == "inconclusive" and "best class" in strict.reason
    assert judge(fit, 1.0, 0.5, check_class=False).verdict == "confirmed"
    assert judge(fit, 2.0, 0.5, check_class=False).verdict == "refuted"  # not O(n²) either


def test_time_tolerance_setting_is_checked(tmp_path: Path) -> None:
    text = default_claims().path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    quick = "quick = { max_size = 64, control_max_size = 32 }"
    assert quick in text
    bad = text.replace(quick, quick.replace("}", ", time_tolerance = -1 }"), 1)
    path = tmp_path / "claims.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ClaimsError, match="time_tolerance = -1 is not a number between 0 and 5"):
        load_claims(path)


# --------------------------------------------------------------------------- --jobs

JOBS_CLAIMS = """
[[claim]]
id = "G1"
problem = "1b"
statement = "the backward graph of the L-head MLP has O(L) nodes"
experiment = "mlp-heads"
options = { width = 8, batch = 2, in_dim = 2 }
variant = "full"
metric = "graph_nodes"
expected = "O(L)"
tolerance = 0.02

[[claim]]
id = "G2"
problem = "4"
statement = "the critical path of the RNN LM's backward is O(T)"
experiment = "rnn-lm"
options = { cell = "ugrnn", vocab = 8, hidden = 4, batch = 2 }
variant = "full"
metric = "graph_depth"
expected = "O(T)"
tolerance = 0.02

[[claim]]
id = "G3"
problem = "2"
statement = "the UGCNN's backward graph has O(L) nodes"
experiment = "ugcnn"
options = { channels = 2, image_size = 4, batch = 1 }
variant = "full"
metric = "graph_nodes"
expected = "O(L)"
tolerance = 0.02

[runs.mlp-heads]
thorough = { max_size = 16 }
quick = { max_size = 16, repeats = 1, max_passes = 1, min_time = 0.0 }

[runs.rnn-lm]
thorough = { max_size = 16 }
quick = { max_size = 16, repeats = 1, max_passes = 1, min_time = 0.0 }

[runs.ugcnn]
thorough = { max_size = 16 }
quick = { max_size = 16, repeats = 1, max_passes = 1, min_time = 0.0 }
"""


def test_two_jobs_run_the_plans_in_child_processes_with_the_same_results(tmp_path: Path) -> None:
    claims = tmp_path / "claims.toml"
    claims.write_text(JOBS_CLAIMS, encoding="utf-8")
    results = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        result = invoke("verify", "--quick", "--claims", claims, "--out", out, "--jobs", jobs, "-q")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        summary = json.loads((out / VERIFY_FILE).read_text(encoding="utf-8"))
        assert summary["complete"] and summary["failed"] == []
        assert summary["command"].endswith(f"--jobs {jobs} --out {out}") or jobs == 1
        results[jobs] = {r["id"]: (r["verdict"], r["measured"]) for r in summary["rows"]}
        report = (out / "report" / "report.md").read_text(encoding="utf-8")
        for folder in ("mlp-heads", "rnn-lm-ugrnn", "ugcnn"):  # three runs on two jobs
            points = json.loads((out / folder / "summary.json").read_text(encoding="utf-8"))
            assert len(points["points"]) == len(SIZES)
            # each run's plots, drawn by its job, are in the report
            assert (out / "report" / "plots" / f"{folder}-graph.png").is_file()
            assert f"plots/{folder}-graph.png" in report
    assert results[1] == results[2]
    assert {k: v[0] for k, v in results[2].items()} == {
        "G1": "confirmed", "G2": "confirmed", "G3": "confirmed"
    }  # fmt: skip


def _processes_with(marker: str) -> list[int]:
    """The processes whose environment holds ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_every_job_and_keeps_their_runs(tmp_path: Path) -> None:
    """SIGINT to ``verify --jobs 2``: exit 130 with one line, every child ends, the runs
    under way are saved as partial and listed in verify.json."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    slow = JOBS_CLAIMS.replace("repeats = 1, max_passes = 1, min_time = 0.0",
                               "repeats = 40, max_passes = 40, min_time = 0.02")  # fmt: skip
    claims = tmp_path / "claims.toml"
    claims.write_text(slow, encoding="utf-8")
    out = tmp_path / "out"
    marker = f"TRAINBENCH_TEST_MARK={uuid.uuid4().hex}"
    env = dict(os.environ) | dict([marker.split("=")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainbench", "verify", "--quick", "--claims", str(claims),
         "--out", str(out), "--jobs", "2", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=ctrl_c_heard,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(out.glob("*/summary.json"))) >= 2:  # both jobs are measuring
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []
    summary = json.loads((out / VERIFY_FILE).read_text(encoding="utf-8"))
    assert summary["complete"] is False
    partial = [json.loads(f.read_text(encoding="utf-8")) for f in out.glob("*/summary.json")]
    assert len(partial) >= 2 and not all(s["complete"] for s in partial)
    listed = {r["id"] for r in summary["rows"]}
    for s in partial:
        assert {c["id"] for c in s["claims"]} <= listed



def test_default_jobs_and_each_jobs_memory_share(monkeypatch: pytest.MonkeyPatch) -> None:
    import trainbench.verify.run
    from trainbench.verify.jobs import cores
    from trainbench.verify.run import default_jobs, with_memory_share

    plans = plan_runs(default_claims(), quick=True)
    assert default_jobs(False, plans) == 1  # the thorough run: each sweep has the machine
    if not torch.cuda.is_available():
        assert default_jobs(True, plans) == min(2, cores())
    monkeypatch.setattr(trainbench.verify.run, "available_bytes", lambda device: 8 * 2**30)
    mlp = next(p for p in plans if p.folder == "mlp-heads")
    shared = with_memory_share(mlp, 2)
    assert dict(shared.settings) == dict(mlp.settings) | {"max_memory": 2 * 2**30}
    told = replace(mlp, settings=dict(mlp.settings) | {"max_memory": 123})
    assert with_memory_share(told, 2).settings["max_memory"] == 123  # the file's value kept
    train = next(p for p in plans if p.folder == "trainability")
    assert with_memory_share(train, 2) is train
