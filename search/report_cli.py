"""``search report``: a study's results as one self-contained HTML page (see :mod:`search.report`)."""

from __future__ import annotations

from pathlib import Path

import click

from search.cli_support import int_option, setup_errors, storage_option, study_option

__all__ = ["report"]


@click.command("report")
@study_option()
@storage_option()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for index.html (default: reports/<study>).",
)
@int_option(
    "--top",
    default=3,
    help="Candidates drawn before `search gate` has run (afterwards: the gated ones).",
)
@click.option(
    "--attach/--no-attach",
    default=True,
    show_default=True,
    help="Attach the page to the study as an Optuna artifact (optuna-dashboard lists it).",
)
def report(study_name: str, storage: str | None, out: Path | None, top: int, attach: bool) -> None:
    """Write the study report: summary and provenance, optimisation history, Pareto front, importances,
    parallel coordinates, walk-forward equity, monthly returns, trades, PBO / DSR and the gate table.

    It opens offline (plotly.js is inside the file) and computes nothing new.
    """
    from search.report import ReportConfig, make_report
    from search.study_access import StudySetupError

    with setup_errors(StudySetupError, FileNotFoundError, ValueError):
        summary = make_report(
            ReportConfig(study=study_name, storage=storage, out=out, top=top, attach=attach)
        )
    size = summary.path.stat().st_size / 1e6
    click.echo(f"report: {summary.path} ({size:.1f} MB)")
    if not summary.gated:
        click.echo(f"note: no gate results yet; run `search gate --study {study_name}` and report again")
    if summary.artifact_id:
        click.echo(f"attached to study {study_name!r} as artifact {summary.artifact_id}")
