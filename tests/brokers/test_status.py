"""``search deployments``' per-deployment status (brokers/status.py) against the fake brokers: positions and
working orders read through the adapters, the store's PnL and last error, a broker that cannot be reached
(or has no credentials) shown as such, and the command's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from brokers import CredentialsError, OrderRequest, TradierAdapter
from brokers.deployments import Deployment, DeploymentStore, Expected, Mode, Status
from brokers.paper import account_id_of
from brokers.status import deployment_statuses


def _deploy(store: DeploymentStore, root: Path, broker: str, account_id: str, study: str) -> Deployment:
    dep = store.create(
        study=study,
        trial_number=0,
        spec={"name": f"{study}_spec"},
        params={},
        broker=broker,
        account_id=account_id,
        mode=Mode.PAPER,
        market="24/7",
        risk_limits=None,
        provenance={},
        expected=Expected(daily_mean=0.001, daily_std=0.01, drawdown_p95=0.05),
        folder_root=root / "deployments",
    )
    store.mark_running(dep.id, pid=999_999_999)  # no such process: only the record matters here
    return store.get(dep.id)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = DeploymentStore(f"sqlite:///{tmp_path / 'deployments.db'}")
    yield store
    store.close()


def test_active_deployments_show_the_brokers_positions_orders_and_the_last_error(
    tradier: Any, tradelocker: Any, store: DeploymentStore, tmp_path: Path
) -> None:
    tradier.adapter.place_order(OrderRequest.single("SPY", "buy", 3, intent="status-buy"))
    tradier.adapter.place_order(
        OrderRequest.single("SPY", "sell", 3, order_type="limit", limit_price=700.0, time_in_force="gtc")
    )
    tradelocker.adapter.place_order(OrderRequest.single("EURUSD", "sell", 20_000, asset_class="forex"))
    stocks = _deploy(store, tmp_path, "tradier", tradier.fake.account_id, "stocks")
    _deploy(store, tmp_path, "tradelocker", account_id_of(tradelocker.adapter), "fx")
    store.set_starting_equity(stocks.id, 100_000.0)
    store.record_snapshot(
        stocks.id,
        kind="periodic",
        equity=100_250.0,
        cash=None,
        open_pnl=None,
        closed_pnl_today=None,
        positions=[],
    )
    store.record_event(stocks.id, "restart", "runner exited with code 1; restart 1/3 in 10s")
    store.record_event(stocks.id, "reconciled", "positions at the broker: SPY +3")  # not an error
    done = _deploy(store, tmp_path, "tradier", tradier.fake.account_id, "done")
    store.record_snapshot(
        done.id,
        kind="final",
        equity=99_000.0,
        cash=None,
        open_pnl=None,
        closed_pnl_today=None,
        positions=[{"symbol": "AAPL", "quantity": 5.0}],
    )
    store.finish(done.id, Status.STOPPED, "stopped by hand")

    adapters = {"tradier": tradier.make_adapter, "tradelocker": tradelocker.make_adapter}
    rows = {
        r.deployment.study: r
        for r in deployment_statuses(
            store, store.list_deployments(), adapters=lambda broker, mode: adapters[broker]()
        )
    }
    assert rows["stocks"].position_text == "SPY +3"
    assert rows["stocks"].orders_text == "sell 3 SPY limit 700"
    assert rows["stocks"].stats.pnl == pytest.approx(250.0)
    assert rows["stocks"].last_error_text.endswith("restart: runner exited with code 1; restart 1/3 in 10s")
    assert rows["fx"].position_text == "EURUSD -20,000" and rows["fx"].orders_text == "none"
    assert rows["fx"].last_error_text == "-"
    # a finished deployment is not looked up at the broker: its last snapshot's positions
    assert rows["done"].broker is None and rows["done"].position_text == "AAPL +5 (last snapshot)"
    assert (
        rows["done"].last_error_text.endswith("stopped: stopped by hand") is False
    )  # a stop is not an error


def test_a_broker_that_cannot_be_reached_or_has_no_credentials_is_shown_not_raised(
    tradier: Any, store: DeploymentStore, tmp_path: Path
) -> None:
    dep = _deploy(store, tmp_path, "tradier", tradier.fake.account_id, "stocks")
    tradier.fake.stop()  # the API is down
    down = lambda broker, mode: tradier.make_adapter(retry_count=0)  # noqa: E731
    (row,) = deployment_statuses(store, [dep], adapters=down)
    assert row.broker is not None and not row.broker.reachable
    assert row.orders_text.startswith("tradier unreachable:") and row.position_text == "-"

    def no_credentials(broker: str, mode: Mode) -> TradierAdapter:
        raise CredentialsError("TRADIER_API_KEY is not set")

    (row,) = deployment_statuses(store, [dep], adapters=no_credentials)
    assert row.orders_text == "tradier credentials: TRADIER_API_KEY is not set"
    (row,) = deployment_statuses(store, [dep], adapters=None)  # --no-broker
    assert row.broker is None and row.orders_text == "-"


def test_credentials_for_another_account_are_not_read_as_the_deployments(
    tradier: Any, store: DeploymentStore, tmp_path: Path
) -> None:
    dep = _deploy(store, tmp_path, "tradier", "VA99999999", "stocks")  # deployed on another account
    (row,) = deployment_statuses(store, [dep], adapters=lambda broker, mode: tradier.make_adapter())
    assert row.broker is not None and not row.broker.reachable
    assert row.orders_text == "the tradier credentials now point at another account than …9999"


def test_the_deployments_command_lists_the_broker_view(
    tradier: Any, store: DeploymentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search.cli import main as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADIER_API_KEY", tradier.fake.token)
    monkeypatch.setenv("TRADIER_ACCOUNT_ID", tradier.fake.account_id)
    monkeypatch.setenv("TRADIER_BASE_URL", tradier.fake.base_url)
    tradier.adapter.place_order(OrderRequest.single("SPY", "buy", 4, intent="cli-buy"))
    dep = _deploy(store, tmp_path, "tradier", tradier.fake.account_id, "stocks")
    store.record_event(dep.id, "risk_breach", "daily_loss_limit: lost 2,100.00 today")
    args = ["deployments", "--db", store.url, "--studies-root", str(tmp_path)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0
    assert "SPY +4" in result.output and "…5678" in result.output and "risk_breach" in result.output
    assert tradier.fake.token not in result.output
    tradier.fake.stop()
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0 and "unreachable" in result.output and "Traceback" not in result.output
