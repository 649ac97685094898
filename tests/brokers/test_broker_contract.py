"""One contract, every adapter: each test runs against Tradier and TradeLocker over real HTTP to a
local fake server (see conftest.py). Adapter-specific behaviour lives in test_tradier_adapter.py and
test_tradelocker_adapter.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from brokers import (
    AuthenticationError,
    NotSupportedError,
    OrderState,
    TemporaryBrokerError,
)

# The "broker" fixture (conftest.py) starts the named broker's fake server and yields a harness.
pytestmark = pytest.mark.parametrize("broker", ["tradier", "tradelocker"], indirect=True)

BrokerHarness = Any


def _position_qty(broker: BrokerHarness) -> float:
    return sum(p.quantity for p in broker.adapter.get_positions() if p.symbol == broker.symbol)


def test_balances_positions_quotes(broker: BrokerHarness) -> None:
    balance = broker.adapter.get_balances()
    assert balance.total_equity == pytest.approx(broker.starting_equity)
    assert balance.cash == pytest.approx(broker.starting_equity)
    assert balance.buying_power is not None and balance.buying_power > 0
    assert broker.adapter.get_positions() == []
    quote = broker.adapter.get_quote(broker.symbol)
    assert quote.bid is not None and quote.ask is not None
    assert 0 < quote.bid < quote.ask
    assert quote.mid == pytest.approx((quote.bid + quote.ask) / 2)


def test_market_order_fills_and_appears_in_status_and_positions(broker: BrokerHarness) -> None:
    request = broker.market_buy(intent="contract-market")
    order = broker.adapter.place_order(request)
    assert order.client_order_id == request.client_order_id
    assert order.state is OrderState.FILLED
    status = broker.adapter.get_order_status(order.order_id)
    assert status.state is OrderState.FILLED
    assert status.filled_quantity == pytest.approx(broker.quantity)
    assert status.avg_fill_price == pytest.approx(broker.adapter.get_quote(broker.symbol).ask)
    assert _position_qty(broker) == pytest.approx(broker.quantity)
    assert broker.adapter.find_order_by_client_id(request.client_order_id).order_id == order.order_id

    # Idempotency: the same request again returns the same order and submits nothing.
    again = broker.adapter.place_order(request)
    assert again.order_id == order.order_id
    assert broker.order_count() == 1
    assert _position_qty(broker) == pytest.approx(broker.quantity)


def test_cancel_resting_order(broker: BrokerHarness) -> None:
    order = broker.adapter.place_order(broker.resting_buy(intent="contract-cancel"))
    assert order.state is OrderState.OPEN
    assert order.limit_price == pytest.approx(broker.resting_buy_limit)
    assert [o.order_id for o in broker.adapter.list_open_orders()] == [order.order_id]

    status = broker.adapter.cancel_order(order.order_id)
    assert status.state is OrderState.CANCELED
    assert broker.adapter.list_open_orders() == []
    # Canceling a final order is not an error: the final status comes back.
    assert broker.adapter.cancel_order(order.order_id).state is OrderState.CANCELED
    assert broker.adapter.get_positions() == []


def test_replace_changes_the_working_price(broker: BrokerHarness) -> None:
    order = broker.adapter.place_order(broker.resting_buy(intent="contract-replace"))
    new_price = round(broker.resting_buy_limit * 0.99, 5)
    replaced = broker.adapter.replace_order(order.order_id, limit_price=new_price)
    assert replaced.order_id == order.order_id
    assert replaced.state is OrderState.OPEN
    assert replaced.limit_price == pytest.approx(new_price)
    assert broker.adapter.get_order(order.order_id).limit_price == pytest.approx(new_price)
    assert broker.order_count() == 1


def test_bracket_attaches_take_profit_and_stop(broker: BrokerHarness) -> None:
    request = broker.market_buy(
        take_profit=broker.take_profit, stop_loss=broker.stop_loss, intent="contract-bracket"
    )
    order = broker.adapter.place_order(request)
    assert order.state is OrderState.FILLED
    assert order.take_profit == pytest.approx(broker.take_profit)
    assert order.stop_loss == pytest.approx(broker.stop_loss)
    assert len(order.child_order_ids) == 2
    assert _position_qty(broker) == pytest.approx(broker.quantity)
    assert broker.adapter.list_open_orders(), "the exits must be working"


@pytest.mark.parametrize("when", ["after", "before"])
def test_server_error_on_submit_leaves_exactly_one_order(broker: BrokerHarness, when: str) -> None:
    # "after": the broker recorded the order, then answered 500; "before": it never saw it.
    fault = broker.fake.inject("POST", broker.submit_path, when=when, status=500)
    request = broker.market_buy(intent=f"contract-500-{when}")
    order = broker.adapter.place_order(request)
    assert fault.hits == 1
    assert order.client_order_id == request.client_order_id
    assert order.state is OrderState.FILLED
    assert broker.order_count() == 1
    assert len(broker.fake.requests_to("POST", broker.submit_path)) == (1 if when == "after" else 2)
    assert _position_qty(broker) == pytest.approx(broker.quantity)


def test_timeout_after_submit_does_not_duplicate(broker: BrokerHarness) -> None:
    # The fake records the order, then sleeps past the client's timeout before answering.
    broker.fake.inject("POST", broker.submit_path, when="after", status=None, delay=broker.slow_submit_delay)
    request = broker.market_buy(intent="contract-timeout")
    order = broker.adapter.place_order(request)
    assert order.client_order_id == request.client_order_id
    assert broker.order_count() == 1
    assert len(broker.fake.requests_to("POST", broker.submit_path)) == 1
    assert _position_qty(broker) == pytest.approx(broker.quantity)


def test_invalid_credentials_raise_masked_authentication_error(
    broker: BrokerHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_secret = "WRONG-" + broker.secret[::-1]
    broker.fake.echo_secret_in_errors = True  # worst case: the server echoes what it got
    override = {"api_key": bad_secret} if broker.name == "tradier" else {"password": bad_secret}
    with broker.make_adapter(**override) as adapter, pytest.raises(AuthenticationError) as info:
        adapter.get_balances()
    message = str(info.value)
    assert bad_secret not in message
    assert bad_secret[:4] + "…(masked)" in message
    assert bad_secret not in caplog.text
    assert bad_secret not in repr(adapter)
    assert info.value.status_code in (400, 401)


def test_flatten_closes_everything(broker: BrokerHarness) -> None:
    adapter = broker.adapter
    adapter.place_order(broker.market_buy(intent="flatten-1"))
    adapter.place_order(
        broker.market_buy(take_profit=broker.take_profit, stop_loss=broker.stop_loss, intent="flatten-2")
    )
    resting = adapter.place_order(broker.resting_buy(intent="flatten-3"))
    assert adapter.get_positions()
    assert len(adapter.list_open_orders()) >= 2

    result = adapter.flatten_all()
    assert result.errors == ()
    assert resting.order_id in result.canceled_order_ids
    assert result.closing_orders
    assert adapter.get_positions() == []
    assert adapter.list_open_orders() == []
    assert adapter.get_order_status(resting.order_id).state is OrderState.CANCELED
    # The realised PnL of buying at the ask and selling at the bid is the spread: a small loss.
    balance = adapter.get_balances()
    assert balance.closed_pnl_today is not None and balance.closed_pnl_today < 0
    assert balance.total_equity == pytest.approx(broker.starting_equity + balance.closed_pnl_today, abs=0.01)


def test_reads_retry_temporary_errors_then_give_up(broker: BrokerHarness) -> None:
    broker.fake.inject("GET", broker.balances_path, status=503, times=2)
    assert broker.adapter.get_balances().total_equity == pytest.approx(broker.starting_equity)
    assert len(broker.fake.requests_to("GET", broker.balances_path)) == 3

    broker.fake.inject("GET", broker.balances_path, status=429, headers={"Retry-After": "0"}, times=1)
    assert broker.adapter.get_balances().total_equity == pytest.approx(broker.starting_equity)

    # retry_count (3) retries after the first attempt, then the temporary error surfaces.
    broker.fake.inject("GET", broker.balances_path, status=502, times=10)
    with pytest.raises(TemporaryBrokerError) as info:
        broker.adapter.get_balances()
    assert info.value.status_code == 502


def test_unsupported_asset_class_is_refused_before_sending(broker: BrokerHarness) -> None:
    sent_before = len(broker.fake.requests)
    with pytest.raises(NotSupportedError) as info:
        broker.adapter.place_order(broker.unsupported)
    assert "not supported" in str(info.value)
    assert len(broker.fake.requests) == sent_before
    assert broker.adapter.capabilities[{"tradier": "forex", "tradelocker": "options"}[broker.name]] is False
