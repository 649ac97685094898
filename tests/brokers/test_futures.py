"""Futures contracts (brokers/futures.py) and the Tradier adapter's futures support against the fake:
listed contracts and their last trading days, the front month by the last session's volume, Tradier's
``/MESZ26`` spelling, positions' average price per point, and the feature flag."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from brokers import NotSupportedError, OrderRequest
from brokers.futures import FuturesContract, contract_of, front_contract, listed_contracts


def test_listed_contracts_and_their_last_trading_days() -> None:
    # equity-index contracts expire on the third Friday of their quarter month
    assert [(c.ticker, c.last_trade) for c in listed_contracts("MES", dt.date(2026, 12, 18))] == [
        ("MESZ26", dt.date(2026, 12, 18)),
        ("MESH27", dt.date(2027, 3, 19)),
    ]
    assert listed_contracts("MES", dt.date(2026, 12, 19))[0].ticker == "MESH27"  # Z26 has expired
    # gold is left at the last session before its contract month (before first notice)
    assert [c.ticker for c in listed_contracts("GC", dt.date(2026, 12, 1))] == ["GCG27", "GCJ27"]
    assert contract_of("/MESZ26") == FuturesContract("MES", 2026, 12)
    assert (contract_of("MESZ26").tradier_symbol, contract_of("MESZ26").multiplier) == ("/MESZ26", 5.0)
    assert contract_of("ESH27").tick_size == 0.25
    with pytest.raises(ValueError, match="unknown futures root 'ZZ'"):
        listed_contracts("ZZ", dt.date(2026, 12, 1))


def test_the_front_month_is_the_nearer_contract_unless_the_next_traded_more() -> None:
    day = dt.date(2026, 12, 10)
    volumes = {"MESZ26": 900_000.0, "MESH27": 400_000.0}
    assert front_contract("MES", day, lambda c: volumes.get(c.ticker)).ticker == "MESZ26"
    volumes["MESH27"] = 1_100_000.0  # the volume crossed over: the store's continuous series rolls
    assert front_contract("MES", day, lambda c: volumes.get(c.ticker)).ticker == "MESH27"
    assert front_contract("MES", day, lambda c: None).ticker == "MESZ26"  # unknown: the nearer one


def test_tradier_adapter_names_the_front_month_and_books_futures_per_point(tradier: Any) -> None:
    fake = tradier.fake
    fake.set_quote("/MESZ26", 6000.00, 6000.25, 6000.25)
    fake.set_quote("/MESH27", 6050.00, 6050.25, 6050.25)
    fake.session_volumes.update({"/MESZ26": 800_000, "/MESH27": 200_000})
    with pytest.raises(NotSupportedError, match="enable_futures=True"):
        tradier.adapter.front_month("MES", dt.date(2026, 12, 10))
    with tradier.make_adapter(enable_futures=True) as adapter:
        assert adapter.front_month("MES", dt.date(2026, 12, 10)).ticker == "MESZ26"
        fake.session_volumes["/MESH27"] = 1_000_000
        assert adapter.front_month("MES", dt.date(2026, 12, 10)).ticker == "MESH27"
        assert adapter.session_volume("/MESH27", dt.date(2026, 12, 10)) == 1_000_000
        assert adapter.session_volume("/MESH27", dt.date(2026, 12, 6)) == 1_000_000  # Friday's, on Sunday
        adapter.place_order(OrderRequest.single("MESZ26", "sell", 3, asset_class="future", intent="t"))
        (position,) = adapter.get_positions()
        # Tradier's cost basis is dollars; the average price is per point of the 5-dollar contract
        assert (position.symbol, position.quantity, position.avg_price) == (
            "MESZ26",
            -3,
            pytest.approx(6000.00),
        )
    form = fake.requests_to("POST", r"/orders$")[0].form()
    assert (form["class"], form["symbol"], form["side"], form["quantity"]) == (
        "future",
        "/MESZ26",
        "sell",
        "3",
    )
