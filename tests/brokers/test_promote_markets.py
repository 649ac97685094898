"""Every market the trader named reaches paper trading through ``search promote``, end to end with real
paper-trader processes against the fake servers: futures on Tradier only with FARM_ENABLE_FUTURES=1 (the
front contract, ``class=future``), and the shipped forex_trend space's candidate on the TradeLocker demo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import optuna
import pytest

from brokers.deployments import Status
from brokers.futures import listed_contracts
from search.promote import promote_candidates
from spec_space.loader import load_space
from spec_space.space import DefaultSource
from tests.brokers import test_promotion
from tests.brokers.test_promotion import Farm, _holdout_daily, _make_study, _outcome, _positions, _wait

pytestmark = pytest.mark.slow
farm = test_promotion.farm  # the promotion tests' fixture: fake brokers, two studies, a deployments store

# the promotion tests' tiny always-long candidate, on the MES futures root
FUTURES_SPACE = (
    test_promotion.STOCK_SPACE.replace("name: live_tiny\n", "name: live_tiny_mes\n")
    .replace("name: always_long_spy", "name: always_long_mes")
    .replace("{type: stock, symbol: SPY}", "{type: future, symbol: MES}")
    .replace("default: 3}", "default: 2}")
)


def test_futures_need_the_flag_then_trade_the_front_contract_on_tradier(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = farm.tradier.fake
    root = farm.root
    _make_study(
        farm.storage, "mes", FUTURES_SPACE, root / "mes", root / "mes" / "gates", "qty", [2, 3, 4], 0.05
    )
    monkeypatch.delenv("FARM_ENABLE_FUTURES", raising=False)
    refused = promote_candidates(farm.options("mes"), farm.store, echo=farm.lines.append)
    assert refused.started == [] and farm.store.list_deployments(study="mes") == []
    assert any("set FARM_ENABLE_FUTURES=1" in line for line in refused.skipped), refused.skipped

    monkeypatch.setenv("FARM_ENABLE_FUTURES", "1")  # the runner processes inherit it
    front, after = listed_contracts("MES", dt.datetime.now(ZoneInfo("America/New_York")).date())
    fake.set_quote(front.tradier_symbol, 6000.00, 6000.25, 6000.25)
    fake.set_quote(after.tradier_symbol, 6050.00, 6050.25, 6050.25)
    fake.session_volumes.update({front.tradier_symbol: 900_000, after.tradier_symbol: 100_000})
    plan = promote_candidates(farm.options("mes", market=None, dry_run=True), farm.store)
    assert "always_long_mes, future MES) on tradier as paper, market us_futures" in plan.planned[0]
    result = promote_candidates(farm.options("mes"), farm.store, echo=farm.lines.append)
    (dep_id,) = result.started
    dep = farm.store.get(dep_id)
    assert (dep.broker, dep.spec["instrument"]["type"], dep.market) == ("tradier", "future", "24/7")
    _wait(lambda: _positions(fake).get(front.tradier_symbol) == 2, what="2 contracts of the front month")
    form = fake.requests_to("POST", r"/orders$")[0].form()
    assert (form["class"], form["symbol"], form["side"], form["quantity"]) == (
        "future",
        front.tradier_symbol,
        "buy",
        "2",
    )
    assert farm.store.get(dep_id).status is Status.RUNNING


def _default_study(farm: Farm, name: str, space_path: Path) -> dict[str, Any]:
    """A study of one trial at the space's default parameters that passed the gates, the confirmation and
    the reproduction (the study attributes ``search gate``/``confirm``/``reproduce`` write)."""
    space = load_space(space_path)
    values = space.suggest(DefaultSource(space))
    study = optuna.create_study(storage=farm.storage, study_name=name, direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params=values,
            distributions={k: optuna.distributions.CategoricalDistribution([v]) for k, v in values.items()},
            value=1.0,
        )
    )
    records = farm.root / name
    from search.records import write_record

    write_record(records, 0, _outcome(values, 0))
    gates = records / "gates"
    (gates / "candidate_1").mkdir(parents=True)
    (gates / "candidate_1" / "metrics.json").write_text('{"gate_values": {"max_drawdown_p95": 0.05}}')
    _holdout_daily().write_csv(gates / "candidate_1" / "daily.csv")
    study.set_user_attr("space_text", space_path.read_text())
    study.set_user_attr("records_dir", str(records))
    passed = {"trial": 0, "passed": True, "summary": "passed"}
    study.set_user_attr("gate", {"folder": str(gates), "candidates": [{"rank": 1, **passed}]})
    study.set_user_attr("confirm", {"candidates": [passed]})
    study.set_user_attr("reproduce", {"candidates": [passed]})
    return values


def test_the_forex_trend_candidate_runs_on_the_tradelocker_demo(farm: Farm) -> None:
    fake = farm.tradelocker.fake
    space_path = Path(__file__).parents[2] / "spec_space" / "forex_trend.yaml"
    _default_study(farm, "fxtrend", space_path)
    plan = promote_candidates(farm.options("fxtrend", market=None, dry_run=True), farm.store)
    assert "eurusd_ema_trend, forex EURUSD) on tradelocker as paper, market 24/5" in plan.planned[0]
    # the test trades whatever the wall clock says (the 24/5 calendar waits for Sunday 17:00 New York)
    result = promote_candidates(farm.options("fxtrend"), farm.store, echo=farm.lines.append)
    (dep_id,) = result.started
    dep = farm.store.get(dep_id)
    assert (dep.broker, dep.spec["name"]) == ("tradelocker", "eurusd_ema_trend")
    # the runner reconciled the account, Lumibot's strategy reads 15-minute bars from the broker, and the
    # monitor books snapshots, without a crash or a restart
    _wait(lambda: fake.history_requests > 0, what="the strategy's bars from TradeLocker")
    _wait(lambda: len(farm.store.snapshots(dep_id)) >= 3, what="periodic snapshots")
    kinds = [e.kind for e in farm.store.events(dep_id)]
    assert "reconciled" in kinds and "restart" not in kinds
    current = farm.store.get(dep_id)
    assert current.status is Status.RUNNING and current.restarts == 0
    runner_log = (Path(dep.folder) / "runner.log").read_text()
    assert "trading eurusd_ema_trend on tradelocker (paper, 24/7)" in runner_log
    assert "Traceback" not in runner_log
