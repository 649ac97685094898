"""Study-level statistics ``search gate`` reads from every trial record: the Sharpe variance and the
effective number of trials (for the DSR), and PBO by CSCV."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluator.metrics import sharpe_ratio
from evaluator.overfitting import (
    PBOResult,
    effective_number_of_trials,
    null_sharpe_variance,
    probability_of_backtest_overfitting,
)
from evaluator.wfo import TrialRecord
from search.return_series import MIN_COVERAGE, align, session_returns, stitched_validation

__all__ = ["PERIODS_PER_YEAR", "StudyStats", "study_stats"]

PERIODS_PER_YEAR = 252


@dataclass
class StudyStats:
    n_trials_raw: int
    n_trials_eff: float
    sr_variance: float  # the spread of the trials' validation Sharpes (``dsr_spread``)
    sr_variance_null: float  # 1 / (T - 1) for the trials' median validation length T (``dsr``)
    trial_sharpes: dict[int, float]  # per period, from stitched validation returns
    val_dropped: dict[int, str]
    pbo: PBOResult | None
    pbo_info: dict[str, Any]


def study_stats(
    records: Mapping[int, TrialRecord], *, n_blocks: int, min_coverage: float = MIN_COVERAGE
) -> StudyStats:
    validation = {n: stitched_validation(r) for n, r in records.items()}
    sharpes = {n: sharpe_ratio(s.returns, periods_per_year=1) for n, s in validation.items()}
    finite = np.array([v for v in sharpes.values() if math.isfinite(v)])
    aligned = align(validation, min_coverage=min_coverage)
    n_eff = float(effective_number_of_trials(aligned.matrix)) if aligned.numbers else math.nan
    pbo, info = _pbo(records, n_blocks=n_blocks, min_coverage=min_coverage)
    return StudyStats(
        n_trials_raw=len(records),
        n_trials_eff=n_eff,
        sr_variance=float(np.var(finite, ddof=1)) if finite.size >= 2 else 0.0,
        sr_variance_null=null_sharpe_variance(max(2, int(np.median([s.returns.size for s in validation.values()])))),
        trial_sharpes=sharpes,
        val_dropped=aligned.dropped,
        pbo=pbo,
        pbo_info=info,
    )


def _pbo(
    records: Mapping[int, TrialRecord], *, n_blocks: int, min_coverage: float
) -> tuple[PBOResult | None, dict[str, Any]]:
    aligned = align({n: session_returns(r) for n, r in records.items()}, min_coverage=min_coverage)
    rows, trials = aligned.matrix.shape
    info: dict[str, Any] = {
        "metric": "sharpe",
        "n_blocks_requested": n_blocks,
        "n_blocks": None,
        "n_sessions": rows,
        "n_trials": trials,
        "trials": aligned.numbers,
        "dropped": {str(k): v for k, v in aligned.dropped.items()},
        "first_session": str(aligned.dates[0]) if rows else None,
        "last_session": str(aligned.dates[-1]) if rows else None,
        "note": None,
    }
    if trials < 2:
        info["note"] = f"PBO needs at least 2 trials with returns; {trials} usable"
        return None, info
    blocks = min(n_blocks, rows // 2)
    blocks -= blocks % 2
    if blocks < 2:
        info["note"] = f"{rows} sessions are too few for CSCV (at least 4 needed)"
        return None, info
    if blocks != n_blocks:
        info["note"] = (
            f"{rows} sessions hold at most {blocks} blocks of 2 sessions; used S = {blocks} instead of {n_blocks}"
        )
    info["n_blocks"] = blocks
    return probability_of_backtest_overfitting(aligned.matrix, n_blocks=blocks), info
