"""Tradier adapter: equities, options (single and up to 4 legs), brackets; futures behind a flag.

Speaks Tradier's brokerage REST API (https://documentation.tradier.com/brokerage-api) with httpx:
Bearer token, ``Accept: application/json``, form-encoded POST/PUT bodies. The client order id
travels in Tradier's order ``tag`` (letters, digits, dashes) and is read back with
``includeTags=true``, which is how a submit that timed out is reconciled.

Tradier quirks handled here:

* a collection with one element comes back as an object, not a list (``positions.position``,
  ``orders.order``, ``quotes.quote``, ``expirations.date``); an empty one as ``"null"`` or ``null``;
* numbers may be the string ``"null"``; empty values may be ``""``;
* an order that is already final cannot be canceled (HTTP 400 "order already in finalized state");
* orders can change price/stop/type/duration but not quantity.

Futures: Tradier's public documentation does not describe a futures order form. With
``enable_futures=True`` futures legs are sent as ``class=future`` with the ``/``-prefixed contract
symbol (the form lumibot's Tradier broker parses back from positions). That path is verified only
against the local fake server: confirm it on the sandbox before trading it. Contracts are spelled
``/MESZ26`` at Tradier and ``MESZ26`` in this adapter's positions and legs; a position's average price
is its cost basis over quantity x the contract multiplier (``spec_space.instruments.FUTURES``), and
:meth:`TradierAdapter.front_month` names the contract a spec's continuous future trades today
(``brokers.futures``: the most volume in the last complete session, from ``/markets/history``).

Exits held at the broker (:meth:`TradierAdapter.protect_position`, :mod:`brokers.tradier_protection`): an
OCO order (``class=oco``, a target limit and a stop on indexed legs, one cancelling the other) closing the
position, futures contracts included, or a single limit/stop order for a single level. Its levels move by
a PUT on each leg's own id; where Tradier refuses that (not confirmed on the sandbox), the OCO is cancelled
and placed anew.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from brokers.base import (
    AssetClass,
    Balance,
    Leg,
    OptionContract,
    Order,
    OrderChanges,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Position,
    PositionEffect,
    Quote,
    Side,
    TimeInForce,
    first_or_none,
    parse_number,
    parse_occ_symbol,
)
from brokers.credentials import TRADIER_LIVE_URL, TRADIER_SANDBOX_URL, TradierCredentials
from brokers.errors import (
    AuthenticationError,
    BrokerError,
    InvalidOrderError,
    NotSupportedError,
    OrderNotFoundError,
    mask_secret,
    response_json,
    retrier,
)
from brokers.futures import FuturesContract, contract_of, front_contract
from brokers.parsing import as_list
from brokers.rest import HttpAdapter
from brokers.tradier_protection import OcoProtections

logger = logging.getLogger(__name__)

_NEW_YORK = ZoneInfo("America/New_York")

_STATES: Mapping[str, OrderState] = {
    "pending": OrderState.PENDING,
    "calculated": OrderState.PENDING,
    "accepted_for_bidding": OrderState.PENDING,
    "held": OrderState.PENDING,
    "open": OrderState.OPEN,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "filled": OrderState.FILLED,
    "expired": OrderState.EXPIRED,
    "canceled": OrderState.CANCELED,
    "pending_cancel": OrderState.OPEN,
    "rejected": OrderState.REJECTED,
    "error": OrderState.REJECTED,
}

_SIDES_FROM_TRADIER: Mapping[str, tuple[Side, PositionEffect | None]] = {
    "buy": (Side.BUY, None),
    "sell": (Side.SELL, None),
    "buy_to_cover": (Side.BUY, PositionEffect.CLOSE),
    "sell_short": (Side.SELL, PositionEffect.OPEN),
    "buy_to_open": (Side.BUY, PositionEffect.OPEN),
    "buy_to_close": (Side.BUY, PositionEffect.CLOSE),
    "sell_to_open": (Side.SELL, PositionEffect.OPEN),
    "sell_to_close": (Side.SELL, PositionEffect.CLOSE),
}

_DURATIONS: Mapping[TimeInForce, str] = {TimeInForce.DAY: "day", TimeInForce.GTC: "gtc"}


def tradier_side(leg: Leg) -> str:
    """Tradier's side string for ``leg`` (``buy_to_open``, ``sell_short``, ...)."""
    effect = leg.position_effect
    if leg.asset_class is AssetClass.OPTION:
        return f"{leg.side.value}_to_{(effect or PositionEffect.OPEN).value}"
    if leg.asset_class is AssetClass.EQUITY:
        if leg.side is Side.BUY:
            return "buy_to_cover" if effect is PositionEffect.CLOSE else "buy"
        return "sell_short" if effect is PositionEffect.OPEN else "sell"
    return leg.side.value


def _closing_side(entry: Leg) -> str:
    """Side of the exit orders of a bracket whose entry is ``entry``."""
    exit_side = Side.SELL if entry.side is Side.BUY else Side.BUY
    exit_leg = Leg(entry.symbol, exit_side, entry.quantity, entry.asset_class, PositionEffect.CLOSE)
    return tradier_side(exit_leg)


def _ms_datetime(value: Any) -> datetime | None:
    number = parse_number(value)
    if not number:
        return None
    return datetime.fromtimestamp(number / 1000.0, tz=UTC)


def _iso_datetime(value: Any) -> datetime | None:
    if not value or value == "null":
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _is_working(raw: Mapping[str, Any]) -> bool:
    """True while the order or any of its legs can still trade."""
    parts = [raw, *as_list(raw.get("leg"))]
    return any(not _STATES.get(str(p.get("status", "")).lower(), OrderState.PENDING).is_final for p in parts)


def _fmt_qty(quantity: float) -> str:
    return str(int(quantity)) if float(quantity).is_integer() else f"{quantity:g}"


def _fmt_price(price: float) -> str:
    return f"{price:.2f}" if abs(price) >= 1 else f"{price:.4f}".rstrip("0").rstrip(".")


def _multiplier(symbol: str, asset_class: AssetClass) -> float:
    """Dollars per price point of one unit: 100 an option, the contract's multiplier a future."""
    if asset_class is AssetClass.OPTION:
        return 100.0
    if asset_class is AssetClass.FUTURE:
        try:
            return contract_of(symbol).multiplier
        except ValueError:  # a root outside the contract table: cost basis per contract point
            return 1.0
    return 1.0


def _asset_class_for(symbol: str, klass: str | None = None) -> AssetClass:
    if klass == "option" or parse_occ_symbol(symbol) is not None:
        return AssetClass.OPTION
    if klass == "future" or symbol.startswith("/"):
        return AssetClass.FUTURE
    return AssetClass.EQUITY


class TradierAdapter(OcoProtections, HttpAdapter):
    """Tradier brokerage account ``account_id`` at ``base_url`` (default: the sandbox).

    ``transport`` replaces httpx's network transport (``httpx.MockTransport`` in unit tests); the
    contract tests use a real local HTTP server instead. Live trading (api.tradier.com) needs
    ``allow_live=True`` on top of the credentials loader's own ``live=True``.
    """

    name = "tradier"
    _live_url = TRADIER_LIVE_URL
    _funds_markers = ("buying power", "insufficient", "not enough")
    _no_quantity_change = "Tradier cannot change an order's quantity: cancel it and place a new order"
    _capabilities: ClassVar[Mapping[str, bool]] = {
        "equity": True,
        "options": True,
        "multileg": True,
        "futures": False,
        "forex": False,
        "bracket": True,
        "replace": True,
        "option_chain": True,
    }
    _capability_hints: ClassVar[Mapping[str, str]] = {
        "futures": "Tradier futures are behind a feature flag: create TradierAdapter(..., enable_futures=True) "
        "once the account is approved for futures and the order form is confirmed on the sandbox",
        "forex": "Tradier does not offer forex; use the TradeLocker adapter",
    }

    def __init__(
        self,
        api_key: str | SecretStr,
        account_id: str,
        *,
        base_url: str = TRADIER_SANDBOX_URL,
        enable_futures: bool = False,
        allow_live: bool = False,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        **adapter_options: Any,
    ) -> None:
        super().__init__(**adapter_options)
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key:
            raise ValueError("Tradier api_key is empty: set TRADIER_API_KEY")
        if not account_id:
            raise ValueError("Tradier account_id is empty: set TRADIER_ACCOUNT_ID")
        self._refuse_unasked_live(
            base_url,
            allow_live=allow_live,
            setting="base_url",
            alternative=f"the sandbox {TRADIER_SANDBOX_URL}",
        )
        self._api_key = key
        self.account_id = account_id
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._caps["futures"] = enable_futures
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_credentials(cls, credentials: TradierCredentials, **options: Any) -> TradierAdapter:
        """Build from :func:`brokers.credentials.load_tradier_credentials` (which guards live)."""
        options.setdefault("allow_live", credentials.is_live)
        return cls(credentials.api_key, credentials.account_id, base_url=credentials.base_url, **options)

    @property
    def api_key(self) -> SecretStr:
        """The API key as a SecretStr (masked when printed), for a market-data client of the same account."""
        return SecretStr(self._api_key)

    def __repr__(self) -> str:
        return f"TradierAdapter(account_id={self.account_id!r}, base_url={self.base_url!r}, api_key='{mask_secret(self._api_key)}')"

    # ----------------------------------------------------------------- HTTP boundary (brokers.rest)
    @property
    def _secrets(self) -> tuple[str]:
        return (self._api_key,)

    def _auth_message(self, what: str, code: int, detail: str) -> str:
        return (
            f"Tradier rejected API key {mask_secret(self._api_key)} for account {self.account_id} "
            f"(HTTP {code}: {detail}); check TRADIER_API_KEY and TRADIER_BASE_URL "
            "(sandbox keys only work on sandbox.tradier.com, live keys on api.tradier.com)"
        )

    @staticmethod
    def _refuses_order(code: int) -> bool:
        return code in (400, 409, 422)

    @staticmethod
    def _detail_of(body: Mapping[str, Any]) -> str | None:
        errors = body.get("errors")
        if isinstance(errors, dict) and "error" in errors:
            return " | ".join(str(e) for e in as_list(errors["error"]))
        fault = body.get("fault")
        if isinstance(fault, dict) and "faultstring" in fault:
            return str(fault["faultstring"])
        return None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        not_found: Callable[[], BrokerError] | None = None,
    ) -> dict[str, Any]:
        what = f"Tradier {method} {path}"
        response = self._send(method, path, what, params=params, data=data)
        if not response.is_success:
            raise self._response_error(response, what, not_found)
        body = response_json(response, broker=self.name, what=what, secrets=self._secrets)
        return body if isinstance(body, dict) else {}

    # ----------------------------------------------------------------- account
    @retrier
    def get_account_ids(self) -> list[str]:
        """Account numbers visible to the API key (``/user/profile``)."""
        body = self._request("GET", "/user/profile")
        profile = body.get("profile") or {}
        return [str(acc.get("account_number")) for acc in as_list(profile.get("account"))]

    def check_connection(self) -> None:
        """Raise AuthenticationError unless the key works and can see ``account_id``."""
        accounts = self.get_account_ids()
        if self.account_id not in accounts:
            raise AuthenticationError(
                f"Tradier API key {mask_secret(self._api_key)} has no access to account {self.account_id} "
                f"(it sees {accounts}); check TRADIER_ACCOUNT_ID",
                broker=self.name,
                secrets=self._secrets,
            )

    @retrier
    def get_balances(self) -> Balance:
        raw = self._request("GET", f"/accounts/{self.account_id}/balances").get("balances") or {}
        buying_power = None
        for section, key in (
            ("margin", "stock_buying_power"),
            ("pdt", "stock_buying_power"),
            ("cash", "cash_available"),
        ):
            block = raw.get(section)
            if isinstance(block, dict) and parse_number(block.get(key)) is not None:
                buying_power = parse_number(block.get(key))
                break
        return Balance(
            total_equity=parse_number(raw.get("total_equity")) or 0.0,
            cash=parse_number(raw.get("total_cash")) or 0.0,
            buying_power=buying_power,
            currency="USD",
            open_pnl=parse_number(raw.get("open_pl")),
            closed_pnl_today=parse_number(raw.get("close_pl")),
            raw=raw,
        )

    @retrier
    def get_positions(self) -> list[Position]:
        body = self._request("GET", f"/accounts/{self.account_id}/positions")
        positions_block = body.get("positions")
        rows = as_list(positions_block.get("position") if isinstance(positions_block, dict) else None)
        positions = []
        for row in rows:
            symbol = str(row["symbol"])
            quantity = parse_number(row.get("quantity")) or 0.0
            asset_class = _asset_class_for(symbol)
            cost = parse_number(row.get("cost_basis"))
            multiplier = _multiplier(symbol, asset_class)
            avg = cost / (quantity * multiplier) if cost is not None and quantity else None
            positions.append(
                Position(
                    symbol=symbol.lstrip("/") if asset_class is AssetClass.FUTURE else symbol,
                    quantity=quantity,
                    asset_class=asset_class,
                    avg_price=avg,
                    position_id=str(row.get("id")) if row.get("id") is not None else None,
                    raw=row,
                )
            )
        return positions

    # ----------------------------------------------------------------- market data
    @retrier
    def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        if not symbols:
            return {}
        body = self._request(
            "GET", "/markets/quotes", params={"symbols": ",".join(symbols), "greeks": "false"}
        )
        block = body.get("quotes") or {}
        if not isinstance(block, dict):
            block = {}
        by_symbol = {str(q["symbol"]).upper(): q for q in as_list(block.get("quote"))}
        missing = [s for s in symbols if s.upper() not in by_symbol]
        if missing:
            raise BrokerError(f"Tradier has no quote for {missing}: check the symbols", broker=self.name)
        quotes = {}
        for symbol in symbols:
            q = by_symbol[symbol.upper()]
            quotes[symbol] = Quote(
                symbol=symbol,
                bid=parse_number(q.get("bid")),
                ask=parse_number(q.get("ask")),
                last=parse_number(q.get("last")),
                bid_size=parse_number(q.get("bidsize")),
                ask_size=parse_number(q.get("asksize")),
                timestamp=_ms_datetime(q.get("trade_date")) or _ms_datetime(q.get("bid_date")),
            )
        return quotes

    @retrier
    def session_volume(self, symbol: str, before: date) -> float | None:
        """Volume of ``symbol`` (a Tradier symbol, ``/MESZ26`` for a future) in its last complete daily bar
        before ``before`` (``/markets/history``), or None when it has none in the week before."""
        body = self._request(
            "GET",
            "/markets/history",
            params={
                "symbol": symbol,
                "interval": "daily",
                "start": (before - timedelta(days=7)).isoformat(),
                "end": (before - timedelta(days=1)).isoformat(),
            },
        )
        block = body.get("history")
        days = as_list(block.get("day")) if isinstance(block, dict) else []
        earlier = [d for d in days if str(d.get("date", "")) < before.isoformat()]
        return parse_number(earlier[-1].get("volume")) if earlier else None

    def front_month(self, root: str, today: date | None = None) -> FuturesContract:
        """The contract of ``root`` (``MES``) a continuous future trades ``today`` (default: today in New
        York): of the nearest two, the one with the most volume in the last complete session
        (:func:`brokers.futures.front_contract`). Needs ``enable_futures``."""
        self._require("futures", f"{root} futures contracts")
        day = today or datetime.now(_NEW_YORK).date()
        return front_contract(root, day, lambda c: self.session_volume(c.tradier_symbol, day))

    @retrier
    def get_option_expirations(self, underlying: str) -> list[date]:
        body = self._request(
            "GET", "/markets/options/expirations", params={"symbol": underlying, "includeAllRoots": "true"}
        )
        block = body.get("expirations")
        dates = as_list(block.get("date")) if isinstance(block, dict) else []
        return sorted(date.fromisoformat(str(d)) for d in dates)

    @retrier
    def get_option_chain(self, underlying: str, expiration: date) -> list[OptionContract]:
        body = self._request(
            "GET",
            "/markets/options/chains",
            params={"symbol": underlying, "expiration": expiration.isoformat(), "greeks": "true"},
        )
        block = body.get("options")
        rows = as_list(block.get("option")) if isinstance(block, dict) else []
        chain = []
        for row in rows:
            greeks = row.get("greeks") if isinstance(row.get("greeks"), dict) else {}
            chain.append(
                OptionContract(
                    symbol=str(row["symbol"]),
                    underlying=str(row.get("underlying") or underlying),
                    expiration=date.fromisoformat(str(row.get("expiration_date") or expiration.isoformat())),
                    strike=parse_number(row.get("strike")) or 0.0,
                    right=str(row.get("option_type", "")).lower(),
                    bid=parse_number(row.get("bid")),
                    ask=parse_number(row.get("ask")),
                    last=parse_number(row.get("last")),
                    volume=parse_number(row.get("volume")),
                    open_interest=parse_number(row.get("open_interest")),
                    delta=parse_number(greeks.get("delta")),
                    gamma=parse_number(greeks.get("gamma")),
                    theta=parse_number(greeks.get("theta")),
                    vega=parse_number(greeks.get("vega")),
                    implied_volatility=parse_number(greeks.get("mid_iv")),
                )
            )
        return sorted(chain, key=lambda c: (c.strike, c.right))

    # ----------------------------------------------------------------- orders: read
    def _not_found(self, order_id: str) -> Callable[[], BrokerError]:
        return lambda: OrderNotFoundError(
            f"Tradier account {self.account_id} has no order {order_id}", broker=self.name, status_code=404
        )

    @retrier
    def get_order(self, order_id: str) -> Order:
        body = self._request(
            "GET",
            f"/accounts/{self.account_id}/orders/{order_id}",
            params={"includeTags": "true"},
            not_found=self._not_found(order_id),
        )
        raw = body.get("order")
        if not isinstance(raw, dict):
            raise OrderNotFoundError(f"Tradier returned no order for id {order_id}", broker=self.name)
        return self._parse_order(raw)

    @retrier
    def list_orders(self) -> list[Order]:
        """Today's orders, open and final (Tradier keeps the current day's history)."""
        body = self._request("GET", f"/accounts/{self.account_id}/orders", params={"includeTags": "true"})
        block = body.get("orders")
        rows = as_list(block.get("order")) if isinstance(block, dict) else []
        return [self._parse_order(row) for row in rows]

    def list_open_orders(self) -> list[Order]:
        """Orders with any working part, including brackets whose entry filled but exits still work
        (canceling such a parent cancels its exits)."""
        return [order for order in self.list_orders() if _is_working(order.raw)]

    def find_order_by_client_id(self, client_order_id: str) -> Order | None:
        return first_or_none(o for o in self.list_orders() if o.client_order_id == client_order_id)

    def _parse_order(self, raw: Mapping[str, Any]) -> Order:
        klass = str(raw.get("class", "equity"))
        state = _STATES.get(str(raw.get("status", "")).lower(), OrderState.PENDING)
        legs_raw = as_list(raw.get("leg"))
        tag = raw.get("tag") or None
        common = {
            "order_id": str(raw["id"]),
            "client_order_id": str(tag) if tag else None,
            "created_at": _iso_datetime(raw.get("create_date")),
            "raw": raw,
        }
        if klass == "oco" and legs_raw:
            return self._parse_oco(raw, legs_raw, common)
        if klass in ("otoco", "oto") and legs_raw:
            return self._parse_bracket(raw, legs_raw, state, common)
        if klass == "multileg" and legs_raw:
            legs = tuple(self._parse_leg(leg, "option") for leg in legs_raw)
            tradier_type = str(raw.get("type", "market"))
            price = parse_number(raw.get("price"))
            if tradier_type == "market":
                order_type, net = OrderType.MARKET, None
            else:
                sign = {"debit": 1.0, "credit": -1.0}.get(tradier_type, 0.0)
                order_type, net = OrderType.LIMIT, sign * abs(price or 0.0)
            filled = min((parse_number(leg.get("exec_quantity")) or 0.0) for leg in legs_raw)
            return Order(
                state=state,
                legs=legs,
                order_type=order_type,
                limit_price=net,
                time_in_force=self._tif(raw),
                filled_quantity=filled,
                avg_fill_price=parse_number(raw.get("avg_fill_price")),
                reason=raw.get("reason_description"),
                **common,
            )
        return self._one_leg_order(
            raw, klass, state, self._tif(raw), reason=raw.get("reason_description"), **common
        )

    def _one_leg_order(
        self,
        record: Mapping[str, Any],
        klass: str,
        state: OrderState,
        tif: TimeInForce | None,
        /,
        **fields: Any,
    ) -> Order:
        """The order one Tradier order record describes (a plain order, or a bracket's entry leg, whose class,
        duration and state the caller reads from the bracket); ``fields`` are the rest of the Order (its raw)."""
        return Order(
            state=state,
            legs=(self._parse_leg(record, klass),),
            order_type=self._order_type(record),
            limit_price=parse_number(record.get("price")),
            stop_price=parse_number(record.get("stop_price")),
            time_in_force=tif,
            filled_quantity=parse_number(record.get("exec_quantity")) or 0.0,
            avg_fill_price=parse_number(record.get("avg_fill_price")) or None,
            **fields,
        )

    def _parse_bracket(
        self, raw: Mapping[str, Any], legs_raw: list[Any], state: OrderState, common: dict[str, Any]
    ) -> Order:
        entry_raw, exits = legs_raw[0], legs_raw[1:]
        take_profit = next((parse_number(x.get("price")) for x in exits if x.get("type") == "limit"), None)
        stop_loss = next(
            (parse_number(x.get("stop_price")) for x in exits if x.get("type") in ("stop", "stop_limit")),
            None,
        )
        # The bracket is reported as its entry (state, fills); the exits are children. Whether any
        # part still works is a separate question, answered by _is_working for list_open_orders.
        entry_state = _STATES.get(str(entry_raw.get("status", "")).lower(), state)
        parent_state = state if state in (OrderState.REJECTED, OrderState.EXPIRED) else entry_state
        return self._one_leg_order(
            entry_raw,
            str(entry_raw.get("class", "equity")),
            parent_state,
            self._tif(raw),
            take_profit=take_profit,
            stop_loss=stop_loss,
            child_order_ids=tuple(str(x["id"]) for x in exits),
            **common,
        )

    def _parse_oco(self, raw: Mapping[str, Any], legs_raw: list[Any], common: dict[str, Any]) -> Order:
        """An OCO of exits (no entry): filled once either leg filled, canceled once both are final unfilled."""
        states = [_STATES.get(str(x.get("status", "")).lower(), OrderState.PENDING) for x in legs_raw]
        filled = next((x for x, st in zip(legs_raw, states, strict=True) if st is OrderState.FILLED), None)
        if filled is not None:
            state = OrderState.FILLED
        elif all(st.is_final for st in states):
            state = OrderState.CANCELED
        else:
            state = OrderState.OPEN
        return Order(
            state=state,
            legs=(self._parse_leg(legs_raw[0], str(legs_raw[0].get("class", "equity"))),),
            order_type=OrderType.MARKET,
            time_in_force=self._tif(raw),
            filled_quantity=parse_number(filled.get("exec_quantity")) or 0.0 if filled else 0.0,
            avg_fill_price=parse_number(filled.get("avg_fill_price")) if filled else None,
            take_profit=next(
                (parse_number(x.get("price")) for x in legs_raw if x.get("type") == "limit"), None
            ),
            stop_loss=next(
                (parse_number(x.get("stop_price")) for x in legs_raw if x.get("type") == "stop"), None
            ),
            child_order_ids=tuple(str(x["id"]) for x in legs_raw),
            **common,
        )

    @staticmethod
    def _parse_leg(raw: Mapping[str, Any], klass: str) -> Leg:
        side, effect = _SIDES_FROM_TRADIER.get(str(raw.get("side", "buy")), (Side.BUY, None))
        symbol = str(raw.get("option_symbol") or raw.get("symbol"))
        asset_class = _asset_class_for(symbol, klass)
        return Leg(
            symbol=symbol.lstrip("/") if asset_class is AssetClass.FUTURE else symbol,
            side=side,
            quantity=parse_number(raw.get("quantity")) or 0.0,
            asset_class=asset_class,
            position_effect=effect,
        )

    @staticmethod
    def _order_type(raw: Mapping[str, Any]) -> OrderType:
        try:
            return OrderType(str(raw.get("type", "market")))
        except ValueError:
            return OrderType.LIMIT

    @staticmethod
    def _tif(raw: Mapping[str, Any]) -> TimeInForce | None:
        duration = str(raw.get("duration", "day"))
        return TimeInForce.GTC if duration == "gtc" else TimeInForce.DAY

    # ----------------------------------------------------------------- orders: write
    def _duration(self, request: OrderRequest) -> str:
        duration = _DURATIONS.get(request.time_in_force)
        if duration is None:
            raise NotSupportedError(
                f"Tradier has no {request.time_in_force.value!r} duration: use 'day' or 'gtc'",
                broker=self.name,
            )
        return duration

    def _leg_symbol_fields(self, leg: Leg, index: int | None = None) -> dict[str, str]:
        def key(name: str) -> str:
            return name if index is None else f"{name}[{index}]"

        if leg.asset_class is AssetClass.OPTION:
            return {key("symbol"): leg.underlying, key("option_symbol"): leg.symbol.upper()}
        if leg.asset_class is AssetClass.FUTURE:
            return {key("symbol"): "/" + leg.symbol.upper().lstrip("/")}
        # Tradier spells share classes with a slash (BRK/B), like lumiwealth_tradier does.
        return {key("symbol"): leg.symbol.upper().replace(".", "/")}

    def build_order_form(self, request: OrderRequest) -> dict[str, str]:
        """The form fields :meth:`place_order` POSTs for ``request`` (public for inspection/tests)."""
        duration = self._duration(request)
        form: dict[str, str] = {"duration": duration, "tag": str(request.client_order_id)}
        if request.is_multileg:
            form.update({"class": "multileg", "symbol": request.legs[0].underlying})
            if request.order_type is OrderType.MARKET:
                form["type"] = "market"
            else:
                net = float(request.limit_price or 0.0)
                form["type"] = "debit" if net > 0 else "credit" if net < 0 else "even"
                if net:
                    form["price"] = _fmt_price(abs(net))
            for i, leg in enumerate(request.legs):
                form[f"option_symbol[{i}]"] = leg.symbol.upper()
                form[f"side[{i}]"] = tradier_side(leg)
                form[f"quantity[{i}]"] = _fmt_qty(leg.quantity)
            return form
        leg = request.leg
        if request.oco:
            return self._oco_form(request, form)
        if request.is_bracket:
            return self._bracket_form(request, form)
        klass = {AssetClass.OPTION: "option", AssetClass.FUTURE: "future"}.get(leg.asset_class, "equity")
        form.update({"class": klass, "side": tradier_side(leg), "quantity": _fmt_qty(leg.quantity)})
        form.update(self._leg_symbol_fields(leg))
        form["type"] = request.order_type.value
        if request.limit_price is not None:
            form["price"] = _fmt_price(request.limit_price)
        if request.stop_price is not None:
            form["stop"] = _fmt_price(request.stop_price)
        return form

    def _bracket_form(self, request: OrderRequest, form: dict[str, str]) -> dict[str, str]:
        leg = request.leg
        exits: list[tuple[str, float]] = []
        if request.take_profit is not None:
            exits.append(("limit", request.take_profit))
        if request.stop_loss is not None:
            exits.append(("stop", request.stop_loss))
        # Entry plus both exits is an OTOCO (fill triggers a one-cancels-other pair); with a single
        # exit it is an OTO.
        form["class"] = "otoco" if len(exits) == 2 else "oto"
        form.update(self._leg_symbol_fields(leg, 0))
        form.update({"side[0]": tradier_side(leg), "quantity[0]": _fmt_qty(leg.quantity)})
        form["type[0]"] = request.order_type.value
        if request.limit_price is not None:
            form["price[0]"] = _fmt_price(request.limit_price)
        if request.stop_price is not None:
            form["stop[0]"] = _fmt_price(request.stop_price)
        for i, (exit_type, price) in enumerate(exits, start=1):
            form.update(self._leg_symbol_fields(leg, i))
            form.update({f"side[{i}]": _closing_side(leg), f"quantity[{i}]": _fmt_qty(leg.quantity)})
            form[f"type[{i}]"] = exit_type
            form[f"price[{i}]" if exit_type == "limit" else f"stop[{i}]"] = _fmt_price(price)
        return form

    def _oco_form(self, request: OrderRequest, form: dict[str, str]) -> dict[str, str]:
        """The exits of an open position: a limit (target) and a stop, one cancelling the other
        (``class=oco``, legs indexed like an OTOCO's); a single level is a plain limit or stop order."""
        leg = request.leg
        exits = [("limit", request.take_profit), ("stop", request.stop_loss)]
        levels = [(kind, price) for kind, price in exits if price is not None]
        side, qty = tradier_side(leg), _fmt_qty(leg.quantity)
        if len(levels) == 1:
            ((kind, price),) = levels
            klass = {AssetClass.OPTION: "option", AssetClass.FUTURE: "future"}.get(leg.asset_class, "equity")
            form.update(
                {"class": klass, "side": side, "quantity": qty, "type": kind, **self._leg_symbol_fields(leg)}
            )
            form["price" if kind == "limit" else "stop"] = _fmt_price(float(price))  # type: ignore[arg-type]
            return form
        form["class"] = "oco"
        for i, (kind, price) in enumerate(levels):
            form.update(self._leg_symbol_fields(leg, i))
            form.update({f"side[{i}]": side, f"quantity[{i}]": qty, f"type[{i}]": kind})
            form[f"price[{i}]" if kind == "limit" else f"stop[{i}]"] = _fmt_price(float(price))  # type: ignore[arg-type]
        return form

    def _submit_order(self, request: OrderRequest) -> Order:
        form = self.build_order_form(request)
        body = self._request("POST", f"/accounts/{self.account_id}/orders", data=form)
        ack = body.get("order")
        if not isinstance(ack, dict) or "id" not in ack:
            detail = body.get("errors") or body
            raise InvalidOrderError(
                f"Tradier did not accept order {request.client_order_id}: {detail}", broker=self.name
            )
        order_id = str(ack["id"])
        logger.info("tradier: order %s submitted as %s", request.client_order_id, order_id)
        return self.get_order(order_id)

    @retrier
    def cancel_order(self, order_id: str) -> OrderStatus:
        return self._cancel_tolerating_final(
            order_id,
            lambda: self._request(
                "DELETE",
                f"/accounts/{self.account_id}/orders/{order_id}",
                not_found=self._not_found(order_id),
            ),
            refusals=(InvalidOrderError,),
        )

    def _send_replace(self, order_id: str, current: Order, changes: OrderChanges) -> None:
        form: dict[str, str] = {"type": current.order_type.value}
        tif = changes.time_in_force or current.time_in_force or TimeInForce.DAY
        duration = _DURATIONS.get(tif)
        if duration is None:
            raise NotSupportedError(f"Tradier has no {tif.value!r} duration", broker=self.name)
        form["duration"] = duration
        price = changes.limit_price if changes.limit_price is not None else current.limit_price
        stop = changes.stop_price if changes.stop_price is not None else current.stop_price
        if price is not None and current.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            form["price"] = _fmt_price(price)
        if stop is not None and current.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            form["stop"] = _fmt_price(stop)
        self._request(
            "PUT",
            f"/accounts/{self.account_id}/orders/{order_id}",
            data=form,
            not_found=self._not_found(order_id),
        )

    def _close_position(self, position: Position) -> Order | None:
        if not position.quantity:
            return None
        side = Side.SELL if position.quantity > 0 else Side.BUY
        symbol = position.symbol
        request = OrderRequest.single(
            symbol,
            side,
            abs(position.quantity),
            asset_class=position.asset_class,
            position_effect=PositionEffect.CLOSE,
            # Tie the id to this very position so a retried flatten reconciles instead of doubling.
            intent=f"flatten:{position.position_id}:{position.raw.get('date_acquired', '')}",
        )
        return self.place_order(request)


__all__ = ["TradierAdapter", "tradier_side"]
