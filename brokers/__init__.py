"""Broker adapters (Tradier, TradeLocker) behind one interface, their errors, credentials and risk limits.

See ``brokers/base.py`` for the interface and its idempotency guarantee. Every order of every deployment,
paper or live, goes through an adapter: :mod:`brokers.lumibot_broker` is the one Lumibot broker over any
adapter (:mod:`brokers.lumibot_tradier`, :mod:`brokers.lumibot_tradelocker` add each broker's data source),
the deployment's risk limits are the adapter's ``risk_guard``, and a position's stop and target are held at
the broker as one protection (Tradier OCO, TradeLocker position stop-loss/take-profit). Adding a broker
means one adapter and one entry in :data:`brokers.paper.BROKERS`.
"""

from brokers.base import (
    AssetClass,
    Balance,
    BrokerAdapter,
    FlattenResult,
    Leg,
    OptionContract,
    Order,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Position,
    PositionEffect,
    Protection,
    Quote,
    Side,
    TimeInForce,
)
from brokers.credentials import (
    CredentialsError,
    TradeLockerCredentials,
    TradierCredentials,
    load_tradelocker_credentials,
    load_tradier_credentials,
)
from brokers.errors import (
    AuthenticationError,
    BrokerError,
    InsufficientFundsError,
    InvalidOrderError,
    NotSupportedError,
    OrderNotFoundError,
    TemporaryBrokerError,
    mask_secret,
    retrier,
)
from brokers.risk import RiskGuard, RiskLimitBreached, RiskLimits
from brokers.tradelocker import TradeLockerAdapter, lots_to_units, units_to_lots
from brokers.tradier import TradierAdapter

__all__ = [
    "AssetClass",
    "AuthenticationError",
    "Balance",
    "BrokerAdapter",
    "BrokerError",
    "CredentialsError",
    "FlattenResult",
    "InsufficientFundsError",
    "InvalidOrderError",
    "Leg",
    "NotSupportedError",
    "OptionContract",
    "Order",
    "OrderNotFoundError",
    "OrderRequest",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "Position",
    "PositionEffect",
    "Protection",
    "Quote",
    "RiskGuard",
    "RiskLimitBreached",
    "RiskLimits",
    "Side",
    "TemporaryBrokerError",
    "TimeInForce",
    "TradeLockerAdapter",
    "TradeLockerCredentials",
    "TradierAdapter",
    "TradierCredentials",
    "load_tradelocker_credentials",
    "load_tradier_credentials",
    "lots_to_units",
    "mask_secret",
    "retrier",
    "units_to_lots",
]
