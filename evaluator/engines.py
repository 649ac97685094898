"""Engine registry: a name to a ``run(spec, market, start, end) -> BacktestResult`` callable.

Importing it is cheap (the engines load on first use), so command lines read their ``--engine`` choices here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from evaluator.market import Market
    from evaluator.results import BacktestResult
    from spec_space.models import StrategySpec

EngineFn: TypeAlias = "Callable[[StrategySpec, Market, dt.date, dt.date], BacktestResult]"


def _fast(spec: StrategySpec, market: Market, start: dt.date, end: dt.date) -> BacktestResult:
    from evaluator.fast import run

    return run(spec, market, start, end)


def _lumibot(spec: StrategySpec, market: Market, start: dt.date, end: dt.date) -> BacktestResult:
    from evaluator.lumibot import run  # imported lazily: lumibot is heavy and only confirms finalists

    return run(spec, market, start, end)


ENGINES: dict[str, EngineFn] = {"fast": _fast, "lumibot": _lumibot}

# The instrument types an engine does not backtest, and why (it raises NotImplementedError for them). Both
# engines run every type the catalogue offers (stocks, options, futures, forex); the table stays so that an
# engine added later can declare its gaps, and tests over the registry skip them with the reason.
_NOT_RUN: dict[str, dict[str, str]] = {}


def unsupported(name: str, instrument_type: str) -> str | None:
    """Why engine ``name`` does not backtest ``instrument_type`` specs, or None when it does."""
    get_engine(name)
    return _NOT_RUN.get(name, {}).get(instrument_type)


def get_engine(name: str) -> EngineFn:
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}") from None
