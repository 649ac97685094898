"""The Lumibot TradeLocker broker and data source against the fake TradeLocker server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from lumibot.entities import Asset
from lumibot.strategies import Strategy

from brokers import InvalidOrderError, OrderRequest, TradeLockerAdapter
from brokers.lumibot_tradelocker import TradeLockerBroker, TradeLockerData, instrument_name, resolution_for

EURUSD = Asset("EURUSD", asset_type="forex")
BrokerHarness = Any  # conftest.py's harness: the fake server and adapters pointed at it
FAST = {"retry_backoff_base": 0.0, "retry_max_backoff": 0.0, "submit_settle_seconds": 0.0}


class _Holder(Strategy):
    """A Lumibot strategy that only submits what the test asks for (its broker is what is tested)."""

    def initialize(self) -> None:
        self.sleeptime = "1D"

    def on_trading_iteration(self) -> None:
        return None


@pytest.fixture
def lumi(tradelocker: BrokerHarness) -> Iterator[tuple[TradeLockerBroker, Strategy, Any]]:
    adapter = tradelocker.make_adapter()
    broker = TradeLockerBroker(adapter, polling_interval=0.1, market="24/7")
    strategy = _Holder(broker=broker, name="holder")
    try:
        yield broker, strategy, tradelocker.fake
    finally:
        broker.close()


def _wait(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached within the timeout")


# ----------------------------------------------------------------------------------------- assets


def test_instrument_names_from_assets() -> None:
    assert instrument_name(EURUSD) == "EURUSD"
    assert instrument_name(Asset("EUR", asset_type="forex"), Asset("USD", asset_type="forex")) == "EURUSD"
    assert instrument_name(Asset("xauusd", asset_type="forex")) == "XAUUSD"
    with pytest.raises(InvalidOrderError, match="quote asset"):
        instrument_name(Asset("EUR", asset_type="forex"))


def test_resolutions_and_resampling_factors() -> None:
    assert resolution_for(1) == ("1m", 1)
    assert resolution_for(15) == ("15m", 1)
    assert resolution_for(60) == ("1H", 1)
    assert resolution_for(10) == ("5m", 2)
    assert resolution_for(120) == ("1H", 2)
    assert resolution_for(7) == ("1m", 7)


# ----------------------------------------------------------------------------------------- data


def test_last_price_is_the_mid_and_quotes_carry_bid_ask(tradelocker: BrokerHarness) -> None:
    data = TradeLockerData(tradelocker.adapter)
    assert data.get_last_price(EURUSD) == pytest.approx((1.08490 + 1.08500) / 2)
    quote = data.get_quote(EURUSD)
    assert (quote.bid, quote.ask) == (1.08490, 1.08500)


def test_minute_bars_are_closed_bars_in_order(tradelocker: BrokerHarness) -> None:
    data = TradeLockerData(tradelocker.adapter)
    now = dt.datetime(2026, 11, 25, 14, 7, 30, tzinfo=dt.UTC)  # a Wednesday
    frame = data.fetch_bars("EURUSD", 1, 30, now=now)
    assert len(frame) == 30
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.is_monotonic_increasing
    # the 14:07 bar is still forming: the last bar is 14:06
    assert frame.index[-1] == pd.Timestamp("2026-11-25 14:06", tz="UTC")
    inst = tradelocker.fake.instruments[278]
    t_ms = int(pd.Timestamp("2026-11-25 14:06", tz="UTC").timestamp() * 1000)
    assert frame["close"].iloc[-1] == pytest.approx(tradelocker.fake.bar_close(inst, t_ms))
    history = tradelocker.fake.requests_to("GET", r"/trade/history$")
    assert history[-1].query["resolution"] == ["1m"]
    assert history[-1].query["routeId"] == [str(inst.info_route)]


def test_bars_skip_the_weekend_and_resample_what_tradelocker_lacks(tradelocker: BrokerHarness) -> None:
    data = TradeLockerData(tradelocker.adapter)
    monday = dt.datetime(2026, 11, 23, 0, 30, tzinfo=dt.UTC)
    frame = data.fetch_bars("EURUSD", 10, 12, now=monday)
    assert len(frame) == 12
    assert (frame.index.to_series().diff().dropna() >= pd.Timedelta(minutes=10)).all()
    assert all(ts.minute % 10 == 0 for ts in frame.index)
    utc = frame.index.tz_convert("UTC")
    assert utc[-1] == pd.Timestamp("2026-11-23 00:20", tz="UTC")  # the 00:30 bar is still forming
    assert sorted({ts.day_name() for ts in utc}) == ["Friday", "Monday"]  # the weekend has no bars
    assert tradelocker.fake.requests_to("GET", r"/trade/history$")[-1].query["resolution"] == ["5m"]


def test_long_histories_are_fetched_in_chunks_below_the_bar_limit(tradelocker: BrokerHarness) -> None:
    data = TradeLockerData(tradelocker.adapter)
    frame = data.fetch_bars("EURUSD", 1, 15_000, now=dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC))
    assert len(frame) == 15_000
    assert not frame.index.has_duplicates
    assert tradelocker.fake.history_requests >= 3  # no single request above TradeLocker's 20,000 bars


def test_historical_prices_as_lumibot_bars(tradelocker: BrokerHarness) -> None:
    data = TradeLockerData(tradelocker.adapter)
    bars = data.get_historical_prices(EURUSD, 20, "15 minutes")
    assert bars is not None and len(bars.df) == 20
    assert str(bars.df.index.tz) == str(data.tzinfo)


def test_unknown_instrument_is_a_clear_error(tradelocker: BrokerHarness) -> None:
    data = TradeLockerData(tradelocker.adapter)
    with pytest.raises(InvalidOrderError, match="no instrument 'USDXYZ'"):
        data.get_historical_prices(Asset("USDXYZ", asset_type="forex"), 5, "minute")


# ----------------------------------------------------------------------------------------- broker


def test_balances_and_netted_positions(lumi: tuple[TradeLockerBroker, Strategy, Any]) -> None:
    broker, strategy, fake = lumi
    adapter = TradeLockerAdapter(
        fake.username, fake.password, fake.server_name, environment_url=fake.root_url, **FAST
    )
    adapter.place_order(OrderRequest.single("EURUSD", "buy", 30_000, asset_class="forex"))
    adapter.place_order(OrderRequest.single("EURUSD", "sell", 10_000, asset_class="forex", intent="2"))
    adapter.place_order(OrderRequest.single("XAUUSD", "buy", 10, asset_class="forex"))
    adapter.close()
    positions = {p.asset.symbol: p for p in broker._pull_positions(strategy)}
    assert positions["EURUSD"].quantity == pytest.approx(20_000)  # hedging account: 0.3 lot long, 0.1 short
    assert positions["XAUUSD"].quantity == pytest.approx(10)
    assert broker._pull_position(strategy, EURUSD).quantity == pytest.approx(20_000)
    cash, positions_value, equity = broker._get_balances_at_broker(Asset("USD", asset_type="forex"), strategy)
    assert cash == pytest.approx(50_000.0)
    assert equity == pytest.approx(fake.equity(), abs=0.01)
    assert positions_value == pytest.approx(equity - cash)


def test_orders_are_submitted_filled_and_netted(lumi: tuple[TradeLockerBroker, Strategy, Any]) -> None:
    broker, strategy, fake = lumi
    order = strategy.submit_order(strategy.create_order(EURUSD, 20_000, "buy"))
    assert order.identifier in {o["id"] for o in fake.books[1].orders.values()}
    filled = _wait(
        lambda: (o := broker.get_tracked_order(order.identifier)) is not None and o.is_filled() and o
    )
    assert filled.avg_fill_price == pytest.approx(1.08500)
    assert _wait(lambda: strategy.get_position(EURUSD)).quantity == pytest.approx(20_000)
    sent = fake.requests_to("POST", r"/orders$")[-1].json()
    assert (sent["qty"], sent["side"], sent["type"], sent["validity"]) == ("0.2", "buy", "market", "IOC")
    assert len(sent["strategyId"]) <= 31

    # selling against the long closes part of it instead of opening a short (hedging account)
    strategy.submit_order(strategy.create_order(EURUSD, 5_000, "sell"))
    book = fake.books[1]
    assert [(p["side"], p["qty"]) for p in book.positions.values()] == [("buy", 0.15)]
    assert _wait(lambda: (p := strategy.get_position(EURUSD)) is not None and p.quantity == 15_000)
    assert fake.order_count() == 1  # the close is TradeLocker's own order, not a new client order


def test_an_order_that_would_reverse_the_position_is_refused(
    lumi: tuple[TradeLockerBroker, Strategy, Any],
) -> None:
    broker, strategy, fake = lumi
    first = strategy.submit_order(strategy.create_order(EURUSD, 10_000, "buy"))
    _wait(lambda: (o := broker.get_tracked_order(first.identifier)) is not None and o.is_filled())
    flip = strategy.submit_order(strategy.create_order(EURUSD, 30_000, "sell"))
    assert _wait(lambda: flip.status == "error")
    assert "reverse" in (flip.error_message or "")
    assert [(p["side"], p["qty"]) for p in fake.books[1].positions.values()] == [("buy", 0.1)]


def test_limit_orders_rest_then_modify_and_cancel(lumi: tuple[TradeLockerBroker, Strategy, Any]) -> None:
    broker, strategy, fake = lumi
    order = strategy.submit_order(strategy.create_order(EURUSD, 10_000, "buy", limit_price=1.05))
    assert order.identifier
    raw = fake.books[1].orders[order.identifier]
    assert (raw["type"], raw["validity"], raw["isOpen"]) == ("limit", "GTC", True)
    broker.modify_order(order, limit_price=1.06)
    assert fake.books[1].orders[order.identifier]["price"] == pytest.approx(1.06)
    strategy.cancel_order(order)
    assert _wait(lambda: fake.books[1].orders[order.identifier]["status"] == "Cancelled")
    assert _wait(lambda: broker.get_tracked_order(order.identifier).is_canceled())


def test_refused_order_is_an_error_event_with_the_broker_reason(
    lumi: tuple[TradeLockerBroker, Strategy, Any],
) -> None:
    broker, strategy, fake = lumi
    order = strategy.submit_order(strategy.create_order(EURUSD, 500, "buy"))  # below 0.01 lot
    assert _wait(lambda: order.status == "error")
    assert "below the minimum" in (order.error_message or "")
    assert fake.order_count() == 0


def test_bracket_orders_carry_stop_loss_and_take_profit(
    lumi: tuple[TradeLockerBroker, Strategy, Any],
) -> None:
    broker, strategy, fake = lumi
    order = strategy.create_order(
        EURUSD,
        10_000,
        "buy",
        order_class="bracket",
        secondary_limit_price=1.10,
        secondary_stop_price=1.07,
    )
    strategy.submit_order(order)
    sent = fake.requests_to("POST", r"/orders$")[-1].json()
    assert (sent["takeProfit"], sent["stopLoss"]) == (1.10, 1.07)
