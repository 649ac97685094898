"""Fixtures for the broker tests: fake servers on 127.0.0.1 (port 0), adapters pointed at them.

The fakes package is loaded under the unique name ``broker_fakes`` so it cannot collide with other
``fakes`` packages elsewhere in the test tree (test folders here are not packages).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from brokers import BrokerAdapter, OrderRequest, TradeLockerAdapter, TradierAdapter


def _load_fakes() -> Any:
    if "broker_fakes" in sys.modules:
        return sys.modules["broker_fakes"]
    package_dir = Path(__file__).parent / "fakes"
    spec = importlib.util.spec_from_file_location(
        "broker_fakes", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["broker_fakes"] = module
    spec.loader.exec_module(module)
    return module


fakes = _load_fakes()

# Retries and settle waits at zero keep the tests fast; timeouts short enough that the "slow submit"
# fault (FAKE_DELAY) reliably exceeds them.
FAST = {"retry_backoff_base": 0.0, "retry_max_backoff": 0.0, "submit_settle_seconds": 0.0}
CLIENT_TIMEOUT = 1.0
FAKE_DELAY = 2.5


@dataclass
class BrokerHarness:
    """One broker under test: its fake server, a connected adapter and what to trade there."""

    name: str
    fake: Any
    adapter: BrokerAdapter
    make_adapter: Callable[..., BrokerAdapter]
    symbol: str
    quantity: float
    resting_buy_limit: float  # far below the market: rests until canceled
    take_profit: float
    stop_loss: float
    submit_path: str  # regex of the submit endpoint, for fault injection
    balances_path: str
    starting_equity: float
    secret: str  # what a bad-credentials test uses as the wrong secret
    unsupported: OrderRequest
    slow_submit_delay: float = FAKE_DELAY  # > CLIENT_TIMEOUT: the client gives up first
    extra: dict[str, Any] = field(default_factory=dict)

    def order_count(self) -> int:
        return self.fake.order_count()

    def market_buy(self, **kwargs: Any) -> OrderRequest:
        asset = "forex" if self.name == "tradelocker" else "equity"
        return OrderRequest.single(self.symbol, "buy", self.quantity, asset_class=asset, **kwargs)

    def resting_buy(self, **kwargs: Any) -> OrderRequest:
        asset = "forex" if self.name == "tradelocker" else "equity"
        return OrderRequest.single(
            self.symbol,
            "buy",
            self.quantity,
            asset_class=asset,
            order_type="limit",
            limit_price=self.resting_buy_limit,
            time_in_force="gtc",
            **kwargs,
        )


def _tradier_harness() -> Iterator[BrokerHarness]:
    fake = fakes.FakeTradier()
    base_url = fake.start()

    def make(**overrides: Any) -> TradierAdapter:
        options: dict[str, Any] = {"base_url": base_url, "timeout": CLIENT_TIMEOUT, **FAST}
        api_key = overrides.pop("api_key", fake.token)
        options.update(overrides)
        return TradierAdapter(api_key, fake.account_id, **options)

    adapter = make()
    try:
        yield BrokerHarness(
            name="tradier",
            fake=fake,
            adapter=adapter,
            make_adapter=make,
            symbol="SPY",
            quantity=10,
            resting_buy_limit=500.00,
            take_profit=620.00,
            stop_loss=560.00,
            submit_path=r"/v1/accounts/[^/]+/orders$",
            balances_path=r"/balances$",
            starting_equity=100_000.0,
            secret=fake.token,
            unsupported=OrderRequest.single("EURUSD", "buy", 10_000, asset_class="forex"),
        )
    finally:
        adapter.close()
        fake.stop()


def _tradelocker_harness() -> Iterator[BrokerHarness]:
    fake = fakes.FakeTradeLocker()
    fake.start()

    def make(**overrides: Any) -> TradeLockerAdapter:
        options: dict[str, Any] = {"environment_url": fake.root_url, "timeout": CLIENT_TIMEOUT, **FAST}
        password = overrides.pop("password", fake.password)
        options.update(overrides)
        return TradeLockerAdapter(fake.username, password, fake.server_name, **options)

    adapter = make()
    try:
        yield BrokerHarness(
            name="tradelocker",
            fake=fake,
            adapter=adapter,
            make_adapter=make,
            symbol="EURUSD",
            quantity=10_000,  # units = 0.1 lot
            resting_buy_limit=1.05000,
            take_profit=1.10000,
            stop_loss=1.07000,
            submit_path=r"/trade/accounts/\d+/orders$",
            balances_path=r"/state$",
            starting_equity=50_000.0,
            secret=fake.password,
            unsupported=OrderRequest.single("SPY241220C00600000", "buy", 1, asset_class="option"),
        )
    finally:
        adapter.close()
        fake.stop()


_HARNESSES = {"tradier": _tradier_harness, "tradelocker": _tradelocker_harness}
BROKERS = list(_HARNESSES)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[BrokerHarness]:
    """Indirectly parametrised with a broker name: starts that broker's fake and stops it after."""
    yield from _HARNESSES[request.param]()


@pytest.fixture
def tradier() -> Iterator[BrokerHarness]:
    yield from _tradier_harness()


@pytest.fixture
def tradelocker() -> Iterator[BrokerHarness]:
    yield from _tradelocker_harness()
