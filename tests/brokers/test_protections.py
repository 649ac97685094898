"""Exits held at the broker (``BrokerAdapter.protect_position``) against the fake servers: one Tradier OCO
order, a TradeLocker position's own stop-loss and take-profit; moved in place, one level filling cancels the
other, and an uncertain submit never leaves two."""

from __future__ import annotations

from typing import Any

import pytest

from brokers import InvalidOrderError, NotSupportedError, OrderRequest, OrderState, Side

BrokerHarness = Any  # conftest.py's harness: the fake server and adapters pointed at it


def _tradier_oco(fake: Any) -> list[dict[str, Any]]:
    with fake.lock:
        return [o for o in fake.orders.values() if o["class"] == "oco"]


def test_tradier_holds_stop_and_target_as_one_oco_and_moves_the_stop_in_place(tradier: BrokerHarness) -> None:
    adapter, fake = tradier.adapter, tradier.fake
    adapter.place_order(OrderRequest.single("SPY", "buy", 10, intent="entry"))
    held = adapter.protect_position("SPY", Side.SELL, 10, stop_loss=580.0, take_profit=600.0, intent="exits")
    assert (held.state, held.stop_loss, held.take_profit, held.quantity) == (
        OrderState.OPEN,
        580.0,
        600.0,
        10,
    )
    form = fake.requests_to("POST", r"/orders$")[-1].form()
    assert form["class"] == "oco" and form["duration"] == "gtc" and form["tag"].startswith("ssf-")
    assert (form["type[0]"], form["price[0]"], form["side[0]"]) == ("limit", "600.00", "sell")
    assert (form["type[1]"], form["stop[1]"], form["side[1]"]) == ("stop", "580.00", "sell")
    assert [p.protection_id for p in adapter.list_protections()] == [held.protection_id]

    moved = adapter.modify_protection(held.protection_id, stop_loss=585.0)
    assert moved.protection_id == held.protection_id and (moved.stop_loss, moved.take_profit) == (
        585.0,
        600.0,
    )
    assert len(_tradier_oco(fake)) == 1 and fake.order_count() == 2  # moved, not replaced

    fake.set_quote("SPY", 584.90, 584.95)  # through the stop: the OCO cancels the target
    done = adapter.get_protection(held.protection_id)
    assert (done.state, done.filled_by, done.avg_fill_price) == (OrderState.FILLED, "stop_loss", 584.90)
    (oco,) = _tradier_oco(fake)
    assert sorted((leg["type"], leg["status"]) for leg in oco["leg"]) == [
        ("limit", "canceled"),
        ("stop", "filled"),
    ]
    assert adapter.get_positions() == [] and adapter.list_protections() == []


def test_where_tradier_refuses_to_move_a_leg_the_oco_is_replaced(tradier: BrokerHarness) -> None:
    adapter, fake = tradier.adapter, tradier.fake
    fake.modifiable_legs = False
    adapter.place_order(OrderRequest.single("SPY", "buy", 10, intent="entry"))
    held = adapter.protect_position("SPY", Side.SELL, 10, stop_loss=580.0, take_profit=600.0, intent="exits")
    moved = adapter.modify_protection(held.protection_id, stop_loss=585.0)
    assert moved.protection_id != held.protection_id
    assert (moved.state, moved.stop_loss, moved.take_profit) == (OrderState.OPEN, 585.0, 600.0)
    assert adapter.get_protection(held.protection_id).state is OrderState.CANCELED
    assert [p.protection_id for p in adapter.list_protections()] == [moved.protection_id]


def test_tradier_protection_is_cancelled_whole(tradier: BrokerHarness) -> None:
    adapter = tradier.adapter
    adapter.place_order(OrderRequest.single("SPY", "buy", 5, intent="entry"))
    held = adapter.protect_position("SPY", Side.SELL, 5, stop_loss=580.0, take_profit=600.0)
    assert adapter.cancel_protection(held.protection_id).state is OrderState.CANCELED
    assert adapter.list_open_orders() == [] and adapter.get_positions()[0].quantity == 5


def test_tradelocker_attaches_stop_and_target_to_the_position(tradelocker: BrokerHarness) -> None:
    adapter, fake = tradelocker.adapter, tradelocker.fake
    adapter.place_order(OrderRequest.single("EURUSD", "buy", 10_000, asset_class="forex", intent="entry"))
    held = adapter.protect_position("EURUSD", Side.SELL, 10_000, stop_loss=1.07, take_profit=1.10)
    patch = fake.requests_to("PATCH", r"/trade/positions/\d+$")[-1]
    assert patch.json() == {"stopLoss": 1.07, "takeProfit": 1.10}
    assert (held.state, held.stop_loss, held.take_profit) == (OrderState.OPEN, 1.07, 1.10)
    assert [p.protection_id for p in adapter.list_protections()] == [held.protection_id]
    assert fake.order_count() == 1  # the stop-loss and take-profit are the position's, not client orders

    moved = adapter.modify_protection(held.protection_id, stop_loss=1.075)
    assert (moved.stop_loss, moved.take_profit) == (1.075, 1.10)
    fake.set_quote("EURUSD", 1.10010, 1.10020)  # the bid reaches the take-profit
    done = adapter.get_protection(held.protection_id)
    assert (done.state, done.filled_by, done.avg_fill_price) == (OrderState.FILLED, "take_profit", 1.1001)
    assert adapter.get_positions() == []
    with fake.lock:
        exits = sorted(
            (o["_origin"], o["status"]) for o in fake.books[1].orders.values() if o["_origin"] != "client"
        )
    assert exits == [("sl", "Cancelled"), ("tp", "Filled")]


def test_tradelocker_protects_whole_positions_only(tradelocker: BrokerHarness) -> None:
    adapter = tradelocker.adapter
    adapter.place_order(OrderRequest.single("EURUSD", "buy", 20_000, asset_class="forex"))
    with pytest.raises(NotSupportedError, match="close whole positions"):
        adapter.protect_position("EURUSD", Side.SELL, 10_000, stop_loss=1.07)
    held = adapter.protect_position("EURUSD", Side.SELL, 20_000, stop_loss=1.07)
    assert adapter.cancel_protection(held.protection_id).state is OrderState.CANCELED
    assert adapter.get_positions()[0].quantity == pytest.approx(20_000)


@pytest.mark.parametrize("fault", ["5xx", "timeout"])
def test_an_uncertain_oco_submit_leaves_one_oco(tradier: BrokerHarness, fault: str) -> None:
    adapter, fake = tradier.adapter, tradier.fake
    adapter.place_order(OrderRequest.single("SPY", "buy", 10, intent="entry"))
    if fault == "5xx":
        fake.inject("POST", tradier.submit_path, when="after", status=502)
    else:
        fake.inject("POST", tradier.submit_path, when="after", status=None, delay=tradier.slow_submit_delay)
    held = adapter.protect_position("SPY", Side.SELL, 10, stop_loss=580.0, take_profit=600.0, intent="x")
    (oco,) = _tradier_oco(fake)
    assert held.protection_id == str(oco["id"]) and fake.order_count() == 2


def test_an_oco_request_is_the_exits_of_a_position_and_says_what_is_wrong() -> None:
    exits = OrderRequest.single("SPY", "sell", 3, take_profit=600.0, stop_loss=580.0, oco=True)
    entry = OrderRequest.single("SPY", "sell", 3, take_profit=580.0, stop_loss=600.0)
    assert exits.client_order_id != entry.client_order_id  # an exit bracket is not a short entry's
    with pytest.raises(InvalidOrderError, match="exits of a long: take_profit must be > stop_loss"):
        OrderRequest.single("SPY", "sell", 3, take_profit=580.0, stop_loss=600.0, oco=True)  # closes a long
    with pytest.raises(InvalidOrderError, match="no entry price"):
        OrderRequest.single("SPY", "sell", 3, oco=True)
    with pytest.raises(InvalidOrderError, match="no entry price"):
        OrderRequest.single("SPY", "sell", 3, order_type="limit", limit_price=590.0, stop_loss=580.0, oco=True)
