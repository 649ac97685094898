"""A Lumibot ``Broker`` and ``DataSource`` for TradeLocker (e.g. the broker TrendMarkets), on top of
:class:`brokers.tradelocker.TradeLockerAdapter`. Lumibot 4.6.30 ships no TradeLocker broker.

Modelled on Lumibot's own polling brokers (``lumibot/brokers/tradier.py``): TradeLocker's REST API has
no order stream here, so a :class:`lumibot.trading_builtins.PollingStream` polls orders and positions
every ``polling_interval`` seconds and dispatches Lumibot's trade events (new, fill, cancel, error).

What the Lumibot base class expects (lumibot 4.6.30, ``lumibot/brokers/broker.py``) and how it is met:

* ``_get_balances_at_broker(quote_asset, strategy) -> (cash, positions_value, portfolio_value)``:
  TradeLocker's balance, equity - balance (the open PnL of CFD positions) and the projected balance.
* ``_pull_positions(strategy)`` / ``_pull_position(strategy, asset)``: Lumibot ``Position`` objects,
  one per instrument, netting the hedging account's separate positions (long 0.3 lot + short 0.1 lot
  = 20,000 units long).
* ``_pull_broker_all_orders()`` / ``_pull_broker_order(id)``: the adapter's ``Order`` objects (working
  orders and today's history); ``_parse_broker_order`` turns one into a Lumibot ``Order``.
* ``_submit_order(order)``: sets ``order.identifier`` to TradeLocker's order id, status ``submitted``,
  marks the order transmitted (``update_raw``), queues it as unprocessed and dispatches ``new``; the
  poll dispatches ``fill`` / ``canceled`` / ``error`` when TradeLocker reports them. A refused order
  is dispatched as ``error`` with the broker's (secret-free) message, as Lumibot's Tradier broker does.
* ``cancel_order`` / ``_modify_order`` (limit/stop price only, as the base class documents).
* ``_get_stream_object`` / ``_register_stream_events`` / ``_run_stream``: the polling stream.
* ``get_historical_account_value``: not available from TradeLocker (``{"hourly": None, "daily": None}``).

Assets: a TradeLocker instrument is a Lumibot ``Asset(<instrument name>, asset_type="forex")`` such as
``Asset("EURUSD", "forex")`` or ``Asset("XAUUSD", "forex")``. A strategy may also give the base currency
with a quote asset (``Asset("EUR", "forex")`` + ``quote=Asset("USD", "forex")``); both name EURUSD.
Quantities are units of the base currency (ounces for metals), the unit of
:class:`brokers.base.Leg`; the adapter converts to lots (10,000 EURUSD = 0.1 lot, step 0.01 lot).

Hedging accounts: TradeLocker keeps every fill as its own position, so a plain sell would open a
short next to the long instead of closing it. An order against the current net position therefore
closes positions (oldest first, partially if needed) instead of opening opposite ones, as the
official client's position netting does; an order that would reverse the position (close more than
is held) is refused with a message asking for a close and a separate open.

Data: ``get_last_price`` is the bid/ask mid, ``get_historical_prices`` reads ``GET /trade/history``
(``tradableInstrumentId``, INFO ``routeId``, ``resolution``, ``from``/``to`` in ms; answer
``d.barDetails`` rows ``t, o, h, l, c, v``), in chunks below TradeLocker's 20,000-bar limit; timesteps
TradeLocker has no resolution for are resampled from the largest one that divides them.

Threads: Lumibot calls the broker from the strategy, order and polling threads; the adapter is
single-threaded, so every adapter call holds one lock shared by the broker and its data source.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd

from brokers.base import (
    AssetClass,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from brokers.base import Order as AdapterOrder
from brokers.errors import BrokerError, InvalidOrderError, OrderNotFoundError
from brokers.tradelocker import TradeLockerAdapter
from evaluator.lumibot.env import no_dotenv

with no_dotenv():  # Lumibot loads any .env it finds on import; credentials come from brokers.credentials
    from lumibot.brokers.broker import Broker, LumibotBrokerAPIError
    from lumibot.data_sources import DataSource
    from lumibot.entities import Asset, Bars, Quote
    from lumibot.entities import Order as LumiOrder
    from lumibot.entities import Position as LumiPosition
    from lumibot.tools.helpers import parse_timestep_qty_and_unit

logger = logging.getLogger(__name__)

__all__ = [
    "RESOLUTIONS",
    "TradeLockerBroker",
    "TradeLockerData",
    "instrument_name",
    "resolution_for",
]

T = TypeVar("T")

#: TradeLocker history resolutions by their length in minutes.
RESOLUTIONS: dict[int, str] = {
    1: "1m",
    5: "5m",
    15: "15m",
    30: "30m",
    60: "1H",
    240: "4H",
    1440: "1D",
    10080: "1W",
}
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440, "week": 10080}
#: TradeLocker rejects history requests for more than 20,000 bars; stay well below.
MAX_BARS_PER_REQUEST = 10_000

_STATUS_TO_LUMI = {
    OrderState.PENDING: "open",
    OrderState.OPEN: "open",
    OrderState.PARTIALLY_FILLED: "partial_fill",
    OrderState.FILLED: "fill",
    OrderState.CANCELED: "canceled",
    OrderState.REJECTED: "error",
    OrderState.EXPIRED: "canceled",
}


def instrument_name(asset: Asset, quote: Asset | None = None) -> str:
    """The TradeLocker instrument an asset names: ``EURUSD`` from ``Asset("EURUSD")`` or from
    ``Asset("EUR")`` with ``quote=Asset("USD")``."""
    symbol = str(asset.symbol).upper().replace("/", "")
    if len(symbol) >= 6:
        return symbol
    if quote is not None and str(quote.symbol).upper() != symbol:
        return symbol + str(quote.symbol).upper()
    raise InvalidOrderError(
        f"asset {asset.symbol!r} is not a TradeLocker instrument: give the pair (Asset('EURUSD', 'forex')) "
        "or the base currency with a quote asset (quote=Asset('USD', 'forex'))",
        broker="tradelocker",
    )


def resolution_for(minutes: int) -> tuple[str, int]:
    """The TradeLocker resolution to fetch for bars of ``minutes`` and how many of them make one bar."""
    if minutes in RESOLUTIONS:
        return RESOLUTIONS[minutes], 1
    for base in sorted(RESOLUTIONS, reverse=True):
        if base < minutes and minutes % base == 0:
            return RESOLUTIONS[base], minutes // base
    raise ValueError(f"no TradeLocker resolution divides {minutes} minutes")


def _to_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


class _Locked:
    """Run adapter calls one at a time (the adapter holds one HTTP client and one token)."""

    def __init__(self, adapter: TradeLockerAdapter, lock: threading.RLock | None = None) -> None:
        self.adapter = adapter
        self.lock = lock or threading.RLock()

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return fn(*args, **kwargs)


# ----------------------------------------------------------------------------------------- data source


class TradeLockerData(DataSource):
    """Quotes and bars of TradeLocker instruments for Lumibot strategies."""

    SOURCE = "TradeLocker"
    MIN_TIMESTEP = "minute"
    TIMESTEP_MAPPING = [
        {"timestep": "minute", "representations": ["1m"]},
        {"timestep": "day", "representations": ["1D"]},
    ]

    def __init__(
        self, adapter: TradeLockerAdapter, *, lock: threading.RLock | None = None, **kwargs: Any
    ) -> None:
        super().__init__(delay=0, **kwargs)
        self._call = _Locked(adapter, lock)
        self.adapter = adapter

    def get_chains(self, asset: Asset, quote: Asset | None = None) -> dict:
        raise NotImplementedError("TradeLocker accounts trade FX/CFDs only: there are no option chains")

    def get_quote(self, asset: Asset, quote: Asset | None = None, exchange: str | None = None) -> Quote:
        name = instrument_name(asset, quote)
        q = self._call(self.adapter.get_quote, name)
        mid = q.mid
        return Quote(
            asset=asset,
            price=mid,
            bid=q.bid,
            ask=q.ask,
            bid_size=q.bid_size,
            ask_size=q.ask_size,
            timestamp=dt.datetime.now(dt.UTC),
            raw_data={"bid": q.bid, "ask": q.ask},
        )

    def get_last_price(
        self, asset: Asset, quote: Asset | None = None, exchange: str | None = None
    ) -> float | None:
        """The bid/ask mid (FX has no last trade); None when TradeLocker has no quote."""
        try:
            return self.get_quote(asset, quote, exchange).mid_price
        except BrokerError as exc:
            logger.error("tradelocker: no price for %s: %s", asset, exc)
            return None

    def get_historical_prices(
        self,
        asset: Asset,
        length: int,
        timestep: str = "",
        timeshift: dt.timedelta | None = None,
        quote: Asset | None = None,
        exchange: str | None = None,
        include_after_hours: bool = True,
        return_polars: bool = False,
    ) -> Bars | None:
        """The last ``length`` complete bars of ``timestep`` ("minute", "15 minutes", "day", ...) ending
        ``timeshift`` before now; None when TradeLocker has none."""
        qty, unit = parse_timestep_qty_and_unit(timestep or self.MIN_TIMESTEP)
        if unit not in _UNIT_MINUTES:
            raise ValueError(f"timestep {timestep!r}: TradeLocker bars come in minutes, hours, days or weeks")
        minutes = qty * _UNIT_MINUTES[unit]
        frame = self.fetch_bars(instrument_name(asset, quote), minutes, length, timeshift=timeshift)
        if frame.empty:
            return None
        return Bars(frame, self.SOURCE, asset, raw=frame, quote=quote)

    def fetch_bars(
        self,
        name: str,
        minutes: int,
        length: int,
        *,
        timeshift: dt.timedelta | None = None,
        now: dt.datetime | None = None,
    ) -> pd.DataFrame:
        """``length`` complete bars of ``minutes`` of instrument ``name`` as a DataFrame (open, high,
        low, close, volume) indexed by bar start in the data source's time zone."""
        resolution, factor = resolution_for(minutes)
        base_minutes = minutes // factor
        end = (now or dt.datetime.now(dt.UTC)) - (timeshift or dt.timedelta(0))
        # FX is closed ~2 days a week: ask for twice the span plus 3 days so `length` bars exist.
        span = dt.timedelta(minutes=minutes * length * 2) + dt.timedelta(days=3)
        start = end - span
        rows = self._history(name, resolution, start, end, base_minutes)
        if not rows:
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume"])
        frame = pd.DataFrame(rows)
        frame.index = pd.to_datetime(frame.pop("t"), unit="ms", utc=True)
        frame = frame.rename(columns={"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"})
        frame = frame[["open", "high", "low", "close", "volume"]].astype(float)
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
        if factor > 1:
            frame = (
                frame.resample(f"{minutes}min", origin="epoch", label="left", closed="left")
                .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
                .dropna(subset=["open"])
            )
        # The bar containing `end` is still forming: a strategy must only see closed bars.
        bar_start_now = (
            pd.Timestamp(end).floor(f"{minutes}min") if minutes < 1440 else pd.Timestamp(end).floor("D")
        )
        frame = frame[frame.index < bar_start_now]
        frame.index = frame.index.tz_convert(self.tzinfo)
        return frame.iloc[-length:] if length > 0 else frame

    def _history(
        self, name: str, resolution: str, start: dt.datetime, end: dt.datetime, base_minutes: int
    ) -> list[dict[str, Any]]:
        inst = self._call(self.adapter.instrument, name)
        rows: list[dict[str, Any]] = []
        chunk = dt.timedelta(minutes=base_minutes * MAX_BARS_PER_REQUEST)
        cursor = start
        while cursor < end:
            stop = min(end, cursor + chunk)
            body = self._call(
                self.adapter._request,
                "GET",
                "/trade/history",
                params={
                    "tradableInstrumentId": inst.tradable_instrument_id,
                    "routeId": inst.info_route_id,
                    "resolution": resolution,
                    "from": int(cursor.timestamp() * 1000),
                    "to": int(stop.timestamp() * 1000),
                },
            )
            # "no_data" (nothing in the range) is an empty answer, not an error.
            if body.get("s") == "ok":
                rows.extend((body.get("d") or {}).get("barDetails") or [])
            cursor = stop
        return rows


# ----------------------------------------------------------------------------------------- broker


class TradeLockerBroker(Broker):
    """Lumibot broker over one TradeLocker account (see the module docstring for the contract)."""

    NAME = "TradeLocker"
    POLL_EVENT = "poll"

    def __init__(
        self,
        adapter: TradeLockerAdapter,
        *,
        data_source: TradeLockerData | None = None,
        polling_interval: float = 5.0,
        market: str = "24/5",
        connect_stream: bool = True,
        config: dict | None = None,
        strategy_tag: str | None = None,
    ) -> None:
        lock = threading.RLock()
        self.adapter = adapter
        self._call = _Locked(adapter, lock)
        self.polling_interval = polling_interval
        self.strategy_tag = strategy_tag
        if data_source is None:
            data_source = TradeLockerData(adapter, lock=lock)
        # Orders go out one at a time: netting reads positions the previous order may have changed.
        super().__init__(
            name=self.NAME,
            data_source=data_source,
            config=config,
            max_workers=1,
            connect_stream=connect_stream,
        )
        self.market = (config or {}).get("MARKET") or market

    # ------------------------------------------------------------------ account
    def _get_balances_at_broker(self, quote_asset: Asset, strategy: Any) -> tuple[float, float, float]:
        balance = self._call(self.adapter.get_balances)
        cash = float(balance.cash)
        equity = float(balance.total_equity)
        return cash, equity - cash, equity

    def get_historical_account_value(self) -> dict:
        return {"hourly": None, "daily": None}

    # ------------------------------------------------------------------ positions
    @staticmethod
    def _name_of(strategy: Any) -> str:
        if strategy is None:
            return ""
        return strategy if isinstance(strategy, str) else str(getattr(strategy, "name", strategy))

    def _net_positions(self) -> dict[str, tuple[float, float | None]]:
        """Net units and average price per instrument (hedging positions netted)."""
        net: dict[str, list[float]] = {}
        for pos in self._call(self.adapter.get_positions):
            qty, cost = net.setdefault(pos.symbol.upper(), [0.0, 0.0])
            net[pos.symbol.upper()] = [qty + pos.quantity, cost + pos.quantity * (pos.avg_price or 0.0)]
        out: dict[str, tuple[float, float | None]] = {}
        for symbol, (qty, cost) in net.items():
            if abs(qty) < 1e-9:
                continue
            out[symbol] = (qty, cost / qty if qty else None)
        return out

    def _pull_positions(self, strategy: Any) -> list[LumiPosition]:
        name = self._name_of(strategy)
        try:
            net = self._net_positions()
        except BrokerError as exc:
            # Keep Lumibot's positions for this poll rather than dropping them on a network hiccup.
            logger.warning("tradelocker: positions read failed (%s); keeping the last known positions", exc)
            return list(self._filled_positions.get_list())
        return [
            LumiPosition(name, Asset(symbol, asset_type=Asset.AssetType.FOREX), qty, avg_fill_price=avg)
            for symbol, (qty, avg) in sorted(net.items())
        ]

    def _pull_position(self, strategy: Any, asset: Asset) -> LumiPosition | None:
        wanted = instrument_name(asset)
        for position in self._pull_positions(strategy):
            if position.asset.symbol == wanted:
                return position
        return None

    # ------------------------------------------------------------------ orders: read
    def _pull_broker_all_orders(self) -> list[AdapterOrder]:
        return self._call(self.adapter.list_orders, include_history=True)

    def _pull_broker_order(self, identifier: str) -> AdapterOrder | None:
        try:
            return self._call(self.adapter.get_order, str(identifier))
        except OrderNotFoundError:
            return None

    def _parse_broker_order(
        self, response: AdapterOrder, strategy_name: str, strategy_object: Any = None
    ) -> LumiOrder:
        """A Lumibot order from an adapter order (units, prices and state already translated)."""
        if strategy_name is None and strategy_object is not None:
            strategy_name = strategy_object.name
        leg = response.legs[0]
        order_type = {
            OrderType.MARKET: LumiOrder.OrderType.MARKET,
            OrderType.LIMIT: LumiOrder.OrderType.LIMIT,
            OrderType.STOP: LumiOrder.OrderType.STOP,
            OrderType.STOP_LIMIT: LumiOrder.OrderType.STOP_LIMIT,
        }[response.order_type]
        order = LumiOrder(
            strategy_name or self._strategy_name_or_sole_subscriber(),
            Asset(leg.symbol.upper(), asset_type=Asset.AssetType.FOREX),
            leg.quantity,
            side=LumiOrder.OrderSide.BUY if leg.side is Side.BUY else LumiOrder.OrderSide.SELL,
            limit_price=response.limit_price,
            stop_price=response.stop_price,
            order_type=order_type,
            time_in_force=(response.time_in_force or TimeInForce.GTC).value,
            identifier=response.order_id,
            status=_STATUS_TO_LUMI[response.state],
            avg_fill_price=response.avg_fill_price,
            tag=response.client_order_id or "",
            date_created=response.created_at,
            error_message=response.reason,
        )
        order.broker_create_date = response.created_at
        order.update_raw(response)
        return order

    def _strategy_name_or_sole_subscriber(self) -> str:
        if self._strategy_name:
            return self._strategy_name
        if len(self._subscribers) == 1:
            return self._subscribers[0].name
        return ""

    # ------------------------------------------------------------------ orders: write
    def _request_for(self, order: LumiOrder, quantity: float | None = None) -> OrderRequest:
        name = instrument_name(order.asset, order.quote)
        side = Side.BUY if order.is_buy_order() else Side.SELL
        order_type = {
            LumiOrder.OrderType.MARKET: OrderType.MARKET,
            LumiOrder.OrderType.LIMIT: OrderType.LIMIT,
            LumiOrder.OrderType.STOP: OrderType.STOP,
        }.get(order.order_type)
        if order_type is None:
            raise InvalidOrderError(
                f"TradeLocker takes market, limit and stop orders, not {order.order_type}",
                broker="tradelocker",
            )
        take_profit = stop_loss = None
        if order.order_class == LumiOrder.OrderClass.BRACKET:
            take_profit = _to_float(order.secondary_limit_price)
            stop_loss = _to_float(order.secondary_stop_price)
        elif order.is_advanced_order():
            raise InvalidOrderError(
                f"TradeLocker has no {order.order_class} orders; use a bracket order or separate orders",
                broker="tradelocker",
            )
        tif = str(order.time_in_force or "gtc").lower()
        return OrderRequest.single(
            name,
            side,
            float(quantity if quantity is not None else order.quantity),
            asset_class=AssetClass.FOREX,
            order_type=order_type,
            limit_price=_to_float(order.limit_price) if order_type is OrderType.LIMIT else None,
            stop_price=_to_float(order.stop_price) if order_type is OrderType.STOP else None,
            time_in_force=TimeInForce.IOC if tif == "ioc" else TimeInForce.GTC,
            take_profit=take_profit,
            stop_loss=stop_loss,
            strategy_tag=self.strategy_tag or order.strategy,
            # Lumibot's own order id: re-submitting the same Lumibot order reconciles, never duplicates.
            intent=f"lumibot:{order.identifier}",
        )

    def _submit_order(self, order: LumiOrder) -> LumiOrder | None:
        try:
            request = self._request_for(order)
            net_qty = self._net_positions().get(request.leg.symbol.upper(), (0.0, None))[0]
            reducing = net_qty != 0 and (net_qty > 0) != (request.leg.side is Side.BUY)
            if reducing and request.order_type is OrderType.MARKET and not request.is_bracket:
                return self._submit_netting(order, request, net_qty)
            placed = self._call(self.adapter.place_order, request)
        except BrokerError as exc:
            self._dispatch_error(order, f"TradeLocker refused {order}: {exc}")
            return order
        order.identifier = placed.order_id
        order.status = LumiOrder.OrderStatus.SUBMITTED
        order.update_raw(placed)
        self._unprocessed_orders.append(order)
        self._dispatch(self.NEW_ORDER, order=order)
        return order

    def _submit_netting(self, order: LumiOrder, request: OrderRequest, net_qty: float) -> LumiOrder:
        """Close positions against ``order`` (hedging account: see the module docstring)."""
        wanted = request.leg.quantity
        if wanted > abs(net_qty) + 1e-9:
            raise InvalidOrderError(
                f"{order} would reverse the {net_qty:+,.0f} unit position in {request.leg.symbol}; on a "
                "TradeLocker hedging account submit a closing order and a separate opening order",
                broker="tradelocker",
            )
        symbol = request.leg.symbol.upper()
        opposite = [
            p
            for p in self._call(self.adapter.get_positions)
            if p.symbol.upper() == symbol and (p.quantity > 0) == (net_qty > 0)
        ]
        opposite.sort(key=lambda p: (str(p.raw.get("openDate") or ""), p.position_id or ""))
        closing_ids: list[str] = []
        fills: list[tuple[float, float]] = []
        left = wanted
        for position in opposite:
            if left <= 1e-9:
                break
            take = min(left, abs(position.quantity))
            closing = self._close(position, take)
            if closing is not None:
                closing_ids.append(closing.order_id)
                price = closing.avg_fill_price
                if price is not None:
                    fills.append((price, take))
            left -= take
        if not closing_ids:
            raise InvalidOrderError(f"no {symbol} position could be closed for {order}", broker="tradelocker")
        # The closes are TradeLocker's own orders; the Lumibot order stands for all of them and is
        # final at once (the poll never sees this identifier, so it never reports it again).
        order.identifier = f"net-{closing_ids[0]}"
        order.status = LumiOrder.OrderStatus.SUBMITTED
        order.update_raw({"closing_order_ids": closing_ids})
        self._unprocessed_orders.append(order)
        self._dispatch(self.NEW_ORDER, order=order)
        if fills:
            qty = sum(q for _, q in fills)
            avg = sum(p * q for p, q in fills) / qty
            self._dispatch(self.FILLED_ORDER, order=order, price=avg, filled_quantity=float(order.quantity))
        return order

    def _close(self, position: Position, units: float) -> AdapterOrder | None:
        """Close ``units`` of one TradeLocker position (all of it when ``units`` is its size)."""
        adapter = self.adapter
        if abs(units - abs(position.quantity)) < 1e-9:
            return self._call(adapter._close_position, position)
        lots = adapter.units_to_lots(units, position.symbol)
        self._call(
            adapter._request,
            "DELETE",
            f"/trade/positions/{position.position_id}",
            json_body={"qty": f"{lots:.2f}".rstrip("0").rstrip(".")},
        )
        closing_side = "sell" if position.quantity > 0 else "buy"
        closing = [
            o
            for o in self._call(adapter.list_orders)
            if str(o.raw.get("positionId")) == str(position.position_id)
            and o.legs[0].side.value == closing_side
        ]
        closing.sort(key=lambda o: o.created_at or dt.datetime.min.replace(tzinfo=dt.UTC))
        return closing[-1] if closing else None

    def cancel_order(self, order: LumiOrder) -> None:
        if not order.identifier:
            raise ValueError(
                "Order identifier is not set, unable to cancel order. Did you remember to submit it?"
            )
        if str(order.identifier).startswith("net-"):
            return  # netting closes are final on submission
        try:
            self._call(self.adapter.cancel_order, str(order.identifier))
        except BrokerError as exc:
            raise LumibotBrokerAPIError(f"Unable to cancel order at TradeLocker. {exc}") from exc

    def _modify_order(
        self, order: LumiOrder, limit_price: float | None = None, stop_price: float | None = None
    ) -> None:
        if order.is_filled() or order.is_canceled():
            return
        try:
            self._call(
                self.adapter.replace_order,
                str(order.identifier),
                limit_price=_to_float(limit_price),
                stop_price=_to_float(stop_price),
            )
        except BrokerError as exc:
            raise LumibotBrokerAPIError(f"Unable to modify order at TradeLocker. {exc}") from exc

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

    def do_polling(self) -> None:
        """Sync positions, then turn TradeLocker's order states into Lumibot trade events."""
        self.sync_positions(None)
        try:
            broker_orders = self._pull_broker_all_orders()
        except BrokerError as exc:
            logger.warning("tradelocker: order poll failed (%s); retrying at the next poll", exc)
            return
        stored = {o.identifier: o for o in self.get_all_orders()}
        strategy_name = self._strategy_name_or_sole_subscriber()
        for raw in broker_orders:
            order = self._parse_broker_order(raw, strategy_name)
            known = stored.get(order.identifier)
            if known is None:
                # Before the first poll completes, only orders still working matter (a restarted
                # deployment must not replay yesterday's fills into its positions).
                if self._first_iteration and not order.is_active():
                    continue
                if order.is_active():
                    self._process_new_order(order)
                continue
            known.quantity = order.quantity
            if order.avg_fill_price:
                known.avg_fill_price = order.avg_fill_price
            if order.equivalent_status(known):
                known.status = order.status
                continue
            status = str(order.status).lower()
            if status in ("open", "new", "submitted"):
                self._dispatch(self.NEW_ORDER, order=known)
            elif status == "fill":
                price = order.avg_fill_price if order.avg_fill_price is not None else known.avg_fill_price
                if price is not None:
                    self._dispatch(
                        self.FILLED_ORDER, order=known, price=price, filled_quantity=order.quantity
                    )
            elif status == "canceled":
                self._dispatch(self.CANCELED_ORDER, order=known)
            elif status == "error":
                self._dispatch(
                    self.ERROR_ORDER, order=known, error_msg=raw.reason or f"TradeLocker rejected {known}"
                )
        seen = {o.order_id for o in broker_orders}
        for order in self.get_tracked_orders():
            if (
                order.is_active()
                and order.identifier not in seen
                and not str(order.identifier).startswith("net-")
            ):
                # TradeLocker dropped it from both lists: it is no longer working.
                self._dispatch(self.CANCELED_ORDER, order=order)
        self._first_iteration = False

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop polling, end the broker's threads and release the adapter's HTTP client."""
        self.cleanup_streams()
        self._call(self.adapter.close)
