"""Overfitting statistics computed from stored trial records (no extra backtests).

- Probabilistic and Deflated Sharpe ratio: D. H. Bailey and M. Lopez de Prado, "The Sharpe Ratio
  Efficient Frontier" (2012) and "The Deflated Sharpe Ratio: Correcting for Selection Bias, Backtest
  Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014.
- Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV):
  D. H. Bailey, J. Borwein, M. Lopez de Prado and Q. J. Zhu, "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4), 2017.
- Walk-forward efficiency (R. Pardo), parameter-neighbourhood stability and a trade-order bootstrap of
  the maximum drawdown.

Conventions: Sharpe ratios fed to the PSR/DSR formulas are *per period* (not annualised), kurtosis is
the plain (non-excess, normal = 3) fourth standardised moment, and skewness/kurtosis are the population
(biased) moments the formulas are derived with. Results that cannot be defined come back as ``nan``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from sklearn.cluster import AgglomerativeClustering

from evaluator.metrics import drawdown_series, sharpe_ratio

EULER_GAMMA = 0.5772156649015329
_NAN = float("nan")

__all__ = [
    "BootstrapResult",
    "DSRResult",
    "PBOResult",
    "StabilityResult",
    "bootstrap_max_drawdown",
    "deflated_sharpe_ratio",
    "effective_number_of_trials",
    "expected_max_sharpe",
    "parameter_stability",
    "null_sharpe_variance",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "stitched_sharpe",
    "walk_forward_efficiency",
]


# --------------------------------------------------------------------------------------------------
# Probabilistic and Deflated Sharpe ratio
# --------------------------------------------------------------------------------------------------


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """P(true Sharpe > ``sr_benchmark``) given an observed per-period Sharpe ``sr`` over ``n_obs`` returns.

    PSR = Phi((sr - sr*) * sqrt(n - 1) / sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr^2)).
    ``nan`` when ``n_obs < 2``, an input is not finite, or the variance term is not positive (impossible
    for real data: kurtosis >= 1 + skew^2 keeps it positive).
    """
    values = (sr, sr_benchmark, skew, kurtosis)
    if n_obs < 2 or not all(math.isfinite(v) for v in values):
        return _NAN
    variance_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not variance_term > 0.0:
        return _NAN
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance_term)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(sr_variance: float, n_trials: float) -> float:
    """Expected maximum of ``n_trials`` independent Sharpe estimates whose true Sharpe is 0.

    E[max SR] ~= sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e))), with gamma the
    Euler-Mascheroni constant; ``V`` is the variance of the trials' Sharpe ratios, in the same units as the
    Sharpe being tested. One trial (or fewer) carries no selection bias: 0.0.
    """
    if not (math.isfinite(sr_variance) and sr_variance >= 0.0):
        raise ValueError(f"sr_variance must be a finite number >= 0, got {sr_variance!r}")
    if not math.isfinite(n_trials):
        raise ValueError(f"n_trials must be finite, got {n_trials!r}")
    if n_trials <= 1.0:
        return 0.0
    z = (1.0 - EULER_GAMMA) * stats.norm.ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * stats.norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(sr_variance) * z)


@dataclass(frozen=True)
class DSRResult:
    """Deflated Sharpe ratio of one selected strategy; Sharpe values are per period (not annualised)."""

    sr: float  # observed Sharpe of the selected strategy
    sr0: float  # expected maximum Sharpe of n_trials skill-less trials: the deflated benchmark
    psr: float  # P(true Sharpe > 0)
    dsr: float  # P(true Sharpe > sr0)
    n_obs: int
    skew: float
    kurtosis: float  # non-excess (normal = 3)
    n_trials: float
    sr_variance: float  # V[SR] behind sr0: the trials' spread (ddof=1) or the given null variance


def null_sharpe_variance(n_obs: int) -> float:
    """Variance of a per-period Sharpe estimate over ``n_obs`` returns whose true Sharpe is 0: 1 / (n - 1).

    The DSR's null hypothesis is that no trial has skill; under it every trial's Sharpe is such an
    estimate (Mertens' variance at SR = 0, whatever the skew and kurtosis), so this is the V[SR] the
    expected maximum needs. The variance across the trials' Sharpes estimates the same number only when
    the null holds for all of them: where some trials have real skill it adds the spread of their true
    Sharpes (signal, not selection noise) and the benchmark grows with the edge itself.
    """
    if n_obs < 2:
        raise ValueError(f"a Sharpe estimate needs at least 2 returns, got n_obs={n_obs!r}")
    return 1.0 / (n_obs - 1)


def deflated_sharpe_ratio(
    returns: np.ndarray,
    *,
    trial_sharpes: np.ndarray,
    n_trials: float | None = None,
    sr_variance: float | None = None,
) -> DSRResult:
    """Deflated Sharpe ratio of the strategy with per-period ``returns``, selected among many trials.

    Args:
        returns: the selected strategy's per-period (e.g. daily out-of-sample) returns.
        trial_sharpes: per-period Sharpe ratios of every trial of the search, same periodicity as
            ``returns`` (divide annualised values by sqrt(periods_per_year)). Non-finite entries (failed
            trials) are dropped; their variance (ddof=1) is V[SR] unless ``sr_variance`` is given.
        n_trials: the number of independent trials N; defaults to the count of finite ``trial_sharpes``.
            Pass :func:`effective_number_of_trials` when trials are strongly correlated.
        sr_variance: V[SR] of the trials' Sharpe estimates under the null, e.g.
            :func:`null_sharpe_variance` of their sample length; default: the trials' observed spread.
    """
    r = np.asarray(returns, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    sharpes = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    sharpes = sharpes[np.isfinite(sharpes)]
    n_eff = float(sharpes.size if n_trials is None else n_trials)
    if sr_variance is None:
        sr_variance = float(np.var(sharpes, ddof=1)) if sharpes.size >= 2 else 0.0
    sr0 = expected_max_sharpe(sr_variance, n_eff)

    sr = sharpe_ratio(r, periods_per_year=1)
    if r.size >= 3 and math.isfinite(sr):
        skew = float(stats.skew(r, bias=True))
        kurt = float(stats.kurtosis(r, fisher=False, bias=True))
    else:
        skew, kurt = _NAN, _NAN
    return DSRResult(
        sr=sr,
        sr0=sr0,
        psr=probabilistic_sharpe_ratio(sr, 0.0, r.size, skew, kurt),
        dsr=probabilistic_sharpe_ratio(sr, sr0, r.size, skew, kurt),
        n_obs=int(r.size),
        skew=skew,
        kurtosis=kurt,
        n_trials=n_eff,
        sr_variance=sr_variance,
    )


def effective_number_of_trials(returns_matrix: np.ndarray, *, threshold: float = 0.5) -> int:
    """Number of clusters of trials whose return series (the columns) move together.

    Correlation distance d = sqrt((1 - rho) / 2) (0 for identical series, ~0.71 for independent ones),
    complete-linkage agglomerative clustering cut at ``threshold`` (0.5 <=> every pair in a cluster has
    rho > 0.5). Complete linkage is the conservative choice: it keeps more clusters, hence a larger N and
    a stricter DSR. Columns with zero variance (trials that never traded) form one cluster together.
    """
    m = np.asarray(returns_matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(
            f"returns_matrix must be 2-D (periods x trials) with >= 1 column, got shape {m.shape}"
        )
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold is a correlation distance in (0, 1], got {threshold!r}")
    if not np.all(np.isfinite(m)):
        raise ValueError(
            "returns_matrix contains nan or inf; fill non-trading periods with 0.0 returns first"
        )
    std = m.std(axis=0)
    varying = m[:, std > 0]
    flat_clusters = int(np.any(std == 0))
    if varying.shape[1] <= 1:
        return varying.shape[1] + flat_clusters
    rho = np.clip(np.corrcoef(varying, rowvar=False), -1.0, 1.0)
    dist = np.sqrt(0.5 * (1.0 - rho))
    np.fill_diagonal(dist, 0.0)
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="complete", distance_threshold=threshold
    )
    model.fit(dist)
    return int(model.n_clusters_) + flat_clusters


# --------------------------------------------------------------------------------------------------
# Probability of backtest overfitting (CSCV)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PBOResult:
    """Outcome of CSCV over every split of the blocks into equal in-sample and out-of-sample halves."""

    pbo: float  # fraction of splits whose IS-best trial ranks in the lower OOS half (logit <= 0)
    logits: np.ndarray  # logit of the IS-best trial's relative OOS rank, one per split
    is_performance: np.ndarray  # IS metric of the IS-best trial, one per split
    oos_performance: np.ndarray  # OOS metric of that same trial: pairs with is_performance
    n_blocks: int
    n_combinations: int
    degradation_slope: float  # least-squares slope of oos_performance on is_performance
    prob_oos_loss: float  # fraction of splits where the IS-best trial's OOS metric is < 0


def _combination_masks(n_blocks: int) -> np.ndarray:
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)), dtype=np.intp)
    masks = np.zeros((combos.shape[0], n_blocks), dtype=bool)
    masks[np.arange(combos.shape[0])[:, None], combos] = True
    return masks


def probability_of_backtest_overfitting(
    perf_matrix: np.ndarray,
    *,
    n_blocks: int = 16,
    metric: Literal["sharpe", "mean"] | Callable[[np.ndarray], np.ndarray] = "sharpe",
) -> PBOResult:
    """PBO by combinatorially symmetric cross-validation.

    ``perf_matrix`` is periods x trials (e.g. daily returns, one column per trial). Its rows are cut into
    ``n_blocks`` contiguous blocks (sizes differ by at most one row); every choice of half the blocks is an
    in-sample set and the rest its out-of-sample set (C(16, 8) = 12,870 splits). For each split the trial
    with the best IS metric is found, its OOS rank r among the N trials (1 = worst, ties averaged) gives
    w = r / (N + 1) and the logit ln(w / (1 - w)). PBO is the fraction of logits <= 0.

    ``metric``: ``"sharpe"`` (per-period mean / std, ddof=1) or ``"mean"`` are computed for all splits at
    once from per-block sums; a callable maps a rows x trials matrix to one value per trial and is called
    twice per split (general, much slower). A trial whose metric is nan ranks below every other.
    """
    m = np.asarray(perf_matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"perf_matrix must be 2-D (periods x trials), got shape {m.shape}")
    n_rows, n_trials = m.shape
    if n_trials < 2:
        raise ValueError(f"PBO needs at least 2 trials (columns) to rank, got {n_trials}")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    if n_rows < 2 * n_blocks:
        raise ValueError(
            f"perf_matrix has {n_rows} rows but {n_blocks} blocks need at least {2 * n_blocks} "
            "(two periods per block); use fewer blocks or more data"
        )
    if not np.all(np.isfinite(m)):
        raise ValueError("perf_matrix contains nan or inf; fill non-trading periods with 0.0 returns first")

    masks = _combination_masks(n_blocks)
    bounds = np.linspace(0, n_rows, n_blocks + 1).round().astype(np.intp)
    if callable(metric):
        is_perf = np.empty((masks.shape[0], n_trials))
        oos_perf = np.empty_like(is_perf)
        row_block = np.repeat(np.arange(n_blocks), np.diff(bounds))
        for i, mask in enumerate(masks):
            in_sample = mask[row_block]
            is_perf[i] = np.asarray(metric(m[in_sample]), dtype=np.float64)
            oos_perf[i] = np.asarray(metric(m[~in_sample]), dtype=np.float64)
    elif metric in ("sharpe", "mean"):
        starts = bounds[:-1]
        counts = np.diff(bounds).astype(np.float64)
        # Centre each column first so that the sum-of-squares variance keeps its precision.
        shift = m.mean(axis=0)
        centred = m - shift
        sums = np.add.reduceat(centred, starts, axis=0)
        squares = np.add.reduceat(centred * centred, starts, axis=0)
        is_perf = _split_metric(masks, counts, sums, squares, shift, metric)
        oos_perf = _split_metric(~masks, counts, sums, squares, shift, metric)
    else:
        raise ValueError(f"metric must be 'sharpe', 'mean' or a callable, got {metric!r}")

    ranked_is = np.where(np.isnan(is_perf), -np.inf, is_perf)
    best = np.argmax(ranked_is, axis=1)
    rows = np.arange(masks.shape[0])
    chosen_is = is_perf[rows, best]
    chosen_oos = oos_perf[rows, best]
    oos = np.where(np.isnan(oos_perf), -np.inf, oos_perf)
    target = oos[rows, best][:, None]
    below = np.count_nonzero(oos < target, axis=1)
    ties = np.count_nonzero(oos == target, axis=1)  # includes the chosen trial itself
    rank = below + (ties + 1) / 2.0
    w = rank / (n_trials + 1.0)
    logits = np.log(w / (1.0 - w))

    finite = np.isfinite(chosen_is) & np.isfinite(chosen_oos)
    slope = _NAN
    if np.count_nonzero(finite) >= 2 and np.ptp(chosen_is[finite]) > 0:
        slope = float(np.polyfit(chosen_is[finite], chosen_oos[finite], 1)[0])
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        is_performance=chosen_is,
        oos_performance=chosen_oos,
        n_blocks=n_blocks,
        n_combinations=int(masks.shape[0]),
        degradation_slope=slope,
        prob_oos_loss=float(np.mean(chosen_oos < 0.0)),
    )


def _split_metric(
    masks: np.ndarray, counts: np.ndarray, sums: np.ndarray, squares: np.ndarray, shift: np.ndarray, kind: str
) -> np.ndarray:
    """Metric per split (row) and trial (column) from per-block sums: matrix products instead of a loop."""
    w = masks.astype(np.float64)
    n = (w @ counts)[:, None]
    centred_mean = (w @ sums) / n
    mean = centred_mean + shift
    if kind == "mean":
        return mean
    second = (w @ squares) / n
    var = (second - centred_mean * centred_mean) * (n / (n - 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        # Relative floor: rounding leaves ~1e-16 x second moment in var for a column constant in the split.
        return np.where(var > 1e-12 * second, mean / np.sqrt(var), np.nan)


# --------------------------------------------------------------------------------------------------
# Walk-forward efficiency and stitched out-of-sample Sharpe
# --------------------------------------------------------------------------------------------------


def _flatten(returns: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(returns, np.ndarray):
        return returns.astype(np.float64).ravel()
    parts = [np.asarray(part, dtype=np.float64).ravel() for part in returns]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def walk_forward_efficiency(
    is_returns: np.ndarray | Sequence[np.ndarray],
    oos_returns: np.ndarray | Sequence[np.ndarray],
    periods_per_year: int = 252,
) -> float:
    """Annualised OOS return / annualised IS return (Pardo's walk-forward efficiency).

    Each side is a return array or a sequence of per-fold arrays (concatenated). Annualised return is
    the arithmetic mean per period * ``periods_per_year``, so windows of different lengths compare fairly
    and one bad day cannot flip a compounding sign. 1.0 = OOS kept the whole IS rate; Pardo suggests
    >= 0.5. ``nan`` when either side is empty or IS did not make money (mean <= 0): the ratio then has no
    meaning (a negative OOS over a negative IS would read as "efficient").
    An alternative is the ratio of Sharpe ratios (OOS / IS), which also penalises extra OOS volatility.
    """
    is_r = _flatten(is_returns)
    oos_r = _flatten(oos_returns)
    if is_r.size == 0 or oos_r.size == 0:
        return _NAN
    is_annual = float(np.mean(is_r)) * periods_per_year
    oos_annual = float(np.mean(oos_r)) * periods_per_year
    if not (math.isfinite(is_annual) and is_annual > 0.0 and math.isfinite(oos_annual)):
        return _NAN
    return oos_annual / is_annual


def stitched_sharpe(oos_segments: Sequence[np.ndarray], *, periods_per_year: int = 252) -> float:
    """Annualised Sharpe of the out-of-sample segments joined in order (what walk-forward would have earned).

    Same definition as ``compute_metrics(...)["sharpe"]``; ``nan`` with < 2 returns or zero volatility.
    """
    return sharpe_ratio(_flatten(oos_segments), periods_per_year)


# --------------------------------------------------------------------------------------------------
# Parameter stability
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StabilityResult:
    """How the objective behaves in the candidate's neighbourhood of the parameter space."""

    candidate_value: float
    n_neighbours: int  # neighbours with a finite objective value
    n_invalid: int  # neighbours whose objective is nan/inf (failed trials)
    median: float  # median neighbour objective (nan without neighbours)
    fraction_within: float  # neighbours within `tolerance` x |candidate| of the candidate's value
    fraction_positive: float  # neighbours with objective > 0
    stability_ratio: float  # median / candidate_value (nan if no neighbours or candidate == 0)
    neighbour_values: np.ndarray


def _is_numeric(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def parameter_stability(
    candidate: Mapping[str, float | str],
    trials: Sequence[tuple[Mapping[str, float | str], float]],
    *,
    space_ranges: Mapping[str, tuple[float, float]] | None = None,
    radius: float = 0.1,
    candidate_value: float | None = None,
    tolerance: float = 0.2,
) -> StabilityResult:
    """Objective values of the trials near ``candidate`` (a sharp peak among poor neighbours is a warning).

    A trial is a neighbour when it has the same parameter names, equal categorical values (str/bool), and
    every numeric parameter within ``radius`` x the parameter's range of the candidate's (Chebyshev
    distance in the normalised space; a per-parameter box is easier to reason about than a Euclidean ball
    whose volume shrinks with the dimension). Ranges come from ``space_ranges`` or, for parameters not in
    it, from the min..max seen in ``trials`` and the candidate. Trials with exactly the candidate's
    parameters are not neighbours (they repeat the candidate); the first of them supplies
    ``candidate_value`` when it is not given.
    """
    if not radius > 0:
        raise ValueError(f"radius must be > 0 (fraction of each parameter's range), got {radius!r}")
    params = dict(candidate)
    numeric = sorted(k for k, v in params.items() if _is_numeric(v))
    ranges: dict[str, tuple[float, float]] = {}
    for key in numeric:
        if space_ranges is not None and key in space_ranges:
            low, high = (float(x) for x in space_ranges[key])
        else:
            seen = [float(p[key]) for p, _ in trials if key in p and _is_numeric(p[key])]
            seen.append(float(params[key]))
            low, high = min(seen), max(seen)
        ranges[key] = (low, high)

    value = candidate_value
    values: list[float] = []
    for trial_params, objective in trials:
        if set(trial_params) != set(params):
            continue
        same = True
        near = True
        for key, c in params.items():
            t = trial_params[key]
            if key in ranges:
                if not _is_numeric(t):
                    near = False
                    break
                low, high = ranges[key]
                diff = abs(float(t) - float(c))
                same = same and diff == 0.0
                width = high - low
                # The epsilon keeps grid points exactly `radius` away inside despite float rounding (0.55 - 0.5 > 0.05).
                if (width > 0 and diff / width > radius + 1e-9) or (width <= 0 and diff > 0):
                    near = False
                    break
            elif t != c:
                near = False
                break
        if not near:
            continue
        if same:
            if value is None:
                value = float(objective)
            continue
        values.append(float(objective))

    if value is None:
        raise ValueError(
            "candidate_value was not given and no trial has exactly the candidate's parameters "
            f"{params!r}; pass candidate_value="
        )
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    n = int(finite.size)
    median = float(np.median(finite)) if n else _NAN
    return StabilityResult(
        candidate_value=float(value),
        n_neighbours=n,
        n_invalid=int(arr.size - n),
        median=median,
        fraction_within=float(np.mean(np.abs(finite - value) <= tolerance * abs(value))) if n else _NAN,
        fraction_positive=float(np.mean(finite > 0)) if n else _NAN,
        stability_ratio=median / value if n and value != 0 and math.isfinite(value) else _NAN,
        neighbour_values=finite,
    )


# --------------------------------------------------------------------------------------------------
# Bootstrap of the maximum drawdown
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """Distribution of the max drawdown over resampled trade sequences (positive fractions of the peak)."""

    observed: float  # max drawdown of the trades in their actual order
    max_drawdowns: np.ndarray  # one per bootstrap sample
    mean: float
    p50: float
    p95: float
    p99: float

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.max_drawdowns, q)) if self.max_drawdowns.size else 0.0


def _max_drawdowns(paths: np.ndarray, initial_cash: float) -> np.ndarray:
    peak = np.maximum(np.maximum.accumulate(paths, axis=1), initial_cash)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - paths) / peak, 0.0)
    return dd.max(axis=1)


def bootstrap_max_drawdown(
    trade_pnls: np.ndarray, *, initial_cash: float, n_samples: int = 2000, seed: int = 0
) -> BootstrapResult:
    """Max drawdown when the same trades arrive in another order: resample with replacement.

    Equity after trade k is ``initial_cash + cumsum(pnl)`` (PnL in currency, fixed position sizing), the
    peak starts at ``initial_cash``. The observed drawdown is often luckier than the p95 of this
    distribution; size risk on the p95. Deterministic for a given ``seed``. No trades: all zeros.
    """
    pnls = np.asarray(trade_pnls, dtype=np.float64).ravel()
    if not (math.isfinite(initial_cash) and initial_cash > 0):
        raise ValueError(f"initial_cash must be a positive finite number, got {initial_cash!r}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
    if not np.all(np.isfinite(pnls)):
        raise ValueError(f"trade_pnls[{int(np.flatnonzero(~np.isfinite(pnls))[0])}] is not finite")
    if pnls.size == 0:
        zeros = np.zeros(n_samples)
        return BootstrapResult(observed=0.0, max_drawdowns=zeros, mean=0.0, p50=0.0, p95=0.0, p99=0.0)

    observed = float(drawdown_series(np.concatenate(([initial_cash], initial_cash + np.cumsum(pnls)))).max())
    rng = np.random.default_rng(seed)
    out = np.empty(n_samples)
    # Chunks bound memory to ~chunk x n_trades floats whatever the sample count.
    chunk = max(1, min(n_samples, 4_000_000 // pnls.size))
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        idx = rng.integers(0, pnls.size, size=(stop - start, pnls.size))
        out[start:stop] = _max_drawdowns(initial_cash + np.cumsum(pnls[idx], axis=1), initial_cash)
    p50, p95, p99 = (float(x) for x in np.percentile(out, [50, 95, 99]))
    return BootstrapResult(
        observed=observed, max_drawdowns=out, mean=float(out.mean()), p50=p50, p95=p95, p99=p99
    )
