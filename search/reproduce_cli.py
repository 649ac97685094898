"""``search reproduce``: re-run a trial from its records and say whether, and why not, it reproduces.

The work is in :mod:`search.reproduce` (imported inside the command: it pulls in the engines).
"""

from __future__ import annotations

import sys

import click

from search.cli_support import (
    EXIT_NEGATIVE,
    data_option,
    engine_option,
    options_as,
    setup_errors,
    storage_option,
    study_option,
    trial_option,
)

__all__ = ["reproduce"]


@click.command("reproduce")
@study_option()
@trial_option("reproduce")
@engine_option(
    "Engine of the re-run (default: the study's). Another engine than the study's is compared with "
    "the parity tolerances, the same one (fast) exactly."
)
@storage_option()
@data_option()
def reproduce(
    study_name: str, trial_number: int, engine: str | None, storage: str | None, data_root: str | None
) -> None:
    """Re-run a trial (its params, folds and data window) and compare trades and per-fold IS / OOS metrics
    with its records. First checks what changed since the study ran (data, fill model, space, spec, code,
    packages) and names it.

    Exit status: 0 reproduced, 1 not reproduced (the cause and the differences are printed and stored on
    the study as the `reproduce` attribute and in <study folder>/reproduce/trial_<N>.json), 2 nothing to
    reproduce (no such study, trial or record) or another usage error.
    """
    from search.reproduce import reproduce_trial
    from search.study_access import StudySetupError, TrialRef

    with setup_errors(StudySetupError):
        result = reproduce_trial(options_as(TrialRef, own={"engine"}), engine=engine, echo=click.echo)
    verdict = "REPRODUCED" if result.passed else "NOT reproduced"
    click.echo(f"\ntrial {result.trial} ({result.engine} engine, {result.seconds:.1f} s): {verdict}")
    click.echo(result.summary)
    click.echo(f"details: {result.path}")
    if not result.passed:
        sys.exit(EXIT_NEGATIVE)
