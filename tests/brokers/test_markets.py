"""The registry from instrument type to broker (brokers/markets.py): forex on TradeLocker, stocks and
options on Tradier, futures on Tradier only behind FARM_ENABLE_FUTURES, clear refusals otherwise."""

from __future__ import annotations

import pytest

from brokers.markets import UnsupportedMarket, broker_for, futures_enabled, instrument_types


def test_each_instrument_type_has_its_broker() -> None:
    on = {"FARM_ENABLE_FUTURES": "1"}
    assert [broker_for(t, environ=on) for t in ("stock", "option", "future", "forex")] == [
        "tradier",
        "tradier",
        "tradier",
        "tradelocker",
    ]
    assert broker_for("forex", "tradelocker", environ={}) == "tradelocker"
    assert instrument_types("tradelocker") == ("forex",)
    assert futures_enabled({"FARM_ENABLE_FUTURES": "true"}) and not futures_enabled(
        {"FARM_ENABLE_FUTURES": "0"}
    )


def test_refusals_say_what_to_do() -> None:
    with pytest.raises(
        UnsupportedMarket, match="set FARM_ENABLE_FUTURES=1 once the tradier account is approved"
    ):
        broker_for("future", environ={})
    with pytest.raises(
        UnsupportedMarket, match=r"--broker tradier does not trade forex here .* forex trades on tradelocker"
    ):
        broker_for("forex", "tradier", environ={})
    with pytest.raises(UnsupportedMarket, match="tradelocker trades forex"):
        broker_for("stock", "tradelocker", environ={})
    with pytest.raises(UnsupportedMarket, match="no broker trades 'crypto' instruments here"):
        broker_for("crypto", environ={})
