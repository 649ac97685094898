"""Exits held at TradeLocker: a position's own stop-loss and take-profit.

TradeLocker attaches them to a position (``PATCH /trade/positions/{id}`` {stopLoss, takeProfit}; null
removes one). They close the whole position, one cancelling the other, and follow it through partial closes;
TradeLocker lists them as the position's stop and limit orders (``stopLossId`` / ``takeProfitId``). A
protection's id names its positions: ``sltp-<id>[-<id>...]``, so it is found again after a restart.

The request form (``PATCH`` with absolute ``stopLoss`` / ``takeProfit`` prices) is what TradeLocker's public API
documents for modifying a position; it is verified here only against the local fake server: confirm it on
the demo environment before trading real money with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from brokers.base import (
    AssetClass,
    BrokerAdapter,
    OrderState,
    OrderType,
    Position,
    Protection,
    ProtectionRequest,
    Side,
)
from brokers.errors import BrokerError, InvalidOrderError, NotSupportedError, OrderNotFoundError, retrier
from brokers.parsing import parse_number


class PositionProtections(BrokerAdapter):
    """The protection methods of :class:`brokers.tradelocker.TradeLockerAdapter` (its ``_request``)."""

    _request: Callable[..., dict[str, Any]]

    def _not_found_position(self, position_id: str) -> Callable[[], BrokerError]:
        return lambda: OrderNotFoundError(f"TradeLocker has no position {position_id}", broker=self.name)

    def protect_position(self, request: ProtectionRequest) -> Protection:
        """Attach the levels to every position ``side`` closes in ``symbol`` (setting levels is idempotent, so
        ``intent`` is not needed; every position here is forex, whatever ``asset_class`` says)."""
        symbol, side = request.symbol, request.side
        held = self._closed_by(symbol, side)
        total = sum(abs(p.quantity) for p in held)
        if not held:
            raise InvalidOrderError(
                f"no {symbol} position for a {side.value} stop-loss/take-profit", broker=self.name
            )
        if abs(total - request.quantity) > 1e-6 * max(1.0, total):
            raise NotSupportedError(
                f"TradeLocker's stop-loss and take-profit close whole positions: protect all {total:,.0f} units of "
                f"{symbol}, not {request.quantity:,.0f} (watch partial exits instead)",
                broker=self.name,
            )
        levels = {"stopLoss": request.stop_loss, "takeProfit": request.take_profit}
        for position in held:
            self._set_levels(str(position.position_id), levels)
        return self.get_protection("sltp-" + "-".join(str(p.position_id) for p in held))

    def _closed_by(self, symbol: str, side: Side) -> list[Position]:
        return [
            p
            for p in self.get_positions()
            if p.symbol.upper() == symbol.upper() and (p.quantity > 0) == (side is Side.SELL)
        ]

    @retrier
    def _set_levels(self, position_id: str, levels: Mapping[str, float | None]) -> None:
        # absolute levels: sending them twice is harmless, so a temporary failure is simply retried
        self._request(
            "PATCH",
            f"/trade/positions/{position_id}",
            json_body=dict(levels),
            not_found=lambda: OrderNotFoundError(
                f"TradeLocker has no position {position_id}", broker=self.name
            ),
        )

    def get_protection(self, protection_id: str) -> Protection:
        ids = protection_id.removeprefix("sltp-").split("-")
        live = [p for p in self.get_positions() if p.position_id in ids]
        mine = [
            o
            for o in self.list_orders()
            if str(o.raw.get("positionId")) in ids and o.order_type is not OrderType.MARKET
        ]
        working = {o.order_id: o for o in mine if not o.state.is_final}
        ref = live[0] if live else None
        stop = next((o.stop_price for o in working.values() if o.order_type is OrderType.STOP), None)
        target = next((o.limit_price for o in working.values() if o.order_type is OrderType.LIMIT), None)
        filled = next((o for o in mine if o.state is OrderState.FILLED), None)
        if live and working:
            state = OrderState.OPEN
        elif filled is not None and not live:
            state = OrderState.FILLED
        else:
            state = OrderState.CANCELED  # removed, or the position was closed another way
        if ref is None and not mine:
            raise OrderNotFoundError(
                f"TradeLocker has no positions or orders of {protection_id}", broker=self.name
            )
        symbol = ref.symbol if ref is not None else mine[0].legs[0].symbol
        side = (Side.SELL if ref.quantity > 0 else Side.BUY) if ref is not None else mine[0].legs[0].side
        return Protection(
            protection_id=protection_id,
            symbol=symbol,
            side=side,
            quantity=sum(abs(p.quantity) for p in live) or (filled.filled_quantity if filled else 0.0),
            stop_loss=stop,
            take_profit=target,
            state=state,
            filled_quantity=filled.filled_quantity if filled else 0.0,
            avg_fill_price=filled.avg_fill_price if filled else None,
            filled_by=None
            if filled is None
            else "stop_loss"
            if filled.order_type is OrderType.STOP
            else "take_profit",
            order_ids=tuple(working) or tuple(o.order_id for o in mine),
            asset_class=AssetClass.FOREX,
        )

    def list_protections(self) -> list[Protection]:
        held = [
            p
            for p in self.get_positions()
            if parse_number(p.raw.get("stopLossId")) or parse_number(p.raw.get("takeProfitId"))
        ]
        return [self.get_protection(f"sltp-{p.position_id}") for p in held]

    def modify_protection(
        self, protection_id: str, *, stop_loss: float | None = None, take_profit: float | None = None
    ) -> Protection:
        current = self.get_protection(protection_id)
        if current.state.is_final:
            raise InvalidOrderError(f"protection {protection_id} is {current.state.value}", broker=self.name)
        levels = {k: v for k, v in (("stopLoss", stop_loss), ("takeProfit", take_profit)) if v is not None}
        for position_id in protection_id.removeprefix("sltp-").split("-"):
            if levels and any(p.position_id == position_id for p in self.get_positions()):
                self._set_levels(position_id, levels)
        return self.get_protection(protection_id)

    def cancel_protection(self, protection_id: str) -> Protection:
        current = self.get_protection(protection_id)
        if not current.state.is_final:
            for position_id in protection_id.removeprefix("sltp-").split("-"):
                if any(p.position_id == position_id for p in self.get_positions()):
                    self._set_levels(position_id, {"stopLoss": None, "takeProfit": None})
        return self.get_protection(protection_id)


__all__ = ["PositionProtections"]
