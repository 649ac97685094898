"""The minute grid the markets live on (NYSE sessions, half days, Globex and forex hours), intraday activity profiles, and the futures contract calendar."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from data.calendar import (
    NY,
    forex_days,
    monthly_option_expiry,
    nyse_sessions,
    session_on_or_before,
)
from data.flatfiles import (
    CONTRACT_MONTHS,
    future_ticker,
)
from data.synth._base import (
    _DAY_NS,
    _EPOCH_THURSDAY,
    _FUTURES,
    _GLOBEX_BREAK,
    _GLOBEX_REOPEN,
    _HALF_DAY_FUTURES_CLOSE,
    _HALF_DAY_POST_END,
    _HOLIDAY_HALT,
    _MIN_NS,
    _POST_END,
    _PRE_OPEN,
    _REG_CLOSE,
    _REG_OPEN,
)


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
