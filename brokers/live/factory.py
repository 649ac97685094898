"""What the live strategy trades and on which broker (:func:`live_problem`), and the factory that builds it
for a deployment (:func:`live_strategy`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from brokers.live import bars as live_data
from brokers.live.strategy import LiveSettings, LiveSpecStrategy
from brokers.markets import MARKETS, UnsupportedMarket, broker_for, instrument_types
from evaluator.market import BAR_MINUTES
from spec_space.models import StrategySpec


class UnsupportedLive(ValueError):
    """SpecStrategy cannot trade this spec live (or not on this broker); the message says why."""


def _broker_kind(broker: Any) -> str:
    """``tradier``, ``tradelocker`` or the lower-cased name of another Lumibot broker."""
    name = str(getattr(broker, "name", "") or getattr(broker, "NAME", "") or type(broker).__name__).lower()
    for kind in {route.broker for route in MARKETS.values()}:
        if kind in name:
            return kind
    return name


def live_problem(spec: StrategySpec, broker: Any = None) -> str | None:
    """Why SpecStrategy cannot trade ``spec`` live (on ``broker``: a Lumibot broker or its name), or None."""
    inst = spec.instrument
    problems = []
    try:
        broker_for(inst.type)  # futures: refused unless FARM_ENABLE_FUTURES=1 (brokers.markets)
    except UnsupportedMarket as exc:
        problems.append(str(exc))
    pcts = [p.pct for p in spec.exits.partial_take_profits]
    if pcts != sorted(pcts) and (inst.type != "option" or len(inst.legs) == 1):
        problems.append(
            f"exits.partial_take_profits must have ascending pct (they rest together), got {pcts}"
        )
    if broker is not None:
        kind = (broker if isinstance(broker, str) else _broker_kind(broker)).lower()
        allowed = instrument_types(kind)
        if allowed and inst.type not in allowed:
            problems.append(f"{inst.type} instruments on {kind} ({kind} trades {' and '.join(allowed)} here)")
    if not problems:
        return None
    return f"spec {spec.name!r} cannot trade live: " + "; ".join(problems)


def live_strategy(
    broker: Any,
    spec: StrategySpec,
    *,
    name: str,
    sleeptime: str | None = None,
    lookback: int | None = None,
    fill_wait: float = 10.0,
    clock: Callable[[], int] = time.time_ns,
) -> LiveSpecStrategy:
    """A :class:`LiveSpecStrategy` trading ``spec`` live (paper or real money: the broker decides) on a Lumibot
    ``broker``, ready for ``Trader.add_strategy``.

    ``sleeptime``: Lumibot's iteration interval (default by timeframe: one minute for intraday bars);
    ``lookback``: signal bars fetched per decision (default :func:`evaluator.live_data.default_lookback`);
    ``fill_wait``: seconds an entry waits in its iteration for the broker's fills before its resting exits
    go out (they follow at a later iteration otherwise); ``clock``: now in ns since the epoch (the wall
    clock; a test drives decisions bar by bar with its own). Raises :class:`UnsupportedLive` (a ValueError) for
    what the live mode does not trade (:func:`live_problem`).
    """
    problem = live_problem(spec, broker)
    if problem is not None:
        raise UnsupportedLive(problem)
    kind = _broker_kind(broker)
    fetch, factor = live_data.FETCH[spec.timeframe]
    settings = LiveSettings(
        broker=kind,
        # a TradeLocker account hedges: a resting opposite order opens a second position, so its stop and
        # target are the position's own (the bracket) and partial targets are watched (brokers.live notes)
        exits="bracket" if kind == "tradelocker" else "resting",
        bar_minutes=BAR_MINUTES[spec.timeframe],
        timestep=fetch,
        factor=factor,
        lookback=lookback or live_data.default_lookback(spec),
        sleeptime=sleeptime or live_data.DEFAULT_SLEEPTIME[spec.timeframe],
        include_after_hours=spec.session == "extended" or spec.instrument.type == "forex",
        fill_wait=fill_wait,
        clock=clock,
    )
    strategy = LiveSpecStrategy(
        broker=broker,
        name=name,
        sleeptime=settings.sleeptime,
        minutes_before_closing=0,
        risk_free_rate=0.0,  # else Lumibot fetches ^IRX from Yahoo
        benchmark_asset=None,
        should_backup_variables_to_database=False,
        should_send_summary_to_discord=False,
    )
    strategy.configure_live(spec, settings)
    return strategy
