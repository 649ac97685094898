"""The ``search`` command line: one entry point for data, specs, backtests, studies, gates, reports and brokers.

Sub-commands are thin: they parse options, call the package that owns the work and print results.
"""

from __future__ import annotations

import click

from search.backtest_cli import backtest
from search.data_cli import data
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
