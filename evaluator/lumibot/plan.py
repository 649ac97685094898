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
from spec_space.instruments import FUTURES, forex_pair
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
    # first sentinel's timestamp (ns) -> the session's last bar (on the continuous clock: the window's last bar only)
    sentinel_at: dict[int, int]
    close_days: set[int]  # sessions whose option sentinels carry marks (besides each expiry session)
    # True when the sessions run into each other (forex, extended-hours futures): Lumibot's clock then runs
    # as one 24/7 market and visits only ``visits`` (module note 1 of evaluator.lumibot)
    continuous: bool = False
    visits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ns, sorted
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
    i0, i1 = market.index_range(start, end)
    bars = market.bars
    p_last = option_last_prices(spec, market)
    ts = bars.ts
    bar_at = {int(ts[i]): i for i in range(i0, i1 + 1)}
    continuous = sessions_run_together(market, i0, i1)
    sentinel_at: dict[int, int] = {int(ts[i1] + NS_PER_MIN): i1}
    if not continuous:
        last_of_day = np.flatnonzero(bars.day[i0 + 1 : i1 + 1] != bars.day[i0:i1]) + i0
        sentinel_at.update({int(ts[i] + NS_PER_MIN): int(i) for i in last_of_day})
    visits = np.zeros(0, np.int64)
    if continuous:
        visits = np.concatenate([ts[i0 : i1 + 1], ts[i1] + np.array([1, 2]) * NS_PER_MIN]).astype(np.int64)
    plan = spec_plan(
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
        continuous=continuous,
        visits=visits,
    )
    if inst.type == "future":
        # the store's continuous front month is one Lumibot continuous future with the contract's
        # multiplier; Lumibot books futures on margin (cash moves by the margin and the realised P&L, not
        # the notional: SpecStrategy.model_cash)
        contract = FUTURES[inst.symbol]
        plan.underlying = Asset(contract.root, asset_type="cont_future", multiplier=contract.multiplier)
    return plan


def sessions_run_together(market: Market, i0: int, i1: int) -> bool:
    """Whether bars ``i0..i1`` need Lumibot's continuous clock (module note 1 of :mod:`evaluator.lumibot`).

    With ``PandasData`` Lumibot takes each New York calendar date of the data as one session and never
    iterates a date's last timestamp; the sentinel rows after each session's last bar then stand in for
    it. That needs every session to lie within one calendar date (no bar before its trading date, as a
    forex or Globex evening has: ``session_minute != minute``) and a pause of more than two minutes after
    it for the two sentinels."""
    bars = market.bars
    sl = slice(i0, i1 + 1)
    if not np.array_equal(bars.session_minute[sl], bars.minute[sl]):
        return True
    ends = np.flatnonzero(bars.day[i0 + 1 : i1 + 1] != bars.day[i0:i1]) + i0
    return bool(np.any(bars.ts[ends + 1] <= bars.ts[ends] + 2 * NS_PER_MIN))
