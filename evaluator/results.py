"""The result of one backtest, the same for both engines: trades, equity, daily returns, metrics."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.market import Market
from evaluator.metrics import compute_metrics, daily_returns
from spec_space.models import StrategySpec


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
        trades.get_column("pnl").to_numpy(),
        initial_cash=spec.initial_cash,
        exposure=exposure_bars / max(1, i1 - i0 + 1),
    )
    daily = pl.DataFrame(
        {"date": dates, "equity": daily_equity, "return": daily_returns(daily_equity, spec.initial_cash)}
    )
    return BacktestResult(engine, dates[0], dates[-1], trades, daily, metrics, eq, bars.ts[i0 : i1 + 1])
