"""Which broker trades which market: the one registry from a spec's instrument type to its broker.

    stock, option  Tradier (sandbox for paper)
    future         Tradier, only with FARM_ENABLE_FUTURES=1 (Tradier's futures API is a feature the account
                   must be approved for, and its order form is verified only against the local fake)
    forex          TradeLocker (TrendMarkets; the demo environment for paper)

``search promote`` picks the broker here, the live strategy (:func:`brokers.live.live_problem`) refuses
what its broker does not trade here, and the paper runner turns the Tradier adapter's futures on when the
flag is (``brokers.paper.BROKERS``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

FUTURES_FLAG = "FARM_ENABLE_FUTURES"


class UnsupportedMarket(ValueError):
    """No broker trades this instrument here (or not without a flag); the message says what to do."""


@dataclass(frozen=True)
class MarketRoute:
    instrument_type: str
    broker: str
    flag: str | None = None  # an environment variable that must be 1 for this route


MARKETS: dict[str, MarketRoute] = {
    "stock": MarketRoute("stock", "tradier"),
    "option": MarketRoute("option", "tradier"),
    "future": MarketRoute("future", "tradier", FUTURES_FLAG),
    "forex": MarketRoute("forex", "tradelocker"),
}


def flag_on(name: str, environ: Mapping[str, str] | None = None) -> bool:
    value = (environ if environ is not None else os.environ).get(name, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def futures_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``FARM_ENABLE_FUTURES`` is set to 1 (or true/yes/on)."""
    return flag_on(FUTURES_FLAG, environ)


def instrument_types(broker: str) -> tuple[str, ...]:
    """The instrument types ``broker`` trades here (flagged ones included)."""
    return tuple(t for t, route in MARKETS.items() if route.broker == broker)


def broker_for(
    instrument_type: str, wanted: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The broker that trades ``instrument_type`` (``wanted`` must be that broker when given). Raises
    :class:`UnsupportedMarket` for an unknown type, a flag that is off, or the wrong broker."""
    route = MARKETS.get(instrument_type)
    if route is None:
        raise UnsupportedMarket(
            f"no broker trades {instrument_type!r} instruments here; tradable types: {', '.join(MARKETS)}"
        )
    if route.flag is not None and not flag_on(route.flag, environ):
        raise UnsupportedMarket(
            f"{instrument_type} trading on {route.broker} is behind a feature flag: set {route.flag}=1 once the "
            f"{route.broker} account is approved for {instrument_type}s"
        )
    if wanted is not None and wanted != route.broker:
        trades = " and ".join(instrument_types(wanted)) or "nothing"
        raise UnsupportedMarket(
            f"--broker {wanted} does not trade {instrument_type} here ({wanted} trades {trades}); "
            f"{instrument_type} trades on {route.broker}"
        )
    return route.broker
