"""Promotion to paper trading end to end: a tiny Optuna study with gate/confirm verdicts, the deployments
database, real paper-trader processes (supervisor + Lumibot runner) trading against the fake Tradier
and TradeLocker servers on 127.0.0.1, the kill switch, risk limits and live approval."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
import pytest
from click.testing import CliRunner

from brokers.deployments import (
    Deployment,
    DeploymentStore,
    Expected,
    Mode,
    Snapshot,
    Status,
    check_expectation,
    paper_stats,
)
from brokers.paper import PaperSettings, kill_switch, process_alive, reconcile_processes
from evaluator.trial import TrialOutcome
from evaluator.wfo import FoldRecord
from search.cli import main as cli
from search.promote import (
    PromoteError,
    PromoteOptions,
    find_candidates,
    make_scheduler,
    promote_candidates,
    promotion_cycle,
)
from search.records import write_record

pytestmark = pytest.mark.slow

STOCK_SPACE = """\
name: live_tiny
data: {start: 2024-01-02, end: 2024-03-29}
walk_forward: {scheme: rolling, train_days: 20, test_days: 10, embargo_days: 0, folds: 2}
objectives:
  - {metric: sharpe, direction: maximize}
params:
  qty: {int: [1, 9], default: 3}
spec:
  name: always_long_spy
  instrument: {type: stock, symbol: SPY}
  timeframe: 1min
  direction: long
  entry: {long: "close > 0"}
  sizing: {mode: fixed, quantity: $qty}
"""

# the same candidate with a stop and a target: its deployment holds them at Tradier as one OCO order
BRACKET_SPACE = STOCK_SPACE.replace("name: live_tiny\n", "name: live_tiny_bracket\n").replace(
    '  entry: {long: "close > 0"}\n',
    '  entry: {long: "close > 0"}\n  exits: {stop_loss: {pct: 0.01}, take_profit: {pct: 0.01}}\n',
)

FX_SPACE = """\
name: live_tiny_fx
data: {start: 2024-01-02, end: 2024-03-29}
walk_forward: {scheme: rolling, train_days: 20, test_days: 10, embargo_days: 0, folds: 2}
objectives:
  - {metric: sharpe, direction: maximize}
params:
  lots: {float: [0.01, 1.0], default: 0.1}
spec:
  name: always_long_eurusd
  instrument: {type: forex, symbol: EURUSD}
  timeframe: 1min
  direction: long
  entry: {long: "close > 0"}
  sizing: {mode: fixed, quantity: $lots}
"""

FX_BRACKET_SPACE = FX_SPACE.replace("name: live_tiny_fx\n", "name: live_tiny_fx_bracket\n").replace(
    '  entry: {long: "close > 0"}\n',
    '  entry: {long: "close > 0"}\n  exits: {stop_loss: {pips: 20}, take_profit: {pips: 20}}\n',
)

# Fast settings for the processes the tests start: Lumibot polls twice a second, iterates every 2 s.
SETTINGS = PaperSettings(
    polling_interval=0.5,
    monitor_seconds=0.5,
    sleeptime="2S",
    restart_backoff=0.5,
    stop_timeout=10.0,
    flatten_timeout=5.0,
)


@dataclass
class Farm:
    root: Path
    storage: str
    store: DeploymentStore
    tradier: Any
    tradelocker: Any
    secrets: tuple[str, ...]
    lines: list[str]

    def options(self, study: str = "stocks", **overrides: Any) -> PromoteOptions:
        base: dict[str, Any] = {
            "study": study,
            "storage": self.storage,
            "db": self.store.url,
            "studies_root": self.root,
            "market": "24/7",  # trade whatever the wall clock says
            "settings": SETTINGS,
        }
        base.update(overrides)
        return PromoteOptions(**base)

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(
            cli, [*args, "--db", self.store.url, "--studies-root", str(self.root)], catch_exceptions=False
        )


def _daily(seed: int) -> tuple[np.ndarray, np.ndarray]:
    dates = np.arange(np.datetime64("2024-01-02"), np.datetime64("2024-03-29"), dtype="datetime64[D]")
    dates = dates[np.is_busday(dates)]
    return dates, np.random.default_rng(seed).normal(0.0004, 0.006, len(dates))


def _holdout_daily() -> pl.DataFrame:
    """``search gate``'s daily.csv of candidate 1: validation rows, then the holdout it predicts from."""
    dates, returns = _daily(99)
    return pl.DataFrame(
        {
            "fold": [0] * 5 + [-1] * 20,
            "window": ["validation"] * 5 + ["holdout"] * 20,
            "date": dates[:25],
            "return": np.concatenate([np.full(5, 0.05), returns[:20]]),
        }
    )


def _outcome(params: dict[str, Any], seed: int) -> TrialOutcome:
    dates, returns = _daily(seed)
    half = len(dates) // 2
    folds = [
        FoldRecord(k, {"sharpe": 1.0}, {"sharpe": 1.0}, dates[:10], returns[:10], dates[s:e], returns[s:e])
        for k, s, e in ((0, 0, half), (1, half, len(dates)))
    ]
    return TrialOutcome(params, folds, [1.0], [], {"sharpe": 1.0}, {"sharpe": 1.0}, {"sharpe": 2}, "fast")


def _make_study(
    storage: str,
    name: str,
    space: str,
    records: Path,
    gates: Path,
    param: str,
    values: list[Any],
    dd_p95: float,
) -> None:
    """Trials 0..n-1 with ``param`` = values[i]; trial 0 passed the gates, the confirmation and the
    reproduction, trial 1 passed the gates (and the reproduction) only, trial 2 was rejected by the gates
    (``search gate``'s study attribute form)."""
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    dist = (
        optuna.distributions.IntDistribution(1, 9)
        if param == "qty"
        else optuna.distributions.FloatDistribution(0.01, 1.0)
    )
    for number, value in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(params={param: value}, distributions={param: dist}, value=2.0 - number)
        )
        write_record(records, number, _outcome({param: value}, number))
    study.set_user_attr("space_text", space)
    study.set_user_attr("records_dir", str(records))
    candidate = gates / "candidate_1"
    candidate.mkdir(parents=True)
    (candidate / "metrics.json").write_text(json.dumps({"gate_values": {"max_drawdown_p95": dd_p95}}))
    _holdout_daily().write_csv(candidate / "daily.csv")
    study.set_user_attr(
        "gate",
        {
            "folder": str(gates),
            "candidates": [
                {"rank": 1, "trial": 0, "passed": True, "summary": "passed all gates"},
                {"rank": 2, "trial": 1, "passed": True, "summary": "passed all gates"},
                {
                    "rank": 3,
                    "trial": 2,
                    "passed": False,
                    "summary": "rejected at overfitting: dsr 0.41 < 0.95 required",
                },
            ],
        },
    )
    study.set_user_attr(
        "confirm",
        {
            "candidates": [
                {"trial": 0, "passed": True, "summary": "lumibot matches the fast engine"},
                {"trial": 1, "passed": False, "summary": "lumibot trades differ: 3 of 40"},
            ]
        },
    )
    study.set_user_attr(  # the form `search reproduce` writes; promote needs it passed too
        "reproduce",
        {
            "candidates": [
                {"trial": 0, "passed": True, "summary": "reproduced: 4 windows match the records exactly"},
                {"trial": 1, "passed": True, "summary": "reproduced: 4 windows match the records exactly"},
            ]
        },
    )


@pytest.fixture
def farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tradier: Any, tradelocker: Any) -> Iterator[Farm]:
    monkeypatch.chdir(tmp_path)  # no stray .env; nothing may be written here
    monkeypatch.setenv("TRADIER_API_KEY", tradier.fake.token)
    monkeypatch.setenv("TRADIER_ACCOUNT_ID", tradier.fake.account_id)
    monkeypatch.setenv("TRADIER_BASE_URL", tradier.fake.base_url)
    monkeypatch.setenv("TRADELOCKER_USERNAME", tradelocker.fake.username)
    monkeypatch.setenv("TRADELOCKER_PASSWORD", tradelocker.fake.password)
    monkeypatch.setenv("TRADELOCKER_SERVER", tradelocker.fake.server_name)
    monkeypatch.setenv("TRADELOCKER_ENV", tradelocker.fake.root_url)
    for name in ("FARM_DEPLOYMENTS_DB", "TRADELOCKER_ACC_NUM", "MARKET"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "studies"
    storage = f"sqlite:///{root / 'farm.db'}"
    root.mkdir()
    _make_study(
        storage, "stocks", STOCK_SPACE, root / "stocks", root / "stocks" / "gates", "qty", [3, 4, 5], 0.0005
    )
    _make_study(storage, "fx", FX_SPACE, root / "fx", root / "fx" / "gates", "lots", [0.1, 0.2, 0.3], 0.05)
    store = DeploymentStore(f"sqlite:///{root / 'deployments.db'}")
    farm = Farm(
        root, storage, store, tradier, tradelocker, (tradier.fake.token, tradelocker.fake.password), []
    )
    try:
        yield farm
    finally:
        kill_switch(store, reason="test teardown")
        for dep in store.list_deployments():  # nothing the tests started may outlive them
            for pid in (dep.pid, dep.runner_pid):
                if process_alive(pid, dep.id):
                    os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
        store.close()


def _wait(predicate: Callable[[], Any], timeout: float = 120.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it holds; the deadline is generous (processes start slowly on a loaded
    machine) and only a failing test ever waits for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout:g}s")


def _positions(fake: Any) -> dict[str, float]:
    if hasattr(fake, "books"):
        return {
            fake.instruments[p["tradableInstrumentId"]].name: p["qty"]
            for p in fake.books[1].positions.values()
        }
    return {symbol: p["quantity"] for symbol, p in fake.positions.items()}


def _working_ocos(fake: Any) -> list[dict[str, Any]]:
    with fake.lock:
        return [
            o
            for o in fake.orders.values()
            if o["class"] == "oco" and any(leg["status"] == "open" for leg in o["leg"])
        ]


def _assert_no_secrets(farm: Farm) -> None:
    files = [p for p in farm.root.rglob("*") if p.is_file()]
    assert any(p.name == "deployments.db" for p in files)
    assert any(p.name == "lumibot.log" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in farm.secrets:
            assert secret.encode() not in data, f"a credential leaked into {path}"


# ----------------------------------------------------------------------------------------- no processes


def test_candidates_need_both_verdicts_and_carry_the_backtest_range(farm: Farm) -> None:
    study = optuna.load_study(study_name="stocks", storage=farm.storage)
    candidates, rejected = find_candidates(study, top=5, studies_root=farm.root)
    assert [c.trial for c in candidates] == [0]
    assert {r.trial: r.reason.split(":")[0] for r in rejected} == {1: "confirm", 2: "gate"}
    cand = candidates[0]
    assert cand.spec.sizing.quantity == 3 and cand.spec.instrument.symbol == "SPY"
    exp = cand.expected
    assert exp.drawdown_p95 == pytest.approx(0.0005)
    # the prediction is the holdout's (out-of-sample); the validation rows' 5 % days are left out
    returns = _holdout_daily().filter(pl.col("window") == "holdout").get_column("return").to_numpy()
    assert exp.days == len(returns) == 20
    assert "daily.csv" in exp.sources["daily"]
    assert exp.daily_mean == pytest.approx(returns.mean()) and exp.daily_std == pytest.approx(
        returns.std(ddof=1)
    )
    assert "metrics.json" in exp.sources["drawdown_p95"]


def test_dry_run_prints_the_plan_and_records_nothing(farm: Farm) -> None:
    result = farm.cli(
        "promote", "--study", "stocks", "--storage", farm.storage, "--dry-run", "--market", "24/7"
    )
    assert result.exit_code == 0, result.output
    assert "would deploy stocks trial 0" in result.output and "on tradier as paper" in result.output
    # this study records no data store: the dry run says why it shows no orders instead of failing
    assert "first orders: the study records no usable data store" in result.output, result.output
    assert "trial 1: confirm: lumibot trades differ" in result.output
    assert farm.store.list_deployments() == []
    assert farm.tradier.fake.order_count() == 0


def test_paper_results_against_the_backtest_range() -> None:
    start = dt.datetime(2026, 11, 2, 15, tzinfo=dt.UTC)

    def snaps(equities: list[float]) -> list[Snapshot]:
        return [
            Snapshot("d", start + dt.timedelta(days=i), "periodic", e, None, None, None, [])
            for i, e in enumerate(equities)
        ]

    expected = Expected(daily_mean=0.001, daily_std=0.005, days=120, drawdown_p95=0.05)
    steady = paper_stats(100_000, snaps([100_100, 100_200, 100_250, 100_300, 100_420, 100_500]))
    assert steady.days == 6 and not check_expectation(expected, steady).outside
    losing = paper_stats(100_000, snaps([99_000, 98_100, 97_300, 96_400, 95_500, 96_000]))
    check = check_expectation(expected, losing)
    assert check.outside and "paper max drawdown 4.50% exceeds" not in check.reason
    assert "below the backtest's range" in check.reason
    crash = paper_stats(100_000, snaps([100_000, 93_000]))
    assert check_expectation(expected, crash).reason.startswith("paper max drawdown 7.00% exceeds")
    assert not check_expectation(expected, paper_stats(100_000, snaps([99_000]))).outside  # too few days


def test_invalid_credentials_are_refused_with_the_secret_masked(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sbx-WRONG-key-0123456789abcdef"
    monkeypatch.setenv("TRADIER_API_KEY", wrong)
    result = promote_candidates(farm.options(), farm.store, echo=farm.lines.append)
    (error,) = result.errors
    assert "tradier refused the credentials" in error and "TRADIER_API_KEY" in error
    assert wrong not in error and "sbx-…(masked)" in error
    monkeypatch.setenv("TRADELOCKER_PASSWORD", "not-the-Password-123")
    result = promote_candidates(farm.options("fx"), farm.store, echo=farm.lines.append)
    (error,) = result.errors
    assert "TRADELOCKER_PASSWORD" in error and "not-the-Password-123" not in error
    assert farm.store.list_deployments() == []
    monkeypatch.delenv("TRADIER_ACCOUNT_ID")
    cli_result = farm.cli("promote", "--study", "stocks", "--storage", farm.storage)
    assert cli_result.exit_code == 2  # a setup error: nothing could start
    assert "TRADIER_ACCOUNT_ID is not set" in cli_result.output


def test_commands_explain_bad_input(farm: Farm) -> None:
    missing = farm.cli("stop", "no-such-id")
    assert missing.exit_code == 2 and "no deployment 'no-such-id'" in missing.output
    both = farm.cli("stop", "x", "--all")
    assert both.exit_code == 2 and "not both" in both.output
    unknown = farm.cli("approve", "no-such-id", "--by", "me", "--reason", "because")
    assert unknown.exit_code == 2 and "search deployments" in unknown.output


def test_a_deployment_whose_process_died_is_marked_failed(farm: Farm) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    dep = farm.store.create(
        study="stocks",
        trial_number=0,
        spec={"name": "x"},
        params={},
        broker="tradier",
        account_id="VA1",
        mode=Mode.PAPER,
        market="NYSE",
        risk_limits=None,
        provenance={},
        expected=Expected(),
        folder_root=farm.root / "deployments",
    )
    farm.store.mark_running(dep.id, pid=dead.pid)
    assert reconcile_processes(farm.store) == [dep.id]
    final = farm.store.get(dep.id)
    assert final.status is Status.FAILED and f"supervisor process {dead.pid} is gone" in (
        final.stop_reason or ""
    )


def test_live_is_never_scheduled(farm: Farm) -> None:
    with pytest.raises(PromoteError, match="never automatic"):
        make_scheduler(farm.options(live=True), farm.store, "*/5 * * * *", blocking=False)
    with pytest.raises(PromoteError, match="not a crontab expression"):
        make_scheduler(farm.options(), farm.store, "every five minutes", blocking=False)


# ----------------------------------------------------------------------------------------- processes


def test_scheduled_promotion_trades_on_paper_and_retires_outside_the_range(farm: Farm) -> None:
    fake = farm.tradier.fake
    scheduler = make_scheduler(
        farm.options(), farm.store, "0 14 * * mon-fri", blocking=False, echo=farm.lines.append
    )
    scheduler.start()  # the job runs at once, then on the cron schedule
    try:
        dep: Deployment = _wait(
            lambda: next((d for d in farm.store.list_deployments() if d.pid), None),
            what="a started deployment",
        )
    finally:
        scheduler.shutdown(wait=True)
    assert dep.mode is Mode.PAPER and dep.broker == "tradier" and dep.account_masked == "…5678"
    assert dep.study == "stocks" and dep.trial_number == 0 and dep.params == {"qty": 3}
    assert dep.risk_limits is not None and dep.risk_limits.daily_loss_limit == 2000.0
    assert dep.expected.drawdown_p95 == pytest.approx(0.0005)
    assert dep.provenance["gate"] == "passed all gates" and dep.provenance["code"]["packages"]["lumibot"]
    assert Path(dep.folder).parent == farm.root / "deployments"
    _wait(lambda: _positions(fake).get("SPY") == 3, what="the paper trader's buy")
    assert fake.order_count() == 1
    assert fake.requests_to("POST", r"/orders$")[-1].form()["side"] == "buy"

    # the next scheduled run keeps it (inside the predicted range) and promotes nothing twice
    report = promotion_cycle(farm.options(scheduled=True), farm.store, echo=farm.lines.append)
    assert report.retired == [] and report.promoted.started == []
    assert any("already running" in line for line in report.promoted.skipped)

    # the market drops: the paper drawdown leaves the backtest's p95 (0.05 %) and the next run retires it
    fake.equity_quotes["SPY"] = (570.00, 570.02, 570.01)
    _wait(
        lambda: (
            paper_stats(dep.starting_equity or 100_000, farm.store.snapshots(dep.id)).max_drawdown > 0.0005
        ),
        what="a snapshot",
    )
    report = promotion_cycle(farm.options(scheduled=True), farm.store, echo=farm.lines.append)
    (retired,) = report.retired
    final = farm.store.get(dep.id)
    assert final.status is Status.RETIRED
    assert "paper max drawdown" in (final.stop_reason or "") and "flattened: SPY +3" in (
        final.stop_reason or ""
    )
    assert _positions(fake) == {}
    assert not process_alive(dep.pid, dep.id)
    again = promotion_cycle(farm.options(scheduled=True), farm.store, echo=farm.lines.append)
    assert again.promoted.started == [] and any("retired as" in s for s in again.promoted.skipped)
    listing = farm.cli("deployments")
    assert listing.exit_code == 0 and dep.id in listing.output and "retired" in listing.output
    assert "outside" in listing.output  # paper results against the backtest range
    assert sorted(p.name for p in farm.root.parent.iterdir()) == [
        "studies"
    ]  # nothing in the working directory
    _assert_no_secrets(farm)


def test_restarted_deployment_reconciles_positions_and_kill_switch_flattens(farm: Farm) -> None:
    fake = farm.tradelocker.fake
    result = promote_candidates(farm.options("fx"), farm.store, echo=farm.lines.append)
    (dep_id,) = result.started
    _wait(lambda: _positions(fake).get("EURUSD") == pytest.approx(0.1), what="the forex buy")
    dep = farm.store.get(dep_id)
    assert dep.broker == "tradelocker" and dep.account_masked == "…23:1"

    os.kill(dep.runner_pid, signal.SIGKILL)  # type: ignore[arg-type]  # a crash: the supervisor restarts it
    _wait(lambda: farm.store.get(dep_id).restarts == 1, what="a restart")
    reconciled = _wait(
        lambda: [e for e in farm.store.events(dep_id) if e.kind == "reconciled"][1:],
        what="the second reconcile",
    )
    assert "EURUSD +10,000" in reconciled[0].message
    snap = [s for s in farm.store.snapshots(dep_id) if s.kind == "reconcile"][-1]
    assert [(p["symbol"], p["quantity"]) for p in snap.positions] == [("EURUSD", 10_000.0)]
    new_runner = _wait(lambda: (d := farm.store.get(dep_id)).runner_pid != dep.runner_pid and d.runner_pid)
    log = Path(dep.folder) / "runner.log"
    # two iterations of the restarted strategy: it holds the reconciled position and does not buy again
    _wait(
        lambda: log.read_text().split("trading always_long_eurusd")[-1].count("Trading iteration ended") >= 2
    )
    assert fake.order_count() == 1 and process_alive(new_runner, dep_id)

    result = farm.cli("stop", "--all", "--reason", "end of test")
    assert result.exit_code == 0, result.output
    assert "stopped: end of test; flattened: EURUSD +10,000" in result.output
    assert _positions(fake) == {}
    assert farm.store.get(dep_id).status is Status.STOPPED
    assert not process_alive(dep.pid, dep_id) and not process_alive(new_runner, dep_id)
    _assert_no_secrets(farm)


def test_a_killed_runner_holding_a_bracket_restarts_without_a_second_entry_or_bracket(farm: Farm) -> None:
    """``kill -9`` of the runner while it holds a position and its bracket at Tradier: the supervisor's new
    runner reconciles with the broker's positions and working orders, records what it found, keeps the
    bracket (the same OCO order) and enters nothing again."""
    fake = farm.tradier.fake
    root = farm.root
    _make_study(
        farm.storage,
        "bracket",
        BRACKET_SPACE,
        root / "bracket",
        root / "bracket" / "gates",
        "qty",
        [3, 4, 5],
        0.0005,
    )
    (dep_id,) = promote_candidates(farm.options("bracket"), farm.store, echo=farm.lines.append).started
    _wait(lambda: _positions(fake).get("SPY") == 3, what="the buy")
    (first,) = _wait(lambda: _working_ocos(fake), what="the bracket at the broker")
    assert sorted((leg["type"], leg.get("stop_price") or leg["price"]) for leg in first["leg"]) == [
        ("limit", 596.04),  # the fill at 590.13 + 1%, up to the cent
        ("stop", 584.22),  # - 1%, down
    ]
    dep = farm.store.get(dep_id)

    os.kill(dep.runner_pid, signal.SIGKILL)  # type: ignore[arg-type]  # a crash: the supervisor restarts it
    _wait(lambda: farm.store.get(dep_id).restarts == 1, what="a restart")
    reconciled = _wait(
        lambda: [e for e in farm.store.events(dep_id) if e.kind == "reconciled"][1:],
        what="the second reconcile",
    )
    assert "positions at the broker: SPY +3" in reconciled[0].message
    assert "working at the broker: exits of SPY sell 3 stop 584.22 target 596.04" in reconciled[0].message
    assert [e.kind for e in farm.store.events(dep_id)].count("restart") == 1
    new_runner = _wait(lambda: (d := farm.store.get(dep_id)).runner_pid != dep.runner_pid and d.runner_pid)
    log = Path(dep.folder) / "runner.log"
    restarted = lambda: log.read_text().split("trading always_long_spy")[-1]  # noqa: E731
    _wait(lambda: restarted().count("Trading iteration ended") >= 2, what="two iterations after the restart")
    assert "keeping the bracket held at the broker: stop 584.22, target 596.04" in restarted()
    assert fake.order_count() == 2  # the entry and its bracket: no second entry, no second bracket
    assert [o["id"] for o in _working_ocos(fake)] == [first["id"]] and _positions(fake) == {"SPY": 3}
    assert process_alive(new_runner, dep_id)

    result = farm.cli("stop", dep_id, "--reason", "end of test")
    assert result.exit_code == 0 and "flattened: SPY +3" in result.output, result.output
    assert _positions(fake) == {} and _working_ocos(fake) == []
    _assert_no_secrets(farm)


def test_a_killed_tradelocker_runner_keeps_the_stop_and_target_on_its_position(farm: Farm) -> None:
    """The same crash on TradeLocker: the position's own stop-loss and take-profit are kept (nothing is
    sent again) and the new runner records them."""
    fake = farm.tradelocker.fake
    root = farm.root
    _make_study(
        farm.storage,
        "fxb",
        FX_BRACKET_SPACE,
        root / "fxb",
        root / "fxb" / "gates",
        "lots",
        [0.1, 0.2, 0.3],
        0.05,
    )
    (dep_id,) = promote_candidates(farm.options("fxb"), farm.store, echo=farm.lines.append).started
    _wait(lambda: _positions(fake).get("EURUSD") == pytest.approx(0.1), what="the forex buy")
    patches = _wait(lambda: fake.requests_to("PATCH", r"/trade/positions/\d+$"), what="the position's exits")
    assert patches[0].json() == {"stopLoss": 1.083, "takeProfit": 1.087}  # 20 pips from the fill at 1.08500
    dep = farm.store.get(dep_id)

    os.kill(dep.runner_pid, signal.SIGKILL)  # type: ignore[arg-type]
    reconciled = _wait(
        lambda: [e for e in farm.store.events(dep_id) if e.kind == "reconciled"][1:],
        what="the second reconcile",
    )
    assert (
        "working at the broker: exits of EURUSD sell 10,000 stop 1.083 target 1.087" in reconciled[0].message
    )
    log = Path(dep.folder) / "runner.log"
    restarted = lambda: log.read_text().split("trading always_long_eurusd")[-1]  # noqa: E731
    _wait(lambda: restarted().count("Trading iteration ended") >= 2, what="two iterations after the restart")
    assert "keeping the bracket held at the broker: stop 1.083, target 1.087" in restarted()
    assert fake.order_count() == 1 and len(fake.requests_to("PATCH", r"/trade/positions/\d+$")) == 1
    fake.set_quote("EURUSD", 1.08705, 1.08715)  # the take-profit closes the position at the broker
    _wait(lambda: _positions(fake) == {}, what="the take-profit")
    result = farm.cli("stop", dep_id, "--reason", "end of test")
    assert result.exit_code == 0, result.output


def test_daily_loss_breach_stops_flattens_and_records_why(farm: Farm) -> None:
    fake = farm.tradier.fake
    (dep_id,) = promote_candidates(farm.options(daily_loss="50"), farm.store, echo=farm.lines.append).started
    pid = farm.store.get(dep_id).pid
    _wait(lambda: _positions(fake).get("SPY") == 3, what="the buy")
    fake.equity_quotes["SPY"] = (560.00, 560.02, 560.01)  # 3 shares lose ~90 today
    final = _wait(lambda: (d := farm.store.get(dep_id)).status is Status.STOPPED and d, what="the stop")
    assert final.stop_reason.startswith("risk limit breached (daily_loss_limit): daily loss 90")
    assert "exceeds limit 50.00" in final.stop_reason and "flattened: SPY +3" in final.stop_reason
    assert _positions(fake) == {}
    assert [e.kind for e in farm.store.events(dep_id)][-2:] == ["risk_breach", "stopped"]
    _wait(lambda: not process_alive(pid, dep_id), what="the processes to exit")


def test_max_position_breach_refuses_the_order_and_stops(farm: Farm) -> None:
    (dep_id,) = promote_candidates(farm.options(max_position=2), farm.store, echo=farm.lines.append).started
    final = _wait(lambda: (d := farm.store.get(dep_id)).status is Status.STOPPED and d, what="the stop")
    assert "position in SPY would be 3, exceeds limit 2 (now 0)" in (final.stop_reason or "")
    assert farm.tradier.fake.order_count() == 0  # refused before it reached the broker


def test_live_needs_an_approval_and_runs_with_one(farm: Farm) -> None:
    fake = farm.tradier.fake
    refused = promote_candidates(farm.options(live=True), farm.store, echo=farm.lines.append)
    assert refused.started == [] and "no approval recorded" in refused.errors[0]
    cli_refused = farm.cli(
        "promote", "--study", "stocks", "--storage", farm.storage, "--live", "--market", "24/7"
    )
    assert cli_refused.exit_code == 2 and "live trading refused" in cli_refused.output

    (paper_id,) = promote_candidates(farm.options(), farm.store, echo=farm.lines.append).started
    _wait(lambda: _positions(fake).get("SPY") == 3, what="the paper buy")
    approval = farm.cli(
        "approve", paper_id, "--by", "Jane Trader", "--reason", "30 paper days inside the range"
    )
    assert (
        approval.exit_code == 0
        and "approved stocks trial 0 for live trading by Jane Trader" in approval.output
    )
    (recorded,) = farm.store.approvals("stocks", 0)
    assert (recorded.approved_by, recorded.reason, recorded.deployment_id) == (
        "Jane Trader",
        "30 paper days inside the range",
        paper_id,
    )
    stopped = farm.cli("stop", paper_id)  # one deployment per account: the paper one makes room
    assert stopped.exit_code == 0 and "flattened: SPY +3" in stopped.output

    live = promote_candidates(farm.options(live=True), farm.store, echo=farm.lines.append)
    (live_id,) = live.started
    dep = farm.store.get(live_id)
    assert dep.mode is Mode.LIVE and dep.status is Status.RUNNING
    _wait(lambda: _positions(fake).get("SPY") == 3, what="the live buy (on the fake)")
    assert fake.order_count() == 3  # paper buy, paper flatten, live buy
