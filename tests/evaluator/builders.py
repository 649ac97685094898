"""Tiny hand-made markets and specs for the engine tests.

Bars are written by hand as ``(time, open, high, low, close[, volume])`` rows in New York time, so a
test reads like a chart and its expected numbers can be worked out on paper. Stocks, futures and
forex go through the real :func:`evaluator.market.bars_from_frame`; option chains are laid out in
:class:`evaluator.market.OptionArrays` exactly the way :func:`evaluator.market.load_options` lays
them out (one entry per contract per session, its bars at the session's bar positions).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from evaluator import fast
from evaluator.market import NY, Market, OptionArrays, bars_from_frame
from evaluator.results import BacktestResult
from spec_space.models import StrategySpec

#: one bar: (time "YYYY-MM-DD HH:MM" New York, open, high, low, close) plus an optional volume
Row = tuple[Any, ...]
_EPOCH = dt.date(1970, 1, 1)


def minutes(day: str, start: str, ohlc: Sequence[Sequence[float]]) -> list[Row]:
    """Consecutive one-minute rows from ``day start``: ``ohlc`` items are (o, h, l, c) or (o, h, l, c, v)."""
    t0 = dt.datetime.fromisoformat(f"{day} {start}")
    rows: list[Row] = []
    for k, bar in enumerate(ohlc):
        stamp = (t0 + dt.timedelta(minutes=k)).strftime("%Y-%m-%d %H:%M")
        rows.append((stamp, *bar))
    return rows


def flat(day: str, start: str, prices: Sequence[float]) -> list[Row]:
    """Rows whose open, high, low and close are all one price (nothing happens inside the bar)."""
    return minutes(day, start, [(p, p, p, p) for p in prices])


def random_minutes(rng: np.random.Generator, days: Sequence[str], start_price: float = 100.0) -> list[Row]:
    """A random walk of 390 regular-session minute bars a day, with volumes (for cross-checks)."""
    rows: list[Row] = []
    price = start_price
    for day in days:
        bars = []
        for _ in range(390):
            o = price
            c = o * math.exp(rng.normal(0, 0.0015))
            h = max(o, c) * (1 + abs(rng.normal(0, 0.0008)))
            lo = min(o, c) * (1 - abs(rng.normal(0, 0.0008)))
            bars.append((o, h, lo, c, float(rng.integers(500, 5000))))
            price = c
        rows += minutes(day, "09:30", bars)
    return rows


def frame(rows: Sequence[Row]) -> pl.DataFrame:
    """A store-shaped bars frame: ts (tz America/New_York), open, high, low, close, volume."""
    for number, row in enumerate(rows):
        o, h, lo, c = row[1:5]
        if not lo <= min(o, c) <= max(o, c) <= h:
            raise ValueError(f"row {number} {row}: expected low <= open, close <= high")
    stamps = [dt.datetime.fromisoformat(str(row[0])) for row in rows]
    return pl.DataFrame(
        {
            "ts": pl.Series(stamps, dtype=pl.Datetime("ns")).dt.replace_time_zone(NY),
            "open": [float(r[1]) for r in rows],
            "high": [float(r[2]) for r in rows],
            "low": [float(r[3]) for r in rows],
            "close": [float(r[4]) for r in rows],
            "volume": [float(r[5]) if len(r) > 5 else 1000.0 for r in rows],
        }
    )


def market(
    rows: Sequence[Row], *, symbol: str = "SPY", options: OptionArrays | None = None, kind: str = "stock"
) -> Market:
    """A Market over hand-written bars (and, for option specs, a hand-made chain); ``kind`` is the
    instrument type, which decides the trading days (futures and forex start theirs the evening before)."""
    series, day_first_bar, day_ord = bars_from_frame(frame(rows), kind)
    opts = options if options is not None else OptionArrays.empty(len(series.session_dates))
    return Market(symbol, series, day_first_bar, day_ord, opts)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def at(rows: Sequence[Row], *bars: int) -> str:
    """A signal expression true on exactly the given bars of ``rows``: each bar as its weekday and its
    minute, ``(time_between('09:31', '09:32') and day_of_week('mon'))``, joined with ``or``. Raises if
    another bar shares a chosen bar's weekday and minute (the expression could not tell them apart)."""
    stamps = [dt.datetime.fromisoformat(str(row[0])) for row in rows]
    keys = [(s.weekday(), s.strftime("%H:%M")) for s in stamps]
    parts = []
    for k in sorted(set(bars)):
        clash = [j for j, key in enumerate(keys) if key == keys[k] and j not in bars]
        if clash:
            raise ValueError(f"bars {k} and {clash[0]} share weekday and minute {keys[k]}; use other days")
        end = (stamps[k] + dt.timedelta(minutes=1)).strftime("%H:%M")
        parts.append(f"(time_between('{keys[k][1]}', '{end}') and day_of_week('{_WEEKDAYS[keys[k][0]]}'))")
    if not parts:
        raise ValueError("at(): give at least one bar")
    return " or ".join(parts)


@dataclass
class Contract:
    """One option contract and its bars, keyed by the signal series' bar index."""

    ticker: str
    expiry: dt.date
    strike: float
    right: str  # "C" or "P"
    bars: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)


def option_arrays(rows: Sequence[Row], contracts: Sequence[Contract]) -> OptionArrays:
    """Lay contracts out like load_options: a chain per session of the contracts that traded in it."""
    series, day_first_bar, _ = bars_from_frame(frame(rows))
    n_days = len(series.session_dates)
    bars_per_day = np.diff(np.append(day_first_bar, len(series.ts))).astype(np.int64)
    # (day, contract) pairs, sorted by day then expiry, right, strike as load_options sorts them
    listed = sorted(
        {(int(series.day[i]), k) for k, con in enumerate(contracts) for i in con.bars},
        key=lambda dk: (dk[0], contracts[dk[1]].expiry, contracts[dk[1]].right, contracts[dk[1]].strike),
    )
    c_day = np.array([d for d, _ in listed], np.int64)
    c_len = bars_per_day[c_day] if len(c_day) else np.zeros(0, np.int64)
    c_off = np.concatenate([[0], np.cumsum(c_len)[:-1]]).astype(np.int64) if len(c_day) else c_len
    total = int(c_len.sum())
    prices = {name: np.full(total, np.nan) for name in ("open", "high", "low", "close")}
    for c, (d, k) in enumerate(listed):
        for i, (o, h, lo, cl) in contracts[k].bars.items():
            if int(series.day[i]) != d:
                continue
            if not lo <= min(o, cl) <= max(o, cl) <= h:
                raise ValueError(f"{contracts[k].ticker} bar {i}: expected low <= open, close <= high")
            p = c_off[c] + i - day_first_bar[d]
            prices["open"][p], prices["high"][p], prices["low"][p], prices["close"][p] = o, h, lo, cl
    return OptionArrays(
        day_c0=np.searchsorted(c_day, np.arange(n_days), side="left").astype(np.int64),
        day_c1=np.searchsorted(c_day, np.arange(n_days), side="right").astype(np.int64),
        c_exp=np.array([(contracts[k].expiry - _EPOCH).days for _, k in listed], np.int64),
        c_strike=np.array([contracts[k].strike for _, k in listed], np.float64),
        c_call=np.array([contracts[k].right == "C" for _, k in listed], np.bool_),
        c_off=c_off,
        c_ticker=[contracts[k].ticker for _, k in listed],
        p_open=prices["open"],
        p_high=prices["high"],
        p_low=prices["low"],
        p_close=prices["close"],
        _bars_per_day=bars_per_day,
    )


def option_market(rows: Sequence[Row], contracts: Sequence[Contract], *, symbol: str = "SPY") -> Market:
    return market(rows, symbol=symbol, options=option_arrays(rows, contracts))


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``extra`` merged in, nested dicts key by key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def spec(**fields: Any) -> StrategySpec:
    """A validated spec: a long SPY stock strategy on 1-minute bars, no costs, fixed 1 share, with
    ``fields`` merged in (nested dicts merge key by key); give at least ``entry={"long": ...}``."""
    base: dict[str, Any] = {
        "name": "golden",
        "instrument": {"type": "stock", "symbol": "SPY"},
        "timeframe": "1min",
        "direction": "long",
        "sizing": {"mode": "fixed", "quantity": 1},
        "initial_cash": 100_000.0,
    }
    return StrategySpec.model_validate(merge(base, fields))


def run(strategy: StrategySpec, mkt: Market) -> BacktestResult:
    """The fast engine over every session of ``mkt``."""
    dates = mkt.bars.session_dates
    return fast.run(strategy, mkt, dates[0], dates[-1])


def trades(result: BacktestResult) -> list[dict[str, Any]]:
    """Trades as plain dicts (entry_bar, exit_bar, side, quantity, entry_price, exit_price, pnl,
    commission, exit_reason, instrument) for readable asserts."""
    keep = [
        "entry_bar",
        "exit_bar",
        "side",
        "instrument",
        "quantity",
        "entry_price",
        "exit_price",
        "pnl",
        "commission",
        "exit_reason",
    ]
    return result.trades.select(keep).to_dicts()
