"""Walk-forward optimisation from stored trial records, with no extra backtest.

Every trial of a study was run with one parameter set on every fold's in-sample (IS) and validation
window (the fold's test window). Walk-forward optimisation asks what a trader re-optimising at each fold boundary would
have earned: for fold ``k``, the parameter set chosen is the trial that was best *in sample* on fold
``k``; that trial's validation segment of fold ``k`` is what was traded next. The segments chained in fold
order are the strategy's walk-forward equity.

Only in-sample values decide the choice. Validation numbers are read only for the chosen trial, after
the choice, so a trial that happens to be best on validation is never preferred for it. The result is
still not out-of-sample: the sampler that proposed the trials saw later folds' training windows, which
cover earlier folds' validation windows. Only the holdout (see :mod:`search.gate`) is unseen.

Selection rules (deterministic):

* candidates for fold ``k`` are the records with a fold ``k`` whose IS value of ``metric`` is finite;
* if any candidate is feasible (met the study's constraints), only feasible candidates count;
* the best IS value wins (``direction``); ties go to the lowest trial number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from evaluator.metrics import drawdown_series, sharpe_ratio

__all__ = ["FoldChoice", "FoldRecord", "TrialRecord", "WFOResult", "walk_forward_optimise"]

Direction = Literal["maximize", "minimize"]
Scalar = bool | int | float | str | None


@dataclass(frozen=True)
class FoldRecord:
    """One trial's results on one fold: metrics and daily returns of both windows.

    ``*_dates`` are ``datetime64[D]`` session dates, ``*_returns`` the matching simple daily returns
    (fractions). Metric dicts hold the keys of :data:`evaluator.metrics.METRIC_KEYS`; undefined values
    are ``nan``.
    """

    fold: int
    is_metrics: Mapping[str, float]
    val_metrics: Mapping[str, float]
    is_dates: np.ndarray = field(repr=False)
    is_returns: np.ndarray = field(repr=False)
    val_dates: np.ndarray = field(repr=False)
    val_returns: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class TrialRecord:
    """What a finished trial left behind: its parameters and one :class:`FoldRecord` per fold."""

    number: int
    params: Mapping[str, Scalar]
    folds: Sequence[FoldRecord]
    feasible: bool = True


@dataclass(frozen=True)
class FoldChoice:
    fold: int
    trial: int
    is_value: float  # the chosen trial's IS value of the selection metric on this fold
    val_value: float  # its validation value on the same fold (read after the choice, for reporting)
    params: Mapping[str, Scalar]


@dataclass(frozen=True)
class WFOResult:
    """The walk-forward optimisation: per-fold choices and the stitched validation daily returns."""

    metric: str
    direction: Direction
    choices: list[FoldChoice]
    dates: np.ndarray  # datetime64[D], strictly increasing
    returns: np.ndarray
    skipped_folds: list[int]  # folds where no trial had a finite IS value

    @property
    def equity(self) -> np.ndarray:
        """Growth of 1.0 compounded over the stitched validation returns."""
        return np.cumprod(1.0 + self.returns)

    @property
    def total_return(self) -> float:
        return float(self.equity[-1] - 1.0) if self.returns.size else 0.0

    @property
    def sharpe(self) -> float:
        return sharpe_ratio(self.returns)

    @property
    def max_drawdown(self) -> float:
        if not self.returns.size:
            return 0.0
        return float(drawdown_series(np.concatenate(([1.0], self.equity))).max())

    def summary(self) -> dict[str, float]:
        return {
            "total_return": self.total_return,
            "sharpe": self.sharpe,
            "max_drawdown": self.max_drawdown,
            "days": float(self.returns.size),
        }


def _better(a: float, b: float, direction: Direction) -> bool:
    return a > b if direction == "maximize" else a < b


def walk_forward_optimise(
    records: Sequence[TrialRecord], *, metric: str, direction: Direction = "maximize"
) -> WFOResult:
    """Choose, per fold, the trial best in sample on ``metric`` and chain the chosen validation segments.

    Raises:
        ValueError: ``direction`` is not maximize/minimize, or the chosen validation segments overlap or are out
            of order (the records do not come from one consistent set of walk-forward folds).
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    fold_ids = sorted({f.fold for r in records for f in r.folds})
    choices: list[FoldChoice] = []
    skipped: list[int] = []
    dates: list[np.ndarray] = []
    returns: list[np.ndarray] = []
    for k in fold_ids:
        candidates = []
        for record in sorted(records, key=lambda r: r.number):
            fold = next((f for f in record.folds if f.fold == k), None)
            if fold is None:
                continue
            value = float(fold.is_metrics.get(metric, math.nan))
            if math.isfinite(value):
                candidates.append((record, fold, value))
        if any(record.feasible for record, _, _ in candidates):
            candidates = [c for c in candidates if c[0].feasible]
        if not candidates:
            skipped.append(k)
            continue
        best = candidates[0]
        for candidate in candidates[1:]:  # sorted by trial number, so ties keep the lowest
            if _better(candidate[2], best[2], direction):
                best = candidate
        record, fold, value = best
        choices.append(
            FoldChoice(
                k, record.number, value, float(fold.val_metrics.get(metric, math.nan)), dict(record.params)
            )
        )
        dates.append(np.asarray(fold.val_dates, dtype="datetime64[D]"))
        returns.append(np.asarray(fold.val_returns, dtype=np.float64))
    all_dates = np.concatenate(dates) if dates else np.empty(0, dtype="datetime64[D]")
    all_returns = np.concatenate(returns) if returns else np.empty(0, dtype=np.float64)
    if all_dates.size > 1:
        steps = np.diff(all_dates.astype(np.int64))
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise ValueError(
                f"stitched validation dates are not strictly increasing ({all_dates[i - 1]} then "
                f"{all_dates[i]}): the records' test windows overlap; they must come from one walk-forward layout"
            )
    return WFOResult(metric, direction, choices, all_dates, all_returns, skipped)
