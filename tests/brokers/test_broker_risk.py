"""RiskLimits / RiskGuard: pure checks, plus the guard attached to a real adapter."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from brokers import OrderRequest, Position, RiskGuard, RiskLimitBreached, RiskLimits

Harness = Any


class _Clock:
    def __init__(self) -> None:
        self.day = date(2025, 11, 14)

    def __call__(self) -> date:
        return self.day


def _pos(symbol: str, qty: float) -> Position:
    return Position(symbol=symbol, quantity=qty, asset_class="equity")  # type: ignore[arg-type]


def test_limits_model_validation() -> None:
    with pytest.raises(ValidationError, match="sets no limit"):
        RiskLimits()
    with pytest.raises(ValidationError):
        RiskLimits(daily_loss_limit=-5)
    with pytest.raises(ValidationError):
        RiskLimits(max_orders_per_day=3, unknown=1)  # type: ignore[call-arg]
    limits = RiskLimits.model_validate({"daily_loss_limit": 1000, "max_position_size": 100})
    assert limits.max_orders_per_day is None


def test_daily_loss_message_and_halt_until_next_day() -> None:
    clock = _Clock()
    guard = RiskGuard(RiskLimits(daily_loss_limit=1000), today=clock)
    assert guard.evaluate_pnl(realized_today=-600, unrealized=-400) is None  # exactly at the limit
    breach = guard.evaluate_pnl(realized_today=-900, unrealized=-350)
    assert breach is not None
    assert breach.reason == "daily loss 1,250.00 exceeds limit 1,000.00"
    assert (breach.limit, breach.value, breach.threshold) == ("daily_loss_limit", 1250.0, 1000.0)
    with pytest.raises(RiskLimitBreached, match="daily loss 1,250.00 exceeds limit 1,000.00"):
        guard.check_pnl(-1250)

    # Halted: new risk refused, reducing risk allowed.
    positions = [_pos("SPY", 10)]
    with pytest.raises(RiskLimitBreached, match="trading halted for 2025-11-14: daily loss 1,250.00"):
        guard.check_order(OrderRequest.single("SPY", "buy", 1), positions)
    guard.check_order(OrderRequest.single("SPY", "sell", 10), positions)

    clock.day = date(2025, 11, 17)
    assert guard.halted is None
    guard.check_order(OrderRequest.single("SPY", "buy", 1), positions)


def test_profit_is_not_a_loss() -> None:
    guard = RiskGuard(RiskLimits(daily_loss_limit=100))
    assert guard.evaluate_pnl(realized_today=5_000, unrealized=-4_950) is None


def test_position_size_limit_counts_existing_position_and_allows_reducing() -> None:
    guard = RiskGuard(RiskLimits(max_position_size=100))
    positions = [_pos("SPY", 80)]
    guard.check_order(OrderRequest.single("SPY", "buy", 20), positions)
    with pytest.raises(
        RiskLimitBreached, match="position in SPY would be 130, exceeds limit 100 \\(now 80\\)"
    ):
        guard.check_order(OrderRequest.single("SPY", "buy", 50), positions)
    # Selling through zero to a short larger than the limit is refused, shrinking is allowed.
    with pytest.raises(RiskLimitBreached, match="would be -120"):
        guard.check_order(OrderRequest.single("SPY", "sell", 200), positions)
    guard.check_order(OrderRequest.single("SPY", "sell", 80), positions)
    # Already over the limit (e.g. limit lowered): reducing still passes.
    guard.check_order(OrderRequest.single("SPY", "sell", 10), [_pos("SPY", 150)])


def test_max_orders_per_day() -> None:
    clock = _Clock()
    guard = RiskGuard(RiskLimits(max_orders_per_day=2), today=clock)
    for _ in range(2):
        request = OrderRequest.single("EURUSD", "buy", 10_000, asset_class="forex")
        guard.check_order(request, [])
        guard.record_submission(request)
    breach = guard.evaluate_order(OrderRequest.single("EURUSD", "buy", 10_000, asset_class="forex"), [])
    assert breach is not None and breach.reason == "orders today 2 reached limit 2"
    clock.day = date(2025, 11, 15)
    assert guard.orders_today == 0


def test_guard_on_an_adapter_blocks_before_anything_is_sent(tradier: Harness) -> None:
    guard = RiskGuard(RiskLimits(max_position_size=15, max_orders_per_day=5))
    with tradier.make_adapter(risk_guard=guard) as adapter:
        adapter.place_order(OrderRequest.single("SPY", "buy", 10, intent="risk-1"))
        assert guard.orders_today == 1
        with pytest.raises(RiskLimitBreached, match="would be 20, exceeds limit 15"):
            adapter.place_order(OrderRequest.single("SPY", "buy", 10, intent="risk-2"))
        assert tradier.fake.order_count() == 1
        assert guard.orders_today == 1
        guard.check_balance(adapter.get_balances())  # a spread-sized loss is far from any limit
