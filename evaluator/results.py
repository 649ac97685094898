"""The result of one backtest, the same for both engines: trades, equity, daily returns, metrics."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from evaluator.fill_model import EXIT_REASONS, FILL_MODEL_VERSION
from evaluator.market import Market
from evaluator.metrics import compute_metrics, daily_returns
from spec_space.models import StrategySpec

#: The columns of the trades table (``trades.csv``) both engines write, in this order. One row per exit
#: fill (a partial take-profit is a row of its own); ``trade_id`` groups the rows of one position (entry
#: to final exit) and numbers positions from 0 in entry order; ``stale`` is true when a leg had no trade
#: within the staleness limit and the exit was booked at its last known price (fill model rule 8).
TRADE_COLUMNS: tuple[str, ...] = (
    "trade_id",
    "entry_time",
    "exit_time",
    "entry_bar",
    "exit_bar",
    "side",
    "instrument",
    "quantity",
    "entry_price",
    "exit_price",
    "pnl",
    "commission",
    "exit_reason",
    "stale",
)


@dataclass
class BacktestResult:
    engine: str
    start: dt.date
    end: dt.date
    trades: pl.DataFrame
    daily: pl.DataFrame  # date, equity, return
    metrics: dict[str, float]
    bar_equity: np.ndarray = field(repr=False)
    bar_ts: np.ndarray = field(repr=False)
    fill_model_version: str = FILL_MODEL_VERSION

    @property
    def daily_returns(self) -> np.ndarray:
        return self.daily.get_column("return").to_numpy()

    def write(self, folder: str | Path, spec: StrategySpec | None = None) -> Path:
        """Write trades.csv, daily.csv, metrics.json (and spec.json) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.trades.write_csv(folder / "trades.csv")
        self.daily.write_csv(folder / "daily.csv")
        meta: dict[str, Any] = {
            "engine": self.engine,
            "start": str(self.start),
            "end": str(self.end),
            "fill_model_version": self.fill_model_version,
            "metrics": self.metrics,
        }
        (folder / "metrics.json").write_text(json.dumps(meta, indent=2, default=float))
        if spec is not None:
            (folder / "spec.json").write_text(spec.model_dump_json(indent=2))
        return folder


def trades_frame(
    spec: StrategySpec,
    market: Market,
    *,
    entry_bar: np.ndarray,
    exit_bar: np.ndarray,
    direction: np.ndarray,
    quantity: np.ndarray,
    entry_v: np.ndarray,
    exit_v: np.ndarray,
    pnl: np.ndarray,
    commission: np.ndarray,
    reason: np.ndarray,
    instrument: list[str],
    stale: np.ndarray,
    unit_mult: float,
) -> pl.DataFrame:
    """The trades table of :data:`TRADE_COLUMNS` from one engine's exit records (one per exit fill).

    ``entry_v`` / ``exit_v`` are values of one position unit (price x signed multiplier, costs included),
    turned here into prices per share, contract share or instrument unit (``unit_mult``: the value of
    one unit of a stock, future or forex position per unit of its price; options use 100).
    """
    entry_bar = np.asarray(entry_bar, dtype=np.int64)
    exit_bar = np.asarray(exit_bar, dtype=np.int64)
    direction = np.asarray(direction, dtype=np.int64)
    # options: per share of premium; otherwise per instrument unit, and a short unit's value is minus its price
    price_div = (
        np.full(len(entry_bar), 100.0)
        if spec.instrument.type == "option"
        else unit_mult * direction.astype(np.float64)
    )
    # one entry per bar at most, so the entry bar names the position; ids in entry order
    _, trade_id = np.unique(entry_bar, return_inverse=True)
    ts = market.bars.ts
    return pl.DataFrame(
        {
            "trade_id": trade_id.astype(np.int64).ravel(),
            "entry_time": pl.Series(ts[entry_bar], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            "exit_time": pl.Series(ts[exit_bar], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
            "side": np.where(direction > 0, "long", "short") if len(direction) else np.array([], dtype=str),
            "instrument": instrument,
            "quantity": np.asarray(quantity, dtype=np.float64),
            "entry_price": np.asarray(entry_v, dtype=np.float64) / price_div,
            "exit_price": np.asarray(exit_v, dtype=np.float64) / price_div,
            "pnl": np.asarray(pnl, dtype=np.float64),
            "commission": np.asarray(commission, dtype=np.float64),
            "exit_reason": [EXIT_REASONS[int(r)] for r in reason],
            "stale": np.asarray(stale, dtype=np.bool_),
        },
        schema_overrides={"instrument": pl.Utf8, "side": pl.Utf8, "exit_reason": pl.Utf8},
    )


def position_pnls(trades: pl.DataFrame) -> np.ndarray:
    """Net PnL per position (all its exit rows summed, every cost included), in entry order.

    The trade statistics (``n_trades``, win rate, profit factor, average trade) count positions, not
    exit rows: a position that takes a partial profit and stops out on the rest is one trade, won or
    lost by its total. A ``fold`` column, when present (the gate's re-run of several windows, whose
    ``trade_id`` restarts at 0 in each), is part of the position's key.
    """
    if trades.height == 0:
        return np.empty(0, dtype=np.float64)
    if "trade_id" not in trades.columns:
        raise ValueError(
            f"the trades table has no trade_id column (columns: {trades.columns}); "
            "it was written before trades were grouped into positions: re-run the backtest"
        )
    # numpy rather than a polars group_by: this runs for every fold of every trial
    pnl = trades.get_column("pnl").to_numpy().astype(np.float64)
    ids = trades.get_column("trade_id").to_numpy()
    if "fold" in trades.columns:
        keys = np.column_stack([trades.get_column("fold").to_numpy(), ids])
        _, ids = np.unique(keys, axis=0, return_inverse=True)
    else:
        _, ids = np.unique(ids, return_inverse=True)  # ids of a filtered table may have gaps
    return np.bincount(ids.ravel(), weights=pnl)


def build_result(
    spec: StrategySpec,
    market: Market,
    trades: pl.DataFrame,
    equity: np.ndarray,
    i0: int,
    i1: int,
    exposure_bars: int,
    *,
    engine: str,
) -> BacktestResult:
    bars = market.bars
    day = bars.day[i0 : i1 + 1]
    last_of_day = np.ones(len(day), dtype=bool)
    last_of_day[:-1] = day[1:] != day[:-1]
    eq = equity[i0 : i1 + 1]
    daily_equity = eq[last_of_day]
    dates = [bars.session_dates[d] for d in day[last_of_day]]
    days = np.array(dates, dtype="datetime64[D]")
    metrics = compute_metrics(
        daily_equity,
        days,
        position_pnls(trades),
        initial_cash=spec.initial_cash,
        exposure=exposure_bars / max(1, i1 - i0 + 1),
        bar_equity=eq,
    )
    daily = pl.DataFrame(
        {"date": dates, "equity": daily_equity, "return": daily_returns(daily_equity, spec.initial_cash)}
    )
    return BacktestResult(engine, dates[0], dates[-1], trades, daily, metrics, eq, bars.ts[i0 : i1 + 1])
