"""Trade-for-trade comparison of two backtest results (the fast engine against Lumibot).

``compare_results(a, b)`` holds two :class:`~evaluator.results.BacktestResult` to the parity
standard of the project: the same trades (same entry and exit bars, side, instrument, quantity and
exit reason, prices within a cent per share or contract), metrics within 1e-6 relative, and the
same daily equity. It never raises on a difference: the :class:`ParityReport` lists them, and
``search confirm`` stores it on the trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluator.results import BacktestResult

#: the trade columns that must be equal exactly
EXACT_COLUMNS = ("trade_id", "entry_bar", "exit_bar", "side", "instrument", "exit_reason", "stale")


@dataclass
class ParityReport:
    """What differs between two results; ``ok`` when nothing beyond the tolerances does."""

    engines: tuple[str, str]
    n_trades: tuple[int, int]  # positions (trade_id groups), as the metrics' n_trades counts them
    n_rows: tuple[int, int] = (0, 0)  # exit fills: a position closed in parts has one row per part
    trade_mismatches: list[str] = field(default_factory=list)
    metric_mismatches: dict[str, tuple[float, float]] = field(default_factory=dict)
    equity_mismatches: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    max_price_diff: float = 0.0
    max_pnl_diff: float = 0.0
    max_equity_diff: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.trade_mismatches or self.metric_mismatches or self.equity_mismatches or self.other)

    def summary(self, limit: int = 10) -> str:
        a, b = self.engines
        head = (
            f"{a} vs {b}: {'parity' if self.ok else 'DIFFERENT'}; trades {self.n_trades[0]} / {self.n_trades[1]} "
            f"(exit rows {self.n_rows[0]} / {self.n_rows[1]}), "
            f"max price diff {self.max_price_diff:.6g}, max pnl diff {self.max_pnl_diff:.6g}, "
            f"max daily equity diff {self.max_equity_diff:.6g}"
        )
        lines = [head]
        lines += [f"  other: {text}" for text in self.other[:limit]]
        lines += [f"  trade {text}" for text in self.trade_mismatches[:limit]]
        if len(self.trade_mismatches) > limit:
            lines.append(f"  ... {len(self.trade_mismatches) - limit} more trade differences")
        lines += [
            f"  metric {name}: {x!r} vs {y!r}"
            for name, (x, y) in list(self.metric_mismatches.items())[:limit]
        ]
        lines += [f"  equity {text}" for text in self.equity_mismatches[:limit]]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (for a trial's user attributes)."""
        return {
            "ok": self.ok,
            "engines": list(self.engines),
            "n_trades": list(self.n_trades),
            "n_rows": list(self.n_rows),
            "trade_mismatches": self.trade_mismatches[:50],
            "metric_mismatches": {
                k: [_json_float(x), _json_float(y)] for k, (x, y) in self.metric_mismatches.items()
            },
            "equity_mismatches": self.equity_mismatches[:50],
            "other": self.other,
            "max_price_diff": self.max_price_diff,
            "max_pnl_diff": self.max_pnl_diff,
            "max_equity_diff": self.max_equity_diff,
        }


def _positions(trades: Any) -> int:
    """Positions in a trades table: its ``trade_id`` groups (a partial exit adds a row, not a trade)."""
    return int(trades.get_column("trade_id").n_unique()) if trades.height else 0


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _close(x: float, y: float, rtol: float, atol: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= atol + rtol * max(abs(x), abs(y))


def compare_results(
    a: BacktestResult,
    b: BacktestResult,
    *,
    price_tol: float = 0.01,
    quantity_tol: float = 1e-9,
    metric_rtol: float = 1e-6,
    metric_atol: float = 1e-9,
    equity_rtol: float = 1e-6,
) -> ParityReport:
    """Compare ``a`` with ``b`` trade for trade, metric for metric and day for day.

    Prices are per share (options: per share of premium, so a cent per share is a dollar per
    contract); ``metric_atol`` only lets metrics that are zero up to rounding (1e-17 vs -1e-17) agree.
    """
    ta, tb = a.trades, b.trades
    report = ParityReport((a.engine, b.engine), (_positions(ta), _positions(tb)), (ta.height, tb.height))
    if a.fill_model_version != b.fill_model_version:
        report.other.append(f"fill model versions differ: {a.fill_model_version} vs {b.fill_model_version}")
    if (a.start, a.end) != (b.start, b.end):
        report.other.append(f"windows differ: {a.start}..{a.end} vs {b.start}..{b.end}")
    if ta.height != tb.height:
        report.other.append(f"trade row counts differ: {ta.height} vs {tb.height}")
    ra, rb = ta.to_dicts(), tb.to_dicts()
    for n, (x, y) in enumerate(zip(ra, rb, strict=False)):
        problems = [f"{col} {x[col]!r} vs {y[col]!r}" for col in EXACT_COLUMNS if x[col] != y[col]]
        if abs(x["quantity"] - y["quantity"]) > quantity_tol:
            problems.append(f"quantity {x['quantity']!r} vs {y['quantity']!r}")
        for col in ("entry_price", "exit_price"):
            diff = abs(x[col] - y[col])
            report.max_price_diff = max(report.max_price_diff, diff)
            if not diff <= price_tol:
                problems.append(f"{col} {x[col]:.6f} vs {y[col]:.6f}")
        report.max_pnl_diff = max(report.max_pnl_diff, abs(x["pnl"] - y["pnl"]))
        if problems:
            report.trade_mismatches.append(f"#{n} (entry bar {x['entry_bar']}): " + ", ".join(problems))
    if ta.height != tb.height:
        extra, name = (ra[tb.height :], a.engine) if ta.height > tb.height else (rb[ta.height :], b.engine)
        for row in extra[:5]:
            report.trade_mismatches.append(
                f"only in {name}: entry bar {row['entry_bar']}, exit bar {row['exit_bar']}, {row['exit_reason']}"
            )
    for name in sorted(set(a.metrics) | set(b.metrics)):
        x, y = float(a.metrics.get(name, math.nan)), float(b.metrics.get(name, math.nan))
        if not _close(x, y, metric_rtol, metric_atol):
            report.metric_mismatches[name] = (x, y)
    da, db = a.daily, b.daily
    if da.height != db.height or da.get_column("date").to_list() != db.get_column("date").to_list():
        report.equity_mismatches.append(f"daily rows differ: {da.height} vs {db.height} sessions")
    else:
        ea, eb = da.get_column("equity").to_numpy(), db.get_column("equity").to_numpy()
        diff = np.abs(ea - eb)
        report.max_equity_diff = float(np.nanmax(diff)) if len(diff) else 0.0
        tol = equity_rtol * np.maximum(np.abs(ea), np.abs(eb))
        for day, x, y, bad in zip(da.get_column("date").to_list(), ea, eb, diff > tol, strict=True):
            if bad or (np.isnan(x) != np.isnan(y)):
                report.equity_mismatches.append(f"{day}: {x:.6f} vs {y:.6f}")
    return report
