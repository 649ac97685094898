"""``search reproduce``: re-run a trial from its records and say whether, and why not, it reproduces.

The work is in :mod:`search.reproduce` (imported inside the command: it pulls in the engines).
"""

from __future__ import annotations

import sys

import click

from search.paths import DATA_ROOT_ENV, STUDIES_ROOT_ENV

__all__ = ["reproduce"]


@click.command("reproduce")
@click.option("--study", "study_name", required=True, help="Study name (see `search studies`).")
@click.option(
    "--trial", "trial_number", type=click.IntRange(min=0), required=True, help="Trial number to reproduce."
)
@click.option(
    "--engine",
    type=click.Choice(["fast", "lumibot"]),
    default=None,
    help="Engine of the re-run (default: the study's). Another engine than the study's is compared with "
    "the parity tolerances, the same one (fast) exactly.",
)
@click.option(
    "--storage",
    default=None,
    help="Optuna storage: a database URL (sqlite:///..., postgresql://...) or journal:PATH "
    f"(default: sqlite at <studies root>/farm.db; studies root = ${STUDIES_ROOT_ENV} or ./studies).",
)
@click.option(
    "--data",
    "data_root",
    default=None,
    help=f"Parquet store (default: the store the study recorded; ${DATA_ROOT_ENV} is not used).",
)
def reproduce(
    study_name: str, trial_number: int, engine: str | None, storage: str | None, data_root: str | None
) -> None:
    """Re-run a trial (its params, folds and data window) and compare trades and per-fold IS / OOS metrics
    with its records. First checks what changed since the study ran (data, fill model, space, spec, code,
    packages) and names it.

    Exit status: 0 reproduced, 1 not reproduced (the cause and the differences are printed and stored on
    the study as the `reproduce` attribute and in <study folder>/reproduce/trial_<N>.json), 2 nothing to
    reproduce (no such study, trial or record).
    """
    from search.gate import GateSetupError
    from search.reproduce import reproduce_trial

    try:
        result = reproduce_trial(
            study_name, trial_number, engine=engine, storage=storage, data_root=data_root, echo=click.echo
        )
    except GateSetupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    verdict = "REPRODUCED" if result.passed else "NOT reproduced"
    click.echo(f"\ntrial {result.trial} ({result.engine} engine, {result.seconds:.1f} s): {verdict}")
    click.echo(result.summary)
    click.echo(f"details: {result.path}")
    if not result.passed:
        sys.exit(1)
