"""Tradier-only behaviour: multi-leg form encoding, futures flag, option data, quirks, lumiwealth."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from brokers import (
    AssetClass,
    InvalidOrderError,
    Leg,
    NotSupportedError,
    OrderRequest,
    OrderState,
    OrderType,
    PositionEffect,
    TradierAdapter,
)
from brokers.tradier import tradier_side

Harness = Any

EXP = "2025-11-21"


def _occ(right: str, strike: int) -> str:
    return f"SPY251121{right}{strike * 1000:08d}"


def test_four_leg_iron_condor_is_form_encoded_per_leg(tradier: Harness) -> None:
    legs = (
        Leg(_occ("P", 580), "buy", 1, "option"),
        Leg(_occ("P", 585), "sell", 1, "option"),
        Leg(_occ("C", 595), "sell", 1, "option"),
        Leg(_occ("C", 600), "buy", 1, "option"),
    )
    request = OrderRequest(legs=legs, order_type="limit", limit_price=-1.25, intent="condor")
    order = tradier.adapter.place_order(request)

    posts = tradier.fake.requests_to("POST", r"/orders$")
    assert len(posts) == 1
    assert posts[0].headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(posts[0].body.decode())
    assert form == {
        "duration": ["day"],
        "tag": [request.client_order_id],
        "class": ["multileg"],
        "symbol": ["SPY"],
        "type": ["credit"],
        "price": ["1.25"],
        "option_symbol[0]": [_occ("P", 580)],
        "side[0]": ["buy_to_open"],
        "quantity[0]": ["1"],
        "option_symbol[1]": [_occ("P", 585)],
        "side[1]": ["sell_to_open"],
        "quantity[1]": ["1"],
        "option_symbol[2]": [_occ("C", 595)],
        "side[2]": ["sell_to_open"],
        "quantity[2]": ["1"],
        "option_symbol[3]": [_occ("C", 600)],
        "side[3]": ["buy_to_open"],
        "quantity[3]": ["1"],
    }
    # ... and read back as the same four legs with a net credit.
    assert [leg.symbol for leg in order.legs] == [leg.symbol for leg in legs]
    assert [(leg.side.value, leg.position_effect) for leg in order.legs] == [
        ("buy", PositionEffect.OPEN),
        ("sell", PositionEffect.OPEN),
        ("sell", PositionEffect.OPEN),
        ("buy", PositionEffect.OPEN),
    ]
    assert order.order_type is OrderType.LIMIT
    assert order.limit_price == pytest.approx(-1.25)
    assert order.client_order_id == request.client_order_id


def test_more_than_four_legs_is_refused_locally() -> None:
    legs = tuple(Leg(_occ("C", 580 + 5 * i), "buy", 1, "option") for i in range(5))
    with pytest.raises(InvalidOrderError, match="at most 4"):
        OrderRequest(legs=legs)


def test_futures_are_behind_a_flag(tradier: Harness) -> None:
    request = OrderRequest.single("ESZ25", "buy", 1, asset_class="future", intent="es")
    assert tradier.adapter.capabilities["futures"] is False
    with pytest.raises(NotSupportedError, match="enable_futures=True"):
        tradier.adapter.place_order(request)
    assert tradier.fake.requests_to("POST", r"/orders$") == []

    with tradier.make_adapter(enable_futures=True) as adapter:
        assert adapter.capabilities["futures"] is True
        order = adapter.place_order(request)
        assert order.state is OrderState.FILLED
        form = tradier.fake.requests_to("POST", r"/orders$")[0].form()
        assert (form["class"], form["symbol"], form["side"]) == ("future", "/ESZ25", "buy")
        (position,) = adapter.get_positions()
        assert (position.symbol, position.quantity, position.asset_class) == ("ESZ25", 1, AssetClass.FUTURE)


def test_single_option_order_and_option_chain(tradier: Harness) -> None:
    adapter = tradier.adapter
    expirations = adapter.get_option_expirations("SPY")
    assert expirations == [date(2025, 11, 21), date(2025, 11, 28), date(2025, 12, 19)]
    chain = adapter.get_option_chain("SPY", expirations[0])
    assert len(chain) == 10
    call_590 = next(c for c in chain if c.strike == 590 and c.right == "call")
    assert call_590.symbol == _occ("C", 590)
    assert call_590.expiration == expirations[0]
    assert call_590.delta is not None and 0 < call_590.delta < 1
    assert call_590.implied_volatility == pytest.approx(0.145)
    assert adapter.get_option_expirations("NOPE") == []

    order = adapter.place_order(
        OrderRequest.single(call_590.symbol, "buy", 2, asset_class="option", intent="call")
    )
    form = tradier.fake.requests_to("POST", r"/orders$")[0].form()
    assert (form["class"], form["symbol"], form["option_symbol"], form["side"]) == (
        "option",
        "SPY",
        call_590.symbol,
        "buy_to_open",
    )
    assert order.state is OrderState.FILLED
    (position,) = adapter.get_positions()
    assert (position.symbol, position.quantity, position.asset_class) == (
        call_590.symbol,
        2,
        AssetClass.OPTION,
    )
    assert position.avg_price == pytest.approx(call_590.ask)  # cost basis / (qty * 100)


def test_bracket_form_is_otoco_with_closing_exits(tradier: Harness) -> None:
    request = OrderRequest.single(
        "SPY", "buy", 5, take_profit=620, stop_loss=560, time_in_force="gtc", intent="b"
    )
    form = tradier.adapter.build_order_form(request)
    assert form["class"] == "otoco"
    assert (form["type[0]"], form["side[0]"], form["symbol[0]"]) == ("market", "buy", "SPY")
    assert (form["type[1]"], form["side[1]"], form["price[1]"]) == ("limit", "sell", "620.00")
    assert (form["type[2]"], form["side[2]"], form["stop[2]"]) == ("stop", "sell", "560.00")
    single_exit = tradier.adapter.build_order_form(
        OrderRequest.single("SPY", "buy", 5, stop_loss=560, intent="c")
    )
    assert single_exit["class"] == "oto" and "type[2]" not in single_exit


def test_side_mapping() -> None:
    assert tradier_side(Leg("SPY", "sell", 1, "equity", "open")) == "sell_short"
    assert tradier_side(Leg("SPY", "buy", 1, "equity", "close")) == "buy_to_cover"
    assert tradier_side(Leg("SPY", "sell", 1)) == "sell"
    assert tradier_side(Leg(_occ("C", 590), "sell", 1, "option", "close")) == "sell_to_close"
    assert tradier_side(Leg(_occ("C", 590), "buy", 1, "option")) == "buy_to_open"


def test_quantity_change_and_ioc_are_refused(tradier: Harness) -> None:
    order = tradier.adapter.place_order(tradier.resting_buy(intent="q"))
    with pytest.raises(NotSupportedError, match="cancel it and place a new order"):
        tradier.adapter.replace_order(order.order_id, quantity=20)
    with pytest.raises(NotSupportedError, match="ioc"):
        tradier.adapter.place_order(OrderRequest.single("SPY", "buy", 1, time_in_force="ioc"))


def test_broker_refusal_and_unknown_order(tradier: Harness) -> None:
    with pytest.raises(InvalidOrderError, match="Invalid symbol"):
        tradier.adapter.place_order(OrderRequest.single("ZZZZ", "buy", 1, intent="bad"))
    from brokers import InsufficientFundsError, OrderNotFoundError

    with pytest.raises(InsufficientFundsError, match="buying power"):
        tradier.adapter.place_order(OrderRequest.single("SPY", "buy", 10_000, intent="big"))
    with pytest.raises(OrderNotFoundError):
        tradier.adapter.get_order("999999")


def _mock_adapter(routes: dict[str, Any]) -> TradierAdapter:
    def handler(request: httpx.Request) -> httpx.Response:
        body = routes[request.url.path]
        return httpx.Response(200, content=json.dumps(body), headers={"Content-Type": "application/json"})

    return TradierAdapter(
        "token-abcdefgh",
        "VA1",
        base_url="https://sandbox.tradier.com/v1",
        transport=httpx.MockTransport(handler),
    )


def test_quirks_single_objects_null_strings_and_null_collections() -> None:
    """Tradier's JSON quirks, through httpx.MockTransport (no server needed)."""
    adapter = _mock_adapter(
        {
            "/v1/accounts/VA1/positions": {
                "positions": {
                    "position": {
                        "cost_basis": 2270.0,
                        "date_acquired": "2025-11-14T14:41:11.405Z",
                        "id": 7,
                        "quantity": 10.0,
                        "symbol": "AAPL",
                    }
                }
            },
            "/v1/accounts/VA1/orders": {"orders": "null"},
            "/v1/markets/quotes": {
                "quotes": {
                    "quote": {
                        "symbol": "AAPL",
                        "bid": 227.4,
                        "ask": "null",
                        "last": 227.43,
                        "bidsize": 3,
                        "asksize": "null",
                        "trade_date": 0,
                    }
                }
            },
            "/v1/markets/options/expirations": {"expirations": {"date": "2025-11-21"}},
        }
    )
    (position,) = adapter.get_positions()
    assert (position.symbol, position.quantity, position.avg_price) == ("AAPL", 10.0, 227.0)
    assert adapter.list_open_orders() == []
    quote = adapter.get_quote("AAPL")
    assert (quote.bid, quote.ask, quote.ask_size, quote.mid) == (227.4, None, None, 227.43)
    assert adapter.get_option_expirations("AAPL") == [date(2025, 11, 21)]


def test_live_url_needs_explicit_permission() -> None:
    with pytest.raises(ValueError, match="allow_live=True"):
        TradierAdapter("key-123456789", "VA1", base_url="https://api.tradier.com/v1")
    TradierAdapter("key-123456789", "VA1", base_url="https://api.tradier.com/v1", allow_live=True).close()


def test_lumibot_tradier_data_reads_the_fake_without_rewriting_lumiwealth(tradier: Harness) -> None:
    """The deployments' Tradier data source reads bars and quotes from the adapter's base URL; lumiwealth's
    module constants (its default URLs) stay as they are."""
    import lumiwealth_tradier.base as lumi_base
    from lumibot.entities import Asset

    from brokers.lumibot_tradier import TradierMarketData

    original = (lumi_base.TRADIER_SANDBOX_URL, lumi_base.TRADIER_LIVE_URL)
    data = TradierMarketData(
        tradier.fake.base_url, tradier.fake.account_id, tradier.fake.token, paper=True, delay=0
    )
    tradier.fake.all_hours = True
    assert data.get_last_price(Asset("SPY", asset_type="stock")) == pytest.approx(590.12)
    bars = data.get_historical_prices(Asset("SPY", asset_type="stock"), 5, "minute")
    assert bars is not None and len(bars.df) >= 1
    assert tradier.fake.history_requests >= 1
    assert original == (lumi_base.TRADIER_SANDBOX_URL, lumi_base.TRADIER_LIVE_URL)
