"""The broker adapter interface, its data types and its guarantees.

One :class:`BrokerAdapter` subclass per broker (``tradier.py``, ``tradelocker.py``). Strategies and
the deployment code talk only to this interface; vendor specifics (form encoding, column-oriented
JSON, lots, tags) stay inside the subclass.

Units, the same for every adapter:

* ``Leg.quantity`` / ``Position.quantity``: shares for equities, contracts for options and futures,
  base-currency units for forex (10,000 EURUSD = 0.1 lot; XAUUSD in ounces). Adapters convert to the
  broker's own unit (TradeLocker lots) at the boundary. ``Position.quantity`` is signed (short < 0).
* Prices are in the quote currency; a multi-leg limit price is the net price of one spread:
  ``> 0`` is a debit, ``< 0`` a credit, ``0`` even.

Idempotency guarantee (what makes retries safe):

* Every :class:`OrderRequest` carries a ``client_order_id``. When the caller gives none it is derived
  deterministically from the order's content and ``intent`` (so the same intent always gives the same
  id, and a restarted process re-submitting the same intent finds its earlier order).
* :meth:`BrokerAdapter.place_order` first asks the broker for an order with that client id and
  returns it if it exists, without submitting again.
* When the submit itself fails with a :class:`~brokers.errors.TemporaryBrokerError` (timeout, 429,
  5xx) the order may or may not have reached the broker. The adapter then looks the client id up
  again *before* any retry and returns the found order; it only re-submits when the broker
  positively does not have it. A retry therefore never creates a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self

from brokers.errors import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_RETRIES,
    BrokerError,
    InvalidOrderError,
    NotSupportedError,
    TemporaryBrokerError,
    backoff_delay,
    retrier,
)
from brokers.parsing import OccSymbol, first_or_none, parse_number, parse_occ_symbol

if TYPE_CHECKING:
    from brokers.risk import RiskGuard

logger = logging.getLogger(__name__)


class AssetClass(StrEnum):
    """An instrument type (:data:`spec_space.instruments.InstrumentType`) as the brokers name it."""

    EQUITY = "equity"
    OPTION = "option"
    FUTURE = "future"
    # Spot FX and the FX-style CFDs (metals such as XAUUSD) that TradeLocker brokers quote in lots.
    FOREX = "forex"

    @classmethod
    def of(cls, instrument_type: str) -> AssetClass:
        """The asset class of an instrument type (or of a Lumibot ``asset_type``: ``cont_future`` is a future)."""
        return _BY_INSTRUMENT_TYPE.get(str(instrument_type), cls.EQUITY)


_BY_INSTRUMENT_TYPE: dict[str, AssetClass] = {
    "stock": AssetClass.EQUITY,
    "option": AssetClass.OPTION,
    "future": AssetClass.FUTURE,
    "cont_future": AssetClass.FUTURE,
    "forex": AssetClass.FOREX,
}


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class PositionEffect(StrEnum):
    OPEN = "open"
    CLOSE = "close"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"


class OrderState(StrEnum):
    PENDING = "pending"  # accepted by the API, not yet working at the venue
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATES


_FINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED})

MAX_LEGS = 4
# TradeLocker's strategyId holds at most 31 characters and Tradier's tag allows letters, digits and
# dashes only: a client order id must satisfy both so one id works at every broker.
CLIENT_ORDER_ID_MAX_LEN = 31
_CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,31}$")


@dataclass(frozen=True)
class OrderChanges:
    """What :meth:`BrokerAdapter.replace_order` changes in a working order; None keeps the field."""

    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce | None = None


@dataclass(frozen=True)
class Leg:
    """One instrument in an order.

    ``position_effect`` matters for options (Tradier's buy_to_open / sell_to_close ...) and for
    equity shorts (sell + open = sell short, buy + close = buy to cover). ``None`` means "open" for
    options and a plain buy/sell for equities.
    """

    symbol: str
    side: Side
    quantity: float
    asset_class: AssetClass = AssetClass.EQUITY
    position_effect: PositionEffect | None = None

    def __post_init__(self) -> None:
        # Accept plain strings ("buy", "option") from callers and YAML, store the enums.
        object.__setattr__(self, "side", _coerce(Side, self.side, "side"))
        object.__setattr__(self, "asset_class", _coerce(AssetClass, self.asset_class, "asset_class"))
        if self.position_effect is not None:
            object.__setattr__(
                self, "position_effect", _coerce(PositionEffect, self.position_effect, "position_effect")
            )
        if not self.symbol or not self.symbol.strip():
            raise InvalidOrderError("Leg.symbol is empty: expected a ticker, OCC option symbol or FX pair")
        if not self.quantity > 0:
            raise InvalidOrderError(
                f"Leg {self.symbol}: quantity must be > 0 (got {self.quantity!r}); use side='sell' to sell"
            )

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side is Side.BUY else -self.quantity

    @property
    def underlying(self) -> str:
        """The underlying ticker of an option leg (from its OCC symbol), else the symbol itself."""
        occ = parse_occ_symbol(self.symbol) if self.asset_class is AssetClass.OPTION else None
        return occ.root if occ else self.symbol


@dataclass(frozen=True)
class OrderRequest:
    """What the caller wants to trade. Validated on construction; immutable.

    * 1 leg: equity, option, future or forex order; optional ``take_profit`` / ``stop_loss`` make it
      a bracket (entry plus attached exits, one cancels the other).
    * 2-4 legs: a multi-leg option order (all legs options on one underlying), ``order_type`` market
      or limit with a net ``limit_price`` (> 0 debit, < 0 credit, 0 even).
    * ``intent`` distinguishes deliberate repeats of an identical order (pass e.g. the deployment id
      and bar timestamp); two requests with the same content and intent share one client order id and
      are therefore the same order as far as :meth:`BrokerAdapter.place_order` is concerned.
    * ``strategy_tag`` is informational (logs, reconciliation); it is not sent where the broker has a
      single tag field, because that field carries the client order id.
    * ``oco``: no entry. The single leg closes an open position at ``take_profit`` (a limit) or
      ``stop_loss`` (a stop), whichever comes first; the broker cancels the other (Tradier
      ``class=oco``). Built by :meth:`BrokerAdapter.protect_position`.
    """

    legs: tuple[Leg, ...]
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    take_profit: float | None = None
    stop_loss: float | None = None
    strategy_tag: str | None = None
    intent: str = ""
    client_order_id: str | None = None
    oco: bool = False

    def __post_init__(self) -> None:
        legs = tuple(self.legs) if not isinstance(self.legs, Leg) else (self.legs,)
        object.__setattr__(self, "legs", legs)
        object.__setattr__(self, "order_type", _coerce(OrderType, self.order_type, "order_type"))
        object.__setattr__(self, "time_in_force", _coerce(TimeInForce, self.time_in_force, "time_in_force"))
        self._validate()
        if self.client_order_id is None:
            object.__setattr__(self, "client_order_id", self._derive_client_order_id())
        elif not _CLIENT_ORDER_ID_RE.match(self.client_order_id):
            raise InvalidOrderError(
                f"client_order_id {self.client_order_id!r} is invalid: expected 1-{CLIENT_ORDER_ID_MAX_LEN} "
                "letters, digits or '-' (Tradier tag and TradeLocker strategyId rules)"
            )

    @classmethod
    def single(
        cls,
        symbol: str,
        side: Side | str,
        quantity: float,
        *,
        asset_class: AssetClass | str = AssetClass.EQUITY,
        position_effect: PositionEffect | str | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build a one-leg request; keyword arguments are the other :class:`OrderRequest` fields."""
        leg = Leg(
            symbol=symbol,
            side=side,  # type: ignore[arg-type]  # coerced in Leg.__post_init__
            quantity=quantity,
            asset_class=asset_class,  # type: ignore[arg-type]
            position_effect=position_effect,  # type: ignore[arg-type]
        )
        return cls(legs=(leg,), **kwargs)

    @property
    def leg(self) -> Leg:
        """The only leg of a single-leg order."""
        if len(self.legs) != 1:
            raise InvalidOrderError(f"order {self.client_order_id} has {len(self.legs)} legs, not 1")
        return self.legs[0]

    @property
    def is_multileg(self) -> bool:
        return len(self.legs) > 1

    @property
    def is_bracket(self) -> bool:
        return self.take_profit is not None or self.stop_loss is not None

    @property
    def asset_classes(self) -> frozenset[AssetClass]:
        return frozenset(leg.asset_class for leg in self.legs)

    def _validate(self) -> None:
        if not self.legs:
            raise InvalidOrderError("OrderRequest.legs is empty: expected 1 to 4 legs")
        if len(self.legs) > MAX_LEGS:
            raise InvalidOrderError(
                f"OrderRequest has {len(self.legs)} legs: at most {MAX_LEGS} are supported"
            )
        if self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and self.limit_price is None:
            raise InvalidOrderError(f"{self.order_type.value} order needs limit_price")
        if self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and self.stop_price is None:
            raise InvalidOrderError(f"{self.order_type.value} order needs stop_price")
        if self.order_type is OrderType.MARKET and (
            self.limit_price is not None or self.stop_price is not None
        ):
            raise InvalidOrderError("market order must not carry limit_price/stop_price")
        if self.is_multileg:
            if any(leg.asset_class is not AssetClass.OPTION for leg in self.legs):
                raise InvalidOrderError("multi-leg orders must consist of option legs only")
            if len({leg.underlying for leg in self.legs}) != 1:
                raise InvalidOrderError("all legs of a multi-leg order must share one underlying")
            if self.order_type not in (OrderType.MARKET, OrderType.LIMIT):
                raise InvalidOrderError("multi-leg orders are market or limit (net debit/credit) only")
            if self.is_bracket:
                raise InvalidOrderError("take_profit/stop_loss are supported on single-leg orders only")
        elif self.limit_price is not None and self.limit_price <= 0:
            raise InvalidOrderError(
                f"limit_price must be > 0 for a single-leg order (got {self.limit_price})"
            )
        if self.is_bracket:
            self._validate_bracket()
        if self.oco and (not self.is_bracket or self.is_multileg or self.order_type is not OrderType.MARKET):
            raise InvalidOrderError(
                "an oco request is one leg with take_profit and/or stop_loss and no entry price"
            )

    def _validate_bracket(self) -> None:
        leg = self.legs[0]
        for name in ("take_profit", "stop_loss"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidOrderError(f"{name} must be a positive price (got {value})")
        if self.take_profit is not None and self.stop_loss is not None:
            # an oco's leg is the exit itself: a sell closes a long, whose target is above its stop
            long_entry = (leg.side is Side.BUY) != self.oco
            what = (
                ("exits of a long" if long_entry else "exits of a short")
                if self.oco
                else f"{leg.side.value} bracket"
            )
            if long_entry and not self.take_profit > self.stop_loss:
                raise InvalidOrderError(
                    f"{what}: take_profit must be > stop_loss (got {self.take_profit} <= {self.stop_loss})"
                )
            if not long_entry and not self.take_profit < self.stop_loss:
                raise InvalidOrderError(
                    f"{what}: take_profit must be < stop_loss (got {self.take_profit} >= {self.stop_loss})"
                )

    def _derive_client_order_id(self) -> str:
        # Canonical JSON of everything that makes the order what it is, so equal intents hash equally
        # across processes and Python versions (no hash() randomisation, keys sorted).
        payload = {
            "legs": [
                [
                    leg.symbol.upper(),
                    leg.side.value,
                    repr(float(leg.quantity)),
                    leg.asset_class.value,
                    leg.position_effect.value if leg.position_effect else None,
                ]
                for leg in self.legs
            ],
            "type": self.order_type.value,
            "limit": self.limit_price,
            "stop": self.stop_price,
            "tif": self.time_in_force.value,
            "tp": self.take_profit,
            "sl": self.stop_loss,
            "tag": self.strategy_tag,
            "intent": self.intent,
            **({"oco": True} if self.oco else {}),  # old ids unchanged
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return f"ssf-{digest[:24]}"


@dataclass(frozen=True)
class OrderStatus:
    """Where an order stands. ``remaining_quantity`` is ``None`` when the broker does not say."""

    order_id: str
    state: OrderState
    client_order_id: str | None = None
    filled_quantity: float = 0.0
    remaining_quantity: float | None = None
    avg_fill_price: float | None = None
    reason: str | None = None

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def is_open(self) -> bool:
        return not self.state.is_final


@dataclass(frozen=True)
class Order:
    """An order as the broker reports it. ``raw`` keeps the vendor record for debugging."""

    order_id: str
    client_order_id: str | None
    state: OrderState
    legs: tuple[Leg, ...]
    order_type: OrderType
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce | None = None
    filled_quantity: float = 0.0
    avg_fill_price: float | None = None
    take_profit: float | None = None
    stop_loss: float | None = None
    # Ids of the attached exit orders of a bracket (Tradier OTOCO legs, TradeLocker SL/TP orders).
    child_order_ids: tuple[str, ...] = ()
    created_at: datetime | None = None
    reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def status(self) -> OrderStatus:
        total = sum(leg.quantity for leg in self.legs) if len(self.legs) == 1 else None
        remaining = None if total is None else max(0.0, total - self.filled_quantity)
        return OrderStatus(
            order_id=self.order_id,
            state=self.state,
            client_order_id=self.client_order_id,
            filled_quantity=self.filled_quantity,
            remaining_quantity=remaining,
            avg_fill_price=self.avg_fill_price,
            reason=self.reason,
        )

    @property
    def symbol(self) -> str:
        return self.legs[0].underlying if len(self.legs) > 1 else self.legs[0].symbol


@dataclass(frozen=True)
class Position:
    """An open position. ``quantity`` is signed (short < 0) in :class:`Leg` units."""

    symbol: str
    quantity: float
    asset_class: AssetClass
    avg_price: float | None = None
    unrealized_pnl: float | None = None
    # Brokers that keep several positions per symbol (TradeLocker hedging accounts) identify each.
    position_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def side(self) -> Side:
        return Side.BUY if self.quantity > 0 else Side.SELL


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: float | None
    ask: float | None
    last: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    timestamp: datetime | None = None

    @property
    def mid(self) -> float | None:
        if self.bid is None or self.ask is None:
            return self.last
        return (self.bid + self.ask) / 2.0


@dataclass(frozen=True)
class Balance:
    """Account money. ``closed_pnl_today`` is realised PnL of the current trading day."""

    total_equity: float
    cash: float
    buying_power: float | None = None
    currency: str = "USD"
    open_pnl: float | None = None
    closed_pnl_today: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class OptionContract:
    symbol: str
    underlying: str
    expiration: date
    strike: float
    right: str  # "call" | "put"
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    volume: float | None = None
    open_interest: float | None = None
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None
    implied_volatility: float | None = None


@dataclass(frozen=True)
class FlattenResult:
    """What :meth:`BrokerAdapter.flatten_all` did: orders it canceled, closing orders it placed."""

    canceled_order_ids: tuple[str, ...]
    closing_orders: tuple[Order, ...]
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtectionRequest:
    """Exits to hold at the broker for an open position (:meth:`BrokerAdapter.protect_position`): ``side`` closes
    ``quantity`` units of the position in ``symbol`` at ``stop_loss`` and/or ``take_profit``. Like an
    :class:`OrderRequest`, the same request with the same ``intent`` is the same protection (submitted once)."""

    symbol: str
    side: Side
    quantity: float
    stop_loss: float | None = None
    take_profit: float | None = None
    asset_class: AssetClass = AssetClass.EQUITY
    intent: str = ""

    def __post_init__(self) -> None:
        # Accept plain strings ("sell", "forex") as Leg does, store the enums.
        object.__setattr__(self, "side", _coerce(Side, self.side, "side"))
        object.__setattr__(self, "asset_class", _coerce(AssetClass, self.asset_class, "asset_class"))


@dataclass(frozen=True)
class Protection:
    """A stop-loss and/or take-profit held at the broker for an open position, one cancelling the other
    (Tradier: an OCO order; TradeLocker: the position's own stopLoss/takeProfit). ``side`` closes the
    position; ``state`` is FILLED once either level closed it (``filled_by`` "stop_loss"/"take_profit")."""

    protection_id: str
    symbol: str
    side: Side
    quantity: float
    stop_loss: float | None
    take_profit: float | None
    state: OrderState
    filled_quantity: float = 0.0
    avg_fill_price: float | None = None
    filled_by: str | None = None
    order_ids: tuple[str, ...] = ()  # the broker's orders behind it (OCO legs, SL/TP orders)
    asset_class: AssetClass = AssetClass.EQUITY


class BrokerAdapter(ABC):
    """Base class of all broker adapters.

    Threading: an adapter holds one HTTP client and is meant for one trading loop (one thread).
    Share it between threads only behind a lock.

    Errors: every public method raises only :mod:`brokers.errors` types. Read methods are retried on
    temporary errors (``retry_count`` times, exponential backoff); see :meth:`place_order` for submits.

    Subclasses declare ``name`` and ``_capabilities`` and implement the abstract methods. They may
    add capabilities at construction (Tradier's ``enable_futures``) by updating ``self._caps``.
    """

    name: ClassVar[str] = "abstract"
    _capabilities: ClassVar[Mapping[str, bool]] = {
        "equity": False,
        "options": False,
        "multileg": False,
        "futures": False,
        "forex": False,
        "bracket": False,
        "replace": False,
        "option_chain": False,
    }
    # Extra advice appended to the NotSupportedError of a missing capability (how to turn it on).
    _capability_hints: ClassVar[Mapping[str, str]] = {}
    # Why this broker cannot change a working order's quantity (None: it can).
    _no_quantity_change: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        retry_count: int = DEFAULT_RETRIES,
        retry_backoff_base: float = DEFAULT_BACKOFF_BASE,
        retry_max_backoff: float = DEFAULT_MAX_BACKOFF,
        submit_settle_seconds: float = 1.0,
        risk_guard: RiskGuard | None = None,
    ) -> None:
        if retry_count < 0:
            raise ValueError(f"retry_count must be >= 0 (got {retry_count})")
        if retry_backoff_base < 0 or retry_max_backoff < 0 or submit_settle_seconds < 0:
            raise ValueError("retry_backoff_base, retry_max_backoff and submit_settle_seconds must be >= 0")
        self.retry_count = retry_count
        self.retry_backoff_base = retry_backoff_base
        self.retry_max_backoff = retry_max_backoff
        # After an uncertain submit the broker may need a moment to list the new order.
        self.submit_settle_seconds = submit_settle_seconds
        self.risk_guard = risk_guard
        self._caps: dict[str, bool] = dict(self._capabilities)

    # ----------------------------------------------------------------- capabilities
    @property
    def capabilities(self) -> dict[str, bool]:
        """What this adapter can do, e.g. ``{"options": True, "multileg": True, "futures": False}``."""
        return dict(self._caps)

    def has(self, capability: str) -> bool:
        return self._caps.get(capability, False)

    def check_request_supported(self, request: OrderRequest) -> None:
        """Raise :class:`NotSupportedError` when ``request`` needs something this adapter lacks.

        Called by :meth:`place_order` before anything is sent.
        """
        needed = {
            AssetClass.EQUITY: "equity",
            AssetClass.OPTION: "options",
            AssetClass.FUTURE: "futures",
            AssetClass.FOREX: "forex",
        }
        for asset_class in sorted(request.asset_classes):
            self._require(needed[asset_class], f"{asset_class.value} orders")
        if request.is_multileg:
            self._require("multileg", "multi-leg orders")
        if request.is_bracket:
            self._require("bracket", "bracket (take-profit/stop-loss) orders")

    def _require(self, capability: str, what: str) -> None:
        if not self.has(capability):
            hint = self._capability_hints.get(capability)
            advice = f": {hint}" if hint else f" (capabilities: {self.capabilities})"
            raise NotSupportedError(
                f"{what} are not supported by the {self.name} adapter{advice}", broker=self.name
            )

    # ----------------------------------------------------------------- account and market data
    @abstractmethod
    def get_balances(self) -> Balance:
        """Account equity, cash and buying power. Called before sizing and by the risk loop."""

    @abstractmethod
    def get_positions(self) -> list[Position]:
        """All open positions (empty list when flat). Called after fills and by :meth:`flatten_all`."""

    @abstractmethod
    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Latest quotes keyed by the requested symbol. Unknown symbols raise BrokerError."""

    def get_quote(self, symbol: str) -> Quote:
        """Latest quote of one symbol (convenience over :meth:`get_quotes`)."""
        return self.get_quotes([symbol])[symbol]

    def get_option_expirations(self, underlying: str) -> list[date]:
        """Listed expirations of ``underlying``, ascending. NotSupportedError without option data."""
        raise NotSupportedError(f"option chains are not available from {self.name}", broker=self.name)

    def get_option_chain(self, underlying: str, expiration: date) -> list[OptionContract]:
        """Every contract of ``underlying`` expiring on ``expiration``, with greeks when available."""
        raise NotSupportedError(f"option chains are not available from {self.name}", broker=self.name)

    # ----------------------------------------------------------------- orders
    @abstractmethod
    def get_order(self, order_id: str) -> Order:
        """The order with broker id ``order_id``; OrderNotFoundError when the broker has none."""

    def get_order_status(self, order_id: str) -> OrderStatus:
        """State, fills and average price of one order. Polled by the deployment loop."""
        return self.get_order(order_id).status

    @abstractmethod
    def list_open_orders(self) -> list[Order]:
        """Orders still working (not filled, canceled, rejected or expired)."""

    @abstractmethod
    def find_order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order this adapter submitted with ``client_order_id`` today, open or final, else None.

        Must see final orders too (a market order is filled by the time it is looked up), and must
        raise (not return None) when it cannot tell, since None licenses a re-submit.
        """

    @abstractmethod
    def _submit_order(self, request: OrderRequest) -> Order:
        """Send ``request`` once, carrying its client order id. Called only by :meth:`place_order`.

        Must not retry by itself; raise TemporaryBrokerError when the outcome is unknown.
        """

    @abstractmethod
    def cancel_order(self, order_id: str) -> OrderStatus:
        """Cancel a working order. Canceling an order that is already final is not an error: the
        final status is returned. Bracket parents cancel their attached exits too."""

    @retrier
    def replace_order(
        self,
        order_id: str,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForce | None = None,
    ) -> Order:
        """Modify a working order in place and return it as the broker now reports it.

        Fields left ``None`` keep their value. NotSupportedError when the broker cannot change that
        field (Tradier cannot change quantity: cancel and place a new order instead); InvalidOrderError
        when the order is already final. The change itself is :meth:`_send_replace`.
        """
        if quantity is not None and self._no_quantity_change:
            raise NotSupportedError(self._no_quantity_change, broker=self.name)
        current = self.get_order(order_id)
        if current.state.is_final:
            raise InvalidOrderError(
                f"order {order_id} is {current.state.value}; it cannot be modified", broker=self.name
            )
        self._send_replace(order_id, current, OrderChanges(quantity, limit_price, stop_price, time_in_force))
        return self.get_order(order_id)

    @abstractmethod
    def _send_replace(self, order_id: str, current: Order, changes: OrderChanges) -> None:
        """Send ``changes`` of the working order ``current`` once. Called only by :meth:`replace_order`,
        after the checks every broker shares; raise NotSupportedError for a change this broker refuses."""

    def _cancel_tolerating_final(
        self, order_id: str, send: Callable[[], object], *, refusals: tuple[type[BrokerError], ...]
    ) -> OrderStatus:
        """:meth:`cancel_order` for an adapter whose cancel request is ``send``: a refusal (``refusals``) of
        an order that is already final is the no-op the contract promises; its final status is returned."""
        try:
            send()
        except refusals as exc:
            current = self.get_order(order_id)
            if not current.state.is_final:
                raise
            logger.info("%s: order %s already %s (%s)", self.name, order_id, current.state.value, exc)
        return self.get_order(order_id).status

    def place_order(self, request: OrderRequest) -> Order:
        """Submit ``request`` at most once per client order id and return the broker's order.

        Sequence: capability check -> look up ``request.client_order_id`` (return the existing order
        if found) -> optional risk check -> submit. On a temporary failure of the submit the client
        id is looked up again (after ``submit_settle_seconds``) before any retry, so a request that
        reached the broker is never sent twice. Raises the translated broker error otherwise.
        """
        self.check_request_supported(request)
        cid = request.client_order_id
        assert cid is not None  # set in OrderRequest.__post_init__
        existing = self.find_order_by_client_id(cid)
        if existing is not None:
            logger.info(
                "%s: order %s already at broker as %s; not resubmitting", self.name, cid, existing.order_id
            )
            return existing
        if self.risk_guard is not None:
            self.risk_guard.check_order(request, self.get_positions())
        order = self._submit_with_reconcile(request)
        if self.risk_guard is not None:
            self.risk_guard.record_submission(request)
        return order

    def _submit_with_reconcile(self, request: OrderRequest) -> Order:
        cid = request.client_order_id
        assert cid is not None
        attempt = 0
        while True:
            try:
                return self._submit_order(request)
            except TemporaryBrokerError as exc:
                attempt += 1
                logger.warning(
                    "%s: submit of %s uncertain (%s); reconciling by client id", self.name, cid, exc
                )
                if self.submit_settle_seconds:
                    time.sleep(self.submit_settle_seconds)
                try:
                    existing = self.find_order_by_client_id(cid)
                except TemporaryBrokerError as lookup_exc:
                    raise TemporaryBrokerError(
                        f"submit of order {cid} had an unknown outcome and the lookup failed too "
                        f"({lookup_exc}); call place_order again with the same request to reconcile",
                        broker=self.name,
                    ) from lookup_exc
                if existing is not None:
                    logger.info(
                        "%s: order %s was recorded as %s despite the error", self.name, cid, existing.order_id
                    )
                    return existing
                if attempt > self.retry_count:
                    raise
                delay = backoff_delay(
                    attempt, self.retry_backoff_base, self.retry_max_backoff, exc.retry_after
                )
                logger.info("%s: order %s not at broker; resubmitting in %.2fs", self.name, cid, delay)
                if delay:
                    time.sleep(delay)

    def list_orders(self) -> list[Order]:
        """Today's orders, working and final (adapters that keep history override this)."""
        return self.list_open_orders()

    # ----------------------------------------------------------------- protections (exits held at the broker)
    def protect_position(self, request: ProtectionRequest) -> Protection:
        """Hold the request's ``stop_loss`` and/or ``take_profit`` at the broker for ``quantity`` units of the open
        position in ``symbol`` (``side`` closes it). Submitted at most once per ``intent``, like :meth:`place_order`."""
        raise NotSupportedError(f"{self.name} cannot hold a position's exits", broker=self.name)

    def get_protection(self, protection_id: str) -> Protection:
        """The protection ``protection_id`` as the broker now reports it (FILLED once a level closed the position)."""
        raise NotSupportedError(f"{self.name} cannot hold a position's exits", broker=self.name)

    def list_protections(self) -> list[Protection]:
        """Protections still working (a restarted deployment adopts them instead of placing new ones)."""
        return []

    def modify_protection(
        self, protection_id: str, *, stop_loss: float | None = None, take_profit: float | None = None
    ) -> Protection:
        """Move a working protection's levels in place (None keeps a level); returns it as it now stands."""
        raise NotSupportedError(f"{self.name} cannot hold a position's exits", broker=self.name)

    def cancel_protection(self, protection_id: str) -> Protection:
        """Remove a protection; the position stays open. A final one is returned as it is."""
        raise NotSupportedError(f"{self.name} cannot hold a position's exits", broker=self.name)

    # ----------------------------------------------------------------- flatten
    @abstractmethod
    def _close_position(self, position: Position) -> Order | None:
        """Send the order that closes ``position`` completely. Called by :meth:`flatten_all`."""

    def flatten_all(self) -> FlattenResult:
        """Cancel every working order, then close every open position (end of day, kill switch).

        Orders are canceled first so an attached stop cannot fire against the closing order. Errors
        on single orders/positions are collected, not raised, so one failure does not leave the rest
        of the book open; check ``FlattenResult.errors`` and :meth:`get_positions` afterwards.
        """
        canceled: list[str] = []
        errors: list[str] = []
        for order in self.list_open_orders():
            try:
                self.cancel_order(order.order_id)
                canceled.append(order.order_id)
            except BrokerError as exc:
                errors.append(f"cancel {order.order_id}: {exc}")
        closing: list[Order] = []
        for position in self.get_positions():
            try:
                order = self._close_position(position)
            except BrokerError as exc:
                errors.append(f"close {position.symbol} ({position.quantity:g}): {exc}")
                continue
            if order is not None:
                closing.append(order)
        if errors:
            logger.error("%s: flatten_all left problems: %s", self.name, "; ".join(errors))
        return FlattenResult(tuple(canceled), tuple(closing), tuple(errors))

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:  # noqa: B027 - optional hook, adapters without resources keep it empty
        """Release network resources. The adapter must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _coerce(enum_type: type[StrEnum], value: object, field_name: str) -> Any:
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(str(value).lower())
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum_type)
        raise InvalidOrderError(f"{field_name}={value!r} is not valid: expected one of {allowed}") from None


__all__ = [
    "AssetClass",
    "Balance",
    "BrokerAdapter",
    "FlattenResult",
    "Leg",
    "OccSymbol",
    "OptionContract",
    "Order",
    "OrderChanges",
    "OrderRequest",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "Position",
    "PositionEffect",
    "Protection",
    "ProtectionRequest",
    "Quote",
    "Side",
    "TimeInForce",
    "first_or_none",
    "parse_number",
    "parse_occ_symbol",
]
