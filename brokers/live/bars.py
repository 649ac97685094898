"""Broker data for the live strategy (:class:`brokers.live.LiveSpecStrategy`), shaped like the backtests' data,
and the live calendar (sessions left to an expiry, clock times).

* :func:`closed_bars` / :func:`frame_market`: a broker's recent bars (a Lumibot ``Bars`` frame) as the
  closed bars of the spec's timeframe, in a :class:`~evaluator.market.Market` built by the same
  :func:`~evaluator.market.bars_from_frame` the backtests use, so :func:`evaluator.fast.signal_arrays`
  evaluates the spec's expressions on it exactly as it does on the store's bars. Resampled windows
  follow ``data.store``: stocks' regular-session windows count from 09:30, everything else from the
  clock, daily bars are labelled 00:00 New York; a regular-session futures spec keeps its root's day
  session only (``data.calendar.futures_regular_hours``), as the store's regular bars do.
* :func:`session_minute_and_date` / :func:`spec_session_minute`: a bar's (or a spec's clock time's) minute
  in its trading day, which for forex and futures starts the evening before (17:00 / 18:00 New York),
  so ``eod_flat_time`` and entry windows compare in session minutes, never clock minutes; the minutes are
  ``data.calendar``'s (``session_minute``, ``spec_session_minute``), one definition for live and backtest.
* :func:`is_last_bar`: whether a bar is its session's last one (what a backtest reads off the data:
  the end-of-day flat and the no-entry-before-the-flat rules need it live before the next bar exists).
* :func:`round_to_tick`: resting order prices on the broker's price grid, rounded so they trigger on
  the same prices as the fill model's level.
* :func:`chain_arrays`: a broker's option chain as the arrays the kernel's ``select_contract`` reads.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from data.calendar import (
    DAY_START_MINUTE,
    futures_regular_hours,
    nyse_session_dates,
    session_minute,
    trading_dates,
)
from data.calendar import spec_session_minute as calendar_spec_session_minute
from data.flatfiles import occ_ticker
from data.safe import finite_float
from evaluator.market import BAR_MINUTES, NY, Market, OptionArrays, bars_from_frame
from spec_space.models import StrategySpec

# spec timeframe -> (Lumibot timestep asked of the broker, broker bars per signal bar). Tradier's
# timesales come in 1, 5 and 15 minutes (clock-aligned, so 5 and 15 minutes match the store's windows,
# which count from 09:30); hourly bars are built from 15-minute ones with the store's anchoring.
FETCH = {
    "1min": ("minute", 1),
    "5min": ("5 minutes", 1),
    "15min": ("15 minutes", 1),
    "1h": ("15 minutes", 4),
    "1d": ("day", 1),
}
DEFAULT_SLEEPTIME = {"1min": "1M", "5min": "1M", "15min": "1M", "1h": "1M", "1d": "15M"}
_OHLCV = ("open", "high", "low", "close", "volume")
_EPOCH = dt.date(1970, 1, 1)


def default_lookback(spec: StrategySpec) -> int:
    """Signal bars fetched per decision: three days of bars (Lumibot's Tradier source counts 1,440
    minutes a day when it picks the first day to fetch, so fewer would cut the prior session that
    ``prior_day_high`` and the like read), at least 300 for indicator warm-up."""
    minutes = BAR_MINUTES[spec.timeframe]
    if minutes >= 1440:
        return 400
    return max(300, 3 * 1440 // minutes)


def closed_bars(df: pd.DataFrame, spec: StrategySpec, now: pd.Timestamp) -> pd.DataFrame:
    """The closed bars of ``spec.timeframe`` in a broker's frame (index: bar start, tz-aware)."""
    frame = df.loc[:, list(_OHLCV)].astype(float)
    index = pd.DatetimeIndex(frame.index)
    frame.index = index.tz_localize(NY) if index.tz is None else index.tz_convert("UTC")
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    frame = frame.dropna(subset=["open", "high", "low", "close"])
    frame["volume"] = frame["volume"].fillna(0.0)
    minutes = BAR_MINUTES[spec.timeframe]
    fetched = minutes // FETCH[spec.timeframe][1]
    if spec.instrument.type == "future" and spec.session != "extended" and minutes < 1440:
        # a regular-session futures spec reads the root's day session only, as the store gives it
        open_, close = futures_regular_hours(spec.instrument.symbol)
        local = pd.DatetimeIndex(frame.index).tz_convert(NY)
        minute = np.asarray(local.hour * 60 + local.minute)
        frame = frame[(minute >= open_) & (minute < close)]
    if minutes >= 1440:
        frame = _daily_labels(frame, forex=spec.instrument.type == "forex")
    else:
        # a broker bar is usable once it has closed (delayed sources are already behind the clock)
        frame = frame[frame.index + pd.Timedelta(minutes=fetched) <= now]
        if fetched != minutes:
            frame = _resample(frame, minutes, anchored=spec.instrument.type in ("stock", "option"))
    length = pd.Timedelta(minutes=minutes)
    return frame[frame.index + length <= now]


def _daily_labels(frame: pd.DataFrame, *, forex: bool) -> pd.DataFrame:
    """Day bars at 00:00 New York of their date (the store's labels). TradeLocker stamps forex days at
    00:00 UTC; their UTC date is the flat file's date."""
    index = pd.DatetimeIndex(frame.index)
    dates = index.tz_convert("UTC").date if forex else index.tz_convert(NY).date
    out = frame.copy()
    out.index = pd.DatetimeIndex([pd.Timestamp(d).tz_localize(NY) for d in dates])
    return out[~out.index.duplicated(keep="last")]


def _resample(frame: pd.DataFrame, minutes: int, *, anchored: bool) -> pd.DataFrame:
    """Left-labelled windows of ``minutes`` that never cross a day; stocks' regular session counts from
    09:30 (``data.store._resample``), other bars from the clock."""
    local = pd.DatetimeIndex(frame.index).tz_convert(NY)
    day_start = local.normalize()
    offset = np.asarray((local - day_start).asi8)  # ns since midnight
    width = minutes * 60_000_000_000
    label = offset // width * width
    if anchored:
        anchor = 570 * 60_000_000_000  # 09:30
        regular = (offset >= anchor) & (offset < 960 * 60_000_000_000)
        label = np.where(regular, anchor + (offset - anchor) // width * width, label)
    labels = day_start + pd.to_timedelta(label, unit="ns")
    out = frame.groupby(labels, sort=True).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    out.index = pd.DatetimeIndex(out.index).tz_convert(NY)
    return out


def frame_market(symbol: str, frame: pd.DataFrame, *, intraday: bool, kind: str | None = None) -> Market:
    """A Market (no option arrays) over ``frame``, through the backtests' own ``bars_from_frame``. An
    intraday frame holding more than two sessions loses its first one, which the lookback has likely cut
    (its session indicators would start mid-session). ``symbol`` is the spec's signal symbol: a forex
    pair (``C:EURUSD``) gets forex trading days (rolling at 17:00 New York), anything else the NYSE's,
    unless ``kind`` (the spec's instrument type) says otherwise (``future``: CME trade dates, rolling
    at 18:00)."""
    market = kind if kind in ("future", "forex") else "forex" if symbol.startswith("C:") else "stock"
    index = pd.DatetimeIndex(frame.index)
    if intraday and len(frame):
        local = index.tz_convert(NY)
        dates = trading_dates(
            np.asarray(local.date, dtype="datetime64[D]"), np.asarray(local.hour * 60 + local.minute), market
        )
        if len(set(dates.tolist())) > 2:
            keep = dates != dates[0]
            frame, index = frame[keep], index[keep]
    table = pl.DataFrame(
        {
            "ts": pl.Series(index.tz_convert("UTC").as_unit("ns").asi8, dtype=pl.Int64)
            .cast(pl.Datetime("ns", "UTC"))
            .dt.convert_time_zone(NY),
            **{c: frame[c].to_numpy(dtype=np.float64) for c in _OHLCV},
        }
    )
    series, day_first_bar, day_ord = bars_from_frame(table, market)
    return Market(symbol, series, day_first_bar, day_ord, OptionArrays.empty(len(series.session_dates)))


def session_end_minute(kind: str, session: str, day: dt.date, root: str = "") -> int:
    """Minutes after 00:00 New York at which ``day``'s session of an instrument of type ``kind`` ends (0
    when ``day`` has no session). Stocks and options: the NYSE close (13:00 on half days), four hours
    later for extended sessions; forex: 17:00, where its day rolls (``data.calendar``); futures: the
    root's day session (``root``: MES 16:00, gold 13:30; 13:15 at most on NYSE half days), 17:00 (the
    Globex close) for extended sessions."""
    if kind == "forex":
        return DAY_START_MINUTE["forex"]
    if kind == "future" and session == "extended":
        return 17 * 60  # Globex closes at 17:00 and reopens at 18:00 for the next trade date
    from data.calendar import nyse_sessions

    schedule = nyse_sessions(day, day)
    if schedule.empty:
        return 0
    close = pd.Timestamp(schedule["close"].iloc[0]).tz_convert(NY)
    minute = close.hour * 60 + close.minute
    if kind == "future":  # the root's day session; on NYSE half days its Globex session ends at 13:15
        return min(futures_regular_hours(root)[1], minute + 15)
    return minute + 240 if session == "extended" else minute


def is_last_bar(spec: StrategySpec, ts_ns: int, bar_minutes: int) -> bool:
    """True when the bar starting at ``ts_ns`` (UTC ns) is the last one of its session."""
    local = pd.Timestamp(ts_ns, tz="UTC").tz_convert(NY)
    if bar_minutes >= 1440:
        return True
    minute = local.hour * 60 + local.minute
    kind = spec.instrument.type
    end = session_end_minute(kind, spec.session, local.date(), spec.instrument.symbol)
    if kind == "forex" or (kind == "future" and spec.session == "extended"):
        # a bar from 17:00 on opens the next day (or trades after the break): the last bar reaches 17:00
        return minute < end <= minute + bar_minutes
    return minute + bar_minutes >= end


def session_minute_and_date(ts_ns: int, kind: str) -> tuple[int, dt.date]:
    """(session minute, trading day) of the bar starting at ``ts_ns`` (UTC ns) for an instrument of type
    ``kind``: the minute is :func:`data.calendar.session_minute`, the backtests' own definition (the
    scale of ``BarSeries.session_minute``), and the trading day is the New York date that minute counts
    from (the next day from 17:00 on forex, from 18:00 on futures, later over a Globex holiday)."""
    local = pd.Timestamp(ts_ns, tz="UTC").tz_convert(NY)
    minute = session_minute(local, kind)
    days_ahead = (local.hour * 60 + local.minute - minute) // 1440
    return minute, local.date() + dt.timedelta(days=days_ahead)


def spec_session_minute(text: str | None, kind: str) -> int | None:
    """A spec's clock time (``eod_flat_time``, ``entry.window_start``/``window_end``; None when unset) in
    session minutes: :func:`data.calendar.spec_session_minute`, the backtests' own definition."""
    return None if text is None else calendar_spec_session_minute(text, kind)


def day_ordinal(day: dt.date) -> int:
    return (day - _EPOCH).days


def round_to_tick(price: float, tick: float, *, up: bool) -> float:
    """``price`` on the broker's grid: up when the order triggers on prices at or above it, down when at
    or below, so it triggers on exactly the grid prices the unrounded level does."""
    steps = price / tick
    whole = math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)
    decimals = max(0, -math.floor(math.log10(tick)) + 1)
    return round(whole * tick, decimals)


def price_tick(kind: str, price: float, symbol: str) -> float:
    """The broker's price increment: cents for stocks and options (0.0001 under a dollar, as Reg NMS
    allows), a tenth of a pip for forex, the contract's tick for futures (``MESZ26`` or a root)."""
    if kind == "future":
        from brokers.futures import contract_of
        from spec_space.instruments import FUTURES

        return FUTURES[symbol].tick_size if symbol in FUTURES else contract_of(symbol).tick_size
    if kind == "forex":
        from spec_space.instruments import forex_pair

        return forex_pair(symbol).pip_size / 10
    return 0.0001 if kind == "stock" and price < 1.0 else 0.01


@dataclass(frozen=True)
class Contract:
    """One option contract of a broker's chain snapshot."""

    expiry: dt.date
    strike: float
    call: bool
    price: float  # NaN when the broker has no usable price
    symbol: str = ""

    @property
    def ticker(self) -> str:
        return occ_ticker(self.symbol, self.expiry, "C" if self.call else "P", self.strike)


def chain_price(row: dict[str, Any]) -> float:
    """A contract's live price for selection and marks: the bid/ask mid when both sides quote, else the
    last trade, else NaN (the backtests' "no trade within the staleness limit")."""
    bid, ask, last = (finite_float(row.get(k)) for k in ("bid", "ask", "last"))
    if bid is not None and ask is not None and bid > 0 and ask >= bid:
        return (bid + ask) / 2
    if last is not None and last > 0:
        return last
    return float("nan")


def chain_arrays(contracts: list[Contract]) -> tuple[np.ndarray, ...]:
    """(c_exp, c_strike, c_call, c_off, p_last) of a snapshot: one "session" of one bar per contract."""
    n = len(contracts)
    return (
        np.array([day_ordinal(c.expiry) for c in contracts], dtype=np.int64),
        np.array([c.strike for c in contracts], dtype=np.float64),
        np.array([c.call for c in contracts], dtype=np.bool_),
        np.arange(n, dtype=np.int64),
        np.array([c.price for c in contracts], dtype=np.float64),
    )


def sessions_left(today: dt.date, expiry_ord: int) -> int:
    """Live: NYSE sessions after ``today`` up to and including the expiry (``evaluator._kernel.sessions_left`` in a
    backtest), for ``close_days_before_expiry``."""
    expiry = _EPOCH + dt.timedelta(days=int(expiry_ord))
    if expiry <= today:
        return 0
    return len(nyse_session_dates(today + dt.timedelta(days=1), expiry))


def stamp(ns: Any) -> str:
    return pd.Timestamp(int(ns), tz="UTC").tz_convert(NY).strftime("%Y-%m-%d %H:%M")
