"""evaluate_params: per-fold IS/OOS backtests, objectives from in-sample results only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluator import fast
from evaluator.trial import (
    UNDEFINED_VIOLATION,
    aggregate_metrics,
    check_metrics,
    constraint_value,
    evaluate_params,
)
from evaluator.walkforward import make_folds
from spec_space.space import Constraint, SpecSpace
from tests.evaluator.builders import market, random_minutes

DAYS = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-03-04", periods=20)]


def space(**changes: object) -> SpecSpace:
    raw: dict[str, object] = {
        "name": "sma_trial",
        "data": {"start": DAYS[0], "end": DAYS[-1]},
        "walk_forward": {"train_days": 6, "test_days": 3, "embargo_days": 1, "folds": 3},
        "objectives": [
            {"metric": "sharpe", "direction": "maximize"},
            {"metric": "max_drawdown", "direction": "minimize"},
        ],
        "constraints": [{"metric": "n_trades", "op": ">=", "value": 3}],
        "params": {"fast": {"int": [2, 10]}, "slow": {"int": [12, 40]}},
        "spec": {
            "name": "sma_trial",
            "instrument": {"type": "stock", "symbol": "SPY"},
            "timeframe": "1min",
            "direction": "long",
            "entry": {"long": "crosses_above(sma(close, $fast), sma(close, $slow))"},
            "exits": {
                "exit_long": "crosses_below(sma(close, $fast), sma(close, $slow))",
                "eod_flat_time": "15:55",
            },
            "sizing": {"mode": "pct_equity", "pct_equity": 0.5},
        },
    }
    raw.update(changes)
    return SpecSpace.model_validate(raw)


def folds_of(mkt):
    return make_folds(
        mkt.bars.session_dates, scheme="rolling", train_days=6, test_days=3, embargo_days=1, n_folds=3
    )


def test_each_fold_is_the_engine_on_its_windows_and_objectives_are_in_sample_means():
    mkt = market(random_minutes(np.random.default_rng(5), DAYS))
    sp, folds = space(), folds_of(mkt)
    values = {"fast": 3, "slow": 15}
    outcome = evaluate_params(sp, values, mkt, folds)
    assert [f.fold for f in outcome.folds] == [0, 1, 2]
    spec = sp.build(values)
    for f, window in zip(outcome.folds, folds, strict=True):
        is_run = fast.run(spec, mkt, window.train_start, window.train_end)
        val_run = fast.run(spec, mkt, window.test_start, window.test_end)
        assert f.is_metrics == pytest.approx(is_run.metrics, nan_ok=True)
        assert f.val_metrics == pytest.approx(val_run.metrics, nan_ok=True)
        assert f.is_returns.tolist() == pytest.approx(is_run.daily_returns.tolist())
        assert str(f.is_dates[0]) == str(window.train_start) and str(f.is_dates[-1]) == str(window.train_end)
        assert str(f.val_dates[0]) == str(window.test_start) and str(f.val_dates[-1]) == str(window.test_end)
    is_sharpe = [f.is_metrics["sharpe"] for f in outcome.folds]
    is_dd = [f.is_metrics["max_drawdown"] for f in outcome.folds]
    assert outcome.objectives == pytest.approx([np.nanmean(is_sharpe), np.mean(is_dd)])
    trades = np.mean([f.is_metrics["n_trades"] for f in outcome.folds])
    assert outcome.constraints == pytest.approx([3 - trades])
    assert outcome.feasible == (trades >= 3)
    assert outcome.val_mean["sharpe"] == pytest.approx(
        np.nanmean([f.val_metrics["sharpe"] for f in outcome.folds])
    )
    record = outcome.record(7)
    assert record.number == 7 and record.params == values and record.folds is outcome.folds


def test_changing_only_out_of_sample_bars_leaves_the_objectives_alone():
    rows = random_minutes(np.random.default_rng(9), DAYS)
    base = market(rows)
    folds = folds_of(base)
    last_test = {str(d) for d in base.bars.session_dates if d >= folds[-1].test_start}
    # every in-sample window ends before the last test window: a different future there
    # may change OOS results but never the values the optimiser sees
    shocked = [
        (r[0], r[1] * 1.2, r[2] * 1.3, r[3] * 0.9, r[4] * 0.95, *r[5:]) if r[0][:10] in last_test else r
        for r in rows
    ]
    values = {"fast": 4, "slow": 20}
    a = evaluate_params(space(), values, base, folds)
    b = evaluate_params(space(), values, market(shocked), folds)
    assert a.objectives == pytest.approx(b.objectives) and a.constraints == pytest.approx(b.constraints)
    for fa, fb in zip(a.folds, b.folds, strict=True):
        assert fa.is_metrics == pytest.approx(fb.is_metrics, nan_ok=True)
    assert a.folds[-1].val_returns.tolist() != b.folds[-1].val_returns.tolist()


def test_aggregation_skips_undefined_folds_and_counts_them():
    means, counts = aggregate_metrics(
        [{"sharpe": 1.0, "n_trades": 2.0}, {"sharpe": math.nan, "n_trades": 4.0}]
    )
    assert means["sharpe"] == 1.0 and counts["sharpe"] == 1
    assert means["n_trades"] == 3.0 and counts["n_trades"] == 2
    assert math.isnan(means["cagr"]) and counts["cagr"] == 0


def test_constraint_values_follow_optunas_convention():
    at_least = Constraint(metric="n_trades", op=">=", value=20)
    at_most = Constraint(metric="max_drawdown", op="<=", value=0.2)
    assert constraint_value(at_least, 25) == -5 and constraint_value(at_least, 15) == 5
    assert constraint_value(at_most, 0.1) == pytest.approx(-0.1) and constraint_value(
        at_most, 0.3
    ) == pytest.approx(0.1)
    assert constraint_value(at_least, math.nan) == UNDEFINED_VIOLATION


def test_unknown_metrics_and_empty_folds_are_refused():
    bad = space(objectives=[{"metric": "sharp", "direction": "maximize"}])
    with pytest.raises(ValueError, match=r"objectives\[0\]\.metric is 'sharp'"):
        check_metrics(bad)
    mkt = market(random_minutes(np.random.default_rng(1), DAYS[:3]))
    with pytest.raises(ValueError, match="no walk-forward folds"):
        evaluate_params(space(), {"fast": 3, "slow": 15}, mkt, [])
