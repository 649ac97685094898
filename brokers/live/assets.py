"""Lumibot orders and assets as the broker sees them: an order's unrounded fill price, an asset's broker
symbol (OCC for options), whether two assets are one instrument."""

from __future__ import annotations

import math
from typing import Any

from data.flatfiles import occ_ticker


def fill_price(order: Any) -> float | None:
    """An order's average fill price, unrounded (Lumibot's ``get_fill_price`` rounds to cents, which
    would move a forex position's levels by up to half a cent)."""
    price = getattr(order, "avg_fill_price", None)
    if price is None:
        fills = [
            (t.price, t.quantity) for t in getattr(order, "transactions", None) or [] if t.price is not None
        ]
        total = sum(float(q) for _, q in fills)
        price = sum(float(p) * float(q) for p, q in fills) / total if total else None
    if price is None:
        return None
    value = float(price)
    return value if math.isfinite(value) and value > 0 else None


def broker_symbol(asset: Any) -> str:
    """The broker's symbol of a Lumibot asset: the ticker, or the OCC symbol of an option."""
    if str(asset.asset_type) != "option":
        return str(asset.symbol)
    right = "C" if str(asset.right).upper().startswith("C") else "P"
    return occ_ticker(str(asset.symbol), asset.expiration, right, float(asset.strike)).removeprefix("O:")


def same_asset(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return (
        str(a.symbol) == str(b.symbol)
        and str(a.asset_type) == str(b.asset_type)
        and getattr(a, "expiration", None) == getattr(b, "expiration", None)
        and float(getattr(a, "strike", 0) or 0) == float(getattr(b, "strike", 0) or 0)
        and str(getattr(a, "right", "") or "").upper()[:1] == str(getattr(b, "right", "") or "").upper()[:1]
    )
