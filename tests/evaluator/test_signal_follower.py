"""Trading external signals: levels from the triggering event, each event traded once."""

from __future__ import annotations

import datetime as dt

import pytest
from pytest import approx

from tests.evaluator import builders as b

NY5 = dt.timezone(dt.timedelta(hours=-5))
DAY = "2024-03-04"


def _spec(events, **exits):
    return b.spec(
        entry={"long": "external_signal('k', 'buy', 30) and abs(close - signal_level('k', 'entry', 30)) <= 0.5"},
        exits=exits,
        signals={"k": events},
        sizing={"mode": "fixed", "quantity": 10},
    )


BUY = {"time": dt.datetime(2024, 3, 4, 9, 30, tzinfo=NY5), "side": "buy", "entry": 100.0, "stop": 98.0,
       "targets": [103.0, 106.0]}


def test_stop_and_target_come_from_the_signal():
    # bar 0 09:30 close 100 (within 0.5 of entry) -> fill at bar 1's open 100.2
    rows = b.minutes(DAY, "09:30", [(100, 100, 100, 100), (100.2, 100.4, 100.1, 100.3), (100.3, 101, 100.3, 101),
                                    (101, 103.3, 101, 103.0), (103, 103, 103, 103)])
    result = b.run(_spec([BUY], stop_loss={"signal_stop": 1.0}, take_profit={"signal_target": 1}), b.market(rows))
    (trade,) = b.trades(result)
    # target distance 103 - 100 = 3 from our fill 100.2 -> 103.2, touched in bar 3 (high 103.3)
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (1, 3, "take_profit")
    assert trade["exit_price"] == approx(103.2) and trade["pnl"] == approx(30.0)


def test_scaled_signal_stop():
    rows = b.minutes(DAY, "09:30", [(100, 100, 100, 100), (100.2, 100.2, 100.2, 100.2), (100.0, 100.0, 98.9, 99.0),
                                    (99, 99, 99, 99)])
    result = b.run(_spec([BUY], stop_loss={"signal_stop": 0.5}), b.market(rows))
    (trade,) = b.trades(result)
    # half the signal's 2.0 stop distance below our fill 100.2 -> 99.2, hit in bar 2
    assert trade["exit_reason"] == "stop_loss" and trade["exit_price"] == approx(99.2)


def test_each_event_is_traded_once():
    # stopped out at once, price comes back inside the tolerance within the window: no second entry
    rows = b.minutes(DAY, "09:30", [(100, 100, 100, 100), (100, 100, 97, 97.5), (100, 100, 100, 100),
                                    (100, 100, 100, 100), (100, 100, 100, 100)])
    result = b.run(_spec([BUY], stop_loss={"signal_stop": 1.0}), b.market(rows))
    (trade,) = b.trades(result)
    assert (trade["entry_bar"], trade["exit_reason"]) == (1, "stop_loss")
    # a second event re-arms the entry
    again = {**BUY, "time": dt.datetime(2024, 3, 4, 9, 32, tzinfo=NY5)}
    result = b.run(_spec([BUY, again], stop_loss={"signal_stop": 1.0}), b.market(rows))
    assert [t["entry_bar"] for t in b.trades(result)] == [1, 3]


def test_signal_levels_need_an_external_entry():
    with pytest.raises(ValueError, match="need entries triggered by external_signal"):
        b.spec(entry={"long": "close > 1"}, exits={"stop_loss": {"signal_stop": 1.0}})
