"""TradeLocker (e.g. the broker TrendMarkets) for Lumibot: the data source :class:`TradeLockerData` and
:class:`TradeLockerBroker`, the generic :class:`brokers.lumibot_broker.AdapterBroker` over a
:class:`brokers.tradelocker.TradeLockerAdapter`. Lumibot 4.6.30 ships no TradeLocker broker.

Orders: every order goes through the adapter (see :mod:`brokers.lumibot_broker`). What is TradeLocker's own
lives in the adapter: lots (10,000 EURUSD = 0.1 lot, step 0.01 lot), the hedging account's netting (a sell
against a long closes positions, oldest first, instead of opening a short: ``close_units``; one that would
reverse the position is refused with a message asking for a close and a separate open), and exits attached
to the position (stop-loss and take-profit on the position itself: ``protect_position``).

Assets: a TradeLocker instrument is a Lumibot ``Asset(<instrument name>, asset_type="forex")`` such as
``Asset("EURUSD", "forex")`` or ``Asset("XAUUSD", "forex")``. A strategy may also give the base currency
with a quote asset (``Asset("EUR", "forex")`` + ``quote=Asset("USD", "forex")``); both name EURUSD.
Quantities are units of the base currency (ounces for metals), the unit of :class:`brokers.base.Leg`.

Data: ``get_last_price`` is the bid/ask mid, ``get_historical_prices`` reads ``GET /trade/history``
(``tradableInstrumentId``, INFO ``routeId``, ``resolution``, ``from``/``to`` in ms; answer
``d.barDetails`` rows ``t, o, h, l, c, v``), in chunks below TradeLocker's 20,000-bar limit; timesteps
TradeLocker has no resolution for are resampled from the largest one that divides them.
``get_historical_account_value`` is not available from TradeLocker (``{"hourly": None, "daily": None}``).

Threads: the adapter is single-threaded, so every adapter call holds one lock shared by the broker and its
data source.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd

from brokers.errors import BrokerError
from brokers.lumibot_broker import AdapterBroker, Locked, instrument_name
from brokers.risk import RiskLimitBreached
from brokers.tradelocker import TradeLockerAdapter
from evaluator.lumibot.env import no_dotenv

with no_dotenv():  # Lumibot loads any .env it finds on import; credentials come from brokers.credentials
    from lumibot.data_sources import DataSource
    from lumibot.entities import Asset, Bars, Quote
    from lumibot.tools.helpers import parse_timestep_qty_and_unit

logger = logging.getLogger(__name__)

__all__ = [
    "RESOLUTIONS",
    "TradeLockerBroker",
    "TradeLockerData",
    "instrument_name",
    "resolution_for",
]

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


def resolution_for(minutes: int) -> tuple[str, int]:
    """The TradeLocker resolution to fetch for bars of ``minutes`` and how many of them make one bar."""
    if minutes in RESOLUTIONS:
        return RESOLUTIONS[minutes], 1
    for base in sorted(RESOLUTIONS, reverse=True):
        if base < minutes and minutes % base == 0:
            return RESOLUTIONS[base], minutes // base
    raise ValueError(f"no TradeLocker resolution divides {minutes} minutes")


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
        self._call = Locked(lock)
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


class TradeLockerBroker(AdapterBroker):
    """The Lumibot broker of a TradeLocker account: :class:`~brokers.lumibot_broker.AdapterBroker` with
    :class:`TradeLockerData` (sharing its adapter lock) and the FX market's 24/5 calendar."""

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
        on_risk_breach: Callable[[RiskLimitBreached], None] | None = None,
    ) -> None:
        lock = threading.RLock()
        super().__init__(
            adapter,
            data_source=data_source or TradeLockerData(adapter, lock=lock),
            polling_interval=polling_interval,
            market=market,
            connect_stream=connect_stream,
            config=config,
            strategy_tag=strategy_tag,
            lock=lock,
            on_risk_breach=on_risk_breach,
        )
