"""The deployments' one order path: the generic Lumibot broker over each adapter (Tradier, TradeLocker), a
Lumibot strategy submitting through it, against the fake servers on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from lumibot.entities import Asset
from lumibot.strategies import Strategy

from brokers import RiskGuard, RiskLimitBreached, RiskLimits
from brokers.lumibot_broker import AdapterBroker
from brokers.lumibot_tradelocker import TradeLockerBroker
from brokers.lumibot_tradier import TradierBroker

BrokerHarness = Any  # conftest.py's harness: the fake server and adapters pointed at it
pytestmark = pytest.mark.parametrize("broker", ["tradier", "tradelocker"], indirect=True)


class _Holder(Strategy):
    """A Lumibot strategy that only submits what the test asks for (its broker is what is tested)."""

    def initialize(self) -> None:
        self.sleeptime = "1D"

    def on_trading_iteration(self) -> None:
        return None


def _lumibot(harness: BrokerHarness, **options: Any) -> AdapterBroker:
    adapter = harness.make_adapter(**options.pop("adapter", {}))
    if harness.name == "tradier":
        return TradierBroker(adapter, polling_interval=0.1, market="24/7", **options)
    return TradeLockerBroker(adapter, polling_interval=0.1, market="24/7", **options)


@pytest.fixture
def lumi(broker: BrokerHarness) -> Iterator[tuple[AdapterBroker, Strategy, BrokerHarness]]:
    glue = _lumibot(broker)
    strategy = _Holder(broker=glue, name="holder")
    try:
        yield glue, strategy, broker
    finally:
        glue.close()


def _asset(harness: BrokerHarness) -> Asset:
    return Asset(harness.symbol, asset_type="forex" if harness.name == "tradelocker" else "stock")


def _wait(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached within the timeout")


@pytest.mark.parametrize("fault", ["5xx", "timeout"])
def test_an_uncertain_submit_through_the_lumibot_broker_makes_one_order(
    lumi: tuple[AdapterBroker, Strategy, BrokerHarness], fault: str
) -> None:
    """The fake records the order, then answers 502 or stalls past the client's timeout: the adapter finds
    the order by its client id instead of sending it again, and Lumibot tracks the broker's order."""
    glue, strategy, harness = lumi
    if fault == "5xx":
        harness.fake.inject("POST", harness.submit_path, when="after", status=502)
    else:
        harness.fake.inject(
            "POST", harness.submit_path, when="after", status=None, delay=harness.slow_submit_delay
        )
    order = strategy.submit_order(strategy.create_order(_asset(harness), harness.quantity, "buy"))
    assert harness.fake.order_count() == 1
    assert len(harness.fake.requests_to("POST", harness.submit_path)) == 1  # never re-sent
    found = harness.adapter.list_orders()
    assert [o.order_id for o in found if o.client_order_id] == [order.identifier]
    assert _wait(lambda: (o := glue.get_tracked_order(order.identifier)) is not None and o.is_filled())


def test_the_adapters_risk_guard_refuses_before_the_broker_and_reports_the_breach(
    broker: BrokerHarness,
) -> None:
    breaches: list[RiskLimitBreached] = []
    guard = RiskGuard(RiskLimits(max_position_size=broker.quantity / 2))
    glue = _lumibot(broker, adapter={"risk_guard": guard}, on_risk_breach=breaches.append)
    strategy = _Holder(broker=glue, name="holder")
    try:
        order = strategy.submit_order(strategy.create_order(_asset(broker), broker.quantity, "buy"))
        assert _wait(lambda: order.status == "error")
        assert "exceeds limit" in (order.error_message or "")
        assert [b.limit for b in breaches] == ["max_position_size"]
        assert broker.fake.order_count() == 0 and guard.orders_today == 0
    finally:
        glue.close()


def test_an_oco_order_is_one_protection_moved_in_place(
    lumi: tuple[AdapterBroker, Strategy, BrokerHarness],
) -> None:
    glue, strategy, harness = lumi
    asset = _asset(harness)
    entry = strategy.submit_order(strategy.create_order(asset, harness.quantity, "buy"))
    _wait(lambda: (o := glue.get_tracked_order(entry.identifier)) is not None and o.is_filled())
    stop, target = harness.stop_loss, harness.take_profit
    exits = strategy.create_order(
        asset,
        harness.quantity,
        "sell",
        order_class="oco",
        stop_price=stop,
        limit_price=target,
        time_in_force="gtc",
    )
    held = strategy.submit_order(exits)
    assert glue.is_protection(held)
    (protection,) = harness.adapter.list_protections()
    assert protection.protection_id == held.identifier
    assert (protection.stop_loss, protection.take_profit) == (stop, target)
    strategy.modify_order(held, stop_price=round(stop * 1.001, 5))
    (moved,) = harness.adapter.list_protections()
    assert moved.protection_id == held.identifier and moved.stop_loss == pytest.approx(stop * 1.001)
    assert harness.fake.order_count() == (2 if harness.name == "tradier" else 1)  # entry (+ the OCO)
    assert [o.identifier for o in glue.held_protections()] == [held.identifier]
