"""Overfitting statistics: the DSR paper example, independent re-computations and Monte Carlo checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluator.metrics import compute_metrics
from evaluator.overfitting import (
    bootstrap_max_drawdown,
    deflated_sharpe_ratio,
    effective_number_of_trials,
    expected_max_sharpe,
    parameter_stability,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    stitched_sharpe,
    walk_forward_efficiency,
)

# ---------------------------------------------------------------------------------------------- PSR/DSR


def test_bailey_lopez_de_prado_2014_numerical_example():
    # "The Deflated Sharpe Ratio" (2014), numerical example: annualised SR 2.5 over five years of daily
    # returns (T = 1250, 250 days a year), N = 100 trials whose annualised Sharpe variance is 1/2,
    # skewness -3, kurtosis 10. The paper finds SR0 ~= 0.1132 (per period) and DSR ~= 0.9004.
    sr = 2.5 / math.sqrt(250)
    sr0 = expected_max_sharpe(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe_ratio(sr, sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def _psr_reference(sr, sr_star, n, skew, kurt):
    # Written from the formula, independent of the module: z-score of (sr - sr*) with Mertens' std error.
    se = np.sqrt((1 - skew * sr + (kurt - 1) / 4 * sr**2) / (n - 1))
    return stats.norm.cdf((sr - sr_star) / se)


@pytest.mark.parametrize(
    ("sr", "sr_star", "n", "skew", "kurt"),
    [(0.1, 0.0, 252, 0.0, 3.0), (0.05, 0.08, 1000, -1.2, 7.5), (-0.02, 0.0, 60, 0.4, 4.0)],
)
def test_psr_matches_reference_formula(sr, sr_star, n, skew, kurt):
    assert probabilistic_sharpe_ratio(sr, sr_star, n, skew, kurt) == pytest.approx(
        _psr_reference(sr, sr_star, n, skew, kurt), rel=1e-12
    )


def test_psr_degenerate_inputs_are_nan():
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, 1, 0.0, 3.0))
    assert math.isnan(probabilistic_sharpe_ratio(float("nan"), 0.0, 100, 0.0, 3.0))
    assert math.isnan(probabilistic_sharpe_ratio(1.0, 0.0, 100, 5.0, 1.0))  # impossible moments


def test_psr_is_uniform_under_its_null_monte_carlo():
    # If the true per-period Sharpe equals the benchmark, PSR(observed) must be ~Uniform(0, 1): about 5 %
    # of samples fall below 0.05 and the median is 0.5.
    rng = np.random.default_rng(11)
    true_sr, n = 0.1, 250
    samples = rng.normal(true_sr, 1.0, size=(4000, n))
    means, stds = samples.mean(axis=1), samples.std(axis=1, ddof=1)
    skews = stats.skew(samples, axis=1)
    kurts = stats.kurtosis(samples, axis=1, fisher=False)
    psr = np.array(
        [
            probabilistic_sharpe_ratio(m / s, true_sr, n, k3, k4)
            for m, s, k3, k4 in zip(means, stds, skews, kurts, strict=True)
        ]
    )
    assert np.mean(psr < 0.05) == pytest.approx(0.05, abs=0.015)
    assert np.mean(psr < 0.5) == pytest.approx(0.5, abs=0.03)


def test_expected_max_sharpe_monte_carlo():
    # The Euler-Mascheroni formula approximates E[max of N iid N(0, V)] to about 1 % at N = 100.
    rng = np.random.default_rng(3)
    variance = 0.04
    draws = rng.normal(0.0, math.sqrt(variance), size=(20000, 100))
    assert expected_max_sharpe(variance, 100) == pytest.approx(draws.max(axis=1).mean(), rel=0.02)
    assert expected_max_sharpe(variance, 1) == 0.0
    assert expected_max_sharpe(0.0, 1000) == 0.0
    with pytest.raises(ValueError, match="sr_variance"):
        expected_max_sharpe(-1.0, 10)


def test_deflated_sharpe_ratio_from_returns_matches_direct_computation():
    rng = np.random.default_rng(5)
    returns = rng.standard_t(df=5, size=750) * 0.01 + 0.001
    trial_sharpes = rng.normal(0.0, 0.03, size=50)
    res = deflated_sharpe_ratio(returns, trial_sharpes=trial_sharpes)

    centred = returns - returns.mean()
    m2, m3, m4 = (np.mean(centred**k) for k in (2, 3, 4))
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    sr = returns.mean() / returns.std(ddof=1)
    v = np.var(trial_sharpes, ddof=1)
    g = 0.5772156649015329
    sr0 = math.sqrt(v) * ((1 - g) * stats.norm.ppf(1 - 1 / 50) + g * stats.norm.ppf(1 - 1 / (50 * math.e)))

    assert res.n_obs == 750 and res.n_trials == 50
    assert res.sr == pytest.approx(sr, rel=1e-12)
    assert res.skew == pytest.approx(skew, rel=1e-10)
    assert res.kurtosis == pytest.approx(kurt, rel=1e-10)
    assert res.sr_variance == pytest.approx(v, rel=1e-12)
    assert res.sr0 == pytest.approx(sr0, rel=1e-12)
    assert res.psr == pytest.approx(_psr_reference(sr, 0.0, 750, skew, kurt), rel=1e-12)
    assert res.dsr == pytest.approx(_psr_reference(sr, sr0, 750, skew, kurt), rel=1e-12)
    assert res.dsr < res.psr


def test_dsr_falls_as_trials_grow_and_ignores_failed_trials():
    rng = np.random.default_rng(8)
    returns = rng.normal(0.001, 0.01, 500)
    sharpes = np.append(rng.normal(0.0, 0.03, 40), [np.nan, np.inf])
    base = deflated_sharpe_ratio(returns, trial_sharpes=sharpes)
    assert base.n_trials == 40
    values = [
        deflated_sharpe_ratio(returns, trial_sharpes=sharpes, n_trials=n).dsr for n in (2, 10, 100, 1000)
    ]
    assert values == sorted(values, reverse=True)
    assert deflated_sharpe_ratio(returns, trial_sharpes=sharpes, n_trials=1).dsr == pytest.approx(base.psr)


# ---------------------------------------------------------------------------------- effective trials


def test_effective_number_of_trials():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(500, 1))
    assert effective_number_of_trials(np.repeat(base, 10, axis=1)) == 1
    assert effective_number_of_trials(rng.normal(size=(500, 20))) == 20
    factors = rng.normal(size=(500, 3))
    grouped = np.repeat(factors, 5, axis=1) + 0.3 * rng.normal(size=(500, 15))
    assert effective_number_of_trials(grouped) == 3
    with_flat = np.hstack([grouped, np.zeros((500, 2))])
    assert effective_number_of_trials(with_flat) == 4
    assert effective_number_of_trials(base) == 1
    with pytest.raises(ValueError, match="nan or inf"):
        effective_number_of_trials(np.full((5, 2), np.nan))


# ------------------------------------------------------------------------------------------------- PBO


def _pbo_reference(m: np.ndarray, n_blocks: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    # Straight from Bailey et al.: loop over splits, Sharpe per column, rank with scipy.
    blocks = np.split(np.arange(m.shape[0]), n_blocks)
    logits, is_best, oos_best = [], [], []
    for combo in itertools.combinations(range(n_blocks), n_blocks // 2):
        is_rows = np.concatenate([blocks[i] for i in combo])
        oos_rows = np.concatenate([blocks[i] for i in range(n_blocks) if i not in combo])
        is_sr = m[is_rows].mean(axis=0) / m[is_rows].std(axis=0, ddof=1)
        oos_sr = m[oos_rows].mean(axis=0) / m[oos_rows].std(axis=0, ddof=1)
        best = int(np.argmax(is_sr))
        w = stats.rankdata(oos_sr)[best] / (m.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
        is_best.append(is_sr[best])
        oos_best.append(oos_sr[best])
    arr = np.array(logits)
    return float(np.mean(arr <= 0)), arr, np.array(is_best), np.array(oos_best)


def test_pbo_matches_loop_reference():
    rng = np.random.default_rng(4)
    m = rng.normal(0.0, 0.01, size=(120, 7)) + np.linspace(-0.002, 0.002, 7)
    res = probability_of_backtest_overfitting(m, n_blocks=8)
    ref_pbo, ref_logits, ref_is, ref_oos = _pbo_reference(m, 8)
    assert res.n_combinations == math.comb(8, 4) == res.logits.size
    assert res.pbo == ref_pbo
    assert np.allclose(res.logits, ref_logits, rtol=0, atol=1e-12)
    assert np.allclose(res.is_performance, ref_is, rtol=1e-10, atol=0)
    assert np.allclose(res.oos_performance, ref_oos, rtol=1e-10, atol=0)


def test_pbo_pure_noise_is_near_one_half():
    # PBO of a single noise family is itself noisy, so average over ten independent families.
    values = []
    for seed in range(10):
        m = np.random.default_rng(seed).normal(0.0, 0.01, size=(400, 50))
        values.append(probability_of_backtest_overfitting(m, n_blocks=10).pbo)
    assert 0.3 <= float(np.mean(values)) <= 0.7


def test_pbo_real_edge_among_noise_is_near_zero():
    rng = np.random.default_rng(1)
    m = rng.normal(0.0, 0.01, size=(1000, 50))
    m[:, 17] += 0.003  # per-period Sharpe 0.3: dominates every half of the sample
    res = probability_of_backtest_overfitting(m)
    assert res.n_combinations == 12870
    assert res.pbo < 0.1
    assert res.prob_oos_loss < 0.1


def test_pbo_full_size_and_metric_options():
    rng = np.random.default_rng(9)
    m = rng.normal(0.0, 0.01, size=(1000, 200))
    res = probability_of_backtest_overfitting(m, n_blocks=16)
    assert res.logits.shape == (12870,)
    assert 0.0 <= res.pbo <= 1.0

    small = m[:200, :20]
    fast = probability_of_backtest_overfitting(small, n_blocks=6, metric="mean")
    slow = probability_of_backtest_overfitting(small, n_blocks=6, metric=lambda x: x.mean(axis=0))
    assert fast.pbo == slow.pbo
    assert np.allclose(fast.logits, slow.logits)
    assert np.allclose(fast.oos_performance, slow.oos_performance)


def test_pbo_constant_column_never_selected_and_input_errors():
    rng = np.random.default_rng(6)
    m = rng.normal(0.0, 0.01, size=(64, 5))
    m[:, 0] = 0.0  # a trial that never traded has no Sharpe: ranked below everything
    res = probability_of_backtest_overfitting(m, n_blocks=4)
    assert np.all(np.isfinite(res.is_performance))
    with pytest.raises(ValueError, match="even integer"):
        probability_of_backtest_overfitting(m, n_blocks=5)
    with pytest.raises(ValueError, match="at least 2 trials"):
        probability_of_backtest_overfitting(m[:, :1])
    with pytest.raises(ValueError, match="has 64 rows but 40 blocks need at least 80"):
        probability_of_backtest_overfitting(m, n_blocks=40)


# --------------------------------------------------------------------------------- WFE and stitching


def test_walk_forward_efficiency():
    is_r = np.full(100, 0.002)
    oos_r = np.full(50, 0.001)
    assert walk_forward_efficiency(is_r, oos_r) == pytest.approx(0.5)
    assert walk_forward_efficiency([is_r[:40], is_r[40:]], [oos_r[:10], oos_r[10:]]) == pytest.approx(0.5)
    assert walk_forward_efficiency(is_r, -oos_r) == pytest.approx(-0.5)
    assert math.isnan(walk_forward_efficiency(-is_r, -oos_r))  # IS lost money: undefined, not "efficient"
    assert math.isnan(walk_forward_efficiency(np.zeros(10), oos_r))
    assert math.isnan(walk_forward_efficiency(np.array([]), oos_r))


def test_stitched_sharpe_is_the_sharpe_of_the_joined_segments():
    rng = np.random.default_rng(12)
    segments = [rng.normal(0.001, 0.01, n) for n in (20, 35, 20)]
    joined = pd.Series(np.concatenate(segments))
    assert stitched_sharpe(segments) == pytest.approx(joined.mean() / joined.std() * math.sqrt(252))
    assert math.isnan(stitched_sharpe([np.array([0.01])]))
    assert math.isnan(stitched_sharpe([]))


# ---------------------------------------------------------------------------------------- stability


def _grid_trials(objective) -> list[tuple[dict, float]]:
    trials = []
    for mode in ("fast", "slow"):
        for i in range(101):
            x = i / 100
            trials.append(({"x": x, "window": 20, "mode": mode}, objective(x, mode)))
    return trials


def test_parameter_stability_smooth_plateau():
    trials = _grid_trials(lambda x, mode: 1.0 - (x - 0.5) ** 2 if mode == "fast" else -1.0)
    res = parameter_stability(
        {"x": 0.5, "window": 20, "mode": "fast"}, trials, space_ranges={"x": (0.0, 1.0), "window": (5, 50)}
    )
    assert res.candidate_value == 1.0
    assert res.n_neighbours == 20  # x in [0.40, 0.60] minus the candidate itself; mode "slow" excluded
    assert res.fraction_positive == 1.0
    assert res.fraction_within == 1.0
    assert res.stability_ratio == pytest.approx(
        np.median(1.0 - (np.array([i / 100 for i in range(40, 61) if i != 50]) - 0.5) ** 2), rel=1e-12
    )
    assert res.n_invalid == 0


def test_parameter_stability_sharp_peak_and_failed_neighbours():
    trials = _grid_trials(lambda x, mode: 10.0 if x == 0.5 else 1.0)
    trials.append(({"x": 0.52, "window": 20, "mode": "fast"}, float("nan")))
    trials.append(({"x": 0.52, "window": 21, "mode": "fast", "extra": 1}, 5.0))  # other structure: ignored
    res = parameter_stability({"x": 0.5, "window": 20, "mode": "fast"}, trials, radius=0.05)
    assert res.n_neighbours == 10
    assert res.n_invalid == 1
    assert res.stability_ratio == pytest.approx(0.1)
    assert res.fraction_within == 0.0


def test_parameter_stability_needs_a_candidate_value():
    with pytest.raises(ValueError, match="pass candidate_value"):
        parameter_stability({"x": 3.0}, [({"x": 1.0}, 1.0)])
    res = parameter_stability({"x": 3.0}, [({"x": 2.9}, 1.0), ({"x": 1.0}, 0.0)], candidate_value=2.0)
    assert res.n_neighbours == 1 and res.stability_ratio == 0.5


# ----------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_max_drawdown():
    rng = np.random.default_rng(0)
    pnls = rng.normal(20.0, 200.0, 150)
    res = bootstrap_max_drawdown(pnls, initial_cash=10_000.0, n_samples=500, seed=42)
    again = bootstrap_max_drawdown(pnls, initial_cash=10_000.0, n_samples=500, seed=42)
    other = bootstrap_max_drawdown(pnls, initial_cash=10_000.0, n_samples=500, seed=43)
    assert np.array_equal(res.max_drawdowns, again.max_drawdowns)
    assert not np.array_equal(res.max_drawdowns, other.max_drawdowns)
    assert res.max_drawdowns.shape == (500,)
    assert 0.0 <= res.p50 <= res.p95 <= res.p99 <= res.max_drawdowns.max()
    assert res.p95 == pytest.approx(np.percentile(res.max_drawdowns, 95))

    # The observed drawdown is the one compute_metrics reports for the same trade-by-trade equity.
    equity = 10_000.0 + np.cumsum(pnls)
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + pnls.size)
    m = compute_metrics(equity, days, pnls, initial_cash=10_000.0, exposure=1.0)
    assert res.observed == pytest.approx(m["max_drawdown"], rel=1e-12)

    # A naive re-computation of the first samples with the same generator stream.
    idx = np.random.default_rng(42).integers(0, pnls.size, size=(500, pnls.size))
    for k in range(5):
        path = pd.Series(np.concatenate(([10_000.0], 10_000.0 + np.cumsum(pnls[idx[k]]))))
        assert res.max_drawdowns[k] == pytest.approx(((path.cummax() - path) / path.cummax()).max())


def test_bootstrap_edge_cases():
    same = bootstrap_max_drawdown(np.full(10, -100.0), initial_cash=1000.0, n_samples=50)
    assert np.allclose(same.max_drawdowns, 1.0) and same.observed == pytest.approx(1.0)
    empty = bootstrap_max_drawdown(np.array([]), initial_cash=1000.0, n_samples=5)
    assert empty.p95 == 0.0 and empty.max_drawdowns.shape == (5,)
    with pytest.raises(ValueError, match="initial_cash"):
        bootstrap_max_drawdown(np.ones(3), initial_cash=0.0)
