"""The registry from instrument type to broker (brokers/markets.py): forex on TradeLocker, stocks and
options on Tradier, futures on Tradier only behind FARM_ENABLE_FUTURES, clear refusals otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_the_tradier_registry_entry_trades_futures_only_under_the_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``brokers.paper.BROKERS``: the Tradier entry's adapter options follow FARM_ENABLE_FUTURES at each call
    (the paper runner's adapter trades futures only under it); a caller's own option wins (flattening a
    futures deployment works whatever the flag says)."""
    from brokers.paper import make_adapter

    env_file = tmp_path / ".env"
    env_file.write_text("TRADIER_API_KEY=test-key\nTRADIER_ACCOUNT_ID=VA00000001\n")
    for name in ("TRADIER_API_KEY", "TRADIER_ACCOUNT_ID", "TRADIER_BASE_URL", "FARM_ENABLE_FUTURES"):
        monkeypatch.delenv(name, raising=False)

    def futures_on(**options: Any) -> bool:
        with make_adapter("tradier", "paper", env_file=env_file, **options) as adapter:
            return adapter.has("futures")

    assert not futures_on()
    assert futures_on(enable_futures=True)
    monkeypatch.setenv("FARM_ENABLE_FUTURES", "1")
    assert futures_on()
    assert not futures_on(enable_futures=False)
