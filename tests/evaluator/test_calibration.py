"""Calibration of the gates' statistics on simulated trials x days return matrices with known skill.

Each test draws several hundred seeded searches and counts how often the default gate threshold is met:
under the null (every trial pure noise) no more often than its nominal rate within binomial error, with
a real edge of a stated size at least at a measured rate. The numbers in the comments were measured with
the seeds below; the bounds are conservative so that the tests fail on a real change, not on noise.

References: D. H. Bailey and M. Lopez de Prado, "The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014; D. H. Bailey,
J. Borwein, M. Lopez de Prado and Q. J. Zhu, "The Probability of Backtest Overfitting", Journal of
Computational Finance 20(4), 2017.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evaluator.gates import GateConfig
from evaluator.overfitting import (
    deflated_sharpe_ratio,
    effective_number_of_trials,
    null_sharpe_variance,
    probability_of_backtest_overfitting,
)

DEFAULT = {g.metric: g for g in GateConfig.default().gates}
DSR_MIN = DEFAULT["dsr"].threshold  # 0.95: a nominal false-pass rate of 5 % for one untuned trial
PBO_MAX = DEFAULT["pbo"].threshold  # 0.5
NOMINAL = 1.0 - DSR_MIN
DAILY_VOL = 0.01


def searches(
    rng: np.random.Generator, n_days: int, n_trials: int, *, rho: float = 0.0, edge: float = 0.0, n_edge: int = 1
) -> np.ndarray:
    """One search's daily returns (days x trials): a common factor with correlation ``rho`` between trials
    plus each trial's own noise; the first ``n_edge`` trials earn an annualised Sharpe of ``edge``."""
    common = rng.standard_normal((n_days, 1))
    own = rng.standard_normal((n_days, n_trials))
    x = math.sqrt(rho) * common + math.sqrt(1.0 - rho) * own
    x[:, :n_edge] += edge / math.sqrt(252)
    return DAILY_VOL * x


def sharpes(m: np.ndarray) -> np.ndarray:
    return m.mean(axis=0) / m.std(axis=0, ddof=1)


def binomial_upper(rate: float, draws: int, alpha: float = 1e-3) -> float:
    """The largest pass rate out of ``draws`` still consistent with a true ``rate`` (one-sided, ``alpha``)."""
    return float(stats.binom.isf(alpha, draws, rate)) / draws


def gate_pass_rate(
    seed: int, draws: int, *, n_trials: int, rho: float = 0.0, edge: float = 0.0, n_is: int = 500, n_oos: int = 250,
    clustered: bool = True, n_edge: int = 1, null_variance: bool = False,
) -> float:
    """How often the DSR gate passes the way ``search gate`` uses it: the candidate is the trial with the
    best in-sample Sharpe, judged on its out-of-sample days against every trial's out-of-sample Sharpe,
    with the effective number of trials (``clustered``) or the raw count; V[SR] is the trials' Sharpe
    spread or (``null_variance``, what ``search gate`` uses) 1 / (T - 1) for their T out-of-sample days."""
    rng = np.random.default_rng(seed)
    passed = 0
    for _ in range(draws):
        m = searches(rng, n_is + n_oos, n_trials, rho=rho, edge=edge, n_edge=n_edge)
        in_sample, oos = m[:n_is], m[n_is:]
        best = int(np.argmax(sharpes(in_sample)))
        n = effective_number_of_trials(oos) if clustered else n_trials
        v = null_sharpe_variance(n_oos) if null_variance else None
        passed += deflated_sharpe_ratio(oos[:, best], trial_sharpes=sharpes(oos), n_trials=n, sr_variance=v).dsr >= DSR_MIN
    return passed / draws


def same_sample_pass_rate(seed: int, draws: int, *, n_trials: int, rho: float, clustered: bool) -> float:
    """The DSR paper's setting: the best trial is picked and judged on the same returns."""
    rng = np.random.default_rng(seed)
    passed = 0
    for _ in range(draws):
        m = searches(rng, 250, n_trials, rho=rho)
        sr = sharpes(m)
        best = int(np.argmax(sr))
        n = effective_number_of_trials(m) if clustered else n_trials
        passed += deflated_sharpe_ratio(m[:, best], trial_sharpes=sr, n_trials=n).dsr >= DSR_MIN
    return passed / draws


# -------------------------------------------------------------------------------------------- DSR, null


def test_one_trial_passes_at_the_nominal_rate() -> None:
    # With one trial there is nothing to deflate: DSR = PSR, whose p-value is uniform under the null.
    # Measured: 5.6 % of 2,000 draws (accepted: 3.6 % .. 6.6 %).
    rng = np.random.default_rng(1)
    draws = 2000
    rate = np.mean([
        deflated_sharpe_ratio(searches(rng, 250, 1)[:, 0], trial_sharpes=np.array([0.0])).dsr >= DSR_MIN
        for _ in range(draws)
    ])
    assert 1.0 - binomial_upper(1.0 - NOMINAL, draws) <= rate <= binomial_upper(NOMINAL, draws)


@pytest.mark.parametrize(
    "rho",
    [
        0.0,  # 50 independent noise trials: n_eff = 50; measured 0 of 400 passed
        0.5,  # n_eff ~ 19; measured 0.5 %
        0.8,  # one correlated family: n_eff = 1, DSR = PSR of an out-of-sample draw; measured 4.25 %
    ],
)
def test_dsr_gate_on_a_null_search_passes_at_most_its_nominal_rate(rho: float) -> None:
    draws = 400
    rate = gate_pass_rate(5, draws, n_trials=50, rho=rho)
    assert rate <= binomial_upper(NOMINAL, draws)  # 8.75 % for 400 draws at a true 5 %


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_dsr_gate_with_the_null_variance_passes_a_null_search_at_most_its_nominal_rate(rho: float) -> None:
    # search gate's DSR: V[SR] = 1 / (T - 1). Under the null the trials' spread estimates the same number.
    # Measured (400 draws each): rho 0 -> 0 %, 0.5 -> 0.25 %, 0.8 -> 4.25 %.
    draws = 400
    rate = gate_pass_rate(5, draws, n_trials=50, rho=rho, null_variance=True)
    assert rate <= binomial_upper(NOMINAL, draws)


def test_dsr_with_the_trials_spread_rejects_an_edge_most_trials_share() -> None:
    # A planted market: 40 of 50 trials carry an edge (Sharpe 6 here), most of them diluted. Their true
    # Sharpes spread, so the spread of the trials' Sharpes is signal, not selection noise, and the
    # benchmark rises with the edge: with V[SR] from the spread the best trial (true Sharpe 6, judged out
    # of sample) rarely passes, with the null variance it passes as often as a lone edge does.
    # Measured (100 draws): 94 % with the null variance, 0 % with the spread.
    def shared(null_variance: bool) -> float:
        rng = np.random.default_rng(8)
        passed = 0
        for _ in range(100):
            m = searches(rng, 750, 50)
            m[:, :40] += DAILY_VOL * 6.0 / math.sqrt(252) * np.linspace(1.0, -1.0, 40)  # skill from +6 to -6
            in_sample, oos = m[:500], m[500:]
            best = int(np.argmax(sharpes(in_sample)))
            v = null_sharpe_variance(250) if null_variance else None
            n = effective_number_of_trials(oos)
            passed += deflated_sharpe_ratio(oos[:, best], trial_sharpes=sharpes(oos), n_trials=n, sr_variance=v).dsr >= DSR_MIN
        return passed / 100

    assert shared(null_variance=True) >= 0.8 > 0.5 >= shared(null_variance=False)


def test_dsr_picked_and_judged_on_the_same_days_stays_below_nominal_with_the_raw_trial_count() -> None:
    # Measured: 50 trials correlated 0.8, 250 days: 4.25 % of 400 pass with N = 50 (raw); 1.75 % at 0.5.
    draws = 400
    rate = same_sample_pass_rate(2, draws, n_trials=50, rho=0.8, clustered=False)
    assert rate <= binomial_upper(NOMINAL, draws)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "finding: when every trial correlates above 0.5 the clustered trial count is 1, E[max SR] is 0 and "
        "the DSR of the best trial judged on the returns it was picked on is just its PSR; measured 25 % "
        "false passes (100 of 400) for 50 trials correlated 0.8 against a nominal 5 % (4.75 % at 0.5). "
        "search gate judges candidates out of sample (see the test above), where such a search passes 4.25 %."
    ),
)
def test_dsr_picked_and_judged_on_the_same_days_with_clustered_trials() -> None:
    draws = 400
    rate = same_sample_pass_rate(2, draws, n_trials=50, rho=0.8, clustered=True)
    assert rate <= binomial_upper(NOMINAL, draws)


# ------------------------------------------------------------------------------------------- DSR, power


def test_dsr_gate_power_for_a_real_edge() -> None:
    # One trial of 50 earns an annualised Sharpe of 6 (daily vol 1 %), 500 in-sample and 250
    # out-of-sample days. Measured pass rates for this setting, 200 draws each: Sharpe 2 -> 1 %,
    # 3 -> 8 %, 4 -> 32 %, 5 -> 72 %, 6 -> 92.5 %. The DSR gate needs a large edge over one year out of
    # sample; the bound below is ~6 binomial sds under the measured rate.
    rate = gate_pass_rate(6, 200, n_trials=50, edge=6.0)
    assert rate >= 0.8


# ------------------------------------------------------------------------------------------------- PBO


def pbo_values(seed: int, draws: int, **kwargs: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([
        probability_of_backtest_overfitting(searches(rng, 250, 50, **kwargs), n_blocks=16).pbo  # type: ignore[arg-type]
        for _ in range(draws)
    ])


def test_pbo_is_near_one_half_under_the_null() -> None:
    # 50 noise trials, 250 days, 16 blocks: measured mean 0.51 (10th-90th percentile 0.28 .. 0.74, 49 %
    # of draws above 0.5) over 100 draws; the best in-sample trial is a coin flip out of sample.
    values = pbo_values(4, 40)
    assert 0.4 <= values.mean() <= 0.6
    assert np.mean(values > PBO_MAX) >= 0.3  # the PBO gate rejects a large share of null searches


def test_pbo_is_low_with_a_real_edge() -> None:
    # 5 of 50 trials earn an annualised Sharpe of 3: measured mean 0.08 (90th percentile 0.15, none above
    # 0.5) over 100 draws; with a single such trial the mean was 0.28 and 9 % of draws exceeded 0.5.
    values = pbo_values(4, 40, edge=3.0, n_edge=5)
    assert values.mean() <= 0.2
    assert np.all(values <= PBO_MAX)
