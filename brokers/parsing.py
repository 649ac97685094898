"""Reading brokers' answers: OCC option symbols, numbers in vendor JSON, one-or-many JSON values, the earliest of
several orders."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brokers.base import Order

_OCC_RE = re.compile(r"^(?P<root>[A-Z.]{1,6})(?P<date>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


@dataclass(frozen=True)
class OccSymbol:
    """A parsed OCC option symbol such as ``SPY240307C00510000``."""

    root: str
    expiration: date
    right: str  # "call" | "put"
    strike: float


def parse_occ_symbol(symbol: str) -> OccSymbol | None:
    """Parse an OCC option symbol; ``None`` when ``symbol`` is not one (e.g. a plain ticker)."""
    match = _OCC_RE.match(symbol.upper().replace(" ", ""))
    if not match:
        return None
    yymmdd = match["date"]
    expiration = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    return OccSymbol(
        root=match["root"],
        expiration=expiration,
        right="call" if match["right"] == "C" else "put",
        strike=int(match["strike"]) / 1000.0,
    )


def first_or_none(items: Iterable[Order]) -> Order | None:
    """The earliest order (by creation time, then id) of ``items``; None when empty."""
    ordered = sorted(
        items,
        key=lambda o: (o.created_at.timestamp() if o.created_at else float("-inf"), _numeric_id(o.order_id)),
    )
    return ordered[0] if ordered else None


def parse_number(value: Any) -> float | None:
    """A number from a broker's JSON: None for null, empty or "null" / "none" / "nan" text, or no number."""
    if value is None or value == "" or (isinstance(value, str) and value.lower() in {"null", "none", "nan"}):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _numeric_id(order_id: str) -> tuple[int, str]:
    return (int(order_id), "") if order_id.isdigit() else (0, order_id)


__all__ = ["OccSymbol", "first_or_none", "parse_number", "parse_occ_symbol"]


def as_list(value: Any) -> list[Any]:
    """A JSON value that may be one element, a list or nothing (Tradier returns one element as an object
    and none as ``"null"``): always a list."""
    if value is None or value == "null" or value == "":
        return []
    if isinstance(value, list):
        return value
    return [value]
