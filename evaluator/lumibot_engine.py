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
A live deployment recomputes those arrays from the broker's bars with :mod:`evaluator.signals` at
each bar close (the expressions are causal, so the values at a closed bar do not change).

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
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from evaluator import _kernel as K
from evaluator.fast import _legs, kernel_params, signal_arrays, underlying_multiplier
from evaluator.fill_model import EXIT_REASONS
from evaluator.market import NY, Market
from evaluator.results import BacktestResult, build_result
from spec_space.instruments import FUTURES
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
    from lumibot.backtesting import BacktestingBroker, PandasDataBacktesting
    from lumibot.entities import Asset, Data, TradingFee
    from lumibot.strategies import Strategy
    from lumibot.traders import Trader

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
    staleness = max(
        1,
        inst.max_staleness_minutes
        // {"1min": 1, "5min": 5, "15min": 15, "1h": 60, "1d": 1440}[spec.timeframe],
    )
    p_last = market.options.last(staleness) if inst.type == "option" else market.options.p_close
    mult, _, _ = underlying_multiplier(spec)
    leg_kind, leg_sign, leg_right, leg_dte, leg_select, leg_value = _legs(spec)
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
    is_option = inst.type == "option"
    own_pct = is_option and (len(inst.legs) > 1 or inst.staged is not None)
    return _Plan(
        spec=spec,
        market=market,
        i0=i0,
        i1=i1,
        params=kernel_params(spec),
        leg_kind=leg_kind,
        leg_sign=leg_sign,
        leg_right=leg_right,
        leg_dte=leg_dte,
        leg_select=leg_select,
        leg_value=leg_value,
        mult=mult,
        is_option=is_option,
        own_pct=own_pct,
        sig=signal_arrays(spec, market),
        p_last=p_last,
        partial_pct=[p.pct for p in spec.exits.partial_take_profits],
        partial_frac=[p.fraction for p in spec.exits.partial_take_profits],
        underlying=Asset(market.spec_symbol if not is_option else inst.symbol, asset_type="stock"),
        lumi_units=1.0,
        bar_at=bar_at,
        sentinel_at=sentinel_at,
        close_days={int(bars.day[i1])},  # the window's end closes everything at the close
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
    staleness limit, else zeros (no price)."""
    mkt = plan.market
    bars, opt = mkt.bars, mkt.options
    stamps: list[np.ndarray] = []
    cols: dict[str, list[np.ndarray]] = {"open": [], "high": [], "low": [], "close": []}
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
            o = h = lo = cl = np.zeros(last - first + 1)
        else:
            sl = slice(int(opt.c_off[c]), int(opt.c_off[c]) + last - first + 1)
            mark = plan.p_last[sl]
            none = np.isnan(mark)
            o, h, lo = (
                np.where(np.isnan(x), mark, x) for x in (opt.p_open[sl], opt.p_high[sl], opt.p_low[sl])
            )
            o, h, lo, cl = (np.where(none, 0.0, x) for x in (o, h, lo, mark))
        # the sentinels carry the close's mark only in sessions where a position can be closed at the
        # close (the contract's expiry, the window's end): elsewhere no price, so no resting order can
        # ever fill at a sentinel
        close_mark = 0.0
        if d in plan.close_days or mkt.day_ord[d] >= expiry_ord:
            close_mark = float(cl[-1])
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

    :func:`run` builds the plan and calls :meth:`configure` before the backtest starts. Decisions read
    the plan's arrays (the Market); fills, positions, cash and commissions are Lumibot's. The state
    and the numbered steps mirror ``evaluator._kernel.run_kernel`` so the two can be read side by side.
    """

    plan: _Plan

    # ------------------------------------------------------------------ setup

    def configure(self, plan: _Plan, per_unit_fee: float) -> None:
        self.plan = plan
        self.prm = plan.params.copy()  # a conversion raises the per-unit commission for its trade
        self.comm_unit_entry = float(self.prm[K.P_COMM_UNIT])
        self.per_unit_fee = per_unit_fee
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
        # bookkeeping around Lumibot
        self.closed_upto = plan.i0 - 1
        self.pending_mark: tuple[int, float] | None = None
        self.equity = np.full(len(plan.market.bars.ts), np.nan)
        self.exposure_bars = 0
        self.cur_bar = plan.i0
        self.cash_pending = 0.0  # expected cash change of this open's orders, not yet filled
        self.actions: dict[str, tuple[_Action, int]] = {}  # order identifier -> (action, leg)
        self.resting: list[_Resting] = []
        self.trades: list[dict[str, Any]] = []
        self.contract_assets: dict[str, Any] = {}
        self.failures: list[str] = []
        self.broker.fill_hook = self._on_fill

    def initialize(self) -> None:
        self.sleeptime = "1M"  # Lumibot pads the data to a one-minute grid; padding minutes are skipped

    # ------------------------------------------------------------------ Lumibot's clock -> bars

    def on_trading_iteration(self) -> None:
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
                    if plan.is_option:
                        priced = False
                        continue
                    o = float(bars.open[j])
                else:
                    o, _, _, last = self._leg_prices(self.pos_legs[k], pos)
                    if last != last:
                        priced = False
                        continue
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

        # ---- 4. time exits at this open (rule 8)
        if self.direction != 0 and (priced or entered):
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
                and prm[K.P_CLOSE_BEFORE_EXP] > 0
                and self.pos_exp[0] - int(mkt.day_ord[d]) <= prm[K.P_CLOSE_BEFORE_EXP]
                and j != self.entry_bar
            ):
                reason = 11
            if reason >= 0:
                self._exit_market(
                    j, self.qty, reason, self.v_entry_trade if entered else v_open, float(bars.open[j])
                )

        # ---- 5. the resting stop and targets of a single-instrument position (rules 4, 6, 7)
        self._place_resting(j)

    def _exit_market(self, j: int, exit_qty: float, reason: int, v_open: float, und_open: float) -> None:
        """Close ``exit_qty`` units with market orders filled at this bar's open."""
        self._cancel_resting()
        trade = self._trade()
        action = _Action("exit", j, trade.n, trade=trade, reason=reason, exit_qty=exit_qty)
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
        stop_dist = 0.0
        kind = prm[K.P_STOP_KIND]
        if kind == 1:
            stop_dist = prm[K.P_STOP_VAL] * abs(v_pay)
        elif kind == 2:
            stop_dist = prm[K.P_STOP_VAL] * plan.mult
        elif kind == 3:
            stop_dist = prm[K.P_STOP_VAL] * plan.sig["atr"][j - 1] * plan.mult
        elif kind == 4:  # the triggering external signal's own stop, scaled (rule 13)
            stop_dist = prm[K.P_STOP_VAL] * plan.sig["sig_stop_dist"][j - 1] * plan.mult
            if not stop_dist > 0:
                stop_dist = 0.0
        unit_comm = prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(v_fill)
        step = float(prm[K.P_QTY_STEP])
        mode = prm[K.P_SIZE_MODE]
        if mode == 0:
            q = float(prm[K.P_QTY])
        elif mode == 1:
            q = float(K._floor_step(eq * prm[K.P_PCT_EQ] / (abs(v_pay) + unit_comm), step))
        elif stop_dist > 0:
            # a unit stopped out loses the distance, the exit's costs and both commissions
            v_stop = v_pay - stop_dist
            exit_cost = self._cost(fresh, abs(v_stop) / plan.mult)
            unit_loss = (
                stop_dist + exit_cost + unit_comm + prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(v_stop)
            )
            q = float(K._floor_step(eq * prm[K.P_RISK_PCT] / unit_loss, step))
        else:
            q = 0.0
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
        self.stop_v, self.tp_v = (float(x) for x in K._levels(v_pay, stop_dist, prm))
        if prm[K.P_TP_KIND] == 2:
            self.tp_v = v_pay + prm[K.P_TP_VAL] * plan.mult
        elif prm[K.P_TP_KIND] == 3:
            self.tp_v = v_pay + prm[K.P_TP_VAL] * plan.sig["atr"][j - 1] * plan.mult
        elif prm[K.P_TP_KIND] == 4 and plan.sig["sig_tp_dist"][j - 1] > 0:
            self.tp_v = v_pay + plan.sig["sig_tp_dist"][j - 1] * plan.mult
        self.traded_event = int(plan.sig["sig_event"][j - 1])
        self.next_partial = 0
        self.converted = False
        self.stage_und_ref = float(bars.open[j])
        self.trades_today += 1
        return True

    # ------------------------------------------------------------------ resting exits (rules 4, 6, 7)

    def _wanted_resting(self) -> list[tuple[str, float, float, int, int]]:
        """(kind, Lumibot price, Lumibot quantity, reason, partial index) in the fill model's order."""
        prm = self.prm
        levels: list[tuple[str, float, float, int, int]] = []
        stop, reason = self.stop_v, 1
        v_entry = self.v_entry
        gain_best = (self.best_v - v_entry) / abs(v_entry) if v_entry != 0 else 0.0
        if prm[K.P_BE_TRIG] > 0 and gain_best >= prm[K.P_BE_TRIG]:
            be = v_entry + prm[K.P_BE_BUF] * abs(v_entry)
            if be > stop:
                stop, reason = be, 5
        if prm[K.P_TRAIL_PCT] > 0 and gain_best >= prm[K.P_TRAIL_ACT]:
            tr = self.best_v - prm[K.P_TRAIL_PCT] * abs(self.best_v)
            if tr > stop:
                stop, reason = tr, 4
        if stop > -1e299:
            levels.append(("stop", stop, self.qty, reason, -1))
        for n in range(self.next_partial, len(self.plan.partial_pct)):
            level = v_entry + self.plan.partial_pct[n] * abs(v_entry)
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

    def _place_resting(self, j: int) -> None:
        if self.direction == 0 or not self.single:
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
                if plan.is_option:
                    priced = False
                    continue
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
                v_entry = self.v_entry
                gain = (v_close - v_entry) / abs(v_entry) if v_entry != 0 else 0.0
                gain_best = (self.best_v - v_entry) / abs(v_entry) if v_entry != 0 else 0.0
                level_stop, reason = self.stop_v, 1
                if prm[K.P_BE_TRIG] > 0 and gain_best >= prm[K.P_BE_TRIG]:
                    be = v_entry + prm[K.P_BE_BUF] * abs(v_entry)
                    if be > level_stop:
                        level_stop, reason = be, 5
                if prm[K.P_TRAIL_PCT] > 0 and gain_best >= prm[K.P_TRAIL_ACT]:
                    tr = self.best_v - prm[K.P_TRAIL_PCT] * abs(self.best_v)
                    if tr > level_stop:
                        level_stop, reason = tr, 4
                if level_stop > -1e299 and v_close <= level_stop:
                    self.pend_exit_frac, self.pend_exit_reason = 1.0, reason
                elif self.tp_v < 1e299 and v_close >= self.tp_v:
                    self.pend_exit_frac, self.pend_exit_reason = 1.0, 2
                elif (
                    self.next_partial < len(plan.partial_pct) and gain >= plan.partial_pct[self.next_partial]
                ):
                    self.pend_exit_frac = plan.partial_frac[self.next_partial]
                    self.pend_exit_reason = 3
                    self.next_partial += 1
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

    def _close_at_close(self, i: int, priced: bool, expiring: bool) -> None:
        """Rule 8: close at bar ``i``'s close with market orders at the sentinel (module note 1)."""
        plan = self.plan
        self._cancel_resting()
        trade = self._trade()
        reason = 9 if i == plan.i1 and not expiring else 8
        action = _Action("exit", i, trade.n, trade=trade, reason=reason, exit_qty=self.qty)
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
            }
        )


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
    bars = market.bars
    rows = strategy.trades
    direction = np.array([r["direction"] for r in rows], dtype=np.int64)
    entry_bar = np.array([r["entry_bar"] for r in rows], dtype=np.int64)
    exit_bar = np.array([r["exit_bar"] for r in rows], dtype=np.int64)
    price_div = np.full(len(rows), 100.0 if plan.is_option else plan.mult)
    if not plan.is_option:
        price_div = price_div * direction
    trades = pl.DataFrame(
        {
            "entry_time": pl.Series(bars.ts[entry_bar], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            "exit_time": pl.Series(bars.ts[exit_bar], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
            "side": np.where(direction > 0, "long", "short") if rows else np.array([], dtype=str),
            "instrument": [r["instrument"] for r in rows],
            "quantity": np.array([r["quantity"] for r in rows], dtype=np.float64),
            "entry_price": np.array([r["entry_v"] for r in rows], dtype=np.float64) / price_div,
            "exit_price": np.array([r["exit_v"] for r in rows], dtype=np.float64) / price_div,
            "pnl": np.array([r["pnl"] for r in rows], dtype=np.float64),
            "commission": np.array([r["commission"] for r in rows], dtype=np.float64),
            "exit_reason": [EXIT_REASONS[int(r["reason"])] for r in rows],
        },
        schema_overrides={"instrument": pl.Utf8, "side": pl.Utf8, "exit_reason": pl.Utf8},
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


__all__ = ["SpecStrategy", "lumibot_environment", "run"]
