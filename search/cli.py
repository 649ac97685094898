"""The ``search`` command line: one entry point for data, specs, backtests, studies, gates, reports and brokers.

Sub-commands are thin: they parse options, call the package that owns the work and print results.
"""

from __future__ import annotations

import click

from search.backtest_cli import backtest
from search.confirm_cli import confirm
from search.data_cli import data
from search.gate_cli import gate
from search.promote_cli import approve, deployments, promote, stop
from search.report_cli import report
from search.run_cli import best, dashboard, run, studies
from search.seed_cli import seed
from search.spec_cli import spec


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="strategy-search-farm")
def main() -> None:
    """Strategy search farm: search spec spaces of trading strategies with walk-forward backtests."""


main.add_command(data)
main.add_command(spec)
main.add_command(backtest)
main.add_command(seed)
main.add_command(run)
main.add_command(studies)
main.add_command(best)
main.add_command(dashboard)
main.add_command(gate)
main.add_command(report)
main.add_command(confirm)
main.add_command(promote)
main.add_command(deployments)
main.add_command(stop)
main.add_command(approve)
