"""``search gate``: overfitting checks, then KPI gates, for a study's best candidates.

The work is in :mod:`search.gate`; this module parses options and prints the verdict table.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from search.cli_support import (
    EXIT_NEGATIVE,
    data_option,
    int_option,
    options_as,
    setup_errors,
    storage_option,
    study_option,
)

if TYPE_CHECKING:
    from rich.table import Table

    from search.gate import GateSummary

__all__ = ["gate", "verdict_table"]

def _cell(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    if abs(value) >= 1000 or value.is_integer():
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def verdict_table(summary: GateSummary) -> Table:
    """Rank, trial, objective, one column per gate (value and pass/fail, '-' when not evaluated), verdict."""
    from rich.table import Table

    table = Table(
        title=f"gates of {summary.study_name}: top {len(summary.candidates)} by IS {summary.objective} "
        f"({summary.direction})",
        caption="✓ pass  ✗ fail  - not evaluated (the candidate failed an overfitting gate first)",
    )
    table.add_column("#", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(f"IS {summary.objective}", justify="right")
    for g in summary.config.gates:
        table.add_column(f"{g.name}\n{g.op} {g.threshold:g}", justify="right")
    table.add_column("verdict")
    for c in summary.candidates:
        row = [str(c.rank), str(c.number), _cell(c.objectives.get(summary.objective))]
        for r in c.verdict.results:
            if not r.evaluated:
                row.append("[dim]-[/dim]")
            elif r.passed:
                row.append(f"[green]{_cell(r.value)} ✓[/green]")
            else:
                row.append(f"[red]{_cell(r.value)} ✗[/red]")
        row.append(
            "[bold green]passed[/bold green]"
            if c.verdict.passed
            else f"[red]rejected ({c.verdict.rejected_at_stage})[/red]"
        )
        table.add_row(*row)
    return table


def _console() -> Any:
    from rich.console import Console

    return Console(width=max(120, Console().width))


@click.command("gate")
@study_option()
@int_option(
    "--top",
    default=5,
    help="Candidates: the best feasible COMPLETE trials by the study's first objective.",
)
@storage_option()
@data_option("Parquet store for the holdout and validation runs")
@click.option(
    "--gates",
    "gates_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML gate overrides applied after the space's `gates` (gate name: threshold | {fields} | null, "
    "or a full `gates:` list).",
)
@int_option(
    "--blocks",
    "n_blocks",
    default=16,
    help="CSCV blocks S for PBO (even; fewer are used when the sessions cannot fill them).",
    low=2,
)
@int_option(
    "--bootstrap",
    "bootstrap_samples",
    default=2000,
    help="Bootstrap samples of the holdout trade order for the max-drawdown percentiles.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
def gate(
    study_name: str,
    top: int,
    storage: str | None,
    data_root: str | None,
    gates_file: Path | None,
    n_blocks: int,
    bootstrap_samples: int,
    seed: int,
) -> None:
    """Overfitting checks (DSR, PBO, WFE, stability, bootstrap drawdown) first, then KPI gates on the holdout (out-of-sample) results.

    Writes <study folder>/gates/ (gates.csv, gates.json, pbo.json, candidate_<rank>/...), stores each verdict
    in the study attribute `gate` and as a note on the candidate's trial (optuna-dashboard shows it).

    Exit status: 0 at least one candidate passed, 1 none passed, 2 a usage or setup error.
    """
    from evaluator.gates import GateConfigError
    from search.gate import GateRunConfig, run_gates
    from search.study import StudyMismatch
    from search.study_access import StudySetupError

    if n_blocks % 2:
        raise click.BadParameter(
            f"must be even (CSCV splits the blocks in halves), got {n_blocks}", param_hint="--blocks"
        )
    config = options_as(GateRunConfig)
    with setup_errors(StudySetupError, GateConfigError, StudyMismatch, LookupError, ValueError):
        summary = run_gates(config, echo=click.echo)
    stats = summary.stats
    pbo = "not computed" if stats.pbo is None else f"{stats.pbo.pbo:.3f} (S = {stats.pbo_info['n_blocks']})"
    click.echo(
        f"{summary.study_name}: {stats.n_trials_raw} trials with records, effective N = "
        f"{_cell(stats.n_trials_eff)}, PBO = {pbo}; gates from {' + '.join(summary.sources)}"
    )
    _console().print(verdict_table(summary))
    for c in summary.candidates:
        if not c.verdict.passed:
            click.echo(f"  #{c.rank} trial {c.number}: {c.verdict.summary()}")
    for note in summary.notes:
        click.echo(f"note: {note}")
    passed = sum(c.verdict.passed for c in summary.candidates)
    click.echo(
        f"{passed} of {len(summary.candidates)} candidate(s) passed; artifacts in {summary.folder}; "
        f"report: search report --study {summary.study_name}"
    )
    if not passed:
        sys.exit(EXIT_NEGATIVE)
