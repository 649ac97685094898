"""The ``search`` command line: one entry point for data, specs, backtests, studies, gates, reports and brokers.

Sub-commands are thin: they parse options, call the package that owns the work and print results.
"""

from __future__ import annotations

import click

from search.data_cli import data


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="strategy-search-farm")
def main() -> None:
    """Strategy search farm: search spec spaces of trading strategies with walk-forward backtests."""


main.add_command(data)
