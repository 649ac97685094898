"""data.calendar: which trading day a bar belongs to, per market."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from data.calendar import NY, futures_regular_hours, session_minute, spec_session_minute, trading_dates
from evaluator.market import bars_from_frame


def _days(*dates: str) -> np.ndarray:
    return np.array(dates, dtype="datetime64[D]")


def _minutes(*clock: str) -> np.ndarray:
    return np.array([int(t[:2]) * 60 + int(t[3:]) for t in clock])


def test_stock_days_are_the_new_york_date():
    got = trading_dates(_days("2024-03-07", "2024-03-07"), _minutes("04:00", "19:59"), "stock")
    assert got.tolist() == _days("2024-03-07", "2024-03-07").tolist()


def test_forex_days_roll_at_1700_new_york():
    # 16:59 is still Thursday's day, 17:00 opens Friday's; Sunday 17:00 opens Monday's (the week's open)
    got = trading_dates(
        _days("2024-03-07", "2024-03-07", "2024-03-07", "2024-03-10", "2024-03-11"),
        _minutes("16:59", "17:00", "23:59", "17:00", "09:30"),
        "forex",
    )
    assert got.tolist() == _days("2024-03-07", "2024-03-08", "2024-03-08", "2024-03-11", "2024-03-11").tolist()


def test_futures_trade_dates_start_at_the_globex_open_and_skip_holidays():
    got = trading_dates(
        _days("2024-03-07", "2024-03-07", "2024-11-27", "2024-11-28", "2024-01-14"),
        _minutes("16:59", "18:00", "18:00", "10:00", "18:00"),
        "future",
    )
    # Thursday 18:00 trades for Friday; the evening before Thanksgiving and Thanksgiving's morning trade
    # for Friday 2024-11-29; Sunday evening before Martin Luther King Day (Monday) trades for Tuesday
    assert got.tolist() == _days("2024-03-07", "2024-03-08", "2024-11-29", "2024-11-29", "2024-01-16").tolist()


def test_futures_regular_hours():
    assert futures_regular_hours("MES") == (570, 960)  # 09:30-16:00 New York, with the cash session
    assert futures_regular_hours("GC") == (500, 810)  # COMEX day session 08:20-13:30


def test_unknown_market_is_refused():
    with pytest.raises(ValueError, match="market 'bond' is not one of"):
        trading_dates(_days("2024-03-07"), _minutes("10:00"), "bond")


@pytest.mark.parametrize(
    ("stamp", "market", "expected"),
    [
        ("2024-03-05 16:55", "forex", 16 * 60 + 55),  # Tuesday's forex day, before the roll
        ("2024-03-05 17:00", "forex", 17 * 60 - 1440),  # Wednesday's day opened Tuesday 17:00
        ("2024-03-06 03:00", "forex", 3 * 60),
        ("2024-03-05 18:00", "future", 18 * 60 - 1440),  # the Globex reopen for Wednesday's trade date
        ("2024-03-05 16:59", "future", 16 * 60 + 59),
        ("2024-03-05 09:30", "stock", 9 * 60 + 30),
        # Friday 2024-03-29 (Good Friday) is no NYSE session: Thursday's Globex evening trades for Monday
        ("2024-03-28 18:00", "future", 18 * 60 - 4 * 1440),
    ],
)
def test_session_minute_of_a_timestamp_matches_the_bars(stamp: str, market: str, expected: int) -> None:
    ts = pd.Timestamp(stamp, tz=NY)
    assert session_minute(ts.to_pydatetime(), market) == expected
    bars, _, _ = bars_from_frame(
        pl.DataFrame(
            {
                "ts": pl.Series([ts.tz_localize(None).to_pydatetime()], dtype=pl.Datetime("ns")).dt.replace_time_zone(NY),
                **{name: [1.0] for name in ("open", "high", "low", "close", "volume")},
            }
        ),
        market,
    )
    assert int(bars.session_minute[0]) == expected  # the engines' scale


def test_spec_session_minute_reads_evening_times_as_the_session_opening() -> None:
    assert spec_session_minute("16:55", "forex") == 1015  # flat before the 17:00 roll
    assert spec_session_minute("20:00", "forex") == 20 * 60 - 1440  # the evening the session opens
    assert spec_session_minute("17:30", "future") == 17 * 60 + 30  # in the break: after the close
    assert spec_session_minute("18:00", "future") == -360
    assert spec_session_minute("20:00", "stock") == 1200
    with pytest.raises(ValueError, match="market 'crypto'"):
        spec_session_minute("10:00", "crypto")
    with pytest.raises(ValueError, match="time-zone-aware"):
        session_minute(dt.datetime(2024, 3, 5, 17, 0), "forex")
