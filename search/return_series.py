"""Trial records as daily return series: stitched validation, one return per session, aligned matrices,
and the per-window daily frame with equity curves (``daily.csv`` of a gate candidate)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from evaluator.results import BacktestResult
from evaluator.wfo import FoldRecord, TrialRecord

__all__ = [
    "MIN_COVERAGE",
    "Aligned",
    "Series",
    "align",
    "fold_daily_frame",
    "folds_of",
    "session_returns",
    "stitched_validation",
]

#: Trials covering fewer sessions than this fraction of the matrix are left out of PBO / N_eff.
MIN_COVERAGE = 0.9


@dataclass(frozen=True)
class Series:
    dates: np.ndarray  # datetime64[D], strictly increasing
    returns: np.ndarray


def folds_of(record: TrialRecord) -> list[FoldRecord]:
    """The record's folds in fold order."""
    return sorted(record.folds, key=lambda f: f.fold)


def stitched_validation(record: TrialRecord) -> Series:
    """The trial's validation segments in fold order (test windows never overlap, so the dates increase)."""
    folds = folds_of(record)
    if not folds:
        return Series(np.empty(0, "datetime64[D]"), np.empty(0))
    return Series(
        np.concatenate([np.asarray(f.val_dates, "datetime64[D]") for f in folds]),
        np.concatenate([np.asarray(f.val_returns, np.float64) for f in folds]),
    )


def session_returns(record: TrialRecord) -> Series:
    """One return per recorded session: validation where the session is in a test window, else the first fold's IS."""
    folds = folds_of(record)
    if not folds:
        return Series(np.empty(0, "datetime64[D]"), np.empty(0))
    dates = np.concatenate(
        [np.asarray(f.val_dates, "datetime64[D]") for f in folds]
        + [np.asarray(f.is_dates, "datetime64[D]") for f in folds]
    )
    rets = np.concatenate(
        [np.asarray(f.val_returns, np.float64) for f in folds]
        + [np.asarray(f.is_returns, np.float64) for f in folds]
    )
    unique, first = np.unique(dates, return_index=True)  # first occurrence: validation before IS, early fold first
    return Series(unique, rets[first])


@dataclass(frozen=True)
class Aligned:
    dates: np.ndarray
    matrix: np.ndarray  # sessions x kept trials
    numbers: list[int]  # trial number of each column
    dropped: dict[int, str]


def align(series: Mapping[int, Series], *, min_coverage: float = MIN_COVERAGE) -> Aligned:
    """Columns on the union of dates; trials covering < ``min_coverage`` of it dropped; gaps 0.0 (flat)."""
    non_empty = {n: s for n, s in series.items() if s.dates.size}
    dropped = {n: "no returns in its record" for n, s in series.items() if not s.dates.size}
    if not non_empty:
        return Aligned(np.empty(0, "datetime64[D]"), np.empty((0, 0)), [], dropped)
    dates = np.unique(np.concatenate([s.dates for s in non_empty.values()]))
    kept: list[int] = []
    columns: list[np.ndarray] = []
    for number in sorted(non_empty):
        s = non_empty[number]
        coverage = s.dates.size / dates.size
        if coverage < min_coverage:
            dropped[number] = f"returns on {s.dates.size} of {dates.size} sessions (< {min_coverage:.0%})"
            continue
        column = np.zeros(dates.size)
        column[np.searchsorted(dates, s.dates)] = s.returns
        kept.append(number)
        columns.append(column)
    matrix = np.column_stack(columns) if columns else np.empty((dates.size, 0))
    matrix = np.where(np.isfinite(matrix), matrix, 0.0)
    return Aligned(dates, matrix, kept, dict(sorted(dropped.items())))


def fold_daily_frame(
    record: TrialRecord, initial_cash: float, holdout: BacktestResult | None = None
) -> pl.DataFrame:
    """Daily returns per window with each window's equity (from ``initial_cash``): per fold its in-sample
    (``is``) and validation (``validation``) window, then the ``holdout`` (fold -1) when given. On
    validation rows ``stitched_equity`` chains the validation windows in fold order (the walk-forward
    equity); on holdout rows it is the holdout's own equity."""
    rows: list[pl.DataFrame] = []
    stitched = initial_cash
    windows: list[tuple[int, str, Any, Any]] = []
    for f in folds_of(record):
        windows += [(f.fold, "is", f.is_dates, f.is_returns), (f.fold, "validation", f.val_dates, f.val_returns)]
    if holdout is not None:
        windows.append((-1, "holdout", holdout.daily.get_column("date").to_numpy(), holdout.daily_returns))
    for fold, window, dates, rets in windows:
        r = np.asarray(rets, np.float64)
        growth = np.cumprod(1.0 + r)
        chained: list[float | None] = [None] * r.size
        if window == "validation" and r.size:
            path = stitched * growth
            chained = path.tolist()
            stitched = float(path[-1])
        elif window == "holdout":
            chained = (initial_cash * growth).tolist()
        rows.append(
            pl.DataFrame(
                {
                    "fold": np.full(r.size, fold, np.int64),
                    "window": [window] * r.size,
                    "date": np.asarray(dates, "datetime64[D]"),
                    "return": r,
                    "equity": initial_cash * growth,
                    "stitched_equity": pl.Series(chained, dtype=pl.Float64),
                }
            )
        )
    if not rows:
        return pl.DataFrame(
            schema={
                "fold": pl.Int64,
                "window": pl.Utf8,
                "date": pl.Date,
                "return": pl.Float64,
                "equity": pl.Float64,
                "stitched_equity": pl.Float64,
            }
        )
    return pl.concat(rows)
