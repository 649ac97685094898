"""A fake Tradier brokerage API (``/v1``) with the documented JSON shapes and quirks.

Shapes follow https://documentation.tradier.com/brokerage-api: ``{"balances": {...}}``,
``{"positions": {"position": [...]}}`` (an object when there is one, the string ``"null"`` when none),
``{"orders": {"order": [...]}}``, ``{"order": {"id": ..., "status": "ok"}}`` on submit, form-encoded
POST/PUT bodies, ``tag`` only returned with ``includeTags=true``, plain-text 401 "Invalid Access Token",
400 ``{"errors": {"error": [...]}}`` refusals, "order already in finalized state" on late cancels.

Fills are immediate and deterministic: market orders at the ask (buys) / bid (sells), limit orders when
marketable, otherwise they rest. Prices move only when a test calls ``set_quote``, which works the resting
equity and option orders (stops trigger there) and the exits of brackets: an OCO (``class=oco``, two indexed
exit legs, no entry) and an OTOCO's exits once its entry filled; one exit filling cancels the other. A leg
of an advanced order is read (GET) and modified (PUT) by its own id.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ._server import FakeServer, RecordedRequest, Response
from .tradier_market import TradierMarketData

_OCC = re.compile(r"^([A-Z]{1,6})(\d{6})([CP])(\d{8})$")
# futures contracts (``/MESZ26``): root, month code, two-digit year; dollars per point by root
_FUTURE = re.compile(r"^/([A-Z0-9]{1,4}?)[FGHJKMNQUVXZ]\d{2}$")
_FUTURE_MULTIPLIERS = {"MES": 5.0, "ES": 50.0, "MNQ": 2.0, "NQ": 20.0, "MGC": 10.0, "GC": 100.0}
_TAG = re.compile(r"^[A-Za-z0-9-]{1,255}$")
_BUY_SIDES = {"buy", "buy_to_cover", "buy_to_open", "buy_to_close"}
_EQUITY_SIDES = {"buy", "sell", "buy_to_cover", "sell_short"}
_OPTION_SIDES = {"buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"}
_FINAL = {"filled", "canceled", "rejected", "expired"}

_EASTERN = ZoneInfo("America/New_York")
TRADE_DATE_MS = 1763150400000  # 2025-11-14T20:00:00Z, fixed so quotes are deterministic


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class FakeTradier(TradierMarketData, FakeServer):
    prefix = "/v1"
    CHAIN_STRIKES = range(580, 605, 5)

    def __init__(
        self,
        *,
        token: str = "sbx-TrAdIeR-0123456789abcdef",
        account_id: str = "VA12345678",
        cash: float = 100_000.0,
        echo_secret_in_errors: bool = False,
    ) -> None:
        super().__init__()
        self.token = token
        self.account_id = account_id
        self.cash = cash
        self.realized_today = 0.0
        self.echo_secret_in_errors = echo_secret_in_errors
        self.positions: dict[str, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self._next_order_id = 1000
        self._next_position_id = 500
        self.history_requests = 0
        # False: a PUT on a leg of an advanced order is refused (Tradier's sandbox behaviour is unconfirmed)
        self.modifiable_legs = True
        self.session_volumes: dict[str, float] = {}  # daily volume by symbol (futures' front month)
        # timesales around the clock, every day (a market that never closes), so a test's latest bar is
        # always the minute just ended whatever the wall clock says
        self.all_hours = False
        self.equity_quotes: dict[str, tuple[float, float, float]] = {
            "SPY": (590.11, 590.13, 590.12),
            "AAPL": (227.40, 227.45, 227.43),
            "/ESZ25": (6000.00, 6000.25, 6000.25),
        }
        self.expirations = {"SPY": ["2025-11-21", "2025-11-28", "2025-12-19"]}

    # ------------------------------------------------------------ helpers for tests
    def order_count(self) -> int:
        """Orders the account holds (a bracket or multi-leg order counts once)."""
        with self.lock:
            return len(self.orders)

    def set_quote(self, symbol: str, bid: float, ask: float, last: float | None = None) -> None:
        """Move a stock's quote and work the resting orders it prices (the stock's and its options'):
        limits fill once marketable, stops trigger once the touch reaches them and fill at the touch."""
        with self.lock:
            self.equity_quotes[symbol] = (bid, ask, last if last is not None else round((bid + ask) / 2, 2))
            for order in list(self.orders.values()):
                if order["status"] in _FINAL and order["class"] not in ("oco", "otoco", "oto"):
                    continue
                if order["class"] in ("oco", "otoco", "oto"):
                    self._work_exits(order, symbol)
                    continue
                if order["class"] not in ("equity", "option", "future") or not self._prices_with(order, symbol):
                    continue
                price = self._triggered(order)
                if price is not None:
                    self._fill(order, price)

    def _prices_with(self, record: dict[str, Any], symbol: str) -> bool:
        instrument = self._instrument(record)
        match = _OCC.match(instrument)
        return instrument == symbol or bool(match and match[1] == symbol)

    def _triggered(self, record: dict[str, Any]) -> float | None:
        price = self._marketable(record)
        if price is None and record["type"] == "stop":
            price = self._stop_touch(record)
        return price

    def _work_exits(self, order: dict[str, Any], symbol: str | None = None) -> None:
        """The working exits of an OCO (or of an OTOCO whose entry filled): the first one the price reaches
        fills, the other is canceled."""
        legs = order["leg"] if order["class"] == "oco" else order["leg"][1:]
        if order["class"] != "oco" and order["leg"][0]["status"] != "filled":
            return
        for leg in legs:
            if leg["status"] in _FINAL or (symbol is not None and not self._prices_with(leg, symbol)):
                continue
            price = self._triggered(leg)
            if price is None:
                continue
            self._fill(leg, price)
            for other in legs:
                if other is not leg and other["status"] not in _FINAL:
                    other["status"] = "canceled"
            if order["class"] == "oco":
                order.update(
                    {"status": "filled", "exec_quantity": leg["quantity"], "avg_fill_price": price}
                )
            return

    def _stop_touch(self, order: dict[str, Any]) -> float | None:
        """Fill price of a resting stop the current quote triggers, else None."""
        bid, ask, _ = self._prices(self._instrument(order))  # type: ignore[misc]
        if order["side"] in _BUY_SIDES:
            return ask if ask >= order["stop_price"] else None
        return bid if bid <= order["stop_price"] else None

    # ------------------------------------------------------------ prices
    def _option_price(self, symbol: str) -> tuple[float, float, float] | None:
        match = _OCC.match(symbol)
        if not match or match[1] not in self.equity_quotes:
            return None
        underlying = self.equity_quotes[match[1]][2]
        strike = int(match[4]) / 1000
        intrinsic = max(0.0, underlying - strike) if match[3] == "C" else max(0.0, strike - underlying)
        mid = round(intrinsic + 1.50 + abs(underlying - strike) * 0.02, 2)
        return (round(mid - 0.05, 2), round(mid + 0.05, 2), mid)

    def _prices(self, symbol: str) -> tuple[float, float, float] | None:
        return self.equity_quotes.get(symbol) or self._option_price(symbol)

    def _quote(self, symbol: str) -> dict[str, Any]:
        bid, ask, last = self._prices(symbol)  # type: ignore[misc]
        option = _OCC.match(symbol)
        quote: dict[str, Any] = {
            "symbol": symbol,
            "description": f"{symbol} test instrument",
            "exch": "Q",
            "type": "option" if option else ("future" if symbol.startswith("/") else "etf"),
            "last": last,
            "change": 0.85,
            "volume": 51234567,
            "open": round(last - 1.0, 2),
            "high": round(last + 2.0, 2),
            "low": round(last - 2.5, 2),
            "close": None,
            "bid": bid,
            "ask": ask,
            "change_percentage": 0.14,
            "average_volume": 60123456,
            "last_volume": 100,
            "trade_date": TRADE_DATE_MS,
            "prevclose": round(last - 0.85, 2),
            "week_52_high": round(last * 1.05, 2),
            "week_52_low": round(last * 0.8, 2),
            "bidsize": 3,
            "bidexch": "P",
            "bid_date": TRADE_DATE_MS,
            "asksize": 5,
            "askexch": "Q",
            "ask_date": TRADE_DATE_MS,
            "root_symbols": option[1] if option else symbol,
        }
        if option:
            quote.update(
                {
                    "underlying": option[1],
                    "strike": int(option[4]) / 1000,
                    "open_interest": 1234,
                    "contract_size": 100,
                    "expiration_date": self._occ_date(option[2]),
                    "expiration_type": "standard",
                    "option_type": "call" if option[3] == "C" else "put",
                    "root_symbol": option[1],
                }
            )
        return quote

    @staticmethod
    def _occ_date(yymmdd: str) -> str:
        return date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])).isoformat()

    @staticmethod
    def occ(root: str, expiration: str, right: str, strike: float) -> str:
        exp = date.fromisoformat(expiration)
        return f"{root}{exp:%y%m%d}{right}{int(round(strike * 1000)):08d}"

    # ------------------------------------------------------------ routing
    def route(self, request: RecordedRequest) -> Response:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            given = auth.removeprefix("Bearer ")
            text = f"Invalid Access Token: {given}" if self.echo_secret_in_errors else "Invalid Access Token"
            return Response(401, text)
        path = request.path.removeprefix(self.prefix)
        query = {k: v[-1] for k, v in request.query.items()}
        acct = f"/accounts/{self.account_id}"
        if request.method == "GET":
            if path == "/user/profile":
                return Response(200, self._profile())
            if path == f"{acct}/balances":
                return Response(200, self._balances())
            if path == f"{acct}/positions":
                return Response(200, self._positions())
            if path == f"{acct}/orders":
                return Response(200, self._orders_list(query))
            if m := re.fullmatch(rf"{acct}/orders/(\d+)", path):
                order = self._find(int(m[1]))
                if order is None:
                    return Response(404, "Order not found")
                return Response(200, {"order": self._render_order(order, query)})
            if path == "/markets/quotes":
                return Response(200, self._quotes(query.get("symbols", "")))
            if path == "/markets/timesales":
                return self._timesales(query)
            if path == "/markets/history":
                return self._history(query)
            if path == "/markets/options/expirations":
                return Response(200, self._expirations(query))
            if path == "/markets/options/chains":
                return Response(200, self._chain(query.get("symbol", ""), query.get("expiration", "")))
        if request.method == "POST" and path == f"{acct}/orders":
            return self._place(request.form())
        if request.method == "PUT" and (m := re.fullmatch(rf"{acct}/orders/(\d+)", path)):
            return self._modify(int(m[1]), request.form())
        if request.method == "DELETE" and (m := re.fullmatch(rf"{acct}/orders/(\d+)", path)):
            return self._cancel(int(m[1]))
        if path.startswith("/accounts/") and not path.startswith(acct):
            return Response(401, "Invalid Access Token")  # Tradier hides other accounts behind 401
        return Response(404, f"no route {request.method} {request.path}")

    # ------------------------------------------------------------ account
    def _profile(self) -> dict[str, Any]:
        return {
            "profile": {
                "account": {
                    "account_number": self.account_id,
                    "classification": "individual",
                    "date_created": "2024-06-23T22:04:20.000Z",
                    "day_trader": False,
                    "option_level": 6,
                    "status": "active",
                    "type": "margin",
                    "last_update_date": "2024-06-23T22:04:20.000Z",
                },
                "id": "id-sb-2r01lpprbg",
                "name": "Paper Trader",
            }
        }

    def _multiplier(self, symbol: str) -> float:
        future = _FUTURE.match(symbol)
        if future:
            return _FUTURE_MULTIPLIERS[future[1]]
        return 100.0 if _OCC.match(symbol) else 1.0

    def _mark(self, symbol: str) -> float:
        bid, ask, _ = self._prices(symbol)  # type: ignore[misc]
        return (bid + ask) / 2

    def equity(self) -> float:
        with self.lock:
            return self.cash + sum(
                self._mark(s) * p["quantity"] * self._multiplier(s) for s, p in self.positions.items()
            )

    def _balances(self) -> dict[str, Any]:
        long_stock = sum(
            self._mark(s) * p["quantity"]
            for s, p in self.positions.items()
            if not _OCC.match(s) and p["quantity"] > 0
        )
        long_option = sum(
            self._mark(s) * p["quantity"] * 100
            for s, p in self.positions.items()
            if _OCC.match(s) and p["quantity"] > 0
        )
        short_value = sum(
            self._mark(s) * p["quantity"] * self._multiplier(s)
            for s, p in self.positions.items()
            if p["quantity"] < 0
        )
        open_pl = sum(
            self._mark(s) * p["quantity"] * self._multiplier(s) - p["cost_basis"]
            for s, p in self.positions.items()
        )
        working = sum(1 for o in self.orders.values() if o["status"] not in _FINAL)
        return {
            "balances": {
                "option_short_value": 0,
                "total_equity": round(self.equity(), 2),
                "account_number": self.account_id,
                "account_type": "margin",
                "close_pl": round(self.realized_today, 2),
                "current_requirement": round(long_stock * 0.25, 2),
                "equity": 0,
                "long_market_value": round(long_stock + long_option, 2),
                "market_value": round(long_stock + long_option + short_value, 2),
                "open_pl": round(open_pl, 2),
                "option_long_value": round(long_option, 2),
                "option_requirement": 0,
                "pending_orders_count": working,
                "short_market_value": round(short_value, 2),
                "stock_long_value": round(long_stock, 2),
                "total_cash": round(self.cash, 2),
                "uncleared_funds": 0,
                "pending_cash": 0,
                "margin": {
                    "fed_call": 0,
                    "maintenance_call": 0,
                    "option_buying_power": round(self.cash, 2),
                    "stock_buying_power": round(self.cash * 2, 2),
                    "stock_short_value": 0,
                    "sweep": 0,
                },
            }
        }

    def _positions(self) -> dict[str, Any]:
        rows = [
            {
                "cost_basis": round(p["cost_basis"], 2),
                "date_acquired": p["date_acquired"],
                "id": p["id"],
                "quantity": float(p["quantity"]),
                "symbol": symbol,
            }
            for symbol, p in self.positions.items()
        ]
        if not rows:
            return {"positions": "null"}
        return {"positions": {"position": rows[0] if len(rows) == 1 else rows}}

    # ------------------------------------------------------------ market data
    # ------------------------------------------------------------ orders
    def _new_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def _reject(self, *messages: str) -> Response:
        return Response(400, {"errors": {"error": list(messages)}})

    def _leg_record(
        self,
        symbol: str,
        option_symbol: str | None,
        side: str,
        qty: float,
        typ: str,
        price: float | None,
        stop: float | None,
        duration: str,
        klass: str,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self._new_id(),
            "type": typ,
            "symbol": symbol,
            "side": side,
            "quantity": float(qty),
            "status": "pending",
            "duration": duration,
            "avg_fill_price": 0.0,
            "exec_quantity": 0.0,
            "last_fill_price": 0.0,
            "last_fill_quantity": 0.0,
            "remaining_quantity": float(qty),
            "create_date": _now_iso(),
            "transaction_date": _now_iso(),
            "class": klass,
        }
        if option_symbol:
            record["option_symbol"] = option_symbol
        if price is not None:
            record["price"] = price
        if stop is not None:
            record["stop_price"] = stop
        return record

    def _instrument(self, record: dict[str, Any]) -> str:
        return record.get("option_symbol") or record["symbol"]

    def _validate_leg(
        self,
        klass: str,
        symbol: str,
        option_symbol: str | None,
        side: str,
        qty: str,
        typ: str,
        price: str | None,
        stop: str | None,
    ) -> str | None:
        instrument = option_symbol or symbol
        if not instrument or not self._prices(instrument):
            return f"Invalid symbol {instrument!r}"
        allowed = (
            _OPTION_SIDES
            if klass == "option"
            else _EQUITY_SIDES
            if klass in ("equity", "future")
            else _EQUITY_SIDES | _OPTION_SIDES
        )
        if side not in allowed:
            return f"Invalid side {side!r} for class {klass}"
        try:
            if float(qty) <= 0:
                return "Quantity must be positive"
        except ValueError:
            return f"Invalid quantity {qty!r}"
        if typ in ("limit", "stop_limit") and not price:
            return "Price is required for limit orders"
        if typ in ("stop", "stop_limit") and not stop:
            return "Stop price is required for stop orders"
        if klass == "future" and not instrument.startswith("/"):
            return "Futures symbols start with '/'"
        return None

    def _place(self, form: dict[str, str]) -> Response:
        klass = form.get("class", "")
        duration = form.get("duration", "")
        tag = form.get("tag")
        if duration not in ("day", "gtc", "pre", "post"):
            return self._reject(f"Invalid duration {duration!r}")
        if tag is not None and not _TAG.match(tag):
            return self._reject("Tag must contain letters, numbers and dashes only")
        if klass in ("equity", "option", "future"):
            error = self._validate_leg(
                klass,
                form.get("symbol", ""),
                form.get("option_symbol"),
                form.get("side", ""),
                form.get("quantity", "0"),
                form.get("type", ""),
                form.get("price"),
                form.get("stop"),
            )
            if error:
                return self._reject(error)
            order = self._leg_record(
                form["symbol"],
                form.get("option_symbol"),
                form["side"],
                float(form["quantity"]),
                form["type"],
                float(form["price"]) if form.get("price") else None,
                float(form["stop"]) if form.get("stop") else None,
                duration,
                klass,
            )
            if not self._affordable(order):
                return self._reject("You do not have enough buying power for this trade.")
        elif klass == "multileg":
            order = self._place_multileg(form, duration)
            if isinstance(order, Response):
                return order
        elif klass in ("otoco", "oto", "oco"):
            order = self._place_bracket(form, klass, duration)
            if isinstance(order, Response):
                return order
        else:
            return self._reject(f"Invalid order class {klass!r}")
        if tag:
            order["tag"] = tag
        self.orders[order["id"]] = order
        self._work(order)
        return Response(
            200,
            {
                "order": {
                    "id": order["id"],
                    "status": "ok",
                    "partner_id": "3a8bbee1-5184-4ffe-8a0c-294fbad1aee9",
                }
            },
        )

    def _affordable(self, order: dict[str, Any]) -> bool:
        if order["side"] not in _BUY_SIDES:
            return True
        instrument = self._instrument(order)
        # a future needs its initial margin (a tenth of the notional here), not the notional
        margin = 0.1 if _FUTURE.match(instrument) else 1.0
        notional = self._prices(instrument)[1] * order["quantity"] * self._multiplier(instrument)  # type: ignore[index]
        return notional * margin <= self.cash * 2

    def _place_multileg(self, form: dict[str, str], duration: str) -> dict[str, Any] | Response:
        legs = []
        index = 0
        while f"option_symbol[{index}]" in form:
            error = self._validate_leg(
                "option",
                form.get("symbol", ""),
                form[f"option_symbol[{index}]"],
                form.get(f"side[{index}]", ""),
                form.get(f"quantity[{index}]", "0"),
                "market",
                None,
                None,
            )
            if error:
                return self._reject(f"leg {index}: {error}")
            legs.append(
                self._leg_record(
                    form["symbol"],
                    form[f"option_symbol[{index}]"],
                    form[f"side[{index}]"],
                    float(form[f"quantity[{index}]"]),
                    "market",
                    None,
                    None,
                    duration,
                    "option",
                )
            )
            index += 1
        if not 2 <= len(legs) <= 4:
            return self._reject(f"Multileg orders need 2 to 4 legs, got {len(legs)}")
        typ = form.get("type", "")
        if typ not in ("market", "debit", "credit", "even"):
            return self._reject(f"Invalid multileg type {typ!r}")
        if typ in ("debit", "credit") and not form.get("price"):
            return self._reject("Price is required for debit and credit orders")
        order = self._leg_record(
            form["symbol"],
            None,
            "buy",
            min(leg["quantity"] for leg in legs),
            typ,
            float(form["price"]) if form.get("price") else None,
            None,
            duration,
            "multileg",
        )
        order.update(
            {"num_legs": len(legs), "strategy": "condor" if len(legs) == 4 else "spread", "leg": legs}
        )
        return order

    def _place_bracket(self, form: dict[str, str], klass: str, duration: str) -> dict[str, Any] | Response:
        legs = []
        for index in range({"otoco": 3}.get(klass, 2)):
            symbol = form.get(f"symbol[{index}]", "")
            option_symbol = form.get(f"option_symbol[{index}]")
            typ = form.get(f"type[{index}]", "")
            error = self._validate_leg(
                "bracket",
                symbol,
                option_symbol,
                form.get(f"side[{index}]", ""),
                form.get(f"quantity[{index}]", "0"),
                typ,
                form.get(f"price[{index}]"),
                form.get(f"stop[{index}]"),
            )
            if error:
                return self._reject(f"leg {index}: {error}")
            legs.append(
                self._leg_record(
                    symbol,
                    option_symbol,
                    form[f"side[{index}]"],
                    float(form[f"quantity[{index}]"]),
                    typ,
                    float(form[f"price[{index}]"]) if form.get(f"price[{index}]") else None,
                    float(form[f"stop[{index}]"]) if form.get(f"stop[{index}]") else None,
                    duration,
                    "option" if option_symbol else "equity",
                )
            )
        if klass == "oco":
            if {leg["type"] for leg in legs} != {"limit", "stop"} or legs[0]["side"] != legs[1]["side"]:
                return self._reject("An OCO order needs a limit and a stop leg on the same side")
            order = self._leg_record(
                legs[0]["symbol"],
                legs[0].get("option_symbol"),
                legs[0]["side"],
                legs[0]["quantity"],
                "oco",
                None,
                None,
                duration,
                "oco",
            )
            order.update({"num_legs": 2, "strategy": "oco", "leg": legs})
            return order
        entry = legs[0]
        order = self._leg_record(
            entry["symbol"],
            entry.get("option_symbol"),
            entry["side"],
            entry["quantity"],
            entry["type"],
            entry.get("price"),
            entry.get("stop_price"),
            duration,
            klass,
        )
        order.update({"num_legs": len(legs), "strategy": klass, "leg": legs})
        return order

    def _marketable(self, leg: dict[str, Any]) -> float | None:
        """Fill price if ``leg`` can trade now, else None."""
        bid, ask, _ = self._prices(self._instrument(leg))  # type: ignore[misc]
        buying = leg["side"] in _BUY_SIDES
        touch = ask if buying else bid
        typ = leg["type"]
        if typ == "market":
            return touch
        if typ == "limit":
            return touch if (leg["price"] >= ask if buying else leg["price"] <= bid) else None
        return None  # a stop triggers only when set_quote moves the price through it

    def _fill(self, leg: dict[str, Any], price: float) -> None:
        instrument = self._instrument(leg)
        qty = leg["quantity"]
        signed = qty if leg["side"] in _BUY_SIDES else -qty
        mult = self._multiplier(instrument)
        self.cash -= price * signed * mult
        pos = self.positions.get(instrument)
        if pos is None:
            self._next_position_id += 1
            self.positions[instrument] = {
                "id": self._next_position_id,
                "quantity": signed,
                "cost_basis": price * signed * mult,
                "date_acquired": _now_iso(),
            }
        else:
            old = pos["quantity"]
            new = old + signed
            if old * signed > 0:
                pos["cost_basis"] += price * signed * mult
            else:
                avg = pos["cost_basis"] / (old * mult)
                closed = min(abs(signed), abs(old)) * (1 if old > 0 else -1)
                self.realized_today += (price - avg) * closed * mult
                if new * old > 0:
                    pos["cost_basis"] = avg * new * mult
                elif new != 0:
                    pos["cost_basis"] = price * new * mult
            pos["quantity"] = new
            if abs(new) < 1e-9:
                del self.positions[instrument]
        leg.update(
            {
                "status": "filled",
                "avg_fill_price": price,
                "exec_quantity": qty,
                "last_fill_price": price,
                "last_fill_quantity": qty,
                "remaining_quantity": 0.0,
                "transaction_date": _now_iso(),
            }
        )

    def _work(self, order: dict[str, Any]) -> None:
        """Move a newly placed or modified order as far as current prices allow."""
        if order["status"] in _FINAL:
            return
        klass = order["class"]
        if klass == "multileg":
            legs = order["leg"]
            prices = {id(leg): self._marketable({**leg, "type": "market"}) for leg in legs}
            net = sum(p * (1 if leg["side"] in _BUY_SIDES else -1) for leg in legs for p in [prices[id(leg)]])
            typ, limit = order["type"], order.get("price") or 0.0
            ok = (
                typ == "market"
                or (typ == "debit" and net <= limit)
                or (typ == "credit" and -net >= limit)
                or (typ == "even" and net <= 0)
            )
            if ok:
                for leg in legs:
                    self._fill(leg, prices[id(leg)])  # type: ignore[arg-type]
                order.update(
                    {
                        "status": "filled",
                        "exec_quantity": order["quantity"],
                        "avg_fill_price": round(net, 2),
                        "remaining_quantity": 0.0,
                    }
                )
            else:
                order["status"] = "open"
                for leg in legs:
                    leg["status"] = "open"
            return
        if klass == "oco":
            order["status"] = "open"
            for leg in order["leg"]:
                leg["status"] = "open"
            self._work_exits(order)
            return
        if klass in ("otoco", "oto"):
            entry, exits = order["leg"][0], order["leg"][1:]
            if entry["status"] != "filled":
                price = self._marketable(entry)
                if price is None:
                    entry["status"] = "open"
                else:
                    self._fill(entry, price)
            for leg in exits:
                if leg["status"] not in _FINAL:
                    leg["status"] = "open" if entry["status"] == "filled" else "pending"
            order["status"] = "open"
            order.update({k: entry[k] for k in ("avg_fill_price", "exec_quantity", "remaining_quantity")})
            return
        price = self._marketable(order)
        if price is None:
            order["status"] = "open"
        else:
            self._fill(order, price)

    def _render_order(self, order: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        rendered = dict(order)
        if query.get("includeTags") != "true":
            rendered.pop("tag", None)
        return rendered

    def _orders_list(self, query: dict[str, str]) -> dict[str, Any]:
        rows = [self._render_order(o, query) for o in self.orders.values()]
        if not rows:
            return {"orders": "null"}
        return {"orders": {"order": rows[0] if len(rows) == 1 else rows}}

    def _find(self, order_id: int) -> dict[str, Any] | None:
        """An order, or a leg of an advanced order, by its id."""
        if order_id in self.orders:
            return self.orders[order_id]
        for order in self.orders.values():
            for leg in order.get("leg") or []:
                if leg["id"] == order_id:
                    return leg
        return None

    def _parent(self, record: dict[str, Any]) -> dict[str, Any] | None:
        for order in self.orders.values():
            if any(leg is record for leg in order.get("leg") or []):
                return order
        return None

    def _modify(self, order_id: int, form: dict[str, str]) -> Response:
        order = self._find(order_id)
        if order is None:
            return Response(404, "Order not found")
        if order["status"] in _FINAL:
            return self._reject("order already in finalized state")
        if "quantity" in form:
            return self._reject("Quantity cannot be modified")
        if not self.modifiable_legs and self._parent(order) is not None:
            return self._reject("Legs of advanced orders cannot be modified")
        for field_name, key in (("type", "type"), ("duration", "duration")):
            if form.get(field_name):
                order[key] = form[field_name]
        if form.get("price"):
            order["price"] = float(form["price"])
        if form.get("stop"):
            order["stop_price"] = float(form["stop"])
        order["transaction_date"] = _now_iso()
        parent = self._parent(order)
        if parent is not None:
            self._work_exits(parent)  # a leg moved through the price fills at once
        else:
            self._work(order)
        return Response(
            200,
            {"order": {"id": order_id, "status": "ok", "partner_id": "3a8bbee1-5184-4ffe-8a0c-294fbad1aee9"}},
        )

    def _cancel(self, order_id: int) -> Response:
        order = self.orders.get(order_id)
        if order is None:
            return Response(404, "Order not found")
        legs = order.get("leg") or []
        working_legs = [leg for leg in legs if leg["status"] not in _FINAL]
        if order["status"] in _FINAL and not working_legs:
            return Response(400, "order already in finalized state")
        for leg in working_legs:
            leg["status"] = "canceled"
        if order["class"] == "oco" and any(leg["status"] == "filled" for leg in legs):
            order["status"] = "filled"
        elif order["class"] in ("otoco", "oto") and legs and legs[0]["status"] == "filled":
            order["status"] = "filled"  # the entry traded; only its exits were canceled
        elif order["status"] not in _FINAL:
            order["status"] = "canceled"
        return Response(200, {"order": {"id": order_id, "status": "ok"}})
