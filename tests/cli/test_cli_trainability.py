"""Tests for ``trainbench trainability`` (Problems 1a, 1c, 2) and ``trainbench ugcnn`` (Problem 2).

The real runs are tiny (depths 2 and 4, five training steps; a 4 × 4 image with two channels
for the ugcnn sweep) and run on one thread (``--threads 1``, put back afterwards): the models
are small enough that two threads on a busy machine only wait for each other. The runs whose
output several tests read are module-scoped fixtures. Bad input runs against a fake core that
records its calls, so an option accepted by mistake costs nothing and is seen. Timings are
never asserted; FLOPs are counts and are compared with :func:`ugcnn.flops_forward` exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import assert_one_line_error, ctrl_c_heard, invoke
from typer.testing import Result

import trainbench.harness.runner
import trainbench.trainability.files
import trainbench.trainability.run
from trainbench.models import ugcnn
from trainbench.trainability.config import TrainabilityConfig

pytestmark = pytest.mark.slow  # real sweeps or real processes

VARIANTS = ["plain", "heads", "residual", "cnn", "rescnn", "ugcnn"]
DEPTHS = [2, 4]
STEPS = 5
TINY = [
    "--depths", ",".join(map(str, DEPTHS)),
    "--train-depths", ",".join(map(str, DEPTHS)),
    "--steps", str(STEPS),
    "--variants", ",".join(VARIANTS),
    "--activations", "sigmoid",
    "--seeds", "1",
    "--finetune-steps", "2",
    "--threads", "1",
    "--jobs", "1",
]  # fmt: skip
VERDICTS = {"confirmed", "refuted", "inconclusive"}
CLAIM_IDS = ["P1a", "P1a-deep", "P1c", "P2"]
SIGNAL_KEYS = ("variant", "activation", "depth", "seed", "first_layer_grad_norm",
               "last_layer_grad_norm", "ratio", "top_only_ratio")  # fmt: skip
TRAINING_KEYS = ("variant", "activation", "depth", "optimizer", "lr", "final_loss",
                 "steps_to_threshold", "deep_head_loss", "deepest_head")  # fmt: skip
ENV_KEYS = ("torch_version", "device", "threads", "dtype", "seed", "trainbench_version",
            "timestamp")  # fmt: skip
FILES = trainbench.trainability.files.FILES
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

UG_C, UG_SIZE, UG_BATCH, UG_MAX_DEPTH = 2, 4, 2, 4
UG_TINY = [
    "--max-depth", str(UG_MAX_DEPTH),
    "--channels", str(UG_C),
    "--image-size", str(UG_SIZE),
    "--batch", str(UG_BATCH),
    "--repeats", "1",
    "--max-passes", "1",
    "--min-time", "0",
    "--threads", "1",
]  # fmt: skip
UG_POINTS = sorted([("full", d) for d in (1, 2, 3, 4)] + [("per-head", d) for d in (2, 4)])








@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """``--threads 1`` sets torch's thread count for the whole process: put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- trainability


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("trainability-json")
    return invoke("trainability", *TINY, "--json", "--out", out), out


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
    assert result.stderr == ""
    assert "Traceback" not in result.output


def test_json_top_level(summary: dict[str, Any]) -> None:
    for key in ("format_version", "experiment", "complete", "config", "environment",
                "gradient_signal", "training", "claims"):  # fmt: skip
        assert key in summary, key
    assert summary["gates"] and all(g["passed"] in (True, False) for g in summary["gates"])
    assert summary["format_version"] == 1
    assert summary["experiment"] == "trainability"
    assert summary["complete"] is True


def test_json_config_and_environment(summary: dict[str, Any]) -> None:
    config = summary["config"]
    assert config["depths"] == DEPTHS
    assert config["variants"] == VARIANTS
    assert config["steps"] == STEPS
    assert config["optimizers"] == ["sgd"]
    assert config["lr_sgd"] == [0.01, 0.03, 0.1, 0.3] and config["lr_adam"] == [3e-4, 1e-3, 3e-3]
    assert (config["seeds"], config["activations"], config["seed"]) == (1, ["sigmoid"], 0)
    assert (config["train_depths"], config["finetune_steps"], config["jobs"]) == (DEPTHS, 2, 1)
    env = summary["environment"]
    for key in ENV_KEYS:
        assert key in env, key
    assert env["torch_version"] == torch.__version__
    assert env["threads"] == 1 and env["seed"] == 0


def test_json_gradient_signal(summary: dict[str, Any]) -> None:
    records = summary["gradient_signal"]
    assert sorted((r["variant"], r["depth"]) for r in records) == sorted(
        (v, d) for v in VARIANTS for d in DEPTHS
    )
    for r in records:
        for key in SIGNAL_KEYS:
            assert key in r, (key, r)
        assert r["first_layer_grad_norm"] > 0 and r["last_layer_grad_norm"] > 0
        assert r["ratio"] == r["first_layer_grad_norm"] / r["last_layer_grad_norm"]
        assert len(r["layer_grad_norms"]) == r["depth"]


def test_json_training(summary: dict[str, Any]) -> None:
    records = summary["training"]
    assert sorted((r["variant"], r["depth"], r["optimizer"]) for r in records) == sorted(
        (v, d, "sgd") for v in VARIANTS for d in DEPTHS
    )
    for r in records:
        for key in TRAINING_KEYS:
            assert key in r, (key, r)
        steps = [c["step"] for c in r["curve"]]
        assert steps == [0, STEPS]
        assert r["final_loss"] == r["curve"][-1]["loss"]
        assert r["lr"] in r["lr_grid"]
        assert all(s is None or s in steps for s in r["steps_to_threshold"])
        deepest = r["variant"] in ("plain", "heads") and r["depth"] == max(DEPTHS)
        assert (r["finetune"] is not None) == deepest


def test_json_claims(summary: dict[str, Any]) -> None:
    claims = summary["claims"]
    assert [c["id"] for c in claims] == CLAIM_IDS
    for c in claims:
        assert c["verdict"] in VERDICTS, c
        assert isinstance(c["reason"], str) and c["reason"]
        assert c["depth"] == max(DEPTHS)


def test_result_files(json_run: tuple[Result, Path], summary: dict[str, Any]) -> None:
    _, out = json_run
    folder = out / "trainability"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (folder / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (folder / name).read_bytes()[:8] == PNG_MAGIC, name
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == summary
    signal_rows = (folder / "gradient_signal.csv").read_text(encoding="utf-8").splitlines()
    assert len(signal_rows) == 1 + len(VARIANTS) * len(DEPTHS)
    training_rows = (folder / "training.csv").read_text(encoding="utf-8").splitlines()
    assert len(training_rows) == 1 + len(VARIANTS) * len(DEPTHS)  # one seed
    assert [p for p in out.iterdir()] == [folder]  # nothing outside OUT/trainability/


def test_table_output(tmp_path: Path) -> None:
    result = invoke("trainability", *TINY, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    for problem, count in (("Problem 1a:", 2), ("Problem 1c:", 1), ("Problem 2:", 1)):
        found = [line for line in lines if line.startswith(problem)]
        assert len(found) == count, (problem, result.stdout)
        assert all(any(v in line for v in VERDICTS) for line in found), found
    assert "\nresults: " in result.stdout  # the path may be folded on a long TMPDIR
    assert sorted(p.name for p in (tmp_path / "trainability").iterdir()) == sorted(FILES)


def test_quiet_output(tmp_path: Path) -> None:
    result = invoke("trainability", "--depths", "2", "--steps", "0", "--variants", "cnn,ugcnn",
                    "--seeds", "1", "--threads", "1", "--quiet", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Problem 2"]
    assert "results:" not in result.stdout


# --------------------------------------------------------------- what reaches the core


class FakeCore:
    """Stands in for run_trainability (and write_files) and records the config."""

    def __init__(self) -> None:
        self.configs: list[TrainabilityConfig] = []
        self.written: list[Path] = []

    def run(self, cfg: TrainabilityConfig, on_progress: Any = None, save: Any = None,
            claims: Any = None, earlier: Any = None) -> Any:  # fmt: skip
        self.configs.append(cfg)
        result = trainbench.trainability.run.TrainabilityResult(
            config={"depths": list(cfg.depths)}, environment={}, complete=True
        )
        if save is not None:
            save(result)
        return result

    def write(self, folder: Path, summary: Any, plots: bool = True) -> list[Path]:
        self.written.append(folder)
        return []


@pytest.fixture
def fake_core(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeCore:
    fake = FakeCore()
    # the CLI imports both inside the command
    monkeypatch.setattr(trainbench.trainability.run, "run_trainability", fake.run)
    monkeypatch.setattr(trainbench.trainability.files, "write_files", fake.write)
    monkeypatch.chdir(tmp_path)
    return fake


def test_options_reach_the_config(fake_core: FakeCore, tmp_path: Path) -> None:
    result = invoke("trainability", "--depths", "8, 2,2,4", "--variants", " residual , plain",
                    "--steps", "7", "--lr-sgd", "0.5, 0.2,0.5", "--lr-adam", "0.01", "--seed", "3",
                    "--threads", "1", "--json", "--out", tmp_path / "res", "--seeds", "2",
                    "--activations", "tanh,relu", "--train-depths", "4", "--finetune-steps", "9",
                    "--jobs", "3", "--optimizers", "adam,sgd")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["experiment"] == "trainability"
    (cfg,) = fake_core.configs
    assert cfg == TrainabilityConfig(
        depths=(2, 4, 8), variants=("residual", "plain"), steps=7, lr_sgd=(0.5, 0.2),
        lr_adam=(0.01,), seed=3, threads=1, seeds=2, activations=("tanh", "relu"),
        train_depths=(4,), finetune_steps=9, jobs=3, optimizers=("adam", "sgd"),
    )  # fmt: skip
    assert fake_core.written == [tmp_path / "res" / "trainability"]


ALL_ACTS = ("sigmoid", "sigmoid-glorot", "tanh", "relu")


@pytest.mark.parametrize(
    ("args", "depths", "trained", "steps", "seeds", "acts", "finetune"),
    [
        ([], (2, 4, 8, 16, 32, 64), (2, 16), 3000, 3, ALL_ACTS, 500),
        (["--quick"], (2, 8, 16), (2, 8), 2000, 1, ("sigmoid",), 0),
        (["--quick", "--steps", "0"], (2, 8, 16), (2, 8), 0, 1, ("sigmoid",), 0),
        (["--quick", "--depths", "3"], (3,), None, 2000, 1, ("sigmoid",), 0),
        (["--depths", "2,8", "--seeds", "5"], (2, 8), None, 3000, 5, ALL_ACTS, 500),
        (["--depths", "2,16,32", "--train-depths", "32,2"], (2, 16, 32), (2, 32), 3000, 3,
         ALL_ACTS, 500),
    ],
)
def test_defaults_and_quick(
    fake_core: FakeCore, args: list[str], depths: tuple[int, ...],
    trained: tuple[int, ...] | None, steps: int, seeds: int, acts: tuple[str, ...],
    finetune: int,
) -> None:  # fmt: skip
    result = invoke("trainability", *args, "--quiet")
    assert result.exit_code == 0, result.output
    (cfg,) = fake_core.configs
    assert (cfg.depths, cfg.train_depths, cfg.steps) == (depths, trained, steps)
    assert (cfg.seeds, cfg.activations, cfg.finetune_steps) == (seeds, acts, finetune)
    assert cfg.variants == tuple(VARIANTS) and cfg.optimizers == ("sgd",)
    assert 1 <= cfg.jobs <= 4
    assert fake_core.written == [Path("results") / "trainability"]



BAD_TRAINABILITY = [
    pytest.param(["--depths", "0"], ("--depths",), id="depths-0"),
    pytest.param(["--depths", "2,abc"], ("--depths",), id="depths-text"),
    pytest.param(["--depths", ""], ("--depths",), id="depths-empty"),
    pytest.param(["--depths", ","], ("--depths",), id="depths-comma"),
    pytest.param(["--depths", "2,-4"], ("--depths",), id="depths-negative"),
    pytest.param(["--depths", "99999"], ("--depths",), id="depths-huge"),
    pytest.param(["--variants", "foo"], ("--variants", "foo"), id="variants-foo"),
    pytest.param(["--variants", "plain,bogus"], ("--variants", "bogus"), id="variants-bogus"),
    pytest.param(["--variants", ","], ("--variants",), id="variants-empty"),
    pytest.param(["--steps", "-1"], ("--steps",), id="steps-negative"),
    pytest.param(["--steps", "abc"], ("--steps",), id="steps-text"),
    pytest.param(["--lr-sgd", "0"], ("--lr-sgd",), id="lr-sgd-0"),
    pytest.param(["--lr-sgd", "-1"], ("--lr-sgd",), id="lr-sgd-negative"),
    pytest.param(["--lr-sgd", "inf"], ("--lr-sgd",), id="lr-sgd-inf"),
    pytest.param(["--lr-adam", "nan"], ("--lr-adam",), id="lr-adam-nan"),
    pytest.param(["--lr-sgd", "0.1,x"], ("--lr-sgd",), id="lr-sgd-text"),
    pytest.param(["--lr-sgd", ","], ("--lr-sgd",), id="lr-sgd-empty"),
    pytest.param(["--activations", "swish"], ("--activations", "swish"), id="activations-swish"),
    pytest.param(["--train-depths", "5"], ("--train-depths", "5"), id="train-depths-outside"),
    pytest.param(["--train-depths", "x"], ("--train-depths",), id="train-depths-text"),
    pytest.param(["--seeds", "0"], ("--seeds",), id="seeds-0"),
    pytest.param(["--jobs", "0"], ("--jobs",), id="jobs-0"),
    pytest.param(["--finetune-steps", "-1"], ("--finetune-steps",), id="finetune-negative"),
    pytest.param(["--threads", "-1"], ("--threads",), id="threads-negative"),
    pytest.param(["--out", "{file}/sub"], ("--out",), id="out-under-file"),
    pytest.param(["--frobnicate"], ("--frobnicate",), id="unknown-option"),
]


@pytest.mark.parametrize(("args", "names"), BAD_TRAINABILITY)
def test_trainability_bad_input(
    args: list[str], names: tuple[str, ...], fake_core: FakeCore, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [a.replace("{file}", str(blocker)) for a in args]
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    # TINY first: the case's own options come later and win
    result = invoke("trainability", *TINY, *args)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, names)
    assert fake_core.configs == [] and fake_core.written == []
    assert [p.name for p in tmp_path.rglob("*")] == ["a-file"]  # no files, no folders


@pytest.mark.parametrize("taken", ["training.csv", "grad_ratio.png"])
def test_an_output_name_taken_by_a_folder_is_refused_before_running(
    taken: str, fake_core: FakeCore, tmp_path: Path
) -> None:
    (tmp_path / "out" / "trainability" / taken).mkdir(parents=True)
    result = invoke("trainability", *TINY, "--out", str(tmp_path / "out"))
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--out", taken))
    assert fake_core.configs == []  # nothing was measured, nothing to lose


def test_repeated_variants_are_measured_once(fake_core: FakeCore, tmp_path: Path) -> None:
    result = invoke("trainability", *TINY, "--variants", "plain,heads,plain", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert fake_core.configs[0].variants == ("plain", "heads")


# --------------------------------------------------------------------------- ugcnn


@pytest.fixture(scope="module")
def ug_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("ugcnn-json")
    return invoke("ugcnn", *UG_TINY, "--json", "--out", out), out


@pytest.fixture(scope="module")
def ug_summary(ug_run: tuple[Result, Path]) -> dict[str, Any]:
    result, _ = ug_run
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ugcnn_json(ug_run: tuple[Result, Path], ug_summary: dict[str, Any]) -> None:
    result, out = ug_run
    assert result.stderr == "" and "Traceback" not in result.output
    assert ug_summary["experiment"] == "ugcnn"
    assert ug_summary["complete"] is True
    options = ug_summary["config"]["options"]
    assert options == {"channels": UG_C, "image_size": UG_SIZE, "batch": UG_BATCH, "kernel": 3,
                       "impl": "einsum"}  # fmt: skip
    ids = [c["id"] for c in ug_summary["claims"]]
    assert ids == ["P2-backprop", "P2-flops", "P2-span", "P2-memory", "P2-control"]
    for c in ug_summary["claims"]:
        assert c["verdict"] in VERDICTS
    folder = out / "ugcnn"
    for name in ("measurements.csv", "samples.csv", "summary.json"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == ug_summary


def test_ugcnn_points_and_forward_flops(ug_summary: dict[str, Any]) -> None:
    points = ug_summary["points"]
    assert sorted((p["variant"], p["size"]) for p in points) == UG_POINTS
    for p in points:
        # the per-head control runs the same forward: the same forward FLOPs
        want = ugcnn.flops_forward(p["size"], UG_C, 3, UG_SIZE, UG_BATCH, True, "every")
        assert p["fwd_flops"] == want, p
    full = {p["size"]: p for p in points if p["variant"] == "full"}
    for p in points:
        if p["variant"] == "per-head":
            assert p["fwd_flops"] == full[p["size"]]["fwd_flops"]
            assert p["bwd_flops"] > full[p["size"]]["bwd_flops"]


class FakeSweep:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        raise AssertionError("the sweep should not run")


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param(["--max-depth", "0"], ("--max-depth",), id="max-depth-0"),
        pytest.param(["--channels", "0"], ("--channels",), id="channels-0"),
        pytest.param(["--image-size", "0"], ("--image-size",), id="image-size-0"),
        pytest.param(["--impl", "foo"], ("--impl",), id="impl-foo"),
        pytest.param(["--min-depth", "8", "--max-depth", "4"], ("--min-depth",), id="min-gt-max"),
    ],
)
def test_ugcnn_bad_input(
    args: list[str], names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeSweep()
    monkeypatch.setattr(trainbench.harness.runner, "run_sweep", fake)
    monkeypatch.chdir(tmp_path)
    result = invoke("ugcnn", *UG_TINY, *args, "--out", tmp_path / "out")
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, names)
    assert fake.calls == []
    assert list(tmp_path.iterdir()) == []


def test_sigint_keeps_what_was_measured(tmp_path: Path) -> None:
    """SIGINT mid-run: exit 130, one line on stderr, the records so far on disk, partial."""
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "trainbench", "trainability", "--depths", "2,4",
           "--steps", "100000", "--variants", "plain,heads", "--threads", "1",
           "--activations", "sigmoid", "--jobs", "2", "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_heard)  # fmt: skip
    summary_file = tmp_path / "trainability" / "summary.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the gradient signal is measured first, in seconds
        if summary_file.exists() and json.loads(summary_file.read_text())["gradient_signal"]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    summary = json.loads(summary_file.read_text())
    assert proc.returncode == 130
    assert "Traceback" not in err + out
    assert err.strip().splitlines() == [err.strip()]
    assert "interrupted" in err and str(tmp_path / "trainability") in err
    assert summary["complete"] is False
    assert summary["gradient_signal"]  # measured before the interrupt, kept
    assert [c["id"] for c in summary["claims"]] == ["P1a", "P1a-deep"]
    assert all(c["partial"] is True for c in summary["claims"])
    assert (tmp_path / "trainability" / "gradient_signal.csv").exists()
