"""Tradier for Lumibot: :class:`TradierBroker`, the generic :class:`brokers.lumibot_broker.AdapterBroker` over
a :class:`brokers.tradier.TradierAdapter` (every order through the adapter), with Lumibot's own Tradier data
source for bars, quotes and option chains (:class:`TradierMarketData`).

Why Lumibot's data source: it already turns Tradier's timesales, history, quotes and chains into Lumibot's
``Bars``, ``get_chains`` and ``get_chain_full_info`` the live strategy reads. It talks through
``lumiwealth_tradier``, whose clients take their base URL from a method returning a module constant
(``TRADIER_SANDBOX_URL`` / ``TRADIER_LIVE_URL``); :class:`TradierMarketData` sets the URL on its own client
instances instead, so nothing global is rewritten and paper data stays on the credentials' base URL. It only
reads market data: no order goes through ``lumiwealth_tradier``.

Futures (``FARM_ENABLE_FUTURES=1``): a contract is ``Asset("MESZ26", asset_type="future")`` to Lumibot and
``/MESZ26`` to Tradier, so :class:`TradierMarketData` asks for bars and quotes of the ``/``-prefixed symbol,
and reads a future's last price itself (``lumiwealth_tradier`` indexes quotes by symbol with ``/`` turned into
``.``, share classes' spelling, so its own lookup of ``/MESZ26`` misses). Futures orders need nothing here:
they go through the adapter like every other order (:mod:`brokers.lumibot_broker`).

Lumibot behaviour kept: sandbox (paper) data is treated as 15 minutes late (``delay``), as Lumibot's Tradier
broker does; the live strategy decides on the bars as delivered (see :mod:`brokers.live`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from brokers.lumibot_broker import AdapterBroker
from brokers.risk import RiskLimitBreached
from brokers.tradier import TradierAdapter
from evaluator.lumibot.env import no_dotenv

with no_dotenv():
    from lumibot.data_sources.tradier_data import TradierData
    from lumibot.entities import Asset

__all__ = ["TradierBroker", "TradierMarketData", "is_future", "tradier_data_asset"]

logger = logging.getLogger(__name__)

SANDBOX_DELAY_MINUTES = 15
_FUTURE_TYPES = ("future", "cont_future")


def is_future(asset: Any) -> bool:
    return asset is not None and str(getattr(asset, "asset_type", "")) in _FUTURE_TYPES


def tradier_data_asset(asset: Any) -> Any:
    """The asset Lumibot's Tradier data source should ask for: a future as its ``/``-prefixed symbol."""
    if not is_future(asset):
        return asset
    return Asset("/" + str(asset.symbol).lstrip("/"), asset_type="stock")


class TradierMarketData(TradierData):
    """Lumibot's Tradier data source reading from ``base_url`` (``.../v1`` or the root)."""

    def __init__(self, base_url: str, account_id: str, api_key: str, *, paper: bool, **kwargs: Any) -> None:
        kwargs.setdefault("delay", SANDBOX_DELAY_MINUTES if paper else 0)
        super().__init__(account_number=account_id, access_token=api_key, paper=paper, **kwargs)
        root = base_url.rstrip("/").removesuffix("/v1")
        for client in (self.tradier.account, self.tradier.orders, self.tradier.market):
            client.base_url = lambda root=root: root  # per instance: lumiwealth appends "v1/..." itself

    def get_historical_prices(self, asset: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get_historical_prices(tradier_data_asset(asset), *args, **kwargs)

    def get_last_price(self, asset: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_future(asset):
            return super().get_last_price(asset, *args, **kwargs)
        symbol = tradier_data_asset(asset).symbol  # read the one quote asked for (see the module note)
        try:
            frame = self.tradier.market.get_quotes(symbol)
            return float(frame["last"].iloc[0])
        except Exception as exc:  # Lumibot's data sources answer None when a price is unavailable
            logger.warning("no last price for %s from Tradier: %s", symbol, exc)
            return None

    def get_quote(self, asset: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get_quote(tradier_data_asset(asset), *args, **kwargs)


class TradierBroker(AdapterBroker):
    """The Lumibot broker of a Tradier account: orders through ``adapter``, data from
    :class:`TradierMarketData` on the adapter's base URL with the adapter's key."""

    def __init__(
        self,
        adapter: TradierAdapter,
        *,
        paper: bool = True,
        polling_interval: float = 5.0,
        market: str = "NYSE",
        connect_stream: bool = True,
        strategy_tag: str | None = None,
        on_risk_breach: Callable[[RiskLimitBreached], None] | None = None,
        data_delay: int | None = None,
    ) -> None:
        data = TradierMarketData(
            adapter.base_url,
            adapter.account_id,
            adapter.api_key.get_secret_value(),
            paper=paper,
            **({} if data_delay is None else {"delay": data_delay}),
        )
        super().__init__(
            adapter,
            data_source=data,
            polling_interval=polling_interval,
            market=market,
            connect_stream=connect_stream,
            strategy_tag=strategy_tag,
            on_risk_breach=on_risk_breach,
        )
