"""Realistic sample data in the exact Polygon.io flat-file layout.

``generate(root)`` writes stocks/ETFs, their options (OCC tickers), forex pairs and CME futures as
gzip CSV day files under ``root`` exactly as Polygon lays them out (see :mod:`data.flatfiles`), so the
ingester and every reader treat sample data and real downloads the same way.

The model, in one paragraph: every instrument has a latent log-price on one global UTC minute clock.
Its minute volatility is a daily log-volatility AR(1) state (with a leverage effect) times an
intraday log-volatility AR(1) (clustering within the day) times a deterministic intraday profile
(U-shaped in the regular session, quiet overnight, a bump at 08:30 New York), with Student-t
innovations and occasional jumps. Equities load on one market factor (SPY beta 1, AMD ~2); forex
pairs load on a common USD factor. The latent path keeps moving while an exchange is shut, so
opening gaps come out of the model, and futures (which trade overnight) are the ETF latent path
times a ratio plus carry. Bars exist only where a Poisson number of trades is positive; the minute's
high and low are drawn from the Brownian bridge between the latent open and close. Options are
Black-Scholes prices of the underlying's written bars under a smile whose ATM level follows the
underlying's current volatility state, traded at the bid or the ask.

Planted edges (``generate(plant="zrce:0.5")``, definitions in :mod:`data.plants`): ``zrce`` makes SPY
continue for a few minutes after a volume-confirmed break of the 10:30 zone (planted in the latent path
before SPY's bars, its options and MES are written from it, so every instrument stays consistent);
``forex_trend`` adds a slowly varying trend to EURUSD's returns. ``<root>/_synthetic.json`` records the
seed, window and plant; ``data.ingest`` carries it into the store manifest (``Store.synthetic()``).

Everything is vectorised per instrument with numpy, and every random stream is seeded from
``(seed, stable hash of its name)``, so a ticker's data does not depend on which other tickers are
generated with it and the same seed always writes byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from scipy.signal import lfilter
from scipy.special import ndtr

from data.calendar import (
    NY,
    forex_days,
    monthly_option_expiry,
    nyse_sessions,
    session_on_or_before,
    weekly_option_expiries,
)
from data.flatfiles import (
    COLUMNS,
    CONTRACT_MONTHS,
    TICK_SIZES,
    AssetClass,
    Timeframe,
    flat_file_relpath,
    future_ticker,
    occ_ticker,
)
from data.plants import PLANT_CHOICES, PLANTS, Plant, PlantDefinition, parse_plant, plant_help
from data.store import SYNTHETIC_INFO_NAME, data_origin_label

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "DEFAULT_TICKERS",
    "IV_PREMIUM",
    "OPTION_HALF_SPREAD_FRACTION",
    "OPTION_MIN_HALF_SPREAD",
    "OPTION_TICK",
    "PLANTS",
    "PLANT_CHOICES",
    "RISK_FREE_RATE",
    "SYNTHETIC_INFO_NAME",
    "Plant",
    "PlantDefinition",
    "SynthReport",
    "black_scholes",
    "generate",
    "option_half_spread",
    "parse_plant",
    "plant_help",
    "synthetic_info",
    "ticker_kind",
]

DEFAULT_TICKERS: tuple[str, ...] = ("SPY", "QQQ", "AMD", "C:EURUSD", "C:XAUUSD", "MES")
#: About two years (502 NYSE sessions): long enough for a six-month holdout that holds >= 100 positions of a
#: one-trade-a-day strategy (the KPI gates' trade count) after walk-forward folds.
DEFAULT_START = dt.date(2023, 1, 3)
DEFAULT_END = dt.date(2024, 12, 31)

#: Continuously compounded rate used to price options (no dividends) and the futures carry.
RISK_FREE_RATE = 0.05
#: Implied over realised volatility at the money.
IV_PREMIUM = 1.1
#: An option trades at the bid or the ask: mid -/+ this half-spread.
OPTION_HALF_SPREAD_FRACTION = 0.015
OPTION_MIN_HALF_SPREAD = 0.01
OPTION_TICK = 0.01

GZIP_LEVEL = 5

_MIN_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9
_YEAR_NS = 365.0 * _DAY_NS
_EPOCH_THURSDAY = 3  # 1970-01-01 was a Thursday: weekday (Mon=0) of day number n is (n + 3) % 7
_REG_OPEN = 9 * 60 + 30
_REG_CLOSE = 16 * 60
_PRE_OPEN = 4 * 60
_POST_END = 20 * 60
_HALF_DAY_POST_END = 17 * 60
_GLOBEX_BREAK = 17 * 60
_GLOBEX_REOPEN = 18 * 60
_HOLIDAY_HALT = 13 * 60
_HALF_DAY_FUTURES_CLOSE = 13 * 60 + 15
_TRADING_DAYS = 252.0


# ============================================================================= public helpers


def ticker_kind(ticker: str) -> AssetClass:
    """Which asset class a requested ticker is: ``C:XXXYYY`` forex, a known futures root, else a stock."""
    if ticker.startswith("C:"):
        if not re.fullmatch(r"C:[A-Z]{6}", ticker):
            raise ValueError(f"forex ticker {ticker!r}: expected 'C:' and six letters, like 'C:EURUSD'")
        return AssetClass.FOREX
    if ticker in _FUTURES:
        return AssetClass.FUTURES
    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,5}", ticker):
        raise ValueError(
            f"ticker {ticker!r} is not a stock ticker (1-6 upper-case letters/digits), a forex pair "
            f"('C:EURUSD') or a futures root ({', '.join(sorted(_FUTURES))}); fix the --tickers list"
        )
    return AssetClass.STOCKS


def option_half_spread(price: np.ndarray | float) -> np.ndarray:
    """Half the bid-ask spread of an option whose mid is ``price``."""
    return np.maximum(OPTION_MIN_HALF_SPREAD, OPTION_HALF_SPREAD_FRACTION * np.asarray(price, dtype=float))


def black_scholes(
    spot: np.ndarray, strike: np.ndarray, years: np.ndarray, vol: np.ndarray, is_call: np.ndarray,
    rate: float = RISK_FREE_RATE,
) -> np.ndarray:
    """European Black-Scholes price without dividends (vectorised)."""
    years = np.maximum(years, 1.0 / (365 * 24 * 3600))  # one second: at expiry the price is intrinsic
    root = vol * np.sqrt(years)
    d1 = (np.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / root
    d2 = d1 - root
    disc = strike * np.exp(-rate * years)
    call = spot * ndtr(d1) - disc * ndtr(d2)
    put = disc * ndtr(-d2) - spot * ndtr(-d1)
    return np.where(is_call, call, put)


# ============================================================================= report


@dataclass
class SynthReport:
    """What :func:`generate` wrote."""

    root: Path
    start: dt.date
    end: dt.date
    tickers: tuple[str, ...]
    files: int = 0
    bytes_written: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # minute bars per asset class
    day_rows: dict[str, int] = field(default_factory=dict)  # day bars per asset class
    elapsed: float = 0.0
    plant: Plant | None = None

    def summary(self) -> str:
        lines = [
            f"Synthetic Polygon flat files in {self.root}",
            f"  {self.start} .. {self.end}, tickers {', '.join(self.tickers)}",
            f"  planted edge: {self.plant.label}" if self.plant is not None else "  no planted edge (null market)",
            f"  {self.files} files, {self.bytes_written / 1e6:.1f} MB, {self.elapsed:.1f} s",
        ]
        for asset in AssetClass:
            if asset.value in self.rows:
                lines.append(
                    f"  {asset.value:<8} {self.rows[asset.value]:>10,} minute bars"
                    f"  {self.day_rows.get(asset.value, 0):>8,} day bars"
                )
        return "\n".join(lines)


# ============================================================================= instrument tables


@dataclass(frozen=True, slots=True)
class _StockSpec:
    price: float
    beta: float
    idio_vol: float  # annualised idiosyncratic volatility
    trades_per_day: float
    trade_size: float
    daily_options: bool  # SPY/QQQ/IWM list an expiry every session; single stocks list Fridays
    strike_tiers: tuple[tuple[float, float], ...]  # (distance from spot as a fraction, strike step)
    option_activity: float  # trade intensity per minute of the at-the-money nearest expiry
    option_trades: float  # trades per minute of that contract, on top of the first
    skew: float  # d(iv/atm)/d(standardised log-moneyness)
    curvature: float
    earnings_move: float  # sd of the after-close earnings jump; 0 for funds


_INDEX_TIERS = ((0.06, 1.0), (math.inf, 5.0))
_STOCKS: dict[str, _StockSpec] = {
    "SPY": _StockSpec(472.0, 1.0, 0.02, 450_000, 150, True, _INDEX_TIERS, 3.5, 25, -0.12, 0.03, 0.0),
    "QQQ": _StockSpec(403.0, 1.2, 0.07, 330_000, 130, True, _INDEX_TIERS, 2.5, 14, -0.10, 0.03, 0.0),
    "IWM": _StockSpec(197.0, 1.15, 0.12, 200_000, 150, True, _INDEX_TIERS, 1.5, 8, -0.08, 0.03, 0.0),
    "DIA": _StockSpec(377.0, 0.9, 0.05, 30_000, 80, False, _INDEX_TIERS, 0.3, 2, -0.10, 0.03, 0.0),
    "AMD": _StockSpec(
        140.0, 2.0, 0.38, 550_000, 110, False, ((0.04, 1.0), (0.12, 2.5), (math.inf, 5.0)), 1.2, 8,
        -0.05, 0.04, 0.07,
    ),
    "AAPL": _StockSpec(
        185.0, 1.05, 0.18, 600_000, 100, False, ((0.05, 1.0), (0.15, 2.5), (math.inf, 5.0)), 1.5, 10,
        -0.06, 0.04, 0.04,
    ),
    "MSFT": _StockSpec(
        370.0, 1.0, 0.17, 350_000, 90, False, ((0.05, 2.5), (math.inf, 5.0)), 0.8, 5, -0.06, 0.04, 0.045,
    ),
    "TSLA": _StockSpec(
        248.0, 1.9, 0.45, 900_000, 100, False, ((0.06, 2.5), (math.inf, 5.0)), 1.5, 12, -0.03, 0.05, 0.09,
    ),
}
_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA"})
#: Known after-close earnings dates; other single stocks get a stable made-up quarterly date.
_EARNINGS: dict[str, tuple[dt.date, ...]] = {
    "AMD": tuple(
        dt.date.fromisoformat(d)
        for d in ("2024-01-30", "2024-04-30", "2024-07-30", "2024-10-29", "2025-02-04", "2025-05-06",
                  "2025-08-05", "2025-11-04")
    ),
}
_MARKET_VOL = 0.13
_MARKET_DRIFT = 0.08


@dataclass(frozen=True, slots=True)
class _FxSpec:
    price: float
    vol: float
    usd_sign: int  # +1 when USD is the base currency, -1 when it is the quote, 0 otherwise
    usd_corr: float
    ticks_per_day: float
    decimals: int


_FX: dict[str, _FxSpec] = {
    "EURUSD": _FxSpec(1.0940, 0.065, -1, 0.8, 150_000, 5),
    "GBPUSD": _FxSpec(1.2620, 0.075, -1, 0.75, 120_000, 5),
    "USDJPY": _FxSpec(141.90, 0.095, 1, 0.6, 130_000, 3),
    "AUDUSD": _FxSpec(0.6790, 0.10, -1, 0.7, 90_000, 5),
    "USDCAD": _FxSpec(1.3250, 0.06, 1, 0.6, 80_000, 5),
    "USDCHF": _FxSpec(0.8450, 0.075, 1, 0.75, 70_000, 5),
    "NZDUSD": _FxSpec(0.6300, 0.105, -1, 0.7, 60_000, 5),
    "XAUUSD": _FxSpec(2062.0, 0.14, -1, 0.35, 110_000, 2),
    "XAGUSD": _FxSpec(23.70, 0.25, -1, 0.3, 60_000, 3),
}


@dataclass(frozen=True, slots=True)
class _FutureSpec:
    reference: str  # the latent path it tracks
    ratio: float  # futures points per reference unit
    metal: bool  # gold: even-month cycle, COMEX-hours activity
    trades_per_day: float
    trade_size: float
    carry: float  # annual cost of carry (rate minus dividend yield, or rate plus storage)


_FUTURES: dict[str, _FutureSpec] = {
    "MES": _FutureSpec("SPY", 10.0, False, 300_000, 3.0, 0.037),
    "ES": _FutureSpec("SPY", 10.0, False, 400_000, 4.0, 0.037),
    "MNQ": _FutureSpec("QQQ", 41.0, False, 350_000, 2.5, 0.042),
    "NQ": _FutureSpec("QQQ", 41.0, False, 220_000, 2.0, 0.042),
    "M2K": _FutureSpec("IWM", 10.0, False, 50_000, 2.0, 0.035),
    "RTY": _FutureSpec("IWM", 10.0, False, 45_000, 2.0, 0.035),
    "MYM": _FutureSpec("SPY", 78.0, False, 50_000, 2.0, 0.033),
    "YM": _FutureSpec("SPY", 78.0, False, 40_000, 2.0, 0.033),
    "MGC": _FutureSpec("C:XAUUSD", 1.0, True, 40_000, 2.0, 0.05),
    "GC": _FutureSpec("C:XAUUSD", 1.0, True, 120_000, 2.0, 0.05),
}


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; this is the same everywhere, forever.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    words = [seed % 2**64] + [_stable_hash(k) if isinstance(k, str) else k % 2**64 for k in keys]
    return np.random.default_rng(words)


def _unit(text: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) derived from a name."""
    return (_stable_hash(f"{salt}:{text}") % 1_000_003) / 1_000_003


def _stock_spec(ticker: str) -> _StockSpec:
    if ticker in _STOCKS:
        return _STOCKS[ticker]
    # Unknown tickers get plausible, stable parameters derived from the name.
    price = round(20 + 280 * _unit(ticker, "price"), 2)
    tiers = ((0.05, 1.0), (math.inf, 2.5)) if price < 100 else ((0.05, 2.5), (math.inf, 5.0))
    return _StockSpec(
        price=price,
        beta=0.7 + 0.9 * _unit(ticker, "beta"),
        idio_vol=0.15 + 0.25 * _unit(ticker, "idio"),
        trades_per_day=20_000 + 180_000 * _unit(ticker, "trades"),
        trade_size=100,
        daily_options=False,
        strike_tiers=tiers,
        option_activity=0.4,
        option_trades=3,
        skew=-0.05,
        curvature=0.04,
        earnings_move=0.0 if ticker in _ETFS else 0.05,
    )


def _fx_spec(pair: str) -> _FxSpec:
    if pair in _FX:
        return _FX[pair]
    sign = -1 if pair.endswith("USD") else (1 if pair.startswith("USD") else 0)
    price = 0.5 + 1.5 * _unit(pair, "price")
    return _FxSpec(round(price, 4), 0.07 + 0.05 * _unit(pair, "vol"), sign, 0.6 if sign else 0.0, 50_000, 5)


# ============================================================================= the minute clock


@dataclass
class _Grid:
    """One UTC minute clock covering the requested dates plus margins, with calendar facts per minute."""

    t0: int  # UTC ns of minute 0
    n: int
    ny_day: np.ndarray  # New York local day number (days since 1970-01-01)
    ny_min: np.ndarray  # New York local minute of the day
    utc_day: np.ndarray
    day0: int  # first NY day number
    n_days: int
    day_idx: np.ndarray  # ny_day - day0
    session_days: np.ndarray  # NY day numbers of NYSE sessions, sorted
    session_open: dict[int, int]  # NY day number -> UTC ns of the regular open
    session_close: dict[int, int]  # NY day number -> UTC ns of the regular close
    reg: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    globex: np.ndarray  # CME Globex is open
    futures_day: np.ndarray  # trade date (NY day number) of each Globex minute, -1 if none
    fx_open: np.ndarray
    open_min: np.ndarray  # regular open minute of each minute's NY day (0 when not a session)
    close_min: np.ndarray  # regular close minute of each minute's NY day

    def ns_at(self, index: np.ndarray) -> np.ndarray:
        return self.t0 + index.astype(np.int64) * _MIN_NS


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _date_of(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))


@lru_cache(maxsize=4096)
def _ny_midnight_ns(day: dt.date) -> int:
    return int(pd.Timestamp(day).tz_localize(NY).value)


def _build_grid(start: dt.date, end: dt.date) -> _Grid:
    # Four days of margin before start reach back to the Sunday 18:00 Globex open of a week starting
    # after a Monday holiday; two days after end cover after-hours trading past UTC midnight.
    first = start - dt.timedelta(days=4)
    last = end + dt.timedelta(days=2)
    t0 = _day_number(first) * _DAY_NS
    n = (_day_number(last) - _day_number(first)) * 1440
    ns = t0 + np.arange(n, dtype=np.int64) * _MIN_NS
    local = pd.DatetimeIndex(ns).tz_localize("UTC").tz_convert(NY).tz_localize(None).asi8
    ny_day = local // _DAY_NS
    ny_min = ((local % _DAY_NS) // _MIN_NS).astype(np.int32)
    utc_day = ns // _DAY_NS
    day0 = int(ny_day[0])
    n_days = int(ny_day[-1]) - day0 + 1
    day_idx = (ny_day - day0).astype(np.int64)

    schedule = nyse_sessions(_date_of(day0), _date_of(day0 + n_days - 1))
    session_days = np.array([_day_number(ts.date()) for ts in schedule.index], dtype=np.int64)
    opens = schedule["open"].dt.tz_convert(NY)
    closes = schedule["close"].dt.tz_convert(NY)
    open_by_day = np.zeros(n_days, dtype=np.int32)
    close_by_day = np.zeros(n_days, dtype=np.int32)
    is_session = np.zeros(n_days, dtype=bool)
    for d, o, c in zip(session_days, opens, closes, strict=True):
        is_session[d - day0] = True
        open_by_day[d - day0] = o.hour * 60 + o.minute
        close_by_day[d - day0] = c.hour * 60 + c.minute
    session_open = {int(d): int(v.value) for d, v in zip(session_days, schedule["open"], strict=True)}
    session_close = {int(d): int(v.value) for d, v in zip(session_days, schedule["close"], strict=True)}

    sess = is_session[day_idx]
    om = open_by_day[day_idx]
    cm = close_by_day[day_idx]
    m = ny_min
    reg = sess & (m >= om) & (m < cm)
    pre = sess & (m >= _PRE_OPEN) & (m < om)
    half = sess & (cm < _REG_CLOSE)
    post = sess & (m >= cm) & (m < np.where(half, _HALF_DAY_POST_END, _POST_END))

    # CME Globex: Sunday 18:00 to Friday 17:00 New York with a daily 17:00-18:00 break; on an exchange
    # holiday trading halts at 13:00 (Christmas and New Year's Day stay shut until 18:00); on NYSE half
    # days the equity and metal futures close at 13:15.
    weekday = (ny_day + _EPOCH_THURSDAY) % 7
    month_day = _month_day(ny_day)
    closed_all_day = np.isin(month_day, (1225, 101))
    holiday = (weekday < 5) & ~sess
    evening = m >= _GLOBEX_REOPEN
    globex = np.where(weekday == 6, evening, False)
    globex |= (weekday <= 3) & ((m < _GLOBEX_BREAK) | evening)
    globex |= (weekday == 4) & (m < _GLOBEX_BREAK)
    globex &= ~(holiday & (m >= _HOLIDAY_HALT) & ~evening)
    globex &= ~(holiday & closed_all_day & ~evening)
    globex &= ~(half & (m >= _HALF_DAY_FUTURES_CLOSE) & ~evening)
    key = ny_day + evening.astype(np.int64)
    pos = np.searchsorted(session_days, key, side="left")
    futures_day = np.where(pos < len(session_days), session_days[np.minimum(pos, len(session_days) - 1)], -1)
    futures_day = np.where(globex, futures_day, -1)

    # Forex: Sunday 17:00 to Friday 17:00 New York, and no trading on the UTC days forex_days omits.
    fx_days = np.array([_day_number(d) for d in forex_days(_date_of(utc_day[0]), _date_of(utc_day[-1]))])
    fx_open = np.where(weekday == 6, m >= _GLOBEX_BREAK, weekday <= 3)
    fx_open |= (weekday == 4) & (m < _GLOBEX_BREAK)
    fx_open &= np.isin(utc_day, fx_days)

    return _Grid(
        t0=t0, n=n, ny_day=ny_day, ny_min=ny_min, utc_day=utc_day, day0=day0, n_days=n_days,
        day_idx=day_idx, session_days=session_days, session_open=session_open, session_close=session_close,
        reg=reg, pre=pre, post=post, globex=globex, futures_day=futures_day, fx_open=fx_open,
        open_min=om, close_min=cm,
    )


def _month_day(day_number: np.ndarray) -> np.ndarray:
    """``month * 100 + day`` of each day number."""
    days = day_number.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    dom = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    return month * 100 + dom


# ============================================================================= intraday profiles
#
# Volatility weights are relative standard deviations per minute, normalised so that a full
# ordinary weekday sums to variance 1 (a day's state sd is then the close-to-close daily sd).
# Activity weights are relative trade intensities normalised so that an ordinary weekday sums to 1.


def _equity_vol_weights(
    m: np.ndarray, reg: np.ndarray, pre: np.ndarray, post: np.ndarray, globex: np.ndarray,
    om: np.ndarray, cm: np.ndarray,
) -> np.ndarray:
    mf = m.astype(float)
    w = np.full(mf.shape, 0.02)  # weekend and holiday news still moves the next open a little
    w = np.where(globex, np.where((mf >= 180) & (mf < _REG_OPEN), 0.22, 0.16), w)  # Europe from 03:00
    w = np.where(pre, 0.3 + np.where(mf >= 510, 1.2 * np.exp(-(mf - 510) / 6), 0.0), w)  # 08:30 data
    u = mf - om
    v = cm - 1 - mf
    w = np.where(reg, 1.0 + 1.5 * np.exp(-np.maximum(u, 0) / 15) + 0.5 * np.exp(-np.maximum(v, 0) / 10), w)
    return np.where(post, 0.25 + 0.4 * np.exp(-np.maximum(mf - cm, 0) / 8), w)


def _stock_activity(
    m: np.ndarray, reg: np.ndarray, pre: np.ndarray, post: np.ndarray, om: np.ndarray, cm: np.ndarray
) -> np.ndarray:
    mf = m.astype(float)
    u = np.maximum(mf - om, 0)
    v = np.maximum(cm - 1 - mf, 0)
    a = np.zeros(mf.shape)
    # U shape plus the closing auction in the last minute.
    a = np.where(reg, 1.0 + 2.2 * np.exp(-u / 12) + 1.4 * np.exp(-v / 18) + 4.0 * (v == 0), a)
    ramp = 0.004 + 0.25 * np.clip((mf - _PRE_OPEN) / (_REG_OPEN - _PRE_OPEN), 0, 1) ** 3
    a = np.where(pre, ramp + np.where(mf >= 510, 0.3 * np.exp(-(mf - 510) / 5), 0.0), a)
    return np.where(post, 0.003 + 0.25 * np.exp(-np.maximum(mf - cm, 0) / 10), a)


def _fx_vol_weights(utc_min: np.ndarray, ny_min: np.ndarray, is_open: np.ndarray) -> np.ndarray:
    hour = utc_min / 60.0
    w = np.select([hour < 7, hour < 12, hour < 16, hour < 21], [0.55, 1.0, 1.35, 0.7], 0.4)
    ny = ny_min.astype(float)
    w = w + np.where(ny >= 510, np.exp(-(ny - 510) / 5), 0.0)  # 08:30 New York data releases
    w = np.where(_fx_rollover(ny_min), 0.3 * w, w)
    return np.where(is_open, w, 0.01)


def _fx_rollover(ny_min: np.ndarray) -> np.ndarray:
    # Around the 17:00 New York rollover liquidity providers step away: few quotes, thin bars.
    return (ny_min >= _GLOBEX_BREAK - 5) & (ny_min < _GLOBEX_BREAK + 10)


def _futures_activity(m: np.ndarray, globex: np.ndarray, metal: bool) -> np.ndarray:
    mf = m.astype(float)
    if metal:  # COMEX: busiest 08:20-13:30 New York, London in the morning
        a = np.select(
            [(mf >= 500) & (mf < 810), (mf >= 180) & (mf < 500), (mf >= 810) & (mf < _GLOBEX_BREAK)],
            [1.0 + 1.0 * np.exp(-np.maximum(mf - 500, 0) / 15), 0.4, 0.25],
            0.15,
        )
    else:
        rth = (mf >= _REG_OPEN) & (mf < _REG_CLOSE)
        a = np.select(
            [rth, (mf >= _REG_CLOSE) & (mf < _GLOBEX_BREAK), (mf >= 180) & (mf < 510), (mf >= 510) & (mf < _REG_OPEN)],
            [
                1.0 + 1.5 * np.exp(-np.maximum(mf - _REG_OPEN, 0) / 15)
                + 1.0 * np.exp(-np.maximum(_REG_CLOSE - 1 - mf, 0) / 15),
                0.25,
                0.12,
                0.35 + 1.5 * np.exp(-np.maximum(mf - 510, 0) / 5),
            ],
            0.06,
        )
    return np.where(globex, a, 0.0)


def _reference_weekday() -> dict[str, np.ndarray]:
    """Calendar masks of an ordinary Tuesday in winter (UTC = New York + 5 h)."""
    m = np.arange(1440)
    return {
        "m": m,
        "reg": (m >= _REG_OPEN) & (m < _REG_CLOSE),
        "pre": (m >= _PRE_OPEN) & (m < _REG_OPEN),
        "post": (m >= _REG_CLOSE) & (m < _POST_END),
        "globex": (m < _GLOBEX_BREAK) | (m >= _GLOBEX_REOPEN),
        "om": np.full(1440, _REG_OPEN),
        "cm": np.full(1440, _REG_CLOSE),
        "utc": (m + 300) % 1440,
    }


@dataclass
class _Profiles:
    eq_vol: np.ndarray
    fx_vol: np.ndarray
    stock_activity: np.ndarray
    fx_activity: np.ndarray
    futures_activity: np.ndarray
    metal_activity: np.ndarray

    @classmethod
    def build(cls, g: _Grid) -> _Profiles:
        r = _reference_weekday()
        eq_ref = _equity_vol_weights(r["m"], r["reg"], r["pre"], r["post"], r["globex"], r["om"], r["cm"])
        fx_ref = _fx_vol_weights(r["utc"], r["m"], np.ones(1440, dtype=bool))
        st_ref = _stock_activity(r["m"], r["reg"], r["pre"], r["post"], r["om"], r["cm"])
        fx_act_ref = fx_ref * np.where(_fx_rollover(r["m"]), 0.1, 1.0)
        fut_ref = _futures_activity(r["m"], r["globex"], metal=False)
        met_ref = _futures_activity(r["m"], r["globex"], metal=True)

        utc_min = ((g.t0 // _MIN_NS) + np.arange(g.n)) % 1440
        eq = _equity_vol_weights(g.ny_min, g.reg, g.pre, g.post, g.globex, g.open_min, g.close_min)
        fx = _fx_vol_weights(utc_min, g.ny_min, g.fx_open)
        fx_act = np.where(g.fx_open, fx * np.where(_fx_rollover(g.ny_min), 0.1, 1.0), 0.0)
        return cls(
            eq_vol=eq / np.sqrt(np.sum(eq_ref**2)),
            fx_vol=fx / np.sqrt(np.sum(fx_ref**2)),
            stock_activity=_stock_activity(g.ny_min, g.reg, g.pre, g.post, g.open_min, g.close_min)
            / st_ref.sum(),
            fx_activity=fx_act / fx_act_ref.sum(),
            futures_activity=_futures_activity(g.ny_min, g.globex, metal=False) / fut_ref.sum(),
            metal_activity=_futures_activity(g.ny_min, g.globex, metal=True) / met_ref.sum(),
        )


# ============================================================================= latent price paths


@dataclass
class _Latent:
    logp: np.ndarray  # log price at each minute boundary (n + 1)
    sd: np.ndarray  # sd of each minute's log return
    day_sd: np.ndarray  # the daily volatility state (24 h sd) per New York day
    base_day_sd: float  # its long-run level
    weights: np.ndarray  # the intraday volatility profile the path was built with
    events: tuple[tuple[int, float], ...] = ()  # (UTC ns, jump sd) of scheduled jumps (earnings)

    def vol_factor(self) -> np.ndarray:
        """Current volatility relative to normal, for the volume-volatility link."""
        return self.sd / (self.base_day_sd * self.weights)


def _student_t(rng: np.random.Generator, n: int, dof: float = 4.5) -> np.ndarray:
    return rng.standard_t(dof, n) * math.sqrt((dof - 2) / dof)  # unit variance, fat tails


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series with persistence ``phi`` and stationary sd ``sd``."""
    shocks = rng.standard_normal(n) * sd * math.sqrt(1 - phi * phi)
    start = rng.standard_normal() * sd
    return lfilter([1.0], [1.0, -phi], shocks, zi=[phi * start])[0]


def _stochastic_sd(
    rng: np.random.Generator, g: _Grid, weights: np.ndarray, base_day_sd: float, z: np.ndarray, *,
    log_vol_sd: float, persistence: float, leverage: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Minute sd = daily state x intraday state x profile; returns (minute sd, daily state sd)."""
    # A day's standardised return shock feeds the next day's log-volatility (leverage effect:
    # with leverage < 0 a down day raises tomorrow's volatility).
    w2 = weights * weights
    day_shock = np.bincount(g.day_idx, weights=weights * z, minlength=g.n_days) / np.sqrt(
        np.bincount(g.day_idx, weights=w2, minlength=g.n_days) + 1e-12
    )
    eta = log_vol_sd * math.sqrt(1 - persistence**2)
    noise = rng.standard_normal(g.n_days)
    lagged = np.concatenate(([0.0], day_shock[:-1]))
    shocks = eta * (leverage * lagged + math.sqrt(1 - leverage**2) * noise)
    h0 = rng.standard_normal() * log_vol_sd
    h = lfilter([1.0], [1.0, -persistence], shocks, zi=[persistence * h0])[0]
    day_sd = base_day_sd * np.exp(h - log_vol_sd**2)  # E[day_sd^2] = base^2
    intraday_sd = 0.25
    x = _ar1(rng, g.n, 0.985, intraday_sd)  # minutes-long volatility bursts within the day
    return day_sd[g.day_idx] * weights * np.exp(x - intraday_sd**2), day_sd


class _Model:
    """Latent paths of every instrument on one grid, generated on demand and cached."""

    def __init__(self, grid: _Grid, seed: int, start: dt.date, end: dt.date, plant: Plant | None = None) -> None:
        self.grid = grid
        self.seed = seed
        self.plant = plant
        self.start = start
        self.end = end
        self.profiles = _Profiles.build(grid)
        self._latent: dict[str, _Latent] = {}
        self._market: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._usd: np.ndarray | None = None
        ahead = nyse_sessions(start - dt.timedelta(days=7), end + dt.timedelta(days=100))
        self.sessions_ahead: list[dt.date] = [ts.date() for ts in ahead.index]
        self.close_ns: dict[dt.date, int] = {
            ts.date(): int(c.value) for ts, c in zip(ahead.index, ahead["close"], strict=True)
        }

    def market(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The equity market factor: (log returns, minute sd, daily state sd)."""
        if self._market is None:
            g = self.grid
            rng = _rng(self.seed, "market")
            w = self.profiles.eq_vol
            z = _student_t(rng, g.n)
            sd, day_sd = _stochastic_sd(
                rng, g, w, _MARKET_VOL / math.sqrt(_TRADING_DAYS), z,
                log_vol_sd=0.35, persistence=0.92, leverage=-0.6,
            )
            r = sd * z + (_MARKET_DRIFT / _TRADING_DAYS) * w * w
            # Macro news jumps (CPI, FOMC ...), most likely when the market is most active.
            count = rng.poisson(0.12 * g.n_days)
            p = w * w / np.sum(w * w)
            at = rng.choice(g.n, size=count, p=p)
            np.add.at(r, at, rng.normal(0.0, 0.5, count) * day_sd[g.day_idx[at]])
            self._market = (r, sd, day_sd)
        return self._market

    def usd(self) -> np.ndarray:
        if self._usd is None:
            self._usd = _student_t(_rng(self.seed, "usd"), self.grid.n)
        return self._usd

    def latent(self, ticker: str) -> _Latent:
        if ticker not in self._latent:
            if ticker.startswith("C:"):
                self._latent[ticker] = self._fx_latent(ticker[2:])
            else:
                self._latent[ticker] = self._stock_latent(ticker)
        return self._latent[ticker]

    def _stock_latent(self, ticker: str) -> _Latent:
        g = self.grid
        spec = _stock_spec(ticker)
        rng = _rng(self.seed, "stock", ticker)
        mr, msd, mday = self.market()
        w = self.profiles.eq_vol
        z = _student_t(rng, g.n)
        base_idio = spec.idio_vol / math.sqrt(_TRADING_DAYS)
        isd, iday = _stochastic_sd(rng, g, w, base_idio, z, log_vol_sd=0.3, persistence=0.9, leverage=-0.3)
        r = spec.beta * mr + isd * z
        events: list[tuple[int, float]] = []
        if spec.earnings_move > 0:
            for day in _earnings_dates(ticker, self.start, self.end):
                close = g.session_close.get(_day_number(day))
                if close is None:
                    continue
                at = (close + 5 * _MIN_NS - g.t0) // _MIN_NS  # reported five minutes after the close
                r[at] += rng.normal(0.0, spec.earnings_move)
                events.append((close + 5 * _MIN_NS, spec.earnings_move))
        logp = np.empty(g.n + 1)
        logp[0] = math.log(spec.price)
        np.cumsum(r, out=logp[1:])
        logp[1:] += logp[0]
        return _Latent(
            logp=logp,
            sd=np.sqrt((spec.beta * msd) ** 2 + isd**2),
            day_sd=np.sqrt((spec.beta * mday) ** 2 + iday**2),
            base_day_sd=math.sqrt((spec.beta * _MARKET_VOL) ** 2 + spec.idio_vol**2) / math.sqrt(_TRADING_DAYS),
            weights=w,
            events=tuple(events),
        )

    def _fx_latent(self, pair: str) -> _Latent:
        g = self.grid
        spec = _fx_spec(pair)
        rng = _rng(self.seed, "fx", pair)
        own = _student_t(rng, g.n)
        if spec.usd_sign:
            rho = spec.usd_corr
            z = rho * spec.usd_sign * self.usd() + math.sqrt(1 - rho * rho) * own
        else:
            z = own
        w = self.profiles.fx_vol
        base = spec.vol / math.sqrt(260.0)  # forex trades five days a week all year
        sd, day_sd = _stochastic_sd(rng, g, w, base, z, log_vol_sd=0.3, persistence=0.9, leverage=0.0)
        r = sd * z
        plant = self.plant
        if plant is not None and plant.strength > 0 and plant.name == "forex_trend" and plant.params["ticker"] == f"C:{pair}":
            r = r + _forex_trend_drift(self.seed, plant, sd)
        count = rng.poisson(0.05 * g.n_days)
        at = rng.choice(g.n, size=count, p=w * w / np.sum(w * w))
        np.add.at(r, at, rng.normal(0.0, 0.4, count) * day_sd[g.day_idx[at]])
        logp = np.empty(g.n + 1)
        logp[0] = math.log(spec.price)
        np.cumsum(r, out=logp[1:])
        logp[1:] += logp[0]
        return _Latent(logp=logp, sd=sd, day_sd=day_sd, base_day_sd=base, weights=w)

    def expiries(self, ticker: str, day: dt.date) -> list[dt.date]:
        """Listed option expiries of ``ticker`` on ``day`` that this generator trades."""
        spec = _stock_spec(ticker)
        out = set(weekly_option_expiries(day, day + dt.timedelta(days=28)))
        if spec.daily_options:
            i = self.sessions_ahead.index(day)
            out.update(self.sessions_ahead[i : i + 5])
        year, month = day.year, day.month
        monthlies = 0
        while monthlies < 2:
            expiry = monthly_option_expiry(year, month)
            if expiry >= day:
                out.add(expiry)
                monthlies += 1
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return sorted(out)


def _earnings_dates(ticker: str, start: dt.date, end: dt.date) -> list[dt.date]:
    if ticker in _EARNINGS:
        return [d for d in _EARNINGS[ticker] if start <= d <= end]
    out = []
    for year in range(start.year, end.year + 1):
        for month in (1, 4, 7, 10):
            day = session_on_or_before(dt.date(year, month, 20) + dt.timedelta(days=int(20 * _unit(ticker, f"earn{year}{month}"))))
            if start <= day <= end:
                out.append(day)
    return out


# ============================================================================= minute bars


@dataclass
class _Minutes:
    """Minute bars of one ticker on the grid (rows in time order)."""

    ticker: str
    index: np.ndarray  # grid minute of each bar
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    transactions: np.ndarray
    file_day: np.ndarray  # day number of the file the bar belongs to
    regular: np.ndarray  # counts for the day bar's open/high/low/close

    def frame(self, g: _Grid) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ticker": pl.Series([self.ticker], dtype=pl.String).new_from_index(0, len(self.index)),
                "volume": self.volume.astype(np.int64),
                "open": self.open,
                "close": self.close,
                "high": self.high,
                "low": self.low,
                "window_start": g.ns_at(self.index),
                "transactions": self.transactions.astype(np.int64),
                "_day": self.file_day.astype(np.int64),
                "_reg": self.regular,
            }
        )


def _round_to(x: np.ndarray, tick: float, decimals: int) -> np.ndarray:
    # The second round turns k * tick into the shortest decimal (2071.3, not 2071.3000000000002).
    return np.round(np.round(x / tick) * tick, decimals)


def _decimals(tick: float) -> int:
    text = f"{tick:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


@dataclass
class _BarNoise:
    """The random draws behind a run of minute bars, drawn before any price is known.

    Prices are a pure function of these draws and the latent path (:func:`_price_bars`), so a planted
    edge can change the path after the draws and re-price only the bars it needs (one day at a time)
    while every random stream stays exactly where it is in the null market.
    """

    u: np.ndarray  # (4, n): which extreme of the bridge, bid or ask at the open and the close
    odd: np.ndarray | None  # (4, n): uniform draws deciding sub-penny prints, None without them
    jitter: np.ndarray | None  # (4, n): the sub-penny offsets

    def take(self, rows: np.ndarray) -> _BarNoise:
        return _BarNoise(
            self.u[:, rows],
            None if self.odd is None else self.odd[:, rows],
            None if self.jitter is None else self.jitter[:, rows],
        )


def _bar_noise(rng: np.random.Generator, n: int, *, tick: float, subpenny: np.ndarray | float = 0.0) -> _BarNoise:
    # Same calls in the same order as before the split, so seeds keep writing the same files.
    u = rng.random((4, n))
    if np.any(np.asarray(subpenny) > 0):
        return _BarNoise(u, rng.random((4, n)), rng.uniform(-tick / 2, tick / 2, (4, n)))
    return _BarNoise(u, None, None)


def _bars(
    rng: np.random.Generator, logp: np.ndarray, sd: np.ndarray, index: np.ndarray, trades: np.ndarray, *,
    tick: float, half_spread: np.ndarray | float, subpenny: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OHLC of the given minutes from the latent path (see :func:`_price_bars`)."""
    noise = _bar_noise(rng, len(index), tick=tick, subpenny=subpenny)
    return _price_bars(noise, logp, sd, index, trades, tick=tick, half_spread=half_spread, subpenny=subpenny)


def _price_bars(
    noise: _BarNoise, logp: np.ndarray, sd: np.ndarray, index: np.ndarray, trades: np.ndarray, *,
    tick: float, half_spread: np.ndarray | float, subpenny: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OHLC of the given minutes from the latent path and pre-drawn noise.

    Open and close are the latent prices at the minute's edges plus a trade at the bid or the ask;
    the high and low are exact draws of the maximum and minimum of the Brownian bridge between them
    (fewer trades sample the path more coarsely, so the range shrinks). One trade makes O=H=L=C.
    """
    u = noise.u
    a = logp[index]
    b = logp[index + 1]
    var = sd[index] ** 2 * np.minimum(1.0, trades / 8.0)
    gap2 = (b - a) ** 2
    top = 0.5 * (a + b + np.sqrt(gap2 - 2.0 * var * np.log1p(-u[0])))
    bottom = 0.5 * (a + b - np.sqrt(gap2 - 2.0 * var * np.log1p(-u[1])))
    op = np.exp(a) + half_spread * np.where(u[2] < 0.5, -1.0, 1.0)
    cl = np.exp(b) + half_spread * np.where(u[3] < 0.5, -1.0, 1.0)
    hi = np.exp(top) + half_spread
    lo = np.exp(bottom) - half_spread
    op = np.where(trades == 1, cl, op)
    few = trades <= 2
    hi = np.where(few, np.maximum(op, cl), hi)
    lo = np.where(few, np.minimum(op, cl), lo)
    decimals = _decimals(tick)
    px = _round_to(np.stack([op, hi, lo, cl]), tick, decimals)
    if noise.odd is not None and noise.jitter is not None:  # midpoint and dark-pool prints: 4 decimals
        odd = noise.odd < subpenny
        px = np.where(odd, np.round(px + noise.jitter, 4), px)
    px = np.maximum(px, tick)
    op, hi, lo, cl = px
    hi = np.maximum(hi, np.maximum(op, cl))
    lo = np.minimum(lo, np.minimum(op, cl))
    return op, hi, lo, cl


def _in_range(day_numbers: np.ndarray, start: dt.date, end: dt.date) -> np.ndarray:
    return (day_numbers >= _day_number(start)) & (day_numbers <= _day_number(end))


def _stock_minutes(model: _Model, ticker: str) -> _Minutes:
    g = model.grid
    spec = _stock_spec(ticker)
    lat = model.latent(ticker)
    rng = _rng(model.seed, "stock-bars", ticker)
    idx = np.flatnonzero((g.pre | g.reg | g.post) & _in_range(g.ny_day, model.start, model.end))
    day_level = np.exp(rng.normal(0.0, 0.2, g.n_days) - 0.02)
    lam = (
        spec.trades_per_day * model.profiles.stock_activity[idx] * lat.vol_factor()[idx] ** 0.8
        * day_level[g.day_idx[idx]]
    )
    trades = rng.poisson(lam)
    keep = trades > 0  # Polygon writes a bar only for minutes with trades
    idx, trades = idx[keep], trades[keep]
    regular = g.reg[idx]
    half_spread = np.where(regular, 0.005, 0.02)  # extended hours quote wider
    # The closing auction prints in whole cents, so the day bar's close does too.
    subpenny = np.where(regular & (g.ny_min[idx] == g.close_min[idx] - 1), 0.0, 0.03)
    noise = _bar_noise(rng, len(idx), tick=0.01, subpenny=subpenny)
    size = spec.trade_size * np.exp(rng.normal(-0.06, 0.35, len(idx)))
    volume = np.maximum(trades, np.round(trades * size)).astype(np.int64)
    transactions = trades.copy()

    def price(rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sel = np.arange(len(idx))[rows]
        return _price_bars(
            noise.take(sel), lat.logp, lat.sd, idx[sel], trades[sel], tick=0.01,
            half_spread=half_spread[sel], subpenny=subpenny[sel],
        )

    plant = model.plant
    if plant is not None and plant.strength > 0 and plant.name == "zrce" and plant.params["ticker"] == ticker:
        # Before the bars are priced (and before options and futures read this latent path).
        _plant_zrce(model, plant, lat, idx, volume, transactions, price)
    op, hi, lo, cl = price(slice(None))
    return _Minutes(ticker, idx, op, hi, lo, cl, volume, transactions, g.ny_day[idx], regular)


def _forex_minutes(model: _Model, ticker: str) -> _Minutes:
    g = model.grid
    spec = _fx_spec(ticker[2:])
    lat = model.latent(ticker)
    rng = _rng(model.seed, "fx-bars", ticker)
    idx = np.flatnonzero(g.fx_open & _in_range(g.utc_day, model.start, model.end))
    day_level = np.exp(rng.normal(0.0, 0.15, g.n_days) - 0.01)
    lam = (
        spec.ticks_per_day * model.profiles.fx_activity[idx] * lat.vol_factor()[idx] ** 0.8
        * day_level[g.day_idx[idx]]
    )
    ticks = rng.poisson(lam)
    keep = ticks > 0
    idx, ticks = idx[keep], ticks[keep]
    op, hi, lo, cl = _bars(rng, lat.logp, lat.sd, idx, ticks, tick=10.0**-spec.decimals, half_spread=0.0)
    # Polygon's forex aggregates are built from quotes: volume and transactions both count them.
    return _Minutes(ticker, idx, op, hi, lo, cl, ticks, ticks, g.utc_day[idx], np.ones(len(idx), dtype=bool))


@dataclass(frozen=True, slots=True)
class _FutureContract:
    ticker: str
    last_day: dt.date  # last trade date written (expiry, or before first notice for gold)
    roll: dt.date  # the date volume crosses over to the next contract
    expiry: dt.date  # for the carry


def _future_contracts(root: str, start: dt.date, end: dt.date) -> list[_FutureContract]:
    metal = _FUTURES[root].metal
    out = []
    for year in range(start.year, end.year + 2):
        for month in CONTRACT_MONTHS[root]:
            if metal:
                # Gold: longs leave before first notice (end of the previous month).
                last = session_on_or_before(dt.date(year, month, 1) - dt.timedelta(days=1))
                roll = last - dt.timedelta(days=5)
                expiry = dt.date(year, month, 27)
            else:
                expiry = monthly_option_expiry(year, month)
                last = expiry
                roll = expiry - dt.timedelta(days=8)
            out.append(_FutureContract(future_ticker(root, year, month), last, roll, expiry))
    out.sort(key=lambda c: c.last_day)
    return [c for c in out if c.last_day >= start - dt.timedelta(days=100)]


def _futures_shares(contracts: list[_FutureContract], g: _Grid) -> np.ndarray:
    """Share of the root's volume in each contract per NY day (contracts x days); 0 = not written."""
    shares = np.zeros((len(contracts), g.n_days))
    for day_number in g.session_days:
        day = _date_of(day_number)
        k = next(i for i, c in enumerate(contracts) if c.last_day >= day)
        front = contracts[k]
        share_next = 0.0
        if k + 1 < len(contracts) and day >= front.roll - dt.timedelta(days=6):
            x = (day - front.roll).days / 1.5
            share_next = min(0.97, max(0.03, 1.0 / (1.0 + math.exp(-x))))
            shares[k + 1, day_number - g.day0] = share_next
        shares[k, day_number - g.day0] = 1.0 - share_next
    return shares


def _futures_minutes(model: _Model, root: str) -> list[_Minutes]:
    g = model.grid
    spec = _FUTURES[root]
    tick = TICK_SIZES[root]
    ref = model.latent(spec.reference)
    rng = _rng(model.seed, "futures", root)
    contracts = _future_contracts(root, model.start, model.end)
    shares = _futures_shares(contracts, g)
    live = (g.futures_day >= 0) & _in_range(g.futures_day, model.start, model.end)
    trade_day_idx = np.where(live, g.futures_day - g.day0, 0)
    activity = model.profiles.metal_activity if spec.metal else model.profiles.futures_activity
    day_level = np.exp(rng.normal(0.0, 0.2, g.n_days) - 0.02)
    # The futures-ETF basis wanders by a few ticks around fair carry.
    price0 = math.exp(ref.logp[0]) * spec.ratio
    basis = np.concatenate(([0.0], _ar1(rng, g.n, 0.995, 1.5 * tick / price0)))
    edges_ns = g.t0 + np.arange(g.n + 1, dtype=np.int64) * _MIN_NS
    out = []
    for k, contract in enumerate(contracts):
        share = shares[k][trade_day_idx]
        idx = np.flatnonzero(live & (share > 0))
        if len(idx) == 0:
            continue
        expiry_ns = _ny_midnight_ns(contract.expiry) + 16 * 60 * _MIN_NS
        logf = ref.logp + math.log(spec.ratio) + spec.carry * (expiry_ns - edges_ns) / _YEAR_NS + basis
        lam = (
            spec.trades_per_day * activity[idx] * ref.vol_factor()[idx] ** 0.8 * share[idx]
            * day_level[trade_day_idx[idx]]
        )
        trades = rng.poisson(lam)
        keep = trades > 0
        idx, trades = idx[keep], trades[keep]
        op, hi, lo, cl = _bars(rng, logf, ref.sd, idx, trades, tick=tick, half_spread=tick / 2)
        volume = np.maximum(trades, np.round(trades * spec.trade_size * np.exp(rng.normal(-0.12, 0.5, len(idx)))))
        out.append(
            _Minutes(contract.ticker, idx, op, hi, lo, cl, volume.astype(np.int64), trades,
                     g.futures_day[idx], np.ones(len(idx), dtype=bool))
        )
    return out


# ============================================================================= options


def _strikes(spot: float, half_width: float, tiers: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Listed strikes within ``spot +- half_width``: the finest step near the money, coarser further out."""
    steps_milli = [round(step * 1000) for _, step in tiers]
    grid = math.gcd(*steps_milli)  # every tier's strikes lie on this grid ($0.50 for $1 and $2.50)
    half_width = max(half_width, 2.5 * min(steps_milli) / 1000)
    lo = max(spot - half_width, grid / 1000)
    milli = np.arange(math.ceil(lo * 1000 / grid), math.floor((spot + half_width) * 1000 / grid) + 1) * grid
    distance = np.abs(milli / 1000 / spot - 1)
    bounds = np.array([bound for bound, _ in tiers])
    steps = np.array(steps_milli, dtype=np.int64)
    tier = np.minimum(np.searchsorted(bounds, distance, side="right"), len(tiers) - 1)
    return milli[milli % steps[tier] == 0] / 1000


def _atm_term(short: float, long: float, years: float) -> float:
    """ATM implied vol for a maturity: variance mean-reverts from today's level to the long-run one."""
    kappa = 8.0
    frac = (1 - math.exp(-kappa * years)) / (kappa * years)
    return math.sqrt(long**2 + (short**2 - long**2) * frac)


def _smile(log_moneyness: np.ndarray, years: np.ndarray, atm: np.ndarray, skew: float, curvature: float) -> np.ndarray:
    # Skew and curvature in standardised log-moneyness, so short expiries get the steep smile they have.
    x = np.clip(log_moneyness / (atm * np.sqrt(np.maximum(years, 1 / (365 * 24)))), -4.0, 4.0)
    return atm * np.maximum(0.5, 1.0 + skew * x + curvature * x * x)


@dataclass
class _Underlying:
    """The underlying's written bars on the full grid (NaN where it did not trade)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_minutes(cls, bars: _Minutes, n: int) -> _Underlying:
        arrays = []
        for values in (bars.open, bars.high, bars.low, bars.close):
            full = np.full(n, np.nan)
            full[bars.index] = values
            arrays.append(full)
        return cls(*arrays)


def _option_day(model: _Model, ticker: str, under: _Underlying, day: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Minute and day bars of ``ticker``'s options on one session."""
    g = model.grid
    spec = _stock_spec(ticker)
    lat = model.latent(ticker)
    dn = _day_number(day)
    open_ns, close_ns = g.session_open[dn], g.session_close[dn]
    minutes = np.arange((open_ns - g.t0) // _MIN_NS, (close_ns - g.t0) // _MIN_NS)
    t_ns = g.ns_at(minutes)
    latent_close = np.exp(lat.logp[minutes + 1])
    so, sh, sl, sc = (
        np.where(np.isnan(a[minutes]), latent_close, a[minutes]) for a in (under.open, under.high, under.low, under.close)
    )
    spot = float(so[0])
    day_sd = float(lat.day_sd[dn - g.day0])
    short = IV_PREMIUM * day_sd * math.sqrt(_TRADING_DAYS)
    long = IV_PREMIUM * lat.base_day_sd * math.sqrt(_TRADING_DAYS)
    rng = _rng(model.seed, "options", ticker, dn)

    strikes, calls, expiry_ns, atm, activity, expiries = [], [], [], [], [], []
    for expiry in model.expiries(ticker, day):
        e_ns = model.close_ns[expiry]
        years = (e_ns - open_ns) / _YEAR_NS
        level = _atm_term(short, long, years)
        for event_ns, move in lat.events:  # an earnings night inside the option's life adds its variance
            if open_ns < event_ns < e_ns:
                level = math.sqrt(level**2 + move**2 / years)
        ks = _strikes(spot, min(0.3, max(0.015, 2.5 * level * math.sqrt(years))) * spot, spec.strike_tiers)
        dte = (expiry - day).days
        weight = 1.0 if dte == 0 else (0.2 if dte == 1 else 0.1 / (1 + dte / 5))
        if expiry == monthly_option_expiry(expiry.year, expiry.month):
            weight *= 1.4
        for is_call in (True, False):  # contracts in OCC ticker order: expiry, C before P, strike
            strikes.append(ks)
            calls.append(np.full(len(ks), is_call))
            expiry_ns.append(np.full(len(ks), e_ns, dtype=np.int64))
            atm.append(np.full(len(ks), level))
            activity.append(np.full(len(ks), weight))
            expiries.extend([expiry] * len(ks))
    k_all = np.concatenate(strikes)
    call_all = np.concatenate(calls)
    e_all = np.concatenate(expiry_ns)
    atm_all = np.concatenate(atm)
    act_all = np.concatenate(activity)

    # Implied vol rises as the underlying falls during the day (spot-vol correlation).
    spot_vol = np.clip(np.exp(-0.15 * np.log(sc / spot) / day_sd), 0.7, 1.5)
    j = np.arange(len(minutes))
    intraday = np.minimum(1.0, 0.85 + 0.15 * (np.exp(-j / 30) + np.exp(-(len(j) - 1 - j) / 30)))
    # Liquidity: near the money, near expiry, out of the money; busiest at the open and close. Distance
    # from the money is in sds over at least a trading day, so a 0DTE chain keeps several busy strikes
    # around the money all day. The contracts x minutes matrix is float32: it only decides which
    # minutes trade.
    midday_ns = (open_ns + close_ns) // 2
    years_c = np.maximum((e_all - midday_ns) / _YEAR_NS, 1 / _TRADING_DAYS)
    scale_c = (1.0 / (1.3 * atm_all * np.sqrt(years_c))).astype(np.float32)
    z = np.log(k_all).astype(np.float32)[:, None] - np.log(sc).astype(np.float32)[None, :]
    z *= scale_c[:, None]
    z *= (1.0 / spot_vol).astype(np.float32)[None, :]
    # Out of the money (z > 0 for calls, z < 0 for puts) trades twice as often as in the money.
    side = np.where(call_all, 0.25, -0.25).astype(np.float32)
    rate = np.exp(-0.5 * z * z)
    rate *= 0.75 + side[:, None] * np.sign(z)
    rate *= (spec.option_activity * act_all).astype(np.float32)[:, None]
    rate *= intraday.astype(np.float32)[None, :]
    # A minute has a trade when an exponential waiting time falls inside it: P = 1 - exp(-rate).
    ci, mi = np.nonzero(rng.standard_exponential(rate.shape, dtype=np.float32) < rate)
    prob = -np.expm1(-rate[ci, mi].astype(np.float64))

    strike = k_all[ci]
    is_call = call_all[ci]
    vol_atm = atm_all[ci] * spot_vol[mi]
    start_ns = t_ns[mi]
    e_ns = e_all[ci]

    def mid(s: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
        years = (e_ns - at_ns) / _YEAR_NS
        forward = s * np.exp(RISK_FREE_RATE * years)
        vol = _smile(np.log(strike / forward), years, vol_atm, spec.skew, spec.curvature)
        return black_scholes(s, strike, years, vol, is_call)

    # Calls make their high with the underlying's high, puts with its low.
    up = np.where(is_call, sh[mi], sl[mi])
    down = np.where(is_call, sl[mi], sh[mi])
    mids = np.stack([
        mid(so[mi], start_ns),
        mid(up, start_ns + _MIN_NS // 2),
        mid(down, start_ns + _MIN_NS // 2),
        mid(sc[mi], start_ns + _MIN_NS),
    ])
    side = np.where(rng.random(mids.shape) < 0.5, -1.0, 1.0)  # each print at the bid or the ask
    px = np.maximum(OPTION_TICK, np.round(mids + side * option_half_spread(mids), 2))
    trades = 1 + rng.poisson(spec.option_trades * prob * prob)
    px[:3] = np.where(trades == 1, px[3], px[:3])
    op, hi, lo, cl = px
    hi = np.maximum(hi, np.maximum(op, np.maximum(lo, cl)))
    lo = np.minimum(lo, np.minimum(op, cl))
    mean_size = 6.0 if spec.daily_options else 4.0
    volume = np.maximum(trades, np.round(trades * mean_size * np.exp(rng.normal(-0.18, 0.6, len(ci))))).astype(np.int64)

    names = np.full(len(k_all), "", dtype=object)
    prefixes: dict[tuple[dt.date, bool], str] = {}
    for c in np.unique(ci):
        key = (expiries[c], bool(call_all[c]))
        if key not in prefixes:  # occ_ticker's format, built once per expiry and right
            prefixes[key] = occ_ticker(ticker, key[0], "C" if key[1] else "P", 1.0)[:-8]
        names[c] = f"{prefixes[key]}{round(k_all[c] * 1000):08d}"
    minute = pl.DataFrame(
        {
            "ticker": pl.Series(names[ci], dtype=pl.String),
            "volume": volume,
            "open": op,
            "close": cl,
            "high": hi,
            "low": lo,
            "window_start": start_ns,
            "transactions": trades.astype(np.int64),
        }
    )
    first = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1]]) if len(ci) else np.zeros(0, dtype=np.int64)
    last = np.r_[first[1:], len(ci)] - 1 if len(ci) else first
    daily = pl.DataFrame(
        {
            "ticker": pl.Series(names[ci[first]], dtype=pl.String),
            "volume": np.add.reduceat(volume, first) if len(ci) else volume,
            "open": op[first],
            "close": cl[last],
            "high": np.maximum.reduceat(hi, first) if len(ci) else hi,
            "low": np.minimum.reduceat(lo, first) if len(ci) else lo,
            "window_start": np.full(len(first), _ny_midnight_ns(day), dtype=np.int64),
            "transactions": np.add.reduceat(trades, first).astype(np.int64) if len(ci) else trades,
        }
    )
    return minute, daily


# ============================================================================= writing


class _Writer:
    """Gzip CSV files written atomically on worker threads (polars and zlib release the GIL)."""

    def __init__(self, root: Path, workers: int = 2) -> None:
        self.root = root
        self.files = 0
        self.bytes = 0
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._pending: list[Future[int]] = []

    def write(self, relpath: str, frame: pl.DataFrame) -> None:
        self._pending.append(self._pool.submit(self._store, self.root / relpath, frame))
        while len(self._pending) > 8:  # bound the memory held by queued files
            self._collect(self._pending.pop(0))

    @staticmethod
    def _store(path: Path, frame: pl.DataFrame) -> int:
        buffer = io.BytesIO()
        frame.select(COLUMNS).write_csv(buffer)
        data = gzip.compress(buffer.getvalue(), compresslevel=GZIP_LEVEL, mtime=0)  # mtime=0: same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return len(data)

    def _collect(self, future: Future[int]) -> None:
        self.bytes += future.result()
        self.files += 1

    def close(self) -> None:
        for future in self._pending:
            self._collect(future)
        self._pending.clear()
        self._pool.shutdown()


def _minute_table(parts: list[_Minutes], g: _Grid) -> pl.DataFrame | None:
    if not parts:
        return None
    return pl.concat([p.frame(g) for p in parts]).sort(["_day", "ticker", "window_start"])


def _day_table(minutes: pl.DataFrame) -> pl.DataFrame:
    # Day bars take open/high/low/close from the regular session (extended-hours prints do not set
    # the consolidated OHLC) and volume/transactions from every trade of the day.
    reg = pl.col("_reg")
    daily = (
        minutes.group_by(["_day", "ticker"], maintain_order=True)
        .agg(
            volume=pl.col("volume").sum(),
            open=pl.col("open").filter(reg).first(),
            close=pl.col("close").filter(reg).last(),
            high=pl.col("high").filter(reg).max(),
            low=pl.col("low").filter(reg).min(),
            transactions=pl.col("transactions").sum(),
        )
        .drop_nulls("open")
    )
    days = daily["_day"].unique().to_list()
    midnight = {d: _ny_midnight_ns(_date_of(d)) for d in days}
    return daily.with_columns(
        window_start=pl.col("_day").replace_strict(midnight, return_dtype=pl.Int64)
    )


def _by_day(frame: pl.DataFrame | None) -> dict[int, pl.DataFrame]:
    if frame is None:
        return {}
    return {key[0]: part for key, part in frame.partition_by("_day", as_dict=True, maintain_order=True).items()}


# ============================================================================= planted edges
#
# A planted edge is a known, documented regularity written into an otherwise random market, so that a
# search can be scored on whether it finds it (power) and on how often it promotes something in a
# market with none (false promotions). Each plant draws from its own random stream, never from the
# streams of the null market, so a planted market and the null market of the same seed share every
# other draw: the difference between them is the plant and nothing else. Strength 0 plants nothing
# at all (byte-identical files to ``--plant none``).

#: Bumped when the fields of ``_synthetic.json`` (:data:`data.store.SYNTHETIC_INFO_NAME`) change meaning.
SYNTHETIC_INFO_FORMAT = 1


def _clock_minutes(text: object) -> int:
    t = dt.time.fromisoformat(str(text))
    return t.hour * 60 + t.minute


def _plant_zrce(
    model: _Model,
    plant: Plant,
    lat: _Latent,
    idx: np.ndarray,
    volume: np.ndarray,
    transactions: np.ndarray,
    price: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Plant the zrce edge into ``lat.logp``, ``volume`` and ``transactions`` in place (see :data:`PLANTS`).

    Days are walked in order because a day's bars (hence its zone and break) sit on the path as earlier
    days' drifts left it; each break only moves the path after its own bar, so re-pricing one day at a
    time finds exactly the bars the written files will hold.
    """
    g = model.grid
    p = plant.params
    zone_end, last_entry = _clock_minutes(p["zone_end"]), _clock_minutes(p["last_entry"])
    buffer, period = float(p["buffer"]), int(p["volume_period"])
    horizon = int(p["horizon"])
    # Front-loaded: breakouts that work move at once (a stop a few ticks away survives), then fade.
    # Weights w_k ~ exp(-k / decay) scaled so that sum(w_k sd_k) is drift_sd sds of the horizon's
    # noise when the minute sds are equal: sum(w_k) = drift_sd * sqrt(horizon).
    shape = np.exp(-np.arange(horizon) / float(p["decay"]))
    weights = plant.strength * float(p["drift_sd"]) * math.sqrt(horizon) * shape / shape.sum()
    rng = _rng(model.seed, "plant", plant.name, str(p["ticker"]))
    # The engines see regular-session bars only, and volume_ratio averages over that bar sequence.
    reg_rows = np.flatnonzero(g.reg[idx])
    days = g.ny_day[idx[reg_rows]]
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(reg_rows)]
    minute = g.ny_min[idx]
    for first, last in zip(starts, ends, strict=True):
        rows = reg_rows[first:last]
        _, hi, lo, cl = price(rows)
        zone = minute[rows] < zone_end
        if not zone.any():
            continue
        top, bottom = hi[zone].max(), lo[zone].min()
        live = (minute[rows] >= zone_end) & (minute[rows] < last_entry)
        # zone_breakout's two detectors (evaluator/signals.py), one per direction: walking the closes beyond
        # the zone edge + buffer, a bar fires when its volume ratio meets volume_ratio, or, after a break
        # that missed it (a failed break), relaxed_ratio (the second chance). The first break of each
        # direction may get a planted surge; the day's earliest firing bar is the one planted.
        firing: list[tuple[int, float]] = []
        for beyond, direction in ((live & (cl > top + buffer), 1.0), (live & (cl < bottom - buffer), -1.0)):
            failed = False
            for k in np.flatnonzero(beyond):
                at = first + int(k)  # position in reg_rows
                if at < period:
                    continue  # no volume history to compare with
                row = rows[k]
                mean = float(volume[reg_rows[at - period : at]].mean())
                if not failed:
                    draw = rng.random()  # one draw per first break, used or not, so later days do not shift
                    if volume[row] < float(p["volume_ratio"]) * mean and draw < float(p["confirm_share"]):
                        surged = math.ceil(float(p["volume_surge"]) * mean)
                        transactions[row] = max(1, round(transactions[row] * surged / max(volume[row], 1)))
                        volume[row] = surged
                needed = float(p["relaxed_ratio"]) if failed else float(p["volume_ratio"])
                if volume[row] >= needed * mean:
                    firing.append((int(k), direction))
                    break
                failed = True
        if firing:
            k, direction = min(firing)
            _drift(lat, int(idx[rows[k]]), direction, weights, g.n)


def _drift(lat: _Latent, b: int, direction: float, weights: np.ndarray, n: int) -> None:
    """Move the latent path after bar ``b`` (whose close is ``logp[b + 1]``): minute ``b + 1 + k`` gets
    ``direction * weights[k]`` of its own sd, and everything later keeps the shift."""
    end = min(b + 1 + len(weights), n)
    if end <= b + 1:
        return  # the break is the grid's last minute: nothing after it to move
    drift = np.cumsum(direction * weights[: end - b - 1] * lat.sd[b + 1 : end])
    lat.logp[b + 2 : end + 1] += drift
    lat.logp[end + 1 :] += drift[-1]


def _forex_trend_drift(seed: int, plant: Plant, sd: np.ndarray) -> np.ndarray:
    """The forex_trend plant's extra minute log returns ``sd_t * g_t`` (see :data:`PLANTS`)."""
    tau = float(plant.params["timescale"])
    g_sd = plant.strength * math.sqrt(float(plant.params["variance_share"]) / (2.0 * tau))
    g = _ar1(_rng(seed, "plant", plant.name, str(plant.params["ticker"])), len(sd), math.exp(-1.0 / tau), g_sd)
    return sd * g


def synthetic_info(
    *, seed: int, start: dt.date, end: dt.date, tickers: Sequence[str], options: bool, plant: Plant | None
) -> dict[str, object]:
    """What :func:`generate` writes to ``<root>/_synthetic.json`` (and ingest copies into the manifest)."""
    info: dict[str, object] = {
        "format": SYNTHETIC_INFO_FORMAT,
        "generator": "data.synth",
        "seed": seed,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "tickers": list(tickers),
        "options": options,
        "plant": plant.to_json() if plant is not None else None,
    }
    info["label"] = data_origin_label(info)
    return info


# ============================================================================= entry point


def _normalise_tickers(tickers: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(tickers, str):  # "SPY,QQQ" rather than a list: not three one-letter tickers
        tickers = tickers.split(",")
    out: list[str] = []
    for raw in tickers:
        ticker = raw.strip().upper()
        if ticker and ticker not in out:
            ticker_kind(ticker)  # raises on a malformed ticker
            out.append(ticker)
    if not out:
        raise ValueError("no tickers given; pass e.g. SPY,QQQ,C:EURUSD,MES")
    return tuple(out)


def generate(
    root: str | Path,
    *,
    tickers: Sequence[str] = DEFAULT_TICKERS,
    start: dt.date = DEFAULT_START,
    end: dt.date = DEFAULT_END,
    seed: int = 7,
    options: bool = True,
    plant: Plant | str | None = None,
    progress: bool = False,
) -> SynthReport:
    """Write synthetic Polygon flat files for ``tickers`` between ``start`` and ``end`` under ``root``.

    Stocks/ETFs get minute and day files per NYSE session (with options unless ``options=False``),
    ``C:`` pairs per UTC day with trading, futures roots per trade date. Same arguments, same bytes.
    ``plant`` (a :class:`Plant`, or text for :func:`parse_plant` such as ``"zrce:0.5"``; None = a null
    market) plants a known edge; what was planted, with the seed and window, goes to
    ``<root>/_synthetic.json`` (see :func:`synthetic_info`).
    """
    if isinstance(plant, str):
        plant = parse_plant(plant, flag="plant")
    began = time.perf_counter()
    if isinstance(start, dt.datetime):
        start = start.date()
    if isinstance(end, dt.datetime):
        end = end.date()
    if start > end:
        raise ValueError(f"start {start} is after end {end}; give start <= end")
    names = _normalise_tickers(tickers)
    root = Path(root)
    report = SynthReport(root=root, start=start, end=end, tickers=names, plant=plant)

    grid = _build_grid(start, end)
    model = _Model(grid, seed, start, end, plant)
    kinds = {t: ticker_kind(t) for t in names}
    stocks = sorted(t for t in names if kinds[t] is AssetClass.STOCKS)
    stock_parts = {t: _stock_minutes(model, t) for t in stocks}
    tables: dict[AssetClass, pl.DataFrame | None] = {
        AssetClass.STOCKS: _minute_table(list(stock_parts.values()), grid),
        AssetClass.FOREX: _minute_table([_forex_minutes(model, t) for t in names if kinds[t] is AssetClass.FOREX], grid),
        AssetClass.FUTURES: _minute_table(
            [m for t in names if kinds[t] is AssetClass.FUTURES for m in _futures_minutes(model, t)], grid
        ),
    }
    minute_parts: dict[AssetClass, dict[int, pl.DataFrame]] = {}
    day_parts: dict[AssetClass, dict[int, pl.DataFrame]] = {}
    for asset, table in tables.items():
        if table is None:
            continue
        minute_parts[asset] = _by_day(table)
        day_parts[asset] = _by_day(_day_table(table))
        report.rows[asset.value] = table.height
        report.day_rows[asset.value] = sum(p.height for p in day_parts[asset].values())
    underlyings = {t: _Underlying.from_minutes(stock_parts[t], grid.n) for t in stocks} if options else {}
    if underlyings:
        report.rows[AssetClass.OPTIONS.value] = 0
        report.day_rows[AssetClass.OPTIONS.value] = 0
    option_days = set(minute_parts.get(AssetClass.STOCKS, {})) if underlyings else set()

    all_days = sorted(set().union(*(parts.keys() for parts in minute_parts.values()), option_days))
    writer = _Writer(root)
    try:
        for day_number in _progress(all_days, progress):
            day = _date_of(day_number)
            for asset in (AssetClass.STOCKS, AssetClass.FOREX, AssetClass.FUTURES):
                if day_number in minute_parts.get(asset, {}):
                    writer.write(flat_file_relpath(asset, Timeframe.MINUTE, day), minute_parts[asset][day_number])
                    writer.write(flat_file_relpath(asset, Timeframe.DAY, day), day_parts[asset][day_number])
            if day_number in option_days:
                pieces = [_option_day(model, t, underlyings[t], day) for t in stocks]
                minute = pl.concat([m for m, _ in pieces])
                daily = pl.concat([d for _, d in pieces])
                writer.write(flat_file_relpath(AssetClass.OPTIONS, Timeframe.MINUTE, day), minute)
                writer.write(flat_file_relpath(AssetClass.OPTIONS, Timeframe.DAY, day), daily)
                report.rows[AssetClass.OPTIONS.value] += minute.height
                report.day_rows[AssetClass.OPTIONS.value] += daily.height
    finally:
        writer.close()
    info = synthetic_info(seed=seed, start=start, end=end, tickers=names, options=options, plant=plant)
    info_path = root / SYNTHETIC_INFO_NAME
    root.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    report.files = writer.files
    report.bytes_written = writer.bytes
    report.elapsed = time.perf_counter() - began
    return report


def _progress(days: list[int], show: bool) -> Iterable[int]:
    if not show:
        return days
    from tqdm import tqdm

    return tqdm(days, desc="synth", unit="day")
