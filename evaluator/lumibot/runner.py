"""Running one backtest: Lumibot's data source, broker, strategy and ``Trader`` built here (not by
``run_backtest``, which reads the environment and writes logs), in the run's own folder, in this process
on the main thread or in a child process off it (:mod:`evaluator.lumibot`, "Isolation")."""

from __future__ import annotations

import contextlib
import datetime as dt
import pickle
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluator import _kernel as K
from evaluator.lumibot._lumibot import USD, Data, PandasDataBacktesting, Trader, TradingFee
from evaluator.lumibot.broker import SpecBroker
from evaluator.lumibot.data import underlying_frame
from evaluator.lumibot.env import lumibot_environment
from evaluator.lumibot.plan import NS_PER_MIN, Plan, build_plan
from evaluator.lumibot.strategy import SpecStrategy
from evaluator.market import NY, Market
from evaluator.results import BacktestResult, build_result, trades_frame
from spec_space.instruments import FUTURES
from spec_space.models import StrategySpec

_CHILD_INPUT, _CHILD_OUTPUT = "lumibot_job.pkl", "lumibot_result.pkl"


def _fees(plan: Plan) -> tuple[list[Any], float]:
    """Lumibot TradingFee objects for the spec's commissions, and the fee per Lumibot quantity unit."""
    spec = plan.spec
    costs = spec.costs
    inst = spec.instrument
    if inst.type == "stock":
        per_unit, price_factor = costs.commission_per_share, 1.0
    elif inst.type == "option":
        per_unit, price_factor = costs.commission_per_contract, K.OPTION_MULT
    elif inst.type == "future":
        per_unit, price_factor = costs.commission_per_contract, FUTURES[inst.symbol].multiplier
    else:
        per_unit, price_factor = costs.commission_per_lot / plan.mult, 1.0
    pct = 0.0 if plan.own_pct else costs.commission_pct * price_factor
    if per_unit == 0.0 and pct == 0.0:
        return [], 0.0
    return [TradingFee(per_contract_fee=per_unit, percent_fee=pct, maker=True, taker=True)], per_unit


def _run_here(
    spec: StrategySpec, market: Market, start: dt.date, end: dt.date, run_dir: Path
) -> BacktestResult:
    plan = build_plan(spec, market, start, end)
    bars = market.bars
    frame = underlying_frame(plan)
    first = pd.Timestamp(int(bars.ts[plan.i0]), tz="UTC").tz_convert(NY)
    last = pd.Timestamp(int(bars.ts[plan.i1]) + 2 * NS_PER_MIN, tz="UTC").tz_convert(NY)
    t_start = dt.datetime.combine(first.date(), dt.time(0, 0))
    # the session clock stops at the last sentinel's day end; the continuous one at the last sentinel
    t_end = last.tz_localize(None).to_pydatetime() if plan.continuous else dt.datetime.combine(last.date(), dt.time(23, 59))
    with lumibot_environment(run_dir):
        data = Data(plan.underlying, frame, timestep="minute", quote=USD)
        source = PandasDataBacktesting(
            datetime_start=t_start,
            datetime_end=t_end,
            pandas_data=[data],
            auto_adjust=False,
            show_progress_bar=False,
        )
        broker = SpecBroker(source)
        fees, per_unit_fee = _fees(plan)
        strategy = SpecStrategy(
            broker,
            minutes_before_closing=0,
            minutes_before_opening=0,
            sleeptime="1M",
            risk_free_rate=0.0,
            benchmark_asset=None,
            analyze_backtest=False,
            backtesting_start=t_start,
            backtesting_end=t_end,
            pandas_data=[data],
            name=f"spec_{spec.name}",
            budget=spec.initial_cash,
            buy_trading_fees=fees,
            sell_trading_fees=fees,
            save_logfile=False,
            should_backup_variables_to_database=False,
            should_send_summary_to_discord=False,
        )
        strategy.configure(plan, per_unit_fee)
        trader = Trader(backtest=True, quiet_logs=True)
        trader.add_strategy(strategy)
        try:
            trader.run_all(show_plot=False, show_tearsheet=False, save_tearsheet=False, show_indicators=False)
            strategy._check_unfilled()
            strategy._record_pending_mark()
        finally:
            # Lumibot leaves its broker stream and a data thread pool running after a backtest
            broker.cleanup_streams()
            source.shutdown()
    if strategy.failures:
        raise RuntimeError(
            f"the lumibot run of {spec.name!r} broke the fill model: " + "; ".join(strategy.failures[:5])
        )
    return _result(plan, strategy)


def _result(plan: Plan, strategy: SpecStrategy) -> BacktestResult:
    spec, market = plan.spec, plan.market
    rows = strategy.trades

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.array([r[name] for r in rows], dtype=dtype)

    trades = trades_frame(
        spec,
        market,
        entry_bar=column("entry_bar", np.int64),
        exit_bar=column("exit_bar", np.int64),
        direction=column("direction", np.int64),
        quantity=column("quantity", np.float64),
        entry_v=column("entry_v", np.float64),
        exit_v=column("exit_v", np.float64),
        pnl=column("pnl", np.float64),
        commission=column("commission", np.float64),
        reason=column("reason", np.int64),
        instrument=[r["instrument"] for r in rows],
        stale=column("stale", np.bool_),
        unit_mult=plan.mult,
    )
    return build_result(
        spec, market, trades, strategy.equity, plan.i0, plan.i1, strategy.exposure_bars, engine="lumibot"
    )


def _child_main(folder: str) -> None:
    """Entry point of the child process that runs a backtest for a caller off the main thread."""
    base = Path(folder)
    job = pickle.loads((base / _CHILD_INPUT).read_bytes())
    try:
        spec = StrategySpec.model_validate_json(job["spec"])
        outcome: Any = _run_here(spec, job["market"], job["start"], job["end"], base)
    except Exception as exc:  # handed to the parent, which raises it there
        outcome = exc
    (base / _CHILD_OUTPUT).write_bytes(pickle.dumps(outcome))


def _run_in_child(
    spec: StrategySpec, market: Market, start: dt.date, end: dt.date, run_dir: Path
) -> BacktestResult:
    """Run in a fresh interpreter: Lumibot's environment and working directory are process-wide, so a
    run started off the main thread (a thread pool, a threaded actor) must not change them under
    its neighbours."""
    job = {"spec": spec.model_dump_json(), "market": market, "start": start, "end": end}
    (run_dir / _CHILD_INPUT).write_bytes(pickle.dumps(job))
    code = "import sys; from evaluator.lumibot.runner import _child_main; _child_main(sys.argv[1])"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(run_dir)],
            cwd=run_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        output = run_dir / _CHILD_OUTPUT
        if done.returncode != 0 or not output.exists():
            raise RuntimeError(
                f"the lumibot child process for {spec.name!r} failed (exit code {done.returncode}):\n"
                f"{done.stderr[-2000:]}"
            )
        outcome = pickle.loads(output.read_bytes())
    finally:
        for name in (_CHILD_INPUT, _CHILD_OUTPUT):
            (run_dir / name).unlink(missing_ok=True)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def run(
    spec: StrategySpec,
    market: Market,
    start: dt.date,
    end: dt.date,
    *,
    run_dir: Path | None = None,
) -> BacktestResult:
    """Backtest ``spec`` with Lumibot on the sessions of ``market`` between ``start`` and ``end`` inclusive.

    Lumibot runs in ``run_dir`` (default: a temporary folder, removed afterwards), so nothing is written
    to the caller's working directory, and nothing is fetched from the network. Off the main thread the
    backtest runs in a child process (see the module docstring). Raises ``NotImplementedError`` for
    specs the engine cannot run (see :func:`build_plan`) and ``RuntimeError`` if Lumibot's fills
    broke the fill model (an order that should have filled did not).
    """
    with contextlib.ExitStack() as stack:
        if run_dir is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lumibot_run_")))
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        if threading.current_thread() is threading.main_thread():
            return _run_here(spec, market, start, end, run_dir)
        return _run_in_child(spec, market, start, end, run_dir)
    raise AssertionError("unreachable")  # pragma: no cover
