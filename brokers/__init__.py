"""Broker adapters (Tradier, TradeLocker) behind one interface, their errors, credentials and risk limits.

See ``brokers/base.py`` for the interface and its idempotency guarantee.
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
from brokers.tradier import TradierAdapter, point_lumiwealth_at

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
    "point_lumiwealth_at",
    "units_to_lots",
]
