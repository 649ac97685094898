"""data.calendar: which trading day a bar belongs to, per market."""

from __future__ import annotations

import numpy as np
import pytest

from data.calendar import futures_regular_hours, trading_dates


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
