"""Pure parts of brokers/: errors and masking, the retrier, OrderRequest validation and ids, credentials."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from brokers import (
    AuthenticationError,
    CredentialsError,
    InvalidOrderError,
    Leg,
    OrderRequest,
    TemporaryBrokerError,
    TradeLockerAdapter,
    TradierAdapter,
    load_tradelocker_credentials,
    load_tradier_credentials,
    mask_secret,
    retrier,
)
from brokers.base import parse_occ_symbol
from brokers.errors import backoff_delay, parse_retry_after, redact

# ---------------------------------------------------------------------------- masking


def test_mask_secret() -> None:
    assert mask_secret("abcd1234efgh") == "abcd…(masked)"
    assert mask_secret("short") == "…(masked)"
    assert mask_secret("") == "<empty>"
    assert mask_secret(None) == "<empty>"


def test_redact_masks_every_occurrence_longest_first() -> None:
    text = "key=abcd1234efgh and again abcd1234efgh; token abcd1234efgh-extended"
    out = redact(text, ["abcd1234efgh", "abcd1234efgh-extended", None])
    assert "abcd1234efgh" not in out
    assert out.count("abcd…(masked)") == 3


def test_broker_error_scrubs_its_message() -> None:
    exc = AuthenticationError("rejected key s3cr3t-k3y-value", broker="tradier", secrets=["s3cr3t-k3y-value"])
    assert str(exc) == "[tradier] rejected key s3cr…(masked)"
    assert "s3cr3t-k3y-value" not in repr(exc)


# ---------------------------------------------------------------------------- retrier


class _Flaky:
    retry_count = 3
    retry_backoff_base = 0.0
    retry_max_backoff = 0.0

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    @retrier
    def read(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_retrier_retries_only_temporary_errors() -> None:
    flaky = _Flaky([TemporaryBrokerError("503"), TemporaryBrokerError("timeout")])
    assert flaky.read() == "ok"
    assert flaky.calls == 3

    auth = _Flaky([AuthenticationError("bad key")])
    with pytest.raises(AuthenticationError):
        auth.read()
    assert auth.calls == 1

    hopeless = _Flaky([TemporaryBrokerError(str(i)) for i in range(10)])
    with pytest.raises(TemporaryBrokerError, match="3"):
        hopeless.read()
    assert hopeless.calls == 4  # first try + retry_count retries


def test_backoff_and_retry_after() -> None:
    assert [backoff_delay(n, 0.5, 8.0) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff_delay(1, 0.5, 8.0, retry_after=3.0) == 3.0
    assert backoff_delay(1, 0.5, 8.0, retry_after=3600.0) == 8.0  # capped
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_transport_errors_are_translated_with_cause() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    adapter = TradierAdapter(
        "key-abcdefgh12", "VA1", transport=httpx.MockTransport(refuse), retry_count=1, retry_backoff_base=0.0
    )
    with pytest.raises(TemporaryBrokerError, match="network error") as info:
        adapter.get_balances()
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_adapter_reprs_hide_secrets() -> None:
    tradier = TradierAdapter("key-abcdefgh12", "VA1")
    tl = TradeLockerAdapter("me@example.com", "pa55word-very-secret", "TrendMarkets-Demo")
    assert "key-abcdefgh12" not in repr(tradier) and "key-…(masked)" in repr(tradier)
    assert "pa55word-very-secret" not in repr(tl) and "pa55…(masked)" in repr(tl)


# ---------------------------------------------------------------------------- OrderRequest


def test_client_order_id_is_deterministic_and_broker_safe() -> None:
    a = OrderRequest.single("SPY", "buy", 10, intent="dep-1/2025-11-14T15:30")
    b = OrderRequest.single("spy", "BUY", 10.0, intent="dep-1/2025-11-14T15:30")
    c = OrderRequest.single("SPY", "buy", 10, intent="dep-1/2025-11-14T15:31")
    assert a.client_order_id == b.client_order_id
    assert a.client_order_id != c.client_order_id
    assert a.client_order_id is not None and len(a.client_order_id) <= 31
    assert a.client_order_id.replace("-", "").isalnum()
    explicit = OrderRequest.single("SPY", "buy", 1, client_order_id="my-order-7")
    assert explicit.client_order_id == "my-order-7"
    with pytest.raises(InvalidOrderError, match="letters, digits"):
        OrderRequest.single("SPY", "buy", 1, client_order_id="has space")
    with pytest.raises(InvalidOrderError, match="1-31"):
        OrderRequest.single("SPY", "buy", 1, client_order_id="x" * 32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_type": "limit"}, "needs limit_price"),
        ({"order_type": "stop"}, "needs stop_price"),
        ({"limit_price": 5.0}, "market order must not carry"),
        ({"take_profit": 90.0, "stop_loss": 95.0}, "take_profit must be > stop_loss"),
        ({"order_type": "bogus"}, "expected one of 'market'"),
    ],
)
def test_order_request_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidOrderError, match=message):
        OrderRequest.single("SPY", "buy", 1, **kwargs)


def test_leg_and_multileg_validation() -> None:
    with pytest.raises(InvalidOrderError, match="quantity must be > 0"):
        Leg("SPY", "sell", -5)
    with pytest.raises(InvalidOrderError, match="option legs only"):
        OrderRequest(legs=(Leg("SPY", "buy", 100), Leg("SPY251121C00590000", "sell", 1, "option")))
    with pytest.raises(InvalidOrderError, match="one underlying"):
        OrderRequest(
            legs=(
                Leg("SPY251121C00590000", "buy", 1, "option"),
                Leg("QQQ251121C00490000", "sell", 1, "option"),
            )
        )
    occ = parse_occ_symbol("SPY251121C00590500")
    assert occ is not None and (occ.root, occ.expiration.isoformat(), occ.right, occ.strike) == (
        "SPY",
        "2025-11-21",
        "call",
        590.5,
    )
    assert parse_occ_symbol("SPY") is None


# ---------------------------------------------------------------------------- credentials


def test_tradier_credentials_env_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TRADIER_API_KEY=from-dotenv-key-123\nTRADIER_ACCOUNT_ID=VA-DOTENV\n")
    creds = load_tradier_credentials(env_file=env_file, environ={"TRADIER_API_KEY": "from-env-key-456"})
    assert creds.api_key.get_secret_value() == "from-env-key-456"
    assert creds.account_id == "VA-DOTENV"
    assert creds.base_url == "https://sandbox.tradier.com/v1"
    assert not creds.is_live
    assert "from-env-key-456" not in repr(creds) and "from-env-key-456" not in str(creds)


def test_tradier_live_only_when_asked(tmp_path: Path) -> None:
    env = {
        "TRADIER_API_KEY": "k" * 12,
        "TRADIER_ACCOUNT_ID": "VA1",
        "TRADIER_BASE_URL": "https://api.tradier.com/v1",
    }
    with pytest.raises(CredentialsError, match="live=True"):
        load_tradier_credentials(env_file=None, environ=env)
    assert load_tradier_credentials(live=True, env_file=None, environ=env).is_live
    live_default = load_tradier_credentials(
        live=True, env_file=None, environ={"TRADIER_API_KEY": "k" * 12, "TRADIER_ACCOUNT_ID": "VA1"}
    )
    assert live_default.base_url == "https://api.tradier.com/v1"
    adapter = TradierAdapter.from_credentials(live_default)
    assert adapter.base_url == "https://api.tradier.com/v1"
    adapter.close()


def test_missing_credential_names_variable_and_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TRADIER_ACCOUNT_ID=VA1\n")
    with pytest.raises(CredentialsError) as info:
        load_tradier_credentials(env_file=env_file, environ={})
    assert "TRADIER_API_KEY is not set" in str(info.value)
    assert str(env_file.resolve()) in str(info.value)


def test_tradelocker_credentials(tmp_path: Path) -> None:
    env = {
        "TRADELOCKER_USERNAME": "me@example.com",
        "TRADELOCKER_PASSWORD": "pa55word-very-secret",
        "TRADELOCKER_SERVER": "TrendMarkets-Demo",
    }
    creds = load_tradelocker_credentials(env_file=None, environ=env)
    assert creds.environment_url == "https://demo.tradelocker.com"
    assert creds.acc_num is None
    assert "pa55word-very-secret" not in repr(creds)
    assert (
        load_tradelocker_credentials(env_file=None, environ={**env, "TRADELOCKER_ACC_NUM": "3"}).acc_num == 3
    )
    with pytest.raises(CredentialsError, match="live trading was not requested"):
        load_tradelocker_credentials(env_file=None, environ={**env, "TRADELOCKER_ENV": "live"})
    live = load_tradelocker_credentials(live=True, env_file=None, environ={**env, "TRADELOCKER_ENV": "live"})
    assert live.environment_url == "https://live.tradelocker.com"
    with pytest.raises(CredentialsError, match="TRADELOCKER_ENV='staging'"):
        load_tradelocker_credentials(env_file=None, environ={**env, "TRADELOCKER_ENV": "staging"})
    with pytest.raises(CredentialsError, match="TRADELOCKER_PASSWORD is not set"):
        load_tradelocker_credentials(
            env_file=None, environ={k: v for k, v in env.items() if "PASSWORD" not in k}
        )


def test_nothing_secret_is_logged_while_loading(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    load_tradier_credentials(
        env_file=None, environ={"TRADIER_API_KEY": "very-secret-key-1", "TRADIER_ACCOUNT_ID": "A"}
    )
    assert "very-secret-key-1" not in caplog.text


def test_every_instrument_type_has_one_broker_asset_class_and_an_occ_symbol() -> None:
    import datetime as dt

    from brokers.base import AssetClass
    from data.flatfiles import occ_symbol, occ_ticker, parse_occ_ticker
    from spec_space.instruments import INSTRUMENT_TYPES

    classes = {kind: AssetClass.of(kind) for kind in INSTRUMENT_TYPES}
    assert classes == {
        "stock": AssetClass.EQUITY,
        "option": AssetClass.OPTION,
        "future": AssetClass.FUTURE,
        "forex": AssetClass.FOREX,
    }
    assert AssetClass.of("cont_future") is AssetClass.FUTURE  # a Lumibot asset type
    # one OCC formatting: brokers' bare symbol, Polygon's O: ticker, Lumibot's "CALL"/"PUT" rights
    symbol = occ_symbol("SPY", dt.date(2024, 3, 7), "CALL", 510.0)
    assert symbol == "SPY240307C00510000" and parse_occ_symbol(symbol).strike == 510.0
    assert occ_ticker("SPY", dt.date(2024, 3, 7), "P", 512.5) == "O:SPY240307P00512500"
    assert parse_occ_ticker(occ_ticker("SPY", dt.date(2024, 3, 7), "put", 1.5)).right == "P"
    with pytest.raises(ValueError, match="right must be"):
        occ_symbol("SPY", dt.date(2024, 3, 7), "X", 1.0)
