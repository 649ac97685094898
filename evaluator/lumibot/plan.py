"""The plan of one run: a StrategySpec and its Market flattened once into the arrays the fast engine uses,
plus the maps from Lumibot's clock to Market bars (see :mod:`evaluator.lumibot`, note 1)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluator.fast import _legs, kernel_params, session_ordinals, signal_arrays, underlying_multiplier
from evaluator.lumibot._lumibot import Asset
from evaluator.market import Market, option_last_prices
from spec_space.instruments import forex_pair
from spec_space.models import StrategySpec

EPOCH = dt.date(1970, 1, 1)
NS_PER_MIN = 60_000_000_000


@dataclass
class Plan:
    """Everything a SpecStrategy needs, flattened once per run (the same arrays as the fast engine)."""

    spec: StrategySpec
    market: Market
    i0: int
    i1: int
    params: np.ndarray
    leg_kind: np.ndarray
    leg_sign: np.ndarray
    leg_right: np.ndarray
    leg_dte: np.ndarray
    leg_select: np.ndarray
    leg_value: np.ndarray
    mult: float  # value multiplier of one unit of the underlying instrument
    is_option: bool
    own_pct: bool  # commission_pct booked by the strategy (multi-leg: charged on the net value)
    sig: dict[str, np.ndarray]
    p_last: np.ndarray
    partial_pct: list[float]
    partial_frac: list[float]
    underlying: Any  # lumibot Asset of the traded (or option underlying) instrument
    lumi_units: float  # Lumibot quantity of one unit of the underlying instrument
    bar_at: dict[int, int]  # minute timestamp (ns) -> bar index
    sentinel_at: dict[int, int]  # first sentinel's timestamp (ns) -> the session's last bar
    close_days: set[int]  # sessions whose option sentinels carry marks (besides each expiry session)
    # day ordinals of the trading sessions up to the options' last expiry (close_days_before_expiry)
    sessions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def spec_plan(spec: StrategySpec, **window: Any) -> Plan:
    """The parts of a plan that come from the spec alone (legs, parameters, sizing units), plus ``window``:
    the market-dependent fields a backtest fills once and live trading refreshes at each decision."""
    inst = spec.instrument
    legs = _legs(spec)
    is_option = inst.type == "option"
    if inst.type == "forex":
        pair = forex_pair(inst.symbol)
        # Lumibot (and brokers.lumibot_tradelocker) count forex in units of the base currency
        underlying, lumi_units = Asset(pair.pair, asset_type="forex"), pair.lot_units
    else:
        underlying, lumi_units = Asset(inst.symbol, asset_type="stock"), 1.0
    return Plan(
        spec=spec,
        params=kernel_params(spec),
        leg_kind=legs.kind,
        leg_sign=legs.sign,
        leg_right=legs.right,
        leg_dte=legs.dte,
        leg_select=legs.select,
        leg_value=legs.value,
        mult=underlying_multiplier(spec)[0],
        is_option=is_option,
        own_pct=is_option and (len(inst.legs) > 1 or inst.staged is not None),
        partial_pct=[p.pct for p in spec.exits.partial_take_profits],
        partial_frac=[p.fraction for p in spec.exits.partial_take_profits],
        underlying=underlying,
        lumi_units=lumi_units,
        **window,
    )


def build_plan(spec: StrategySpec, market: Market, start: dt.date, end: dt.date) -> Plan:
    inst = spec.instrument
    pcts = [p.pct for p in spec.exits.partial_take_profits]
    if pcts != sorted(pcts) and (inst.type != "option" or len(inst.legs) == 1):
        raise NotImplementedError(
            "the lumibot engine rests all partial take-profits at once, so their pct must be in "
            f"ascending order; got {pcts} in exits.partial_take_profits"
        )
    if inst.type in ("future", "forex"):
        raise NotImplementedError(
            f"the lumibot engine runs stock and option specs; {inst.type} ({inst.symbol}) trades around "
            "the clock, which Lumibot backtests as a continuous market without session closes; use the "
            "fast engine for it"
        )
    i0, i1 = market.index_range(start, end)
    bars = market.bars
    p_last = option_last_prices(spec, market)
    n = len(bars.ts)
    last_of_day = np.ones(n, dtype=np.bool_)
    last_of_day[:-1] = bars.day[1:] != bars.day[:-1]
    ts = bars.ts
    bar_at = {int(ts[i]): i for i in range(i0, i1 + 1)}
    sentinel_at: dict[int, int] = {}
    for i in range(i0, i1 + 1):
        if last_of_day[i] or i == i1:
            nxt = ts[i] + NS_PER_MIN
            if i < n - 1 and ts[i + 1] <= ts[i] + 2 * NS_PER_MIN:
                raise NotImplementedError(
                    f"session {bars.session_dates[bars.day[i]]} of {market.spec_symbol} runs into the next one "
                    "without a break; the lumibot engine needs a pause after each session's last bar"
                )
            sentinel_at[int(nxt)] = i
    return spec_plan(
        spec,
        market=market,
        i0=i0,
        i1=i1,
        sig=signal_arrays(spec, market),
        p_last=p_last,
        bar_at=bar_at,
        sentinel_at=sentinel_at,
        close_days={int(bars.day[i1])},  # the window's end closes everything at the close
        sessions=session_ordinals(spec, market),
    )
