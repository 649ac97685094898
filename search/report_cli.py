"""``search report``: a study's results as one self-contained HTML page (see :mod:`search.report`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from search.paths import STUDIES_ROOT_ENV

__all__ = ["report"]


@click.command("report")
@click.option("--study", "study_name", required=True, help="Study name (see `search studies`).")
@click.option(
    "--storage",
    default=None,
    help="Optuna storage: a database URL (sqlite:///..., postgresql://...) or journal:PATH "
    f"(default: sqlite at <studies root>/farm.db; studies root = ${STUDIES_ROOT_ENV} or ./studies).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for index.html (default: reports/<study>).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
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
    from search.gate import GateSetupError
    from search.report import ReportConfig, make_report

    try:
        summary = make_report(
            ReportConfig(study=study_name, storage=storage, out=out, top=top, attach=attach)
        )
    except (GateSetupError, FileNotFoundError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    size = summary.path.stat().st_size / 1e6
    click.echo(f"report: {summary.path} ({size:.1f} MB)")
    if not summary.gated:
        click.echo(f"note: no gate results yet; run `search gate --study {study_name}` and report again")
    if summary.artifact_id:
        click.echo(f"attached to study {study_name!r} as artifact {summary.artifact_id}")
