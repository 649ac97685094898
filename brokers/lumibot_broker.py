"""A Lumibot ``Broker`` over any :class:`brokers.base.BrokerAdapter`: the one order path of every deployment.

Every order a Lumibot strategy submits, modifies or cancels goes through the adapter, so every deployment,
paper or live, at every broker, gets the adapter's guarantees: idempotent client order ids (the Lumibot
order's identifier is the ``intent``), retries only where the submit cannot have reached the broker (a
timeout or 5xx is reconciled by client id, never re-sent blindly), vendor errors translated at the
boundary, and the deployment's risk limits checked inside :meth:`~brokers.base.BrokerAdapter.place_order`
(the adapter's ``risk_guard``). A refused order is dispatched as Lumibot's ``error`` event with the broker's
(secret-free) message; a risk breach also calls ``on_risk_breach`` so the deployment stops. Adding a broker
means one adapter and one entry in :data:`brokers.paper.BROKERS`; this module knows no vendor.

Modelled on Lumibot's own polling brokers (lumibot 4.6.30 ``lumibot/brokers/tradier.py``): a
:class:`lumibot.trading_builtins.PollingStream` polls the adapter every ``polling_interval`` seconds and
dispatches Lumibot's trade events (new, fill, cancel, error). The base class's contract and how it is met:

* ``_get_balances_at_broker``: the adapter's cash, equity - cash, equity.
* ``_pull_positions`` / ``_pull_position``: one Lumibot ``Position`` per instrument, netting positions the
  broker keeps apart (TradeLocker hedging accounts), with the broker's average price.
* ``_pull_broker_all_orders`` / ``_pull_broker_order`` / ``_parse_broker_order``: adapter ``Order`` objects
  as Lumibot orders (a multi-leg order as a parent with one child per leg, as Lumibot's Tradier broker does).
* ``_submit_order`` / ``_submit_orders`` (multi-leg, one atomic order) / ``cancel_order`` / ``_modify_order``.

Exits held at the broker (protections): a Lumibot OCO order (``order_class="oco"``: ``limit_price`` the
target, ``stop_price`` the stop) becomes :meth:`~brokers.base.BrokerAdapter.protect_position` (Tradier: one
OCO order; TradeLocker: the position's own stop-loss/take-profit), and on a broker whose exits must be
attached to the position (capability ``attached_exits``: a hedging account would open a second position
from a resting opposite order) so does a single closing stop or limit. ``modify_order`` moves a protection's
levels in place; its Lumibot identifier is the protection id. Working protections found at the broker (a
restart) are reported as Lumibot orders, so a strategy can adopt them instead of placing new ones.

Reducing orders: a market order against the net position closes it (``position_effect`` close: Tradier's
``sell`` / ``buy_to_cover``); on a hedging account (capability ``hedging``) the adapter's ``close_units``
closes positions oldest first, and the Lumibot order stands for those closes (identifier ``net-<id>``).

Threads: Lumibot calls the broker from the strategy, order and polling threads; the adapter is
single-threaded, so every adapter call holds one lock (shared with a data source over the same adapter).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from brokers.base import (
    AssetClass,
    BrokerAdapter,
    Leg,
    OrderRequest,
    OrderState,
    OrderType,
    PositionEffect,
    Protection,
    ProtectionRequest,
    Side,
    TimeInForce,
    parse_occ_symbol,
)
from brokers.base import Order as AdapterOrder
from brokers.errors import BrokerError, InvalidOrderError, OrderNotFoundError
from brokers.futures import contract_of
from brokers.risk import RiskLimitBreached
from data.flatfiles import occ_symbol
from evaluator.lumibot.env import no_dotenv

with no_dotenv():  # Lumibot loads any .env it finds on import; credentials come from brokers.credentials
    from lumibot.brokers.broker import Broker, LumibotBrokerAPIError
    from lumibot.data_sources import DataSource
    from lumibot.entities import Asset
    from lumibot.entities import Order as LumiOrder
    from lumibot.entities import Position as LumiPosition

logger = logging.getLogger(__name__)

__all__ = ["AdapterBroker", "Locked", "asset_of", "instrument_name", "leg_symbol"]

T = TypeVar("T")

_STATUS_TO_LUMI = {
    OrderState.PENDING: "open",
    OrderState.OPEN: "open",
    OrderState.PARTIALLY_FILLED: "partial_fill",
    OrderState.FILLED: "fill",
    OrderState.CANCELED: "canceled",
    OrderState.REJECTED: "error",
    OrderState.EXPIRED: "canceled",
}
_TYPES_TO_LUMI = {
    OrderType.MARKET: LumiOrder.OrderType.MARKET,
    OrderType.LIMIT: LumiOrder.OrderType.LIMIT,
    OrderType.STOP: LumiOrder.OrderType.STOP,
    OrderType.STOP_LIMIT: LumiOrder.OrderType.STOP_LIMIT,
}
_TYPES_FROM_LUMI = {v: k for k, v in _TYPES_TO_LUMI.items()}
_NET_PREFIX = "net-"


class Locked:
    """Run adapter calls one at a time (an adapter holds one HTTP client and, at TradeLocker, one token)."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock or threading.RLock()

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return fn(*args, **kwargs)


def instrument_name(asset: Asset, quote: Asset | None = None) -> str:
    """The FX/CFD instrument an asset names: ``EURUSD`` from ``Asset("EURUSD")`` or from ``Asset("EUR")``
    with ``quote=Asset("USD")``."""
    symbol = str(asset.symbol).upper().replace("/", "")
    if len(symbol) >= 6:
        return symbol
    if quote is not None and str(quote.symbol).upper() != symbol:
        return symbol + str(quote.symbol).upper()
    raise InvalidOrderError(
        f"asset {asset.symbol!r} is not an FX instrument: give the pair (Asset('EURUSD', 'forex')) "
        "or the base currency with a quote asset (quote=Asset('USD', 'forex'))",
        broker="tradelocker",
    )


def leg_symbol(asset: Asset, quote: Asset | None = None) -> tuple[str, AssetClass]:
    """The adapter symbol and asset class of a Lumibot asset (OCC for options, the pair for forex)."""
    asset_class = AssetClass.of(str(asset.asset_type))
    if asset_class is AssetClass.OPTION:
        symbol = occ_symbol(str(asset.symbol), asset.expiration, str(asset.right), float(asset.strike))
        return symbol, asset_class
    if asset_class is AssetClass.FOREX:
        return instrument_name(asset, quote), asset_class
    if asset_class is AssetClass.FUTURE:  # MESZ26: adapters spell contracts without Tradier's slash
        return str(asset.symbol).upper().lstrip("/"), asset_class
    return str(asset.symbol).upper(), asset_class


def asset_of(symbol: str, asset_class: AssetClass) -> Asset:
    """The Lumibot asset of an adapter symbol."""
    if asset_class is AssetClass.OPTION:
        occ = parse_occ_symbol(symbol)
        if occ is not None:
            right = "CALL" if occ.right == "call" else "PUT"
            return Asset(
                occ.root, asset_type="option", expiration=occ.expiration, strike=occ.strike, right=right
            )
    if asset_class is AssetClass.FUTURE:
        return _future_asset(symbol.upper().lstrip("/"))
    kind = "forex" if asset_class is AssetClass.FOREX else "stock"
    return Asset(symbol.upper(), asset_type=kind)


def _future_asset(ticker: str) -> Asset:
    """A listed contract (``MESZ26``) with its dollars per point, so Lumibot values the position right."""
    try:
        multiplier = contract_of(ticker).multiplier
    except ValueError:  # a root outside the contract table: per point as the broker books it
        return Asset(ticker, asset_type="future")
    return Asset(ticker, asset_type="future", multiplier=multiplier)


def _side_of(order: LumiOrder) -> tuple[Side, PositionEffect | None]:
    """Side and explicit position effect of a Lumibot order (``sell_to_close`` -> sell, close)."""
    side = str(order.side).lower()
    effect = PositionEffect.OPEN if side.endswith("_to_open") else None
    if side.endswith("_to_close") or side == "buy_to_cover":
        effect = PositionEffect.CLOSE
    if side == "sell_short":
        effect = PositionEffect.OPEN
    return (Side.BUY if side.startswith("buy") else Side.SELL), effect


def _lumi_side(leg: Leg) -> str:
    if leg.asset_class is AssetClass.OPTION and leg.position_effect is not None:
        return f"{leg.side.value}_to_{leg.position_effect.value}"
    return leg.side.value


def _price(value: Any) -> float | None:
    return None if value is None else float(value)


class AdapterBroker(Broker):
    """Lumibot broker over one :class:`~brokers.base.BrokerAdapter` account (see the module docstring).

    ``data_source``: where bars and quotes come from (a Lumibot ``DataSource``); ``on_risk_breach`` is
    called with the :class:`~brokers.risk.RiskLimitBreached` of an order the adapter's guard refused.
    """

    POLL_EVENT = "poll"

    def __init__(
        self,
        adapter: BrokerAdapter,
        *,
        data_source: DataSource,
        polling_interval: float = 5.0,
        market: str = "NYSE",
        connect_stream: bool = True,
        config: dict | None = None,
        strategy_tag: str | None = None,
        lock: threading.RLock | None = None,
        on_risk_breach: Callable[[RiskLimitBreached], None] | None = None,
    ) -> None:
        self.adapter = adapter
        self._call = Locked(lock)
        self.polling_interval = polling_interval
        self.strategy_tag = strategy_tag
        self.on_risk_breach = on_risk_breach
        self._protection_ids: set[str] = set()  # Lumibot identifiers that are protections
        self._hidden: set[str] = set()  # broker orders behind protections (OCO legs, SL/TP orders)
        self._poll_lock = threading.RLock()  # one poll at a time (the stream's and a strategy's adoption)
        # Orders go out one at a time: a reducing order reads positions the previous order may have changed.
        super().__init__(
            name=adapter.name,
            data_source=data_source,
            config=config,
            max_workers=1,
            connect_stream=connect_stream,
        )
        self.market = (config or {}).get("MARKET") or market

    # ------------------------------------------------------------------ account
    def _get_balances_at_broker(self, quote_asset: Asset, strategy: Any) -> tuple[float, float, float]:
        balance = self._call(self.adapter.get_balances)
        cash, equity = float(balance.cash), float(balance.total_equity)
        return cash, equity - cash, equity

    def get_historical_account_value(self) -> dict:
        return {"hourly": None, "daily": None}

    # ------------------------------------------------------------------ positions
    def _net_positions(self) -> dict[tuple[str, AssetClass], tuple[float, float | None]]:
        """Net units and average price per instrument (positions the broker keeps apart netted)."""
        net: dict[tuple[str, AssetClass], list[float]] = {}
        for pos in self._call(self.adapter.get_positions):
            key = (pos.symbol.upper(), pos.asset_class)
            qty, cost = net.setdefault(key, [0.0, 0.0])
            net[key] = [qty + pos.quantity, cost + pos.quantity * (pos.avg_price or 0.0)]
        return {k: (q, c / q if c else None) for k, (q, c) in net.items() if abs(q) > 1e-9}

    def _net_quantity(self, symbol: str) -> float:
        return sum(q for (s, _), (q, _) in self._net_positions().items() if s == symbol.upper())

    def _pull_positions(self, strategy: Any) -> list[LumiPosition]:
        name = strategy if isinstance(strategy, str) else str(getattr(strategy, "name", strategy or ""))
        try:
            net = self._net_positions()
        except BrokerError as exc:
            # Keep Lumibot's positions for this poll rather than dropping them on a network hiccup.
            logger.warning("%s: positions read failed (%s); keeping the last known positions", self.name, exc)
            return list(self._filled_positions.get_list())
        return [
            LumiPosition(name, asset_of(symbol, asset_class), qty, avg_fill_price=avg)
            for (symbol, asset_class), (qty, avg) in sorted(net.items())
        ]

    def _set_initial_positions(self, strategy: Any) -> None:
        """Lumibot appends the broker's positions here without looking; the polling thread may have tracked
        them already (a restart holding a position), and two copies make ``get_position`` raise. Sync instead."""
        self.sync_positions(strategy)

    def _pull_position(self, strategy: Any, asset: Asset) -> LumiPosition | None:
        wanted = leg_symbol(asset)[0]
        return next((p for p in self._pull_positions(strategy) if leg_symbol(p.asset)[0] == wanted), None)

    # ------------------------------------------------------------------ orders: read
    def _pull_broker_all_orders(self) -> list[AdapterOrder | Protection]:
        """Protections (working, and tracked ones that just stopped working), then the other orders."""
        found = self._find_protections()
        orders = [o for o in self._call(self.adapter.list_orders) if o.order_id not in self._hidden]
        return [*found, *orders]

    def _pull_broker_order(self, identifier: str) -> AdapterOrder | Protection | None:
        try:
            if str(identifier) in self._protection_ids:
                return self._call(self.adapter.get_protection, str(identifier))
            return self._call(self.adapter.get_order, str(identifier))
        except OrderNotFoundError:
            return None

    def _parse_broker_order(
        self, response: AdapterOrder | Protection, strategy_name: str, strategy_object: Any = None
    ) -> LumiOrder:
        """A Lumibot order from an adapter order or protection (units, prices, state already translated)."""
        if strategy_name is None and strategy_object is not None:
            strategy_name = strategy_object.name
        name = strategy_name or self._strategy_name_or_sole_subscriber()
        if isinstance(response, Protection):
            return self._protection_order(response, name)
        status = _STATUS_TO_LUMI[response.state]
        if len(response.legs) > 1:
            children = [
                LumiOrder(
                    name,
                    asset_of(leg.symbol, leg.asset_class),
                    leg.quantity,
                    side=_lumi_side(leg),
                    identifier=f"{response.order_id}-{k}",
                    status=status,
                )
                for k, leg in enumerate(response.legs)
            ]
            parent = LumiOrder(
                name,
                Asset(response.legs[0].underlying, asset_type="stock"),
                response.legs[0].quantity,
                side=_lumi_side(response.legs[0]),
                order_class=LumiOrder.OrderClass.MULTILEG,
                identifier=response.order_id,
                status=status,
                avg_fill_price=response.avg_fill_price,
                tag=response.client_order_id or "",
            )
            for child in children:
                child.parent_identifier = parent.identifier
            parent.child_orders = children
            parent.update_raw(response)
            return parent
        leg = response.legs[0]
        order = LumiOrder(
            name,
            asset_of(leg.symbol, leg.asset_class),
            leg.quantity,
            side=_lumi_side(leg),
            limit_price=response.limit_price,
            stop_price=response.stop_price,
            order_type=_TYPES_TO_LUMI[response.order_type],
            time_in_force=(response.time_in_force or TimeInForce.DAY).value,
            identifier=response.order_id,
            status=status,
            avg_fill_price=response.avg_fill_price,
            tag=response.client_order_id or "",
            date_created=response.created_at,
            error_message=response.reason,
        )
        order.broker_create_date = response.created_at
        order.update_raw(response)
        return order

    def _protection_order(self, protection: Protection, strategy_name: str) -> LumiOrder:
        """A protection as one Lumibot order: OCO with both levels, else the single stop or limit."""
        both = protection.stop_loss is not None and protection.take_profit is not None
        order = LumiOrder(
            strategy_name,
            asset_of(protection.symbol, protection.asset_class),
            protection.quantity,
            side=protection.side.value,
            limit_price=protection.take_profit,
            stop_price=protection.stop_loss,
            order_class=LumiOrder.OrderClass.OCO if both else LumiOrder.OrderClass.SIMPLE,
            time_in_force="gtc",
            identifier=protection.protection_id,
            status=_STATUS_TO_LUMI[protection.state],
            avg_fill_price=protection.avg_fill_price,
        )
        order.update_raw(protection)
        return order

    def held_protections(self) -> list[LumiOrder]:
        """The protections working at the broker now, as tracked Lumibot orders: a restarted strategy adopts
        them at once instead of waiting for the first poll (and placing a second set meanwhile)."""
        out = []
        name = self._strategy_name_or_sole_subscriber()
        with self._poll_lock:
            for order in [self._protection_order(p, name) for p in self._find_protections()]:
                known = self.get_tracked_order(order.identifier)
                if known is None and order.is_active():
                    self._process_new_order(order)
                    known = order
                if known is not None and known.is_active():
                    out.append(known)
        return out

    def is_protection(self, order: LumiOrder) -> bool:
        """True when ``order`` is an exit held at the broker (a strategy adopts these after a restart)."""
        return str(order.identifier) in self._protection_ids

    def _strategy_name_or_sole_subscriber(self) -> str:
        if self._strategy_name:
            return self._strategy_name
        if len(self._subscribers) == 1:
            return self._subscribers[0].name
        return ""

    # ------------------------------------------------------------------ orders: write
    def _request_for(self, order: LumiOrder) -> OrderRequest:
        symbol, asset_class = leg_symbol(order.asset, order.quote)
        side, effect = _side_of(order)
        order_type = _TYPES_FROM_LUMI.get(order.order_type)
        bracket = order.order_class == LumiOrder.OrderClass.BRACKET  # an entry with attached exits
        if (
            order_type is None
            or order.order_class not in (LumiOrder.OrderClass.SIMPLE, None, "")
            and not bracket
        ):
            raise InvalidOrderError(
                f"{self.name} takes market, limit, stop and stop-limit orders, OCO exits and multi-leg "
                f"orders, not {order.order_class} {order.order_type}",
                broker=self.name,
            )
        if effect is None and asset_class is AssetClass.EQUITY:
            net = self._net_quantity(symbol)
            reducing = (
                net != 0 and (net > 0) != (side is Side.BUY) and float(order.quantity) <= abs(net) + 1e-9
            )
            effect = PositionEffect.CLOSE if reducing else PositionEffect.OPEN if side is Side.SELL else None
        tif = str(order.time_in_force or "day").lower()
        return OrderRequest.single(
            symbol,
            side,
            float(order.quantity),
            asset_class=asset_class,
            position_effect=effect,
            order_type=order_type,
            limit_price=_price(order.limit_price)
            if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
            else None,
            stop_price=_price(order.stop_price)
            if order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
            else None,
            time_in_force={"gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC}.get(tif, TimeInForce.DAY),
            take_profit=_price(order.secondary_limit_price) if bracket else None,
            stop_loss=_price(order.secondary_stop_price) if bracket else None,
            strategy_tag=self.strategy_tag or order.strategy,
            # Lumibot's own order id: re-submitting the same Lumibot order reconciles, never duplicates.
            intent=f"lumibot:{order.identifier}",
        )

    def _refused(self, order: LumiOrder, exc: BrokerError) -> LumiOrder:
        self._dispatch_error(order, f"{self.name} refused {order}: {exc}")
        if isinstance(exc, RiskLimitBreached) and self.on_risk_breach is not None:
            self.on_risk_breach(exc)
        return order

    def _accepted(self, order: LumiOrder, identifier: str, raw: Any) -> LumiOrder:
        order.identifier = identifier
        order.status = LumiOrder.OrderStatus.SUBMITTED
        order.update_raw(raw)  # marks it transmitted
        self._unprocessed_orders.append(order)
        self._dispatch(self.NEW_ORDER, order=order)
        return order

    def _submit_order(self, order: LumiOrder) -> LumiOrder | None:
        try:
            if self._wants_protection(order):
                return self._submit_protection(order)
            request = self._request_for(order)
            net = self._net_quantity(request.leg.symbol)
            reducing = net != 0 and (net > 0) != (request.leg.side is Side.BUY)
            if reducing and self.adapter.has("hedging") and request.order_type is OrderType.MARKET:
                return self._submit_netting(order, request, net)
            placed = self._call(self.adapter.place_order, request)
        except BrokerError as exc:
            return self._refused(order, exc)
        return self._accepted(order, placed.order_id, placed)

    def _wants_protection(self, order: LumiOrder) -> bool:
        if order.order_class == LumiOrder.OrderClass.OCO:
            return True
        if not self.adapter.has("attached_exits") or order.order_type not in (
            LumiOrder.OrderType.STOP,
            LumiOrder.OrderType.LIMIT,
        ):
            return False
        side, _ = _side_of(order)
        net = self._net_quantity(leg_symbol(order.asset, order.quote)[0])
        return net != 0 and (net > 0) != (side is Side.BUY)

    def _submit_protection(self, order: LumiOrder) -> LumiOrder:
        symbol, asset_class = leg_symbol(order.asset, order.quote)
        side, _ = _side_of(order)
        request = ProtectionRequest(
            symbol,
            side,
            float(order.quantity),
            stop_loss=_price(order.stop_price),
            take_profit=_price(order.limit_price),
            asset_class=asset_class,
            intent=f"lumibot:{order.identifier}",
        )
        protection = self._call(self.adapter.protect_position, request)
        self._track_protection(protection)
        return self._accepted(order, protection.protection_id, protection)

    def _track_protection(self, protection: Protection) -> None:
        self._protection_ids.add(protection.protection_id)
        self._hidden.update(protection.order_ids)
        self._hidden.add(protection.protection_id)

    def _submit_orders(
        self,
        orders: Sequence[LumiOrder],
        is_multileg: bool = False,
        order_type: str | None = None,
        duration: str = "day",
        price: float | None = None,
        **_: Any,
    ) -> LumiOrder | list[LumiOrder]:
        """Several orders: with ``is_multileg`` one atomic multi-leg order (a parent with the legs as
        children), else one order each."""
        if not is_multileg:
            return [self._submit_order(order) or order for order in orders]
        legs = []
        for order in orders:
            symbol, asset_class = leg_symbol(order.asset, order.quote)
            side, effect = _side_of(order)
            legs.append(Leg(symbol, side, float(order.quantity), asset_class, effect))
        kind = str(order_type or "market").lower()
        net = None if kind == "market" else {"debit": 1.0, "credit": -1.0}.get(kind, 0.0) * abs(price or 0.0)
        parent = LumiOrder(
            orders[0].strategy,
            Asset(legs[0].underlying, asset_type="stock"),
            orders[0].quantity,
            side=orders[0].side,
            order_class=LumiOrder.OrderClass.MULTILEG,
            time_in_force=duration,
        )
        parent.child_orders = list(orders)
        try:
            request = OrderRequest(
                legs=tuple(legs),
                order_type=OrderType.MARKET if net is None else OrderType.LIMIT,
                limit_price=net,
                time_in_force=TimeInForce.GTC if duration == "gtc" else TimeInForce.DAY,
                strategy_tag=self.strategy_tag or parent.strategy,
                intent=f"lumibot:{orders[0].identifier}",
            )
            placed = self._call(self.adapter.place_order, request)
        except BrokerError as exc:
            return self._refused(parent, exc)
        for k, child in enumerate(orders):
            child.identifier = f"{placed.order_id}-{k}"
            child.parent_identifier = placed.order_id
        return self._accepted(parent, placed.order_id, placed)

    def _submit_netting(self, order: LumiOrder, request: OrderRequest, net_qty: float) -> LumiOrder:
        """Close positions against ``order`` on a hedging account (see the module docstring)."""
        closes = self._call(self.adapter.close_units, request.leg.symbol, request.leg.quantity)  # type: ignore[attr-defined]
        order.identifier = f"{_NET_PREFIX}{closes[0].order_id}"
        order.status = LumiOrder.OrderStatus.SUBMITTED
        order.update_raw({"closing_order_ids": [c.order_id for c in closes]})
        self._unprocessed_orders.append(order)
        self._dispatch(self.NEW_ORDER, order=order)
        fills = [(c.avg_fill_price, c.filled_quantity) for c in closes if c.avg_fill_price is not None]
        qty = sum(q for _, q in fills)
        if qty > 0:
            avg = sum(p * q for p, q in fills) / qty
            self._dispatch(self.FILLED_ORDER, order=order, price=avg, filled_quantity=float(order.quantity))
        # The closes are the broker's own orders; the Lumibot order stands for all of them.
        self._hidden.update(c.order_id for c in closes)
        return order

    def cancel_order(self, order: LumiOrder) -> None:
        if not order.identifier:
            raise ValueError(
                "Order identifier is not set, unable to cancel order. Did you remember to submit it?"
            )
        identifier = str(order.identifier)
        if identifier.startswith(_NET_PREFIX):
            return  # netting closes are final on submission
        try:
            if identifier in self._protection_ids:
                self._call(self.adapter.cancel_protection, identifier)
            else:
                self._call(self.adapter.cancel_order, identifier)
        except BrokerError as exc:
            raise LumibotBrokerAPIError(f"Unable to cancel order at {self.name}. {exc}") from exc

    def _modify_order(
        self, order: LumiOrder, limit_price: float | None = None, stop_price: float | None = None
    ) -> None:
        if order.is_filled() or order.is_canceled():
            return
        identifier = str(order.identifier)
        try:
            if identifier in self._protection_ids:
                moved = self._call(
                    self.adapter.modify_protection,
                    identifier,
                    stop_loss=_price(stop_price),
                    take_profit=_price(limit_price),
                )
                self._track_protection(moved)
                order.identifier = moved.protection_id  # a broker that replaced it gave it a new id
            else:
                self._call(
                    self.adapter.replace_order,
                    identifier,
                    limit_price=_price(limit_price),
                    stop_price=_price(stop_price),
                )
        except BrokerError as exc:
            raise LumibotBrokerAPIError(f"Unable to modify order at {self.name}. {exc}") from exc
        if limit_price is not None:
            order.limit_price = float(limit_price)
        if stop_price is not None:
            order.stop_price = float(stop_price)

    # ------------------------------------------------------------------ polling stream
    def _dispatch(self, event: str, **payload: Any) -> None:
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.dispatch(event, **payload)

    def _dispatch_error(self, order: LumiOrder, message: str) -> None:
        logger.error("%s", message)
        if getattr(self, "stream", None) is None:
            order.set_error(message)
            return
        self._dispatch(self.ERROR_ORDER, order=order, error_msg=message)

    def _get_stream_object(self) -> Any:
        from lumibot.trading_builtins import PollingStream

        return PollingStream(self.polling_interval)

    def _register_stream_events(self) -> None:
        broker = self

        @broker.stream.add_action(broker.POLL_EVENT)
        def on_poll() -> None:
            broker.do_polling()

        @broker.stream.add_action(broker.NEW_ORDER)
        def on_new(order: LumiOrder) -> None:
            broker._process_trade_event(order, broker.NEW_ORDER)

        @broker.stream.add_action(broker.FILLED_ORDER)
        def on_fill(order: LumiOrder, price: float, filled_quantity: float) -> None:
            broker._process_trade_event(
                order, broker.FILLED_ORDER, price=price, filled_quantity=filled_quantity, multiplier=1
            )

        @broker.stream.add_action(broker.CANCELED_ORDER)
        def on_cancel(order: LumiOrder) -> None:
            broker._process_trade_event(order, broker.CANCELED_ORDER)

        @broker.stream.add_action(broker.ERROR_ORDER)
        def on_error(order: LumiOrder, error_msg: str) -> None:
            broker._process_trade_event(order, broker.ERROR_ORDER, error=error_msg)

    def _run_stream(self) -> None:
        self._stream_established()
        self.stream._run()

    def _find_protections(self) -> list[Protection]:
        """Working protections, and the final state of tracked ones that stopped working."""
        found = {p.protection_id: p for p in self._call(self.adapter.list_protections)}
        for identifier in self._protection_ids - set(found):
            tracked = self.get_tracked_order(identifier)
            if tracked is None or not tracked.is_active():
                continue
            try:
                found[identifier] = self._call(self.adapter.get_protection, identifier)
            except OrderNotFoundError:
                continue
        for protection in found.values():
            self._track_protection(protection)
        return list(found.values())

    def do_polling(self) -> None:
        """Sync positions, then turn the broker's order states into Lumibot trade events."""
        with self._poll_lock:
            self._do_polling()

    def _do_polling(self) -> None:
        self.sync_positions(self._strategy_name_or_sole_subscriber() or None)
        strategy_name = self._strategy_name_or_sole_subscriber()
        try:
            broker_orders = self._pull_broker_all_orders()
        except BrokerError as exc:
            logger.warning("%s: order poll failed (%s); retrying at the next poll", self.name, exc)
            return
        parsed = [self._parse_broker_order(o, strategy_name) for o in broker_orders]
        stored = {o.identifier: o for o in self.get_all_orders()}
        for order in parsed:
            self._apply(order, stored.get(order.identifier))
        seen = {str(o.identifier) for o in parsed}
        for order in self.get_tracked_orders():
            identifier = str(order.identifier)
            gone = order.is_active() and identifier not in seen and not identifier.startswith(_NET_PREFIX)
            if gone and order.parent_identifier is None:  # dropped from every list: no longer working
                self._dispatch(self.CANCELED_ORDER, order=order)
        self._first_iteration = False

    def _apply(self, order: LumiOrder, known: LumiOrder | None) -> None:
        """Dispatch what changed between the broker's ``order`` and Lumibot's ``known`` copy."""
        if known is None:
            # Before the first poll completes, only orders still working matter (a restarted deployment
            # must not replay yesterday's fills into its positions).
            if order.is_active():
                self._process_new_order(order)
            return
        known.quantity = order.quantity
        if order.avg_fill_price:
            known.avg_fill_price = order.avg_fill_price
        if order.equivalent_status(known):
            known.status = order.status
            return
        status = str(order.status).lower()
        if status in ("open", "new", "submitted"):
            self._dispatch(self.NEW_ORDER, order=known)
        elif status == "fill":
            price = order.avg_fill_price if order.avg_fill_price is not None else known.avg_fill_price
            for child in known.child_orders if known.order_class == LumiOrder.OrderClass.MULTILEG else []:
                if child.is_active():
                    self._dispatch(
                        self.FILLED_ORDER,
                        order=child,
                        price=self._leg_price(child),
                        filled_quantity=child.quantity,
                    )
            if price is not None:
                self._dispatch(self.FILLED_ORDER, order=known, price=price, filled_quantity=order.quantity)
        elif status == "canceled":
            self._dispatch(self.CANCELED_ORDER, order=known)
        elif status == "error":
            reason = getattr(order, "error_message", None) or f"{self.name} rejected {known}"
            self._dispatch(self.ERROR_ORDER, order=known, error_msg=reason)

    def _leg_price(self, order: LumiOrder) -> float:
        """A multi-leg order's leg price: the broker reports only the net price, so the leg's quote mid."""
        try:
            quote = self._call(self.adapter.get_quote, leg_symbol(order.asset)[0])
        except BrokerError:
            return 0.0
        return float(quote.mid or 0.0)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop polling, end the broker's threads and release the adapter's HTTP client."""
        self.cleanup_streams()
        self._call(self.adapter.close)
