"""Golden tests of the engines: every building block on a few hand-written bars.

The stock and option cases run on every engine of :data:`evaluator.engines.ENGINES` (futures and forex
too, skipped with the reason where an engine does not run them), so a rule bug shared by both engines or a
divergence between them fails a test; the markets stay a few minute bars because Lumibot runs ~1,800
bars/s. Contract selection and the no-lookahead property are the fast engine's own.

Each expected number is worked out by hand in a comment next to it, from the rules in
evaluator/fill_model.py. Signals are placed on chosen bars with ``builders.at(rows, 1)`` (an
expression true on bar 1 only), so a test reads "signal on bar 1, so the fill is bar 2's open".
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from evaluator import _kernel as K
from evaluator import fast
from evaluator.engines import ENGINES, get_engine, unsupported
from evaluator.market import _event_flags
from tests.evaluator import builders as b
from tests.evaluator.builders import Contract

DAY = "2024-03-04"  # a Monday, regular session
approx = pytest.approx


def engines_for(instrument_type: str) -> pytest.MarkDecorator:
    """One test body over every engine of the registry (as optuna runs one body over every sampler); an
    engine that does not backtest ``instrument_type`` is skipped with its reason."""
    params = []
    for name in sorted(ENGINES):
        why = unsupported(name, instrument_type)
        marks = [pytest.mark.skip(reason=f"{name} engine, {instrument_type}: {why}")] if why else []
        params.append(pytest.param(name, marks=marks))
    return pytest.mark.parametrize("engine", params)


def run(engine: str, strategy: Any, mkt: Any) -> Any:
    """Backtest ``strategy`` with ``engine`` over every session of ``mkt``."""
    dates = mkt.bars.session_dates
    return get_engine(engine)(strategy, mkt, dates[0], dates[-1])


def only(result: Any) -> dict[str, Any]:
    records = b.trades(result)
    assert len(records) == 1, records
    return records[0]


def rising(n: int, start: float = 100.0) -> list[tuple[float, float, float, float]]:
    """Bar k: open 100+k, high +0.8, low -0.2, close +0.5 (opens and closes all differ)."""
    return [(start + k, start + k + 0.8, start + k - 0.2, start + k + 0.5) for k in range(n)]


# --------------------------------------------------------------------------- entries and signal exits


@engines_for("stock")
def test_market_entry_fills_at_next_bar_open_and_end_of_data_closes_at_last_close(engine):
    rows = b.minutes(DAY, "09:30", rising(5))
    mkt = b.market(rows)
    buy = b.at(rows, 1)
    res = run(engine, b.spec(entry={"long": buy}), mkt)
    t = only(res)
    # signal on bar 1's close -> bar 2's open 102; still open at the last bar -> its close 104.5
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (2, 4, "end_of_data")
    assert t["entry_price"] == approx(102.0)
    assert t["exit_price"] == approx(104.5)
    assert t["pnl"] == approx(2.5)  # 104.5 - 102
    # equity is marked on closes: flat 100000 until bar 2, then 100000 - 102 + close
    assert res.bar_equity[:2].tolist() == [100_000.0, 100_000.0]
    assert res.bar_equity[2] == approx(100_000.5)  # close 102.5 - 102
    assert res.bar_equity[4] == approx(100_002.5)


@engines_for("stock")
def test_signal_on_last_bar_never_enters(engine):
    rows = b.minutes(DAY, "09:30", rising(5))
    mkt = b.market(rows)
    buy = b.at(rows, 4)
    assert run(engine, b.spec(entry={"long": buy}), mkt).trades.height == 0


@engines_for("stock")
def test_exit_signal_fills_at_next_bar_open(engine):
    rows = b.minutes(DAY, "09:30", rising(6))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    sell = b.at(rows, 2)
    t = only(run(engine, b.spec(entry={"long": buy}, exits={"exit_long": sell}), mkt))
    # buy on bar 0 -> in at bar 1 open 101; sell signal on bar 2 -> out at bar 3 open 103
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (1, 3, "signal")
    assert (t["entry_price"], t["exit_price"], t["pnl"]) == approx((101.0, 103.0, 2.0))


# --------------------------------------------------------------------------- fixed stop / take-profit


def _bars_with(bar2: tuple[float, float, float, float], bar1=(100, 100.5, 99.5, 100)) -> list[b.Row]:
    # bar 0 carries the signal, bar 1 is the entry bar (open 100), bar 2 is the bar under test
    return b.minutes(DAY, "09:30", [(100, 100.2, 99.8, 100), bar1, bar2, (100, 100.2, 99.8, 100)])


@pytest.mark.parametrize(
    ("bar2", "exit_bar", "price", "reason"),
    [
        # stop 2% below 100 = 98, take-profit 3% above = 103
        ((99.5, 100, 97, 97.5), 2, 98.0, "stop_loss"),  # low 97 touches 98: filled at the level
        ((100.5, 104, 100, 103.5), 2, 103.0, "take_profit"),  # high 104 touches 103
        ((100, 104, 97, 100), 2, 98.0, "stop_loss"),  # both touched in one bar: the stop first
        ((96, 97, 95, 96.5), 2, 96.0, "stop_loss"),  # opens below the stop: gap, filled at the open
        ((105, 106, 104.5, 105.5), 2, 105.0, "take_profit"),  # opens above the target: filled at the open
        ((100, 102.9, 98.1, 101), 3, 100.0, "end_of_data"),  # neither: out at the last close 100
    ],
)
@engines_for("stock")
def test_pct_stop_and_take_profit_intrabar(engine, bar2, exit_bar, price, reason):
    rows = _bars_with(bar2)
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(entry={"long": buy}, exits={"stop_loss": {"pct": 0.02}, "take_profit": {"pct": 0.03}})
    t = only(run(engine, strategy, mkt))
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (1, exit_bar, reason)
    assert t["exit_price"] == approx(price)
    assert t["pnl"] == approx(price - 100.0)


@engines_for("stock")
def test_stop_can_fill_on_the_entry_bar_itself(engine):
    # in at bar 1's open 100; the same bar trades down to 97, through the 98 stop
    rows = _bars_with((99, 99.5, 98.5, 99), bar1=(100, 100.5, 97, 99))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    t = only(run(engine, b.spec(entry={"long": buy}, exits={"stop_loss": {"pct": 0.02}}), mkt))
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"], t["exit_price"]) == (1, 1, "stop_loss", 98.0)


@engines_for("stock")
def test_atr_stop_uses_the_atr_known_at_the_decision_bar(engine):
    bars = [(100, 100.5, 99.5, 100)] * 4  # true range 1.0 each, so ATR(3) = 1.0 from bar 2 on
    bars += [
        (100, 101, 99, 100),  # bar 4, entry bar: TR 2 -> ATR(3) becomes (1*2 + 2)/3 = 1.333
        (99, 99.5, 97.5, 98.5),  # bar 5: low 97.5
        (98.5, 98.6, 98.4, 98.5),
    ]
    rows = b.minutes(DAY, "09:30", bars)
    mkt = b.market(rows)
    buy = b.at(rows, 3)
    strategy = b.spec(
        entry={"long": buy},
        exits={"stop_loss": {"atr": 2.0, "atr_period": 3}, "take_profit": {"atr": 3.0, "atr_period": 3}},
    )
    t = only(run(engine, strategy, mkt))
    # decision on bar 3 (ATR 1.0): stop = 100 - 2 * 1.0 = 98, hit by bar 5's low 97.5.
    # Had the engine used bar 4's ATR 1.333 the stop would be 97.33 and bar 5 would not reach it.
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (4, 5, "stop_loss")
    assert t["exit_price"] == approx(98.0)


@pytest.mark.parametrize(
    ("bar2", "price", "reason"),
    [
        ((100.5, 102.5, 100.2, 102), 102.0, "take_profit"),  # 100 + 2 points
        ((99.8, 100, 98, 98.5), 98.5, "stop_loss"),  # 100 - 1.5 points
    ],
)
@engines_for("stock")
def test_points_stop_and_take_profit(engine, bar2, price, reason):
    rows = _bars_with(bar2)
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(
        entry={"long": buy}, exits={"stop_loss": {"points": 1.5}, "take_profit": {"points": 2.0}}
    )
    t = only(run(engine, strategy, mkt))
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (2, reason, approx(price))


# --------------------------------------------------------------------------- trailing, break-even, partials


TRAIL_BARS = [
    (100, 100, 100, 100),  # bar 0: signal
    (100, 101, 99.8, 100.8),  # bar 1: in at 100, best 101 (+1%)
    (101, 110, 100.5, 109),  # bar 2: runs to 110; its low 100.5 is below 110 * 0.95 but a bar never
    #          raises its own stop, and before it the best was only +1% (< 2% activation)
    (108, 109, 104, 105),  # bar 3: best 110 -> trail 110 * 0.95 = 104.5, low 104 reaches it
    (105, 105, 105, 105),
]


@pytest.mark.parametrize(
    ("activation", "exit_bar", "price", "reason"),
    [(0.02, 3, 104.5, "trailing_stop"), (0.15, 4, 105.0, "end_of_data")],  # +10% never activates 15%
)
@engines_for("stock")
def test_trailing_stop_with_activation(engine, activation, exit_bar, price, reason):
    rows = b.minutes(DAY, "09:30", TRAIL_BARS)
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(entry={"long": buy}, exits={"trailing": {"pct": 0.05, "activation_pct": activation}})
    t = only(run(engine, strategy, mkt))
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (exit_bar, reason, approx(price))
    assert t["pnl"] == approx(price - 100.0)


@engines_for("stock")
def test_break_even_moves_the_stop_to_entry_plus_buffer(engine):
    bars = [
        (100, 100, 100, 100),  # bar 0: signal
        (100, 100.5, 99.8, 100.2),  # bar 1: in at 100, best +0.5%
        (100.2, 103, 100.1, 102.5),  # bar 2: best becomes 103 (+3% >= 2% trigger) for later bars
        (101, 101.5, 99, 99.5),  # bar 3: stop now 100 + 0.1% = 100.1; low 99 reaches it
        (99.5, 99.5, 99.5, 99.5),
    ]
    rows = b.minutes(DAY, "09:30", bars)
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(
        entry={"long": buy},
        exits={"stop_loss": {"pct": 0.05}, "break_even": {"trigger_pct": 0.02, "buffer_pct": 0.001}},
    )
    t = only(run(engine, strategy, mkt))
    assert (t["exit_bar"], t["exit_reason"]) == (3, "break_even")
    assert t["exit_price"] == approx(100.1)
    assert t["pnl"] == approx(0.1)


@engines_for("stock")
def test_partial_take_profits_then_the_rest_keeps_the_stop(engine):
    bars = [
        (100, 100, 100, 100),  # bar 0: signal
        (100, 100.5, 99.8, 100.2),  # bar 1: 10 shares in at 100
        (100.2, 102.5, 100, 102.2),  # bar 2: +2% level 102 reached -> 30% of 10 = 3 shares at 102
        (103, 104.2, 102.5, 103.5),  # bar 3: +4% level 104 reached -> 3 more at 104
        (100, 100.5, 96, 96.5),  # bar 4: the last 4 shares stop out at 97 (3%)
        (96.5, 96.5, 96.5, 96.5),
    ]
    rows = b.minutes(DAY, "09:30", bars)
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(
        entry={"long": buy},
        sizing={"quantity": 10},
        costs={"commission_per_share": 0.01},
        exits={
            "stop_loss": {"pct": 0.03},
            "take_profit": {"pct": 0.10},
            "partial_take_profits": [{"pct": 0.02, "fraction": 0.3}, {"pct": 0.04, "fraction": 0.3}],
        },
    )
    res = run(engine, strategy, mkt)
    records = b.trades(res)
    got = [(r["exit_bar"], r["quantity"], r["exit_price"], r["exit_reason"]) for r in records]
    assert got == [
        (2, 3.0, approx(102.0), "partial_take_profit"),
        (3, 3.0, approx(104.0), "partial_take_profit"),
        (4, 4.0, approx(97.0), "stop_loss"),
    ]
    # entry commission 10 * 0.01 = 0.10 is shared by quantity: 0.03, 0.03, 0.04; each exit pays 0.01/share
    assert [r["commission"] for r in records] == approx([0.06, 0.06, 0.08])
    assert [r["pnl"] for r in records] == approx([3 * 2 - 0.06, 3 * 4 - 0.06, 4 * -3 - 0.08])
    assert res.bar_equity[-1] == approx(100_000 + 5.94 + 11.94 - 12.08)


@engines_for("stock")
def test_many_partial_exits_on_every_bar_are_all_recorded(engine):
    # every bar opens at 100 and runs to 106: a trade entered at a bar's open takes its four partial
    # targets (10 shares each at 101, 102, 103, 104) and the final target (60 at 105) inside that bar,
    # and the signal on that bar enters again at the next open: 5 trade rows per bar
    n = 300
    rows = b.minutes(DAY, "09:30", [(100, 106, 99.9, 105)] * n)
    mkt = b.market(rows)
    buy = "close > 0"  # a signal on every bar
    partials = [{"pct": p, "fraction": 0.1} for p in (0.01, 0.02, 0.03, 0.04)]
    strategy = b.spec(
        entry={"long": buy},
        sizing={"quantity": 100},
        exits={"take_profit": {"pct": 0.05}, "partial_take_profits": partials},
    )
    res = run(engine, strategy, mkt)
    assert res.trades.height == 5 * (n - 1)  # bars 1 .. n-1 each hold one whole trade
    # per trade 10 * (1 + 2 + 3 + 4) + 60 * 5 = 400
    assert res.bar_equity[-1] == approx(100_000 + 400 * (n - 1))


# --------------------------------------------------------------------------- time exits and windows


@engines_for("stock")
def test_max_hold_closes_at_the_open_of_the_first_bar_past_the_limit(engine):
    rows = b.minutes(DAY, "09:30", rising(7))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    t = only(run(engine, b.spec(entry={"long": buy}, exits={"max_hold_minutes": 3}), mkt))
    # in at 09:31 (bar 1, open 101); 09:34 is 3 minutes later -> out at bar 4's open 104
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (1, 4, "time_exit")
    assert t["exit_price"] == approx(104.0)


EOD_ROWS = b.minutes(DAY, "15:54", rising(6)) + b.minutes("2024-03-05", "09:30", rising(3, 110))


@pytest.mark.parametrize(
    ("signal_bar", "expected"),
    [
        (1, (2, 4)),  # signal 15:55 -> in 15:56, flat at the open of the 15:58 bar
        (3, None),  # signal 15:57: the fill would be the 15:58 bar, already flat time: no entry
        (4, None),  # signal at the flat time: no entry, and nothing carried into the next day
        (5, None),  # the session's last bar
    ],
)
@engines_for("stock")
def test_eod_flat_time(engine, signal_bar, expected):
    rows = EOD_ROWS
    mkt = b.market(rows)
    buy = b.at(rows, signal_bar)
    res = run(engine, b.spec(entry={"long": buy}, exits={"eod_flat_time": "15:58"}), mkt)
    if expected is None:
        assert res.trades.height == 0
        return
    t = only(res)
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (*expected, "eod_flat")
    assert (t["entry_price"], t["exit_price"]) == approx((102.0, 104.0))


HALF_DAY_ROWS = b.minutes("2024-11-29", "12:55", rising(5)) + b.minutes("2024-12-02", "09:30", rising(2, 110))


@pytest.mark.parametrize(("signal_bar", "expected"), [(1, (2, 4)), (3, None)])
@engines_for("stock")
def test_eod_flat_on_a_half_day_closes_at_its_last_bar(engine, signal_bar, expected):
    # 2024-11-29 closes at 13:00, before the 15:55 flat time: flat at the open of its last bar (12:59)
    rows = HALF_DAY_ROWS
    mkt = b.market(rows)
    buy = b.at(rows, signal_bar)
    res = run(engine, b.spec(entry={"long": buy}, exits={"eod_flat_time": "15:55"}), mkt)
    if expected is None:  # the fill would be the half day's last bar, which is flat already
        assert res.trades.height == 0
        return
    t = only(res)
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (*expected, "eod_flat")
    assert t["exit_price"] == approx(104.0)


@pytest.mark.parametrize(("signal_bar", "entry_bar"), [(1, None), (2, 3), (3, 4), (4, None)])
@engines_for("stock")
def test_entry_window_is_on_the_decision_bar(engine, signal_bar, entry_bar):
    # window [09:32, 09:34): decisions on the 09:32 and 09:33 bars only
    rows = b.minutes(DAY, "09:30", rising(7))
    mkt = b.market(rows)
    buy = b.at(rows, signal_bar)
    res = run(engine, b.spec(entry={"long": buy, "window_start": "09:32", "window_end": "09:34"}), mkt)
    assert res.trades.get_column("entry_bar").to_list() == ([] if entry_bar is None else [entry_bar])


@pytest.mark.parametrize(("limit", "entries"), [(1, [1, 7]), (2, [1, 4, 7]), (None, [1, 4, 7])])
@engines_for("stock")
def test_max_trades_per_day(engine, limit, entries):
    rows = b.minutes(DAY, "09:30", rising(6)) + b.minutes("2024-03-05", "09:30", rising(3, 110))
    mkt = b.market(rows)
    buy = b.at(rows, 0, 3, 6)
    res = run(
        engine,
        b.spec(entry={"long": buy}, sizing={"max_trades_per_day": limit}, exits={"max_hold_minutes": 1}),
        mkt,
    )
    # each trade is out one minute later (max hold); the limit resets with the new session (bar 6)
    assert res.trades.get_column("entry_bar").to_list() == entries
    assert res.trades.get_column("exit_bar").to_list() == [e + 1 for e in entries]


# --------------------------------------------------------------------------- direction


@pytest.mark.parametrize(
    ("bar2", "price", "reason"),
    [
        ((100.5, 103, 100, 102.5), 102.0, "stop_loss"),  # short from 100: stop 2% above = 102
        ((99.5, 100, 96, 96.5), 97.0, "take_profit"),  # target 3% below = 97
        ((103, 104, 102.5, 103.5), 103.0, "stop_loss"),  # gaps above the stop: filled at the open
    ],
)
@engines_for("stock")
def test_short_stop_and_take_profit(engine, bar2, price, reason):
    rows = _bars_with(bar2)
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(
        direction="short",
        entry={"long": None, "short": buy},
        exits={"stop_loss": {"pct": 0.02}, "take_profit": {"pct": 0.03}},
    )
    t = only(run(engine, strategy, mkt))
    assert (t["side"], t["exit_bar"], t["exit_reason"]) == ("short", 2, reason)
    assert (t["entry_price"], t["exit_price"]) == approx((100.0, price))
    assert t["pnl"] == approx(100.0 - price)  # a short gains what the price loses


@engines_for("stock")
def test_short_exit_signal(engine):
    rows = b.minutes(DAY, "09:30", rising(6))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    sell = b.at(rows, 2)
    strategy = b.spec(direction="short", entry={"long": None, "short": buy}, exits={"exit_short": sell})
    t = only(run(engine, strategy, mkt))
    # short at bar 1 open 101, covered at bar 3 open 103: -2
    assert (t["side"], t["entry_bar"], t["exit_bar"], t["exit_reason"]) == ("short", 1, 3, "signal")
    assert t["pnl"] == approx(-2.0)


@engines_for("stock")
def test_long_short_reversal_closes_and_reopens_at_the_same_open(engine):
    rows = b.minutes(DAY, "09:30", rising(7))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    sell = b.at(rows, 3)
    strategy = b.spec(direction="both", entry={"long": buy, "short": sell})
    records = b.trades(run(engine, strategy, mkt))
    got = [(r["side"], r["entry_bar"], r["exit_bar"], r["exit_reason"]) for r in records]
    assert got == [("long", 1, 4, "reverse"), ("short", 4, 6, "end_of_data")]
    # long 101 -> 104 (+3); short 104 -> last close 106.5 (-2.5)
    assert [(r["entry_price"], r["exit_price"], r["pnl"]) for r in records] == [
        approx((101.0, 104.0, 3.0)),
        approx((104.0, 106.5, -2.5)),
    ]


# --------------------------------------------------------------------------- sizing


def _sized(
    engine: str, sizing: dict[str, Any], costs: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    rows = _bars_with((100, 100.5, 99.5, 100))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    return only(run(engine, b.spec(entry={"long": buy}, sizing=sizing, costs=costs or {}, **fields), mkt))


@engines_for("stock")
def test_fixed_sizing(engine):
    assert _sized(engine, {"mode": "fixed", "quantity": 7})["quantity"] == 7.0


@pytest.mark.parametrize(
    ("costs", "qty"),
    [
        ({}, 50),  # 10000 * 0.5 / 100 = 50 exactly
        ({"commission_per_share": 0.01}, 49),  # 5000 / (100 + 0.01) = 49.995 -> 49 whole shares
        ({"commission_pct": 0.001}, 49),  # 5000 / (100 + 0.1) = 49.95 -> 49
        ({"slippage_bps": 10}, 49),  # pays 100.10 a share: 5000 / 100.1 = 49.95 -> 49
    ],
)
@engines_for("stock")
def test_pct_equity_sizing_whole_shares_commission_included(engine, costs, qty):
    t = _sized(engine, {"mode": "pct_equity", "pct_equity": 0.5}, costs, initial_cash=10_000.0)
    assert t["quantity"] == qty


@engines_for("stock")
def test_pct_equity_cash_after_entry(engine):
    rows = _bars_with((100, 100.5, 99.5, 100.0))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(
        entry={"long": buy},
        sizing={"mode": "pct_equity", "pct_equity": 0.5},
        costs={"commission_per_share": 0.01},
        initial_cash=10_000.0,
    )
    res = run(engine, strategy, mkt)
    # 49 shares at 100 + 0.49 commission: cash 10000 - 4900 - 0.49 = 5099.51; bar 1 closes at 100
    assert res.bar_equity[1] == approx(5099.51 + 49 * 100.0)


@pytest.mark.parametrize(
    ("exits", "costs", "qty", "unit_loss"),
    [
        ({"stop_loss": {"points": 2.0}}, {}, 500, 2.0),  # risk 1% of 100000 = 1000; 1000 / 2 = 500
        ({"stop_loss": {"pct": 0.02}}, {}, 500, 2.0),  # 2% of 100 = 2 a share as well
        # with 0.01/share commission each side a stopped share loses 2 + 0.01 + 0.01 = 2.02:
        # 1000 / 2.02 = 495.05 -> 495 (496 would lose 1001.92)
        ({"stop_loss": {"points": 2.0}}, {"commission_per_share": 0.01}, 495, 2.02),
        # 10 bps slippage: paid 100.10, stop 98.10, sold there at 98.10 * 0.999 = 98.0019:
        # a share loses 2.0981 -> 1000 / 2.0981 = 476.6 -> 476
        ({"stop_loss": {"points": 2.0}}, {"slippage_bps": 10}, 476, 100.1 - 98.1 * 0.999),
    ],
)
@engines_for("stock")
def test_risk_sizing_loses_risk_pct_at_the_stop(engine, exits, costs, qty, unit_loss):
    stopped = b.minutes(DAY, "09:30", [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (99, 99, 97, 97.5)])
    rows = stopped
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    t = only(
        run(
            engine,
            b.spec(entry={"long": buy}, sizing={"mode": "risk", "risk_pct": 0.01}, costs=costs, exits=exits),
            mkt,
        )
    )
    assert t["quantity"] == qty
    assert t["exit_reason"] == "stop_loss"
    assert t["pnl"] == approx(-qty * unit_loss)
    assert t["pnl"] >= -1000.0 and (qty + 1) * unit_loss > 1000.0  # the largest size within the risk


# --------------------------------------------------------------------------- costs


@engines_for("stock")
def test_commission_per_share_and_pct(engine):
    rows = b.flat(DAY, "09:30", [100, 100, 105, 110, 110])
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    sell = b.at(rows, 2)
    strategy = b.spec(
        entry={"long": buy},
        sizing={"quantity": 10},
        costs={"commission_per_share": 0.005, "commission_pct": 0.001},
        exits={"exit_long": sell},
    )
    res = run(engine, strategy, mkt)
    t = only(res)
    # entry 10 * 0.005 + 0.001 * 10 * 100 = 1.05; exit 10 * 0.005 + 0.001 * 10 * 110 = 1.15
    assert t["commission"] == approx(2.2)
    assert t["pnl"] == approx(10 * (110 - 100) - 2.2)
    assert res.bar_equity[-1] == approx(100_000 + 97.8)


@engines_for("stock")
def test_slippage_bps_on_signal_fills(engine):
    rows = b.flat(DAY, "09:30", [100, 100, 105, 110, 110])
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    sell = b.at(rows, 2)
    strategy = b.spec(
        entry={"long": buy}, sizing={"quantity": 10}, costs={"slippage_bps": 10}, exits={"exit_long": sell}
    )
    t = only(run(engine, strategy, mkt))
    # buys pay 10 bps more: 100 * 1.001 = 100.1; sells get 10 bps less: 110 * 0.999 = 109.89
    assert (t["entry_price"], t["exit_price"]) == approx((100.1, 109.89))
    assert t["pnl"] == approx(10 * (109.89 - 100.1))


@engines_for("stock")
def test_slippage_bps_is_charged_on_the_stop_price(engine):
    rows = _bars_with((99.5, 99.6, 97, 97.5))
    mkt = b.market(rows)
    buy = b.at(rows, 0)
    strategy = b.spec(entry={"long": buy}, costs={"slippage_bps": 10}, exits={"stop_loss": {"pct": 0.02}})
    t = only(run(engine, strategy, mkt))
    # paid 100.1; stop 2% below that = 98.098; the sale there gets 10 bps less: 98.098 * 0.999
    assert t["exit_price"] == approx(98.098 * 0.999, abs=1e-9)
    assert t["pnl"] == approx(98.098 * 0.999 - 100.1, abs=1e-9)


# --------------------------------------------------------------------------- futures and forex


MES_BARS = [
    (5000, 5000, 5000, 5000),  # bar 0: signal
    (5000, 5002, 4999, 5001),  # bar 1: in at 5000 + 1 tick = 5000.25
]


@pytest.mark.parametrize(
    ("bar2", "exit_bar", "price", "reason"),
    [
        # sell signal on bar 2 -> out at bar 3's open 5010 - 1 tick = 5009.75
        ((5005, 5010, 5004, 5009), 3, 5009.75, "signal"),
        # 4-point stop below 5000.25 = 4996.25, sold a tick lower: 4996.00
        ((4999, 5000, 4990, 4992), 2, 4996.0, "stop_loss"),
    ],
)
@engines_for("future")
def test_futures_multiplier_and_tick_slippage(engine, bar2, exit_bar, price, reason):
    bars = [*MES_BARS, bar2, (5010, 5011, 5008, 5010), (5010, 5010, 5010, 5010)]
    rows = b.minutes(DAY, "09:30", bars)
    mkt = b.market(rows, symbol="MES", kind="future")
    buy = b.at(rows, 0)
    sell = b.at(rows, 2)
    strategy = b.spec(
        entry={"long": buy},
        instrument={"type": "future", "symbol": "MES"},
        sizing={"quantity": 2},
        costs={"slippage_ticks": 1, "commission_per_contract": 0.62},
        exits={"exit_long": sell, "stop_loss": {"points": 4}},
    )
    t = only(run(engine, strategy, mkt))
    assert (t["exit_bar"], t["exit_reason"], t["instrument"]) == (exit_bar, reason, "MES")
    assert (t["entry_price"], t["exit_price"]) == approx((5000.25, price))
    # $5 a point on 2 contracts, 0.62 per contract per side: 4 * 0.62 = 2.48
    assert t["commission"] == approx(2.48)
    assert t["pnl"] == approx(2 * 5 * (price - 5000.25) - 2.48)


FX_BARS = [
    (1.0850, 1.0850, 1.0850, 1.0850),  # bar 0: signal
    (1.0850, 1.0855, 1.0845, 1.0852),  # bar 1: in at 1.0850
]


@engines_for("forex")
def test_forex_risk_sizing_in_001_lots_and_pip_stop(engine):
    bars = [*FX_BARS, (1.0840, 1.0842, 1.0810, 1.0815), (1.0815, 1.0815, 1.0815, 1.0815)]
    rows = b.minutes(DAY, "09:30", bars)
    mkt = b.market(rows, symbol="C:EURUSD", kind="forex")
    buy = b.at(rows, 0)
    strategy = b.spec(
        entry={"long": buy},
        instrument={"type": "forex", "symbol": "EURUSD"},
        sizing={"mode": "risk", "risk_pct": 0.01},
        exits={"stop_loss": {"pips": 30}},
        initial_cash=10_000.0,
    )
    t = only(run(engine, strategy, mkt))
    # risk 1% of 10000 = 100; 30 pips = 0.0030 * 100000 = 300 per lot -> 0.333 -> 0.33 lots
    assert t["quantity"] == approx(0.33)
    # stop 1.0850 - 0.0030 = 1.0820 (bar 2's low 1.0810 reaches it)
    assert (t["exit_reason"], t["exit_price"]) == ("stop_loss", approx(1.0820))
    assert t["pnl"] == approx(0.33 * 100_000 * (1.0820 - 1.0850))  # -99.0


@engines_for("forex")
def test_forex_partial_take_profit_closes_whole_001_lots(engine):
    bars = [*FX_BARS, (1.0852, 1.0875, 1.0851, 1.0870), (1.0870, 1.0870, 1.0870, 1.0870)]
    rows = b.minutes(DAY, "09:30", bars)
    mkt = b.market(rows, symbol="C:EURUSD", kind="forex")
    buy = b.at(rows, 0)
    strategy = b.spec(
        entry={"long": buy},
        instrument={"type": "forex", "symbol": "EURUSD"},
        sizing={"quantity": 0.33},
        exits={"partial_take_profits": [{"pct": 0.002, "fraction": 0.5}]},
    )
    records = b.trades(run(engine, strategy, mkt))
    # half of 0.33 lots is 0.165: only whole 0.01 lots trade -> 0.16 at 1.085 * 1.002, 0.17 ride to the end
    assert [(r["quantity"], r["exit_reason"]) for r in records] == [
        (approx(0.16), "partial_take_profit"),
        (approx(0.17), "end_of_data"),
    ]
    assert records[0]["exit_price"] == approx(1.0850 * 1.002)


@engines_for("forex")
def test_forex_time_between_across_midnight_enters_in_the_overnight_window(engine):
    # '23:59' .. '00:01' within one forex session (it opened at 17:00): true at 23:59 and 00:00, so the
    # entry fills at the 00:00 bar's open. A start after the end selected nothing before.
    opens = [1.0850, 1.0851, 1.0852, 1.0853, 1.0854, 1.0855, 1.0856]
    rows = b.minutes(DAY, "23:57", [(p, p, p, p) for p in opens])  # 23:57 .. 00:03
    mkt = b.market(rows, symbol="C:EURUSD", kind="forex")
    strategy = b.spec(
        entry={"long": "time_between('23:59', '00:01')"},
        instrument={"type": "forex", "symbol": "EURUSD"},
        sizing={"quantity": 0.1},
    )
    t = only(run(engine, strategy, mkt))
    assert (t["entry_bar"], t["entry_price"]) == (3, approx(1.0853))


# --------------------------------------------------------------------------- options


EXP = dt.date(2024, 3, 4)  # 0DTE on DAY
DAY2 = "2024-03-05"
EXP2 = dt.date(2024, 3, 5)


def occ(strike: float, right: str = "C", expiry: dt.date = EXP) -> str:
    return f"O:SPY{expiry:%y%m%d}{right}{int(strike * 1000):08d}"


def bs_abs_delta(price: float, spot: float, strike: float, t: float, call: bool, rate: float = 0.05) -> float:
    """|delta| from the Black-Scholes implied volatility, solved with scipy (independent of the kernel)."""

    def bs(vol: float) -> float:
        d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * t) / (vol * math.sqrt(t))
        d2 = d1 - vol * math.sqrt(t)
        if call:
            return spot * norm.cdf(d1) - strike * math.exp(-rate * t) * norm.cdf(d2)
        return strike * math.exp(-rate * t) * norm.cdf(-d2) - spot * norm.cdf(-d1)

    vol = brentq(lambda v: bs(v) - price, 1e-4, 5.0)
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * t) / (vol * math.sqrt(t))
    return float(norm.cdf(d1) if call else norm.cdf(-d1))


UNDER = b.flat(DAY, "09:30", [100.0] * 7)  # the underlying sits at 100 all morning
CHAIN_AT_BAR1 = {99: 1.20, 100: 0.55, 101: 0.20, 102: 0.05}  # call closes on bar 1 (09:31)


def chain_contracts() -> list[Contract]:
    return [
        Contract(occ(k), EXP, float(k), "C", {0: (p, p, p, p), 1: (p, p, p, p)})
        for k, p in CHAIN_AT_BAR1.items()
    ] + [Contract(occ(100, "P"), EXP, 100.0, "P", {1: (0.55, 0.55, 0.55, 0.55)})]


@pytest.mark.parametrize(
    ("mode", "value", "strike"),
    [
        ("delta", 0.50, 100),
        ("delta", 0.25, 101),
        ("delta", 0.75, 99),
        ("offset", 1.0, 101),  # strike closest to spot + 1
        ("moneyness", 0.02, 102),  # strike closest to spot * 1.02
    ],
)
def test_select_contract_picks_the_expected_call(mode, value, strike):
    opt = b.option_arrays(UNDER, chain_contracts())
    minute = 9 * 60 + 31  # decision on bar 1
    t_years = (16 * 60 - minute) / (365 * 24 * 60)  # to the 16:00 expiry
    day_ord = (EXP - dt.date(1970, 1, 1)).days
    mode_code = {"delta": 0, "moneyness": 1, "offset": 2}[mode]
    last = opt.last(15)
    c = K.select_contract(
        int(opt.day_c0[0]), int(opt.day_c1[0]), 1, 100.0, minute, day_ord, True, 0, mode_code, value, 0.05,
        opt.c_exp, opt.c_strike, opt.c_call, opt.c_off, last,
    )  # fmt: skip
    assert opt.c_ticker[c] == occ(strike)
    if mode == "delta":  # the same choice from deltas solved independently with scipy
        deltas = {k: bs_abs_delta(p, 100.0, float(k), t_years, True) for k, p in CHAIN_AT_BAR1.items()}
        assert min(deltas, key=lambda k: abs(deltas[k] - value)) == strike


def test_select_contract_puts_and_none_when_nothing_is_priced():
    opt = b.option_arrays(UNDER, chain_contracts())
    day_ord = (EXP - dt.date(1970, 1, 1)).days
    args = (opt.c_exp, opt.c_strike, opt.c_call, opt.c_off, opt.last(15))
    put = K.select_contract(
        int(opt.day_c0[0]), int(opt.day_c1[0]), 1, 100.0, 571, day_ord, False, 0, 0, 0.5, 0.05, *args
    )
    assert opt.c_ticker[put] == occ(100, "P")
    # a 1-day-to-expiry leg finds no contract in a chain of 0DTE ones
    none = K.select_contract(
        int(opt.day_c0[0]), int(opt.day_c1[0]), 1, 100.0, 571, day_ord, True, 1, 0, 0.5, 0.05, *args
    )
    assert none == -1


def option_spec(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "instrument": {
            "type": "option",
            "symbol": "SPY",
            "legs": [{"right": "call", "select": "delta", "value": 0.5}],
        },
        "costs": {"option_half_spread": 0.02, "commission_per_contract": 0.65},
        "sizing": {"quantity": 2},
    }
    return b.spec(**b.merge(base, fields))


def _long_call_market(c100_bar3: tuple[float, float, float, float]) -> Any:
    contracts = chain_contracts()
    c100 = next(c for c in contracts if c.ticker == occ(100))
    c100.bars.update({2: (0.56, 0.60, 0.50, 0.58), 3: c100_bar3, 4: (0.60, 0.60, 0.60, 0.60)})
    return b.option_market(UNDER, contracts)


@pytest.mark.parametrize(
    ("bar3", "price", "reason"),
    [
        # paid 0.56 + 0.02 half spread = 0.58 (58 a contract); target +100% = 1.16, stop -50% = 0.29
        ((0.70, 1.30, 0.65, 1.25), 1.14, "take_profit"),  # option's high 1.30 reaches 1.16: sold 1.16 - 0.02
        ((0.40, 0.45, 0.20, 0.25), 0.27, "stop_loss"),  # low 0.20 reaches 0.29: sold 0.29 - 0.02
    ],
)
@engines_for("option")
def test_0dte_long_call_premium_take_profit_and_stop_on_its_own_bars(engine, bar3, price, reason):
    strategy = option_spec(
        entry={"long": b.at(UNDER, 1)}, exits={"take_profit": {"pct": 1.0}, "stop_loss": {"pct": 0.5}}
    )
    t = only(run(engine, strategy, _long_call_market(bar3)))
    assert (t["instrument"], t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (occ(100), 2, 3, reason)
    assert (t["entry_price"], t["exit_price"]) == approx((0.58, price))
    # 2 contracts, 100 shares each; 0.65 per contract per side on 2 contracts twice = 2.60
    assert t["commission"] == approx(2.6)
    assert t["pnl"] == approx(2 * 100 * (price - 0.58) - 2.6)


@engines_for("option")
def test_0dte_call_held_to_expiry_closes_at_the_last_bar_mark(engine):
    contracts = chain_contracts()
    c100 = next(c for c in contracts if c.ticker == occ(100))
    c100.bars.update({2: (0.56, 0.60, 0.50, 0.58), 5: (0.70, 0.75, 0.65, 0.72), 6: (0.74, 0.80, 0.70, 0.78)})
    rows = UNDER + b.flat("2024-03-05", "09:30", [101.0, 101.0])  # a next session: not the end of data
    mkt = b.option_market(rows, contracts)
    buy = b.at(rows, 1)
    t = only(run(engine, option_spec(entry={"long": buy}), mkt))
    # held all day; the last bar of its expiry session (bar 6, 09:36 here) closes at its mark 0.78 - 0.02
    assert (t["exit_bar"], t["exit_reason"]) == (6, "expiry")
    assert t["exit_price"] == approx(0.76)
    assert t["pnl"] == approx(2 * 100 * (0.76 - 0.58) - 2.6)


@pytest.mark.parametrize(
    ("staleness", "expected"),
    [
        (2, None),  # decided on bar 2 (last trade 2 bars old: priced); at bar 3 it is 3 bars old: no fill
        (3, (3, 0.55)),  # 3 bars is within the limit: filled at the last trade 0.55
    ],
)
@engines_for("option")
def test_option_staleness(engine, staleness, expected):
    contracts = [
        Contract(occ(100), EXP, 100.0, "C", {0: (0.55, 0.55, 0.55, 0.55)}),
        Contract(occ(101), EXP, 101.0, "C", {0: (0.20, 0.20, 0.20, 0.20)}),
    ]
    under = b.flat(DAY, "09:30", [100.0, 100.0, 100.0, 100.0, 100.0, 100.5, 100.8])
    rows = under
    mkt = b.option_market(rows, contracts)
    buy = b.at(rows, 2)
    strategy = option_spec(
        entry={"long": buy},
        instrument={"max_staleness_minutes": staleness},
        costs={"option_half_spread": 0.0},
        sizing={"quantity": 1},
    )
    res = run(engine, strategy, mkt)
    if expected is None:
        assert res.trades.height == 0
        return
    t = only(res)
    assert (t["instrument"], t["entry_bar"], t["entry_price"]) == (occ(100), expected[0], approx(expected[1]))
    # never traded again: no mark at expiry, so it settles at intrinsic value, 100.8 - 100 = 0.80
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (6, "expiry", approx(0.80))


@pytest.mark.parametrize(
    ("days_before", "exit_bar", "price", "reason"),
    [
        # expiry Wednesday; 1 day before is Tuesday: out at Tuesday's first open 1.30 - 0.02
        (1, 4, 1.28, "before_expiry"),
        # otherwise held, re-found in each session's chain, to Wednesday's last bar mark 0.90 - 0.02
        (None, 8, 0.88, "expiry"),
    ],
)
@engines_for("option")
def test_close_days_before_expiry(engine, days_before, exit_bar, price, reason):
    wed = dt.date(2024, 3, 6)
    rows = b.flat(DAY, "09:30", [100.0] * 4) + b.flat(DAY2, "09:30", [100.0] * 3)
    rows += b.flat("2024-03-06", "09:30", [99.0] * 2)  # bars 7, 8
    c = Contract(occ(100, expiry=wed), wed, 100.0, "C", {k: (1.50,) * 4 for k in (0, 1, 3)})
    c.bars.update({2: (1.50, 1.55, 1.45, 1.52), 4: (1.30, 1.35, 1.25, 1.32), 5: (1.3,) * 4, 6: (1.2,) * 4})
    c.bars.update({7: (1.0,) * 4, 8: (0.90,) * 4})
    mkt = b.option_market(rows, [c])
    buy = b.at(rows, 1)
    strategy = option_spec(
        entry={"long": buy},
        instrument={"legs": [{"right": "call", "dte": 2, "select": "delta", "value": 0.5}]},
        exits={"close_days_before_expiry": days_before},
    )
    t = only(run(engine, strategy, mkt))
    # bought Monday at bar 2's open 1.50 + 0.02 = 1.52, 2 contracts, 2.60 commission round trip
    assert (t["entry_bar"], t["entry_price"]) == (2, approx(1.52))
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (exit_bar, reason, approx(price))
    assert t["pnl"] == approx(200 * (price - 1.52) - 2.6)


@engines_for("option")
def test_option_exit_waits_for_a_price(engine):
    c100 = Contract(occ(100), EXP, 100.0, "C", {k: (0.55,) * 4 for k in (0, 1)})
    c100.bars.update({2: (0.60,) * 4, 7: (0.80, 0.85, 0.75, 0.82), 8: (0.82,) * 4})
    under = b.flat(DAY, "09:30", [100.0] * 10)
    rows = under
    mkt = b.option_market(rows, [c100])
    buy = b.at(rows, 1)
    sell = b.at(rows, 4)
    strategy = option_spec(
        entry={"long": buy},
        instrument={"max_staleness_minutes": 2},
        sizing={"quantity": 1},
        exits={"exit_long": sell},
    )
    t = only(run(engine, strategy, mkt))
    # sell signal on bar 4 (last trade at bar 2 is 2 bars old: still priced); at bar 5 the price is
    # 3 bars old, so the exit waits, through bar 6, for the next trade: bar 7's open 0.80 - 0.02
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"]) == (2, 7, "signal")
    assert (t["entry_price"], t["exit_price"]) == approx((0.62, 0.78))


@engines_for("option")
def test_option_entry_decided_on_the_sessions_last_bar_never_fills_next_session(engine):
    contracts = chain_contracts()
    for c in contracts:
        p = c.bars[1][0]
        c.bars.update({k: (p, p, p, p) for k in range(7)})
    rows = UNDER + b.flat("2024-03-05", "09:30", [100.0] * 3)
    mkt = b.option_market(rows, contracts)
    buy = b.at(rows, 6)
    assert run(engine, option_spec(entry={"long": buy}), mkt).trades.height == 0


def _spread_market() -> Any:
    c100 = Contract(occ(100), EXP, 100.0, "C", {1: (0.55,) * 4})
    c101 = Contract(occ(101), EXP, 101.0, "C", {1: (0.20,) * 4})
    c100.bars.update(
        {
            2: (0.60, 0.62, 0.58, 0.61),
            3: (0.62, 1.40, 0.60, 0.90),  # runs to 1.40 inside the bar, closes 0.90
            4: (0.95, 1.15, 0.90, 1.10),
            5: (1.20, 1.25, 1.15, 1.22),
            6: (1.22,) * 4,
        }
    )
    c101.bars.update(
        {
            2: (0.20, 0.21, 0.19, 0.20),
            3: (0.22, 0.50, 0.21, 0.30),
            4: (0.32, 0.42, 0.30, 0.40),
            5: (0.45, 0.46, 0.44, 0.45),
            6: (0.45,) * 4,
        }
    )
    return b.option_market(UNDER, [c100, c101])


@engines_for("option")
def test_vertical_spread_levels_on_close_marks_filled_next_open(engine):
    strategy = option_spec(
        entry={"long": b.at(UNDER, 1)},
        instrument={
            "legs": [
                {"right": "call", "side": "buy", "select": "delta", "value": 0.5},
                {"right": "call", "side": "sell", "select": "offset", "value": 1.0},
            ]
        },
        sizing={"quantity": 1},
        exits={"take_profit": {"pct": 0.5}, "stop_loss": {"pct": 0.5}},
    )
    t = only(run(engine, strategy, _spread_market()))
    assert t["instrument"] == f"{occ(100)}+{occ(101)}"
    # net debit at bar 2's opens: (0.60 + 0.02) - (0.20 - 0.02) = 0.44 (44 a spread); target 66
    assert (t["entry_bar"], t["entry_price"]) == (2, approx(0.44))
    # bar 3: intrabar the spread could reach 1.40 - 0.21 but only the close mark counts: 0.90 - 0.30 = 0.60
    # bar 4: close mark 1.10 - 0.40 = 0.70 >= 0.66 -> out at bar 5's opens: 1.20 - 0.45 - 2 * 0.02 = 0.71
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (5, "take_profit", approx(0.71))
    # commission 0.65 per contract per side, 2 contracts a spread: 2 * 2 * 0.65 = 2.60
    assert t["commission"] == approx(2.6)
    assert t["pnl"] == approx(100 * (0.71 - 0.44) - 2.6)


@engines_for("option")
def test_vertical_spread_partial_take_profit_closes_whole_spreads(engine):
    strategy = option_spec(
        entry={"long": b.at(UNDER, 1)},
        instrument={
            "legs": [
                {"right": "call", "side": "buy", "select": "delta", "value": 0.5},
                {"right": "call", "side": "sell", "select": "offset", "value": 1.0},
            ]
        },
        sizing={"quantity": 3},
        exits={"take_profit": {"pct": 0.5}, "partial_take_profits": [{"pct": 0.3, "fraction": 0.5}]},
    )
    records = b.trades(run(engine, strategy, _spread_market()))
    # 3 spreads at 0.44. Bar 3's close mark 0.60 >= 0.44 * 1.3 = 0.572: half of 3 is 1.5 -> 1 whole
    # spread out at bar 4's opens 0.95 - 0.32 - 0.04 = 0.59. Bar 4's mark 0.70 >= 0.66: the other 2 at 0.71.
    got = [(r["exit_bar"], r["quantity"], r["exit_price"], r["exit_reason"]) for r in records]
    assert got == [(4, 1.0, approx(0.59), "partial_take_profit"), (5, 2.0, approx(0.71), "take_profit")]
    # entry commission 3 * 1.30 is shared by quantity: 1.30 + 2.60; each exit pays 1.30 a spread
    assert [r["commission"] for r in records] == approx([2.6, 5.2])
    assert [r["pnl"] for r in records] == approx([100 * 0.15 - 2.6, 2 * 100 * 0.27 - 5.2])


def _staged_market() -> tuple[Any, str]:
    under = b.flat(DAY, "09:30", [100.0, 100.0, 100.0, 101.2, 101.5, 101.6, 101.6])
    under += b.flat(DAY2, "09:30", [100.0, 100.0, 100.0, 100.2, 100.3, 100.3])  # bars 7..12
    c100 = Contract(occ(100), EXP, 100.0, "C", {1: (0.55,) * 4})
    c101 = Contract(occ(101), EXP, 101.0, "C", {1: (0.20,) * 4})
    c100.bars.update(
        {
            2: (0.50, 0.52, 0.48, 0.50),  # bought at 0.50 + 0.01
            3: (0.70, 0.90, 0.68, 0.85),  # underlying closes 101.2: +1.2% from the 100 entry open
            4: (1.20, 1.45, 1.15, 1.40),
            5: (1.50, 1.55, 1.45, 1.50),
            6: (1.55,) * 4,
        }
    )
    c101.bars.update(
        {
            3: (0.40, 0.45, 0.38, 0.42),
            4: (0.30, 0.42, 0.29, 0.40),  # the short leg is sold at this open: 0.30 - 0.01
            5: (0.45, 0.46, 0.44, 0.45),
            6: (0.46,) * 4,
        }
    )
    # day 2: a fresh single long call that should again use intrabar levels
    d2 = Contract(occ(100, expiry=EXP2), EXP2, 100.0, "C", {8: (0.55,) * 4})
    d2.bars.update(
        {9: (0.50, 0.52, 0.48, 0.50), 10: (0.60, 1.10, 0.58, 0.80), 11: (0.80,) * 4, 12: (0.80,) * 4}
    )
    return b.option_market(under, [c100, c101, d2]), b.at(under, 1, 8)


@engines_for("option")
def test_staged_conversion_sells_the_short_leg_and_uses_the_net_debit(engine):
    mkt, buy = _staged_market()  # signals on bar 1 (Monday 09:31) and bar 8 (Tuesday 09:31)
    strategy = option_spec(
        entry={"long": buy},
        instrument={"staged": {"underlying_move_pct": 0.01, "width": 1.0}},
        costs={"option_half_spread": 0.01, "commission_per_contract": 0.5},
        sizing={"quantity": 1},
        exits={"take_profit": {"pct": 1.0}},
    )
    records = b.trades(run(engine, strategy, mkt))
    assert len(records) == 2, records
    first, second = records
    # bought C100 at 0.51 (51). Bar 3 closes the underlying at 101.2 >= 100 * 1.01 -> sell the
    # strike 101 call at bar 4's open 0.30 - 0.01 = 0.29: net debit 51 - 29 = 22, target +100% = 44.
    # Bar 4's close marks 1.40 - 0.40 = 1.00 (100 >= 44) -> out at bar 5's opens:
    # 1.50 - 0.45 - 2 legs * 0.01 = 1.03.
    assert first["instrument"] == f"{occ(100)}+{occ(101)}"
    assert (first["entry_bar"], first["exit_bar"], first["exit_reason"]) == (2, 5, "take_profit")
    assert (first["entry_price"], first["exit_price"]) == approx((0.22, 1.03))
    # commissions 0.5 a contract: buy C100, sell C101, then close both legs (2 contracts) = 2.00
    assert first["commission"] == approx(2.0)
    assert first["pnl"] == approx(103 - 22 - 2.0)
    # day 2: a plain long call again (0.51, target 1.02): its own bar 10 high 1.10 hits the target
    # intrabar and fills at 1.02 - 0.01, like any single leg
    assert second["instrument"] == occ(100, expiry=EXP2)
    assert (second["entry_bar"], second["exit_bar"], second["exit_reason"]) == (9, 10, "take_profit")
    assert second["exit_price"] == approx(1.01)


# --------------------------------------------------------------------------- external signals


def _event_rows() -> list[b.Row]:
    return b.minutes(DAY, "09:58", rising(6))  # bars 09:58 .. 10:03


@pytest.mark.parametrize(
    ("when", "bar"),
    [
        (dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), 2),  # 10:00 NY: that bar
        (
            dt.datetime(2024, 3, 4, 10, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            3,
        ),  # inside it: next
        (dt.datetime(2024, 3, 4, 15, 0), 2),  # naive times are UTC: 15:00 UTC is 10:00 New York
        (dt.datetime(2024, 3, 4, 16, 5), None),  # after the last bar: no flag
    ],
)
def test_external_signal_event_flags(when, bar, monkeypatch):
    mkt = b.market(_event_rows())
    # the machine's own time zone must not matter
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        flags = _event_flags(mkt.bars.ts, [when])
    finally:
        monkeypatch.undo()
        time.tzset()
    assert np.flatnonzero(flags).tolist() == ([] if bar is None else [bar])


NY_EST = dt.timezone(dt.timedelta(hours=-5))


def _kirkland_spec(entry: str) -> Any:
    events = [
        {"time": dt.datetime(2024, 3, 4, 10, 0, tzinfo=NY_EST), "side": "buy", "entry": 102.0, "stop": 99.0},
        {
            "time": dt.datetime(2024, 3, 4, 10, 2, tzinfo=NY_EST),
            "side": "sell",
            "entry": 103.0,
            "stop": 105.0,
        },
    ]
    return b.spec(
        entry={"long": entry},
        exits={"exit_long": "external_signal('kirkland', 'sell', 0)"},
        signals={"kirkland": events},
    )


@engines_for("stock")
def test_external_signal_event_drives_an_entry(engine):
    mkt = b.market(_event_rows())
    strategy = _kirkland_spec("external_signal('kirkland', 'buy', 0)")
    t = only(run(engine, strategy, mkt))
    # flagged on the 10:00 bar -> in at 10:01's open 101; sell on 10:02 -> out at 10:03's open 103
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"], t["pnl"]) == (3, 5, "signal", approx(2.0))


def test_external_signal_that_was_not_loaded_is_an_error():
    with pytest.raises(ValueError, match="missing"):
        _kirkland_spec("external_signal('missing', 'buy', 0)")  # the spec must hold every list it reads


# --------------------------------------------------------------------------- no lookahead


NO_LOOKAHEAD_SPEC = {
    "direction": "both",
    "entry": {
        "long": "crosses_above(ema(close, 5), sma(close, 20)) and rsi(close, 14) > 40 and close > vwap() - 0.5",
        "short": "crosses_below(ema(close, 5), sma(close, 20)) and (volume_ratio(10) > 0.5 or close < prior_day_low())",
        "window_start": "09:40",
    },
    "exits": {
        "stop_loss": {"atr": 3.0, "atr_period": 14},
        "take_profit": {"pct": 0.006},
        "trailing": {"pct": 0.002, "activation_pct": 0.002},
        "break_even": {"trigger_pct": 0.0015},
        "partial_take_profits": [{"pct": 0.003, "fraction": 0.5}],
        "max_hold_minutes": 45,
        "eod_flat_time": "15:55",
        "exit_long": "close < bb_lower(close, 20, 2) or close < opening_range_low('10:00')",
        "exit_short": "close > highest(high, 30)",
    },
    "sizing": {"mode": "pct_equity", "pct_equity": 0.5},
    "costs": {"commission_per_share": 0.005, "slippage_bps": 1},
}


# exits decided on a bar's close and filled at the next open: their existence is known at t
DECIDED_EXITS = ["signal", "reverse", "eod_flat", "time_exit"]


@pytest.mark.parametrize("seed", [1, 2])
def test_no_lookahead_bars_after_t_change_nothing_decided_before_t(seed):
    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    rows = b.random_minutes(np.random.default_rng(seed), days)
    strategy = b.spec(**NO_LOOKAHEAD_SPEC)
    base_market = b.market(rows)
    base = b.run(strategy, base_market)
    assert base.trades.height >= 20  # the spec must actually trade for the test to mean something
    for cut in (450, 700, 1000):  # bar k = t: every bar after it gets new random values
        changed = rows[: cut + 1] + b.random_minutes(np.random.default_rng(seed + 100), days)[cut + 1 :]
        moved_market = b.market(changed)
        moved = b.run(strategy, moved_market)

        # 1. every indicator and sub-expression the spec evaluated (the series' cache holds each node),
        #    and the engine's signal arrays, are unchanged up to and including bar t
        cache = base_market.bars.cache
        assert len(cache) > 20
        for key, values in cache.items():
            np.testing.assert_array_equal(
                moved_market.bars.cache[key][: cut + 1], values[: cut + 1], err_msg=f"cut {cut}: {key}"
            )
        sig_base, sig_moved = (
            fast.signal_arrays(strategy, base_market),
            fast.signal_arrays(strategy, moved_market),
        )
        for key, values in sig_base.items():
            np.testing.assert_array_equal(sig_moved[key][: cut + 1], values[: cut + 1], err_msg=key)

        # 2. trades closed by t are identical; entries filled by t identical; entries and decided
        #    exits filled at t + 1's open exist in both (their prices use the new open)
        def settled(res: Any, k: int = cut) -> pl.DataFrame:
            return res.trades.filter(pl.col("exit_bar") <= k)

        def entered(res: Any, k: int = cut) -> pl.DataFrame:
            return (
                res.trades.filter(pl.col("entry_bar") <= k)
                .select("entry_bar", "side", "instrument", "quantity", "entry_price")
                .unique(maintain_order=True)
            )

        def decided(res: Any, k: int = cut) -> tuple[list[Any], list[Any]]:
            entries = res.trades.filter(pl.col("entry_bar") == k + 1).select("side").unique().to_series()
            exits = res.trades.filter(
                (pl.col("exit_bar") == k + 1) & pl.col("exit_reason").is_in(DECIDED_EXITS)
            )
            return entries.to_list(), exits.select("entry_bar", "exit_reason").unique().sort(
                "entry_bar"
            ).rows()

        assert settled(base).height >= 3
        assert settled(moved).equals(settled(base)), f"cut {cut}: a trade closed by bar {cut} changed"
        assert entered(moved).equals(entered(base)), f"cut {cut}: an entry by bar {cut} changed"
        assert decided(moved) == decided(base), f"cut {cut}: a decision on bar {cut} changed"
        np.testing.assert_array_equal(moved.bar_equity[: cut + 1], base.bar_equity[: cut + 1])
        assert not np.array_equal(moved.bar_equity, base.bar_equity)  # the change did reach the engine
