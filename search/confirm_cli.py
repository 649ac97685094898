"""``search confirm``: re-run a trial's walk-forward windows in Lumibot and compare with the fast engine.

The work is in :mod:`search.confirm` (imported inside the command: it pulls in the engines).
"""

from __future__ import annotations

import sys

import click

from search.cli_support import (
    EXIT_NEGATIVE,
    data_option,
    options_as,
    setup_errors,
    storage_option,
    study_option,
    trial_option,
)

__all__ = ["confirm"]


@click.command("confirm")
@study_option()
@trial_option("confirm")
@storage_option()
@data_option()
def confirm(study_name: str, trial_number: int, storage: str | None, data_root: str | None) -> None:
    """Re-run a trial's walk-forward windows in Lumibot and record whether it trades like the fast engine.

    Exit status: 0 confirmed, 1 not confirmed (a window differs; the differences are printed and stored),
    2 a usage or setup error (no such study or trial, no data store).
    """
    from search.confirm import confirm_trial
    from search.study_access import StudySetupError, TrialRef

    with setup_errors(StudySetupError, NotImplementedError):
        result = confirm_trial(options_as(TrialRef), echo=click.echo)
    for w in result.windows:
        if not w.report.ok:
            click.echo(f"\nfold {w.fold} {w.window} {w.start}..{w.end}:\n{w.report.summary(5)}")
    click.echo(
        f"\ntrial {result.trial}: {'CONFIRMED' if result.passed else 'NOT confirmed'}: {result.summary}"
    )
    click.echo(f"details: {result.path}")
    if not result.passed:
        sys.exit(EXIT_NEGATIVE)
