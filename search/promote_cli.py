"""``search promote``, ``search deployments``, ``search stop``, ``search approve``: from gated, confirmed
candidates to paper trading, and the controls around it.

The work is in :mod:`search.promote` (candidates, expected ranges, risk limits, the schedule) and
:mod:`brokers` (deployments, paper traders); these commands parse options and print.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from search.cli_support import EXIT_NEGATIVE, EXIT_SETUP, int_option, options_as, setup_errors, storage_option
from search.paths import STUDIES_ROOT_ENV

if TYPE_CHECKING:
    from brokers.deployments import DeploymentStore

__all__ = ["approve", "deployments", "promote", "stop"]

_STORAGE_HELP = (
    "Optuna storage of the study: a database URL or journal:PATH "
    f"(default: sqlite at <studies root>/farm.db; studies root = ${STUDIES_ROOT_ENV} or ./studies)."
)
_DB_HELP = "Deployments database (SQLAlchemy URL; default $FARM_DEPLOYMENTS_DB or sqlite at <studies root>/deployments.db)."


def _store(db: str | None, studies_root: Path) -> DeploymentStore:
    from brokers.deployments import DeploymentStore, default_db_url

    return DeploymentStore(db or default_db_url(studies_root))


def _studies_root(value: Path | None) -> Path:
    from search.paths import studies_root

    return value if value is not None else studies_root()


_common_db = click.option("--db", default=None, help=_DB_HELP)
_common_root = click.option(
    "--studies-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Runtime folder (default ${STUDIES_ROOT_ENV} or ./studies); deployments go to <root>/deployments/<id>/.",
)
_common_env = click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A .env file with the broker credentials (default ./.env if present; the environment wins).",
)


@click.command("promote")
@click.option(
    "--study",
    "study_name",
    required=True,
    help="Study whose gated, confirmed and reproduced trials to deploy.",
)
@click.option(
    "--top", type=click.IntRange(min=1), default=1, show_default=True, help="Deploy at most K candidates."
)
@click.option("--dry-run", is_flag=True, help="Print what would be deployed; record and start nothing.")
@click.option(
    "--broker",
    type=click.Choice(["tradier", "tradelocker"]),
    default=None,
    help="Default by instrument type: tradelocker (demo for paper) for forex, tradier (sandbox for paper) for "
    "stocks and options, and for futures with FARM_ENABLE_FUTURES=1.",
)
@click.option(
    "--schedule",
    "cron",
    default=None,
    help="Run promotion on this crontab schedule (UTC, e.g. '0 14 * * mon-fri'); each run also retires "
    "deployments whose paper results left the backtest's range. Runs until Ctrl-C.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Trade real money: needs a recorded approval (search approve); never scheduled.",
)
@click.option(
    "--market",
    default=None,
    help="Lumibot market calendar override (default NYSE / us_futures / 24/5 by instrument).",
)
@click.option(
    "--max-position", type=float, default=None, help="Risk limit: max |position| per symbol, in units."
)
@click.option(
    "--daily-loss",
    default="2%",
    show_default=True,
    help="Risk limit: max loss per day, an amount or a percentage of the account equity; 'none' disables.",
)
@int_option(
    "--max-orders",
    default=50,
    help="Risk limit: orders per day.",
)
@storage_option(_STORAGE_HELP)
@_common_db
@_common_root
@_common_env
def promote(
    study_name: str,
    top: int,
    dry_run: bool,
    broker: str | None,
    cron: str | None,
    live: bool,
    market: str | None,
    max_position: float | None,
    daily_loss: str,
    max_orders: int,
    storage: str | None,
    db: str | None,
    studies_root: Path | None,
    env_file: Path | None,
) -> None:
    """Deploy the study's best gated, confirmed and reproduced candidates to paper trading (or, approved,
    live).

    Exit status: 0 deployed, planned (--dry-run) or already running; 1 no trial passed the gates, the
    confirmation and the reproduction; 2 a usage or setup error (no such study, credentials, approval).
    """
    from search.promote import PromoteError, PromoteOptions, make_scheduler, promote_candidates
    from search.study_access import StudySetupError

    root = _studies_root(studies_root)
    options = options_as(PromoteOptions, own={"cron"}, studies_root=root)
    store = _store(db, root)
    with setup_errors(StudySetupError, ValueError):
        if cron:
            if dry_run:
                raise PromoteError("--dry-run and --schedule together would do nothing; drop one")
            scheduler = make_scheduler(options, store, cron, echo=click.echo)
        else:
            result = promote_candidates(options, store, echo=click.echo)
    if cron:
        click.echo(
            f"promoting {study_name} on schedule '{cron}' (UTC); Ctrl-C stops the schedule (not the deployments)"
        )
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            click.echo("schedule stopped; running deployments keep running (`search stop --all` stops them)")
        return
    for line in result.planned:
        click.echo(line)
    for line in result.skipped:
        click.echo(f"skipped: {line}")
    for line in result.errors:
        click.echo(f"error: {line}", err=True)
    if dry_run and not result.planned:
        click.echo("nothing to deploy")
    if result.nothing_passed:
        sys.exit(EXIT_NEGATIVE)
    if result.errors and not result.started and not result.planned:
        sys.exit(EXIT_SETUP)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


@click.command("deployments")
@click.option("--study", "study_name", default=None, help="Only this study's deployments.")
@click.option("--active", is_flag=True, help="Only pending and running deployments.")
@click.option(
    "--no-broker",
    is_flag=True,
    help="Do not ask the brokers for positions and working orders (the store's records only).",
)
@_common_db
@_common_root
@_common_env
def deployments(
    study_name: str | None,
    active: bool,
    no_broker: bool,
    db: str | None,
    studies_root: Path | None,
    env_file: Path | None,
) -> None:
    """List deployments: broker and masked account, the position and working orders at the broker (active
    deployments, when it can be reached), paper PnL against the backtest's expectation, the last error."""
    from rich.console import Console
    from rich.table import Table

    from brokers.deployments import Status
    from brokers.status import default_adapters, deployment_statuses

    store = _store(db, _studies_root(studies_root))
    statuses = (Status.PENDING, Status.RUNNING) if active else None
    rows = store.list_deployments(statuses=statuses, study=study_name)
    if not rows:
        click.echo(f"no deployments in {store.masked_url}")
        return
    adapters = None if no_broker else default_adapters(env_file)
    table = Table(title=f"deployments ({store.masked_url})")
    table.add_column("id", no_wrap=True)
    for name in (
        "trial",
        "broker",
        "mode",
        "status",
        "started (UTC)",
        "position",
        "open orders",
        "paper PnL",
        "days",
        "mean/day paper | backtest",
        "max DD paper | p95",
        "vs backtest",
        "reason",
        "last error",
    ):
        table.add_column(name)
    for row in deployment_statuses(store, rows, adapters=adapters):
        dep, stats, check, exp = row.deployment, row.stats, row.check, row.deployment.expected
        table.add_row(
            dep.id,
            str(dep.trial_number),
            f"{dep.broker} {dep.account_masked}",
            dep.mode.value,
            dep.status.value,
            dep.started_at.strftime("%Y-%m-%d %H:%M") if dep.started_at else "-",
            row.position_text,
            row.orders_text,
            "-" if stats.pnl is None else f"{stats.pnl:+,.2f}",
            str(stats.days),
            f"{_pct(stats.daily_mean)} | {_pct(exp.daily_mean)}±{_pct(exp.daily_std)}",
            f"{_pct(stats.max_drawdown)} | {_pct(exp.drawdown_p95)}",
            "[red]outside[/red]" if check.outside else "within" if stats.days else "-",
            dep.stop_reason or check.reason,
            row.last_error_text,
        )
    Console(width=max(240, Console().width)).print(table)


@click.command("stop")
@click.argument("deployment_id", required=False)
@click.option(
    "--all", "stop_all", is_flag=True, help="Kill switch: stop and flatten every active deployment."
)
@click.option(
    "--reason", default=None, help="Recorded as the stop reason (default: 'stopped by hand' / 'kill switch')."
)
@_common_db
@_common_root
@_common_env
def stop(
    deployment_id: str | None,
    stop_all: bool,
    reason: str | None,
    db: str | None,
    studies_root: Path | None,
    env_file: Path | None,
) -> None:
    """Stop a deployment (or --all): end its process, flatten its positions through the broker adapter."""
    from brokers.deployments import DeploymentNotFound
    from brokers.paper import kill_switch, stop_deployment

    if bool(deployment_id) == stop_all:
        raise click.UsageError("give a deployment ID or --all (the kill switch), not both and not neither")
    store = _store(db, _studies_root(studies_root))
    if stop_all:
        reports = kill_switch(store, reason=reason or "kill switch", env_file=env_file)
        if not reports:
            click.echo("no active deployments")
    else:
        assert deployment_id is not None
        with setup_errors(DeploymentNotFound):
            reports = [
                stop_deployment(store, deployment_id, reason=reason or "stopped by hand", env_file=env_file)
            ]
    failed = False
    for report in reports:
        if report.already_final:
            click.echo(f"{report.deployment_id}: already {report.status.value} ({report.reason})")
            continue
        click.echo(f"{report.deployment_id}: {report.status.value}: {report.reason}")
        failed = failed or bool(report.errors)
    if failed:
        sys.exit(1)


@click.command("approve")
@click.argument("deployment_id")
@click.option("--by", "approved_by", required=True, help="Who approves live trading of this candidate.")
@click.option("--reason", required=True, help="Why (recorded with the approval).")
@_common_db
@_common_root
def approve(
    deployment_id: str, approved_by: str, reason: str, db: str | None, studies_root: Path | None
) -> None:
    """Record a human approval for live trading of the candidate a deployment runs."""
    from brokers.deployments import DeploymentNotFound

    store = _store(db, _studies_root(studies_root))
    with setup_errors(DeploymentNotFound, ValueError):
        approval = store.record_approval(deployment_id, approved_by=approved_by, reason=reason)
    click.echo(
        f"approved {approval.study} trial {approval.trial_number} for live trading by {approval.approved_by} "
        f"at {approval.approved_at:%Y-%m-%d %H:%M} UTC; start it with `search promote --study {approval.study} --live`"
    )
