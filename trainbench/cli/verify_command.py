"""``trainbench verify``: run what the claims need, judge every claim, write the report."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trainbench.cli.errors import exits, fail
from trainbench.cli.output import check_writable, progress_bar
from trainbench.cli.params import SHARED_DEFAULT, DeviceOpt, Json, Quiet
from trainbench.cli.report_commands import write_report_pages
from trainbench.core.settings import first_line


def _ids(values: list[str] | None) -> list[str]:
    return [i.strip() for v in values or [] for i in v.split(",") if i.strip()]


def verify(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller sizes, the same bands (minutes).")
    ] = False,
    claims: Annotated[
        Path | None,
        typer.Option(help="Claims file (TOML; default: the one shipped, seeds/claims.toml)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these claim ids (repeat or comma-separate); their controls come along."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Results folder (default: results/, or results/quick/ with --quick)."),
    ] = None,
    device: DeviceOpt = SHARED_DEFAULT["device"],
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the runs in OUT (same configuration): what "
            "finished is not measured again.",
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            max=64,
            show_default=False,
            help="Runs at once, each in its own process on one thread (default: 2 "
            "for --quick where there are two cores, else 1: the thorough run times "
            "each sweep with the machine to itself).",
        ),
    ] = None,
    json_out: Json = SHARED_DEFAULT["json"],
    quiet: Quiet = SHARED_DEFAULT["quiet"],
) -> None:
    """Run the experiments the claims need, judge every claim, write results and a report.

    Exit 0 when every claim's verdict is the one the claims file expects, 1 otherwise."""
    from trainbench.claims.claim import ClaimsError
    from trainbench.claims.parse import default_claims, load_claims
    from trainbench.results.schema import ResultsError
    from trainbench.verify.run import (
        PlanError,
        check_plans,
        check_run_tables,
        default_jobs,
        plan_runs,
        run_verify,
    )

    try:
        claim_set = load_claims(claims) if claims is not None else default_claims()
        check_run_tables(claim_set)
        ids = _ids(only)
        if only is not None and not ids:
            raise ClaimsError("--only: name at least one claim id")
        if ids:
            claim_set = claim_set.select(ids)
    except ClaimsError as err:
        raise fail(str(err)) from None
    except PlanError as err:
        raise fail(f"{claims if claims is not None else 'seeds/claims.toml'}: {err}") from None
    plans = plan_runs(claim_set, quick)
    if device != "auto":
        plans = [replace(p, settings=dict(p.settings) | {"device": device.value})
                 if p.experiment != "trainability" else p for p in plans]  # fmt: skip
    try:
        check_plans(plans)
    except PlanError as err:
        raise fail(f"{claims if claims is not None else 'seeds/claims.toml'}: {err}") from None
    target = out if out is not None else Path("results/quick" if quick else "results")
    for plan in plans:
        check_writable(target / plan.folder)
    from trainbench.report.pages import ReportError, check_report_folder

    try:  # (before measuring: the report is written after the runs)
        check_report_folder(target / "report")
    except ReportError as err:
        raise fail(str(err)) from None
    command = " ".join(
        ["trainbench verify", *(["--quick"] if quick else []),
         *([f"--claims {claims}"] if claims is not None else []),
         *([f"--only {','.join(ids)}"] if ids else []),
         *([f"--device {device.value}"] if device != "auto" else []),
         *(["--resume"] if resume else []),
         *([f"--jobs {jobs}"] if jobs is not None else []),
         *([f"--out {out}"] if out is not None else [])]
    )  # fmt: skip
    progress = progress_bar(hidden=quiet or json_out)
    task = progress.add_task("verify", total=None)

    def on_progress(what: str, done: int, total: int) -> None:
        progress.update(task, total=total, completed=done, description=f"verify  {what}")

    source = str(claims) if claims is not None else "seeds/claims.toml"
    with exits(f"what was measured so far is in {target}",
               lambda err: f"measurement failed: {first_line(err)}; results so far in {target}",
               prefix={ResultsError: "--resume: "}):  # (of a missing or corrupt run)
        with progress:
            result = run_verify(
                plans, target, command=command, quick=quick, claims_file=source,
                on_progress=on_progress, resume=resume,
                jobs=jobs if jobs is not None else default_jobs(quick, plans),
                report=target / "report",
            )  # fmt: skip
    report_md = write_report_pages([target], target / "report", "png", command, result.rendered)
    summary = result.summary()
    failed = result.failed()
    if json_out:
        from trainbench.results.files import to_json

        sys.stdout.write(to_json(summary))
    else:
        from trainbench.cli.render import verdict_table

        console = Console(width=None if sys.stdout.isatty() else 200)
        console.print(verdict_table(summary["rows"], title="trainbench verify" + (
            " --quick" if quick else "")))  # fmt: skip
        if not quiet:
            console.print(f"results: {target}{os.sep}   report: {report_md}")
    for r in failed:
        typer.echo(
            f"trainbench: claim {r['id']} is {r['verdict']} (expected {r['expect']}): "
            f"{r['reason']}",
            err=True,
        )
    if failed:
        raise typer.Exit(1)
