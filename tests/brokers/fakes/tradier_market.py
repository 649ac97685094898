"""The market-data routes of the fake Tradier (quotes, option expirations and chains, timesales, daily
history), mixed into :class:`FakeTradier`; prices come from its ``equity_quotes``."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ._server import Response

_EASTERN = ZoneInfo("America/New_York")


class TradierMarketData:
    """Needs the host's ``_prices``, ``_quote``, ``occ``, ``equity_quotes``, ``expirations``, ``all_hours``,
    ``history_requests`` and ``session_volumes`` (daily volume by symbol: the futures front month)."""

    CHAIN_STRIKES = range(580, 605, 5)
    equity_quotes: dict[str, tuple[float, float, float]]
    expirations: dict[str, list[str]]
    all_hours: bool
    history_requests: int
    session_volumes: dict[str, float]

    def _prices(self, symbol: str) -> tuple[float, float, float] | None:
        raise NotImplementedError

    def _quote(self, symbol: str) -> dict[str, Any]:
        raise NotImplementedError

    def occ(self, root: str, expiration: str, right: str, strike: float) -> str:
        raise NotImplementedError

    def _quotes(self, symbols_param: str) -> dict[str, Any]:
        symbols = [s for s in symbols_param.split(",") if s]
        found = [self._quote(s) for s in symbols if self._prices(s)]
        missing = [s for s in symbols if not self._prices(s)]
        block: dict[str, Any] = {}
        if found:
            block["quote"] = found[0] if len(found) == 1 else found
        if missing:
            block["unmatched_symbols"] = {"symbol": missing[0] if len(missing) == 1 else missing}
        return {"quotes": block}

    def _expirations(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /markets/options/expirations``: bare dates, or with ``strikes=true`` (what Lumibot's
        ``get_chains`` asks for) one object per expiry with its strikes and contract size."""
        dates = self.expirations.get(query.get("symbol", ""))
        if not dates:
            return {"expirations": None}
        if query.get("strikes", "").lower() != "true":
            return {"expirations": {"date": dates}}
        rows = [
            {
                "date": day,
                "contract_size": 100,
                "expiration_type": "standard",
                "strikes": {"strike": [float(k) for k in self.CHAIN_STRIKES]},
            }
            for day in dates
        ]
        return {"expirations": {"expiration": rows if len(rows) > 1 else rows[0]}}

    def _chain(self, symbol: str, expiration: str) -> dict[str, Any]:
        if expiration not in self.expirations.get(symbol, []):
            return {"options": None}
        underlying = self.equity_quotes[symbol][2]
        rows = []
        for strike in self.CHAIN_STRIKES:
            for right in ("C", "P"):
                occ = self.occ(symbol, expiration, right, strike)
                row = self._quote(occ)
                moneyness = (underlying - strike) / 10.0
                delta = 0.5 + moneyness * 0.1 if right == "C" else -0.5 + moneyness * 0.1
                row["greeks"] = {
                    "delta": round(delta, 4),
                    "gamma": 0.0312,
                    "theta": -0.2451,
                    "vega": 0.3112,
                    "rho": 0.0511,
                    "phi": -0.0623,
                    "bid_iv": 0.142,
                    "mid_iv": 0.145,
                    "ask_iv": 0.148,
                    "smv_vol": 0.146,
                    "updated_at": "2025-11-14 19:59:08",
                }
                rows.append(row)
        return {"options": {"option": rows}}

    def bar_close(self, symbol: str, minute: int) -> float:
        """Close of the minute bar ``minute`` (minutes since the epoch): the last price plus a slow
        deterministic wave (0.1%), so indicators have something to chew on."""
        last = self._prices(symbol)[2]  # type: ignore[index]
        return round(last * (1 + 0.001 * math.sin(minute / 45.0)), 2)

    def _timesales(self, query: dict[str, str]) -> Response:
        """``GET /markets/timesales``: minute bars (``interval`` 1min/5min/15min) between ``start`` and
        ``end`` (US/Eastern ``YYYY-MM-DD HH:MM``), weekdays only, 09:30-16:00 with ``session_filter=open``
        and 04:00-20:00 with ``all`` (every minute of every day with ``all_hours``); ``{"series": {"data":
        [...]}}`` or ``{"series": null}``."""
        symbol = query.get("symbol", "")
        if not self._prices(symbol):
            return Response(400, {"errors": {"error": [f"Invalid symbol {symbol!r}"]}})
        interval = {"1min": 1, "5min": 5, "15min": 15}.get(query.get("interval", "1min"))
        if interval is None:
            return Response(400, {"errors": {"error": [f"Invalid interval {query.get('interval')!r}"]}})
        try:
            start = datetime.strptime(query["start"], "%Y-%m-%d %H:%M").replace(tzinfo=_EASTERN)
            end = datetime.strptime(query["end"], "%Y-%m-%d %H:%M").replace(tzinfo=_EASTERN)
        except (KeyError, ValueError):
            return Response(400, {"errors": {"error": ["start and end are required (YYYY-MM-DD HH:MM)"]}})
        open_only = query.get("session_filter", "all") == "open"
        first, last = (9 * 60 + 30, 16 * 60) if open_only else (4 * 60, 20 * 60)
        self.history_requests += 1
        rows = []
        t = start.replace(second=0, microsecond=0)
        t -= timedelta(minutes=t.minute % interval)
        while t <= end:
            minute_of_day = t.hour * 60 + t.minute
            if self.all_hours or (t.weekday() < 5 and first <= minute_of_day < last):
                epoch_min = int(t.timestamp() // 60)
                o, c = self.bar_close(symbol, epoch_min - interval), self.bar_close(symbol, epoch_min)
                rows.append(
                    {
                        "time": t.strftime("%Y-%m-%dT%H:%M:%S"),
                        "timestamp": int(t.timestamp()),
                        "price": c,
                        "open": o,
                        "high": round(max(o, c) + 0.01, 2),
                        "low": round(min(o, c) - 0.01, 2),
                        "close": c,
                        "volume": 1000,
                        "vwap": round((o + c) / 2, 4),
                    }
                )
            t += timedelta(minutes=interval)
        if not rows:
            return Response(200, {"series": None})
        return Response(200, {"series": {"data": rows if len(rows) > 1 else rows[0]}})

    def _history(self, query: dict[str, str]) -> Response:
        """``GET /markets/history``: daily bars between ``start`` and ``end`` (weekdays)."""
        symbol = query.get("symbol", "")
        if not self._prices(symbol):
            return Response(400, {"errors": {"error": [f"Invalid symbol {symbol!r}"]}})
        try:
            day = date.fromisoformat(query["start"])
            end = date.fromisoformat(query["end"])
        except (KeyError, ValueError):
            return Response(400, {"errors": {"error": ["start and end are required (YYYY-MM-DD)"]}})
        self.history_requests += 1
        rows = []
        while day <= end:
            if day.weekday() < 5:
                minute = int(datetime(day.year, day.month, day.day, 16, tzinfo=_EASTERN).timestamp() // 60)
                o, c = self.bar_close(symbol, minute - 390), self.bar_close(symbol, minute)
                rows.append(
                    {
                        "date": day.isoformat(),
                        "open": o,
                        "high": max(o, c) + 0.5,
                        "low": min(o, c) - 0.5,
                        "close": c,
                        "volume": self.session_volumes.get(symbol, 50_000_000),
                    }
                )
            day += timedelta(days=1)
        if not rows:
            return Response(200, {"history": None})
        return Response(200, {"history": {"day": rows if len(rows) > 1 else rows[0]}})

