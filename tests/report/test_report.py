"""trainbench.report.pages on generated result folders: no torch measurement, known values.

A sweep run here is an mlp-heads run with exact synthetic numbers (backward time 1e-3·L for
`full`, 1e-4·L² for the `per-head` control, exact counts), written with results.write_run.
Timings are never asserted.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from trainbench.plots.figures import local_slopes, plot_family  # noqa: E402
from trainbench.report.pages import (  # noqa: E402
    ReportError,
    default_out,
    load_runs,
    write_report,
)
from trainbench.report.reproduce import reproduce_command  # noqa: E402
from trainbench.results import fileset  # noqa: E402
from trainbench.results.files import to_json, write_run
from trainbench.results.schema import FORMAT_VERSION

SIZES = [1, 2, 4, 8, 16, 32, 64]
CONTROL_SIZES = [2, 4, 8, 16, 32, 64]
FAMILIES = ("time", "flops", "graph", "memory", "time-per-work", "local-slope", "fwd-bwd")
MLP_CONFIG = {
    "min_size": 1, "max_size": 64,
    "options": {"width": 256, "batch": 64, "in_dim": 32, "activation": "sigmoid",
                "impl": "einsum"},
    "control": True, "control_max_size": 256, "repeats": 3, "min_time": 0.05, "threads": 0,
    "device": "auto", "dtype": "float32", "seed": 0, "grid_ratio": math.sqrt(2),
    "experiment": "mlp-heads", "sizes": SIZES, "variants": ["full", "per-head"],
}  # fmt: skip


def _point(variant: str, n: int) -> dict[str, Any]:
    quad = variant == "per-head"
    bwd = 1e-4 * n * n if quad else 1e-3 * n
    return {
        "variant": variant, "size": n, "fwd_s": 5e-4 * n, "fwd_iqr_s": 2.5e-5 * n,
        "bwd_s": bwd, "bwd_iqr_s": 0.05 * bwd, "fwd_flops": 1000 * n,
        "bwd_flops": 2000 * n * n if quad else 2000 * n, "graph_nodes": 15 * n * n if quad
        else 30 * n + 1, "graph_depth": 10 * n + 4, "saved_bytes": 4096 * n, "peak_bytes": None,
        "gflops": 1.0, "efficiency": 0.1, "noisy": False, "rounds": 3, "fwd_runs_per_sample": 1,
        "bwd_runs_per_sample": 1, "format_version": FORMAT_VERSION,
    }  # fmt: skip


def _claim(cid: str, variant: str, metric: str, exponent: float, **extra: Any) -> dict[str, Any]:
    expected = "O(L²)" if exponent == 2 else "O(L)"
    return {
        "id": cid, "problem": "1b", "statement": f"{metric} of {variant} is {expected}",
        "variant": variant, "metric": metric, "expected": expected,
        "expected_exponent": exponent, "tolerance": 0.15, "control": None, "is_control": False,
        "verdict": "confirmed", "reason": "", "exponent": exponent, "ci_low": exponent - 0.03,
        "ci_high": exponent + 0.03, "best_class": "n^2" if exponent == 2 else "n",
        "poly_degree": None, "by_degree": False, "fit_sizes": [4.0, 64],
        "control_exponent": None, "partial": False, **extra,
    }  # fmt: skip


def mlp_summary(device_name: str = "AMD EPYC") -> dict[str, Any]:
    claims = [
        _claim("P1b", "full", "bwd_s", 1.0, control="P1b-control"),
        _claim("P1b-flops", "full", "bwd_flops", 1.0, by_degree=True, poly_degree=1),
        _claim("P1b-graph", "full", "graph_nodes", 1.0, verdict="inconclusive"),
        _claim("P1b-memory", "full", "saved_bytes", 1.0),
        _claim("P1b-control", "per-head", "bwd_s", 2.0, is_control=True, fit_sizes=[2.0, 64]),
    ]
    fits = [
        {"variant": v, "metric": m, "fit_from": 4.0 if v == "full" else 2.0, "exponent": 1.0}
        for v in ("full", "per-head")
        for m in ("fwd_s", "bwd_s", "fwd_flops", "bwd_flops", "graph_nodes", "graph_depth",
                  "saved_bytes")
    ]  # fmt: skip
    return {
        "format_version": FORMAT_VERSION, "experiment": "mlp-heads", "complete": True,
        "config": copy.deepcopy(MLP_CONFIG),
        "environment": {
            "torch_version": "2.13.0+cpu", "device": "cpu", "device_name": device_name,
            "cpu_model": device_name, "cpu_count": 2, "threads": 2, "dtype": "float32",
            "seed": 0, "timestamp": "2026-11-25T19:29:23+00:00",
        },
        "baseline": {"op": "torch.mm", "gflops": 100.0},
        "notes": ["the control (per-head) is measured at every other size"],
        "points": [], "fits": fits, "claims": claims,
    }  # fmt: skip


def make_run(folder: Path, summary: dict[str, Any] | None = None) -> Path:
    points = [_point("full", n) for n in SIZES] + [_point("per-head", n) for n in CONTROL_SIZES]
    samples = [
        {"variant": p["variant"], "size": p["size"], "phase": phase, "round": r,
         "sample_s": p[f"{phase}_s"], "format_version": FORMAT_VERSION}
        for p in points for phase in ("fwd", "bwd") for r in range(3)
    ]  # fmt: skip
    summary = summary or mlp_summary()
    write_run(folder, {**summary, "points": summary["points"] or points}, points, samples)
    return folder


def trainability_summary() -> dict[str, Any]:
    signal = [
        {"variant": v, "activation": "sigmoid", "depth": d, "seed": s,
         "first_layer_grad_norm": g**d, "last_layer_grad_norm": 1.0, "ratio": g**d,
         "top_only_ratio": g**d, "layer_grad_norms": [g ** (d - i) for i in range(d)]}
        for v, g in (("plain", 0.1), ("heads", 0.9)) for d in (2, 4) for s in (0, 1)
    ]  # fmt: skip
    training = [
        {"variant": v, "activation": "sigmoid", "depth": d, "optimizer": "sgd", "steps": 10,
         "seeds": [0, 1], "lr_grid": [0.1, 0.3], "lr": 0.1, "lr_scores": [0.1, 0.2],
         "lr_at_edge": True, "target_variance": 1.0, "threshold": 0.5,
         "initial_loss": [1.0, 1.0], "final_loss": [0.1 * d, 0.2 * d],
         "head_losses": [[0.1 * d] * (d if v == "heads" else 1)] * 2,
         "deepest_head": [d, d], "deep_head_loss": [0.1 * d, 0.2 * d],
         "steps_to_threshold": [10, None], "diverged": [False, False],
         "trained_ratio": [0.5, 0.4],
         "curve": [{"step": 0, "loss": [1.0, 1.0]}, {"step": 10, "loss": [0.1 * d, 0.2 * d]}],
         "profile": [{"step": 0, "deepest_head": [0, 0]}, {"step": 10, "deepest_head": [d, 0]}],
         "finetune": None}
        for v in ("plain", "heads") for d in (2, 4)
    ]  # fmt: skip
    claim = {"id": "P1a", "problem": "1a", "variant": "heads", "baseline": "plain",
             "statement": "heads keep the gradient", "is_control": False, "depth": 4,
             "ratio": 0.6, "baseline_ratio": 1e-4, "verdict": "confirmed"}  # fmt: skip
    config = {"depths": [2, 4], "variants": ["plain", "heads"], "optimizers": ["sgd"],
              "steps": 10, "lr_sgd": [0.1, 0.3], "lr_adam": [0.001], "seed": 0, "threads": 0,
              "seeds": 2, "activations": ["sigmoid"]}  # fmt: skip
    return {
        "format_version": FORMAT_VERSION, "experiment": "trainability", "complete": True,
        "config": config, "environment": mlp_summary()["environment"],
        "gradient_signal": signal, "training": training, "gates": [], "claims": [claim],
    }  # fmt: skip


def _pngs(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.suffix == ".png"]


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """One generated mlp-heads run, reported; a user's own figure lies in OUT/plots beforehand."""
    root = tmp_path_factory.mktemp("single")
    run = make_run(root / "mlp-heads")
    out = root / "out"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "figure1.png").write_bytes(b"the user's")
    written = write_report(load_runs([run]), out)
    return out, written


def test_report_files_and_images(single: tuple[Path, list[Path]]) -> None:
    out, written = single
    assert out / "report.md" in written and out / "report.html" in written
    assert all(p.is_file() for p in written)
    names = {p.name for p in _pngs(written)}
    assert names == {f"mlp-heads-{f}.png" for f in FAMILIES}
    for path in _pngs(written):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = mpimg.imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 500, (path, image.shape)
        assert image.std() > 0.01  # not blank
    assert plt.get_fignums() == []  # every figure closed


def test_markdown_and_html(single: tuple[Path, list[Path]]) -> None:
    out, _ = single
    md = (out / "report.md").read_text(encoding="utf-8")
    for cid in ("P1b", "P1b-flops", "P1b-graph", "P1b-memory", "P1b-control"):
        assert f"| {cid}: " in md
    for family in FAMILIES:
        assert f"(plots/mlp-heads-{family}.png)" in md
    assert "the control (per-head) is measured at every other size" in md
    assert "torch 2.13.0+cpu" in md and "2 CPUs" in md
    assert "trainbench mlp-heads --min-depth 1 --max-depth 64" in md
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'src="plots/' not in page
    assert page.count('src="data:image/png;base64,') == len(FAMILIES)
    assert "<table>" in page and "P1b-control" in page


def test_verdict_not_expected_is_flagged(single: tuple[Path, list[Path]]) -> None:
    md = (single[0] / "report.md").read_text(encoding="utf-8")
    flagged = [line for line in md.splitlines() if "**inconclusive (expected confirmed)**" in line]
    assert len(flagged) == 1 and "| P1b-graph: " in flagged[0]
    assert "**confirmed" not in md


def test_a_file_the_report_did_not_write_is_kept(single: tuple[Path, list[Path]]) -> None:
    assert (single[0] / "plots" / "figure1.png").read_bytes() == b"the user's"


def test_the_plots_of_the_last_report_it_no_longer_draws_are_removed(tmp_path: Path) -> None:
    first = make_run(tmp_path / "one" / "mlp-heads")
    out = tmp_path / "out"
    before = write_report(load_runs([first]), out)
    summary = mlp_summary()
    summary["run"] = "other"
    second = make_run(tmp_path / "two" / "other", summary)
    after = write_report(load_runs([second]), out)
    assert {p.name for p in _pngs(after)} == {f"other-{f}.png" for f in FAMILIES}
    assert not any(p.exists() for p in _pngs(before))
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(p.name for p in _pngs(after))


def test_a_page_another_program_wrote_is_not_overwritten(tmp_path: Path) -> None:
    run = make_run(tmp_path / "mlp-heads")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("# my notes\n", encoding="utf-8")
    with pytest.raises(ReportError, match="report.md: not written by trainbench report"):
        write_report(load_runs([run]), out)
    assert (out / "report.md").read_text(encoding="utf-8") == "# my notes\n"
    assert not (out / "plots").exists()
    write_report(load_runs([run]), out, force=True)
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# trainbench report")
    write_report(load_runs([run]), out)  # its own page from then on


def test_a_page_of_an_earlier_version_is_its_own(tmp_path: Path) -> None:
    run = make_run(tmp_path / "mlp-heads")
    out = tmp_path / "out"
    write_report(load_runs([run]), out)
    (out / ".trainbench-report.json").unlink()  # as before the manifest existed
    write_report(load_runs([run]), out)
    assert (out / ".trainbench-report.json").is_file()


def test_svg_format(tmp_path: Path) -> None:
    summary = mlp_summary()
    summary["claims"][0]["expect"] = "refuted"  # a claim expected to fail, and failing
    summary["claims"][0]["verdict"] = "refuted"
    written = write_report(load_runs([make_run(tmp_path / "mlp-heads", summary)]), tmp_path / "o",
                           fmt="svg")  # fmt: skip
    svgs = [p for p in written if p.suffix == ".svg"]
    assert len(svgs) == len(FAMILIES) and not _pngs(written)
    assert all(b"<svg" in p.read_bytes()[:2000] for p in svgs)
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/svg+xml;base64,") == len(FAMILIES)
    md = (tmp_path / "o" / "report.md").read_text(encoding="utf-8")
    assert "| refuted |" in md  # as expected: not flagged


def test_overlay_of_two_devices(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a" / "mlp-heads")
    b = make_run(tmp_path / "b" / "mlp-heads", mlp_summary("Intel Xeon 8480"))
    runs = load_runs([a, tmp_path / "b"])
    assert [r.label for r in runs] == ["cpu · AMD EPYC", "cpu · Intel Xeon 8480"]
    assert [r.source for r in runs] == [a, tmp_path / "b"]
    fig, _ = plot_family(runs, "time")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert {"full", "per-head", "cpu · AMD EPYC", "cpu · Intel Xeon 8480"} <= set(labels)
    written = write_report(runs, tmp_path / "out")
    assert {p.name for p in _pngs(written)} == {f"mlp-heads-{f}.png" for f in FAMILIES}
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "mlp-heads (cpu · AMD EPYC)" in md and "mlp-heads (cpu · Intel Xeon 8480)" in md
    assert str(b) in md
    assert plt.get_fignums() == []


def test_trainability_and_verify_folder(tmp_path: Path) -> None:
    root = tmp_path / "verify"
    make_run(root / "mlp-heads")
    folder = root / "trainability"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(to_json(trainability_summary()), encoding="utf-8")
    (root / "report").mkdir()  # an earlier report: ignored
    assert [r.name for r in load_runs([root])] == ["mlp-heads", "trainability"]
    (root / "verify.json").write_text(json.dumps({"runs": ["trainability", "mlp-heads"]}))
    runs = load_runs([root])
    assert [r.name for r in runs] == ["trainability", "mlp-heads"]
    assert runs[0].points.empty and runs[0].samples.empty
    out = default_out([root])
    assert out == root / "report"
    written = write_report(runs, out, fmt="svg", command="trainbench verify --quick")
    names = {p.name for p in written}
    for plot in ("grad_ratio", "grad_norms", "loss_curves", "final_loss"):
        assert f"trainability-{plot}.png" in names  # PNG whatever the format
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| P1a: heads keep the gradient |" in md
    assert md.count("trainbench verify --quick") == 2  # once per run section
    assert "data:image/png;base64," in (out / "report.html").read_text(encoding="utf-8")
    assert plt.get_fignums() == []


def test_uncounted_series_and_empty_run(tmp_path: Path) -> None:
    """FLOPs missing at every size: no flops plot, and the report says so; a run stopped
    before its first point: no plots, a note."""
    folder = make_run(tmp_path / "mlp-heads")
    _rewrite_csv(folder, _set("fwd_flops", None, rows=slice(None)))
    _rewrite_csv(folder, _set("bwd_flops", None, rows=slice(None)))
    empty = tmp_path / "ugcnn"
    write_run(empty, {**mlp_summary(), "experiment": "ugcnn", "complete": False}, [], [])
    written = write_report(load_runs([folder, empty]), tmp_path / "out")
    names = {p.name for p in _pngs(written)}
    assert names == {f"mlp-heads-{f}.png" for f in FAMILIES if f != "flops"}
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "backward FLOPs not counted at any size" in md
    assert "peak bytes not measured (CUDA only)" in md
    assert "ugcnn: no point measured yet" in md and "Partial run" in md


def test_default_out() -> None:
    assert default_out([Path("results")]) == Path("results/report")
    assert default_out([Path("a"), Path("b")]) == Path("report")


def test_reproduce_commands() -> None:
    summary = {"experiment": "mlp-heads", "config": {**MLP_CONFIG, "max_size": 128}}
    assert reproduce_command(summary) == (
        "trainbench mlp-heads --min-depth 1 --max-depth 128 --width 256 --batch 64 --in-dim 32 "
        "--activation sigmoid --impl einsum --control-max-depth 256 --repeats 3 --min-time 0.05 "
        "--seed 0 --dtype float32"
    )
    rnn = {"min_size": 1, "max_size": 256, "control": True, "control_max_size": 64,
           "options": {"cell": "none", "vocab": 1000, "hidden": 128, "batch": 16},
           "repeats": 3, "min_time": 0.05, "threads": 0, "device": "auto", "dtype": "float32",
           "seed": 0}  # fmt: skip
    assert reproduce_command({"experiment": "rnn-lm", "config": rnn}) == (
        "trainbench rnn-lm --min-len 1 --max-len 256 --cell none --vocab 1000 --hidden 128 "
        "--batch 16 --control-max-len 64 --repeats 3 --min-time 0.05 --seed 0 --dtype float32"
    )
    ugcnn = {**rnn, "max_size": 32, "control": False, "threads": 4, "device": "cuda",
             "options": {"channels": 8, "image_size": 16, "batch": 8, "kernel": 3,
                         "impl": "conv"}}  # fmt: skip
    assert reproduce_command({"experiment": "ugcnn", "config": ugcnn}) == (
        "trainbench ugcnn --min-depth 1 --max-depth 32 --channels 8 --image-size 16 --batch 8 "
        "--impl conv --no-control --repeats 3 --min-time 0.05 --threads 4 --device cuda "
        "--seed 0 --dtype float32"
    )
    # what ends the passes, where it is not the default, so that the command makes the same run
    limits = {**rnn, "max_passes": 6, "precision": 0.05, "time_budget": None}
    assert reproduce_command({"experiment": "rnn-lm", "config": limits}).endswith(
        "--repeats 3 --min-time 0.05 --max-passes 6 --seed 0 --dtype float32"
    )
    limits |= {"max_passes": 40, "precision": 0.02, "time_budget": 90.0}
    assert "--precision 0.02 --time-budget 90.0 --seed" in reproduce_command(
        {"experiment": "rnn-lm", "config": limits}
    )
    train = {"depths": [2, 4, 8], "variants": ["plain", "heads"], "steps": 300, "lr_sgd": 0.1,
             "lr_adam": 0.001, "seed": 0, "threads": 0, "width": 64}  # fmt: skip
    assert reproduce_command({"experiment": "trainability", "config": train}) == (
        "trainbench trainability --depths 2,4,8 --variants plain,heads --steps 300 --lr-sgd 0.1 "
        "--lr-adam 0.001 --seed 0"
    )


def test_local_slopes() -> None:
    sizes = [1, 2, 3, 4, 6, 8, 11, 16, 23, 32]
    slopes = local_slopes(sizes, [3e-5 * n * n for n in sizes])
    assert len(slopes) == len(sizes) - 1
    assert all(abs(s - 2.0) < 1e-9 for s in slopes)
    assert local_slopes([4, 1, 2], [4.0, 1.0, 2.0]) == pytest.approx([1.0, 1.0])  # sorted first
    assert math.isnan(local_slopes([1, 2], [0.0, 1.0])[0])


# --------------------------------------------------------------------------- bad folders


def _rewrite_csv(folder: Path, change: Callable[[pd.DataFrame], None]) -> None:
    """measurements.csv changed as a run would have written it (its digest in summary.json
    too: see test_edited_tables_are_refused for a file changed afterwards)."""
    frame = pd.read_csv(folder / "measurements.csv")
    change(frame)
    text = frame.to_csv(index=False)
    (folder / "measurements.csv").write_text(text, encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary["files"]["measurements.csv"]["sha256"] = fileset.digest(text)
    (folder / "summary.json").write_text(to_json(summary), encoding="utf-8")


def _summary_with(**changes: Any) -> str:
    return to_json({**mlp_summary(), **changes})


def _set(column: str, value: Any, rows: Any = 2) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value

    return change


BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing path": (lambda d: d / "nope", "no such folder"),
    "a file": (lambda d: (d / "f.txt", (d / "f.txt").write_text("x"))[0], "not a folder"),
    "empty folder": (lambda d: (d / "e", (d / "e").mkdir())[0], "no summary.json"),
    "empty summary": (lambda d: (d / "r", (d / "r" / "summary.json").write_text(" \n"))[0],
                      "summary.json: empty"),
    "truncated JSON": (lambda d: (d / "r", (d / "r" / "summary.json").write_text(
        _summary_with()[:200]))[0], "summary.json: invalid JSON ("),
    "not UTF-8": (lambda d: (d / "r", (d / "r" / "summary.json").write_bytes(
        b'{"experiment": "\xff\xfe"}'))[0], "not UTF-8"),
    "a JSON list": (lambda d: (d / "r", (d / "r" / "summary.json").write_text("[1, 2]"))[0],
                    "not a JSON object"),
    "format 999": (lambda d: (d / "r", (d / "r" / "summary.json").write_text(
        _summary_with(format_version=999)))[0], "(format 999, this one reads 1)"),
    "foreign JSON": (lambda d: (d / "r", (d / "r" / "summary.json").write_text(
        '{"name": "x"}'))[0], "no format_version: not a trainbench results file"),
    "no measurements": (lambda d: (d / "r", (d / "r" / "measurements.csv").unlink())[0],
                        "measurements.csv: missing"),
    "no bwd_s column": (lambda d: (d / "r", _rewrite_csv(
        d / "r", lambda f: f.pop("bwd_s")))[0], "bwd_s"),
    "NaN bwd_s": (lambda d: (d / "r", _rewrite_csv(d / "r", _set("bwd_s", None)))[0],
                  "line 4: bwd_s is empty"),
    "negative fwd_s": (lambda d: (d / "r", _rewrite_csv(d / "r", _set("fwd_s", -1.0)))[0],
                       "line 4: fwd_s is -1.0 (negative)"),
    "text size": (lambda d: (d / "r", _rewrite_csv(d / "r", _set("size", "big")))[0],
                  "line 4: size is 'big', not a number"),
    "text count": (lambda d: (d / "r", _rewrite_csv(d / "r", _set("graph_nodes", "many")))[0],
                   "line 4: graph_nodes is 'many', not a number"),
    "zero bwd_s": (lambda d: (d / "r", _rewrite_csv(d / "r", _set("bwd_s", 0.0)))[0],
                   "line 4: bwd_s is 0.0 (zero"),
    "NaN fwd_s": (lambda d: (d / "r", _rewrite_csv(d / "r", _set("fwd_s", "nan")))[0],
                  "line 4: fwd_s is NaN"),
    "no samples": (lambda d: (d / "r", (d / "r" / "samples.csv").unlink())[0],
                   "samples.csv: missing"),
    "a claim without an id": (lambda d: (d / "r", (d / "r" / "summary.json").write_text(
        _summary_with(claims=[{"statement": "x"}])))[0], 'claim 1 is not an object with a text'),
    "environment not an object": (lambda d: (d / "r", (d / "r" / "summary.json").write_text(
        _summary_with(environment=[1])))[0], "environment is not an object"),
    "trainability without config": (lambda d: (d / "r", (d / "r" / "summary.json").write_text(
        to_json({k: v for k, v in trainability_summary().items() if k != "config"})))[0],
        'not a trainbench summary (no "experiment" or "config")'),
    "verify lists a missing run": (lambda d: (d, (d / "verify.json").write_text(
        '{"runs": ["r", "gone"]}'))[0], "gone: in verify.json but has no summary.json"),
    "verify.json truncated": (lambda d: (d, (d / "verify.json").write_text('{"runs": ['))[0],
                              "verify.json: invalid JSON ("),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_folders(tmp_path: Path, case: str) -> None:
    make_run(tmp_path / "r")
    setup, expected = BAD[case]
    path = setup(tmp_path)
    with pytest.raises(ReportError) as info:
        load_runs([path])
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message, message
    assert expected in message, message


def test_bad_format_and_no_runs(tmp_path: Path) -> None:
    runs = load_runs([make_run(tmp_path / "mlp-heads")])
    with pytest.raises(ReportError, match="pdf"):
        write_report(runs, tmp_path / "out", fmt="pdf")
    with pytest.raises(ReportError, match="no runs"):
        write_report([], tmp_path / "out")
