"""Exits held at Tradier: an OCO order (``class=oco``: a target limit and a stop on the same side, one
cancelling the other) closing a position, or a single limit or stop order for one level; the protection
id is the OCO's order id. The methods of :class:`brokers.tradier.TradierAdapter` behind
:meth:`~brokers.base.BrokerAdapter.protect_position` and its siblings, in their own module so the adapter
stays one job (the HTTP boundary, orders and market data).

Stocks, options and futures (``/MESZ26`` legs with ``enable_futures``) alike: the OCO's legs carry the
position's symbol fields. Moving a level is a PUT on its own leg; where Tradier refuses that (unconfirmed on
the sandbox) the OCO is cancelled and placed anew. Verified against the local fake server only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from brokers.base import (
    BrokerAdapter,
    Order,
    OrderRequest,
    OrderState,
    OrderType,
    PositionEffect,
    Protection,
    ProtectionRequest,
    TimeInForce,
)
from brokers.errors import InvalidOrderError, OrderNotFoundError
from brokers.parsing import as_list

logger = logging.getLogger(__name__)


class OcoProtections(BrokerAdapter):
    """The protection methods of :class:`brokers.tradier.TradierAdapter` (its orders API)."""

    get_order: Callable[[str], Order]
    list_orders: Callable[[], list[Order]]
    cancel_order: Callable[[str], Any]

    def protect_position(self, request: ProtectionRequest) -> Protection:
        """An OCO order (target limit + stop) closing ``quantity``, or one limit/stop order for a single level;
        through :meth:`place_order` (client id in the tag, reconciled after an uncertain submit)."""
        # the request's fields are OrderRequest.single's (symbol, side, quantity, levels, asset class, intent):
        # the OCO is that order, closing the position and good till cancelled
        order = OrderRequest.single(
            **asdict(request), position_effect=PositionEffect.CLOSE, time_in_force=TimeInForce.GTC, oco=True
        )
        return _protection(self.place_order(order))

    def get_protection(self, protection_id: str) -> Protection:
        return _protection(self.get_order(protection_id))

    def list_protections(self) -> list[Protection]:
        # an OCO's state comes from its legs: open while one can still fill and none has
        return [
            _protection(o) for o in self.list_orders() if o.raw.get("class") == "oco" and not o.state.is_final
        ]

    def modify_protection(
        self, protection_id: str, *, stop_loss: float | None = None, take_profit: float | None = None
    ) -> Protection:
        """Each moved level is a PUT on its own leg (or on the single order). Where Tradier refuses a leg's
        change the OCO is cancelled and placed anew with the new levels (a new protection id)."""
        current = self.get_protection(protection_id)
        if current.state.is_final:
            raise InvalidOrderError(f"protection {protection_id} is {current.state.value}", broker=self.name)
        order = self.get_order(protection_id)
        legs = as_list(order.raw.get("leg")) or [order.raw]
        try:
            for raw_leg in legs:
                kind = str(raw_leg.get("type"))
                new = stop_loss if kind == "stop" else take_profit if kind == "limit" else None
                if new is not None:
                    self.replace_order(
                        str(raw_leg["id"]),
                        **({"stop_price": new} if kind == "stop" else {"limit_price": new}),
                    )
        except (InvalidOrderError, OrderNotFoundError) as exc:
            logger.warning("tradier: moving protection %s refused (%s); replacing it", protection_id, exc)
            self.cancel_order(protection_id)
            return self.protect_position(
                ProtectionRequest(
                    current.symbol,
                    current.side,
                    current.quantity,
                    stop_loss=stop_loss if stop_loss is not None else current.stop_loss,
                    take_profit=take_profit if take_profit is not None else current.take_profit,
                    asset_class=current.asset_class,
                    intent=f"moved:{protection_id}:{stop_loss}:{take_profit}",
                )
            )
        return self.get_protection(protection_id)

    def cancel_protection(self, protection_id: str) -> Protection:
        self.cancel_order(protection_id)
        return self.get_protection(protection_id)


def _protection(order: Order) -> Protection:
    """A protection from its Tradier order: an OCO (``take_profit``/``stop_loss`` from its legs) or one order."""
    leg = order.legs[0]
    stop, target = order.stop_loss, order.take_profit
    if order.raw.get("class") != "oco":
        stop = order.stop_price if order.order_type is OrderType.STOP else None
        target = order.limit_price if order.order_type is OrderType.LIMIT else None
    filled_by = None
    if order.state is OrderState.FILLED:
        legs = as_list(order.raw.get("leg")) or [order.raw]
        kind = next((str(x.get("type")) for x in legs if str(x.get("status")) == "filled"), "")
        filled_by = "stop_loss" if kind == "stop" else "take_profit"
    return Protection(
        protection_id=order.order_id,
        symbol=leg.symbol,
        side=leg.side,
        quantity=leg.quantity,
        stop_loss=stop,
        take_profit=target,
        state=order.state,
        filled_quantity=order.filled_quantity,
        avg_fill_price=order.avg_fill_price,
        filled_by=filled_by,
        order_ids=order.child_order_ids or (order.order_id,),
        asset_class=leg.asset_class,
    )
