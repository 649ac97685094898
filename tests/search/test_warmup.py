"""`search warmup` runs every shipped space's defaults (so every kernel they use is compiled and cached)."""

from __future__ import annotations

import pytest

from search.warmup import SPACES, warmup

pytestmark = pytest.mark.slow


def test_warmup_backtests_every_shipped_space():
    lines: list[str] = []
    timings = warmup(lines.append)
    assert sorted(timings) == sorted(p.stem for p in SPACES.glob("*.yaml")), lines


def test_the_cli_registers_warmup():
    import click

    from search.cli import main

    assert main.get_command(click.Context(main), "warmup").name == "warmup"
