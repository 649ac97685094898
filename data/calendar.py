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


def is_nyse_session(day: dt.date) -> bool:
    return _calendar("XNYS").is_session(pd.Timestamp(day))


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
