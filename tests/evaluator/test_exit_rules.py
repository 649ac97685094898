"""Trade accounting and exit-order rules (fill model rules 4, 8, 10, 14), one body per engine.

Every case runs on both engines of :data:`evaluator.engines.ENGINES` (the way optuna runs one test body
over every sampler) on a tiny hand-made market whose answer is worked out in the comments. The Lumibot
engine runs ~1,800 bars/s, so each market is a few minute bars.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from evaluator.engines import ENGINES, get_engine
from evaluator.market import Market
from evaluator.metrics import PROFIT_FACTOR_CAP, compute_metrics
from evaluator.results import BacktestResult, position_pnls
from spec_space.models import StrategySpec
from tests.evaluator import builders as b
from tests.evaluator.builders import Contract

DAY = "2024-03-04"  # a Monday
EXP = dt.date(2024, 3, 4)
approx = pytest.approx
engines = pytest.mark.parametrize("engine", sorted(ENGINES))


def run(engine: str, strategy: StrategySpec, mkt: Market) -> BacktestResult:
    dates = mkt.bars.session_dates
    return get_engine(engine)(strategy, mkt, dates[0], dates[-1])


def rows_of(result: BacktestResult) -> list[tuple[Any, ...]]:
    """(trade_id, exit_bar, quantity, exit_price, exit_reason, stale) per exit row."""
    return [
        (t["trade_id"], t["exit_bar"], t["quantity"], approx(t["exit_price"]), t["exit_reason"], t["stale"])
        for t in result.trades.to_dicts()
    ]


def occ(strike: float, right: str = "C", expiry: dt.date = EXP) -> str:
    return f"O:SPY{expiry:%y%m%d}{right}{int(strike * 1000):08d}"


def option_spec(**fields: Any) -> StrategySpec:
    base: dict[str, Any] = {
        "instrument": {
            "type": "option",
            "symbol": "SPY",
            "legs": [{"right": "call", "select": "delta", "value": 0.5}],
        },
        "costs": {"option_half_spread": 0.02, "commission_per_contract": 0.65},
        "sizing": {"quantity": 1},
    }
    return b.spec(**b.merge(base, fields))


# --------------------------------------------------------------------------- a trade is a round trip


@engines
@pytest.mark.parametrize(
    ("fraction", "total"),
    [
        # half (5) at +10 % = +50, the other 5 stopped at -5 % = -25: one trade, won by +25
        (0.5, 5 * 10.0 - 5 * 5.0),
        # 2 at +10 % = +20, 8 stopped = -40: a winning row, but the trade lost 20
        (0.2, 2 * 10.0 - 8 * 5.0),
    ],
)
def test_partial_then_stop_is_one_trade_won_or_lost_by_its_sum(
    engine: str, fraction: float, total: float
) -> None:
    rows = b.minutes(
        DAY,
        "09:30",
        [
            (100, 100.2, 99.8, 100),  # 0: the signal
            (100, 100.5, 99.5, 100),  # 1: in at 100; stop 95, partial 110
            (100.5, 110.5, 100, 110),  # 2: reaches 110: the partial
            (106, 106, 94, 95),  # 3: down through 95: the stop, at the level
            (95, 95, 95, 95),
        ],
    )
    strategy = b.spec(
        entry={"long": b.at(rows, 0)},
        exits={"stop_loss": {"pct": 0.05}, "partial_take_profits": [{"pct": 0.10, "fraction": fraction}]},
        costs={"commission_per_share": 0.01},
        sizing={"mode": "fixed", "quantity": 10},
    )
    result = run(engine, strategy, b.market(rows))
    part = 10 * fraction
    assert rows_of(result) == [
        (0, 2, part, approx(110.0), "partial_take_profit", False),
        (0, 3, 10 - part, approx(95.0), "stop_loss", False),
    ]
    net = total - 0.2  # 10 shares in and 10 out at a cent a share
    assert result.trades.get_column("pnl").sum() == approx(net)
    m = result.metrics
    assert m["n_trades"] == 1.0
    assert m["win_rate"] == (1.0 if net > 0 else 0.0)
    assert m["avg_trade"] == approx(net)
    assert m["profit_factor"] == (PROFIT_FACTOR_CAP if net > 0 else 0.0)


def test_position_pnls_group_rows_by_fold_and_trade_id() -> None:
    trades = pl.DataFrame({"fold": [0, 0, 0, 1], "trade_id": [0, 0, 1, 0], "pnl": [50.0, -25.0, -3.0, 7.0]})
    assert position_pnls(trades).tolist() == [25.0, -3.0, 7.0]
    assert position_pnls(trades.drop("fold")).tolist() == [32.0, -3.0]  # one window: ids are unique
    with pytest.raises(ValueError, match="trade_id"):
        position_pnls(trades.drop("trade_id"))


# --------------------------------------------------------------------------- exits in price order

TARGET_BARS = [
    (100, 100.2, 99.8, 100),  # 0: the signal
    (100, 100.3, 99.7, 100),  # 1: in at 100, touching nothing
]


@engines
@pytest.mark.parametrize(
    ("bar2", "partial_pct", "expected"),
    [
        # the case: target +1 (101), partial +3 % (103) for half; a bar to 104 passes 101 first,
        # so the target sells all 100 at 101 and the partial never fills (it used to sell 50 at 103)
        ((100.2, 104, 100, 103.5), 0.03, [(0, 2, 100.0, approx(101.0), "take_profit", False)]),
        # the same gapping open 105: everything at the open, in one exit
        ((105, 105.5, 104.5, 105), 0.03, [(0, 2, 100.0, approx(105.0), "take_profit", False)]),
        # partial +0.5 % (100.5) before the target: both reached by 104, the nearer first
        (
            (100.2, 104, 100, 103.5),
            0.005,
            [
                (0, 2, 50.0, approx(100.5), "partial_take_profit", False),
                (0, 2, 50.0, approx(101.0), "take_profit", False),
            ],
        ),
        # a gap through both levels fills both at the open
        (
            (105, 105.5, 104.5, 105),
            0.005,
            [
                (0, 2, 50.0, approx(105.0), "partial_take_profit", False),
                (0, 2, 50.0, approx(105.0), "take_profit", False),
            ],
        ),
        # stop (98) and partial both touched: the stop first, everything (pessimistic, rule 4)
        ((100, 101, 97.5, 99), 0.005, [(0, 2, 100.0, approx(98.0), "stop_loss", False)]),
    ],
)
def test_exits_fill_in_the_order_price_reaches_them(
    engine: str, bar2: tuple[float, ...], partial_pct: float, expected: list[tuple[Any, ...]]
) -> None:
    rows = b.minutes(DAY, "09:30", [*TARGET_BARS, bar2, (100, 100, 100, 100)])
    strategy = b.spec(
        entry={"long": b.at(rows, 0)},
        exits={
            "stop_loss": {"pct": 0.02},
            "take_profit": {"points": 1.0},  # a price distance: the spec model cannot compare it with a pct
            "partial_take_profits": [{"pct": partial_pct, "fraction": 0.5}],
        },
        sizing={"mode": "fixed", "quantity": 100},
    )
    result = run(engine, strategy, b.market(rows))
    assert rows_of(result) == expected
    assert result.metrics["n_trades"] == 1.0


@engines
def test_a_trailing_stop_touched_with_a_partial_fills_first(engine: str) -> None:
    rows = b.minutes(
        DAY,
        "09:30",
        [*TARGET_BARS, (100, 101, 98, 99), (100, 100, 100, 100)],
    )
    strategy = b.spec(
        entry={"long": b.at(rows, 0)},
        exits={"trailing": {"pct": 0.02}, "partial_take_profits": [{"pct": 0.005, "fraction": 0.5}]},
        sizing={"mode": "fixed", "quantity": 100},
    )
    result = run(engine, strategy, b.market(rows))
    # best so far is bar 1's high 100.3, so the trail is 100.3 * 0.98 = 98.294; bar 2 touches it and the
    # 100.5 partial: a minute bar does not say which came first, so the stop, for everything (rule 4)
    assert rows_of(result) == [(0, 2, 100.0, approx(100.3 * 0.98), "trailing_stop", False)]


def test_a_partial_beyond_the_final_target_is_refused_by_the_spec_model() -> None:
    exits = {"take_profit": {"pct": 0.01}, "partial_take_profits": [{"pct": 0.03, "fraction": 0.5}]}
    with pytest.raises(ValidationError) as info:
        b.spec(entry={"long": "close > 0"}, exits=exits)
    text = str(info.value)
    assert "partial_take_profits[0].pct" in text and "take_profit.pct" in text
    assert "lower the partial" in text  # says how to fix it
    # at the target is allowed (both reached at once; the partial fills first, then the rest)
    b.spec(
        entry={"long": "close > 0"}, exits={**exits, "partial_take_profits": [{"pct": 0.01, "fraction": 0.5}]}
    )


# --------------------------------------------------------------------------- time exits always close


@engines
@pytest.mark.parametrize(
    ("exits", "reason"),
    [({"max_hold_minutes": 3}, "time_exit"), ({"eod_flat_time": "09:35"}, "eod_flat")],
)
def test_time_exit_of_a_quiet_leg_closes_at_its_last_price_marked_stale(
    engine: str, exits: dict[str, Any], reason: str
) -> None:
    # the call trades at bars 0-2 and again only at bar 7; staleness 2 minutes
    c100 = Contract(occ(100), EXP, 100.0, "C", {k: (0.55,) * 4 for k in (0, 1)})
    c100.bars.update({2: (0.60,) * 4, 7: (0.80,) * 4})
    rows = b.flat(DAY, "09:30", [100.0] * 9)
    strategy = option_spec(
        entry={"long": b.at(rows, 1)}, instrument={"max_staleness_minutes": 2}, exits=exits
    )
    result = run(engine, strategy, b.option_market(rows, [c100]))
    # in at bar 2's open 0.60 + 0.02; both exits are due at bar 5 (09:35, 3 minutes held), whose last
    # trade (bar 2) is 3 minutes old: out at that last price 0.60 - 0.02, not carried to bar 7
    (t,) = result.trades.to_dicts()
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"], t["stale"]) == (2, 5, reason, True)
    assert (t["entry_price"], t["exit_price"]) == approx((0.62, 0.58))
    assert t["pnl"] == approx(100 * (0.58 - 0.62) - 1.3)


@engines
def test_a_quiet_0dte_leg_settles_at_intrinsic_value_at_expiry_marked_stale(engine: str) -> None:
    c100 = Contract(occ(100), EXP, 100.0, "C", {k: (1.50,) * 4 for k in (0, 1, 2)})
    rows = b.flat(DAY, "09:30", [101.0] * 6)
    strategy = option_spec(entry={"long": b.at(rows, 1)}, instrument={"max_staleness_minutes": 2})
    result = run(engine, strategy, b.option_market(rows, [c100]))
    # in at bar 2 (1.52); the last bar (5) finds the last trade 3 minutes old: the expiring call settles
    # at its intrinsic value against the 101 close, 1.00, less the half spread: 0.98, marked stale
    (t,) = result.trades.to_dicts()
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"], t["stale"]) == (2, 5, "expiry", True)
    assert (t["entry_price"], t["exit_price"]) == approx((1.52, 0.98))


@engines
def test_a_spread_with_a_quiet_leg_is_not_carried_overnight(engine: str) -> None:
    tue = dt.date(2024, 3, 5)
    rows = b.flat(DAY, "09:30", [100.0] * 7) + b.flat(str(tue), "09:30", [100.0] * 3)
    long_call = Contract(occ(100, expiry=tue), tue, 100.0, "C", {k: (1.50,) * 4 for k in range(10)})
    # the short leg trades until bar 2, then not again that day
    short_call = Contract(occ(101, expiry=tue), tue, 101.0, "C", {k: (1.00,) * 4 for k in (0, 1, 2, 7, 8, 9)})
    strategy = option_spec(
        entry={"long": b.at(rows, 1)},
        instrument={
            "max_staleness_minutes": 2,
            "legs": [
                {"right": "call", "dte": 1, "select": "delta", "value": 0.5},
                {"right": "call", "side": "sell", "dte": 1, "select": "offset", "value": 1.0},
            ],
        },
        exits={"eod_flat_time": "09:35"},
    )
    result = run(engine, strategy, b.option_market(rows, [long_call, short_call]))
    # in at bar 2: 1.50 + 0.02 paid, 1.00 - 0.02 received = 0.54 a share; the flat at bar 5 (09:35) finds
    # the short leg's last trade 3 minutes old: both legs close there, the short at its last 1.00:
    # 1.50 - 0.02 - (1.00 + 0.02) = 0.46, marked stale; nothing reaches Tuesday
    (t,) = result.trades.to_dicts()
    assert (t["entry_bar"], t["exit_bar"], t["exit_reason"], t["stale"]) == (2, 5, "eod_flat", True)
    assert (t["entry_price"], t["exit_price"]) == approx((0.54, 0.46))
    assert t["pnl"] == approx(100 * (0.46 - 0.54) - 2 * 1.3)


@engines
@pytest.mark.parametrize(
    ("days_before", "exit_bar", "price", "reason"),
    [
        # sessions, not calendar days: expiry Monday; on Friday one session is left, so 1 closes Friday
        # at the first bar after the entry (bar 3, 1.40 - 0.02); the calendar count (3 days) never did
        (1, 3, 1.38, "before_expiry"),
        # 0 means the expiry session: out at Monday's first open 1.20 - 0.02
        (0, 4, 1.18, "before_expiry"),
        # no rule: held to the expiry session's last bar mark 0.90 - 0.02
        (None, 6, 0.88, "expiry"),
    ],
)
def test_close_days_before_expiry_counts_sessions(
    engine: str, days_before: int | None, exit_bar: int, price: float, reason: str
) -> None:
    fri, mon = dt.date(2024, 3, 8), dt.date(2024, 3, 11)
    rows = b.flat(str(fri), "09:30", [100.0] * 4) + b.flat(str(mon), "09:30", [100.0] * 3)
    c = Contract(occ(100, expiry=mon), mon, 100.0, "C", {k: (1.50,) * 4 for k in (0, 1, 2)})
    c.bars.update({3: (1.40,) * 4, 4: (1.20,) * 4, 5: (1.00,) * 4, 6: (0.90,) * 4})
    strategy = option_spec(
        entry={"long": b.at(rows, 1)},
        instrument={"legs": [{"right": "call", "dte": 1, "select": "delta", "value": 0.5}]},
        exits={"close_days_before_expiry": days_before},
    )
    result = run(engine, strategy, b.option_market(rows, [c]))
    (t,) = result.trades.to_dicts()
    assert (t["entry_bar"], t["entry_price"]) == (2, approx(1.52))
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"], t["stale"]) == (
        exit_bar,
        reason,
        approx(price),
        False,
    )


# --------------------------------------------------------------------------- drawdown marked every bar


@engines
def test_max_drawdown_comes_from_equity_marked_every_bar(engine: str) -> None:
    rows = b.minutes(
        DAY,
        "09:30",
        [
            (100, 100, 100, 100),  # 0: the signal
            (100, 100, 100, 100),  # 1: in, 1,000 shares at 100
            (100, 100, 90, 90),  # 2: marked at 90: 10,000 below the 100,000 start
            (90, 100, 90, 100),
            (100, 101, 100, 101),  # 4: out at the close 101: the day ends up 1,000
        ],
    )
    strategy = b.spec(entry={"long": b.at(rows, 0)}, sizing={"mode": "fixed", "quantity": 1000})
    result = run(engine, strategy, b.market(rows))
    assert result.daily.get_column("equity").to_list() == [approx(101_000.0)]
    assert result.metrics["max_drawdown"] == approx(0.1)  # the daily close alone shows none


def test_compute_metrics_reads_the_bar_marks_for_the_drawdown() -> None:
    days = np.array(["2024-03-04", "2024-03-05"], dtype="datetime64[D]")
    daily = np.array([100.0, 110.0])
    bars = np.array([100.0, 80.0, 100.0, 120.0, 110.0])
    common = {"initial_cash": 100.0, "exposure": 1.0}
    assert compute_metrics(daily, days, np.array([10.0]), **common)["max_drawdown"] == 0.0
    with_bars = compute_metrics(daily, days, np.array([10.0]), bar_equity=bars, **common)
    assert with_bars["max_drawdown"] == approx(0.2)  # 100 -> 80 inside day one
    with pytest.raises(ValueError, match="bar_equity"):
        compute_metrics(daily, days, np.array([10.0]), bar_equity=np.array([np.nan]), **common)


# --------------------------------------------------------------------------- spec times are session times

TUE = "2024-03-05"


def _quiet(n: int, price: float) -> list[tuple[float, float, float, float]]:
    return [(price, price, price, price)] * n


def _flat_before_the_roll() -> tuple[list[b.Row], str, dict[str, Any]]:
    """Forex, flat at 16:55: bars 16:50-17:05, the day rolling at 17:00. A 16:50 entry is closed at 16:55;
    after the roll the new session trades (clock minutes would call 17:02 'after 16:55' and refuse it)."""
    rows = b.minutes(TUE, "16:50", _quiet(16, 1.085))
    return rows, "forex", {"long": b.at(rows, 0, 12), "exits": {"eod_flat_time": "16:55"}}


def _flat_before_the_globex_break() -> tuple[list[b.Row], str, dict[str, Any]]:
    """MES, flat at 16:55 before the 17:00-18:00 break; the 18:00 reopen starts the next trade date."""
    rows = b.minutes(TUE, "16:50", _quiet(10, 5000.0)) + b.minutes(TUE, "18:00", _quiet(6, 5000.0))
    return rows, "future", {"long": b.at(rows, 0, 11), "exits": {"eod_flat_time": "16:55"}}


def _asian_evening_window() -> tuple[list[b.Row], str, dict[str, Any]]:
    """Forex, entries 20:00-02:00: one window across midnight inside Wednesday's session (which opened
    Tuesday 17:00). 19:58 is before it; 01:59 inside it (filled at 02:00), 02:01 after it."""
    rows = b.minutes(TUE, "19:58", _quiet(4, 1.085)) + b.minutes("2024-03-06", "01:58", _quiet(5, 1.085))
    window = {"window_start": "20:00", "window_end": "02:00"}
    return rows, "forex", {"long": b.at(rows, 0, 2, 5, 7), "entry": window, "exits": {"exit_long": b.at(rows, 3)}}


@engines
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (_flat_before_the_roll, [(1, 5, "eod_flat"), (13, 15, "eod_flat")]),  # 17:05: the last bar is flat too
        (_flat_before_the_globex_break, [(1, 5, "eod_flat"), (12, 15, "eod_flat")]),
        (_asian_evening_window, [(3, 4, "signal"), (6, 8, "end_of_data")]),
    ],
    ids=["forex-flat-1655-before-the-roll", "mes-flat-1655-before-the-break", "forex-window-2000-0200"],
)
def test_entry_window_and_flat_time_are_times_of_the_trading_session(
    engine: str, case: Any, expected: list[tuple[int, int, str]]
) -> None:
    rows, kind, fields = case()
    symbol = {"forex": "C:EURUSD", "future": "MES"}[kind]
    strategy = b.spec(
        instrument={"type": kind, "symbol": symbol.removeprefix("C:")},
        entry={"long": fields["long"], **fields.get("entry", {})},
        exits=fields["exits"],
        sizing={"mode": "fixed", "quantity": 1},
    )
    result = run(engine, strategy, b.market(rows, symbol=symbol, kind=kind))
    assert [(t["entry_bar"], t["exit_bar"], t["exit_reason"]) for t in b.trades(result)] == expected


@pytest.mark.parametrize(
    ("kind", "symbol", "window"),
    [("forex", "EURUSD", ("16:00", "18:00")), ("future", "MES", ("19:00", "18:30")), ("stock", "SPY", ("15:00", "10:00"))],
)
def test_an_entry_window_empty_within_one_session_is_refused(kind: str, symbol: str, window: tuple[str, str]) -> None:
    # forex 16:00-18:00 crosses the 17:00 roll (18:00 is the next session's evening): no session holds it
    with pytest.raises(ValidationError, match="window_end must come after window_start within one session"):
        b.spec(
            instrument={"type": kind, "symbol": symbol},
            entry={"long": "close > 0", "window_start": window[0], "window_end": window[1]},
        )


@engines
def test_a_forex_stop_held_over_the_weekend_fills_at_the_sunday_open_gap(engine: str) -> None:
    """Friday's position keeps its 30-pip stop (1.0820) over the weekend; the week opens Sunday 17:00 at
    1.0800, through the stop: filled at that open (rule 4's gap), not at the level."""
    friday = b.minutes("2024-03-08", "16:50", _quiet(10, 1.085))
    sunday = b.minutes("2024-03-10", "17:00", [(1.0800, 1.0805, 1.0795, 1.0802), *_quiet(3, 1.0802)])
    rows = friday + sunday
    strategy = b.spec(
        instrument={"type": "forex", "symbol": "EURUSD"},
        entry={"long": b.at(rows, 0)},
        exits={"stop_loss": {"pips": 30}},
        sizing={"mode": "fixed", "quantity": 1},
    )
    (trade,) = b.trades(run(engine, strategy, b.market(rows, symbol="C:EURUSD", kind="forex")))
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (1, 10, "stop_loss")
    assert trade["exit_price"] == approx(1.0800)
    assert trade["pnl"] == approx(100_000 * (1.0800 - 1.0850))
