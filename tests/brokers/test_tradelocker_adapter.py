"""TradeLocker-only behaviour: JWT refresh, accNum header, lot sizing, reconciliation without tags."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from brokers import InvalidOrderError, NotSupportedError, OrderRequest, OrderState, TradeLockerAdapter
from brokers.tradelocker import contract_size, jwt_expiry, lots_to_units, units_to_lots

Harness = Any


def _tokens_used(fake: Any) -> set[str]:
    return {r.headers["authorization"] for r in fake.requests if r.path.startswith("/backend-api/trade/")}


def test_expiring_token_is_refreshed_before_use(tradelocker: Harness) -> None:
    fake = tradelocker.fake
    fake.access_lifetime = 60.0  # the adapter refreshes when < refresh_margin_seconds remain
    with tradelocker.make_adapter(refresh_margin_seconds=120.0) as adapter:
        adapter.connect()
        first = adapter._access_token
        assert jwt_expiry(first) == pytest.approx(time.time() + 60, abs=5)
        adapter.get_balances()
        refreshes = fake.requests_to("POST", r"/auth/jwt/refresh$")
        assert len(refreshes) >= 1
        sent = refreshes[0].json()
        assert list(sent) == ["refreshToken"] and sent["refreshToken"].count(".") == 2  # a JWT
        assert adapter._access_token != first
        assert f"Bearer {first}" not in _tokens_used(fake)  # never used once it was about to expire
        assert len(fake.requests_to("POST", r"/auth/jwt/token$")) == 1


def test_revoked_token_triggers_one_refresh_and_retry(tradelocker: Harness) -> None:
    adapter, fake = tradelocker.adapter, tradelocker.fake
    assert adapter.get_balances().total_equity == pytest.approx(50_000)
    fake.revoke_access_tokens()
    assert adapter.get_balances().total_equity == pytest.approx(50_000)
    assert len(fake.requests_to("POST", r"/auth/jwt/refresh$")) == 1
    assert len(fake.requests_to("POST", r"/auth/jwt/token$")) == 1

    # When the refresh token is gone too, the adapter logs in again with the password.
    fake.revoke_access_tokens()
    fake.revoke_refresh_tokens()
    assert adapter.get_positions() == []
    assert len(fake.requests_to("POST", r"/auth/jwt/token$")) == 2


def test_login_payload_account_selection_and_accnum_header(tradelocker: Harness) -> None:
    fake = tradelocker.fake
    with tradelocker.make_adapter(acc_num=2) as adapter:
        assert adapter.get_balances().total_equity == pytest.approx(25_000)
        assert (adapter.account_id, adapter.acc_num) == ("700124", 2)
    login = fake.requests_to("POST", r"/auth/jwt/token$")[0].json()
    assert login == {"email": fake.username, "password": fake.password, "server": fake.server_name}
    trade_calls = [r for r in fake.requests if r.path.startswith("/backend-api/trade/")]
    assert trade_calls and all(r.headers.get("accnum") == "2" for r in trade_calls)
    assert "accnum" not in fake.requests_to("GET", r"/auth/jwt/all-accounts$")[0].headers

    with pytest.raises(Exception, match="no account with accNum 9"):
        tradelocker.make_adapter(acc_num=9).connect()


def test_lot_sizing() -> None:
    assert contract_size("EURUSD") == 100_000
    assert contract_size("XAUUSD") == 100
    assert contract_size("XAUUSD.x") == 100  # broker suffixes
    assert units_to_lots(10_000, "EURUSD") == 0.1
    assert units_to_lots(100_000, "GBPUSD") == 1.0
    assert units_to_lots(30_000, "EURUSD") == 0.3  # float noise must not round 0.3 down to 0.29
    assert units_to_lots(150, "XAUUSD") == 1.5
    assert units_to_lots(1, "XAUUSD") == 0.01
    assert units_to_lots(12_345, "EURUSD") == 0.12  # rounded down, never up
    assert units_to_lots(5_000, "EURUSD", contract_sizes={"EURUSD": 1_000}) == 5.0
    with pytest.raises(InvalidOrderError, match="below the minimum of 0.01 lot"):
        units_to_lots(500, "EURUSD")
    assert lots_to_units(0.12, "EURUSD") == 12_000
    assert lots_to_units(1.5, "XAUUSD") == 150


def test_units_travel_as_lots_and_come_back_as_units(
    tradelocker: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    adapter, fake = tradelocker.adapter, tradelocker.fake
    caplog.set_level(logging.WARNING)
    order = adapter.place_order(
        OrderRequest.single("XAUUSD", "sell", 150, asset_class="forex", intent="gold")
    )
    body = fake.requests_to("POST", r"/orders$")[0].json()
    assert (body["qty"], body["side"], body["type"], body["validity"]) == ("1.5", "sell", "market", "IOC")
    assert (body["tradableInstrumentId"], body["routeId"]) == ("340", "455")  # the TRADE route
    assert body["strategyId"] == order.client_order_id
    assert order.legs[0].quantity == pytest.approx(150)
    (position,) = adapter.get_positions()
    assert (position.symbol, position.quantity) == ("XAUUSD", pytest.approx(-150))

    adapter.place_order(OrderRequest.single("EURUSD", "buy", 12_345, asset_class="forex", intent="odd"))
    assert fake.requests_to("POST", r"/orders$")[1].json()["qty"] == "0.12"
    assert "rounded down to 0.12 lots" in caplog.text


def test_pending_orders_are_gtc_and_stop_limit_is_refused(tradelocker: Harness) -> None:
    adapter = tradelocker.adapter
    day_limit = OrderRequest.single(
        "EURUSD",
        "buy",
        10_000,
        asset_class="forex",
        order_type="limit",
        limit_price=1.05,
        time_in_force="day",
        intent="dl",
    )
    assert adapter.build_order_body(day_limit)["validity"] == "GTC"
    with pytest.raises(NotSupportedError, match="stop-limit"):
        adapter.place_order(
            OrderRequest.single(
                "EURUSD",
                "buy",
                10_000,
                asset_class="forex",
                order_type="stop_limit",
                limit_price=1.2,
                stop_price=1.19,
                intent="sl",
            )
        )
    with pytest.raises(InvalidOrderError, match="no instrument 'EURXXX'"):
        adapter.place_order(OrderRequest.single("EURXXX", "buy", 10_000, asset_class="forex", intent="x"))


def test_quantity_can_be_replaced(tradelocker: Harness) -> None:
    order = tradelocker.adapter.place_order(tradelocker.resting_buy(intent="rq"))
    replaced = tradelocker.adapter.replace_order(order.order_id, quantity=20_000)
    assert replaced.legs[0].quantity == pytest.approx(20_000)
    assert tradelocker.fake.requests_to("PATCH", r"/trade/orders/")[0].json() == {
        "validity": "GTC",
        "qty": "0.2",
    }


def test_reconciles_without_strategy_id_column(tradelocker: Harness) -> None:
    """Servers whose ordersConfig lacks strategyId: a 500 after the order was recorded is matched by
    instrument/side/qty instead, still leaving exactly one order."""
    fake = tradelocker.fake
    fake.strategy_id_column = False
    with tradelocker.make_adapter() as adapter:
        fake.inject("POST", tradelocker.submit_path, when="after", status=500)
        first = adapter.place_order(tradelocker.market_buy(intent="untagged-1"))
        assert fake.order_count() == 1
        assert first.client_order_id is None  # the broker does not echo it back
        # A second, deliberate identical order (new intent) is not mistaken for the first one.
        second = adapter.place_order(tradelocker.market_buy(intent="untagged-2"))
        assert second.order_id != first.order_id
        assert fake.order_count() == 2
        assert sum(p.quantity for p in adapter.get_positions()) == pytest.approx(20_000)


def test_wrong_server_name_is_an_authentication_error(tradelocker: Harness) -> None:
    adapter = TradeLockerAdapter(
        tradelocker.fake.username,
        tradelocker.fake.password,
        "OtherBroker-Live",
        environment_url=tradelocker.fake.root_url,
    )
    with adapter, pytest.raises(Exception) as info:
        adapter.connect()
    assert type(info.value).__name__ == "AuthenticationError"
    assert "TRADELOCKER_SERVER" in str(info.value)
    assert tradelocker.fake.password not in str(info.value)


def test_live_environment_needs_explicit_permission() -> None:
    with pytest.raises(ValueError, match="allow_live=True"):
        TradeLockerAdapter(
            "a@b.c", "secret-password", "TrendMarkets-Live", environment_url="https://live.tradelocker.com"
        )


def test_bracket_children_are_real_orders(tradelocker: Harness) -> None:
    adapter = tradelocker.adapter
    order = adapter.place_order(tradelocker.market_buy(take_profit=1.1, stop_loss=1.07, intent="kids"))
    children = [adapter.get_order(child_id) for child_id in order.child_order_ids]
    assert sorted((c.order_type.value, c.legs[0].side.value, c.state) for c in children) == [
        ("limit", "sell", OrderState.OPEN),
        ("stop", "sell", OrderState.OPEN),
    ]
    assert {c.limit_price or c.stop_price for c in children} == {1.1, 1.07}
    # Canceling the stop leaves the take-profit working.
    stop = next(c for c in children if c.stop_price)
    adapter.cancel_order(stop.order_id)
    assert [o.order_id for o in adapter.list_open_orders()] == [c.order_id for c in children if c.limit_price]
