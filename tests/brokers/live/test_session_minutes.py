"""The live strategy compares ``eod_flat_time`` and entry windows in session minutes: a forex day rolls at
17:00 New York, so a 16:55 flat time closes before the roll and the evening after it is the next day's
start (entries allowed, the day's trade count reset), not "past 16:55"."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from brokers.live import bars as live_data
from brokers.live import live_strategy
from spec_space.models import StrategySpec
from tests.brokers.live.test_staged import _settled
from tests.evaluator.test_spec_strategy_live import NY, _decide_on, _minute_bars, _tl_positions, _wait


def _ns(text: str) -> int:
    return int(pd.Timestamp(text, tz=NY).value)


def test_session_minutes_of_forex_futures_and_stocks() -> None:
    assert live_data.session_minute_and_date(_ns("2026-11-24 16:54"), "forex") == (
        1014,
        pd.Timestamp("2026-11-24").date(),
    )
    assert live_data.session_minute_and_date(_ns("2026-11-24 17:00"), "forex") == (
        -420,
        pd.Timestamp("2026-11-25").date(),
    )
    assert live_data.session_minute_and_date(_ns("2026-11-24 17:30"), "future") == (
        1050,
        pd.Timestamp("2026-11-24").date(),
    )
    assert live_data.session_minute_and_date(_ns("2026-11-24 18:00"), "future") == (
        -360,
        pd.Timestamp("2026-11-25").date(),
    )
    # a Globex evening before Thanksgiving (no session) trades for the Friday after it
    assert (
        live_data.session_minute_and_date(_ns("2026-11-25 18:00"), "future")[1]
        == pd.Timestamp("2026-11-27").date()
    )
    assert live_data.session_minute_and_date(_ns("2026-11-24 23:00"), "stock") == (
        1380,
        pd.Timestamp("2026-11-24").date(),
    )
    assert live_data.spec_session_minute("16:55", "forex") == 1015
    assert live_data.spec_session_minute("17:00", "forex") == -420  # the day's first minute
    assert live_data.spec_session_minute("18:30", "future") == -330
    assert live_data.spec_session_minute("18:30", "stock") == 1110
    assert live_data.spec_session_minute(None, "forex") is None


@pytest.mark.parametrize("kind", ["forex", "future", "stock"])
def test_live_session_minutes_are_the_backtests(kind: str) -> None:
    """One definition: each bar's live (session minute, trading day) is what the backtests' bar arrays hold
    for it (``bars_from_frame`` via ``frame_market``), across the forex and Globex evening rolls."""
    index = pd.date_range("2026-11-24 16:40", "2026-11-24 18:20", freq="5min", tz=NY)
    frame = pd.DataFrame(
        {c: np.ones(len(index)) for c in ("open", "high", "low", "close", "volume")}, index=index
    )
    bars = live_data.frame_market(
        "C:EURUSD" if kind == "forex" else "MES", frame, intraday=True, kind=kind
    ).bars
    live = [live_data.session_minute_and_date(int(ts), kind) for ts in bars.ts]
    backtest = [
        (int(bars.session_minute[i]), bars.session_dates[int(bars.day[i])]) for i in range(len(bars.ts))
    ]
    assert live == backtest and len(live) == len(index)


def test_forex_flat_at_16_55_then_a_new_day_trades_from_17_00(tradelocker: tuple[Any, Any, Any]) -> None:
    fake, _, broker = tradelocker
    spec = StrategySpec.model_validate(
        {
            "name": "fx_session",
            "timeframe": "1min",
            "instrument": {"type": "forex", "symbol": "EURUSD"},
            "entry": {"long": "close > 0"},
            "exits": {"eod_flat_time": "16:55"},
            "sizing": {"mode": "fixed", "quantity": 0.1, "max_trades_per_day": 1},
        }
    )
    frame = _minute_bars("2026-11-24 16:50", [1.085] * 16, 0.0002)  # 16:50 to 17:05
    clock = [0]
    strategy = live_strategy(broker, spec, name="live-fx-session", clock=lambda: clock[0], fill_wait=10.0)

    def decide(minute: str) -> None:
        """Decide on the bar starting at ``minute`` once the orders already out have reached the strategy
        (an entry behind a working exit would wait for the next iteration, which this test does not run)."""
        _wait(lambda: _settled(strategy), "the strategy to see its orders' fills")
        _decide_on(strategy, frame, clock, f"2026-11-24 {minute}", symbol="C:EURUSD", kind="forex")

    decide("16:52")  # before the flat time: the day's one trade
    _wait(lambda: _tl_positions(fake) == {"EURUSD": 0.1}, "the entry at 16:53")
    decide("16:53")  # one trade a day: no second entry (and the position is kept)
    decide("16:54")  # the next open is 16:55: flat
    _wait(lambda: not _tl_positions(fake), "the end-of-day close at 16:55")
    decide("16:56")  # past the flat time: no entry
    assert not _tl_positions(fake)
    # 17:01 is minute -419 of 25 November's forex day: inside its window, with its own trade count
    # (clock minutes would call it 21:01 past 16:55 and the same date as the morning's trade)
    decide("17:01")
    _wait(lambda: _tl_positions(fake) == {"EURUSD": 0.1}, "the new day's entry")
    with fake.lock:
        sides = [o["side"] for o in fake.books[1].orders.values() if o["_origin"] == "client"]
    assert sides == ["buy", "buy"]
    assert strategy.live_day == pd.Timestamp("2026-11-25").date() and strategy.trades_today == 1
