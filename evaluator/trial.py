"""One search trial: a parameter set backtested on every walk-forward fold, in-sample and validation.

:func:`evaluate_params` is pure (no storage, no Optuna): given a space, parameter values, a loaded
:class:`~evaluator.market.Market` and the folds, it runs the engine on each fold's in-sample (IS) window
and validation window (the fold's test window) and returns a :class:`TrialOutcome`.

How objective values are formed (only IS results count):

* each metric is computed per fold on the IS window by the single metrics function;
* the trial's IS value of a metric is the **mean over folds of the per-fold IS values**, skipping folds
  where the metric is undefined (``nan``: e.g. a Sharpe ratio on flat equity); ``is_defined_folds``
  says how many folds each mean rests on. A metric undefined on every fold stays ``nan``, and the search
  records such a trial as failed (an optimiser cannot rank it);
* objectives are these IS means; constraints compare the same IS means with their thresholds.

Validation metrics are aggregated the same way (``val_mean``) and stored for reporting and walk-forward
analysis; they never feed the optimiser directly. They are not out-of-sample all the same: with rolling
folds a later fold's training window covers an earlier fold's test window, so the objective sees them.
The out-of-sample data is the holdout after the last fold (:func:`evaluator.walkforward.make_layout`),
which no trial reads; ``search gate`` opens it for the chosen candidates only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from evaluator.engines import get_engine
from evaluator.market import Market
from evaluator.metrics import METRIC_KEYS
from evaluator.results import BacktestResult
from evaluator.walkforward import Fold
from evaluator.wfo import FoldRecord, Scalar, TrialRecord
from spec_space.space import Constraint, SpecSpace

__all__ = [
    "DIRECTIONS",
    "UNDEFINED_VIOLATION",
    "TrialOutcome",
    "aggregate_metrics",
    "check_metrics",
    "constraint_value",
    "evaluate_params",
]

Direction = Literal["maximize", "minimize"]

#: The natural direction of each metric, used when an objective is named without one. ``exposure`` has
#: none (less exposure is cheaper, more can be the point): name it as ``exposure:min`` or ``exposure:max``.
DIRECTIONS: dict[str, Direction] = {
    "total_return": "maximize",
    "cagr": "maximize",
    "volatility": "minimize",
    "sharpe": "maximize",
    "sortino": "maximize",
    "max_drawdown": "minimize",
    "calmar": "maximize",
    "win_rate": "maximize",
    "profit_factor": "maximize",
    "avg_trade": "maximize",
    "n_trades": "maximize",
}

#: Constraint value used when the constrained metric is undefined: infeasible, but finite so that
#: samplers can still sum violations (Optuna rejects ``nan`` and ``inf`` minus ``inf`` is ``nan``).
UNDEFINED_VIOLATION = 1e9


@dataclass(frozen=True)
class TrialOutcome:
    """Everything one trial produced; ``objectives`` and ``constraints`` follow the space's order."""

    values: Mapping[str, Scalar]
    folds: list[FoldRecord]
    objectives: list[float]
    constraints: list[float]  # Optuna's convention: <= 0 is feasible
    is_mean: dict[str, float]
    val_mean: dict[str, float]
    is_defined_folds: dict[str, int]
    engine: str
    elapsed: float = field(default=0.0, compare=False)

    @property
    def feasible(self) -> bool:
        return all(c <= 0.0 for c in self.constraints)

    def record(self, number: int) -> TrialRecord:
        return TrialRecord(number, dict(self.values), self.folds, self.feasible)


def check_metrics(space: SpecSpace) -> None:
    """Raise ``ValueError`` naming the field if an objective or constraint uses an unknown metric."""
    for where, metric in [
        *((f"objectives[{i}].metric", o.metric) for i, o in enumerate(space.objectives)),
        *((f"constraints[{i}].metric", c.metric) for i, c in enumerate(space.constraints)),
    ]:
        if metric not in METRIC_KEYS:
            raise ValueError(
                f"space {space.name!r}: {where} is {metric!r}, not a metric; use one of {', '.join(METRIC_KEYS)}"
            )


def aggregate_metrics(per_fold: Sequence[Mapping[str, float]]) -> tuple[dict[str, float], dict[str, int]]:
    """Mean over folds of each metric, skipping undefined (``nan``) folds; also the count of defined folds."""
    means: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key in METRIC_KEYS:
        values = np.array([m.get(key, math.nan) for m in per_fold], dtype=np.float64)
        defined = values[np.isfinite(values)]
        counts[key] = int(defined.size)
        means[key] = float(defined.mean()) if defined.size else math.nan
    return means, counts


def constraint_value(constraint: Constraint, value: float) -> float:
    """Optuna constraint value (<= 0 feasible) of ``value`` against ``constraint``."""
    if not math.isfinite(value):
        return UNDEFINED_VIOLATION
    return constraint.value - value if constraint.op == ">=" else value - constraint.value


def _segment(result: BacktestResult) -> tuple[np.ndarray, np.ndarray]:
    dates = np.array(result.daily.get_column("date").to_list(), dtype="datetime64[D]")
    return dates, np.asarray(result.daily_returns, dtype=np.float64)


def evaluate_params(
    space: SpecSpace,
    values: Mapping[str, Scalar],
    market: Market,
    folds: Sequence[Fold],
    engine: str = "fast",
) -> TrialOutcome:
    """Backtest ``space`` at ``values`` on each fold's IS and validation window of ``market`` (see module doc).

    Raises whatever building the spec or the engine raises (a bad parameter combination, missing data);
    the caller decides how a failed trial is recorded.
    """
    if not folds:
        raise ValueError("no walk-forward folds to evaluate on")
    check_metrics(space)
    started = time.perf_counter()
    spec = space.build(values)
    run = get_engine(engine)
    records: list[FoldRecord] = []
    for fold in folds:
        in_sample = run(spec, market, fold.train_start, fold.train_end)
        validation = run(spec, market, fold.test_start, fold.test_end)
        is_dates, is_returns = _segment(in_sample)
        val_dates, val_returns = _segment(validation)
        records.append(
            FoldRecord(
                fold.index,
                dict(in_sample.metrics),
                dict(validation.metrics),
                is_dates,
                is_returns,
                val_dates,
                val_returns,
            )
        )
    is_mean, is_defined = aggregate_metrics([r.is_metrics for r in records])
    val_mean, _ = aggregate_metrics([r.val_metrics for r in records])
    objectives = [is_mean[o.metric] for o in space.objectives]
    constraints = [constraint_value(c, is_mean[c.metric]) for c in space.constraints]
    return TrialOutcome(
        values=dict(values),
        folds=records,
        objectives=objectives,
        constraints=constraints,
        is_mean=is_mean,
        val_mean=val_mean,
        is_defined_folds=is_defined,
        engine=engine,
        elapsed=time.perf_counter() - started,
    )
