"""Trading sessions: NYSE for stocks and options, 24x5 for forex, CME Globex for futures.

Built on exchange_calendars so holidays and half days come from a maintained source.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

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
