"""The shared HTTP boundary (``brokers.rest.HttpAdapter``) through both real adapters over httpx.MockTransport:
each broker's error text is found where that broker keeps it, and a failed answer becomes the error its status
and text call for."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from brokers import (
    TRADELOCKER_LIVE_URL,
    TRADIER_LIVE_URL,
    AuthenticationError,
    BrokerError,
    InsufficientFundsError,
    InvalidOrderError,
    TemporaryBrokerError,
    TradeLockerAdapter,
    TradierAdapter,
)

Answer = Callable[[httpx.Request], httpx.Response]


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _tradier(answer: Answer) -> TradierAdapter:
    return TradierAdapter(
        "token-abcdefgh",
        "VA1",
        base_url="https://sandbox.tradier.com/v1",
        transport=httpx.MockTransport(answer),
        retry_count=0,
    )


def _tradelocker(answer: Answer) -> TradeLockerAdapter:
    """A TradeLocker adapter whose login succeeds; every /trade call gets ``answer``."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/jwt/token"):
            return _json(201, {"accessToken": "access-1234567890", "refreshToken": "refresh-1234567890"})
        if request.url.path.endswith("/auth/jwt/all-accounts"):
            return _json(200, {"accounts": [{"id": "7", "accNum": "1", "currency": "USD"}]})
        return answer(request)

    return TradeLockerAdapter(
        "trader@example.com", "hunter2-password", "DEMO", transport=httpx.MockTransport(route), retry_count=0
    )


_SECRETS = ("token-abcdefgh", "hunter2-password", "access-1234567890", "refresh-1234567890")


@pytest.mark.parametrize(
    ("adapter", "response", "error", "text"),
    [
        (
            _tradier,
            _json(400, {"errors": {"error": ["Invalid symbol", "Market closed"]}}),
            InvalidOrderError,
            "Invalid symbol | Market closed",
        ),
        (
            _tradier,
            _json(400, {"fault": {"faultstring": "Invalid access token"}}),
            InvalidOrderError,
            "Invalid access token",
        ),
        (
            _tradier,
            _json(400, {"errors": {"error": "Not enough buying power"}}),
            InsufficientFundsError,
            "Not enough buying power",
        ),
        (_tradier, httpx.Response(503, text="upstream down"), TemporaryBrokerError, "upstream down"),
        (_tradier, _json(418, {"note": "odd"}), BrokerError, "{'note': 'odd'}"),
        (
            _tradelocker,
            _json(400, {"s": "error", "errmsg": "Account is blocked"}),
            InvalidOrderError,
            "Account is blocked",
        ),
        (
            _tradelocker,
            _json(400, {"message": "not enough margin"}),
            InsufficientFundsError,
            "not enough margin",
        ),
        (  # TradeLocker also refuses with 200 and {"s": "error"}
            _tradelocker,
            _json(200, {"s": "error", "errmsg": "Insufficient funds"}),
            InsufficientFundsError,
            "Insufficient funds",
        ),
        (
            _tradelocker,
            _json(403, {"detail": "session closed"}),
            AuthenticationError,
            "TradeLocker refused the session of trader@example.com (HTTP 403: session closed)",
        ),
        (_tradelocker, httpx.Response(502, text=""), TemporaryBrokerError, "Bad Gateway"),
    ],
)
def test_errors_carry_the_text_where_the_broker_keeps_it(
    adapter: Callable[[Answer], TradierAdapter | TradeLockerAdapter],
    response: httpx.Response,
    error: type[BrokerError],
    text: str,
) -> None:
    with adapter(lambda _: response) as broker, pytest.raises(error) as raised:
        broker.get_balances()
    assert type(raised.value) is error and str(raised.value).endswith(f": {text}")
    assert raised.value.status_code == response.status_code
    assert not any(secret in str(raised.value) for secret in _SECRETS)


def test_tradier_rejected_key_names_the_variables_to_check_and_masks_the_key() -> None:
    rejected = _tradier(lambda _: _json(401, {"fault": {"faultstring": "Invalid token"}}))
    with rejected as adapter, pytest.raises(AuthenticationError, match="check TRADIER_API_KEY") as raised:
        adapter.get_balances()
    assert "token-abcdefgh" not in str(raised.value) and "Invalid token" in str(raised.value)


@pytest.mark.parametrize(
    ("build", "setting", "alternative"),
    [
        (
            lambda **kw: TradierAdapter("key-123456789", "VA1", **kw),
            "base_url",
            "the sandbox https://sandbox",
        ),
        (
            lambda **kw: TradeLockerAdapter("trader@example.com", "hunter2-password", "DEMO", **kw),
            "environment_url",
            "https://demo.tradelocker.com",
        ),
    ],
)
def test_the_live_host_needs_allow_live_and_the_refusal_names_the_paper_alternative(
    build: Callable[..., TradierAdapter | TradeLockerAdapter], setting: str, alternative: str
) -> None:
    live_url = {"base_url": TRADIER_LIVE_URL, "environment_url": TRADELOCKER_LIVE_URL}[setting]
    with pytest.raises(ValueError, match="allow_live=True") as refused:
        build(**{setting: live_url.upper()})  # a host is a host in any case
    assert str(refused.value).startswith(f"{setting} {live_url.upper()} is the live (real money)")
    assert f"or use {alternative}" in str(refused.value)
    build(**{setting: live_url}, allow_live=True).close()
