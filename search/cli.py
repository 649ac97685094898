"""The ``search`` command line: one entry point for data, specs, backtests, studies, gates, reports and brokers.

Sub-commands are thin: they parse options, call the package that owns the work and print results.
Their modules are imported only when the command runs (scipy, lumibot and ray are slow to import), so
``search run`` does not pay for ``search confirm``'s imports.
"""

from __future__ import annotations

import importlib

import click

from search.cli_support import DEBUG_KEY

#: command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "data": "search.data_cli:data",
    "spec": "search.spec_cli:spec",
    "backtest": "search.backtest_cli:backtest",
    "seed": "search.seed_cli:seed",
    "run": "search.run_cli:run",
    "studies": "search.run_cli:studies",
    "best": "search.run_cli:best",
    "dashboard": "search.run_cli:dashboard",
    "gate": "search.gate_cli:gate",
    "report": "search.report_cli:report",
    "confirm": "search.confirm_cli:confirm",
    "reproduce": "search.reproduce_cli:reproduce",
    "promote": "search.promote_cli:promote",
    "deployments": "search.promote_cli:deployments",
    "stop": "search.promote_cli:stop",
    "approve": "search.promote_cli:approve",
    "warmup": "search.warmup:warmup_command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="strategy-search-farm")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the traceback of setup errors too (they are otherwise one line, exit status 2).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Strategy search farm: search spec spaces of trading strategies with walk-forward backtests.

    Exit status of gate, confirm, reproduce and promote: 0 success, 1 a negative verdict (not confirmed,
    not reproduced, nothing passed), 2 a usage or setup error. Unexpected errors show their traceback.
    """
    ctx.meta[DEBUG_KEY] = debug


if __name__ == "__main__":  # pragma: no cover
    main()
