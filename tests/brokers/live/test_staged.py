"""A staged conversion (``instrument.staged``) traded live against the fake Tradier: the long call first,
then the call ``width`` higher sold at the next open once the underlying's move triggers it, then the
spread closed as one multi-leg order. Decisions are driven bar by bar with the strategy's clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from brokers.live import live_problem, live_strategy
from spec_space.models import StrategySpec
from tests.evaluator.test_spec_strategy_live import _decide_on, _minute_bars, _posts, _wait, _working


def _staged_spec(**staged: Any) -> StrategySpec:
    return StrategySpec.model_validate(
        {
            "name": "staged_live",
            "timeframe": "1min",
            "instrument": {
                "type": "option",
                "symbol": "SPY",
                "legs": [{"right": "call", "side": "buy", "dte": 3, "select": "offset", "value": 0.0}],
                "staged": {"width": 5.0, "min_net_debit": 0.01, **staged},
            },
            "entry": {"long": "close > 0"},
            "exits": {"max_hold_minutes": 3},
            "sizing": {"mode": "fixed", "quantity": 2, "max_trades_per_day": 1},
            "costs": {"option_half_spread": 0.02},
        }
    )


def _driver(strategy: Any, frame: pd.DataFrame, clock: list[int]) -> Callable[[str], None]:
    def decide(minute: str) -> None:
        """Decide on the bar starting at ``minute`` (its close), at the next bar's open, once the orders
        already out have reached the strategy."""
        _wait(lambda: _settled(strategy), "the strategy to see its orders' fills")
        _decide_on(strategy, frame, clock, f"2026-11-30 {minute}")

    return decide


def _settled(strategy: Any) -> bool:
    with strategy.live_lock:
        strategy._live_sync()
        return not strategy._live_busy() and not strategy.entry_pending


def test_staged_spread_buys_the_call_then_sells_the_higher_one_on_the_move_then_closes_both(
    tradier: tuple[Any, Callable[[], Any]],
) -> None:
    fake, make_broker = tradier
    fake.expirations["SPY"] = ["2026-12-01", "2026-12-04", "2026-12-11"]
    spec = _staged_spec(underlying_move_pct=0.005)
    assert live_problem(spec, "tradier") is None  # staged conversions are no longer refused live
    frame = _minute_bars("2026-11-30 10:00", [590.0, 593.8, 593.8, 593.9, 594.0, 594.0], 0.2)
    clock = [0]
    strategy = live_strategy(make_broker(), spec, name="live-staged", clock=lambda: clock[0], fill_wait=10.0)
    strategy.broker.data_source._delay = None
    decide = _driver(strategy, frame, clock)
    long_leg = fake.occ("SPY", "2026-12-04", "C", 590)  # the first expiry 3+ days out, at the money
    short_leg = fake.occ("SPY", "2026-12-04", "C", 595)  # 590 + width

    decide("10:00")  # the long leg alone: 2 calls at the ask (1.62 + 0.05)
    _wait(lambda: fake.positions.get(long_leg, {}).get("quantity") == 2, "the long call")
    assert short_leg not in fake.positions
    fake.set_quote("SPY", 593.70, 593.72)  # +0.61% since the entry (590.12): past the 0.5% trigger
    decide("10:01")  # the trigger on this close; the 595 call is sold at the next open, now
    _wait(lambda: fake.positions.get(short_leg, {}).get("quantity") == -2, "the conversion's sale")
    _wait(lambda: _settled(strategy), "the conversion's fill")
    assert strategy.converted and strategy.pos_n == 2
    # the debit left, from the broker's fills: 1.67 paid, 1.48 received (the 595 call's bid)
    assert strategy.v_entry == pytest.approx(167.0 - 148.0)
    sale = _posts(fake)[1]
    assert (sale["class"], sale["option_symbol"], sale["side"], float(sale["quantity"])) == (
        "option",
        short_leg,
        "sell_to_open",
        2,
    )
    decide("10:02")  # converted once: nothing more is sold
    assert len(_posts(fake)) == 2
    decide("10:03")  # the next open is 3 minutes after the entry's: the spread closes as one order
    _wait(lambda: not fake.positions and not _working(fake), "the spread's time exit")
    exit_ = _posts(fake)[2]
    assert exit_["class"] == "multileg"
    assert {exit_["option_symbol[0]"]: exit_["side[0]"], exit_["option_symbol[1]"]: exit_["side[1]"]} == {
        long_leg: "sell_to_close",
        short_leg: "buy_to_close",
    }


def test_a_conversion_that_would_leave_too_small_a_debit_keeps_the_long_leg(
    tradier: tuple[Any, Callable[[], Any]],
) -> None:
    fake, make_broker = tradier
    fake.expirations["SPY"] = ["2026-12-01", "2026-12-04", "2026-12-11"]
    # a debit of at least 0.50 a share must be left; selling the 595 call at ~1.51 leaves 0.16
    spec = _staged_spec(underlying_move_pct=0.005, min_net_debit=0.5)
    frame = _minute_bars("2026-11-30 10:00", [590.0, 593.8, 593.9, 594.0], 0.2)
    clock = [0]
    strategy = live_strategy(
        make_broker(), spec, name="live-staged-2", clock=lambda: clock[0], fill_wait=10.0
    )
    strategy.broker.data_source._delay = None
    decide = _driver(strategy, frame, clock)
    decide("10:00")
    _wait(lambda: len(fake.positions) == 1, "the long call")
    fake.set_quote("SPY", 593.70, 593.72)
    decide("10:01")
    decide("10:02")
    assert strategy.converted and strategy.pos_n == 1  # kept, and never checked again
    assert len(_posts(fake)) == 1 and len(fake.positions) == 1
