"""TradeLocker adapter (forex and FX-style CFDs, e.g. at the broker TrendMarkets), over REST with httpx.

Why not the official ``tradelocker`` package: version 0.56.2 pins ``PyJWT==2.8.0``,
``requests==2.32.2``, ``joblib==1.4.2`` and ``python-dotenv==1.0.0``. ``pip install --dry-run`` in
this project's environment resolves only by downgrading those four packages, which breaks the
declared requirements of packages already installed next to lumibot 4.6.30 (google-api-core needs
requests>=2.33, pydantic-settings python-dotenv>=1.2.2, mcp PyJWT>=2.10.1). So this module speaks
the same wire protocol the official client speaks (https://public-api.tradelocker.com), behind the
common :class:`~brokers.base.BrokerAdapter` interface:

* ``POST /auth/jwt/token`` {email, password, server} -> accessToken/refreshToken;
  ``POST /auth/jwt/refresh`` {refreshToken}; ``GET /auth/jwt/all-accounts`` -> id + accNum.
* every ``/trade/...`` call carries ``Authorization: Bearer`` and the ``accNum`` header; results are
  wrapped as ``{"s": "ok", "d": {...}}``; orders, positions and account state are column-oriented
  arrays whose column names come from ``GET /trade/config`` (``ordersConfig`` etc.).
* instruments: ``GET /trade/accounts/{accountId}/instruments`` (tradableInstrumentId, name, routes:
  a TRADE route for orders, an INFO route for quotes); quotes ``GET /trade/quotes``.
* orders: ``POST /trade/accounts/{accountId}/orders`` (qty in lots, side, type market/limit/stop,
  validity IOC for market and GTC otherwise, routeId, tradableInstrumentId, stopLoss/takeProfit,
  strategyId), ``PATCH``/``DELETE /trade/orders/{orderId}``, lists ``/orders`` (working) and
  ``/ordersHistory`` (final); positions ``GET .../positions``, ``DELETE /trade/positions/{id}`` (all or
  ``qty`` lots of it: :meth:`TradeLockerAdapter.close_units` nets a hedging account this way),
  ``PATCH /trade/positions/{id}`` {stopLoss, takeProfit} (the position's own exits:
  :mod:`brokers.tradelocker_protection`).

Client order ids travel in ``strategyId`` (TradeLocker documents it as an arbitrary tag of up to 31
characters, visible on orders and positions), which is how a submit that timed out is reconciled.
If a server's ``ordersConfig`` has no ``strategyId`` column, reconciliation falls back to matching
instrument, side and lot size among orders created since the submit started.

Quantities: the interface speaks units (EURUSD 10,000 = 0.1 lot); TradeLocker speaks lots. See
:func:`units_to_lots` (100,000 units per FX lot, 100 oz per XAUUSD lot, lot step 0.01).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from brokers.base import (
    AssetClass,
    Balance,
    Leg,
    Order,
    OrderChanges,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
    first_or_none,
    parse_number,
)
from brokers.credentials import TRADELOCKER_DEMO_URL, TRADELOCKER_LIVE_URL, TradeLockerCredentials
from brokers.errors import (
    AuthenticationError,
    BrokerError,
    InvalidOrderError,
    NotSupportedError,
    OrderNotFoundError,
    mask_secret,
    refusal_error,
    response_json,
    retrier,
)
from brokers.rest import HttpAdapter
from brokers.tradelocker_protection import PositionProtections

logger = logging.getLogger(__name__)


STANDARD_LOT_UNITS = 100_000.0
DEFAULT_LOT_STEP = 0.01
# Units per lot where it is not the FX standard lot (metals CFDs are quoted per ounce).
DEFAULT_CONTRACT_SIZES: Mapping[str, float] = {"XAUUSD": 100.0, "XAGUSD": 5_000.0}

_STATES: Mapping[str, OrderState] = {
    "new": OrderState.OPEN,
    "accepted": OrderState.OPEN,
    "placing": OrderState.PENDING,
    "pending": OrderState.PENDING,
    "partiallyfilled": OrderState.PARTIALLY_FILLED,
    "filled": OrderState.FILLED,
    "cancelled": OrderState.CANCELED,
    "canceled": OrderState.CANCELED,
    "removed": OrderState.CANCELED,
    "refused": OrderState.REJECTED,
    "unplaced": OrderState.REJECTED,
    "rejected": OrderState.REJECTED,
    "expired": OrderState.EXPIRED,
}


def contract_size(symbol: str, overrides: Mapping[str, float] | None = None) -> float:
    """Units in one lot of ``symbol``: overrides, then metals (XAUUSD 100 oz), else 100,000."""
    key = symbol.upper()
    for table in (overrides or {}, DEFAULT_CONTRACT_SIZES):
        for name, size in table.items():
            # Broker symbols often carry a suffix (XAUUSD.x, EURUSD.pro): match on the prefix.
            if key == name.upper() or key.startswith(name.upper() + "."):
                return float(size)
    return STANDARD_LOT_UNITS


def units_to_lots(
    units: float,
    symbol: str,
    *,
    lot_step: float = DEFAULT_LOT_STEP,
    contract_sizes: Mapping[str, float] | None = None,
) -> float:
    """Convert units to lots, rounded *down* to ``lot_step`` (never trade more than asked).

    ``units_to_lots(10_000, "EURUSD") == 0.1``; ``units_to_lots(150, "XAUUSD") == 1.5``.
    Raises InvalidOrderError when the result is below one step (e.g. 500 EURUSD units).
    """
    if units <= 0:
        raise InvalidOrderError(f"{symbol}: units must be > 0 (got {units})")
    size = contract_size(symbol, contract_sizes)
    raw_lots = units / size
    # The epsilon absorbs float noise (0.3 / 0.01 = 29.999999999999996 steps).
    steps = math.floor(raw_lots / lot_step + 1e-9)
    lots = round(steps * lot_step, 8)
    if lots <= 0:
        raise InvalidOrderError(
            f"{symbol}: {units:,.2f} units is below the minimum of {lot_step} lot "
            f"({lot_step * size:,.0f} units at {size:,.0f} units per lot)"
        )
    if abs(raw_lots - lots) > 1e-9:
        logger.warning("%s: %s units is %.6f lots; rounded down to %s lots", symbol, units, raw_lots, lots)
    return lots


def lots_to_units(lots: float, symbol: str, *, contract_sizes: Mapping[str, float] | None = None) -> float:
    """Inverse of :func:`units_to_lots` (exact, no rounding)."""
    return round(lots * contract_size(symbol, contract_sizes), 8)


def _ms_datetime(value: Any) -> datetime | None:
    number = parse_number(value)
    return datetime.fromtimestamp(number / 1000.0, tz=UTC) if number else None


def _fmt_lots(lots: float) -> str:
    return f"{lots:.2f}".rstrip("0").rstrip(".") if lots < 1000 else str(lots)


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, read without verifying it; None if absent.

    Only used to decide when to refresh: the server still verifies every token.
    """
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        exp = claims.get("exp")
        return float(exp) if exp is not None else None
    except (IndexError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class Instrument:
    tradable_instrument_id: int
    name: str
    trade_route_id: str
    info_route_id: str


@dataclass(frozen=True)
class _PendingSubmit:
    instrument_id: int
    side: str
    lots: float
    started_ms: int


class TradeLockerAdapter(PositionProtections, HttpAdapter):
    """One TradeLocker trading account (``acc_num``; the first account when None).

    Login is lazy (first call) and the access token is refreshed ``refresh_margin_seconds`` before
    it expires, and once more after an unexpected 401. ``environment_url`` is the site root
    (``https://demo.tradelocker.com``); the API lives under ``/backend-api``.
    """

    name = "tradelocker"
    _live_url = TRADELOCKER_LIVE_URL
    _funds_markers = ("not enough", "insufficient", "margin")
    _capabilities: ClassVar[Mapping[str, bool]] = {
        "equity": False,
        "options": False,
        "multileg": False,
        "futures": False,
        "forex": True,
        "bracket": True,
        "replace": True,
        "option_chain": False,
        # every fill is its own position: a reducing order must close positions (close_units), and a
        # resting exit must be attached to the position (protect_position), or it opens a second position
        "hedging": True,
        "attached_exits": True,
    }
    _capability_hints: ClassVar[Mapping[str, str]] = {
        "options": "TradeLocker accounts trade FX/CFDs only; use the Tradier adapter for options",
        "equity": "TradeLocker accounts trade FX/CFDs only; use the Tradier adapter for equities",
    }

    def __init__(
        self,
        username: str,
        password: str | SecretStr,
        server: str,
        *,
        environment_url: str = TRADELOCKER_DEMO_URL,
        acc_num: int | None = None,
        allow_live: bool = False,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        refresh_margin_seconds: float = 1800.0,
        lot_step: float = DEFAULT_LOT_STEP,
        contract_sizes: Mapping[str, float] | None = None,
        **adapter_options: Any,
    ) -> None:
        super().__init__(**adapter_options)
        secret = password.get_secret_value() if isinstance(password, SecretStr) else password
        for label, value in (("username", username), ("password", secret), ("server", server)):
            if not value:
                raise ValueError(f"TradeLocker {label} is empty: set TRADELOCKER_{label.upper()}")
        self._refuse_unasked_live(
            environment_url,
            allow_live=allow_live,
            setting="environment_url",
            alternative=TRADELOCKER_DEMO_URL,
        )
        self.username = username
        self._password = secret
        self.server = server
        self.environment_url = environment_url.rstrip("/")
        self.requested_acc_num = acc_num
        self.timeout = timeout
        self.refresh_margin_seconds = refresh_margin_seconds
        self.lot_step = lot_step
        self.contract_sizes = dict(contract_sizes or {})
        self._client = httpx.Client(
            base_url=f"{self.environment_url}/backend-api", timeout=timeout, transport=transport
        )
        self._access_token = ""
        self._refresh_token = ""
        self._access_expiry: float | None = None
        self._auth_lock = threading.Lock()
        self.account_id: str | None = None
        self.acc_num: int | None = None
        self.currency = "USD"
        self._columns: dict[str, list[str]] | None = None
        self._instruments: dict[str, Instrument] | None = None
        self._pending: dict[str, _PendingSubmit] = {}
        # Order ids already tied to a client id, so the no-strategyId fallback never matches two
        # identical submits to the same order.
        self._claimed: dict[str, str] = {}

    @classmethod
    def from_credentials(cls, credentials: TradeLockerCredentials, **options: Any) -> TradeLockerAdapter:
        """Build from :func:`brokers.credentials.load_tradelocker_credentials` (which guards live)."""
        options.setdefault("allow_live", credentials.is_live)
        options.setdefault("acc_num", credentials.acc_num)
        return cls(
            credentials.username,
            credentials.password,
            credentials.server,
            environment_url=credentials.environment_url,
            **options,
        )

    def __repr__(self) -> str:
        return (
            f"TradeLockerAdapter(username={self.username!r}, server={self.server!r}, "
            f"environment_url={self.environment_url!r}, password='{mask_secret(self._password)}')"
        )

    # ----------------------------------------------------------------- HTTP boundary (brokers.rest)
    @property
    def _secrets(self) -> tuple[str, ...]:
        return (self._password, self._access_token, self._refresh_token)

    def _auth_message(self, what: str, code: int, detail: str) -> str:
        return f"{what}: TradeLocker refused the session of {self.username} (HTTP {code}: {detail})"

    @staticmethod
    def _refuses_order(code: int) -> bool:
        # TradeLocker answers a refused order with a 4xx, or with 200 and {"s": "error"}
        return code < 500

    @staticmethod
    def _detail_of(body: Mapping[str, Any]) -> str | None:
        return next(
            (str(body[key]) for key in ("errmsg", "message", "error", "detail") if body.get(key)), None
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        acc_num_header: bool = True,
        not_found: Callable[[], BrokerError] | None = None,
    ) -> dict[str, Any]:
        """Authenticated call; returns the JSON body; translates every failure."""
        what = f"TradeLocker {method} {path}"
        self._ensure_token()
        response = self._send(
            method, path, what, params=params, json=json_body, headers=self._headers(acc_num_header)
        )
        if response.status_code == 401:
            # Tokens can be revoked or expire early (server clock, logout elsewhere): refresh once.
            logger.info("tradelocker: 401 on %s; refreshing the session and retrying once", path)
            self._refresh_or_login()
            response = self._send(
                method, path, what, params=params, json=json_body, headers=self._headers(acc_num_header)
            )
        return self._parse(response, what, not_found)

    def _headers(self, acc_num_header: bool) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._access_token}", "Accept": "application/json"}
        if acc_num_header and self.acc_num is not None:
            headers["accNum"] = str(self.acc_num)
        return headers

    def _parse(
        self, response: httpx.Response, what: str, not_found: Callable[[], BrokerError] | None = None
    ) -> dict[str, Any]:
        if not response.is_success:
            raise self._response_error(response, what, not_found)
        body = response_json(response, broker=self.name, what=what, secrets=self._secrets)
        if isinstance(body, dict) and body.get("s") == "error":
            code, detail = response.status_code, str(body.get("errmsg", body))
            raise refusal_error(
                what,
                code,
                detail,
                broker=self.name,
                invalid=self._refuses_order(code),
                funds_markers=self._funds_markers,
                secrets=self._secrets,
            )
        return body if isinstance(body, dict) else {"d": body}

    # ----------------------------------------------------------------- authentication
    def connect(self) -> None:
        """Log in and select the account now (otherwise done lazily by the first call)."""
        self._ensure_token()

    def _ensure_token(self) -> None:
        with self._auth_lock:
            if not self._access_token:
                self._login()
            elif (
                self._access_expiry is not None
                and self._access_expiry - time.time() < self.refresh_margin_seconds
            ):
                self._refresh_locked()

    def _store_tokens(self, body: Mapping[str, Any], what: str) -> None:
        access, refresh = body.get("accessToken"), body.get("refreshToken")
        if not access or not refresh:
            raise AuthenticationError(
                f"{what}: no accessToken/refreshToken in the response", broker=self.name
            )
        self._access_token, self._refresh_token = str(access), str(refresh)
        self._access_expiry = jwt_expiry(self._access_token)

    def _login(self) -> None:
        what = "TradeLocker POST /auth/jwt/token"
        response = self._send(
            "POST",
            "/auth/jwt/token",
            what,
            json={"email": self.username, "password": self._password, "server": self.server},
        )
        if response.status_code in (400, 401, 403, 404):
            raise AuthenticationError(
                f"TradeLocker rejected the login of {self.username} on server {self.server!r} at "
                f"{self.environment_url} (HTTP {response.status_code}: {self._error_detail(response)}); check "
                "TRADELOCKER_USERNAME, TRADELOCKER_PASSWORD, TRADELOCKER_SERVER and TRADELOCKER_ENV (demo vs live)",
                broker=self.name,
                status_code=response.status_code,
                secrets=self._secrets,
            )
        self._store_tokens(self._parse(response, what), what)
        logger.info("tradelocker: logged in as %s on %s", self.username, self.server)
        self._select_account()

    def _refresh_locked(self) -> None:
        what = "TradeLocker POST /auth/jwt/refresh"
        response = self._send("POST", "/auth/jwt/refresh", what, json={"refreshToken": self._refresh_token})
        if response.status_code in (400, 401, 403):
            # The refresh token expired too: start a new session with the password.
            logger.info("tradelocker: refresh refused (HTTP %d); logging in again", response.status_code)
            self._access_token = ""
            self._login()
            return
        self._store_tokens(self._parse(response, what), what)
        logger.info("tradelocker: access token refreshed")

    def _refresh_or_login(self) -> None:
        with self._auth_lock:
            self._refresh_locked()

    def _select_account(self) -> None:
        what = "TradeLocker GET /auth/jwt/all-accounts"
        response = self._send(
            "GET", "/auth/jwt/all-accounts", what, headers=self._headers(acc_num_header=False)
        )
        accounts = self._parse(response, what).get("accounts") or []
        if not accounts:
            raise AuthenticationError(
                f"TradeLocker user {self.username} has no trading accounts", broker=self.name
            )
        chosen = accounts[0]
        if self.requested_acc_num is not None:
            matches = [a for a in accounts if int(a.get("accNum", -1)) == self.requested_acc_num]
            if not matches:
                available = [int(a.get("accNum", -1)) for a in accounts]
                raise AuthenticationError(
                    f"TradeLocker user {self.username} has no account with accNum {self.requested_acc_num} "
                    f"(available: {available}); fix TRADELOCKER_ACC_NUM",
                    broker=self.name,
                )
            chosen = matches[0]
        self.account_id = str(chosen["id"])
        self.acc_num = int(chosen["accNum"])
        self.currency = str(chosen.get("currency") or "USD")

    # ----------------------------------------------------------------- config and instruments
    @retrier
    def _config_columns(self) -> dict[str, list[str]]:
        if self._columns is None:
            data = self._request("GET", "/trade/config").get("d") or {}
            self._columns = {
                key: [str(col["id"]) for col in (value.get("columns") or [])]
                for key, value in data.items()
                if isinstance(value, dict) and "columns" in value
            }
        return self._columns

    def _rows(self, rows: Sequence[Sequence[Any]], config_key: str) -> list[dict[str, Any]]:
        columns = self._config_columns().get(config_key)
        if not columns:
            raise BrokerError(f"TradeLocker /trade/config has no {config_key} columns", broker=self.name)
        return [dict(zip(columns, row, strict=False)) for row in rows]

    @retrier
    def instruments(self) -> dict[str, Instrument]:
        """Tradable instruments by name (cached for the adapter's lifetime)."""
        if self._instruments is None:
            self._ensure_token()
            data = self._request("GET", f"/trade/accounts/{self.account_id}/instruments").get("d") or {}
            table: dict[str, Instrument] = {}
            for raw in data.get("instruments") or []:
                routes = {str(r.get("type")): str(r.get("id")) for r in raw.get("routes") or []}
                if "TRADE" not in routes:
                    continue
                name = str(raw["name"])
                table[name.upper()] = Instrument(
                    tradable_instrument_id=int(raw["tradableInstrumentId"]),
                    name=name,
                    trade_route_id=routes["TRADE"],
                    info_route_id=routes.get("INFO", routes["TRADE"]),
                )
            self._instruments = table
        return self._instruments

    def instrument(self, symbol: str) -> Instrument:
        table = self.instruments()
        found = table.get(symbol.upper())
        if found is None:
            sample = ", ".join(sorted(table)[:10])
            raise InvalidOrderError(
                f"TradeLocker account {self.acc_num} has no instrument {symbol!r} (e.g. {sample}); "
                "use the broker's exact symbol name",
                broker=self.name,
            )
        return found

    def _symbol_for(self, instrument_id: Any) -> str:
        for inst in self.instruments().values():
            if str(inst.tradable_instrument_id) == str(instrument_id):
                return inst.name
        return str(instrument_id)

    def units_to_lots(self, units: float, symbol: str) -> float:
        return units_to_lots(units, symbol, lot_step=self.lot_step, contract_sizes=self.contract_sizes)

    def lots_to_units(self, lots: float, symbol: str) -> float:
        return lots_to_units(lots, symbol, contract_sizes=self.contract_sizes)

    # ----------------------------------------------------------------- account and market data
    @retrier
    def get_balances(self) -> Balance:
        self._ensure_token()
        data = self._request("GET", f"/trade/accounts/{self.account_id}/state").get("d") or {}
        columns = self._config_columns().get("accountDetailsConfig") or []
        state = dict(zip(columns, data.get("accountDetailsData") or [], strict=False))
        balance = parse_number(state.get("balance")) or 0.0
        return Balance(
            total_equity=parse_number(state.get("projectedBalance")) or balance,
            cash=balance,
            buying_power=parse_number(state.get("availableFunds")),
            currency=self.currency,
            open_pnl=parse_number(state.get("openNetPnL")),
            closed_pnl_today=parse_number(state.get("todayNet")),
            raw=state,
        )

    @retrier
    def get_positions(self) -> list[Position]:
        self._ensure_token()
        data = self._request("GET", f"/trade/accounts/{self.account_id}/positions").get("d") or {}
        positions = []
        for row in self._rows(data.get("positions") or [], "positionsConfig"):
            symbol = self._symbol_for(row.get("tradableInstrumentId"))
            units = self.lots_to_units(parse_number(row.get("qty")) or 0.0, symbol)
            positions.append(
                Position(
                    symbol=symbol,
                    quantity=units if str(row.get("side")).lower() == "buy" else -units,
                    asset_class=AssetClass.FOREX,
                    avg_price=parse_number(row.get("avgPrice")),
                    unrealized_pnl=parse_number(row.get("unrealizedPl")),
                    position_id=str(row.get("id")),
                    raw=row,
                )
            )
        return positions

    @retrier
    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        quotes = {}
        for symbol in symbols:
            inst = self.instrument(symbol)
            data = (
                self._request(
                    "GET",
                    "/trade/quotes",
                    params={
                        "tradableInstrumentId": inst.tradable_instrument_id,
                        "routeId": inst.info_route_id,
                    },
                ).get("d")
                or {}
            )
            quotes[symbol] = Quote(
                symbol=symbol,
                bid=parse_number(data.get("bp")),
                ask=parse_number(data.get("ap")),
                last=None,
                bid_size=parse_number(data.get("bs")),
                ask_size=parse_number(data.get("as")),
            )
        return quotes

    # ----------------------------------------------------------------- orders: read
    def _order_rows(self, history: bool) -> list[dict[str, Any]]:
        self._ensure_token()
        endpoint = "ordersHistory" if history else "orders"
        data = self._request("GET", f"/trade/accounts/{self.account_id}/{endpoint}").get("d") or {}
        return self._rows(data.get(endpoint) or [], f"{endpoint}Config")

    @retrier
    def list_orders(self, *, include_history: bool = True) -> list[Order]:
        """Working orders, plus today's final ones when ``include_history``."""
        rows = self._order_rows(history=False)
        seen = {str(r.get("id")) for r in rows}
        if include_history:
            rows += [r for r in self._order_rows(history=True) if str(r.get("id")) not in seen]
        return [self._parse_order(row) for row in rows]

    def list_open_orders(self) -> list[Order]:
        return [o for o in self.list_orders(include_history=False) if not o.state.is_final]

    def get_order(self, order_id: str) -> Order:
        for order in self.list_orders():
            if order.order_id == str(order_id):
                return self._with_children(order)
        raise OrderNotFoundError(
            f"TradeLocker account {self.acc_num} has no order {order_id}", broker=self.name
        )

    def find_order_by_client_id(self, client_order_id: str) -> Order | None:
        orders = self.list_orders()
        if "strategyId" in self._config_columns().get("ordersConfig", []):
            found = first_or_none(o for o in orders if o.client_order_id == client_order_id)
        else:
            found = self._match_without_tag(client_order_id, orders)
        return self._with_children(found) if found is not None else None

    def _match_without_tag(self, client_order_id: str, orders: list[Order]) -> Order | None:
        """Reconcile on servers without strategyId: same instrument, side and lots, created after the
        submit began. Only possible for submits made by this adapter instance."""
        pending = self._pending.get(client_order_id)
        if pending is None:
            return None
        claimed = {p for cid, p in self._claimed.items() if cid != client_order_id}
        candidates = [
            o
            for o in orders
            if o.raw.get("tradableInstrumentId") is not None
            and str(o.raw.get("tradableInstrumentId")) == str(pending.instrument_id)
            and str(o.raw.get("side")).lower() == pending.side
            and abs((parse_number(o.raw.get("qty")) or 0.0) - pending.lots) < 1e-9
            and (parse_number(o.raw.get("createdDate")) or 0) >= pending.started_ms - 5_000
            and o.order_id not in claimed
        ]
        found = first_or_none(candidates)
        if found is not None:
            self._claimed[client_order_id] = found.order_id
        return found

    def _with_children(self, order: Order) -> Order:
        """Attach the ids of the SL/TP orders TradeLocker created for a filled bracket entry."""
        position_id = order.raw.get("positionId")
        if (order.take_profit is None and order.stop_loss is None) or not parse_number(position_id):
            return order
        children: list[str] = []
        for pos in self.get_positions():
            if pos.position_id == str(position_id):
                for key in ("takeProfitId", "stopLossId"):
                    if parse_number(pos.raw.get(key)):
                        children.append(str(pos.raw[key]))
        if not children:
            return order
        return replace(order, child_order_ids=tuple(children))

    def _parse_order(self, row: Mapping[str, Any]) -> Order:
        symbol = self._symbol_for(row.get("tradableInstrumentId"))
        lots = parse_number(row.get("qty")) or 0.0
        tl_type = str(row.get("type", "market")).lower()
        try:
            order_type = OrderType(tl_type)
        except ValueError:
            order_type = OrderType.MARKET
        state = _STATES.get(str(row.get("status", "")).replace(" ", "").lower(), OrderState.PENDING)
        strategy_id = row.get("strategyId")
        avg = parse_number(row.get("avgPrice"))
        validity = str(row.get("validity", "")).upper()
        return Order(
            order_id=str(row.get("id")),
            client_order_id=str(strategy_id) if strategy_id not in (None, "", "null") else None,
            state=state,
            legs=(
                Leg(
                    symbol=symbol,
                    side=Side(str(row.get("side", "buy")).lower()),
                    # A zero-lot row (seen on some refused orders) must still parse: keep it positive.
                    quantity=self.lots_to_units(lots, symbol) or 1e-9,
                    asset_class=AssetClass.FOREX,
                ),
            ),
            order_type=order_type,
            limit_price=parse_number(row.get("price")) if order_type is OrderType.LIMIT else None,
            stop_price=parse_number(row.get("stopPrice")) if order_type is OrderType.STOP else None,
            time_in_force={"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC}.get(validity),
            filled_quantity=self.lots_to_units(parse_number(row.get("filledQty")) or 0.0, symbol),
            avg_fill_price=avg if avg else None,
            take_profit=parse_number(row.get("takeProfit")) or None,
            stop_loss=parse_number(row.get("stopLoss")) or None,
            created_at=_ms_datetime(row.get("createdDate")),
            raw=dict(row),
        )

    # ----------------------------------------------------------------- orders: write
    def _validity(self, request: OrderRequest) -> str:
        if request.order_type is OrderType.MARKET:
            # TradeLocker requires IOC for market orders; DAY/GTC mean nothing for an immediate fill.
            return "IOC"
        if request.time_in_force is TimeInForce.IOC:
            raise NotSupportedError(
                "TradeLocker pending (limit/stop) orders must be GTC, not IOC", broker=self.name
            )
        # TradeLocker accepts only GTC for pending orders; a DAY order is sent as GTC (FX trades 24h,
        # the deployment loop cancels leftovers at its own session end).
        return "GTC"

    def build_order_body(self, request: OrderRequest) -> dict[str, Any]:
        """The JSON body :meth:`place_order` POSTs for ``request`` (public for inspection/tests)."""
        if request.order_type is OrderType.STOP_LIMIT:
            raise NotSupportedError(
                "TradeLocker has no stop-limit orders: use stop or limit", broker=self.name
            )
        leg = request.leg
        inst = self.instrument(leg.symbol)
        body: dict[str, Any] = {
            "tradableInstrumentId": str(inst.tradable_instrument_id),
            "routeId": inst.trade_route_id,
            "qty": _fmt_lots(self.units_to_lots(leg.quantity, leg.symbol)),
            "side": leg.side.value,
            "type": request.order_type.value,
            "validity": self._validity(request),
            "price": request.limit_price if request.order_type is OrderType.LIMIT else 0,
            "strategyId": request.client_order_id,
        }
        if request.order_type is OrderType.STOP:
            body["stopPrice"] = request.stop_price
        if request.take_profit is not None:
            body.update({"takeProfit": request.take_profit, "takeProfitType": "absolute"})
        if request.stop_loss is not None:
            body.update({"stopLoss": request.stop_loss, "stopLossType": "absolute"})
        return body

    def _submit_order(self, request: OrderRequest) -> Order:
        self._ensure_token()
        body = self.build_order_body(request)
        cid = str(request.client_order_id)
        if cid not in self._pending:
            self._pending[cid] = _PendingSubmit(
                instrument_id=int(body["tradableInstrumentId"]),
                side=body["side"],
                lots=float(body["qty"]),
                started_ms=int(time.time() * 1000),
            )
        data = (
            self._request("POST", f"/trade/accounts/{self.account_id}/orders", json_body=body).get("d") or {}
        )
        order_id = data.get("orderId")
        if order_id in (None, ""):
            raise InvalidOrderError(
                f"TradeLocker did not return an orderId for {cid}: {data}", broker=self.name
            )
        logger.info("tradelocker: order %s submitted as %s", cid, order_id)
        self._claimed[cid] = str(order_id)
        return self.get_order(str(order_id))

    def _order_not_found(self, order_id: str) -> Callable[[], BrokerError]:
        return lambda: OrderNotFoundError(
            f"TradeLocker has no order {order_id}", broker=self.name, status_code=404
        )

    @retrier
    def cancel_order(self, order_id: str) -> OrderStatus:
        # get_order raises OrderNotFoundError when the order never existed
        return self._cancel_tolerating_final(
            order_id,
            lambda: self._request(
                "DELETE", f"/trade/orders/{order_id}", not_found=self._order_not_found(order_id)
            ),
            refusals=(InvalidOrderError, OrderNotFoundError),
        )

    def _send_replace(self, order_id: str, current: Order, changes: OrderChanges) -> None:
        if changes.time_in_force is TimeInForce.IOC:
            raise NotSupportedError("TradeLocker pending orders must be GTC", broker=self.name)
        body: dict[str, Any] = {"validity": "GTC"}
        symbol = current.legs[0].symbol
        if changes.quantity is not None:
            body["qty"] = _fmt_lots(self.units_to_lots(changes.quantity, symbol))
        if changes.limit_price is not None:
            body["price"] = changes.limit_price
        if changes.stop_price is not None:
            body["stopPrice"] = changes.stop_price
        self._request(
            "PATCH", f"/trade/orders/{order_id}", json_body=body, not_found=self._order_not_found(order_id)
        )

    def close_units(self, symbol: str, units: float) -> list[Order]:
        """Reduce the net position in ``symbol`` by ``units`` by closing positions, oldest first (partially
        where needed), as the official client's netting does; returns TradeLocker's closing orders. A close
        of more than is held (a reversal) is refused: close, then open separately."""
        held = [p for p in self.get_positions() if p.symbol.upper() == symbol.upper()]
        net = sum(p.quantity for p in held)
        if units > abs(net) + 1e-9:
            raise InvalidOrderError(
                f"closing {units:,.0f} units would reverse the {net:+,.0f} unit position in {symbol}; on a "
                "TradeLocker hedging account submit a closing order and a separate opening order",
                broker=self.name,
            )
        same_side = sorted(
            (p for p in held if (p.quantity > 0) == (net > 0)),
            key=lambda p: (str(p.raw.get("openDate") or ""), p.position_id or ""),
        )
        closes: list[Order] = []
        left = units
        for position in same_side:
            if left <= 1e-9:
                break
            take = min(left, abs(position.quantity))
            if abs(take - abs(position.quantity)) < 1e-9:
                closing = self._close_position(position)
            else:
                lots = self.units_to_lots(take, position.symbol)
                self._request(
                    "DELETE", f"/trade/positions/{position.position_id}", json_body={"qty": _fmt_lots(lots)}
                )
                closing = self._closing_order(position)
            if closing is not None:
                closes.append(closing)
            left -= take
        if not closes:
            raise InvalidOrderError(f"no {symbol} position could be closed", broker=self.name)
        return closes

    def _closing_order(self, position: Position) -> Order | None:
        """TradeLocker's latest order closing (part of) ``position``."""
        closing_side = "sell" if position.quantity > 0 else "buy"
        closing = [
            o
            for o in self.list_orders()
            if str(o.raw.get("positionId")) == position.position_id
            and o.legs[0].side.value == closing_side
            and o.order_type is OrderType.MARKET
        ]
        closing.sort(key=lambda o: o.created_at or datetime.min.replace(tzinfo=UTC))
        return closing[-1] if closing else None

    def _close_position(self, position: Position) -> Order | None:
        if position.position_id is None:
            raise InvalidOrderError(
                f"position {position.symbol} has no id; cannot close it", broker=self.name
            )
        try:
            # qty 0 closes the whole position.
            self._request("DELETE", f"/trade/positions/{position.position_id}", json_body={"qty": "0"})
        except (InvalidOrderError, OrderNotFoundError):
            if any(p.position_id == position.position_id for p in self.get_positions()):
                raise
            logger.info("tradelocker: position %s was already closed", position.position_id)
            return None
        return self._closing_order(position)


__all__ = [
    "DEFAULT_CONTRACT_SIZES",
    "STANDARD_LOT_UNITS",
    "Instrument",
    "TradeLockerAdapter",
    "contract_size",
    "jwt_expiry",
    "lots_to_units",
    "units_to_lots",
]
