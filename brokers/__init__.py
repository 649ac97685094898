"""Broker adapters (Tradier, TradeLocker) behind one interface, their errors, credentials and risk limits.

See ``brokers/base.py`` for the interface and its idempotency guarantee. Every order of every deployment,
paper or live, goes through an adapter: :mod:`brokers.lumibot_broker` is the one Lumibot broker over any
adapter (:mod:`brokers.lumibot_tradier`, :mod:`brokers.lumibot_tradelocker` add each broker's data source),
the deployment's risk limits are the adapter's ``risk_guard``, and a position's stop and target are held at
the broker as one protection (Tradier OCO, TradeLocker position stop-loss/take-profit). Adding a broker
means one adapter (a REST one on :class:`brokers.rest.HttpAdapter`, which holds the HTTP error rules) and one
entry in :data:`brokers.paper.BROKERS`.
"""

# The package's interface is its modules' public names: one list each (their __all__), not a copy here.
from brokers import base, credentials, errors, risk
from brokers.base import *  # noqa: F403
from brokers.credentials import *  # noqa: F403
from brokers.errors import *  # noqa: F403
from brokers.risk import *  # noqa: F403
from brokers.tradelocker import TradeLockerAdapter, lots_to_units, units_to_lots
from brokers.tradier import TradierAdapter

__all__ = [
    *base.__all__,
    *credentials.__all__,
    *errors.__all__,
    *risk.__all__,
    "TradeLockerAdapter",
    "TradierAdapter",
    "lots_to_units",
    "units_to_lots",
]
