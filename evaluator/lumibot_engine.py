"""The Lumibot engine: any StrategySpec run as a Lumibot ``Strategy`` under the same fill model.

``run(spec, market, start, end)`` backtests ``spec`` with Lumibot's own clock, broker, order fills,
positions and cash, on the bars of the same :class:`~evaluator.market.Market` the fast engine uses
(which come from the Parquet store), and returns the same :class:`~evaluator.results.BacktestResult`
schema (metrics from :mod:`evaluator.metrics`, never Lumibot's own). The parity tests hold the two
engines to one fill model (:mod:`evaluator.fill_model`); ``search confirm`` re-runs finalists here.

How the fill model maps onto Lumibot (lumibot 4.6.30, ``PandasData`` minute backtests)
--------------------------------------------------------------------------------------
Lumibot iterates once per minute at time ``t``; the bar stamped ``t`` is still forming (its open is
known, ``get_last_price`` returns it), the bars before it are closed. After ``on_trading_iteration``
the backtesting broker fills pending orders against the bar stamped ``t``: market orders at its
open, stop and limit orders on its high/low (a gap fills at the open), in submission order. So the
strategy decides on bar ``i``'s close at the iteration of bar ``i + 1``, and

* market orders submitted then fill at bar ``i + 1``'s open (rules 1, 2, 8, 9, 11): entries, signal
  exits, reversals, multi-leg level exits, staged conversions and time exits;
* single-instrument stops, trailing and break-even stops, partial and final take-profits are
  resting stop / limit orders checked intrabar by Lumibot (rules 4, 6, 7), re-placed in the order
  stop, partials, target so Lumibot checks the stop first.

Where Lumibot needed help (each point is a Lumibot behaviour, not a choice of the fill model):

1. Lumibot never processes a session's last bar (its loop stops when the clock reaches the last
   timestamp of the day), and has no way to fill at a bar's close. Every session's data gets two
   sentinel rows one and two minutes after its last bar, at that bar's close: the iteration at the
   first sentinel is where the last bar's close is decided on, and a market order placed there fills
   at the sentinel's open, i.e. the last bar's close (expiry and end-of-window closes, rule 8). The
   strategy maps Lumibot's clock to Market bars, so sentinels and the minutes Lumibot pads between
   sparse bars (copies of the previous bar) are never taken for real bars.
2. Lumibot forward-fills missing rows from the previous bar (open included) and forward-fills a
   missing close without limit. Option contracts therefore get rows at every bar of their
   sessions, built by the fill model: the bar's own open/high/low/close when the contract traded,
   else its last trade within ``max_staleness_minutes`` (rule 2, 10), else zeros, which Lumibot
   treats as "no price" (no fill, ``get_last_price`` is None).
3. Lumibot's strategy callbacks (``on_filled_order``) run after the broker's whole pass over the
   pending orders, so they cannot stop a second exit order from filling on the same bar. The broker
   is a thin subclass whose fill hook runs synchronously: when a stop or target fills the other
   resting exits are cancelled, when a partial target fills the remaining ones shrink to what is
   left (``Order.quantity``), exactly as the fill model's ordered intrabar checks do. Lumibot also
   rejects option close orders that add up to more than the position (it counts every resting
   exit, and the exits of an entry go out in the same minute as the entry, before it fills); the
   subclass exempts the strategy's resting exit group, which the fill hook keeps within the position.
4. Costs: commissions per share / contract / lot and ``commission_pct`` of single-instrument fills
   are Lumibot ``TradingFee`` objects (per_contract_fee, percent_fee scaled by the contract
   multiplier since Lumibot takes the percentage of price x quantity). Lumibot's
   ``TradingSlippage`` only applies to SMART_LIMIT orders, so slippage (bps, ticks) and the option
   half-spread are booked by the strategy at each fill as a cash adjustment, and so is the
   percentage commission of multi-leg positions (the fill model charges it on the net value).
5. Lumibot checks working orders when its clock jumps to the next session's open, before that
   session's first iteration, while the fill model checks levels only after the open's exits and
   entries. The resting exits are cancelled at each session's end and placed again at the next
   session's first bar; they are GTC (Lumibot's default DAY orders expire at the close).
6. Lumibot compares a stop or limit price with the bar's prices; the fill model compares the
   position's value (price x signed multiplier) with a value level. The two differ by rounding right
   at a level (100 x 0.07 is 7.000000000000001 > 7.0), so each order price is the last float on the
   fill model's side of the level (``_trigger_price``): Lumibot then triggers on exactly the same bars.
7. Contracts are registered with the data source when the strategy selects them (only those), as
   Lumibot's own on-demand data sources do.
8. After the run the broker's stream thread and the data source's thread pool are stopped (Lumibot
   leaves them running).

Not supported (``NotImplementedError`` with the reason): futures and forex (they trade around the
clock: the store's sessions run into each other at midnight and Lumibot backtests them as a
continuous market without session closes), and partial take-profits not in ascending order (they
rest together; the fill model takes them strictly in list order).

Signals: in a backtest the strategy reads the precomputed, causal arrays of
:func:`evaluator.fast.signal_arrays` and picks contracts with the fast engine's own
:func:`evaluator._kernel.select_contract`, so both engines see the same signals and the same chain.

Live mode (:func:`live_strategy`, :meth:`SpecStrategy.configure_live`): the same class, on a live Lumibot
broker (paper or real money). At each iteration it reads the broker's recent bars of the spec's symbol
(``get_historical_prices``; :mod:`evaluator._live` keeps the closed ones, builds hourly bars the way the
store does) into a Market built by the backtests' ``bars_from_frame``, and recomputes
:func:`evaluator.fast.signal_arrays` on it. A bar not yet decided on is decided once, in the kernel's
order: step 7 on its close, then steps 1-5 at the next bar's open, which is now (the wall clock's bar,
so the end-of-day flat and ``max_hold_minutes`` follow the clock even on delayed data). The entry window
and the flat flags come from the calendar (``data.calendar``): the arrays cannot know yet that their last
bar is its session's last. Options are chosen from the broker's chain (``get_chains``,
``get_chain_full_info``) by ``select_contract`` itself, on the quotes' mids. Orders go through Lumibot's
order API: market orders for entries and exits (a multi-leg position as one multi-leg order); the stop,
partial targets and target of a single-instrument position rest at the broker (GTC, on the price grid,
rounded towards the side they trigger on) from the entry's fill, re-placed when trailing or break-even
moves them, the others cancelled when one fills; multi-leg levels are checked on the legs' bar closes
(their quote's mid when a contract did not trade). Fills, positions and cash are the broker's: levels
start from the actual fill, modelled slippage and commissions only size the position, and the broker's
position is the truth (one found at the broker is taken over with levels from its average price, one gone
is forgotten, an earlier run's resting exits are cancelled). Where the fill model cannot hold live: fills
are the broker's prices, not a bar's open; an expiring option closes at its last bar's open instead of
the close; the stop and the target are two orders the broker does not link (both can fill in a fast
market; the position check then sees what is held). On a TradeLocker account (hedging: a resting
opposite order opens a second position instead of closing the first) the levels are watched at every
iteration against the last price and closed with a market order. Refused live (:func:`live_problem`):
futures, staged conversions, and instruments the broker does not trade here (forex on Tradier, stocks
and options on TradeLocker).

Lumibot live behaviours the live mode works around (lumibot 4.6.30):

9. ``Strategy.get_last_price`` caches prices per broker clock tick in any process where Lumibot read
   ``IS_BACKTESTING=true`` at import (this module imports it so); a live broker's clock never ticks, so
   live prices would never change. The import-time snapshot is reset (backtests are recognised by their
   broker as well).
10. Strategy callbacks for events that happen during the first iteration are dropped, and
    ``on_trading_iteration`` runs on a worker thread while the executor thread delivers callbacks: the
    strategy follows its orders' states (which the broker's polling thread keeps current) at every
    iteration and callback, under one lock; an entry waits a few seconds for its fills so its resting
    exits follow at once, not one iteration later.
11. Lumibot's Tradier broker treats paper accounts' data as 15 minutes late, and its positions carry no
    average price: decisions use the bars as delivered with the clock's bar as "now", and a position
    taken over after a restart gets its entry from Tradier's cost basis.
12. Lumibot's Tradier data source counts 1,440 minutes a day when it picks the first day to fetch, so the
    default lookback asks for three days of bars; ``get_chain_full_info`` is given the underlying price and
    a zero rate (else it fetches them); ``Order.get_fill_price`` rounds to cents, so fills are averaged here.

Isolation: ``Strategy.run_backtest`` lets environment variables override its arguments
(BACKTESTING_START/END, BACKTESTING_DATA_SOURCE, BACKTESTING_BUDGET, ...) and writes ``logs/``
(data_provenance.json, market inputs) into the working directory even with ``analyze_backtest=False``,
so the engine builds the data source, broker, strategy and ``Trader`` itself (the same objects
``run_backtest`` builds) with ``risk_free_rate=0`` (else it downloads ^IRX from Yahoo), no benchmark
and no analysis. It imports Lumibot with ``.env`` discovery disabled, runs each backtest with a
controlled environment (:func:`lumibot_environment`, restored afterwards) in its own folder
(``run_dir``, default a temporary folder). Lumibot 4.6.30 installs its SIGINT handler only on the
main thread and backtests fine off it, but the environment and working directory are process-wide:
off the main thread (thread pools, threaded actors) the run goes to a child process. Ray runs tasks
on its worker's main thread, so a Ray task runs in-process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluator import _kernel as K
from evaluator import _live
from evaluator.fast import _legs, kernel_params, session_ordinals, signal_arrays, underlying_multiplier
from evaluator.fill_model import EXIT_REASONS
from evaluator.market import BAR_MINUTES, NY, Market, option_last_prices, signal_symbol
from evaluator.results import BacktestResult, build_result, trades_frame
from spec_space.instruments import FUTURES, forex_pair
from spec_space.models import StrategySpec

# Variables Lumibot reads that would override our arguments or reach the network: removed for a run.
_UNSET_ENV = (
    "BACKTESTING_DATA_SOURCE",
    "BACKTESTING_DATA_SOURCES",
    "BACKTESTING_START",
    "BACKTESTING_END",
    "BACKTESTING_BUDGET",
    "BACKTESTING_PARAMETERS",
    "BACKTESTING_MARKET",
    "BACKTESTING_PROFILE",
    "LUMIBOT_STRATEGY_PARAMETERS",
    "MARKET",
    "SAVE_LOGFILE",
    "LOG_BACKTEST_PROGRESS_TO_FILE",
    "LUMIBOT_BACKTEST_AUDIT",
    "SHOW_PLOT",
    "SHOW_TEARSHEET",
    "SHOW_INDICATORS",
    "LUMIWEALTH_API_KEY",
    "DB_CONNECTION_STR",
    "ACCOUNT_HISTORY_DB_CONNECTION_STR",
    "DISCORD_WEBHOOK_URL",
    "LIVE_CONFIG",
    "TRADING_BROKER",
    "DATA_SOURCE",
    "LOG_ERRORS_TO_CSV",
)
_SET_ENV = {
    "IS_BACKTESTING": "true",
    "BACKTESTING_QUIET_LOGS": "true",
    "BACKTESTING_SHOW_PROGRESS_BAR": "false",
    "LUMIBOT_DISABLE_DOTENV": "true",
    "LUMIBOT_LOG_LEVEL": "ERROR",
}
_ENV_LOCK = threading.RLock()


@contextlib.contextmanager
def lumibot_environment(run_dir: Path | None = None) -> Iterator[None]:
    """Set the variables Lumibot must see, remove the ones that would override arguments, and
    (with ``run_dir``) work in that folder; everything is restored on exit. Process-wide, so runs
    are serialised by a lock."""
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in (*_UNSET_ENV, *_SET_ENV)}
        cwd = os.getcwd()
        try:
            for name in _UNSET_ENV:
                os.environ.pop(name, None)
            os.environ.update(_SET_ENV)
            if run_dir is not None:
                os.chdir(run_dir)
            yield
        finally:
            if run_dir is not None:
                os.chdir(cwd)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


with lumibot_environment():  # no .env discovery, no startup banner, no error reporting on import
    import lumibot.strategies.strategy as _lumibot_strategy_module
    from lumibot.backtesting import BacktestingBroker, PandasDataBacktesting
    from lumibot.entities import Asset, Data, TradingFee
    from lumibot.strategies import Strategy
    from lumibot.traders import Trader

# Lumibot snapshots IS_BACKTESTING from the environment when it is imported (true just above) and then
# caches Strategy.get_last_price / get_quote per broker clock tick in any process it believes backtests;
# a live broker's clock never ticks, so a live strategy in this process would read one price forever.
# Backtests are recognised by their broker (IS_BACKTESTING_BROKER) as well, so the snapshot can say "no".
_lumibot_strategy_module.IS_BACKTESTING = False

_USD = Asset("USD", asset_type="forex")
_EPOCH = dt.date(1970, 1, 1)
_NS_PER_MIN = 60_000_000_000
_CHILD_INPUT, _CHILD_OUTPUT = "lumibot_job.pkl", "lumibot_result.pkl"


# --------------------------------------------------------------------------- the plan of one run


@dataclass
class _Plan:
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


def _spec_plan(spec: StrategySpec, **window: Any) -> _Plan:
    """The parts of a plan that come from the spec alone (legs, parameters, sizing units), plus ``window``:
    the market-dependent fields a backtest fills once and live trading refreshes at each decision."""
    inst = spec.instrument
    leg_kind, leg_sign, leg_right, leg_dte, leg_select, leg_value = _legs(spec)
    is_option = inst.type == "option"
    if inst.type == "forex":
        pair = forex_pair(inst.symbol)
        # Lumibot (and brokers.lumibot_tradelocker) count forex in units of the base currency
        underlying, lumi_units = Asset(pair.pair, asset_type="forex"), pair.lot_units
    else:
        underlying, lumi_units = Asset(inst.symbol, asset_type="stock"), 1.0
    return _Plan(
        spec=spec,
        params=kernel_params(spec),
        leg_kind=leg_kind,
        leg_sign=leg_sign,
        leg_right=leg_right,
        leg_dte=leg_dte,
        leg_select=leg_select,
        leg_value=leg_value,
        mult=underlying_multiplier(spec)[0],
        is_option=is_option,
        own_pct=is_option and (len(inst.legs) > 1 or inst.staged is not None),
        partial_pct=[p.pct for p in spec.exits.partial_take_profits],
        partial_frac=[p.fraction for p in spec.exits.partial_take_profits],
        underlying=underlying,
        lumi_units=lumi_units,
        **window,
    )


def _build_plan(spec: StrategySpec, market: Market, start: dt.date, end: dt.date) -> _Plan:
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
            nxt = ts[i] + _NS_PER_MIN
            if i < n - 1 and ts[i + 1] <= ts[i] + 2 * _NS_PER_MIN:
                raise NotImplementedError(
                    f"session {bars.session_dates[bars.day[i]]} of {market.spec_symbol} runs into the next one "
                    "without a break; the lumibot engine needs a pause after each session's last bar"
                )
            sentinel_at[int(nxt)] = i
    return _spec_plan(
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


# --------------------------------------------------------------------------- data for Lumibot


def _index(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).tz_convert(NY)


def _underlying_frame(plan: _Plan) -> pd.DataFrame:
    """The traded (or underlying) instrument's bars of the window plus each session's two sentinels."""
    bars = plan.market.bars
    sl = slice(plan.i0, plan.i1 + 1)
    ts = bars.ts[sl]
    cols = {
        name: getattr(bars, name)[sl].astype(np.float64)
        for name in ("open", "high", "low", "close", "volume")
    }
    last = np.array(sorted(plan.sentinel_at.values()), dtype=np.int64)
    extra_ts = np.concatenate([bars.ts[last] + _NS_PER_MIN, bars.ts[last] + 2 * _NS_PER_MIN])
    extra_px = np.concatenate([bars.close[last], bars.close[last]])
    all_ts = np.concatenate([ts, extra_ts])
    frame = pd.DataFrame(
        {
            "open": np.concatenate([cols["open"], extra_px]),
            "high": np.concatenate([cols["high"], extra_px]),
            "low": np.concatenate([cols["low"], extra_px]),
            "close": np.concatenate([cols["close"], extra_px]),
            "volume": np.concatenate([cols["volume"], np.zeros(len(extra_ts))]),
        },
        index=_index(all_ts),
    )
    return frame.sort_index()


def _contract_frame(plan: _Plan, day: int, expiry_ord: int, strike: float, is_call: bool) -> pd.DataFrame:
    """One contract's rows at every bar of the window's sessions from ``day`` to its expiry, built by
    the fill model (module note 2): its own bar where it traded, else its last trade within the
    staleness limit, else its last known trade however old (the price a time exit of a quiet leg fills
    at, marked stale; the strategy enters, converts and rests levels only on priced bars, as the kernel
    does), else zeros (no price)."""
    mkt = plan.market
    bars, opt = mkt.bars, mkt.options
    stamps: list[np.ndarray] = []
    cols: dict[str, list[np.ndarray]] = {"open": [], "high": [], "low": [], "close": []}
    carry = 0.0  # the last known trade price so far (0: none yet)
    for d in range(day, int(bars.day[plan.i1]) + 1):
        if mkt.day_ord[d] > expiry_ord:
            break
        c = int(
            K._find_contract(
                opt.day_c0[d], opt.day_c1[d], expiry_ord, strike, is_call, opt.c_exp, opt.c_strike, opt.c_call
            )
        )
        first = int(mkt.day_first_bar[d])
        last = int(np.searchsorted(bars.day, d, side="right") - 1)
        if c < 0:
            o = h = lo = cl = np.full(last - first + 1, carry)
            cl_fresh = np.zeros(last - first + 1)
        else:
            sl = slice(int(opt.c_off[c]), int(opt.c_off[c]) + last - first + 1)
            mark = plan.p_last[sl]
            none = np.isnan(mark)
            o, h, lo = (
                np.where(np.isnan(x), mark, x) for x in (opt.p_open[sl], opt.p_high[sl], opt.p_low[sl])
            )
            cl_fresh = np.where(none, 0.0, mark)
            # the last known trade at each row (forward-filled from earlier rows and sessions)
            where = np.where(none, -1, np.arange(len(mark)))
            where = np.maximum.accumulate(where)
            stale = np.where(where >= 0, mark[np.maximum(where, 0)], carry)
            o, h, lo, cl = (np.where(none, stale, x) for x in (o, h, lo, mark))
            carry = float(stale[-1])
        # the sentinels carry the close's mark only in sessions where a position can be closed at the
        # close (the contract's expiry, the window's end): elsewhere no price, so no resting order can
        # ever fill at a sentinel
        close_mark = 0.0
        if d in plan.close_days or mkt.day_ord[d] >= expiry_ord:
            close_mark = float(cl_fresh[-1])
            if close_mark <= 0.0:  # no trade within the limit: intrinsic value against the close
                und = float(bars.close[last])
                close_mark = max(und - strike, 0.0) if is_call else max(strike - und, 0.0)
        tail = np.array([close_mark, close_mark])
        stamps.append(
            np.concatenate([bars.ts[first : last + 1], bars.ts[last] + np.array([1, 2]) * _NS_PER_MIN])
        )
        for name, values in zip(("open", "high", "low", "close"), (o, h, lo, cl), strict=True):
            cols[name].append(np.concatenate([values, tail]))
    frame = pd.DataFrame(
        {name: np.concatenate(parts) for name, parts in cols.items()}, index=_index(np.concatenate(stamps))
    )
    frame["volume"] = 0.0
    return frame


def _largest_at_most(a: float, t: float) -> float:
    """The largest float ``x`` with ``a * x <= t`` in floating point (``a > 0``)."""
    x = t / a
    while a * x > t:
        x = float(np.nextafter(x, -np.inf))
    while a * float(np.nextafter(x, np.inf)) <= t:
        x = float(np.nextafter(x, np.inf))
    return x


def _smallest_at_least(a: float, t: float) -> float:
    """The smallest float ``x`` with ``a * x >= t`` in floating point (``a > 0``)."""
    x = t / a
    while a * x < t:
        x = float(np.nextafter(x, np.inf))
    while a * float(np.nextafter(x, -np.inf)) >= t:
        x = float(np.nextafter(x, -np.inf))
    return x


def _trigger_price(kind: str, level: float, s: float) -> float:
    """The Lumibot order price that triggers on exactly the prices the fill model's level does.

    The fill model compares a position's value ``s * price`` with a value level (``s``: the leg's
    signed multiplier), a stop when the bar's worst value is at or below it, a target when the best
    is at or above it. A price level ``level / s`` can differ from that by rounding right at a cent
    (100 * 0.07 is 7.000000000000001 > 7.0), so the price is the last float on the right side.
    A result <= 0 means no positive price or every positive price triggers (see _place_resting).
    """
    if s > 0:
        return _largest_at_most(s, level) if kind == "stop" else _smallest_at_least(s, level)
    return _smallest_at_least(-s, -level) if kind == "stop" else _largest_at_most(-s, -level)


# --------------------------------------------------------------------------- the broker


class _SpecBroker(BacktestingBroker):
    """Lumibot's backtesting broker with a synchronous fill hook (module note 3), and without the
    over-close check for the strategy's resting exits (module note 3)."""

    fill_hook: Any = None

    def resolve_option_order_intent(self, order: Any, additional_active_orders: Any = None) -> Any:
        if getattr(order, "spec_exit_group", False):
            return order  # explicit sides; the fill hook keeps the group within the position
        return super().resolve_option_order_intent(order, additional_active_orders)

    def _process_filled_order(self, order: Any, price: Any, quantity: Any) -> Any:
        position = super()._process_filled_order(order, price, quantity)
        if self.fill_hook is not None:
            self.fill_hook(order, float(price), float(quantity))
        return position


# --------------------------------------------------------------------------- the strategy


@dataclass(frozen=True)
class _Trade:
    """The position an exit closes, as it was when the exit's orders went out (a reversal re-enters
    at the same open, before the exit's fills arrive)."""

    entry_bar: int
    entry_v: float
    direction: int
    n: int
    sign: np.ndarray
    mult: np.ndarray
    contracts: np.ndarray
    units: tuple[float, ...]
    tickers: str


@dataclass
class _Action:
    """Orders placed together for one fill-model event; finalised when every leg has filled."""

    kind: str  # entry | exit | convert | resting
    bar: int
    n_legs: int
    trade: _Trade | None = None
    reason: int = 0
    exit_qty: float = 0.0
    share: float = 0.0  # the part of the entry commission this exit carries
    prices: dict[int, float] = field(default_factory=dict)
    fees: dict[int, float] = field(default_factory=dict)
    rest_kind: str = ""  # resting orders: stop | partial | target
    partial_index: int = -1
    stale: bool = False  # an exit booked at a leg's last known price (no trade within the staleness limit)
    # live entries: the decision bar's (atr, signal stop distance, signal target distance), to set the
    # levels from the actual fill; live exits: (direction, quantity) before the exit, restored if refused
    context: tuple[float, float, float] = (0.0, 0.0, 0.0)
    restore: tuple[int, float] = (0, 0.0)


@dataclass
class _Resting:
    order: Any
    kind: str
    price: float
    units: float
    reason: int
    partial_index: int

    def key(self) -> tuple[str, float, float, int, int]:
        return (self.kind, self.price, self.units, self.reason, self.partial_index)


class SpecStrategy(Strategy):
    """One generic Lumibot strategy that interprets any StrategySpec (see the module docstring).

    Backtests: :func:`run` builds the plan and calls :meth:`configure` before the backtest starts.
    Decisions read the plan's arrays (the Market); fills, positions, cash and commissions are Lumibot's.
    Live: :func:`live_strategy` calls :meth:`configure_live`; each decision rebuilds the Market from the
    broker's bars (the ``_live_*`` methods). The state and the numbered steps mirror
    ``evaluator._kernel.run_kernel`` so the two can be read side by side.
    """

    plan: _Plan
    live: _Live | None = None  # set by configure_live: the strategy trades on a live broker

    # ------------------------------------------------------------------ setup

    def configure(self, plan: _Plan, per_unit_fee: float) -> None:
        """Backtest mode: decisions read ``plan``'s arrays, fills come from ``_SpecBroker``'s hook."""
        self._init_state(plan)
        self.per_unit_fee = per_unit_fee
        # bookkeeping around Lumibot
        self.closed_upto = plan.i0 - 1
        self.pending_mark: tuple[int, float] | None = None
        self.equity = np.full(len(plan.market.bars.ts), np.nan)
        self.exposure_bars = 0
        self.cur_bar = plan.i0
        self.cash_pending = 0.0  # expected cash change of this open's orders, not yet filled
        self.broker.fill_hook = self._on_fill

    def _init_state(self, plan: _Plan) -> None:
        """The kernel's position state (``evaluator._kernel.run_kernel``), shared by both modes."""
        self.plan = plan
        self.prm = plan.params.copy()  # a conversion raises the per-unit commission for its trade
        self.comm_unit_entry = float(self.prm[K.P_COMM_UNIT])
        self.n_legs = len(plan.leg_kind)
        self.qty = 0.0
        self.orig_qty = 0.0
        self.direction = 0
        self.v_entry = 0.0
        self.v_entry_trade = 0.0
        self.comm_entry_left = 0.0
        self.entry_bar = -1
        self.entry_ts = 0
        self.best_v = 0.0
        self.stop_v = -1e300
        self.tp_v = 1e300
        self.next_partial = 0
        self.converted = False
        self.stage_und_ref = 0.0
        self.trades_today = 0
        self.cur_day = -1
        self.single = self.n_legs == 1
        self.last_mark = [0.0] * 4
        self.pos_legs = [-1] * 4  # contract index in the current session's chain, per leg
        self.pos_sign = [0.0] * 4
        self.pos_mult = [0.0] * 4
        self.pos_exp = [0] * 4
        self.pos_strike = [0.0] * 4
        self.pos_call = [False] * 4
        self.pos_asset: list[Any] = [None] * 4
        self.pos_units = [0.0] * 4  # Lumibot quantity of each leg per position unit
        self.pos_ticker = [""] * 4
        self.pos_n = 0
        self.pend_entry = 0
        self.pend_legs = [-1] * 4
        self.pend_entry_day = -1
        self.pend_exit_frac = 0.0
        self.pend_exit_reason = 0
        self.pend_convert = -1
        self.traded_event = -1  # the external signal event behind the last entry
        self.actions: dict[str, tuple[_Action, int]] = {}  # order identifier -> (action, leg)
        self.resting: list[_Resting] = []
        self.trades: list[dict[str, Any]] = []
        self.contract_assets: dict[str, Any] = {}
        self.failures: list[str] = []

    def initialize(self) -> None:
        if self.live is not None:
            self.sleeptime = self.live.sleeptime
            return
        self.sleeptime = "1M"  # Lumibot pads the data to a one-minute grid; padding minutes are skipped

    # ------------------------------------------------------------------ Lumibot's clock -> bars

    def on_trading_iteration(self) -> None:
        if self.live is not None:
            self._live_iteration()
            return
        plan = self.plan
        ns = int(round(self.get_datetime().timestamp())) * 1_000_000_000
        j = plan.bar_at.get(ns)
        if j is None:
            last = plan.sentinel_at.get(ns)
            if last is not None and self.closed_upto < last:
                self._check_unfilled()
                self._finish_bar(last, sentinel=True)
            return
        self._check_unfilled()
        self._record_pending_mark()
        if j - 1 >= plan.i0 and self.closed_upto < j - 1:
            self._finish_bar(j - 1, sentinel=False)
            self._record_pending_mark()
        self._start_bar(j)

    def _record_pending_mark(self) -> None:
        """Equity at a bar's close (rule 10), once that bar's fills are in Lumibot's cash."""
        if self.pending_mark is None:
            return
        i, v_close = self.pending_mark
        self.equity[i] = float(self.cash) + (self.qty * v_close if self.direction != 0 else 0.0)
        self.pending_mark = None

    def _check_unfilled(self) -> None:
        """Market orders fill on the bar they were placed for; one still open means the data disagree."""
        for ident, (action, _) in list(self.actions.items()):
            if action.kind == "resting":
                continue
            del self.actions[ident]
            order = self.broker.get_tracked_order(ident)
            status = getattr(order, "status", "?")
            self.failures.append(
                f"the {action.kind} order placed for bar {action.bar} did not fill there ({status})"
            )
            if order is not None and order.is_active():
                self.broker.cancel_order(order)
        self.cash_pending = 0.0

    # ------------------------------------------------------------------ helpers

    def _leg_prices(self, c: int, pos: int) -> tuple[float, float, float, float]:
        """(open, high, low, last) of contract ``c`` at session position ``pos``, each falling back to the
        last trade within the staleness limit (NaN if none), as the kernel reads them."""
        opt = self.plan.market.options
        p = int(opt.c_off[c]) + pos
        last = float(self.plan.p_last[p])
        o, h, lo = float(opt.p_open[p]), float(opt.p_high[p]), float(opt.p_low[p])
        return (o if o == o else last, h if h == h else last, lo if lo == lo else last, last)

    def _contract_asset(self, c: int, day: int) -> Any:
        """The Lumibot Asset of contract ``c``, its data registered with the data source on first use
        (module note 6)."""
        plan = self.plan
        opt = plan.market.options
        ticker = opt.c_ticker[c]
        asset = self.contract_assets.get(ticker)
        if asset is not None:
            return asset
        expiry = _EPOCH + dt.timedelta(days=int(opt.c_exp[c]))
        asset = Asset(
            plan.spec.instrument.symbol,
            asset_type="option",
            expiration=expiry,
            strike=float(opt.c_strike[c]),
            right="CALL" if opt.c_call[c] else "PUT",
            multiplier=int(K.OPTION_MULT),
        )
        frame = _contract_frame(plan, day, int(opt.c_exp[c]), float(opt.c_strike[c]), bool(opt.c_call[c]))
        data = Data(asset, frame, timestep="minute", quote=_USD)
        source = self.broker.data_source
        data.repair_times_and_fill(source._date_index)
        source._data_store[(asset, _USD)] = data
        source._find_asset_in_data_store_cache.clear()
        self.contract_assets[ticker] = asset
        return asset

    def _submit(self, asset: Any, units: float, side: str, action: _Action, leg: int, **levels: float) -> Any:
        order = self.create_order(asset, units, side, time_in_force="gtc", **levels)
        order.spec_exit_group = action.kind == "resting"
        self.submit_order(order)
        self.actions[order.identifier] = (action, leg)
        return order

    def _side(self, sign: float, *, opening: bool) -> str:
        buy = (sign > 0) == opening
        if self.plan.is_option:
            if opening:
                return "buy_to_open" if buy else "sell_to_open"
            return "buy_to_close" if buy else "sell_to_close"
        if opening:
            return "buy" if buy else "sell_short"
        return "buy_to_cover" if buy else "sell"

    def _trade(self) -> _Trade:
        n = self.pos_n
        return _Trade(
            entry_bar=self.entry_bar,
            entry_v=self.v_entry_trade,
            direction=self.direction,
            n=n,
            sign=np.array(self.pos_sign[:n]),
            mult=np.array(self.pos_mult[:n]),
            contracts=np.array(self.pos_legs[:n], dtype=np.int64),
            units=tuple(self.pos_units[:n]),
            tickers="+".join(t for t in self.pos_ticker[:n] if t),
        )

    def _cost(self, trade: _Trade, und_price: float) -> float:
        """Slippage or spread of one unit (the kernel's formula); ``und_price`` is the instrument's fill."""
        return float(
            K._cost_per_unit(
                trade.n,
                trade.sign,
                trade.mult,
                trade.contracts,
                0.0,
                self.prm,
                self.plan.is_option,
                und_price,
            )
        )

    def _comm(self, qty: float, v_price: float) -> float:
        """The fill model's commission of ``qty`` units traded at value ``v_price``."""
        return qty * float(self.prm[K.P_COMM_UNIT]) + float(self.prm[K.P_COMM_PCT]) * abs(qty * v_price)

    def _book(self, amount: float) -> None:
        """Add ``amount`` (negative: a cost) to Lumibot's cash (module note 4)."""
        if amount != 0.0:
            self._set_cash_position(float(self.cash) + amount)

    def _leave(self, exit_qty: float) -> None:
        self.qty -= exit_qty
        if self.qty <= 1e-12:
            self.qty = 0.0
            self.direction = 0

    # ------------------------------------------------------------------ kernel steps 0-5 at bar j's open

    def _start_bar(self, j: int) -> None:
        plan = self.plan
        mkt = plan.market
        bars = mkt.bars
        opt = mkt.options
        prm = self.prm
        self.cur_bar = j
        d = int(bars.day[j])
        pos = j - int(mkt.day_first_bar[d])
        if d != self.cur_day:
            self.cur_day = d
            self.trades_today = 0
            if self.direction != 0 and plan.is_option:  # re-locate held contracts in the new chain
                for k in range(self.pos_n):
                    self.pos_legs[k] = int(
                        K._find_contract(
                            opt.day_c0[d],
                            opt.day_c1[d],
                            self.pos_exp[k],
                            self.pos_strike[k],
                            self.pos_call[k],
                            opt.c_exp,
                            opt.c_strike,
                            opt.c_call,
                        )
                    )
        # the position's value at this open, and whether every leg has a price (known at the open:
        # a contract has one if it trades in this minute or traded within the staleness limit)
        v_open = 0.0
        priced = True
        if self.direction != 0:
            for k in range(self.pos_n):
                if self.pos_legs[k] < 0:
                    if plan.is_option:  # not traded this session: its last known price (a stale exit)
                        priced = False
                        o = self.last_mark[k]
                    else:
                        o = float(bars.open[j])
                else:
                    o, _, _, last = self._leg_prices(self.pos_legs[k], pos)
                    if last != last:  # no trade within the staleness limit: its last known price
                        priced = False
                        o = self.last_mark[k]
                v_open += self.pos_sign[k] * self.pos_mult[k] * o

        # ---- 1. pending exit (signal, reversal, multi-leg level) at this open
        if self.direction != 0 and self.pend_exit_frac > 0.0 and priced:
            frac = self.pend_exit_frac
            exit_qty = min(self.orig_qty * frac if frac < 1.0 else self.qty, self.qty)
            if frac < 1.0:  # a partial closes whole contracts (rule 12)
                exit_qty = float(K._floor_step(exit_qty, prm[K.P_QTY_STEP]))
            if exit_qty > 0.0:
                self._exit_market(j, exit_qty, self.pend_exit_reason, v_open, float(bars.open[j]))
        if priced or self.direction == 0:  # an option without a price yet keeps its exit for the next bar
            self.pend_exit_frac = 0.0

        # ---- 2. pending staged conversion (rule 11)
        if self.direction != 0 and self.pend_convert >= 0 and not self.converted:
            o, _, _, last = self._leg_prices(self.pend_convert, pos)
            if o == o:
                credit = max(o - float(prm[K.P_HALF_SPREAD]), 0.0) * K.OPTION_MULT
                net = self.v_entry - credit
                if net >= float(prm[K.P_STAGE_MIN_DEBIT]) * K.OPTION_MULT:
                    self._convert(j, d, self.pend_convert, o, credit, net)
                else:
                    self.converted = True  # the debit left would be too small: keep the long leg
        self.pend_convert = -1

        # ---- 3. pending entry
        entered = False
        if self.pend_entry != 0 and self.direction == 0 and not (plan.is_option and self.pend_entry_day != d):
            entered = self._enter(j, d, pos)
        self.pend_entry = 0

        # ---- 4. time exits at this open (rule 8); they close even when a leg has no price within the
        # staleness limit, at its last known price (the contract's rows carry it, module note 2)
        if self.direction != 0:
            reason = -1
            if plan.sig["force_flat"][j]:
                reason = 7
            elif (
                prm[K.P_MAX_HOLD_NS] > 0
                and bars.ts[j] - self.entry_ts >= prm[K.P_MAX_HOLD_NS]
                and j != self.entry_bar
            ):
                reason = 6
            elif (
                plan.is_option
                and prm[K.P_CLOSE_BEFORE_EXP] >= 0
                and K.sessions_left(int(mkt.day_ord[d]), self.pos_exp[0], plan.sessions)
                <= prm[K.P_CLOSE_BEFORE_EXP]
                and j != self.entry_bar
            ):
                reason = 11
            if reason >= 0:
                self._exit_market(
                    j,
                    self.qty,
                    reason,
                    self.v_entry_trade if entered else v_open,
                    float(bars.open[j]),
                    stale=not (priced or entered),
                )

        # ---- 5. the resting stop and targets of a single-instrument position (rules 4, 6, 7); none on a
        # bar without a price (the kernel checks levels only on priced bars)
        self._place_resting(j, priced or entered)

    def _exit_market(
        self, j: int, exit_qty: float, reason: int, v_open: float, und_open: float, *, stale: bool = False
    ) -> None:
        """Close ``exit_qty`` units with market orders filled at this bar's open (``stale``: a leg has no
        price within the staleness limit and fills at its last known one)."""
        self._cancel_resting()
        trade = self._trade()
        action = _Action("exit", j, trade.n, trade=trade, reason=reason, exit_qty=exit_qty, stale=stale)
        action.share = self.comm_entry_left * exit_qty / self.qty
        self.comm_entry_left -= action.share
        for k in range(trade.n):
            side = self._side(trade.sign[k], opening=False)
            self._submit(self.pos_asset[k], exit_qty * trade.units[k], side, action, k)
        self.cash_pending += exit_qty * (v_open - self._cost(trade, und_open)) - self._comm(exit_qty, v_open)
        self._leave(exit_qty)

    def _convert(self, j: int, d: int, c: int, px: float, credit: float, net: float) -> None:
        """Sell the farther contract: the long leg becomes a vertical (rule 11)."""
        self._cancel_resting()
        prm = self.prm
        opt = self.plan.market.options
        short_unit = self.comm_unit_entry / abs(float(self.plan.leg_sign[0]))  # one short contract per unit
        self.pos_legs[1] = c
        self.pos_sign[1] = -1.0
        self.pos_mult[1] = K.OPTION_MULT
        self.pos_exp[1] = int(opt.c_exp[c])
        self.pos_strike[1] = float(opt.c_strike[c])
        self.pos_call[1] = bool(opt.c_call[c])
        self.pos_asset[1] = self._contract_asset(c, d)
        self.pos_units[1] = 1.0
        self.pos_ticker[1] = opt.c_ticker[c]
        self.last_mark[1] = px
        action = _Action("convert", j, 1, exit_qty=self.qty)
        self._submit(self.pos_asset[1], self.qty, "sell_to_open", action, 1)
        self.cash_pending += self.qty * credit - (
            self.qty * short_unit + float(prm[K.P_COMM_PCT]) * self.qty * credit
        )
        prm[K.P_COMM_UNIT] = self.comm_unit_entry + short_unit
        self.pos_n = 2
        self.single = False
        self.v_entry = net
        self.v_entry_trade = net
        self.best_v = net
        self.stop_v, self.tp_v = (float(x) for x in K._levels(net, 0.0, prm))
        self.converted = True

    def _enter(self, j: int, d: int, pos: int) -> bool:
        """Rule 1, 2, 12: the legs' prices at this open, the size, and market orders for every leg."""
        plan = self.plan
        prm = self.prm
        bars = plan.market.bars
        opt = plan.market.options
        legs: list[tuple[float, float, int, float]] = []  # sign, mult, contract, price
        v_fill = 0.0
        for k in range(self.n_legs):
            if plan.leg_kind[k] == 0:
                c, px, mult = -1, float(bars.open[j]), plan.mult
            else:
                c = self.pend_legs[k]
                if c < 0:
                    return False
                px = self._leg_prices(c, pos)[0]
                if px != px:
                    return False
                mult = K.OPTION_MULT
            sgn = float(plan.leg_sign[k]) if plan.leg_kind[k] == 1 else float(self.pend_entry)
            legs.append((sgn, mult, c, px))
            v_fill += sgn * mult * px
        for k, (sgn, mult, c, _) in enumerate(legs):
            self.pos_sign[k], self.pos_mult[k], self.pos_legs[k] = sgn, mult, c
            if c >= 0:
                self.pos_exp[k] = int(opt.c_exp[c])
                self.pos_strike[k] = float(opt.c_strike[c])
                self.pos_call[k] = bool(opt.c_call[c])
                self.pos_ticker[k] = opt.c_ticker[c]
                self.pos_units[k] = abs(sgn)
            else:
                self.pos_ticker[k] = ""
                self.pos_units[k] = plan.lumi_units
        self.pos_n = self.n_legs
        self.single = self.n_legs == 1
        prm[K.P_COMM_UNIT] = self.comm_unit_entry
        fresh = self._trade()
        cost = self._cost(fresh, float(bars.open[j]))
        v_pay = v_fill + cost  # what one unit costs, costs included
        eq = float(self.cash) + self.cash_pending
        stop_dist = self._stop_distance(v_pay, plan.sig["atr"][j - 1], plan.sig["sig_stop_dist"][j - 1])
        q = self._size(fresh, v_fill, v_pay, stop_dist, eq)
        step = float(prm[K.P_QTY_STEP])
        if q < step - 1e-12:
            return False
        action = _Action("entry", j, self.n_legs, exit_qty=q)
        for k, (sgn, _, c, px) in enumerate(legs):
            self.pos_asset[k] = self._contract_asset(c, d) if c >= 0 else plan.underlying
            self.last_mark[k] = px
            self._submit(self.pos_asset[k], q * self.pos_units[k], self._side(sgn, opening=True), action, k)
        comm = q * prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(q * v_fill)
        self.cash_pending -= q * v_pay + comm
        self.qty = q
        self.orig_qty = q
        self.direction = self.pend_entry
        self.v_entry = v_pay
        self.v_entry_trade = v_pay
        self.comm_entry_left = comm  # Lumibot's fees replace it when the fills arrive
        self.entry_bar = j
        self.entry_ts = int(bars.ts[j])
        self.best_v = v_pay
        self.stop_v, self.tp_v = self._entry_levels(
            v_pay, stop_dist, plan.sig["atr"][j - 1], plan.sig["sig_tp_dist"][j - 1]
        )
        self.traded_event = int(plan.sig["sig_event"][j - 1])
        self.next_partial = 0
        self.converted = False
        self.stage_und_ref = float(bars.open[j])
        self.trades_today += 1
        return True

    def _stop_distance(self, v_pay: float, atr: float, sig_stop: float) -> float:
        """The entry-to-stop distance in value units of one position unit (``risk`` sizing and the
        point, ATR and signal stops); ``atr`` and ``sig_stop`` are the decision bar's values."""
        prm = self.prm
        mult = self.plan.mult
        kind = prm[K.P_STOP_KIND]
        stop_dist = 0.0
        if kind == 1:
            stop_dist = prm[K.P_STOP_VAL] * abs(v_pay)
        elif kind == 2:
            stop_dist = prm[K.P_STOP_VAL] * mult
        elif kind == 3:
            stop_dist = prm[K.P_STOP_VAL] * atr * mult
        elif kind == 4:  # the triggering external signal's own stop, scaled (rule 13)
            stop_dist = prm[K.P_STOP_VAL] * sig_stop * mult
            if not stop_dist > 0:
                stop_dist = 0.0
        return stop_dist

    def _size(self, fresh: _Trade, v_fill: float, v_pay: float, stop_dist: float, eq: float) -> float:
        """Rule 12: the position's units from the equity ``eq`` (0.0 when the stop is unknown in
        ``risk`` mode); the caller refuses sizes below one quantity step."""
        prm = self.prm
        unit_comm = prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(v_fill)
        step = float(prm[K.P_QTY_STEP])
        mode = prm[K.P_SIZE_MODE]
        if mode == 0:
            return float(prm[K.P_QTY])
        if mode == 1:
            return float(K._floor_step(eq * prm[K.P_PCT_EQ] / (abs(v_pay) + unit_comm), step))
        if stop_dist > 0:
            # a unit stopped out loses the distance, the exit's costs and both commissions
            v_stop = v_pay - stop_dist
            exit_cost = self._cost(fresh, abs(v_stop) / self.plan.mult)
            unit_loss = (
                stop_dist + exit_cost + unit_comm + prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(v_stop)
            )
            return float(K._floor_step(eq * prm[K.P_RISK_PCT] / unit_loss, step))
        return 0.0

    def _entry_levels(self, v_pay: float, stop_dist: float, atr: float, sig_tp: float) -> tuple[float, float]:
        """(stop value, target value) of a position entered at ``v_pay`` per unit."""
        prm = self.prm
        mult = self.plan.mult
        stop_v, tp_v = (float(x) for x in K._levels(v_pay, stop_dist, prm))
        if prm[K.P_TP_KIND] == 2:
            tp_v = v_pay + prm[K.P_TP_VAL] * mult
        elif prm[K.P_TP_KIND] == 3:
            tp_v = v_pay + prm[K.P_TP_VAL] * atr * mult
        elif prm[K.P_TP_KIND] == 4 and sig_tp > 0:
            tp_v = v_pay + sig_tp * mult
        return stop_v, tp_v

    # ------------------------------------------------------------------ resting exits (rules 4, 6, 7)

    def _stop_level(self) -> tuple[float, int]:
        """The stop, break-even or trailing level in force and its reason (the kernel's one rule)."""
        level, reason = K.stop_level(float(self.stop_v), float(self.best_v), float(self.v_entry), self.prm)
        return float(level), int(reason)

    def _wanted_resting(self) -> list[tuple[str, float, float, int, int]]:
        """(kind, Lumibot price, Lumibot quantity, reason, partial index) in the fill model's order."""
        prm = self.prm
        levels: list[tuple[str, float, float, int, int]] = []
        v_entry = self.v_entry
        stop, reason = self._stop_level()
        if stop > -1e299:
            levels.append(("stop", stop, self.qty, reason, -1))
        for n in range(self.next_partial, len(self.plan.partial_pct)):
            level = v_entry + self.plan.partial_pct[n] * abs(v_entry)
            if level > self.tp_v:
                # beyond the final target: price reaches the target first and it closes everything
                # (Lumibot would fill resting orders in submission order, this one before the target)
                break
            part = float(
                K._floor_step(min(self.orig_qty * self.plan.partial_frac[n], self.qty), prm[K.P_QTY_STEP])
            )
            if part > 0:
                levels.append(("partial", level, part, 3, n))
        if self.tp_v < 1e299:
            levels.append(("target", self.tp_v, self.qty, 2, -1))
        s = self.pos_sign[0] * self.pos_mult[0]  # value of one unit per unit of the leg's price
        units = self.pos_units[0]
        return [
            (kind, _trigger_price(kind, level, s), qty * units, why, n) for kind, level, qty, why, n in levels
        ]

    def _place_resting(self, j: int, priced: bool = True) -> None:
        if self.direction == 0 or not self.single or not priced:
            self._cancel_resting()
            return
        wanted = self._wanted_resting()
        if wanted == [r.key() for r in self.resting]:
            return
        self._cancel_resting()
        side = self._side(self.pos_sign[0], opening=False)
        rises = self.pos_sign[0] < 0  # a short leg's stop and a long leg's targets trigger on a rise
        for kind, price, units, reason, n in wanted:
            if price <= 0.0:
                if rises == (kind == "stop"):
                    # every positive price touches it (a zero-basis position): the fill model's gap
                    # rule fills it at this open, which is a market order here
                    self._exit_market(j, units / self.pos_units[0], reason, *self._open_values(j))
                    return
                continue  # no positive price touches it
            action = _Action("resting", j, 1, reason=reason, rest_kind=kind, partial_index=n)
            level = {"stop_price": price} if kind == "stop" else {"limit_price": price}
            order = self._submit(self.pos_asset[0], units, side, action, 0, **level)
            self.resting.append(_Resting(order, kind, price, units, reason, n))

    def _open_values(self, j: int) -> tuple[float, float]:
        """(value of one unit, instrument price) at bar ``j``'s open, for a single-leg position."""
        bars = self.plan.market.bars
        if self.pos_legs[0] < 0:
            return self.pos_sign[0] * self.pos_mult[0] * float(bars.open[j]), float(bars.open[j])
        pos = j - int(self.plan.market.day_first_bar[int(bars.day[j])])
        o = self._leg_prices(self.pos_legs[0], pos)[0]
        return self.pos_sign[0] * self.pos_mult[0] * o, o

    def _cancel_resting(self) -> None:
        for rest in self.resting:
            self.actions.pop(rest.order.identifier, None)
            if rest.order.is_active():
                self.broker.cancel_order(rest.order)
        self.resting = []

    # ------------------------------------------------------------------ kernel steps 6-8 at bar i's close

    def _marks(self, i: int) -> tuple[float, float, bool]:
        """(value at the close, best value inside the bar, priced) of the position at bar ``i``."""
        plan = self.plan
        mkt = plan.market
        bars = mkt.bars
        pos = i - int(mkt.day_first_bar[int(bars.day[i])])
        v_close = v_best = 0.0
        priced = True
        for k in range(self.pos_n):
            if self.pos_legs[k] < 0:
                if plan.is_option:  # not traded this session: its last known price
                    priced = False
                    h = lo = c = self.last_mark[k]
                else:
                    h, lo, c = float(bars.high[i]), float(bars.low[i]), float(bars.close[i])
            else:
                _, h, lo, last = self._leg_prices(self.pos_legs[k], pos)
                if last != last:  # no trade within the staleness limit: keep the previous mark
                    priced = False
                    last = self.last_mark[k]
                    h = h if h == h else last
                    lo = lo if lo == lo else last
                c = last
                self.last_mark[k] = last
            s = self.pos_sign[k] * self.pos_mult[k]
            v_close += s * c
            v_best += s * h if s > 0 else s * lo
        if i == self.entry_bar:
            priced = True  # a position entered on this bar was priced at its fill
        return v_close, v_best, priced

    def _finish_bar(self, i: int, *, sentinel: bool) -> None:
        plan = self.plan
        prm = self.prm
        mkt = plan.market
        bars = mkt.bars
        d = int(bars.day[i])
        self.closed_upto = i
        v_close, v_best, priced = self._marks(i) if self.direction != 0 else (0.0, 0.0, True)

        # ---- 6. end of the option's life or of the window: close at this bar's close (rule 8)
        if self.direction != 0 and sentinel:
            expiring = plan.is_option and self.pos_exp[0] <= int(mkt.day_ord[d])
            if i == plan.i1 or expiring:
                self._close_at_close(i, priced, expiring)

        # ---- 7. decisions on this bar's close
        if self.direction != 0:
            self.exposure_bars += 1
            bar_best = v_best if self.single else v_close
            if priced and bar_best > self.best_v:
                self.best_v = bar_best
            if not self.single and priced:  # multi-leg: levels on close marks, filled next open (rule 5)
                self._close_mark_levels(v_close)
            if prm[K.P_STAGED] > 0 and not self.converted and self.pend_exit_frac == 0.0 and priced:
                ref = self.stage_und_ref
                move = (float(bars.close[i]) - ref) / ref * (1.0 if self.pos_call[0] else -1.0)
                prem_up = (v_close - self.v_entry) / abs(self.v_entry)
                trig = (prm[K.P_STAGE_UND_PCT] > 0 and move >= prm[K.P_STAGE_UND_PCT]) or (
                    prm[K.P_STAGE_PREM_PCT] > 0 and prem_up >= prm[K.P_STAGE_PREM_PCT]
                )
                if trig and i < plan.i1 and bars.day[i + 1] == d:
                    width = prm[K.P_STAGE_WIDTH]
                    target = self.pos_strike[0] + width if self.pos_call[0] else self.pos_strike[0] - width
                    opt = mkt.options
                    self.pend_convert = int(
                        K._find_contract(
                            opt.day_c0[d],
                            opt.day_c1[d],
                            self.pos_exp[0],
                            target,
                            self.pos_call[0],
                            opt.c_exp,
                            opt.c_strike,
                            opt.c_call,
                        )
                    )
            exit_signal = plan.sig["exit_long"][i] if self.direction > 0 else plan.sig["exit_short"][i]
            if self.pend_exit_frac == 0.0 and exit_signal:
                self.pend_exit_frac, self.pend_exit_reason = 1.0, 0
        want = 0
        dirp = prm[K.P_DIRECTION]
        if (
            i < plan.i1
            and plan.sig["entry_ok"][i]
            and (prm[K.P_MAX_TRADES_DAY] <= 0 or self.trades_today < prm[K.P_MAX_TRADES_DAY])
        ):
            if plan.sig["long"][i] and dirp >= 0:
                want = 1
            elif plan.sig["short"][i] and dirp <= 0:
                want = -1
        if want != 0 and plan.sig["sig_event"][i] >= 0 and plan.sig["sig_event"][i] == self.traded_event:
            want = 0  # an external signal event is traded at most once (rule 13)
        if want != 0 and self.direction == -want and dirp == 0:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, 10  # reversal (rule 9)
        if want != 0 and (self.direction == 0 or (self.direction == -want and dirp == 0)):
            ok = True
            if plan.is_option:
                opt = mkt.options
                pos = i - int(mkt.day_first_bar[d])
                for k in range(self.n_legs):
                    right = plan.leg_right[k]
                    self.pend_legs[k] = int(
                        K.select_contract(
                            opt.day_c0[d],
                            opt.day_c1[d],
                            pos,
                            bars.close[i],
                            bars.minute[i],
                            mkt.day_ord[d],
                            right == 0 or (right == 2 and want > 0),
                            plan.leg_dte[k],
                            plan.leg_select[k],
                            plan.leg_value[k],
                            prm[K.P_RATE],
                            opt.c_exp,
                            opt.c_strike,
                            opt.c_call,
                            opt.c_off,
                            plan.p_last,
                        )
                    )
                    ok = ok and self.pend_legs[k] >= 0
            if ok:
                self.pend_entry = want
                self.pend_entry_day = d

        # ---- 8. the mark: recorded once this bar's fills are in Lumibot's cash
        self.pending_mark = (i, v_close)
        if sentinel:
            # Lumibot checks working orders when its clock jumps to the next session's open, before
            # that session's first iteration; the fill model checks levels only after the open's exits
            # and entries (steps 1-4), so the exits rest again from the first bar of the next session
            self._cancel_resting()

    def _close_mark_levels(self, v_close: float) -> None:
        """Rule 5: a multi-leg position's stop, target and partial targets against its close mark; a hit
        becomes the pending exit filled at the next open."""
        plan = self.plan
        v_entry = self.v_entry
        gain = (v_close - v_entry) / abs(v_entry) if v_entry != 0 else 0.0
        level_stop, reason = self._stop_level()
        if level_stop > -1e299 and v_close <= level_stop:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, reason
        elif self.tp_v < 1e299 and v_close >= self.tp_v:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, 2
        elif self.next_partial < len(plan.partial_pct) and gain >= plan.partial_pct[self.next_partial]:
            self.pend_exit_frac = plan.partial_frac[self.next_partial]
            self.pend_exit_reason = 3
            self.next_partial += 1

    def _close_at_close(self, i: int, priced: bool, expiring: bool) -> None:
        """Rule 8: close at bar ``i``'s close with market orders at the sentinel (module note 1)."""
        plan = self.plan
        self._cancel_resting()
        trade = self._trade()
        reason = 9 if i == plan.i1 and not expiring else 8
        action = _Action("exit", i, trade.n, trade=trade, reason=reason, exit_qty=self.qty, stale=not priced)
        action.share = self.comm_entry_left
        self.comm_entry_left = 0.0
        und_close = float(plan.market.bars.close[i])
        for k in range(trade.n):
            units = self.qty * trade.units[k]
            if plan.is_option:
                strike, call = self.pos_strike[k], self.pos_call[k]
                intrinsic = max(und_close - strike, 0.0) if call else max(strike - und_close, 0.0)
                price = self.last_mark[k] if priced else intrinsic
            else:
                price = und_close
            if price <= 0.0:
                # worthless: Lumibot cannot fill at zero, and its expiry processing removes the
                # contract at the close; the fill model closes it at zero and pays its commission
                action.prices[k] = 0.0
                action.fees[k] = units * self.per_unit_fee
                self._book(-action.fees[k])
                continue
            self._submit(self.pos_asset[k], units, self._side(trade.sign[k], opening=False), action, k)
        self._leave(self.qty)
        if len(action.prices) == action.n_legs:
            self._finalise(action)

    # ------------------------------------------------------------------ fills (synchronous, module note 3)

    def _on_fill(self, order: Any, price: float, quantity: float) -> None:
        found = self.actions.pop(order.identifier, None)
        if found is None:
            return  # not ours (Lumibot's own expiry settlements)
        action, k = found
        fee = float(getattr(order, "trade_cost", 0.0) or 0.0)
        if action.kind == "resting":
            self._on_resting_fill(action, order, price, quantity, fee)
            return
        action.prices[k] = price
        action.fees[k] = fee
        if len(action.prices) == action.n_legs:
            self._finalise(action)

    def _finalise(self, action: _Action) -> None:
        """Book the costs Lumibot does not model and record the trade, from Lumibot's fill prices."""
        plan = self.plan
        pct_rate = float(self.prm[K.P_COMM_PCT]) if plan.own_pct else 0.0
        if action.kind == "convert":
            hs = float(self.prm[K.P_HALF_SPREAD])
            px = action.prices[1]
            q = action.exit_qty
            credit = max(px - hs, 0.0) * K.OPTION_MULT
            self._book(q * credit - q * px * K.OPTION_MULT)  # Lumibot credited the price, the model less
            pct = pct_rate * q * credit
            self._book(-pct)
            self.comm_entry_left += action.fees[1] + pct
            return
        trade = action.trade if action.trade is not None else self._trade()
        v_price = sum(float(trade.sign[k]) * float(trade.mult[k]) * action.prices[k] for k in range(trade.n))
        und = action.prices[0] if not plan.is_option else 0.0
        cost = self._cost(trade, und)
        q = action.exit_qty
        self._book(-q * cost)
        pct = pct_rate * abs(q * v_price)
        self._book(-pct)
        fees = sum(action.fees.values()) + pct
        if action.kind == "entry":
            self.comm_entry_left = fees
            return
        self._record(trade, action, v_price - cost, fees)

    def _on_resting_fill(
        self, action: _Action, order: Any, price: float, quantity: float, fee: float
    ) -> None:
        trade = self._trade()
        exit_qty = quantity / trade.units[0]
        v_price = float(trade.sign[0]) * float(trade.mult[0]) * price
        cost = self._cost(trade, abs(v_price) / self.plan.mult)
        self._book(-exit_qty * cost)
        action.bar = self._bar_now()
        action.exit_qty = exit_qty
        action.share = self.comm_entry_left * exit_qty / self.qty
        self.comm_entry_left -= action.share
        self._record(trade, action, v_price - cost, fee)
        self.resting = [r for r in self.resting if r.order.identifier != order.identifier]
        self._leave(exit_qty)
        if action.rest_kind == "partial":
            self.next_partial = action.partial_index + 1
        if self.direction == 0 or action.rest_kind != "partial":
            if self.direction != 0:
                self.failures.append(
                    f"a {action.rest_kind} order left {self.qty} units open at bar {self.cur_bar}"
                )
            self._cancel_resting()
            return
        # a partial filled: the stop and the final target behind it now close only what is left
        for rest in self.resting:
            if rest.kind in ("stop", "target"):
                rest.units = self.qty * trade.units[0]
                rest.order.quantity = rest.units

    def _bar_now(self) -> int:
        """The bar Lumibot is filling against (resting orders only fill on real bars)."""
        ns = int(round(self.broker.datetime.timestamp())) * 1_000_000_000
        bar = self.plan.bar_at.get(ns)
        if bar is None:
            self.failures.append(f"a resting order filled at {self.broker.datetime}, which is not a bar")
            return self.cur_bar
        return bar

    def _record(self, trade: _Trade, action: _Action, v_fill: float, comm: float) -> None:
        q = action.exit_qty
        self.trades.append(
            {
                "entry_bar": trade.entry_bar,
                "exit_bar": action.bar,
                "direction": trade.direction,
                "quantity": q,
                "entry_v": trade.entry_v,
                "exit_v": v_fill,
                "pnl": q * (v_fill - trade.entry_v) - comm - action.share,
                "commission": comm + action.share,
                "reason": action.reason,
                "instrument": trade.tickers if self.plan.is_option else self.plan.market.spec_symbol,
                "stale": action.stale,
            }
        )

    # ================================================================== live mode
    #
    # One decision per closed bar of the broker's data, in the kernel's order: step 7 on bar i's
    # close, then steps 1-5 at bar i + 1's open, which is now (module section "Live mode"). Fills,
    # positions and cash are the broker's; the state above follows them.

    def configure_live(
        self,
        spec: StrategySpec,
        broker_kind: str,
        *,
        sleeptime: str | None = None,
        lookback: int | None = None,
        fill_wait: float = 10.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """Live mode: decisions from the broker's bars, fills from the broker's order states."""
        plan = _live_plan(spec)
        self._init_state(plan)
        fetch, factor = _live.FETCH[spec.timeframe]
        minutes = BAR_MINUTES[spec.timeframe]
        self.live = _Live(
            broker=broker_kind,
            # a TradeLocker account hedges: a resting sell stop opens a short next to the long instead of
            # closing it, so its levels are watched here and closed with market orders (module notes)
            exits="watch" if broker_kind == "tradelocker" else "resting",
            bar_minutes=minutes,
            timestep=fetch,
            factor=factor,
            lookback=lookback or _live.default_lookback(spec),
            sleeptime=sleeptime or _live.DEFAULT_SLEEPTIME[spec.timeframe],
            include_after_hours=spec.session == "extended" or spec.instrument.type == "forex",
            fill_wait=fill_wait,
            clock=clock,
        )
        self.live_lock = threading.RLock()
        self.decided_ns = -1  # start of the last bar decided on
        self.entry_pending = False  # entry orders out, not all filled yet
        self.entry_bar_ns = 0  # start of the bar the position entered in (its best price counts from it)
        self.live_orders: dict[int, tuple[Any, _Action, int]] = {}  # id(order) -> (order, action, leg)
        self.live_pend_legs: list[_live.Contract] = []
        self.deferred: dict[str, Any] | None = None  # a reversal's entry, sent once its exit has filled
        self.settle = False  # fills were just processed: positions are compared from the next iteration
        self.live_day: dt.date | None = None
        self.live_warned: set[str] = set()
        self.live_cancelled: set[int] = set()  # id() of orders this run asked the broker to cancel
        self.set_parameters({"spec": spec.model_dump(mode="json")})

    def on_filled_order(
        self, position: Any, order: Any, price: float, quantity: float, multiplier: float
    ) -> None:
        if self.live is not None:
            with self.live_lock:
                self._live_sync()

    def on_canceled_order(self, order: Any) -> None:
        if self.live is not None:
            with self.live_lock:
                self._live_sync()

    def on_error_order(self, order: Any, error: Any = None) -> None:
        if self.live is not None:
            with self.live_lock:
                self._live_sync()

    def _live_iteration(self) -> None:
        live = self.live
        assert live is not None
        with self.live_lock:
            self._live_sync()
            if self._live_busy():
                return  # market orders still working: the next decision waits for their fills
            if self.deferred is not None:
                deferred, self.deferred = self.deferred, None
                if self.direction == 0:  # the reversal's exit filled (a refused one keeps the position)
                    self._live_enter(**deferred)
                return
            if self.settle:
                self.settle = False
            else:
                self._live_reconcile()
            if self.direction != 0 and live.exits == "watch" and self._live_watch():
                return
            market = self._live_market()
            if market is None:
                return
            i = len(market.bars) - 1
            ts_i = int(market.bars.ts[i])
            if ts_i <= self.decided_ns:
                return
            self.decided_ns = ts_i
            self._live_decide(market, i)

    # ------------------------------------------------------------------ live: data

    def _live_market(self) -> Market | None:
        live = self.live
        assert live is not None
        spec = self.plan.spec
        try:
            bars = self.get_historical_prices(
                self.plan.underlying,
                live.lookback * live.factor,
                live.timestep,
                include_after_hours=live.include_after_hours,
            )
        except Exception as exc:  # a data outage skips this iteration's decision, not the deployment
            self.log_message(f"no bars of {self.plan.underlying} from the broker: {exc}", color="yellow")
            return None
        if bars is None or getattr(bars, "df", None) is None or bars.df.empty:
            self._live_warn("bars", f"no {live.timestep} bars of {self.plan.underlying} from the broker yet")
            return None
        frame = _live.closed_bars(bars.df, spec, pd.Timestamp(live.clock(), tz="UTC"))
        if len(frame) < 2:
            return None
        return _live.frame_market(signal_symbol(spec), frame, intraday=live.bar_minutes < 1440)

    def _live_price(self, asset: Any) -> float | None:
        try:
            price = self.get_last_price(asset)
        except Exception as exc:  # a data hiccup must not end the deployment; the caller falls back
            self.log_message(f"no last price for {asset}: {exc}", color="yellow")
            return None
        if price is None:
            return None
        value = float(price)
        return value if math.isfinite(value) and value > 0 else None

    def _live_warn(self, key: str, message: str) -> None:
        if key not in self.live_warned:
            self.live_warned.add(key)
            self.log_message(message, color="yellow")

    # ------------------------------------------------------------------ live: one decision

    def _live_decide(self, market: Market, i: int) -> None:
        live = self.live
        assert live is not None
        plan = self.plan
        prm = self.prm
        spec = plan.spec
        plan.market = market
        plan.sig = sig = signal_arrays(spec, market)
        bars = market.bars
        bar_ns = live.bar_minutes * _NS_PER_MIN
        ts_i = int(bars.ts[i])
        # bar j, whose open is now: the bar after i, or the bar now forming when the data lag the clock
        ts_j = max(ts_i + bar_ns, live.clock() // bar_ns * bar_ns)
        minute_i = int(bars.minute[i])
        day_i = bars.session_dates[int(bars.day[i])]
        minute_j, day_j = _live.ny_minute_and_date(ts_j)
        # the arrays' own window and flat flags treat the last bar as its session's last (the backtest
        # knows; live, the next bar does not exist yet), so these two come from the calendar
        flat = _clock_minutes(spec.exits.eod_flat_time)
        ff_i = flat is not None and (minute_i >= flat or _live.is_last_bar(spec, ts_i, live.bar_minutes))
        ff_j = flat is not None and (minute_j >= flat or _live.is_last_bar(spec, ts_j, live.bar_minutes))
        w0, w1 = _clock_minutes(spec.entry.window_start), _clock_minutes(spec.entry.window_end)
        entry_ok = (w0 is None or minute_i >= w0) and (w1 is None or minute_i < w1) and not (ff_i or ff_j)

        # ---- 7. decisions on bar i's close
        if self.direction != 0:
            v_close, v_best, priced = self._live_marks(i)
            if priced and ts_i >= self.entry_bar_ns:
                bar_best = v_best if self.single else v_close
                if bar_best > self.best_v:
                    self.best_v = bar_best
            if not self.single and priced:
                self._close_mark_levels(v_close)
            exit_signal = sig["exit_long"][i] if self.direction > 0 else sig["exit_short"][i]
            if self.pend_exit_frac == 0.0 and exit_signal:
                self.pend_exit_frac, self.pend_exit_reason = 1.0, 0
        want = 0
        dirp = prm[K.P_DIRECTION]
        if entry_ok and (prm[K.P_MAX_TRADES_DAY] <= 0 or self.trades_today < prm[K.P_MAX_TRADES_DAY]):
            if sig["long"][i] and dirp >= 0:
                want = 1
            elif sig["short"][i] and dirp <= 0:
                want = -1
        if want != 0 and sig["sig_event"][i] >= 0 and sig["sig_event"][i] == self.traded_event:
            want = 0  # an external signal event is traded at most once (rule 13)
        if want != 0 and self.direction == -want and dirp == 0:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, 10  # reversal (rule 9)
        if want != 0 and (self.direction == 0 or (self.direction == -want and dirp == 0)):
            legs = self._live_select(want, i) if plan.is_option else []
            if legs is not None:
                self.pend_entry, self.live_pend_legs = want, legs

        # ---- 1-5 at bar j's open
        if day_j != self.live_day:
            self.live_day = day_j
            self.trades_today = 0
        if self.direction != 0 and self.pend_exit_frac > 0.0:
            frac = self.pend_exit_frac
            exit_qty = min(self.orig_qty * frac if frac < 1.0 else self.qty, self.qty)
            if frac < 1.0:  # a partial closes whole contracts (rule 12)
                exit_qty = float(K._floor_step(exit_qty, prm[K.P_QTY_STEP]))
            if exit_qty > 0.0:
                self._live_exit(exit_qty, self.pend_exit_reason)
        self.pend_exit_frac = 0.0
        entered = False
        # an option entry decided on one session never fills on the next (rule 2)
        if self.pend_entry != 0 and self.direction == 0 and not (plan.is_option and day_i != day_j):
            order = {"direction": self.pend_entry, "i": i, "legs": self.live_pend_legs, "ts_j": ts_j}
            if self._live_busy():
                self.deferred = order  # a reversal: the new position opens once the old one is closed
            else:
                entered = self._live_enter(**order)
        self.pend_entry = 0
        if self.direction != 0 and not entered and not self.entry_pending:
            reason = -1
            day_ord = _live.day_ordinal(day_j)
            later = self.entry_bar_ns < ts_j  # not the bar the position entered in
            if ff_j:
                reason = 7
            elif later and prm[K.P_MAX_HOLD_NS] > 0 and ts_j - self.entry_ts >= prm[K.P_MAX_HOLD_NS]:
                reason = 6
            elif (
                later
                and plan.is_option
                and prm[K.P_CLOSE_BEFORE_EXP] >= 0
                and _sessions_left(day_j, self.pos_exp[0]) <= prm[K.P_CLOSE_BEFORE_EXP]
            ):
                reason = 11
            elif (
                plan.is_option
                and self.pos_exp[0] <= day_ord
                and _live.is_last_bar(spec, ts_j, live.bar_minutes)
            ):
                # rule 8 closes at the expiry session's last close; live that close cannot be traded,
                # so the position closes at its last bar's open instead of being left to expire
                reason = 8
            if reason >= 0:
                self._live_exit(self.qty, reason)
        self._live_place_resting()

    def _live_marks(self, i: int) -> tuple[float, float, bool]:
        """(value at bar i's close, best value inside it, priced) of the position."""
        plan = self.plan
        bars = plan.market.bars
        if not plan.is_option:
            s = self.pos_sign[0] * self.pos_mult[0]
            h, lo, c = float(bars.high[i]), float(bars.low[i]), float(bars.close[i])
            return s * c, (s * h if s > 0 else s * lo), True
        v_close = v_best = 0.0
        priced = True
        for k in range(self.pos_n):
            h, lo, c = self._live_contract_bar(k, int(bars.ts[i]))
            if c != c:
                priced = False
                c = h = lo = self.last_mark[k]
            self.last_mark[k] = c
            s = self.pos_sign[k] * self.pos_mult[k]
            v_close += s * c
            v_best += s * h if s > 0 else s * lo
        return v_close, v_best, priced

    def _live_contract_bar(self, k: int, ts_i: int) -> tuple[float, float, float]:
        """(high, low, close) of leg ``k``'s contract in the signal bar starting ``ts_i``: its own trades
        there, else its last trade within the staleness limit (rule 10), else the quote's mid (live only:
        a position must not lose its marks because an option did not trade), else NaN."""
        live = self.live
        assert live is not None
        asset = self.pos_asset[k]
        stale = self.plan.spec.instrument.max_staleness_minutes
        end = ts_i + live.bar_minutes * _NS_PER_MIN
        nan = float("nan")
        try:
            bars = self.get_historical_prices(asset, live.bar_minutes + stale + 5, "minute")
        except Exception as exc:  # a data hiccup: fall back to the quote
            self.log_message(f"no bars for {asset}: {exc}", color="yellow")
            bars = None
        if bars is not None and getattr(bars, "df", None) is not None and not bars.df.empty:
            df = bars.df
            index = pd.DatetimeIndex(df.index)
            ns = (
                index.tz_convert("UTC") if index.tz is not None else index.tz_localize(NY).tz_convert("UTC")
            ).asi8
            inside = (ns >= ts_i) & (ns < end)
            if inside.any():
                rows = df[inside]
                return float(rows["high"].max()), float(rows["low"].min()), float(rows["close"].iloc[-1])
            before = (ns < ts_i) & (ns >= end - (stale + live.bar_minutes) * _NS_PER_MIN)
            if before.any():
                c = float(df[before]["close"].iloc[-1])
                return c, c, c
        price = self._live_price(asset)
        return (price, price, price) if price is not None else (nan, nan, nan)

    def _live_select(self, want: int, i: int) -> list[_live.Contract] | None:
        """Rule 2 live: each leg's contract from the broker's chain, by the kernel's own selection rule
        (``select_contract``) on the chain's prices; None when a leg finds no priced contract."""
        plan = self.plan
        prm = self.prm
        bars = plan.market.bars
        spot = float(bars.close[i])
        day = bars.session_dates[int(bars.day[i])]
        today = _live.day_ordinal(day)
        underlying = plan.underlying
        try:
            chains = self.get_chains(underlying)
            expiries = sorted(dt.date.fromisoformat(str(e)[:10]) for e in chains["Chains"]["CALL"])
        except Exception as exc:  # no chain: no entry this bar
            self.log_message(f"no option chain for {underlying.symbol}: {exc}", color="yellow")
            return None
        snapshot: dict[dt.date, list[_live.Contract]] = {}
        legs: list[_live.Contract] = []
        for k in range(self.n_legs):
            right = int(plan.leg_right[k])
            want_call = right == 0 or (right == 2 and want > 0)
            dte = int(plan.leg_dte[k])
            contracts: list[_live.Contract] = []
            for expiry in [e for e in expiries if (e - day).days >= dte][:3]:
                if expiry not in snapshot:
                    try:
                        snapshot[expiry] = self._live_chain(expiry, spot)
                    except Exception as exc:  # that expiry's chain is unavailable: select from the others
                        self.log_message(f"no {underlying.symbol} chain for {expiry}: {exc}", color="yellow")
                        snapshot[expiry] = []
                contracts.extend(snapshot[expiry])
            if not contracts:
                self.log_message(f"no {underlying.symbol} expiry at least {dte} days out", color="yellow")
                return None
            c_exp, c_strike, c_call, c_off, p_last = _live.chain_arrays(contracts)
            c = int(
                K.select_contract(
                    0,
                    len(contracts),
                    0,
                    spot,
                    int(bars.minute[i]),
                    today,
                    want_call,
                    dte,
                    int(plan.leg_select[k]),
                    float(plan.leg_value[k]),
                    prm[K.P_RATE],
                    c_exp,
                    c_strike,
                    c_call,
                    c_off,
                    p_last,
                )
            )
            if c < 0:
                self.log_message(
                    f"leg {k + 1}: no priced {underlying.symbol} contract in the chain", color="yellow"
                )
                return None
            legs.append(contracts[c])
        return legs

    def _live_chain(self, expiry: dt.date, spot: float) -> list[_live.Contract]:
        underlying = self.plan.underlying
        frame = self.get_chain_full_info(underlying, expiry, underlying_price=spot, risk_free_rate=0.0)
        out = []
        for row in frame.to_dict("records") if frame is not None else []:
            kind = str(row.get("option_type") or row.get("right") or "").lower()
            if kind not in ("call", "put") or row.get("strike") is None:
                continue
            out.append(
                _live.Contract(
                    expiry, float(row["strike"]), kind == "call", _live.chain_price(row), underlying.symbol
                )
            )
        return out

    # ------------------------------------------------------------------ live: orders

    def _live_submit(self, orders: list[Any], action: _Action, *, what: str) -> Any:
        """Submit one order, or a multi-leg order, and track it: the order Lumibot tracks (the parent of
        a multi-leg order), or None when it never reached the broker (refused by the deployment's risk
        guard, or by the broker at once)."""
        try:
            if len(orders) == 1:
                result = self.submit_order(orders[0])
            else:
                result = self.submit_order(orders, is_multileg=True, order_type="market", duration="day")
        except Exception as exc:  # the broker client raised: nothing is working at the broker
            self.log_message(f"{what}: submitting failed: {exc}", color="red")
            return None
        placed = result[0] if isinstance(result, list) and result else result
        if placed is None or isinstance(placed, list):
            self.log_message(f"{what}: refused before reaching the broker", color="red")
            return None
        if getattr(placed, "identifier", None) is None or placed.is_canceled():
            self.log_message(f"{what}: the broker refused it ({getattr(placed, 'status', '?')})", color="red")
            return None
        self.live_orders[id(placed)] = (placed, action, 0 if len(orders) == 1 else -1)
        return placed

    def _live_order(self, asset: Any, units: float, side: str, **kwargs: Any) -> Any:
        quantity = round(units, 8)
        # whole shares and contracts go out as integers ("3", not "3.0"), forex units as they are
        return self.create_order(asset, int(quantity) if quantity.is_integer() else quantity, side, **kwargs)

    def _live_enter(self, direction: int, i: int, legs: list[_live.Contract], ts_j: int) -> bool:
        """Steps 3 live: size from the broker's equity and current prices, market orders for every leg."""
        plan = self.plan
        prm = self.prm
        bars = plan.market.bars
        sig = plan.sig
        rows: list[tuple[float, float, Any, float]] = []  # sign, mult, asset, price
        if plan.is_option:
            for k, contract in enumerate(legs):
                if not math.isfinite(contract.price):
                    return False
                asset = Asset(
                    plan.spec.instrument.symbol,
                    asset_type="option",
                    expiration=contract.expiry,
                    strike=contract.strike,
                    right="CALL" if contract.call else "PUT",
                    multiplier=int(K.OPTION_MULT),
                )
                rows.append((float(plan.leg_sign[k]), K.OPTION_MULT, asset, contract.price))
                self.pos_exp[k] = _live.day_ordinal(contract.expiry)
                self.pos_strike[k] = contract.strike
                self.pos_call[k] = contract.call
                self.pos_ticker[k] = contract.ticker
        else:
            price = self._live_price(plan.underlying) or float(bars.close[i])
            rows.append((float(direction), plan.mult, plan.underlying, price))
        for k, (sgn, mult, asset, px) in enumerate(rows):
            self.pos_sign[k], self.pos_mult[k], self.pos_asset[k] = sgn, mult, asset
            self.pos_legs[k] = k if plan.is_option else -1
            self.pos_units[k] = abs(sgn) if plan.is_option else plan.lumi_units
            self.last_mark[k] = px
            if not plan.is_option:
                self.pos_ticker[k] = ""
        self.pos_n = len(rows)
        self.single = self.pos_n == 1
        prm[K.P_COMM_UNIT] = self.comm_unit_entry
        fresh = self._trade()
        v_fill = sum(sgn * mult * px for sgn, mult, _, px in rows)
        v_pay = v_fill + self._cost(fresh, rows[0][3])
        value = self.get_portfolio_value()
        if value is None and prm[K.P_SIZE_MODE] != 0:  # sized from equity the broker did not report
            self.log_message("no account value from the broker: entry skipped", color="yellow")
            return False
        equity = float(value or 0.0)
        context = (float(sig["atr"][i]), float(sig["sig_stop_dist"][i]), float(sig["sig_tp_dist"][i]))
        stop_dist = self._stop_distance(v_pay, context[0], context[1])
        q = self._size(fresh, v_fill, v_pay, stop_dist, equity)
        label = "long" if direction > 0 else "short"
        if q < float(prm[K.P_QTY_STEP]) - 1e-12:
            self.log_message(f"{label} entry signal at bar {_stamp(bars.ts[i])}, but the size rounds to zero")
            return False
        action = _Action("entry", 0, self.pos_n, exit_qty=q, context=context)
        orders = [
            self._live_order(self.pos_asset[k], q * self.pos_units[k], self._side(rows[k][0], opening=True))
            for k in range(self.pos_n)
        ]
        what = f"{label} entry of {q:g} {self._live_label()}"
        if self._live_submit(orders, action, what=what) is None:
            self.pos_n = 0
            return False
        self.qty = self.orig_qty = q
        self.direction = direction
        self.v_entry = self.v_entry_trade = self.best_v = v_pay  # until the fills arrive
        self.stop_v, self.tp_v = self._entry_levels(v_pay, stop_dist, context[0], context[2])
        self.entry_bar_ns = self.entry_ts = ts_j
        self.traded_event = int(sig["sig_event"][i])
        self.next_partial = 0
        self.converted = False
        self.trades_today += 1
        self.entry_pending = True
        self.log_message(f"{what}: signal at bar {_stamp(bars.ts[i])}")
        self._live_wait_for_fills()
        return True

    def _live_wait_for_fills(self) -> None:
        """Wait (briefly) for a market entry's fills, so its resting exits go out within seconds rather
        than at the next iteration; the broker's polling thread updates the orders meanwhile."""
        live = self.live
        assert live is not None
        deadline = time.monotonic() + live.fill_wait
        while self.entry_pending and time.monotonic() < deadline:
            time.sleep(0.1)
            self._live_sync()

    def _live_exit(self, exit_qty: float, reason: int) -> None:
        """Close ``exit_qty`` units with market orders (steps 1 and 4 live)."""
        self._live_cancel_resting()
        trade = self._trade()
        action = _Action("exit", 0, trade.n, trade=trade, reason=reason, exit_qty=exit_qty)
        action.restore = (self.direction, self.qty)
        orders = [
            self._live_order(
                self.pos_asset[k], exit_qty * trade.units[k], self._side(float(trade.sign[k]), opening=False)
            )
            for k in range(trade.n)
        ]
        what = f"{EXIT_REASONS[reason]} exit of {exit_qty:g} {self._live_label()}"
        if self._live_submit(orders, action, what=what) is None:
            return
        self.log_message(what)
        self._leave(exit_qty)

    def _live_value_text(self, v: float) -> str:
        """A unit's value as a trader reads it: the price of a single instrument, else the net value."""
        if self.pos_n == 1 and not self.plan.is_option:
            return f"at {v / (self.pos_sign[0] * self.pos_mult[0]):.6g}"
        if self.pos_n == 1:
            return f"at {v / (self.pos_sign[0] * self.pos_mult[0]):.4g} a share"
        return f"net value {v:,.2f} a unit"

    def _live_label(self) -> str:
        plan = self.plan
        if plan.is_option:
            return "+".join(t.removeprefix("O:") for t in self.pos_ticker[: self.pos_n] if t)
        return str(plan.underlying.symbol)

    def _live_place_resting(self) -> None:
        """Rules 4, 6, 7 live: the stop, partial targets and target of a single-instrument position rest
        at the broker (GTC), re-placed when a level moves; prices on the broker's tick grid."""
        live = self.live
        assert live is not None
        if live.exits != "resting" or self.direction == 0 or not self.single or self.entry_pending:
            if self.resting and (self.direction == 0 or not self.single):
                self._live_cancel_resting()
            return
        rises = self.pos_sign[0] < 0  # a short leg's stop and a long leg's targets trigger on a rise
        wanted = []
        for kind, price, units, reason, n in self._wanted_resting():
            if price > 0.0:
                up = rises == (kind == "stop")
                tick = _live.price_tick(
                    self.plan.spec.instrument.type, price, str(self.plan.underlying.symbol)
                )
                price = _live.round_to_tick(price, tick, up=up)
            wanted.append((kind, price, round(units, 8), reason, n))
        if wanted == [r.key() for r in self.resting]:
            return
        self._live_cancel_resting()
        side = self._side(self.pos_sign[0], opening=False)
        for kind, price, units, reason, n in wanted:
            if price <= 0.0:
                if rises == (kind == "stop"):
                    self._live_exit(units / self.pos_units[0], reason)  # every price touches it
                    return
                continue
            action = _Action("resting", 0, 1, reason=reason, rest_kind=kind, partial_index=n)
            level = {"stop_price": price} if kind == "stop" else {"limit_price": price}
            order = self._live_order(self.pos_asset[0], units, side, time_in_force="gtc", **level)
            placed = self._live_submit([order], action, what=f"resting {kind} at {price:g}")
            if placed is not None:
                self.resting.append(_Resting(placed, kind, price, units, reason, n))

    def _live_cancel(self, order: Any) -> None:
        if id(order) in self.live_cancelled or not order.is_active():
            return  # asked once already: the broker's answer arrives with a poll
        self.live_cancelled.add(id(order))
        try:
            self.cancel_order(order)
        except Exception as exc:  # already final at the broker: its state arrives with the next poll
            self.log_message(f"cancelling {order}: {exc}", color="yellow")

    def _live_cancel_resting(self) -> None:
        for rest in self.resting:
            self.live_orders.pop(id(rest.order), None)
            self._live_cancel(rest.order)
        self.resting = []

    def _live_watch(self) -> bool:
        """Watch mode (rules 4, 6, 7 where resting exits cannot rest): the resting levels against the
        broker's current price, closed with a market order when touched. True if an exit went out."""
        if self.entry_pending or not self.single:
            return False
        price = self._live_price(self.pos_asset[0])
        if price is None:
            return False
        rises = self.pos_sign[0] < 0
        for kind, level, units, reason, n in self._wanted_resting():
            up = rises == (kind == "stop")
            if (price >= level) if up else (price <= level):
                if kind == "partial":
                    self.next_partial = n + 1
                self.log_message(f"{kind} level {level:g} touched at {price:g}")
                self._live_exit(units / self.pos_units[0], reason)
                return True
        return False

    # ------------------------------------------------------------------ live: the broker's answers

    def _live_busy(self) -> bool:
        return any(action.kind in ("entry", "exit") for _, action, _ in self.live_orders.values())

    def _live_sync(self) -> None:
        """Apply every tracked order that reached a final state (filled, canceled, refused)."""
        for key, (order, action, k) in list(self.live_orders.items()):
            if order.is_filled():
                del self.live_orders[key]
                self.settle = True
                self._live_filled(order, action, k)
            elif order.is_canceled():
                del self.live_orders[key]
                self.settle = True
                self._live_dead(order, action)

    def _live_filled(self, order: Any, action: _Action, k: int) -> None:
        qty = abs(float(order.quantity or 0.0))
        price = _fill_price(order)
        if action.kind == "resting":
            self._live_resting_filled(order, action, price if price is not None else 0.0, qty)
            return
        if k >= 0:
            action.prices[k] = price if price is not None else self.last_mark[k]
        else:  # a multi-leg order: its legs' prices, else the quotes
            children = list(getattr(order, "child_orders", None) or [])
            for leg in range(action.n_legs):
                child = next((c for c in children if _same_asset(c.asset, self.pos_asset[leg])), None)
                px = _fill_price(child) if child is not None else None
                action.prices[leg] = px if px is not None else (self._live_price(self.pos_asset[leg]) or 0.0)
        if len(action.prices) < action.n_legs:
            return
        trade = action.trade if action.trade is not None else self._trade()
        v_fill = sum(float(trade.sign[j]) * float(trade.mult[j]) * action.prices[j] for j in range(trade.n))
        if action.kind == "exit":
            pnl = action.exit_qty * (v_fill - trade.entry_v)
            self.log_message(
                f"closed {action.exit_qty:g} units ({EXIT_REASONS[action.reason]}, {self._live_value_text(v_fill)}): "
                f"about {pnl:+,.2f} before commissions"
            )
            return
        for j in range(trade.n):
            self.last_mark[j] = action.prices[j]
        atr, sig_stop, sig_tp = action.context
        stop_dist = self._stop_distance(v_fill, atr, sig_stop)
        self.v_entry = self.v_entry_trade = self.best_v = v_fill
        self.stop_v, self.tp_v = self._entry_levels(v_fill, stop_dist, atr, sig_tp)
        self.entry_pending = False
        self.log_message(
            f"entered {self.direction * self.qty:+g} {self._live_label()} ({self._live_value_text(v_fill)})"
        )
        self._live_place_resting()

    def _live_resting_filled(self, order: Any, action: _Action, price: float, quantity: float) -> None:
        exit_qty = min(quantity / self.pos_units[0], self.qty)
        self.resting = [r for r in self.resting if r.order is not order]
        self.log_message(f"{action.rest_kind} filled: {exit_qty:g} {self._live_label()} at {price:g}")
        self._leave(exit_qty)
        if action.rest_kind == "partial":
            self.next_partial = action.partial_index + 1
        if self.direction == 0 or action.rest_kind != "partial":
            self._live_cancel_resting()
            if self.direction != 0:
                self.log_message(f"a {action.rest_kind} left {self.qty:g} units open", color="yellow")
            return
        # a partial filled: the stop and the final target behind it now close only what is left
        self._live_cancel_resting()
        self._live_place_resting()

    def _live_dead(self, order: Any, action: _Action) -> None:
        why = getattr(order, "error_message", None) or getattr(order, "status", "canceled")
        if action.kind == "entry":
            self.log_message(f"the entry order {order} did not fill ({why}); staying flat", color="red")
            for other, other_action, _ in list(self.live_orders.values()):
                if other_action is action:
                    self._live_cancel(other)
            self.direction, self.qty, self.orig_qty, self.pos_n = 0, 0.0, 0.0, 0
            self.entry_pending = False
        elif action.kind == "exit":
            direction, qty = action.restore
            self.log_message(
                f"the exit order {order} did not fill ({why}); retrying at the next bar", color="red"
            )
            if self.direction == 0:
                self.direction, self.qty = direction, qty
            self.pend_exit_frac, self.pend_exit_reason = 1.0, action.reason
        else:
            self.resting = [r for r in self.resting if r.order is not order]  # re-placed at the next bar

    def _live_reconcile(self) -> None:
        """The broker's position is the truth: adopt one this strategy does not know (a restart, a manual
        trade), forget one that is gone (a resting exit filled unseen, a manual close)."""
        plan = self.plan
        if plan.is_option:
            held = self._live_option_positions()
            units = 0.0 if not held else 1.0
        else:
            position = self.get_position(plan.underlying)
            units = float(position.quantity) if position is not None and position.quantity else 0.0
            held = [(plan.underlying, units, getattr(position, "avg_fill_price", None))] if units else []
        if self.direction == 0 and held:
            self._live_adopt(held)
        elif self.direction != 0 and not held:
            self.log_message(f"{self._live_label()} is flat at the broker; forgetting the position")
            self._live_cancel_resting()
            self.direction, self.qty, self.pos_n = 0, 0.0, 0
        if self.direction != 0:
            self._live_cancel_foreign()
        if self.direction != 0 and not plan.is_option:
            qty = abs(units) / self.pos_units[0]
            if (units > 0) != (self.direction > 0):
                self.log_message(
                    f"the broker holds {units:+g} {self._live_label()}, opposite to this strategy's position"
                )
                self._live_cancel_resting()
                self.direction, self.qty, self.pos_n = 0, 0.0, 0
                self._live_adopt(held)
            elif abs(qty - self.qty) > 1e-9:
                self.log_message(f"the broker holds {units:+g} {self._live_label()}; following it")
                self.qty = qty
                self._live_place_resting()

    def _live_cancel_foreign(self) -> None:
        """Cancel working orders on the position's instruments that this run did not place (an earlier
        run's resting exits after a restart): the deployment owns the instrument, and a second set of
        exits would close the position twice."""
        mine = {id(order) for order, _, _ in self.live_orders.values()}
        assets = [self.pos_asset[k] for k in range(self.pos_n)]
        for order in self.get_orders():
            if id(order) in mine or not order.is_active() or order.order_type == "market":
                continue  # an earlier run's market orders fill (or fail) on their own
            if any(_same_asset(order.asset, asset) for asset in assets):
                self.log_message(f"cancelling {order}: left working by an earlier run")
                self._live_cancel(order)

    def _live_option_positions(self) -> list[tuple[Any, float, float | None]]:
        symbol = str(self.plan.underlying.symbol)
        out = []
        for position in self.get_positions():
            asset = position.asset
            if (
                str(asset.asset_type) == "option"
                and str(asset.symbol) == symbol
                and float(position.quantity or 0)
            ):
                out.append((asset, float(position.quantity), getattr(position, "avg_fill_price", None)))
        return out

    def _live_cost_basis(self) -> dict[str, float]:
        """Average price per share of each position as the broker books it, by broker symbol (OCC for
        options). Lumibot's Tradier positions carry no average price; Tradier's cost basis has it."""
        tradier = getattr(self.broker, "tradier", None)
        if tradier is None:
            return {}
        try:
            frame = tradier.account.get_positions()
        except Exception as exc:  # the levels then start from the current price
            self.log_message(f"no cost basis from the broker: {exc}", color="yellow")
            return {}
        out = {}
        for row in frame.to_dict("records") if frame is not None else []:
            symbol, qty, basis = str(row.get("symbol") or ""), row.get("quantity"), row.get("cost_basis")
            if not symbol or not qty or basis is None:
                continue
            mult = K.OPTION_MULT if len(symbol) > 15 and symbol[-9] in "CP" else 1.0
            out[symbol] = abs(float(basis) / (float(qty) * mult))
        return out

    def _live_adopt(self, held: list[tuple[Any, float, float | None]]) -> None:
        """Take over positions found at the broker: levels from their average prices."""
        plan = self.plan
        if any(not avg for _, _, avg in held):
            basis = self._live_cost_basis()
            held = [(asset, q, avg or basis.get(_broker_symbol(asset)) or None) for asset, q, avg in held]
        if plan.is_option:
            size = min(abs(q) for _, q, _ in held)
            for k, (asset, q, avg) in enumerate(held[:4]):
                self.pos_sign[k] = (1.0 if q > 0 else -1.0) * abs(q) / size
                self.pos_mult[k] = K.OPTION_MULT
                self.pos_asset[k] = asset
                self.pos_legs[k] = k
                self.pos_units[k] = abs(q) / size
                self.pos_exp[k] = _live.day_ordinal(asset.expiration)
                self.pos_strike[k] = float(asset.strike)
                self.pos_call[k] = str(asset.right).upper().startswith("C")
                self.pos_ticker[k] = _live.Contract(
                    asset.expiration, float(asset.strike), self.pos_call[k], 0.0, str(asset.symbol)
                ).ticker
                self.last_mark[k] = float(avg) if avg else (self._live_price(asset) or 0.0)
            self.pos_n = min(len(held), 4)
            self.qty = self.orig_qty = size
            self.direction = 1
        else:
            asset, units, avg = held[0]
            self.direction = 1 if units > 0 else -1
            self.pos_sign[0], self.pos_mult[0], self.pos_asset[0] = float(self.direction), plan.mult, asset
            self.pos_legs[0], self.pos_units[0], self.pos_ticker[0] = -1, plan.lumi_units, ""
            self.pos_n = 1
            self.qty = self.orig_qty = abs(units) / plan.lumi_units
            self.last_mark[0] = float(avg) if avg else (self._live_price(asset) or 0.0)
        self.single = self.pos_n == 1
        v = sum(self.pos_sign[k] * self.pos_mult[k] * self.last_mark[k] for k in range(self.pos_n))
        atr = float(self.plan.sig["atr"][-1]) if self.plan.sig else float("nan")
        stop_dist = self._stop_distance(v, atr, float("nan"))
        self.v_entry = self.v_entry_trade = self.best_v = v
        self.stop_v, self.tp_v = self._entry_levels(v, stop_dist, atr, float("nan"))
        assert self.live is not None
        bar_ns = self.live.bar_minutes * _NS_PER_MIN
        now = self.live.clock()
        self.entry_bar_ns = self.entry_ts = now // bar_ns * bar_ns  # held from this bar on
        self.next_partial = 0
        self.entry_pending = False
        # a position found at the broker is one of today's trades: a restart must not add one more
        self.live_day = pd.Timestamp(now, tz="UTC").tz_convert(NY).date()
        self.trades_today = max(self.trades_today, 1)
        self.log_message(
            f"holding {self.direction * self.qty:+g} {self._live_label()} found at the broker; levels from its "
            f"average price ({self._live_value_text(v)})"
        )
        self._live_cancel_foreign()
        self._live_place_resting()


# --------------------------------------------------------------------------- running one backtest


def _fees(plan: _Plan) -> tuple[list[Any], float]:
    """Lumibot TradingFee objects for the spec's commissions, and the fee per Lumibot quantity unit."""
    spec = plan.spec
    costs = spec.costs
    inst = spec.instrument
    if inst.type == "stock":
        per_unit, price_factor = costs.commission_per_share, 1.0
    elif inst.type == "option":
        per_unit, price_factor = costs.commission_per_contract, K.OPTION_MULT
    elif inst.type == "future":
        per_unit, price_factor = costs.commission_per_contract, FUTURES[inst.symbol].multiplier
    else:
        per_unit, price_factor = costs.commission_per_lot / plan.mult, 1.0
    pct = 0.0 if plan.own_pct else costs.commission_pct * price_factor
    if per_unit == 0.0 and pct == 0.0:
        return [], 0.0
    return [TradingFee(per_contract_fee=per_unit, percent_fee=pct, maker=True, taker=True)], per_unit


def _run_here(
    spec: StrategySpec, market: Market, start: dt.date, end: dt.date, run_dir: Path
) -> BacktestResult:
    plan = _build_plan(spec, market, start, end)
    bars = market.bars
    frame = _underlying_frame(plan)
    first = pd.Timestamp(int(bars.ts[plan.i0]), tz="UTC").tz_convert(NY)
    last = pd.Timestamp(int(bars.ts[plan.i1]) + 2 * _NS_PER_MIN, tz="UTC").tz_convert(NY)
    t_start = dt.datetime.combine(first.date(), dt.time(0, 0))
    t_end = dt.datetime.combine(last.date(), dt.time(23, 59))
    with lumibot_environment(run_dir):
        data = Data(plan.underlying, frame, timestep="minute", quote=_USD)
        source = PandasDataBacktesting(
            datetime_start=t_start,
            datetime_end=t_end,
            pandas_data=[data],
            auto_adjust=False,
            show_progress_bar=False,
        )
        broker = _SpecBroker(source)
        fees, per_unit_fee = _fees(plan)
        strategy = SpecStrategy(
            broker,
            minutes_before_closing=0,
            minutes_before_opening=0,
            sleeptime="1M",
            risk_free_rate=0.0,
            benchmark_asset=None,
            analyze_backtest=False,
            backtesting_start=t_start,
            backtesting_end=t_end,
            pandas_data=[data],
            name=f"spec_{spec.name}",
            budget=spec.initial_cash,
            buy_trading_fees=fees,
            sell_trading_fees=fees,
            save_logfile=False,
            should_backup_variables_to_database=False,
            should_send_summary_to_discord=False,
        )
        strategy.configure(plan, per_unit_fee)
        trader = Trader(backtest=True, quiet_logs=True)
        trader.add_strategy(strategy)
        try:
            trader.run_all(show_plot=False, show_tearsheet=False, save_tearsheet=False, show_indicators=False)
            strategy._check_unfilled()
            strategy._record_pending_mark()
        finally:
            # Lumibot leaves its broker stream and a data thread pool running after a backtest
            broker.cleanup_streams()
            source.shutdown()
    if strategy.failures:
        raise RuntimeError(
            f"the lumibot run of {spec.name!r} broke the fill model: " + "; ".join(strategy.failures[:5])
        )
    return _result(plan, strategy)


def _result(plan: _Plan, strategy: SpecStrategy) -> BacktestResult:
    spec, market = plan.spec, plan.market
    rows = strategy.trades

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.array([r[name] for r in rows], dtype=dtype)

    trades = trades_frame(
        spec,
        market,
        entry_bar=column("entry_bar", np.int64),
        exit_bar=column("exit_bar", np.int64),
        direction=column("direction", np.int64),
        quantity=column("quantity", np.float64),
        entry_v=column("entry_v", np.float64),
        exit_v=column("exit_v", np.float64),
        pnl=column("pnl", np.float64),
        commission=column("commission", np.float64),
        reason=column("reason", np.int64),
        instrument=[r["instrument"] for r in rows],
        stale=column("stale", np.bool_),
        unit_mult=plan.mult,
    )
    return build_result(
        spec, market, trades, strategy.equity, plan.i0, plan.i1, strategy.exposure_bars, engine="lumibot"
    )


def _child_main(folder: str) -> None:
    """Entry point of the child process that runs a backtest for a caller off the main thread."""
    base = Path(folder)
    job = pickle.loads((base / _CHILD_INPUT).read_bytes())
    try:
        spec = StrategySpec.model_validate_json(job["spec"])
        outcome: Any = _run_here(spec, job["market"], job["start"], job["end"], base)
    except Exception as exc:  # handed to the parent, which raises it there
        outcome = exc
    (base / _CHILD_OUTPUT).write_bytes(pickle.dumps(outcome))


def _run_in_child(
    spec: StrategySpec, market: Market, start: dt.date, end: dt.date, run_dir: Path
) -> BacktestResult:
    """Run in a fresh interpreter: Lumibot's environment and working directory are process-wide, so a
    run started off the main thread (a thread pool, a threaded actor) must not change them under
    its neighbours."""
    job = {"spec": spec.model_dump_json(), "market": market, "start": start, "end": end}
    (run_dir / _CHILD_INPUT).write_bytes(pickle.dumps(job))
    code = "import sys; from evaluator.lumibot_engine import _child_main; _child_main(sys.argv[1])"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(run_dir)],
            cwd=run_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        output = run_dir / _CHILD_OUTPUT
        if done.returncode != 0 or not output.exists():
            raise RuntimeError(
                f"the lumibot child process for {spec.name!r} failed (exit code {done.returncode}):\n"
                f"{done.stderr[-2000:]}"
            )
        outcome = pickle.loads(output.read_bytes())
    finally:
        for name in (_CHILD_INPUT, _CHILD_OUTPUT):
            (run_dir / name).unlink(missing_ok=True)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def run(
    spec: StrategySpec,
    market: Market,
    start: dt.date,
    end: dt.date,
    *,
    run_dir: Path | None = None,
) -> BacktestResult:
    """Backtest ``spec`` with Lumibot on the sessions of ``market`` between ``start`` and ``end`` inclusive.

    Lumibot runs in ``run_dir`` (default: a temporary folder, removed afterwards), so nothing is written
    to the caller's working directory, and nothing is fetched from the network. Off the main thread the
    backtest runs in a child process (see the module docstring). Raises ``NotImplementedError`` for
    specs the engine cannot run (see :func:`_build_plan`) and ``RuntimeError`` if Lumibot's fills
    broke the fill model (an order that should have filled did not).
    """
    with contextlib.ExitStack() as stack:
        if run_dir is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lumibot_run_")))
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        if threading.current_thread() is threading.main_thread():
            return _run_here(spec, market, start, end, run_dir)
        return _run_in_child(spec, market, start, end, run_dir)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- live trading


class UnsupportedLive(ValueError):
    """SpecStrategy cannot trade this spec live (or not on this broker); the message says why."""


# the instruments each broker's Lumibot glue trades live
_LIVE_BROKERS = {"tradier": ("stock", "option"), "tradelocker": ("forex",)}
_NO_END = 1 << 62  # live plans have no window end


@dataclass(frozen=True)
class _Live:
    """How a live SpecStrategy reads and trades its broker (see :meth:`SpecStrategy.configure_live`)."""

    broker: str  # tradier | tradelocker | another Lumibot broker's name
    exits: str  # resting: single-instrument levels rest at the broker; watch: checked at each iteration
    bar_minutes: int
    timestep: str  # the Lumibot timestep fetched
    factor: int  # fetched bars per signal bar
    lookback: int  # signal bars per decision
    sleeptime: str
    include_after_hours: bool
    fill_wait: float  # seconds an entry waits for its fills inside the iteration
    clock: Callable[[], int] = time.time_ns  # now, in ns since the epoch (the bar whose open is now)


def _broker_kind(broker: Any) -> str:
    """``tradier``, ``tradelocker`` or the lower-cased name of another Lumibot broker."""
    name = str(getattr(broker, "name", "") or getattr(broker, "NAME", "") or type(broker).__name__).lower()
    for kind in _LIVE_BROKERS:
        if kind in name:
            return kind
    return name


def live_problem(spec: StrategySpec, broker: Any = None) -> str | None:
    """Why SpecStrategy cannot trade ``spec`` live (on ``broker``: a Lumibot broker or its name), or None."""
    inst = spec.instrument
    problems = []
    if inst.type == "future":
        problems.append(
            "futures (neither broker trades them here: Tradier's futures API is behind a feature flag and "
            "TradeLocker accounts hold FX and CFDs); trade the underlying index ETF or backtest only"
        )
    if inst.type == "option" and inst.staged is not None:
        problems.append(
            "instrument.staged (a staged conversion is backtested only; remove it to trade the spec's legs)"
        )
    pcts = [p.pct for p in spec.exits.partial_take_profits]
    if pcts != sorted(pcts) and (inst.type != "option" or len(inst.legs) == 1):
        problems.append(
            f"exits.partial_take_profits must have ascending pct (they rest together), got {pcts}"
        )
    if broker is not None:
        kind = broker if isinstance(broker, str) else _broker_kind(broker)
        allowed = _LIVE_BROKERS.get(kind.lower())
        if allowed is not None and inst.type not in allowed:
            problems.append(f"{inst.type} instruments on {kind} ({kind} trades {' and '.join(allowed)} here)")
    if not problems:
        return None
    return f"spec {spec.name!r} cannot trade live: " + "; ".join(problems)


def _live_plan(spec: StrategySpec) -> _Plan:
    """The static part of a plan for live trading; ``market`` and ``sig`` are set at each decision."""
    return _spec_plan(
        spec,
        market=None,  # the first decision's market
        i0=0,
        i1=_NO_END,
        sig={},
        p_last=np.zeros(0),
        bar_at={},
        sentinel_at={},
        close_days=set(),
    )


def live_strategy(
    broker: Any,
    spec: StrategySpec,
    *,
    name: str,
    sleeptime: str | None = None,
    lookback: int | None = None,
    fill_wait: float = 10.0,
    clock: Callable[[], int] = time.time_ns,
) -> SpecStrategy:
    """A :class:`SpecStrategy` trading ``spec`` live (paper or real money: the broker decides) on a Lumibot
    ``broker``, ready for ``Trader.add_strategy``.

    ``sleeptime``: Lumibot's iteration interval (default by timeframe: one minute for intraday bars);
    ``lookback``: signal bars fetched per decision (default :func:`evaluator._live.default_lookback`);
    ``fill_wait``: seconds an entry waits in its iteration for the broker's fills before its resting exits
    go out (they follow at a later iteration otherwise); ``clock``: now in ns since the epoch (the wall
    clock; a test drives decisions bar by bar with its own). Raises :class:`UnsupportedLive` (a ValueError) for
    what the live mode does not trade (:func:`live_problem`).
    """
    problem = live_problem(spec, broker)
    if problem is not None:
        raise UnsupportedLive(problem)
    strategy = SpecStrategy(
        broker=broker,
        name=name,
        sleeptime=sleeptime or _live.DEFAULT_SLEEPTIME[spec.timeframe],
        minutes_before_closing=0,
        risk_free_rate=0.0,  # else Lumibot fetches ^IRX from Yahoo
        benchmark_asset=None,
        should_backup_variables_to_database=False,
        should_send_summary_to_discord=False,
    )
    strategy.configure_live(
        spec, _broker_kind(broker), sleeptime=sleeptime, lookback=lookback, fill_wait=fill_wait, clock=clock
    )
    return strategy


def _sessions_left(today: dt.date, expiry_ord: int) -> int:
    """Live: NYSE sessions after ``today`` up to and including the expiry (``K.sessions_left`` in a
    backtest), for ``close_days_before_expiry``."""
    from data.calendar import nyse_session_dates

    expiry = _EPOCH + dt.timedelta(days=int(expiry_ord))
    if expiry <= today:
        return 0
    return len(nyse_session_dates(today + dt.timedelta(days=1), expiry))


def _clock_minutes(text: str | None) -> int | None:
    if text is None:
        return None
    t = dt.time.fromisoformat(text)
    return t.hour * 60 + t.minute


def _stamp(ns: Any) -> str:
    return pd.Timestamp(int(ns), tz="UTC").tz_convert(NY).strftime("%Y-%m-%d %H:%M")


def _fill_price(order: Any) -> float | None:
    """An order's average fill price, unrounded (Lumibot's ``get_fill_price`` rounds to cents, which
    would move a forex position's levels by up to half a cent)."""
    price = getattr(order, "avg_fill_price", None)
    if price is None:
        fills = [
            (t.price, t.quantity) for t in getattr(order, "transactions", None) or [] if t.price is not None
        ]
        total = sum(float(q) for _, q in fills)
        price = sum(float(p) * float(q) for p, q in fills) / total if total else None
    if price is None:
        return None
    value = float(price)
    return value if math.isfinite(value) and value > 0 else None


def _broker_symbol(asset: Any) -> str:
    """The broker's symbol of a Lumibot asset: the ticker, or the OCC symbol of an option."""
    if str(asset.asset_type) != "option":
        return str(asset.symbol)
    right = "C" if str(asset.right).upper().startswith("C") else "P"
    return f"{asset.symbol}{asset.expiration:%y%m%d}{right}{round(float(asset.strike) * 1000):08d}"


def _same_asset(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return (
        str(a.symbol) == str(b.symbol)
        and str(a.asset_type) == str(b.asset_type)
        and getattr(a, "expiration", None) == getattr(b, "expiration", None)
        and float(getattr(a, "strike", 0) or 0) == float(getattr(b, "strike", 0) or 0)
        and str(getattr(a, "right", "") or "").upper()[:1] == str(getattr(b, "right", "") or "").upper()[:1]
    )


__all__ = [
    "SpecStrategy",
    "UnsupportedLive",
    "live_problem",
    "live_strategy",
    "lumibot_environment",
    "run",
]
