"""Walk-forward optimisation from records: the choice is made on in-sample values only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluator.wfo import FoldRecord, TrialRecord, walk_forward_optimise

FOLD_DATES = {
    0: (
        np.arange("2024-01-01", "2024-01-11", dtype="datetime64[D]"),
        np.arange("2024-01-12", "2024-01-15", dtype="datetime64[D]"),
    ),
    1: (
        np.arange("2024-01-04", "2024-01-14", dtype="datetime64[D]"),
        np.arange("2024-01-15", "2024-01-18", dtype="datetime64[D]"),
    ),
}


def fold(k: int, is_sharpe: float, val_sharpe: float, val_return: float = 0.01) -> FoldRecord:
    is_dates, val_dates = FOLD_DATES[k]
    return FoldRecord(
        k,
        {"sharpe": is_sharpe, "max_drawdown": 0.1},
        {"sharpe": val_sharpe, "max_drawdown": 0.1},
        is_dates,
        np.full(len(is_dates), 0.001),
        val_dates,
        np.full(len(val_dates), val_return),
    )


def test_the_in_sample_best_is_chosen_even_when_another_trial_is_best_out_of_sample():
    records = [
        # trial 1 is the best out of sample on both folds, but never in sample
        TrialRecord(1, {"p": 1}, [fold(0, 0.5, 9.0, 0.05), fold(1, 0.4, 9.0, 0.05)]),
        TrialRecord(2, {"p": 2}, [fold(0, 2.0, -1.0, -0.01), fold(1, 0.1, 0.0, 0.0)]),
        TrialRecord(3, {"p": 3}, [fold(0, 1.0, 0.2, 0.0), fold(1, 3.0, -2.0, -0.02)]),
    ]
    result = walk_forward_optimise(records, metric="sharpe", direction="maximize")
    assert [(c.fold, c.trial) for c in result.choices] == [(0, 2), (1, 3)]
    assert [c.is_value for c in result.choices] == [2.0, 3.0]
    assert [c.val_value for c in result.choices] == [-1.0, -2.0]
    assert result.choices[1].params == {"p": 3}
    # stitched: trial 2's OOS segment of fold 0, then trial 3's of fold 1
    assert result.returns.tolist() == [-0.01] * 3 + [-0.02] * 3
    assert str(result.dates[0]) == "2024-01-12" and str(result.dates[-1]) == "2024-01-17"
    assert result.total_return == pytest.approx(0.99**3 * 0.98**3 - 1)
    assert result.equity[-1] == pytest.approx(1 + result.total_return)
    assert result.max_drawdown == pytest.approx(1 - 0.99**3 * 0.98**3)


def test_minimize_ties_feasibility_and_undefined_values():
    records = [
        TrialRecord(5, {}, [fold(0, 1.0, 0.0), fold(1, math.nan, 0.0)]),
        TrialRecord(4, {}, [fold(0, 1.0, 0.0), fold(1, math.nan, 0.0)]),
        TrialRecord(6, {}, [fold(0, 0.2, 0.0), fold(1, math.nan, 0.0)], feasible=False),
    ]
    result = walk_forward_optimise(records, metric="sharpe", direction="minimize")
    # trial 6 has the lowest value but is infeasible while feasible ones exist; 4 and 5 tie -> lowest number
    assert [(c.fold, c.trial) for c in result.choices] == [(0, 4)]
    assert result.skipped_folds == [1]
    assert len(result.returns) == 3
    only_infeasible = walk_forward_optimise([records[2]], metric="sharpe", direction="minimize")
    assert [c.trial for c in only_infeasible.choices] == [6]


def test_no_records_and_bad_input():
    empty = walk_forward_optimise([], metric="sharpe")
    assert empty.choices == [] and empty.total_return == 0.0 and empty.max_drawdown == 0.0
    assert math.isnan(empty.sharpe)
    with pytest.raises(ValueError, match="direction"):
        walk_forward_optimise([], metric="sharpe", direction="up")  # type: ignore[arg-type]
    overlapping = FoldRecord(
        1, {"sharpe": 1.0}, {"sharpe": 1.0}, FOLD_DATES[1][0], np.zeros(10), FOLD_DATES[0][1], np.zeros(3)
    )
    with pytest.raises(ValueError, match="overlap"):
        walk_forward_optimise([TrialRecord(0, {}, [fold(0, 1.0, 1.0), overlapping])], metric="sharpe")
