"""`trainbench report`: loads result folders as runs and writes OUT/report.md (the verdict
table, then per run its plots, notes, environment and reproducing command, from
trainbench.report.reproduce) and OUT/report.html (the same, self-contained); the figures in
OUT/plots/ come from trainbench.plots.figures (a sweep's) and trainbench.trainability.files
(a trainability run's). Runs of the same name from several folders are overlaid. No torch in
here.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainbench.core.settings import first_line
from trainbench.plots.drawing import Run, pyplot
from trainbench.plots.figures import SWEEP_COLUMNS, sweep_plots
from trainbench.report.reproduce import reproduce_command
from trainbench.results.files import atomic_write_text
from trainbench.results.reading import read_json, read_run, read_summary
from trainbench.results.schema import ResultsError
from trainbench.results.verdicts import verdict_rows
from trainbench.trainability.files import plot_all

__all__ = [
    "CSS", "FORMATS", "SAMPLE_COLUMNS", "ReportError", "Strong", "default_out", "load_runs",
    "write_report",
]  # fmt: skip

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
SAMPLE_COLUMNS = ("variant", "size", "phase", "sample_s")


class ReportError(ResultsError):
    """A result folder or report target that cannot be used; the message is one line."""


def default_out(paths: Sequence[Path]) -> Path:
    return Path(paths[0]) / "report" if len(paths) == 1 else Path("report")


# --------------------------------------------------------------------------- loading


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Every run under ``paths`` (run folders, or folders of run folders), in order.

    ReportError (one line naming the folder or file) for anything that is not a run:
    see :func:`trainbench.results.files.read_run` and :func:`trainbench.results.files.read_summary`.
    """
    try:
        return [_load_run(folder, Path(p)) for p in paths for folder in _run_folders(Path(p))]
    except ReportError:
        raise
    except ResultsError as err:
        raise ReportError(str(err)) from None


def _run_folders(path: Path) -> list[Path]:
    try:
        if not path.exists():
            raise ReportError(f"{path}: no such folder")
        if not path.is_dir():
            raise ReportError(f"{path}: not a folder")
        if (path / "summary.json").exists():
            return [path]
        verify = read_json(path / "verify.json") if (path / "verify.json").is_file() else None
        names = verify.get("runs") if isinstance(verify, dict) else None
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            for name in names:
                if not (path / name / "summary.json").is_file():
                    raise ReportError(f"{path / name}: in verify.json but has no summary.json")
            return [path / name for name in names]
        folders = sorted(
            p for p in path.iterdir()
            if p.is_dir() and p.name != "report" and (p / "summary.json").is_file()
        )  # fmt: skip
    except OSError as err:
        raise ReportError(f"{path}: cannot be read ({err.strerror or first_line(err)})") from None
    if not folders:
        raise ReportError(f"{path}: not a trainbench result folder (no summary.json in it)")
    return folders


def _load_run(folder: Path, source: Path) -> Run:
    if not (folder / "summary.json").is_file():
        raise ReportError(f"{folder}: not a trainbench result folder (no summary.json)")
    summary = read_summary(folder, sweep=False)
    points = pd.DataFrame(columns=list(SWEEP_COLUMNS))
    samples = pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    if summary["experiment"] != "trainability":
        summary, points, samples = read_run(folder)
        for col in (*SWEEP_COLUMNS[2:], "peak_bytes"):  # the plots take every value as a float
            points[col] = points[col].astype(float)
    env = summary.get("environment") or {}
    label = " · ".join(str(env[k]) for k in ("device", "device_name") if env.get(k))
    name = folder.absolute().name or str(folder)
    return Run(folder, name, summary, points, samples, source, label or "unknown device")


# --------------------------------------------------------------------------- plots


def _trainability_plots(run: Run, prefix: str, plots: Path) -> list[tuple[Path, str]]:
    """trainbench.trainability.files.plot_all's figures (PNG whatever the format), renamed."""
    if not run.summary.get("gradient_signal"):
        return []
    plt = pyplot()
    before = set(plt.get_fignums())
    with tempfile.TemporaryDirectory(dir=plots, prefix=".tmp-") as tmp:
        try:
            made = plot_all(Path(tmp), run.summary)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as err:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
            raise ReportError(f"{run.folder}: summary.json cannot be plotted ({err!r})") from None
        out = []
        for path in made:
            dest = plots / f"{prefix}-{path.name}"
            os.replace(path, dest)
            out.append((dest, path.stem.replace("_", " ")))
    return out


# --------------------------------------------------------------------------- documents


class Strong(str):
    """A table cell to set in bold."""


def _verdict_table(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "claim", "problem", "expected", "measured", "class", "verdict", "control"]
    several = len({r.label for r in runs}) > 1
    table = []
    for run in runs:
        for row in verdict_rows([run.summary]):
            verdict = row["verdict"] + (" (partial)" if row["partial"] else "")
            if not row["as_expected"]:
                verdict = Strong(f"{verdict} (expected {row['expect']})")
            where = f"{run.name} ({run.label})" if several else run.name
            table.append([where, f"{row['id']}: {row['statement']}", row["problem"],
                          row["expected"], row["measured"], row["class"], verdict,
                          row["control"]])  # fmt: skip
    return header, table


def _environment(run: Run) -> str:
    env = run.summary.get("environment") or {}
    torch, cpus, threads, dtype, time = (env.get(k, "?") for k in (
        "torch_version", "cpu_count", "threads", "dtype", "timestamp"))  # fmt: skip
    return (f"{run.label}: torch {torch}, {cpus} CPUs, {threads} threads, {dtype}, "
            f"{time} ({run.folder})")  # fmt: skip


def _document(groups: list[tuple[str, list[Run], list, list[str]]], command: str | None) -> list:
    """The report as blocks (kind, body), for _markdown and _html alike."""
    runs = [r for _, group, _, _ in groups for r in group]
    doc: list[tuple[str, Any]] = [("h1", "trainbench report")]
    doc.append(("p", "Runs: " + ", ".join(f"{r.name} ({r.label}, {r.folder})" for r in runs)))
    doc += [("h2", "Verdicts"), ("table", _verdict_table(runs))]
    if any(not row["as_expected"] for r in runs for row in verdict_rows([r.summary])):
        doc.append(("p", "Rows in bold did not get the verdict their claim expects."))
    for name, group, plots, notes in groups:
        doc.append(("h2", name))
        partial = [r.label for r in group if r.summary.get("complete") is False]
        if partial:
            doc.append(("p", f"Partial run (interrupted): {', '.join(partial)}."))
        doc += [("img", (f"plots/{path.name}", f"{name}: {what}")) for path, what in plots]
        several = len(group) > 1
        notes = [f"{r.label}: {n}" if several else str(n)
                 for r in group for n in r.summary.get("notes") or []] + notes  # fmt: skip
        doc += [("h3", "Notes"), ("ul", notes)] if notes else []
        doc += [("h3", "Environment"), ("ul", [_environment(r) for r in group])]
        commands = [command] if command else [reproduce_command(r.summary) for r in group]
        doc += [("h3", "Reproduce"), *(("code", c) for c in dict.fromkeys(commands))]
    return doc


def _md_cell(cell: str) -> str:
    text = str(cell).replace("|", "\\|").replace("\n", " ")
    return f"**{text}**" if isinstance(cell, Strong) else text


def _markdown(doc: list) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(map(_md_cell, r)) + " |" for r in lines)

    render = {
        "h1": "# {}".format, "h2": "## {}".format, "h3": "### {}".format, "p": str,
        "ul": lambda b: "\n".join(f"* {i}" for i in b), "img": lambda b: f"![{b[1]}]({b[0]})",
        "code": "```bash\n{}\n```".format, "table": lambda b: table(*b),
    }  # fmt: skip
    return "\n\n".join(render[kind](body) for kind, body in doc) + "\n"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}strong{color:#b00020}img{max-width:100%;display:block;margin:1em 0}"
    "pre{background:#f6f8fa;padding:.8em;overflow-x:auto}"
)


def _html(doc: list, out: Path) -> str:
    """The blocks as one self-contained page: every image inlined as a data URI."""
    esc = html.escape

    def cell(c: str, tag: str = "td") -> str:
        text = f"<strong>{esc(c)}</strong>" if isinstance(c, Strong) else esc(str(c))
        return f"<{tag}>{text}</{tag}>"

    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = ["".join(cell(h, "th") for h in header)] + ["".join(map(cell, r)) for r in rows]
        return "<table>" + "".join(f"<tr>{line}</tr>" for line in lines) + "</table>"

    def img(body: tuple[str, str]) -> str:
        path = out / body[0]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:{FORMATS[path.suffix[1:]]};base64,{data}" alt="{esc(body[1])}">'

    render = {
        "h1": lambda b: f"<h1>{esc(b)}</h1>", "h2": lambda b: f"<h2>{esc(b)}</h2>",
        "h3": lambda b: f"<h3>{esc(b)}</h3>", "p": lambda b: f"<p>{esc(b)}</p>",
        "ul": lambda b: "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b) + "</ul>",
        "img": img, "code": lambda b: f"<pre><code>{esc(b)}</code></pre>",
        "table": lambda b: table(*b),
    }  # fmt: skip
    body = "\n".join(render[kind](b) for kind, b in doc)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>trainbench report</title><style>{CSS}</style></head><body>\n{body}\n"
            "</body></html>\n")  # fmt: skip


def _groups(runs: Sequence[Run]) -> list[tuple[str, list[Run]]]:
    """Runs of the same name and experiment, to overlay; named by the run (or run-experiment
    where two experiments share a name)."""
    by_key: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_key.setdefault((run.name, run.experiment), []).append(run)
    names = [name for name, _ in by_key]
    return [(name if names.count(name) == 1 else f"{name}-{exp}", group)
            for (name, exp), group in by_key.items()]  # fmt: skip


Rendered = tuple[list[tuple[Path, str]], list[str]]  # a group's plots (path, caption), notes


def _render(group: Sequence[Run], name: str, plots: Path, fmt: str) -> Rendered:
    if group[0].is_sweep:
        return sweep_plots(group, name, plots, fmt)
    made: list[tuple[Path, str]] = []
    for i, run in enumerate(group):
        made += _trainability_plots(run, name if i == 0 else f"{name}-{i + 1}", plots)
    return made, []


def render_run(folder: Path, out: Path, fmt: str = "png") -> Rendered:
    """The plots of one run (named by its folder) in OUT/plots, as :func:`write_report`
    draws them for a report on several runs of different names (``verify``'s): drawn
    where the run was measured, while other runs are still measuring."""
    run = _load_run(Path(folder), Path(folder))
    plots = Path(out) / "plots"
    try:
        plots.mkdir(parents=True, exist_ok=True)
        return _render([run], run.name, plots, fmt)
    except OSError as err:
        raise ReportError(f"{out}: cannot write the plots ({err.strerror or err})") from None


# The files a report folder's last report wrote (relative paths), written last: the next
# report replaces those and removes the ones it no longer draws, and nothing else.
MANIFEST = ".trainbench-report.json"
PAGES = ("report.md", "report.html")
# How a page written before the manifest existed begins (it is ours, too).
_PAGE_MARKS = {
    "report.md": "# trainbench report",
    "report.html": "<title>trainbench report</title>",
}


def _manifest(out: Path) -> set[str] | None:
    """The files the last report in ``out`` wrote; None where no manifest is readable."""
    try:
        files = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else None


def check_report_folder(out: Path, force: bool = False) -> None:
    """ReportError where ``out`` holds a report.md or report.html that no trainbench report
    wrote (unless ``force``): a report never overwrites a page it does not own."""
    if force:
        return
    owned = _manifest(Path(out))
    for name in PAGES:
        page = Path(out) / name
        if not page.is_file() or (owned is not None and name in owned):
            continue
        try:
            with page.open(encoding="utf-8", errors="replace") as f:
                head = f.read(2000)
        except OSError:
            head = ""
        if _PAGE_MARKS[name] not in head:
            raise ReportError(f"{page}: not written by trainbench report; choose another "
                              "--out, or pass --force to overwrite it")  # fmt: skip


def write_report(
    runs: Sequence[Run],
    out: Path,
    fmt: str = "png",
    command: str | None = None,
    rendered: Mapping[str, Rendered] | None = None,
    force: bool = False,
) -> list[Path]:
    """Write OUT/plots/*, OUT/report.md and OUT/report.html; return the paths written.
    ``rendered``: groups whose plots :func:`render_run` drew already, by name. Only the
    files of the folder's last report are replaced or removed (its manifest); a page
    another program wrote is kept, ReportError, unless ``force``."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown image format {fmt!r}: use {' or '.join(FORMATS)}")
    if not runs:
        raise ReportError(f"{out}: no runs to report on")
    out, groups, written = Path(out), [], []
    check_report_folder(out, force)
    earlier = _manifest(out) or set()
    plots = out / "plots"
    try:
        plots.mkdir(parents=True, exist_ok=True)
        for name, group in _groups(runs):
            ready = (rendered or {}).get(name)
            if ready is not None and len(group) == 1 and all(p.is_file() for p, _ in ready[0]):
                made, notes = ready
            else:
                made, notes = _render(group, name, plots, fmt)
            groups.append((name, group, made, notes))
            written += [path for path, _ in made]
        doc = _document(groups, command)
        atomic_write_text(out / "report.md", _markdown(doc))
        atomic_write_text(out / "report.html", _html(doc, out))
        mine = sorted({p.relative_to(out).as_posix() for p in written} | set(PAGES))
        for stale in sorted(earlier - set(mine)):
            path = out / stale
            if stale.startswith("plots/") and "/" not in stale[len("plots/"):]:
                path.unlink(missing_ok=True)
        atomic_write_text(out / MANIFEST, json.dumps({"files": mine}, indent=1) + "\n")
    except OSError as err:
        raise ReportError(f"{out}: cannot write the report ({err.strerror or err})") from None
    return [*written, out / "report.md", out / "report.html"]
