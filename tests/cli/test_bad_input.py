"""Bad input across every command: one table, one assertion.

Each case builds what it needs under ``tmp_path`` (result folders, claims files, files in
the way) and returns the arguments of one ``trainbench`` command. Every case must end with:
the exit code of the case (2: a usage error, which is all of them so far), nothing on stdout,
exactly one line on stderr, ``trainbench: error: ...``, naming the input and the problem, no
traceback, no measurement started (the measuring functions are replaced by ones that fail
the test) and no file written or changed anywhere under ``tmp_path``.

Result folders are generated with :func:`trainbench.results.files.write_run` (no torch), except the
two runs a ``--resume`` with another option needs: a real tiny ``mlp-heads`` run and a real
``trainability --steps 0`` run (about a second each).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import files_under, invoke
from fake_instruments import measure_with

import trainbench.trainability.run
from trainbench.results.files import write_run
from trainbench.results.schema import FORMAT_VERSION

pytestmark = pytest.mark.slow  # real sweeps or real processes

USAGE = 2
COMMANDS = ("mlp-heads", "rnn-lm", "ugcnn", "trainability", "report", "verify")

Setup = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Case:
    """``setup(tmp_path)`` makes the files and returns the arguments (command first);
    the error line must hold every one of ``words`` (``{tmp}`` stands for ``tmp_path``)."""

    name: str
    command: str
    setup: Setup
    words: tuple[str, ...]
    code: int = USAGE  # 1 where the problem is not a usage error


# ------------------------------------------------------------------ a valid run folder

SIZES = [2, 4, 8, 16]  # four sizes of the shape of results/mlp-heads/
VARIANTS = ("full", "per-head")
METRICS = ("fwd_s", "bwd_s", "fwd_flops", "bwd_flops", "graph_nodes", "graph_depth",
           "saved_bytes")  # fmt: skip


def _point(variant: str, n: int) -> dict[str, Any]:
    quad = variant == "per-head"
    bwd = 1e-4 * n * n if quad else 1e-3 * n
    return {
        "variant": variant, "size": n, "fwd_s": 5e-4 * n, "fwd_iqr_s": 2.5e-5 * n,
        "bwd_s": bwd, "bwd_iqr_s": 0.05 * bwd, "fwd_flops": 8000 * n,
        "bwd_flops": 16000 * n * n if quad else 16000 * n,
        "graph_nodes": 30 * n * n if quad else 33 * n, "graph_depth": 10 * n + 4,
        "saved_bytes": 4096 * n, "peak_bytes": None, "gflops": 40.0, "efficiency": 0.3,
        "noisy": False, "rounds": 3, "fwd_runs_per_sample": 1, "bwd_runs_per_sample": 1,
        "format_version": FORMAT_VERSION,
    }  # fmt: skip


def _fit(variant: str, metric: str) -> dict[str, Any]:
    k = 2.0 if variant == "per-head" and metric in ("bwd_s", "bwd_flops", "graph_nodes") else 1.0
    exact = not metric.endswith("_s")
    return {
        "variant": variant, "metric": metric, "exponent": k, "ci_low": k - 0.03,
        "ci_high": k + 0.03, "best_class": "n^2" if k == 2 else "n", "n_sizes": 4,
        "size_range": 8.0, "fit_from": 2.0, "exact": exact, "rel_spread": 0.0,
        "top_slope": k, "top_ci_low": k - 0.05, "top_ci_high": k + 0.05,
        "poly_degree": int(k) if exact else None, "verdict": None, "partial": False,
    }  # fmt: skip


def _claim(cid: str, variant: str, metric: str, k: float, **extra: Any) -> dict[str, Any]:
    order = "O(L²)" if k == 2 else "O(L)"
    return {
        "id": cid, "problem": "1b", "statement": f"{metric} of the {variant} MLP is {order}",
        "variant": variant, "metric": metric, "expected": order, "expected_exponent": k,
        "tolerance": 0.15, "control": None, "is_control": False, "verdict": "confirmed",
        "reason": f"k = {k:.2f} [{k - 0.03:.2f}, {k + 0.03:.2f}]", "exponent": k,
        "ci_low": k - 0.03, "ci_high": k + 0.03, "best_class": "n^2" if k == 2 else "n",
        "poly_degree": None, "by_degree": False, "fit_sizes": [2.0, 16],
        "control_exponent": None, "partial": False, **extra,
    }  # fmt: skip


def valid_summary(points: list[dict[str, Any]]) -> dict[str, Any]:
    options = {"width": 8, "batch": 2, "in_dim": 3, "activation": "sigmoid", "impl": "einsum"}
    config = {
        "min_size": SIZES[0], "max_size": SIZES[-1], "options": dict(options), "control": True,
        "control_max_size": 256, "repeats": 3, "min_time": 0.05, "threads": 0,
        "device": "auto", "dtype": "float32", "seed": 0, "grid_ratio": math.sqrt(2.0),
        "time_budget": None, "max_memory": 2**30, **options, "experiment": "mlp-heads",
        "sizes": SIZES, "variants": list(VARIANTS),
    }  # fmt: skip
    return {
        "format_version": FORMAT_VERSION, "experiment": "mlp-heads", "complete": True,
        "config": config,
        "environment": {
            "trainbench_version": "0", "torch_version": "2.13.0+cpu", "device": "cpu",
            "device_name": "a CPU", "cpu_model": "a CPU", "cpu_count": 2, "threads": 2,
            "dtype": "float32", "seed": 0, "timestamp": "2026-11-25T19:29:23+00:00",
        },
        "baseline": {"op": "torch.mm", "shape": [2, 8, 8], "gflops": 100.0},
        "notes": [],
        "points": points,
        "fits": [_fit(v, m) for v in VARIANTS for m in METRICS],
        "claims": [
            _claim("P1b", "full", "bwd_s", 1.0, control="P1b-control"),
            _claim("P1b-flops", "full", "bwd_flops", 1.0, by_degree=True, poly_degree=1),
            _claim("P1b-control", "per-head", "bwd_s", 2.0, is_control=True),
        ],
    }  # fmt: skip


def make_run(folder: Path) -> Path:
    """A valid mlp-heads run folder (summary.json, measurements.csv, samples.csv)."""
    points = [_point(v, n) for v in VARIANTS for n in SIZES]
    samples = [
        {"variant": p["variant"], "size": p["size"], "phase": phase, "round": r,
         "sample_s": p[f"{phase}_s"], "format_version": FORMAT_VERSION}
        for p in points for phase in ("fwd", "bwd") for r in range(3)
    ]  # fmt: skip
    write_run(folder, valid_summary(copy.deepcopy(points)), points, samples)
    return folder


def test_valid_run_folder_is_reported(tmp_path: Path) -> None:
    """The folder every corrupt case starts from is accepted as it is."""
    run = make_run(tmp_path / "run")
    out = tmp_path / "report"
    result = invoke("report", run, "--out", out)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


# -------------------------------------------------------------------- case builders


def _fill(args: tuple[str, ...], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


def plain(*args: str) -> Setup:
    """Just these arguments (``{tmp}`` filled in), with ``--out {tmp}/out`` unless given."""

    def setup(tmp: Path) -> list[str]:
        argv = _fill(args, tmp)
        return argv if "--out" in argv else [*argv, "--out", str(tmp / "out")]

    return setup


def with_file(*args: str, content: bytes = b"not a folder\n") -> Setup:
    """A file ``{tmp}/a-file`` first, then the arguments."""

    def setup(tmp: Path) -> list[str]:
        (tmp / "a-file").write_bytes(content)
        return plain(*args)(tmp)

    return setup


def with_folder(*args: str) -> Setup:
    """An empty folder ``{tmp}/empty`` first, then the arguments."""

    def setup(tmp: Path) -> list[str]:
        (tmp / "empty").mkdir()
        return plain(*args)(tmp)

    return setup


def bad_run(change: Callable[[Path], None]) -> Setup:
    """``report`` of a valid run folder ``{tmp}/run`` with one thing changed by ``change``."""

    def setup(tmp: Path) -> list[str]:
        run = make_run(tmp / "run")
        change(run)
        return ["report", str(run), "--out", str(tmp / "out")]

    return setup


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(data)


def _summary_json(value: Any) -> Callable[[Path], None]:
    return _write("summary.json", json.dumps(value).encode())


def _edit_summary(**changes: Any) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        (run / "summary.json").write_text(json.dumps(summary | changes), encoding="utf-8")

    return change


def _edit_table(edit: Callable[[list[list[str]]], None]) -> Callable[[Path], None]:
    """Change the rows (the header first) of measurements.csv."""

    def change(run: Path) -> None:
        path = run / "measurements.csv"
        rows = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()]
        edit(rows)
        path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")

    return change


def _set_cell(column: str, value: str) -> Callable[[list[list[str]]], None]:
    def edit(rows: list[list[str]]) -> None:
        rows[2][rows[0].index(column)] = value

    return edit


def _drop_column(column: str) -> Callable[[list[list[str]]], None]:
    def edit(rows: list[list[str]]) -> None:
        i = rows[0].index(column)
        for row in rows:
            del row[i]

    return edit


def _remove(name: str) -> Callable[[Path], None]:
    return lambda run: (run / name).unlink()


def resume_of(command: str, folder: str, change: Callable[[Path], None], *args: str) -> Setup:
    """``COMMAND --resume --out {tmp}/out`` where ``{tmp}/out/FOLDER`` holds a valid
    mlp-heads run changed by ``change``."""

    def setup(tmp: Path) -> list[str]:
        run = make_run(tmp / "out" / folder)
        change(run)
        return [command, *_fill(args, tmp), "--resume", "--out", str(tmp / "out")]

    return setup


def copied_run(command: str, folder: str) -> Setup:
    """``COMMAND --resume --out {tmp}/out`` where a valid mlp-heads run folder was copied
    to ``{tmp}/out/FOLDER`` (another experiment's folder)."""

    def setup(tmp: Path) -> list[str]:
        shutil.copytree(make_run(tmp / "mlp-heads"), tmp / "out" / folder)
        return [command, "--resume", "--out", str(tmp / "out")]

    return setup


def resume_missing(command: str, *args: str) -> Setup:
    return plain(command, *args, "--resume")


TINY_MLP = ["--max-depth", "4", "--width", "8", "--batch", "2", "--in-dim", "3",
            "--repeats", "1", "--max-passes", "1", "--min-time", "0", "--threads", "1",
            "--no-control"]  # fmt: skip


def resume_mlp_with_other_width(tmp: Path) -> list[str]:
    out = tmp / "out"
    first = invoke("mlp-heads", *TINY_MLP, "--out", out, "--quiet")
    assert first.exit_code == 0, (first.stdout, first.stderr, first.exception)
    return ["mlp-heads", *TINY_MLP, "--width", "64", "--resume", "--out", str(out), "--quiet"]


TINY_TRAINABILITY = ["--depths", "2", "--variants", "plain", "--threads", "1"]


def resume_trainability_with_other_steps(tmp: Path) -> list[str]:
    out = tmp / "out"
    first = invoke("trainability", *TINY_TRAINABILITY, "--steps", "0", "--out", out, "--quiet")
    assert first.exit_code == 0, (first.stdout, first.stderr, first.exception)
    assert (out / "trainability" / "summary.json").is_file()
    return ["trainability", *TINY_TRAINABILITY, "--steps", "5", "--resume", "--out", str(out),
            "--quiet"]  # fmt: skip


def resume_trainability_corrupt(tmp: Path) -> list[str]:
    folder = tmp / "out" / "trainability"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text('{"format_version": 1, "exper', encoding="utf-8")
    return ["trainability", *TINY_TRAINABILITY, "--steps", "0", "--resume",
            "--out", str(tmp / "out")]  # fmt: skip


def claims_file(text: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        (tmp / "claims.toml").write_text(text, encoding="utf-8")
        return ["verify", "--quick", "--claims", str(tmp / "claims.toml"),
                "--out", str(tmp / "out")]  # fmt: skip

    return setup


UNKNOWN_EXPERIMENT = """\
[[claim]]
id = "X1"
problem = "9"
statement = "backprop time of the LSTM is O(T)"
experiment = "lstm"
variant = "full"
metric = "bwd_s"
expected = "O(T)"
tolerance = 0.15
"""

CLAIM_WITH_OPTIONS = """\
[[claim]]
id = "W1"
problem = "1b"
statement = "backprop time of the L-head MLP is O(L)"
experiment = "mlp-heads"
variant = "full"
metric = "bwd_s"
expected = "O(L)"
tolerance = 0.15
options = {OPTIONS}
"""

TRUNCATED = b'{"format_version": 1, "exper'
RUN = "{tmp}/run"
RESUMED = "{tmp}/out/mlp-heads/summary.json"

# ------------------------------------------------------------------------- the table

C = Case
# fmt: off
CASES: list[Case] = [
    # ---- mlp-heads
    C("mlp-max-depth-text", "mlp-heads", plain("mlp-heads", "--max-depth", "abc"),
      ("--max-depth", "integer")),
    C("mlp-repeats-float", "mlp-heads", plain("mlp-heads", "--repeats", "1.5"),
      ("--repeats", "integer")),
    C("mlp-min-time-nan", "mlp-heads", plain("mlp-heads", "--min-time", "nan"), ("--min-time",)),
    C("mlp-min-time-inf", "mlp-heads", plain("mlp-heads", "--min-time", "inf"),
      ("--min-time", "finite")),
    C("mlp-threads-negative", "mlp-heads", plain("mlp-heads", "--threads", "-1"),
      ("--threads", "0")),
    C("mlp-max-depth-0", "mlp-heads", plain("mlp-heads", "--max-depth", "0"),
      ("--max-depth", "1")),
    C("mlp-max-depth-huge", "mlp-heads", plain("mlp-heads", "--max-depth", "10000000"),
      ("--max-depth", "too large")),
    C("mlp-width-0", "mlp-heads", plain("mlp-heads", "--width", "0"), ("--width", "1")),
    C("mlp-batch-huge", "mlp-heads", plain("mlp-heads", "--batch", "10000000"),
      ("--batch", "1000000")),
    C("mlp-time-budget-0", "mlp-heads", plain("mlp-heads", "--time-budget", "0"),
      ("--time-budget", "positive")),
    C("mlp-time-budget-negative", "mlp-heads", plain("mlp-heads", "--time-budget", "-5"),
      ("--time-budget", "positive")),
    C("mlp-time-budget-nan", "mlp-heads", plain("mlp-heads", "--time-budget", "nan"),
      ("--time-budget", "positive")),
    C("mlp-max-memory-0", "mlp-heads", plain("mlp-heads", "--max-memory", "0"),
      ("--max-memory", "1 byte")),
    C("mlp-max-memory-text", "mlp-heads", plain("mlp-heads", "--max-memory", "lots"),
      ("--max-memory", "lots")),
    C("mlp-max-memory-unit", "mlp-heads", plain("mlp-heads", "--max-memory", "8 parsecs"),
      ("--max-memory", "8 parsecs")),
    C("mlp-repeats-huge", "mlp-heads",
      plain("mlp-heads", *TINY_MLP, "--repeats", "99999999999999"), ("--repeats",)),
    C("mlp-seed-negative", "mlp-heads", plain("mlp-heads", "--seed", "-1"), ("--seed", "0")),
    C("mlp-min-above-max", "mlp-heads",
      plain("mlp-heads", "--min-depth", "10", "--max-depth", "5"),
      ("--min-depth", "--max-depth", "10", "5")),
    C("mlp-activation-swish", "mlp-heads", plain("mlp-heads", "--activation", "swish"),
      ("--activation", "swish")),
    C("mlp-impl-cuda", "mlp-heads", plain("mlp-heads", "--impl", "cudnn"), ("--impl", "cudnn")),
    C("mlp-device-tpu", "mlp-heads", plain("mlp-heads", "--device", "tpu"),
      ("--device", "tpu")),
    C("mlp-dtype-float16", "mlp-heads", plain("mlp-heads", "--dtype", "float16"),
      ("--dtype", "float16")),
    C("mlp-unknown-option", "mlp-heads", plain("mlp-heads", "--frobnicate"), ("--frobnicate",)),
    C("mlp-too-big-for-memory", "mlp-heads",
      plain("mlp-heads", "--width", "1000000", "--batch", "1000000", "--max-depth", "4"),
      ("--max-depth", "GiB")),
    C("mlp-out-is-a-file", "mlp-heads", with_file("mlp-heads", "--out", "{tmp}/a-file"),
      ("--out", "{tmp}/a-file")),
    C("mlp-resume-missing", "mlp-heads", resume_missing("mlp-heads"),
      ("--resume", RESUMED, "missing")),
    C("mlp-resume-corrupt-summary", "mlp-heads",
      resume_of("mlp-heads", "mlp-heads", _write("summary.json", TRUNCATED)),
      ("--resume", RESUMED, "JSON")),
    C("mlp-resume-other-width", "mlp-heads", resume_mlp_with_other_width,
      ("--resume", "width = 8", "width = 64")),
    # ---- rnn-lm
    C("rnn-max-len-text", "rnn-lm", plain("rnn-lm", "--max-len", "abc"),
      ("--max-len", "integer")),
    C("rnn-max-len-huge", "rnn-lm", plain("rnn-lm", "--max-len", "10000000"),
      ("--max-len", "too large")),
    C("rnn-min-above-max", "rnn-lm", plain("rnn-lm", "--min-len", "9", "--max-len", "3"),
      ("--min-len", "--max-len", "9", "3")),
    C("rnn-vocab-1", "rnn-lm", plain("rnn-lm", "--vocab", "1"), ("--vocab", "2")),
    C("rnn-hidden-0", "rnn-lm", plain("rnn-lm", "--hidden", "0"), ("--hidden", "1")),
    C("rnn-cell-lstm", "rnn-lm", plain("rnn-lm", "--cell", "lstm"), ("--cell", "lstm")),
    C("rnn-repeats-float", "rnn-lm", plain("rnn-lm", "--repeats", "1.5"),
      ("--repeats", "integer")),
    C("rnn-repeats-0", "rnn-lm", plain("rnn-lm", "--repeats", "0"), ("--repeats", "1")),
    C("rnn-min-time-nan", "rnn-lm", plain("rnn-lm", "--min-time", "nan"), ("--min-time",)),
    C("rnn-threads-negative", "rnn-lm", plain("rnn-lm", "--threads", "-1"), ("--threads",)),
    C("rnn-time-budget-0", "rnn-lm", plain("rnn-lm", "--time-budget", "0"),
      ("--time-budget", "positive")),
    C("rnn-max-memory-text", "rnn-lm", plain("rnn-lm", "--max-memory", "lots"),
      ("--max-memory", "lots")),
    C("rnn-seed-negative", "rnn-lm", plain("rnn-lm", "--seed", "-1"), ("--seed",)),
    C("rnn-device-tpu", "rnn-lm", plain("rnn-lm", "--device", "tpu"), ("--device", "tpu")),
    C("rnn-dtype-float16", "rnn-lm", plain("rnn-lm", "--dtype", "float16"),
      ("--dtype", "float16")),
    C("rnn-unknown-option", "rnn-lm", plain("rnn-lm", "--frobnicate"), ("--frobnicate",)),
    C("rnn-too-big-for-memory", "rnn-lm",
      plain("rnn-lm", "--hidden", "1000000", "--vocab", "1000000", "--batch", "1000000",
            "--max-len", "64"),
      ("--max-len", "GiB")),
    C("rnn-out-is-a-file", "rnn-lm", with_file("rnn-lm", "--out", "{tmp}/a-file"),
      ("--out", "{tmp}/a-file")),
    C("rnn-resume-missing", "rnn-lm", resume_missing("rnn-lm"),
      ("--resume", "{tmp}/out/rnn-lm-ugrnn/summary.json", "missing")),
    C("rnn-resume-corrupt-summary", "rnn-lm",
      resume_of("rnn-lm", "rnn-lm-ugrnn", _write("summary.json", b"\xff\xfe\x00")),
      ("--resume", "{tmp}/out/rnn-lm-ugrnn/summary.json", "UTF-8")),
    C("rnn-resume-other-experiment", "rnn-lm", copied_run("rnn-lm", "rnn-lm-ugrnn"),
      ("--resume", "{tmp}/out/rnn-lm-ugrnn", "mlp-heads", "rnn-lm")),
    # ---- ugcnn
    C("ugcnn-max-depth-text", "ugcnn", plain("ugcnn", "--max-depth", "abc"),
      ("--max-depth", "integer")),
    C("ugcnn-max-depth-0", "ugcnn", plain("ugcnn", "--max-depth", "0"), ("--max-depth",)),
    C("ugcnn-min-above-max", "ugcnn", plain("ugcnn", "--min-depth", "10", "--max-depth", "5"),
      ("--min-depth", "--max-depth")),
    C("ugcnn-channels-huge", "ugcnn", plain("ugcnn", "--channels", "99999"),
      ("--channels", "4096")),
    C("ugcnn-channels-0", "ugcnn", plain("ugcnn", "--channels", "0"), ("--channels", "1")),
    C("ugcnn-image-size-text", "ugcnn", plain("ugcnn", "--image-size", "big"),
      ("--image-size", "integer")),
    C("ugcnn-impl-fft", "ugcnn", plain("ugcnn", "--impl", "fft"), ("--impl", "fft")),
    C("ugcnn-repeats-float", "ugcnn", plain("ugcnn", "--repeats", "1.5"),
      ("--repeats", "integer")),
    C("ugcnn-min-time-nan", "ugcnn", plain("ugcnn", "--min-time", "nan"), ("--min-time",)),
    C("ugcnn-threads-negative", "ugcnn", plain("ugcnn", "--threads", "-1"), ("--threads",)),
    C("ugcnn-time-budget-negative", "ugcnn", plain("ugcnn", "--time-budget", "-5"),
      ("--time-budget", "positive")),
    C("ugcnn-max-memory-0", "ugcnn", plain("ugcnn", "--max-memory", "0"),
      ("--max-memory", "1 byte")),
    C("ugcnn-seed-huge", "ugcnn", plain("ugcnn", "--seed", "99999999999"), ("--seed",)),
    C("ugcnn-device-tpu", "ugcnn", plain("ugcnn", "--device", "tpu"), ("--device", "tpu")),
    C("ugcnn-dtype-float16", "ugcnn", plain("ugcnn", "--dtype", "float16"),
      ("--dtype", "float16")),
    C("ugcnn-unknown-option", "ugcnn", plain("ugcnn", "--frobnicate"), ("--frobnicate",)),
    C("ugcnn-too-big-for-memory", "ugcnn",
      plain("ugcnn", "--channels", "4096", "--image-size", "4096", "--batch", "1000",
            "--max-depth", "4"),
      ("--max-depth", "GiB")),
    C("ugcnn-out-is-a-file", "ugcnn", with_file("ugcnn", "--out", "{tmp}/a-file"),
      ("--out", "{tmp}/a-file")),
    C("ugcnn-resume-missing", "ugcnn", resume_missing("ugcnn"),
      ("--resume", "{tmp}/out/ugcnn/summary.json", "missing")),
    C("ugcnn-resume-other-experiment", "ugcnn", copied_run("ugcnn", "ugcnn"),
      ("--resume", "{tmp}/out/ugcnn", "mlp-heads", "ugcnn")),
    C("ugcnn-resume-corrupt-summary", "ugcnn",
      resume_of("ugcnn", "ugcnn", _summary_json([1, 2, 3])),
      ("--resume", "{tmp}/out/ugcnn/summary.json", "JSON object")),
    # ---- trainability
    C("train-depths-text", "trainability", plain("trainability", "--depths", "2,x"),
      ("--depths", "2,x")),
    C("train-depths-0", "trainability", plain("trainability", "--depths", "0"),
      ("--depths", "at least 1")),
    C("train-depths-huge", "trainability", plain("trainability", "--depths", "2,5000"),
      ("--depths", "5000")),
    C("train-depths-empty", "trainability", plain("trainability", "--depths", ","),
      ("--depths", "at least one")),
    C("train-variants-foo", "trainability", plain("trainability", "--variants", "plain,foo"),
      ("--variants", "foo")),
    C("train-variants-empty", "trainability", plain("trainability", "--variants", ","),
      ("--variants", "at least one")),
    C("train-steps-negative", "trainability", plain("trainability", "--steps", "-1"),
      ("--steps", "-1")),
    C("train-steps-float", "trainability", plain("trainability", "--steps", "1.5"),
      ("--steps", "integer")),
    C("train-steps-huge", "trainability",
      plain("trainability", *TINY_TRAINABILITY, "--steps", "99999999999999999999999"),
      ("--steps",)),
    C("train-lr-sgd-0", "trainability", plain("trainability", "--lr-sgd", "0"),
      ("--lr-sgd", "positive")),
    C("train-lr-adam-nan", "trainability", plain("trainability", "--lr-adam", "nan"),
      ("--lr-adam", "positive")),
    C("train-threads-negative", "trainability", plain("trainability", "--threads", "-1"),
      ("--threads",)),
    C("train-seed-negative", "trainability", plain("trainability", "--seed", "-1"),
      ("--seed",)),
    C("train-max-depth", "trainability", plain("trainability", "--max-depth", "5"),
      ("--max-depth",)),
    C("train-unknown-option", "trainability", plain("trainability", "--frobnicate"),
      ("--frobnicate",)),
    C("train-out-is-a-file", "trainability",
      with_file("trainability", *TINY_TRAINABILITY, "--out", "{tmp}/a-file"),
      ("--out", "{tmp}/a-file")),
    C("train-resume-other-steps", "trainability", resume_trainability_with_other_steps,
      ("--resume", "steps", "0", "5")),
    C("train-resume-corrupt-summary", "trainability", resume_trainability_corrupt,
      ("--resume", "{tmp}/out/trainability/summary.json", "JSON")),
    C("train-resume-missing", "trainability",
      resume_missing("trainability", *TINY_TRAINABILITY),
      ("--resume", "{tmp}/out/trainability/summary.json", "missing")),
    # ---- report
    C("report-missing-folder", "report", plain("report", "{tmp}/nowhere"),
      ("{tmp}/nowhere", "no such folder")),
    C("report-a-file", "report", with_file("report", "{tmp}/a-file"),
      ("{tmp}/a-file", "not a folder")),
    C("report-empty-folder", "report",
      with_folder("report", "{tmp}/empty"),
      ("{tmp}/empty", "no summary.json")),
    C("report-summary-empty", "report", bad_run(_write("summary.json", b"")),
      (RUN, "summary.json", "empty")),
    C("report-summary-truncated", "report", bad_run(_write("summary.json", TRUNCATED)),
      (RUN, "summary.json", "valid JSON")),
    C("report-summary-not-utf8", "report", bad_run(_write("summary.json", b"\xff\xfe\x00")),
      (RUN, "summary.json", "UTF-8")),
    C("report-summary-list", "report", bad_run(_summary_json([{"format_version": 1}])),
      (RUN, "summary.json", "not a JSON object")),
    C("report-summary-format-99", "report", bad_run(_edit_summary(format_version=99)),
      (RUN, "summary.json", "format", "99")),
    C("report-summary-other-tool", "report",
      bad_run(_summary_json({"name": "eslint", "version": "9"})),
      (RUN, "summary.json", "not a trainbench")),
    C("report-nan-time", "report", bad_run(_edit_table(_set_cell("bwd_s", "nan"))),
      (RUN, "measurements.csv", "NaN", "bwd_s")),
    C("report-negative-time", "report", bad_run(_edit_table(_set_cell("fwd_s", "-0.001"))),
      (RUN, "measurements.csv", "negative", "fwd_s")),
    C("report-text-count", "report", bad_run(_edit_table(_set_cell("bwd_flops", "many"))),
      (RUN, "measurements.csv", "not a number", "bwd_flops")),
    C("report-missing-column", "report", bad_run(_edit_table(_drop_column("bwd_s"))),
      (RUN, "measurements.csv", "column", "bwd_s")),
    C("report-measurements-missing", "report", bad_run(_remove("measurements.csv")),
      (RUN, "measurements.csv", "missing")),
    C("report-format-jpg", "report",
      lambda tmp: ["report", str(make_run(tmp / "run")), "--format", "jpg",
                   "--out", str(tmp / "out")],
      ("--format", "jpg")),
    C("report-out-is-a-file", "report",
      lambda tmp: [*with_file("report", "--out", "{tmp}/a-file")(tmp),
                   str(make_run(tmp / "run"))],
      ("--out", "{tmp}/a-file")),
    C("report-unknown-option", "report", plain("report", "{tmp}", "--frobnicate"),
      ("--frobnicate",)),
    C("report-no-folder", "report", plain("report"), ("run_dirs",)),
    # ---- verify
    C("verify-claims-missing", "verify", plain("verify", "--claims", "{tmp}/none.toml"),
      ("{tmp}/none.toml", "no such claims file")),
    C("verify-claims-folder", "verify", with_folder("verify", "--claims", "{tmp}/empty"),
      ("{tmp}/empty", "folder")),
    C("verify-claims-not-toml", "verify", claims_file("this is [not toml\n"),
      ("{tmp}/claims.toml", "not valid TOML")),
    C("verify-claims-not-utf8", "verify",
      with_file("verify", "--claims", "{tmp}/a-file", content=b"\xff\xfe\x00"),
      ("{tmp}/a-file", "UTF-8")),
    C("verify-claims-no-claims", "verify", claims_file('title = "nothing here"\n'),
      ("{tmp}/claims.toml", "no claims")),
    C("verify-claims-unknown-experiment", "verify", claims_file(UNKNOWN_EXPERIMENT),
      ("{tmp}/claims.toml", "X1", "unknown experiment", "lstm")),
    C("verify-claims-width-0", "verify",
      claims_file(CLAIM_WITH_OPTIONS.replace("{OPTIONS}", "{ width = 0 }")),
      ("{tmp}/claims.toml", "W1", "width")),
    C("verify-claims-width-negative", "verify",
      claims_file(CLAIM_WITH_OPTIONS.replace("{OPTIONS}", "{ width = -3 }")),
      ("{tmp}/claims.toml", "W1", "width")),
    C("verify-only-unknown", "verify", plain("verify", "--quick", "--only", "P9"),
      ("--only", "P9")),
    C("verify-only-empty", "verify", plain("verify", "--quick", "--only", ","),
      ("--only", "at least one")),
    C("verify-device-tpu", "verify", plain("verify", "--quick", "--device", "tpu"),
      ("--device", "tpu")),
    C("verify-unknown-option", "verify", plain("verify", "--frobnicate"), ("--frobnicate",)),
    C("verify-out-is-a-file", "verify",
      with_file("verify", "--quick", "--only", "P1b", "--out", "{tmp}/a-file"),
      ("--out", "{tmp}/a-file")),
]
# fmt: on

PARAMS = [pytest.param(c, id=c.name) for c in CASES]


def test_table_covers_every_command() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    assert len(CASES) >= 40
    for command in COMMANDS:
        assert sum(c.command == command for c in CASES) >= 5, command


# ------------------------------------------------------------------------- the test


class Measured(Exception):
    """Raised where a measurement would start: no bad input may get that far."""


def _no_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> Callable[..., Any]:
        def measuring(*args: Any, **kwargs: Any) -> Any:
            raise Measured(f"{name} called: a measurement started")

        return measuring

    measure_with(monkeypatch, **{name: refuse(name) for name in ("matmul_rate", "count", "probe")})
    for module, name in ((trainbench.trainability.run, "gradient_signal"),
                         (trainbench.trainability.run, "train")):  # fmt: skip
        monkeypatch.setattr(module, name, refuse(name))


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> Any:
    """The tiny earlier runs set torch's threads to 1: give the other tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "args",
    [["mlp-heads", *["--max-depth", "2", "--width", "4", "--batch", "2", "--in-dim", "2"]],
     ["trainability", *["--depths", "2", "--variants", "plain", "--steps", "0", "--jobs", "1"]]],
    ids=["sweep", "trainability"],
)  # fmt: skip
def test_the_guard_stops_a_measurement(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Good input gets as far as measuring, where the guard of the table stops it."""
    monkeypatch.chdir(tmp_path)
    _no_measuring(monkeypatch)
    result = invoke(*args, "--threads", "1", "--out", tmp_path / "out", "--quiet")
    assert isinstance(result.exception, Measured), (result.exit_code, result.stderr)


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in files_under(root)}


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input_is_one_line_error(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a default results/ would land here, not in the repository
    args = case.setup(tmp_path)
    assert args[0] == case.command, args
    before = _snapshot(tmp_path)
    _no_measuring(monkeypatch)

    started = time.perf_counter()
    result = invoke(*args)
    elapsed = time.perf_counter() - started

    stdout, stderr = result.stdout, result.stderr
    assert not isinstance(result.exception, Measured), result.exception
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == case.code, (result.exit_code, stdout, stderr)
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("trainbench: error: "), lines[0]
    for word in case.words:  # case aside: RUN_DIRS or run_dirs, NaN or nan
        word = word.replace("{tmp}", str(tmp_path))
        assert word.lower() in lines[0].lower(), (word, lines[0])
    assert elapsed < 5, f"took {elapsed:.1f} s to refuse"
    # nothing written, nothing changed anywhere under tmp_path ...
    assert _snapshot(tmp_path) == before
    # ... and an --out that held nothing still holds nothing
    out = Path(args[args.index("--out") + 1]) if "--out" in args else tmp_path / "out"
    if out.is_dir() and not any(p.is_relative_to(out) for p in before):
        assert files_under(out) == []


# -------------------------------------------------------------------------- help


MAIN_OPTIONS = {
    "mlp-heads": ("--max-depth", "--width"),
    "rnn-lm": ("--max-len", "--cell"),
    "ugcnn": ("--max-depth", "--channels"),
    "trainability": ("--depths", "--variants"),
    "report": ("run_dirs", "--format"),
    "verify": ("--claims", "--only"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    result = invoke(command, "--help")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    for option in MAIN_OPTIONS[command]:
        assert option in result.stdout.lower(), option
    assert "--help" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_no_arguments_prints_help(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke()
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert "Usage" in result.stdout
    for command in COMMANDS:
        assert command in result.stdout, command
    assert list(tmp_path.iterdir()) == []

