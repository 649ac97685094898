"""A fake TradeLocker backend (``/backend-api``) speaking the wire protocol of the official client.

Follows what ``tradelocker`` (TradeLocker/tradelocker-python, ``tradelocker_api.py``/``types.py``)
sends and parses, and the public docs at https://public-api.tradelocker.com:

* ``POST /auth/jwt/token`` {email, password, server} -> {accessToken, refreshToken, expireDate} (JWTs
  with an ``exp`` claim); ``POST /auth/jwt/refresh`` {refreshToken}; ``GET /auth/jwt/all-accounts`` ->
  {"accounts": [{id, name, currency, accNum, accountBalance}]} (not wrapped).
* every ``/trade/...`` route needs ``Authorization: Bearer`` and the ``accNum`` header and answers
  ``{"s": "ok", "d": {...}}``; errors are ``{"s": "error", "errmsg": "..."}``.
* orders / ordersHistory / positions / account state are column-oriented arrays of strings whose
  column ids come from ``GET /trade/config`` (``ordersConfig`` ... ``accountDetailsConfig``).
* ``POST /trade/accounts/{accountId}/orders`` JSON {qty (lots), routeId (TRADE route), side, type,
  validity (IOC market / GTC pending), tradableInstrumentId, price, stopPrice, stopLoss(+Type),
  takeProfit(+Type), strategyId (<= 31 chars)} -> {"d": {"orderId": "..."}}.

Account type is hedging: every fill opens its own position, closed with ``DELETE /trade/positions/{id}``.
A filled bracket entry creates its stop-loss (type stop) and take-profit (type limit) orders, linked
from the position's ``stopLossId`` / ``takeProfitId``; ``PATCH /trade/positions/{id}`` {stopLoss,
takeProfit} sets, moves or (null) removes them on an open position. Prices move only when a test calls
``set_quote``, which triggers those orders: the stop-loss at the touch once the bid (a long's) or the ask
(a short's) reaches it, the take-profit likewise; either closes the position and cancels the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ._server import FakeServer, RecordedRequest, Response

ORDERS_COLUMNS = [
    "id",
    "tradableInstrumentId",
    "routeId",
    "qty",
    "side",
    "type",
    "status",
    "filledQty",
    "avgPrice",
    "price",
    "stopPrice",
    "validity",
    "expireDate",
    "createdDate",
    "lastModified",
    "isOpen",
    "positionId",
    "stopLoss",
    "stopLossType",
    "takeProfit",
    "takeProfitType",
    "strategyId",
]
POSITIONS_COLUMNS = [
    "id",
    "tradableInstrumentId",
    "routeId",
    "side",
    "qty",
    "avgPrice",
    "stopLossId",
    "takeProfitId",
    "openDate",
    "unrealizedPl",
    "strategyId",
]
FILLED_COLUMNS = [
    "id",
    "price",
    "side",
    "createdDate",
    "qty",
    "orderId",
    "positionId",
    "tradableInstrumentId",
]
ACCOUNT_COLUMNS = [
    "balance",
    "projectedBalance",
    "availableFunds",
    "blockedBalance",
    "cashBalance",
    "unsettledCash",
    "withdrawalAvailable",
    "stocksValue",
    "optionValue",
    "initialMarginReq",
    "maintMarginReq",
    "marginWarningLevel",
    "blockedForStocks",
    "stockOrdersReq",
    "stopOutLevel",
    "warningMarginReq",
    "marginBeforeWarning",
    "todayGross",
    "todayNet",
    "todayFees",
    "todayVolume",
    "todayTradesCount",
    "openGrossPnL",
    "openNetPnL",
    "positionsCount",
    "ordersCount",
]

LEVERAGE = 100.0
HISTORY_RESOLUTIONS = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1H": 60, "4H": 240, "1D": 1440, "1W": 10080}
_ID_BASE = 7277816997830857000  # TradeLocker ids are 19-digit numbers sent as strings


@dataclass
class FakeInstrument:
    tradable_instrument_id: int
    symbol_id: int
    name: str
    description: str
    kind: str
    trade_route: int
    info_route: int
    contract: float
    bid: float
    ask: float

    def as_json(self) -> dict[str, Any]:
        return {
            "tradableInstrumentId": self.tradable_instrument_id,
            "id": self.symbol_id,
            "name": self.name,
            "description": self.description,
            "type": self.kind,
            "tradingExchange": "TrendMarkets",
            "marketDataExchange": "TrendMarkets",
            "country": None,
            "logoUrl": None,
            "localizedName": self.name,
            "routes": [{"id": self.trade_route, "type": "TRADE"}, {"id": self.info_route, "type": "INFO"}],
            "barSource": "BID",
            "hasIntraday": True,
            "hasDaily": True,
        }


@dataclass
class Book:
    account_id: str
    acc_num: int
    balance: float
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    realized_today: float = 0.0
    trades_today: int = 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _fmt(value: float) -> str:
    return f"{value:.5f}".rstrip("0").rstrip(".") if value else "0"


class FakeTradeLocker(FakeServer):
    prefix = ""

    def __init__(
        self,
        *,
        username: str = "trader@example.com",
        password: str = "Tl-demo-P4ssw0rd-secret",
        server: str = "TrendMarkets-Demo",
        access_lifetime: float = 3600.0,
        strategy_id_column: bool = True,
        echo_secret_in_errors: bool = False,
    ) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.server_name = server
        self.access_lifetime = access_lifetime
        self.strategy_id_column = strategy_id_column
        self.echo_secret_in_errors = echo_secret_in_errors
        self._signing_key = b"fake-tradelocker-signing-key"
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}
        self._serial = 0
        self.history_requests = 0
        self.books = {
            1: Book(account_id="700123", acc_num=1, balance=50_000.0),
            2: Book(account_id="700124", acc_num=2, balance=25_000.0),
        }
        self.instruments = {
            inst.tradable_instrument_id: inst
            for inst in (
                FakeInstrument(
                    278, 315, "EURUSD", "Euro vs US Dollar", "FOREX", 451, 452, 100_000, 1.08490, 1.08500
                ),
                FakeInstrument(
                    279,
                    316,
                    "GBPUSD",
                    "British Pound vs US Dollar",
                    "FOREX",
                    453,
                    454,
                    100_000,
                    1.26510,
                    1.26525,
                ),
                FakeInstrument(
                    340, 410, "XAUUSD", "Gold vs US Dollar", "CFD", 455, 456, 100, 2650.10, 2650.40
                ),
            )
        }

    # ------------------------------------------------------------ test helpers
    def order_count(self, acc_num: int = 1) -> int:
        """Orders the client submitted (bracket SL/TP children and closing orders excluded)."""
        with self.lock:
            return sum(1 for o in self.books[acc_num].orders.values() if o["_origin"] == "client")

    def set_quote(self, name: str, bid: float, ask: float, acc_num: int = 1) -> None:
        """Move an instrument's quote and trigger the stop-losses and take-profits it reaches."""
        with self.lock:
            inst = next(i for i in self.instruments.values() if i.name == name)
            inst.bid, inst.ask = bid, ask
            book = self.books[acc_num]
            for order in list(book.orders.values()):
                if not order["isOpen"] or order["_origin"] not in ("sl", "tp"):
                    continue
                if order["tradableInstrumentId"] != inst.tradable_instrument_id:
                    continue
                selling = order["side"] == "sell"
                touch = bid if selling else ask
                if order["_origin"] == "sl":
                    hit = touch <= order["stopPrice"] if selling else touch >= order["stopPrice"]
                else:
                    hit = touch >= order["price"] if selling else touch <= order["price"]
                if hit and str(order["positionId"]) in book.positions:
                    self._work(book, order, price=touch)

    def revoke_access_tokens(self) -> None:
        with self.lock:
            self._access.clear()

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self._refresh.clear()

    def equity(self, acc_num: int = 1) -> float:
        with self.lock:
            book = self.books[acc_num]
            return book.balance + sum(self._upl(p) for p in book.positions.values())

    # ------------------------------------------------------------ tokens
    def _issue(self, lifetime: float, kind: str) -> str:
        self._serial += 1
        now = time.time()
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "sub": self.username,
            "brandId": "TrendMarkets",
            "type": kind,
            "iat": int(now),
            "exp": int(now + lifetime),
            "jti": self._serial,
        }
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}"

    def _token_pair(self) -> dict[str, Any]:
        access = self._issue(self.access_lifetime, "access")
        refresh = self._issue(7 * 24 * 3600, "refresh")
        self._access[access] = time.time() + self.access_lifetime
        self._refresh[refresh] = time.time() + 7 * 24 * 3600
        return {
            "accessToken": access,
            "refreshToken": refresh,
            "expireDate": time.strftime(
                "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + self.access_lifetime)
            ),
        }

    def _authorized(self, request: RecordedRequest) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expiry = self._access.get(token)
        return expiry is not None and expiry > time.time()

    # ------------------------------------------------------------ routing
    @staticmethod
    def _ok(data: Any = None) -> Response:
        return Response(200, {"s": "ok", "d": data} if data is not None else {"s": "ok"})

    @staticmethod
    def _error(status: int, message: str) -> Response:
        return Response(status, {"s": "error", "errmsg": message})

    def route(self, request: RecordedRequest) -> Response:
        path = request.path.removeprefix("/backend-api")
        if not request.path.startswith("/backend-api"):
            return Response(404, "Not Found")
        if path == "/auth/jwt/token" and request.method == "POST":
            body = request.json() or {}
            if (body.get("email"), body.get("password"), body.get("server")) != (
                self.username,
                self.password,
                self.server_name,
            ):
                detail = (
                    f" (got {body.get('email')} / {body.get('password')})"
                    if self.echo_secret_in_errors
                    else ""
                )
                return self._error(400, "Invalid username or password" + detail)
            return Response(201, self._token_pair())
        if path == "/auth/jwt/refresh" and request.method == "POST":
            token = (request.json() or {}).get("refreshToken", "")
            if self._refresh.get(token, 0) <= time.time():
                return self._error(401, "Invalid refresh token")
            del self._refresh[token]
            return Response(201, self._token_pair())
        if not self._authorized(request):
            return Response(401, {"s": "error", "errmsg": "Unauthorized"})
        if path == "/auth/jwt/all-accounts" and request.method == "GET":
            return Response(
                200,
                {
                    "accounts": [
                        {
                            "id": b.account_id,
                            "name": f"TrendMarkets#{b.acc_num}",
                            "currency": "USD",
                            "accNum": str(b.acc_num),
                            "accountBalance": f"{b.balance:.2f}",
                            "status": "ACTIVE",
                        }
                        for b in self.books.values()
                    ]
                },
            )
        if not path.startswith("/trade/"):
            return Response(404, "Not Found")
        acc_header = request.headers.get("accnum")
        if not acc_header:
            return self._error(400, "Missing accNum header")
        book = self.books.get(int(acc_header)) if acc_header.isdigit() else None
        if book is None:
            return self._error(403, f"Account number {acc_header} does not belong to the user")
        if (m := re.match(r"^/trade/accounts/(\d+)/", path)) and m[1] != book.account_id:
            return self._error(403, f"accountId {m[1]} does not match accNum {acc_header}")
        return self._trade_route(request, path, book)

    def _trade_route(self, request: RecordedRequest, path: str, book: Book) -> Response:
        method = request.method
        query = {k: v[-1] for k, v in request.query.items()}
        base = f"/trade/accounts/{book.account_id}"
        if method == "GET":
            if path == "/trade/config":
                return self._ok(self._config())
            if path == f"{base}/instruments":
                return self._ok({"instruments": [i.as_json() for i in self.instruments.values()]})
            if path == "/trade/quotes":
                return self._quotes(query)
            if path == "/trade/history":
                return self._history(query)
            if path == f"{base}/state":
                return self._ok({"accountDetailsData": self._state(book)})
            if path == f"{base}/orders":
                working = [o for o in book.orders.values() if o["isOpen"]]
                return self._ok({"orders": [self._row(o, self._order_columns()) for o in working]})
            if path == f"{base}/ordersHistory":
                final = [o for o in book.orders.values() if not o["isOpen"]]
                return self._ok({"ordersHistory": [self._row(o, self._order_columns()) for o in final]})
            if path == f"{base}/positions":
                return self._ok({"positions": [self._position_row(p) for p in book.positions.values()]})
        if method == "POST" and path == f"{base}/orders":
            return self._place(book, request.json() or {})
        if (m := re.fullmatch(r"/trade/orders/(\d+)", path)) and method in ("DELETE", "PATCH"):
            order = book.orders.get(m[1])
            if order is None:
                return self._error(404, f"Order {m[1]} not found")
            if not order["isOpen"]:
                return self._error(400, f"Order {m[1]} is not active (status {order['status']})")
            if method == "DELETE":
                self._cancel(book, order)
                return self._ok()
            return self._modify(book, order, request.json() or {})
        if (m := re.fullmatch(r"/trade/positions/(\d+)", path)) and method == "PATCH":
            position = book.positions.get(m[1])
            if position is None:
                return self._error(404, f"Position {m[1]} not found")
            return self._modify_position(book, position, request.json() or {})
        if (m := re.fullmatch(r"/trade/positions/(\d+)", path)) and method == "DELETE":
            position = book.positions.get(m[1])
            if position is None:
                return self._error(404, f"Position {m[1]} not found")
            qty = float((request.json() or {}).get("qty", "0") or 0)
            self._close(book, position, qty)
            return self._ok()
        return Response(404, f"no route {method} {request.path}")

    # ------------------------------------------------------------ config / data
    def _order_columns(self) -> list[str]:
        return [c for c in ORDERS_COLUMNS if self.strategy_id_column or c != "strategyId"]

    def _config(self) -> dict[str, Any]:
        def panel(panel_id: str, title: str, columns: list[str]) -> dict[str, Any]:
            return {"id": panel_id, "title": title, "columns": [{"id": c, "description": c} for c in columns]}

        positions = [c for c in POSITIONS_COLUMNS if self.strategy_id_column or c != "strategyId"]
        return {
            "customerAccess": {
                "orders": True,
                "ordersHistory": True,
                "filledOrders": True,
                "positions": True,
                "symbolInfo": True,
                "marketDepth": True,
            },
            "positionsConfig": panel("positions", "Positions", positions),
            "ordersConfig": panel("orders", "Orders", self._order_columns()),
            "ordersHistoryConfig": panel("ordersHistory", "Orders History", self._order_columns()),
            "filledOrdersConfig": panel("filledOrders", "Filled Orders", FILLED_COLUMNS),
            "accountDetailsConfig": panel("accountDetails", "Account Details", ACCOUNT_COLUMNS),
            "rateLimits": [
                {"rateLimitType": "PLACE_ORDER", "measure": "SECONDS", "intervalNum": 1, "limit": 10}
            ],
            "limits": [{"limitType": "QUOTES_HISTORY_BARS", "limit": 30000}],
        }

    def _quotes(self, query: dict[str, str]) -> Response:
        inst = self.instruments.get(int(query.get("tradableInstrumentId", "0") or 0))
        if inst is None:
            return self._error(400, "Unknown tradableInstrumentId")
        if query.get("routeId") not in (str(inst.info_route), str(inst.trade_route)):
            return self._error(
                400, f"routeId {query.get('routeId')} is not a route of instrument {inst.name}"
            )
        return self._ok({"ap": inst.ask, "bp": inst.bid, "as": 1_000_000.0, "bs": 1_000_000.0})

    def _history(self, query: dict[str, str]) -> Response:
        """``GET /trade/history``: deterministic bars around the instrument's bid (see ``bar_close``).

        TradeLocker answers ``{"s": "ok", "d": {"barDetails": [{t, o, h, l, c, v}]}}`` (t in ms, bar
        start), ``{"s": "no_data"}`` for an empty range, and refuses ranges of more than 20,000 bars.
        """
        inst = self.instruments.get(int(query.get("tradableInstrumentId", "0") or 0))
        if inst is None:
            return self._error(400, "Unknown tradableInstrumentId")
        if query.get("routeId") != str(inst.info_route):
            return self._error(400, f"routeId {query.get('routeId')} is not the INFO route of {inst.name}")
        minutes = HISTORY_RESOLUTIONS.get(query.get("resolution", ""))
        if minutes is None:
            return self._error(400, f"Invalid resolution {query.get('resolution')!r}")
        try:
            start_ms, end_ms = int(query["from"]), int(query["to"])
        except (KeyError, ValueError):
            return self._error(400, "from and to (ms) are required")
        step = minutes * 60_000
        first = -(-start_ms // step) * step
        if (end_ms - first) // step > 20_000:
            return self._error(400, "Requested history exceeds the limit of 20000 bars")
        self.history_requests += 1
        bars = []
        for t in range(first, end_ms, step):
            if time.gmtime(t / 1000).tm_wday >= 5:  # FX is closed on the weekend
                continue
            o, c = self.bar_close(inst, t - step), self.bar_close(inst, t)
            bars.append(
                {
                    "t": t,
                    "o": o,
                    "h": round(max(o, c) + 0.0002, 5),
                    "l": round(min(o, c) - 0.0002, 5),
                    "c": c,
                    "v": 100.0,
                }
            )
        if not bars:
            return Response(200, {"s": "no_data"})
        return self._ok({"barDetails": bars})

    def bar_close(self, inst: FakeInstrument, t_ms: int) -> float:
        """Close of the bar starting at ``t_ms``: the bid plus a slow deterministic wave (0.1%)."""
        return round(inst.bid * (1 + 0.001 * math.sin(t_ms / 60_000 / 45.0)), 5)

    def _upl(self, position: dict[str, Any]) -> float:
        inst = self.instruments[position["tradableInstrumentId"]]
        units = position["qty"] * inst.contract
        if position["side"] == "buy":
            return (inst.bid - position["avgPrice"]) * units
        return (position["avgPrice"] - inst.ask) * units

    def _margin(self, position: dict[str, Any]) -> float:
        inst = self.instruments[position["tradableInstrumentId"]]
        return position["qty"] * inst.contract * position["avgPrice"] / LEVERAGE

    def _state(self, book: Book) -> list[float]:
        upl = sum(self._upl(p) for p in book.positions.values())
        margin = sum(self._margin(p) for p in book.positions.values())
        values = {
            "balance": book.balance,
            "projectedBalance": book.balance + upl,
            "availableFunds": book.balance + upl - margin,
            "blockedBalance": 0.0,
            "cashBalance": book.balance,
            "unsettledCash": 0.0,
            "withdrawalAvailable": book.balance - margin,
            "stocksValue": 0.0,
            "optionValue": 0.0,
            "initialMarginReq": margin,
            "maintMarginReq": margin / 2,
            "marginWarningLevel": 0.0,
            "blockedForStocks": 0.0,
            "stockOrdersReq": 0.0,
            "stopOutLevel": 0.0,
            "warningMarginReq": 0.0,
            "marginBeforeWarning": 0.0,
            "todayGross": book.realized_today,
            "todayNet": book.realized_today,
            "todayFees": 0.0,
            "todayVolume": 0.0,
            "todayTradesCount": float(book.trades_today),
            "openGrossPnL": upl,
            "openNetPnL": upl,
            "positionsCount": float(len(book.positions)),
            "ordersCount": float(sum(1 for o in book.orders.values() if o["isOpen"])),
        }
        return [round(values[c], 2) for c in ACCOUNT_COLUMNS]

    @staticmethod
    def _cell(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return _fmt(value)
        return str(value)

    def _row(self, record: dict[str, Any], columns: list[str]) -> list[str | None]:
        return [self._cell(record.get(c)) for c in columns]

    def _position_row(self, position: dict[str, Any]) -> list[str | None]:
        columns = [c for c in POSITIONS_COLUMNS if self.strategy_id_column or c != "strategyId"]
        return self._row({**position, "unrealizedPl": round(self._upl(position), 2)}, columns)

    # ------------------------------------------------------------ orders
    def _new_id(self) -> str:
        self._serial += 1
        return str(_ID_BASE + self._serial)

    def _place(self, book: Book, body: dict[str, Any]) -> Response:
        for required in ("qty", "routeId", "side", "validity", "type", "tradableInstrumentId"):
            if body.get(required) in (None, ""):
                return self._error(400, f"Field {required} is mandatory")
        try:
            inst = self.instruments[int(body["tradableInstrumentId"])]
        except (KeyError, ValueError):
            return self._error(400, f"Unknown tradableInstrumentId {body['tradableInstrumentId']}")
        if str(body["routeId"]) != str(inst.trade_route):
            return self._error(400, f"routeId {body['routeId']} is not the TRADE route of {inst.name}")
        typ, side, validity = body["type"], body["side"], body["validity"]
        if typ not in ("market", "limit", "stop") or side not in ("buy", "sell"):
            return self._error(400, f"Invalid type/side {typ}/{side}")
        if typ == "market" and validity != "IOC":
            return self._error(400, "Market orders must have IOC TIF")
        if typ != "market" and validity != "GTC":
            return self._error(400, f"{typ} orders must have GTC TIF")
        qty = float(body["qty"])
        if qty < 0.01 or abs(round(qty / 0.01) - qty / 0.01) > 1e-6:
            return self._error(400, f"Invalid qty {body['qty']}: lot step is 0.01")
        if typ == "stop" and not body.get("stopPrice"):
            return self._error(400, "stopPrice is required for stop orders")
        if typ == "limit" and not body.get("price"):
            return self._error(400, "price is required for limit orders")
        strategy_id = body.get("strategyId")
        if strategy_id is not None and len(str(strategy_id)) > 31:
            return self._error(400, "strategyId is longer than 31 characters")
        free = book.balance - sum(self._margin(p) for p in book.positions.values())
        if qty * inst.contract * inst.ask / LEVERAGE > free:
            return self._error(400, "Not enough money to place the order")
        now_ms = int(time.time() * 1000)
        order = {
            "id": self._new_id(),
            "tradableInstrumentId": inst.tradable_instrument_id,
            "routeId": inst.trade_route,
            "qty": qty,
            "side": side,
            "type": typ,
            "status": "New",
            "filledQty": 0.0,
            "avgPrice": 0.0,
            "price": float(body.get("price") or 0.0),
            "stopPrice": float(body.get("stopPrice") or 0.0),
            "validity": validity,
            "expireDate": 0,
            "createdDate": now_ms,
            "lastModified": now_ms,
            "isOpen": True,
            "positionId": 0,
            "stopLoss": float(body["stopLoss"]) if body.get("stopLoss") else None,
            "stopLossType": body.get("stopLossType"),
            "takeProfit": float(body["takeProfit"]) if body.get("takeProfit") else None,
            "takeProfitType": body.get("takeProfitType"),
            "strategyId": strategy_id,
            "_origin": "client",
        }
        book.orders[order["id"]] = order
        self._work(book, order)
        return self._ok({"orderId": order["id"]})

    def _fill_price(self, order: dict[str, Any]) -> float | None:
        inst = self.instruments[order["tradableInstrumentId"]]
        touch = inst.ask if order["side"] == "buy" else inst.bid
        if order["type"] == "market":
            return touch
        if order["type"] == "limit":
            marketable = order["price"] >= inst.ask if order["side"] == "buy" else order["price"] <= inst.bid
            return touch if marketable else None
        return None  # stops never trigger: prices do not move in the fake

    def _work(self, book: Book, order: dict[str, Any], price: float | None = None) -> None:
        price = price if price is not None else self._fill_price(order)
        if price is None:
            return
        order.update(
            {
                "status": "Filled",
                "filledQty": order["qty"],
                "avgPrice": price,
                "isOpen": False,
                "lastModified": int(time.time() * 1000),
            }
        )
        book.trades_today += 1
        if order["_origin"] in ("sl", "tp"):
            self._close(book, book.positions[str(order["positionId"])], order["qty"], price=price, by=order)
            return
        position = {
            "id": self._new_id(),
            "tradableInstrumentId": order["tradableInstrumentId"],
            "routeId": order["routeId"],
            "side": order["side"],
            "qty": order["qty"],
            "avgPrice": price,
            "stopLossId": 0,
            "takeProfitId": 0,
            "openDate": int(time.time() * 1000),
            "strategyId": order.get("strategyId"),
        }
        book.positions[position["id"]] = position
        order["positionId"] = position["id"]
        for key in ("stopLoss", "takeProfit"):
            if order.get(key):
                self._attach(book, position, key, float(order[key]))

    def _attach(self, book: Book, position: dict[str, Any], key: str, level: float) -> None:
        """The stop-loss (a stop order) or take-profit (a limit order) closing ``position`` at ``level``."""
        kind, typ = ("sl", "stop") if key == "stopLoss" else ("tp", "limit")
        now_ms = int(time.time() * 1000)
        child = {
            "id": self._new_id(),
            "tradableInstrumentId": position["tradableInstrumentId"],
            "routeId": position["routeId"],
            "qty": position["qty"],
            "type": typ,
            "side": "sell" if position["side"] == "buy" else "buy",
            "status": "New",
            "filledQty": 0.0,
            "avgPrice": 0.0,
            "price": level if typ == "limit" else 0.0,
            "stopPrice": level if typ == "stop" else 0.0,
            "validity": "GTC",
            "expireDate": 0,
            "createdDate": now_ms,
            "lastModified": now_ms,
            "isOpen": True,
            "positionId": position["id"],
            "stopLoss": None,
            "stopLossType": None,
            "takeProfit": None,
            "takeProfitType": None,
            "strategyId": position.get("strategyId"),
            "_origin": kind,
        }
        book.orders[child["id"]] = child
        position["stopLossId" if kind == "sl" else "takeProfitId"] = child["id"]

    def _modify_position(self, book: Book, position: dict[str, Any], body: dict[str, Any]) -> Response:
        """Set (a number), move or remove (null) the position's stop-loss and take-profit."""
        for key, id_key, price_key in (
            ("stopLoss", "stopLossId", "stopPrice"),
            ("takeProfit", "takeProfitId", "price"),
        ):
            if key not in body:
                continue
            child = book.orders.get(str(position[id_key]))
            if child is not None and not child["isOpen"]:
                child = None
            level = float(body[key]) if body[key] not in (None, "", 0, "0") else None
            if level is None:
                if child is not None:
                    self._cancel(book, child)
            elif child is None:
                self._attach(book, position, key, level)
            else:
                child[price_key] = level
                child["lastModified"] = int(time.time() * 1000)
        return self._ok()

    def _cancel(self, book: Book, order: dict[str, Any]) -> None:
        order.update({"status": "Cancelled", "isOpen": False, "lastModified": int(time.time() * 1000)})
        position = book.positions.get(str(order["positionId"]))
        if position is not None:
            for key in ("stopLossId", "takeProfitId"):
                if str(position[key]) == order["id"]:
                    position[key] = 0

    def _modify(self, book: Book, order: dict[str, Any], body: dict[str, Any]) -> Response:
        if "qty" in body:
            qty = float(body["qty"])
            if qty < 0.01:
                return self._error(400, f"Invalid qty {body['qty']}")
            order["qty"] = qty
        if body.get("price") is not None:
            order["price"] = float(body["price"])
        if body.get("stopPrice") is not None:
            order["stopPrice"] = float(body["stopPrice"])
        if body.get("validity") not in (None, "GTC"):
            return self._error(400, "Pending orders must have GTC TIF")
        order["lastModified"] = int(time.time() * 1000)
        self._work(book, order)
        return self._ok()

    def _close(
        self,
        book: Book,
        position: dict[str, Any],
        qty: float,
        *,
        price: float | None = None,
        by: dict[str, Any] | None = None,
    ) -> None:
        inst = self.instruments[position["tradableInstrumentId"]]
        close_qty = position["qty"] if qty <= 0 else min(qty, position["qty"])
        exit_side = "sell" if position["side"] == "buy" else "buy"
        exit_price = price if price is not None else (inst.bid if exit_side == "sell" else inst.ask)
        direction = 1 if position["side"] == "buy" else -1
        pnl = (exit_price - position["avgPrice"]) * close_qty * inst.contract * direction
        book.balance += pnl
        book.realized_today += pnl
        if by is None:
            now_ms = int(time.time() * 1000)
            closing = {
                "id": self._new_id(),
                "tradableInstrumentId": inst.tradable_instrument_id,
                "routeId": inst.trade_route,
                "qty": close_qty,
                "side": exit_side,
                "type": "market",
                "status": "Filled",
                "filledQty": close_qty,
                "avgPrice": exit_price,
                "price": 0.0,
                "stopPrice": 0.0,
                "validity": "IOC",
                "expireDate": 0,
                "createdDate": now_ms,
                "lastModified": now_ms,
                "isOpen": False,
                "positionId": position["id"],
                "stopLoss": None,
                "stopLossType": None,
                "takeProfit": None,
                "takeProfitType": None,
                "strategyId": position.get("strategyId"),
                "_origin": "close",
            }
            book.orders[closing["id"]] = closing
            book.trades_today += 1
        position["qty"] = round(position["qty"] - close_qty, 8)
        if position["qty"] <= 1e-9:
            for key in ("stopLossId", "takeProfitId"):
                child = book.orders.get(str(position[key]))
                if child is not None and child["isOpen"]:
                    self._cancel(book, child)
            del book.positions[position["id"]]
