"""Trading sessions: NYSE for stocks and options, 24x5 for forex, CME Globex for futures.

Built on exchange_calendars so holidays and half days come from a maintained source.

What a trading day is, per market (every time New York clock time):

    stocks, options  the NYSE date; regular hours 09:30 to the close (16:00, 13:00 on half days)
    futures          the CME trade date: Globex reopens at 18:00 for the next trade date and closes at
                     17:00; a holiday's morning trading belongs to the next trade date. Regular hours
                     are the root's day session (equity index: 09:30-16:00, metals: 08:20-13:30)
    forex            the day rolls at 17:00: a bar at or after 17:00 belongs to the next date (the week
                     opens Sunday 17:00, so Sunday evening is Monday's day); no regular hours, every
                     bar counts

A bar's session minute (``BarSeries.session_minute``, :func:`session_minute`) counts from the midnight that
starts its trading date, so a session's opening evening is negative. Spec times (entry window, flat time)
are read on that scale (:func:`spec_session_minute`) by the backtests and live trading alike.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from spec_space.instruments import TRADING_DAY_START_MINUTE, InstrumentType, clock_session_minute

NY = "America/New_York"


@lru_cache(maxsize=4)
def _calendar(name: str) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(name, start="2000-01-01")


def nyse_sessions(start: dt.date, end: dt.date) -> pd.DataFrame:
    """Sessions between two dates inclusive, with UTC ``open`` and ``close`` (half days close 13:00 ET)."""
    cal = _calendar("XNYS")
    schedule = cal.schedule.loc[str(start) : str(end), ["open", "close"]]
    return schedule


def forex_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Forex file dates: Polygon writes a file per calendar day the market traded (Sun-Fri UTC)."""
    days = pd.date_range(start, end, freq="D")
    # 24x5: the week opens Sunday 17:00 New York and closes Friday 17:00 New York, so
    # Saturdays carry no trading at all; 25 December and 1 January are closed.
    return [
        d.date()
        for d in days
        if d.weekday() != 5 and not (d.month == 12 and d.day == 25) and not (d.month == 1 and d.day == 1)
    ]


def nyse_session_dates(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE session dates between two dates inclusive (the engines count sessions to an expiry with it)."""
    return [ts.date() for ts in nyse_sessions(start, end).index]


def session_on_or_before(day: dt.date) -> dt.date:
    """The last NYSE session on or before ``day`` (an expiry that falls on a holiday moves earlier)."""
    return _calendar("XNYS").date_to_session(pd.Timestamp(day), direction="previous").date()


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def monthly_option_expiry(year: int, month: int) -> dt.date:
    """Standard monthly equity option expiry: the third Friday, or the session before it on a holiday."""
    return session_on_or_before(third_friday(year, month))


def weekly_option_expiries(start: dt.date, end: dt.date) -> list[dt.date]:
    """Friday expiries between two dates inclusive; a Friday holiday moves the expiry to the session before."""
    first_friday = start + dt.timedelta(days=(4 - start.weekday()) % 7)
    out: list[dt.date] = []
    friday = first_friday
    while friday <= end + dt.timedelta(days=7):
        expiry = session_on_or_before(friday)
        if start <= expiry <= end and (not out or out[-1] != expiry):
            out.append(expiry)
        friday += dt.timedelta(days=7)
    return out


# --------------------------------------------------------------------------- trading days per market

#: New York clock minute at which each market's next trading day starts (0: the calendar date).
DAY_START_MINUTE: dict[str, int] = dict(TRADING_DAY_START_MINUTE)

#: Regular hours of futures roots, [open, close) in New York minutes. Equity-index futures follow the
#: cash session their index is made of; COMEX metals their day (formerly pit) session.
_FUTURES_REGULAR: dict[str, tuple[int, int]] = {"GC": (8 * 60 + 20, 13 * 60 + 30), "MGC": (8 * 60 + 20, 13 * 60 + 30)}
_EQUITY_INDEX_REGULAR = (9 * 60 + 30, 16 * 60)


def futures_regular_hours(root: str) -> tuple[int, int]:
    """[open, close) of a futures root's regular session in New York minutes (09:30-16:00 for the
    equity-index roots; on NYSE half days their Globex session itself ends at 13:15)."""
    return _FUTURES_REGULAR.get(root.upper(), _EQUITY_INDEX_REGULAR)


def trading_dates(dates: np.ndarray, minutes: np.ndarray, market: str) -> np.ndarray:
    """The trading day each bar belongs to, from its New York date and clock minute (bar start).

    ``market``: "stock", "option", "future" or "forex" (see the module note). Returns
    ``datetime64[D]`` values.
    """
    if market not in DAY_START_MINUTE:
        raise ValueError(f"market {market!r} is not one of {', '.join(DAY_START_MINUTE)}")
    day = np.asarray(dates, dtype="datetime64[D]")
    start = DAY_START_MINUTE[market]
    if start == 0 or len(day) == 0:
        return day
    day = day + (np.asarray(minutes) >= start).astype("timedelta64[D]")
    if market == "future":
        # a Globex day whose date is no NYSE session (a holiday, or a Sunday evening before a Monday
        # holiday) trades for the next session's trade date
        unique = np.unique(day)
        cal = _calendar("XNYS")
        moved = np.array(
            [cal.date_to_session(pd.Timestamp(d), direction="next").to_datetime64() for d in unique],
            dtype="datetime64[D]",
        )
        day = moved[np.searchsorted(unique, day)]
    return day


def session_minute(ts: dt.datetime | pd.Timestamp, market: str) -> int:
    """The minute of its trading session at which ``ts`` falls: minutes since the midnight (New York) that
    starts the trading day ``ts`` belongs to (:func:`trading_dates`), so negative on the evening a forex or
    Globex session opens. The same scale as ``BarSeries.session_minute`` of a bar starting at ``ts``
    and as :func:`spec_session_minute`, so live trading compares ``exits.eod_flat_time`` and the entry
    window exactly as the backtests do. ``ts`` must carry a time zone."""
    if ts.tzinfo is None:
        raise ValueError(f"session_minute needs a time-zone-aware timestamp, got {ts!r}; localise it first")
    local = pd.Timestamp(ts).tz_convert(NY)
    clock = local.hour * 60 + local.minute
    date = np.array([local.date()], dtype="datetime64[D]")
    trade_date = trading_dates(date, np.array([clock]), market)[0]
    return clock - 1440 * int((trade_date - date[0]).astype(np.int64))


def spec_session_minute(clock: str, market: str) -> int:
    """The session minute a spec's New York clock time (``'16:55'``) names on ``market`` (see
    :func:`spec_space.instruments.clock_session_minute`): forex times from 17:00 and futures times from 18:00
    are the evening that opens the session."""
    if market not in DAY_START_MINUTE:
        raise ValueError(f"market {market!r} is not one of {', '.join(DAY_START_MINUTE)}")
    t = dt.time.fromisoformat(clock)
    kind: InstrumentType = market  # type: ignore[assignment]
    return clock_session_minute(t.hour * 60 + t.minute, kind)
