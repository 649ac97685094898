"""compute_metrics: exact numbers on hand-computed series, edge cases, and a pandas cross-check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluator.metrics import (
    METRIC_KEYS,
    PROFIT_FACTOR_CAP,
    compute_metrics,
    daily_returns,
    drawdown_series,
    sharpe_ratio,
)


def _days(n: int, start: str = "2024-01-02") -> np.ndarray:
    return np.arange(np.datetime64(start, "D"), np.datetime64(start, "D") + n)


def _metrics(equity: list[float], pnls: list[float] = (), *, initial_cash: float = 100.0, days=None, **kw):
    eq = np.asarray(equity, dtype=float)
    return compute_metrics(
        eq,
        _days(eq.size) if days is None else days,
        np.asarray(pnls, dtype=float),
        initial_cash=initial_cash,
        exposure=kw.pop("exposure", 0.5),
        **kw,
    )


def test_hand_computed_series():
    # Returns 0.1, -0.1, 0.2: mean 1/15, sample variance 7/300, downside mean square 0.01/3.
    m = _metrics([110.0, 99.0, 118.8], [10.0, -5.0, 0.0, 20.0, -5.0], exposure=0.25)
    assert set(m) == set(METRIC_KEYS)
    assert all(type(v) is float for v in m.values())
    assert m["total_return"] == pytest.approx(0.188, abs=1e-12)
    assert m["sharpe"] == pytest.approx(math.sqrt(48.0), rel=1e-12)  # sqrt(4/21) * sqrt(252)
    assert m["volatility"] == pytest.approx(math.sqrt(5.88), rel=1e-12)  # sqrt(7/300 * 252)
    assert m["sortino"] == pytest.approx(math.sqrt(336.0), rel=1e-12)  # (1/15) / sqrt(1/300) * sqrt(252)
    assert m["max_drawdown"] == pytest.approx(0.1, abs=1e-12)
    assert m["win_rate"] == pytest.approx(0.4)
    assert m["profit_factor"] == pytest.approx(3.0)
    assert m["avg_trade"] == pytest.approx(4.0)
    assert m["n_trades"] == 5.0
    assert m["exposure"] == 0.25


def test_cagr_uses_inclusive_calendar_span():
    days = np.array(["2021-01-01", "2021-07-01", "2022-12-31"], dtype="datetime64[D]")  # 730 days inclusive
    m = _metrics([105.0, 110.0, 121.0], days=days)
    expected = 1.21 ** (365.25 / 730) - 1.0
    assert m["cagr"] == pytest.approx(expected, rel=1e-12)
    assert m["max_drawdown"] == 0.0 and math.isnan(m["calmar"])  # no drawdown: calmar undefined


def test_loss_on_first_day_is_a_drawdown_from_initial_cash():
    m = _metrics([90.0, 95.0, 80.0, 101.0])
    assert m["max_drawdown"] == pytest.approx(0.2)
    days = np.array(["2023-01-02", "2023-06-01", "2023-12-31", "2024-12-31"], dtype="datetime64[D]")
    m = _metrics([90.0, 95.0, 80.0, 101.0], days=days)
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.2)


def test_zero_trades_flat_equity():
    m = _metrics([100.0, 100.0, 100.0], exposure=0.0)
    assert m["total_return"] == 0.0
    assert m["cagr"] == 0.0
    assert m["volatility"] == 0.0
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"])
    assert m["max_drawdown"] == 0.0 and math.isnan(m["calmar"])
    assert math.isnan(m["win_rate"]) and math.isnan(m["profit_factor"]) and math.isnan(m["avg_trade"])
    assert m["n_trades"] == 0.0


def test_one_day_and_no_days():
    m = _metrics([105.0], [5.0])
    assert m["total_return"] == pytest.approx(0.05)
    for key in ("cagr", "volatility", "sharpe", "sortino", "calmar"):
        assert math.isnan(m[key]), key
    assert m["max_drawdown"] == 0.0
    assert m["profit_factor"] == PROFIT_FACTOR_CAP  # a win and no loss: capped, finite

    m = _metrics([])
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0 and m["n_trades"] == 0.0
    assert math.isnan(m["sharpe"]) and math.isnan(m["cagr"])


def test_only_rising_days_sortino_undefined_sharpe_defined():
    m = _metrics([101.0, 103.0, 104.0])
    assert math.isnan(m["sortino"])
    assert m["sharpe"] > 0


def test_profit_factor_edge_cases():
    assert math.isnan(_metrics([100.0], [0.0, 0.0])["profit_factor"])  # only scratch trades
    assert _metrics([100.0], [-1.0, -2.0])["profit_factor"] == 0.0
    assert _metrics([100.0], [1e9, -1e-9])["profit_factor"] == PROFIT_FACTOR_CAP
    assert _metrics([100.0], [0.0, 3.0])["win_rate"] == 0.5  # a scratch trade is not a win


def test_bust_account_is_defined():
    m = _metrics([50.0, 0.0, 0.0], [-50.0, -50.0])
    assert m["total_return"] == -1.0
    assert m["cagr"] == -1.0
    assert m["max_drawdown"] == 1.0
    assert np.array_equal(daily_returns(np.array([50.0, 0.0, 0.0]), 100.0), [-0.5, -1.0, 0.0])


def test_helpers():
    assert np.allclose(daily_returns(np.array([110.0, 99.0]), 100.0), [0.1, -0.1])
    assert daily_returns(np.array([]), 100.0).size == 0
    assert np.allclose(drawdown_series(np.array([100.0, 120.0, 90.0, 130.0])), [0.0, 0.0, 0.25, 0.0])
    assert math.isnan(sharpe_ratio(np.array([0.01])))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": _days(2)}, "daily_equity has 3 values but days has 2"),
        ({"equity": [100.0, float("nan"), 100.0]}, r"daily_equity\[1\] is nan"),
        (
            {"days": np.array(["2024-01-03", "2024-01-02", "2024-01-04"], dtype="datetime64[D]")},
            r"strictly increasing: days\[1\]",
        ),
        ({"exposure": 1.5}, "exposure must be a fraction"),
        ({"initial_cash": 0.0}, "initial_cash must be a positive"),
        ({"pnls": [1.0, float("inf")]}, r"trade_pnls\[1\]"),
    ],
)
def test_invalid_input_raises_precise_error(kwargs, message):
    equity = kwargs.pop("equity", [100.0, 101.0, 102.0])
    pnls = kwargs.pop("pnls", [])
    with pytest.raises(ValueError, match=message):
        _metrics(equity, pnls, **kwargs)


def test_cross_check_against_pandas():
    rng = np.random.default_rng(7)
    initial = 10_000.0
    equity = initial * np.cumprod(1.0 + rng.normal(0.0005, 0.01, 500))
    idx = pd.bdate_range("2022-01-03", periods=500)
    m = compute_metrics(
        equity, idx.values.astype("datetime64[D]"), np.array([]), initial_cash=initial, exposure=1.0
    )

    full = pd.Series(np.concatenate(([initial], equity)))
    rets = full.pct_change().dropna()
    assert m["sharpe"] == pytest.approx(rets.mean() / rets.std() * np.sqrt(252), rel=1e-10)
    assert m["volatility"] == pytest.approx(rets.std() * np.sqrt(252), rel=1e-10)
    peak = full.cummax()
    assert m["max_drawdown"] == pytest.approx(((peak - full) / peak).max(), rel=1e-12)
    span = (idx[-1] - idx[0]).days + 1
    assert m["cagr"] == pytest.approx((equity[-1] / initial) ** (365.25 / span) - 1.0, rel=1e-10)


def test_periods_per_year_scales_sharpe():
    base = _metrics([110.0, 99.0, 118.8])
    weekly = _metrics([110.0, 99.0, 118.8], periods_per_year=52)
    assert weekly["sharpe"] == pytest.approx(base["sharpe"] * math.sqrt(52 / 252))
