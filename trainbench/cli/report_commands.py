"""``trainbench report`` (the pages of result folders) and ``trainbench compare`` (two
runs of one sweep)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from trainbench.cli.errors import fail
from trainbench.cli.output import check_writable
from trainbench.cli.params import SHARED_DEFAULT, Json
from trainbench.core.settings import first_line


class Format(str, enum.Enum):
    png = "png"
    svg = "svg"


def write_report_pages(
    run_dirs: list[Path], out: Path, fmt: str, command: str | None, rendered: Any = None,
    force: bool = False,
) -> Path:  # fmt: skip
    """Read the result folders and write the report; one line and exit 2 for a bad folder.
    ``rendered``: the runs whose plots were drawn already (see report.write_report)."""
    from trainbench.report.pages import ReportError, load_runs, write_report

    try:
        runs = load_runs(run_dirs)
    except ReportError as err:
        raise fail(str(err)) from None
    check_writable(out, ("report.md", "report.html"))
    try:
        write_report(runs, out, fmt=fmt, command=command, rendered=rendered, force=force)
    except ReportError as err:
        raise fail(str(err)) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        # a value the checks of summary.json let through that the report cannot use
        where = ", ".join(str(r.folder) for r in runs)
        raise fail(
            f"cannot report on {where}: a value in its files is not what a trainbench "
            f"run writes ({type(err).__name__}: {first_line(err)})"
        ) from None
    except OSError as err:
        raise fail(f"--out: cannot write the report: {first_line(err)}", 1) from None
    return out / "report.md"


def compare_runs(
    old: Annotated[Path, typer.Argument(help="The earlier run's folder (OUT/<name>/).",
                                        show_default=False)],
    new: Annotated[Path, typer.Argument(help="The later run's folder, of the same sweep.",
                                        show_default=False)],
    json_out: Json = SHARED_DEFAULT["json"],
) -> None:
    """Which metrics moved between two saved runs of one sweep, beyond what was measured.

    A regression: an exponent whose 95% interval now lies wholly above the old one (an
    exact count: its degree or exponent rose), or a count that rose. Times' values are
    said (slower, faster) but are not regressions by themselves. Exit 1 on a regression."""
    from trainbench.results.compare import as_records, compare, regressions
    from trainbench.results.reading import read_summary
    from trainbench.results.schema import ResultsError

    try:
        summaries = [read_summary(Path(folder)) for folder in (old, new)]
    except ResultsError as err:
        raise fail(str(err)) from None
    if summaries[0]["experiment"] != summaries[1]["experiment"]:
        raise fail(f"{old} is a run of {summaries[0]['experiment']}, {new} of "
                   f"{summaries[1]['experiment']}: compare two runs of one sweep")  # fmt: skip
    from trainbench.experiments.builtin import EXPERIMENTS

    exp = EXPERIMENTS.get(summaries[0]["experiment"])
    changes = compare(*summaries, size_name=exp.size_name if exp else "n")
    if not changes:
        raise fail(f"{old} and {new} have no metric in common to compare")
    bad = regressions(changes)
    if json_out:
        import json

        sys.stdout.write(json.dumps({"changes": as_records(changes),
                                     "regressions": len(bad)}, indent=1) + "\n")  # fmt: skip
    else:
        from trainbench.cli.render import compare_table

        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(compare_table(changes, f"{old} → {new}"))
        console.print(f"{len(bad)} regression{'s' * (len(bad) != 1)}" + (
            ": " + ", ".join(f"{c.variant} {c.metric} ({c.what})" for c in bad) if bad else ""))
    if bad:
        raise typer.Exit(1)


def report(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Result folders: a run (OUT/mlp-heads/) or a folder of runs (verify's OUT). "
            "Folders from several machines are overlaid, labelled by device.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where report.md, report.html and plots/ go (default: RUN_DIR/report "
            "for one folder, ./report for several)."
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Image format of the plots.")] = (
        Format.png
    ),
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite a report.md or report.html in OUT that trainbench did not write.",
        ),
    ] = False,
) -> None:
    """Plots, report.md and a self-contained report.html from result folders.

    Only the files of OUT's last report are replaced or removed; a run still being
    written is reported as it stands, with a line saying so."""
    from trainbench.core.lock import busy, describe
    from trainbench.report.pages import default_out

    for folder, owner in busy(run_dirs):
        typer.echo(f"trainbench: {folder} is still being written ({describe(owner)}); the "
                   "report shows it as it stands", err=True)  # fmt: skip
    target = out if out is not None else default_out(run_dirs)
    path = write_report_pages(run_dirs, target, fmt.value, None, force=force)
    typer.echo(f"report: {path}  (and {path.with_suffix('.html').name}, plots/)")
