"""Exits held at the broker (``BrokerAdapter.protect_position``) against the fake servers: one Tradier OCO
order, a TradeLocker position's own stop-loss and take-profit; moved in place, one level filling cancels the
other, and an uncertain submit never leaves two."""

from __future__ import annotations

from typing import Any

import pytest

from brokers import InvalidOrderError, NotSupportedError, OrderRequest, OrderState, ProtectionRequest, Side

BrokerHarness = Any  # conftest.py's harness: the fake server and adapters pointed at it


def _tradier_oco(fake: Any) -> list[dict[str, Any]]:
    with fake.lock:
        return [o for o in fake.orders.values() if o["class"] == "oco"]


# (symbol at the adapter, Tradier's spelling, asset class, quantity, stop, target, moved stop, bid and ask
# through the moved stop): a stock, and a futures contract (enable_futures) with its 0.25 tick
_TRADIER_MARKETS = {
    "stock": ("SPY", "SPY", "equity", 10, 580.0, 600.0, 585.0, (584.90, 584.95)),
    "future": ("MESZ26", "/MESZ26", "future", 2, 5990.0, 6010.0, 5992.5, (5992.25, 5992.50)),
}


@pytest.mark.parametrize("market", list(_TRADIER_MARKETS))
def test_tradier_holds_stop_and_target_as_one_oco_and_moves_the_stop_in_place(
    tradier: BrokerHarness, market: str
) -> None:
    fake = tradier.fake
    fake.set_quote("/MESZ26", 6000.00, 6000.25, 6000.25)
    with tradier.make_adapter(enable_futures=True) as adapter:
        _tradier_oco_round_trip(adapter, fake, _TRADIER_MARKETS[market])


def _tradier_oco_round_trip(adapter: Any, fake: Any, market: tuple[Any, ...]) -> None:
    symbol, tradier_symbol, asset_class, qty, stop, target, moved_stop, through = market
    adapter.place_order(OrderRequest.single(symbol, "buy", qty, asset_class=asset_class, intent="entry"))
    held = adapter.protect_position(
        ProtectionRequest(
            symbol,
            Side.SELL,
            qty,
            stop_loss=stop,
            take_profit=target,
            asset_class=asset_class,
            intent="exits",
        )
    )
    assert (held.state, held.stop_loss, held.take_profit, held.quantity, held.symbol) == (
        OrderState.OPEN,
        stop,
        target,
        qty,
        symbol,
    )
    form = fake.requests_to("POST", r"/orders$")[-1].form()
    assert form["class"] == "oco" and form["duration"] == "gtc" and form["tag"].startswith("ssf-")
    assert (form["symbol[0]"], form["symbol[1]"]) == (tradier_symbol, tradier_symbol)
    assert (form["type[0]"], form["price[0]"], form["side[0]"]) == ("limit", f"{target:.2f}", "sell")
    assert (form["type[1]"], form["stop[1]"], form["side[1]"]) == ("stop", f"{stop:.2f}", "sell")
    assert [p.protection_id for p in adapter.list_protections()] == [held.protection_id]

    moved = adapter.modify_protection(held.protection_id, stop_loss=moved_stop)
    assert moved.protection_id == held.protection_id and (moved.stop_loss, moved.take_profit) == (
        moved_stop,
        target,
    )
    assert len(_tradier_oco(fake)) == 1 and fake.order_count() == 2  # moved, not replaced

    fake.set_quote(tradier_symbol, *through)  # through the stop: the OCO cancels the target
    done = adapter.get_protection(held.protection_id)
    assert (done.state, done.filled_by, done.avg_fill_price) == (OrderState.FILLED, "stop_loss", through[0])
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
    held = adapter.protect_position(
        ProtectionRequest("SPY", Side.SELL, 10, stop_loss=580.0, take_profit=600.0, intent="exits")
    )
    moved = adapter.modify_protection(held.protection_id, stop_loss=585.0)
    assert moved.protection_id != held.protection_id
    assert (moved.state, moved.stop_loss, moved.take_profit) == (OrderState.OPEN, 585.0, 600.0)
    assert adapter.get_protection(held.protection_id).state is OrderState.CANCELED
    assert [p.protection_id for p in adapter.list_protections()] == [moved.protection_id]


def test_tradier_protection_is_cancelled_whole(tradier: BrokerHarness) -> None:
    adapter = tradier.adapter
    adapter.place_order(OrderRequest.single("SPY", "buy", 5, intent="entry"))
    held = adapter.protect_position(
        ProtectionRequest("SPY", Side.SELL, 5, stop_loss=580.0, take_profit=600.0)
    )
    assert adapter.cancel_protection(held.protection_id).state is OrderState.CANCELED
    assert adapter.list_open_orders() == [] and adapter.get_positions()[0].quantity == 5


def test_tradelocker_attaches_stop_and_target_to_the_position(tradelocker: BrokerHarness) -> None:
    adapter, fake = tradelocker.adapter, tradelocker.fake
    adapter.place_order(OrderRequest.single("EURUSD", "buy", 10_000, asset_class="forex", intent="entry"))
    held = adapter.protect_position(
        ProtectionRequest("EURUSD", Side.SELL, 10_000, stop_loss=1.07, take_profit=1.10)
    )
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
        adapter.protect_position(ProtectionRequest("EURUSD", Side.SELL, 10_000, stop_loss=1.07))
    held = adapter.protect_position(ProtectionRequest("EURUSD", Side.SELL, 20_000, stop_loss=1.07))
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
    held = adapter.protect_position(
        ProtectionRequest("SPY", Side.SELL, 10, stop_loss=580.0, take_profit=600.0, intent="x")
    )
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
        OrderRequest.single(
            "SPY", "sell", 3, order_type="limit", limit_price=590.0, stop_loss=580.0, oco=True
        )


# Through the deployments' one Lumibot broker (AdapterBroker): (harness, Lumibot asset type and symbol,
# quantity, stop, target, moved stop, bid and ask through the moved stop)
_LUMIBOT_MARKETS = {
    "stock at tradier": ("tradier", "stock", "SPY", 10, 580.0, 600.0, 585.0, (584.90, 584.95)),
    "future at tradier": ("tradier", "future", "MESZ26", 2, 5990.0, 6010.0, 5992.5, (5992.25, 5992.50)),
    "forex at tradelocker": ("tradelocker", "forex", "EURUSD", 10_000, 1.07, 1.10, 1.075, (1.07490, 1.07500)),
}


@pytest.mark.parametrize("market", list(_LUMIBOT_MARKETS))
def test_a_lumibot_bracket_is_one_protection_at_the_broker_for_every_market(
    request: pytest.FixtureRequest, market: str
) -> None:
    """A Lumibot OCO exit (what the live strategy places after its entry's fill) becomes one protection held
    at the broker, whatever the market: a Tradier OCO on the stock or the ``/MESZ26`` contract, the
    TradeLocker position's stop-loss and take-profit. Moved in place, then filled by the stop: flat."""
    from lumibot.entities import Asset

    from brokers.lumibot_tradelocker import TradeLockerBroker
    from brokers.lumibot_tradier import TradierBroker
    from tests.brokers.test_lumibot_broker import _Holder, _wait

    name, kind, symbol, qty, stop, target, moved_stop, through = _LUMIBOT_MARKETS[market]
    harness: BrokerHarness = request.getfixturevalue(name)
    fake = harness.fake
    if name == "tradier":
        fake.set_quote("/MESZ26", 6000.00, 6000.25, 6000.25)
        glue: Any = TradierBroker(
            harness.make_adapter(enable_futures=True), polling_interval=0.1, market="24/7", data_delay=0
        )
    else:
        glue = TradeLockerBroker(harness.make_adapter(), polling_interval=0.1, market="24/7")
    try:
        strategy = _Holder(broker=glue, name="holder")
        asset = Asset(symbol, asset_type=kind)
        entry = strategy.submit_order(strategy.create_order(asset, qty, "buy"))
        _wait(lambda: (o := glue.get_tracked_order(entry.identifier)) is not None and o.is_filled())
        exits = strategy.create_order(
            asset, qty, "sell", order_class="oco", stop_price=stop, limit_price=target, time_in_force="gtc"
        )
        held = strategy.submit_order(exits)
        assert glue.is_protection(held)
        (protection,) = glue.adapter.list_protections()
        assert (protection.protection_id, protection.symbol) == (held.identifier, symbol)
        assert (protection.stop_loss, protection.take_profit, protection.quantity) == (stop, target, qty)
        if name == "tradier":
            (oco,) = _tradier_oco(fake)
            assert {leg["symbol"] for leg in oco["leg"]} == {"/" + symbol if kind == "future" else symbol}
        else:
            patch = fake.requests_to("PATCH", r"/trade/positions/\d+$")[-1]
            assert patch.json() == {"stopLoss": stop, "takeProfit": target}

        strategy.modify_order(held, stop_price=moved_stop)
        (moved,) = glue.adapter.list_protections()
        assert (moved.protection_id, moved.stop_loss, moved.take_profit) == (
            held.identifier,
            moved_stop,
            target,
        )
        assert fake.order_count() == (2 if name == "tradier" else 1)  # the entry (+ the OCO): moved in place

        fake.set_quote(("/" if kind == "future" else "") + symbol, *through)
        _wait(lambda: (o := glue.get_tracked_order(held.identifier)) is not None and o.is_filled())
        assert glue.adapter.get_positions() == [] and glue.adapter.list_protections() == []
    finally:
        glue.close()
