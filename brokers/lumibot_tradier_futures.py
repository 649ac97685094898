"""Lumibot's Tradier broker with futures: what a futures deployment on Tradier runs (``FARM_ENABLE_FUTURES=1``).

Lumibot 4.6.30's Tradier broker parses futures positions and orders back from Tradier (a ``/MESZ26``
symbol becomes ``Asset("MESZ26", asset_type="future")``) but refuses to submit a futures order ("Asset
... not supported by Tradier") and its data source asks Tradier for ``MESZ26`` where Tradier spells the
contract ``/MESZ26``. :class:`TradierFuturesBroker` closes both gaps and nothing else:

* a futures order goes through :class:`brokers.tradier.TradierAdapter` (``class=future``, idempotent
  client id in Tradier's tag, the adapter's retries), and is then tracked by Lumibot under Tradier's
  numeric order id, the key Lumibot's own order polling matches on;
* its data source (:class:`FuturesTradierData`) prefixes futures symbols with ``/`` for bars, last prices
  and quotes (and reads a future's last price itself: ``lumiwealth_tradier`` indexes quotes with ``/``
  turned into ``.``, so its own lookup of ``/MESZ26`` misses).

Every other order (stocks, options) takes Lumibot's own path unchanged. Once the generic Lumibot broker
over any ``BrokerAdapter`` replaces Lumibot's Tradier broker for deployments, futures need only its
symbol mapping (:attr:`brokers.futures.FuturesContract.tradier_symbol`) and this module can go.
"""

from __future__ import annotations

import logging
from typing import Any

from lumibot.brokers import Tradier
from lumibot.data_sources.tradier_data import TradierData
from lumibot.entities import Asset

from brokers.base import AssetClass, OrderRequest, OrderType, Side, TimeInForce
from brokers.errors import BrokerError
from brokers.tradier import TradierAdapter

logger = logging.getLogger(__name__)

_FUTURE_TYPES = ("future", "cont_future")


def is_future(asset: Any) -> bool:
    return asset is not None and str(getattr(asset, "asset_type", "")) in _FUTURE_TYPES


def tradier_asset(asset: Any) -> Any:
    """The asset Lumibot's Tradier data source should ask for: a future as its ``/``-prefixed symbol."""
    if not is_future(asset):
        return asset
    return Asset("/" + str(asset.symbol).lstrip("/"), asset_type="stock")


class FuturesTradierData(TradierData):
    """Lumibot's Tradier data with futures symbols spelled the way Tradier spells them."""

    def get_historical_prices(self, asset: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get_historical_prices(tradier_asset(asset), *args, **kwargs)

    def get_last_price(self, asset: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_future(asset):
            return super().get_last_price(asset, *args, **kwargs)
        # lumiwealth_tradier indexes quotes by symbol with "/" turned into "." (share classes), so its own
        # last-price lookup by "/MESZ26" misses: read the one quote asked for instead
        symbol = tradier_asset(asset).symbol
        try:
            frame = self.tradier.market.get_quotes(symbol)
            return float(frame["last"].iloc[0])
        except Exception as exc:  # Lumibot's data sources answer None when a price is unavailable
            logger.warning("no last price for %s from Tradier: %s", symbol, exc)
            return None

    def get_quote(self, asset: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get_quote(tradier_asset(asset), *args, **kwargs)


class TradierFuturesBroker(Tradier):
    """Lumibot's Tradier broker whose futures orders go through ``adapter`` (built with
    ``enable_futures=True``) and whose data source spells futures Tradier's way."""

    def __init__(self, config: dict[str, Any], adapter: TradierAdapter, **kwargs: Any) -> None:
        if not adapter.has("futures"):
            raise ValueError(
                "TradierFuturesBroker needs a TradierAdapter built with enable_futures=True "
                "(set FARM_ENABLE_FUTURES=1)"
            )
        self.futures_adapter = adapter
        paper = bool(config["PAPER"])
        data_source = FuturesTradierData(
            account_number=config["ACCOUNT_NUMBER"],
            access_token=config["ACCESS_TOKEN"],
            paper=paper,
            max_workers=kwargs.get("max_workers", 1),
            delay=15 if paper else 0,  # Lumibot's own default for its Tradier data
        )
        super().__init__(config=config, data_source=data_source, **kwargs)

    def _submit_order(self, order: Any) -> Any:
        if not is_future(order.asset):
            return super()._submit_order(order)
        request = OrderRequest.single(
            str(order.asset.symbol).lstrip("/"),
            Side.BUY if order.is_buy_order() else Side.SELL,
            abs(float(order.quantity)),
            asset_class=AssetClass.FUTURE,
            order_type=OrderType(str(order.order_type)),
            limit_price=float(order.limit_price) if order.limit_price is not None else None,
            stop_price=float(order.stop_price) if order.stop_price is not None else None,
            time_in_force=TimeInForce.GTC if str(order.time_in_force) == "gtc" else TimeInForce.DAY,
            # Lumibot's own id of this order: a retried submit of the same order is the same request
            intent=f"lumibot:{order.identifier}",
        )
        try:
            placed = self.futures_adapter.place_order(request)
        except BrokerError as exc:
            self._safe_stream_dispatch(
                self.ERROR_ORDER, order=order, error_msg=f"Error submitting {order}: {exc}"
            )
            return None
        # Lumibot's polling keys tracked orders by Tradier's order id as the JSON gives it (a number)
        order.identifier = int(placed.order_id) if placed.order_id.isdigit() else placed.order_id
        order.status = "submitted"
        order.update_raw(dict(placed.raw))
        self._unprocessed_orders.append(order)
        self._safe_stream_dispatch(self.NEW_ORDER, order=order)
        return order
