"""``search gate`` as a function: overfitting checks first, then KPI gates, for a study's best candidates.

Out-of-sample means unseen. The study's objective read only the folds' training windows, and a later
fold's training window covers an earlier fold's test window, so the fold test windows are *validation*
windows: the search saw them. The only out-of-sample data is the **holdout** the study recorded (the
last sessions of the data window, see :func:`evaluator.walkforward.make_layout`), which no objective,
constraint, candidate ranking or fold pick read. It is opened here, for the chosen candidates only: each
candidate's spec is run with the fast engine on the holdout window (and, as a check that the records
still reproduce, on its validation windows).

Study level (every COMPLETE trial with a record; all of it validation data, chosen without the holdout):

* each trial's stitched validation daily returns and their per-period Sharpe ratios: the variance
  V[SR] the DSR deflates with (how much Sharpe the best of N tries shows by luck);
* the effective number of independent trials: correlation clustering of those validation series;
* PBO by CSCV over a sessions x trials matrix: each trial's return on every session its record holds
  (the validation return where the session lies in a test window, else the in-sample return of the
  first fold whose training window holds it). Trials covering fewer than ``min_coverage`` of the
  sessions are dropped and listed; remaining gaps are 0.0. PBO measures the selection process itself.

Per candidate (the ``top`` feasible COMPLETE trials by the first objective, an in-sample mean):

* DSR of its **holdout** daily returns with N = the raw trial count (``dsr_raw``) and N = the effective
  count (``dsr``, the default gate): the holdout Sharpe must beat what the best of N noise trials shows;
* WFE: annualised mean holdout return / annualised mean in-sample return over its folds;
* parameter stability: the study's trials within 10 % of each numeric parameter's range (log-scale
  parameters measured in log space) with equal categorical values (in-sample objective values);
* the bootstrap of the max drawdown over its holdout trades (``max_drawdown_p95``);
* KPI metrics of the holdout run (the engine's own metrics over the holdout window).

The gates (:func:`evaluator.gates.evaluate_gates`) reject a candidate at the overfitting stage before
any KPI is read. Gate configuration: :meth:`GateConfig.default`, then the space's ``gates`` mapping,
then a ``--gates`` YAML file (see :func:`apply_overrides`).

Where the verdicts go: ``<study folder>/gates/`` (gates.csv, gates.json, pbo.json, candidate_<rank>/),
the study user attribute ``gate``, and a note on each candidate trial that optuna-dashboard shows on
the trial's page. (Optuna 5.0 refuses user attributes on finished trials: ``set_trial_user_attr``
raises ``UpdateFinishedTrialError`` on every storage, so the trial note is the per-trial record.)
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
import yaml
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from data.store import Store
from evaluator.fast import run as fast_run
from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.gates import GateConfig, GateConfigError, Verdict, evaluate_gates
from evaluator.market import Market, load_market, market_key, signal_symbol
from evaluator.metrics import METRIC_KEYS, compute_metrics, sharpe_ratio
from evaluator.overfitting import (
    BootstrapResult,
    DSRResult,
    PBOResult,
    StabilityResult,
    bootstrap_max_drawdown,
    deflated_sharpe_ratio,
    effective_number_of_trials,
    parameter_stability,
    probability_of_backtest_overfitting,
    walk_forward_efficiency,
)
from evaluator.results import BacktestResult, position_pnls
from evaluator.wfo import TrialRecord
from search.records import load_records, study_dir
from search.study import directions_of, mask_url, open_storage, storage_url
from spec_space.models import StrategySpec
from spec_space.space import FloatParam, IntParam, SpecSpace

__all__ = [
    "GATE_FORMAT",
    "GATE_METRICS",
    "CandidateResult",
    "GateRunConfig",
    "GateSetupError",
    "GateSummary",
    "apply_overrides",
    "fold_daily_frame",
    "gates_folder",
    "load_study_space",
    "records_folder",
    "resolve_gate_config",
    "run_gates",
    "select_candidates",
    "session_returns",
    "stitched_validation",
]

GATE_FORMAT = 1
PERIODS_PER_YEAR = 252

#: Metrics a gate may test, with what ``search gate`` puts behind each name.
GATE_METRICS: dict[str, str] = {
    "dsr": "deflated Sharpe ratio of the holdout returns, N = effective number of trials",
    "dsr_raw": "deflated Sharpe ratio of the holdout returns, N = raw count of COMPLETE trials",
    "psr": "probabilistic Sharpe ratio P(true Sharpe > 0) of the holdout returns",
    "pbo": "probability of backtest overfitting of the study (CSCV); the same for every candidate",
    "wfe": "walk-forward efficiency: annualised mean holdout return / annualised mean IS return",
    "stability_ratio": "median objective of the parameter neighbours / the candidate's objective",
    "stability_within": "fraction of parameter neighbours within 20 % of the candidate's objective",
    "stability_neighbours": "number of parameter neighbours among the study's trials",
    "max_drawdown_p95": "95th percentile of the max drawdown over bootstrap re-orderings of the holdout trades",
    **{key: f"holdout (out-of-sample) {key}" for key in METRIC_KEYS},
}

#: Trials covering fewer sessions than this fraction of the matrix are left out of PBO / N_eff.
MIN_COVERAGE = 0.9
NOTE_BEGIN = "#### search gate verdict"
NOTE_END = "_end of search gate verdict_"


class GateSetupError(RuntimeError):
    """``search gate`` cannot run on this study; the message says what to fix."""


# ---------------------------------------------------------------------------------------- gate config


def apply_overrides(config: GateConfig, overrides: Any, *, source: str) -> GateConfig:
    """``config`` changed by an override mapping (a space's ``gates`` field or a ``--gates`` YAML file).

    Two forms:

    * ``{"gates": [{metric, op, threshold, stage, name?}, ...]}``: a full list that replaces ``config``;
    * gate name -> change, applied to the gate of that name: a number sets its threshold; a mapping
      updates its fields (``metric``, ``op``, ``threshold``, ``stage``); ``null`` / ``false`` removes it;
      an unknown name adds a gate (``metric`` defaults to the name; ``op``, ``threshold``, ``stage``
      are required). Overfitting gates stay ahead of KPI gates.

    Raises:
        GateConfigError: naming ``source``, the gate and the field.
    """
    if overrides is None:
        return config
    if not isinstance(overrides, Mapping):
        raise GateConfigError(
            f"{source}: expected a mapping (gate name -> threshold / fields / null, or a 'gates' list), "
            f"got {type(overrides).__name__}"
        )
    if "gates" in overrides:
        extra = sorted(str(k) for k in overrides if k != "gates")
        if extra:
            raise GateConfigError(
                f"{source}: 'gates' (a full list replacing the defaults) cannot be combined with per-gate "
                f"overrides ({', '.join(extra)}); use one form"
            )
        return GateConfig.from_mapping(overrides, source=source)
    gates: list[dict[str, Any]] = [g.model_dump() for g in config.gates]
    for raw_name, change in overrides.items():
        name = str(raw_name)
        where = f"{source}: gate {name!r}"
        current = next((g for g in gates if g["name"] == name), None)
        if change is None or change is False:
            if current is None:
                raise GateConfigError(
                    f"{where}: null removes a gate, but there is no gate of that name; gates: "
                    f"{', '.join(g['name'] for g in gates) or 'none'}"
                )
            gates.remove(current)
            continue
        if isinstance(change, bool) or not isinstance(change, int | float | Mapping):
            raise GateConfigError(
                f"{where}: expected a threshold number, a mapping of fields (metric, op, threshold, stage) "
                f"or null to remove the gate; got {change!r}"
            )
        fields = {"threshold": change} if isinstance(change, int | float) else dict(change)
        if current is not None:
            current.update(fields)
        else:
            gates.append({"name": name, "metric": name, **fields})
    # stable: each stage keeps its order, overfitting gates first (GateConfig requires it)
    gates.sort(key=lambda g: 0 if g.get("stage") == "overfitting" else 1)
    return _validated(gates, source)


def _validated(gates: list[dict[str, Any]], source: str) -> GateConfig:
    """``GateConfig`` of ``gates`` with errors naming the gate (not its list index) and the field."""
    try:
        return GateConfig.model_validate({"gates": gates})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            if len(loc) >= 2 and loc[0] == "gates" and isinstance(loc[1], int) and loc[1] < len(gates):
                where = f"gate {gates[loc[1]].get('name')!r}"
                field_path = ".".join(str(p) for p in loc[2:]) or "(gate)"
                problems.append(f"{where}: {field_path}: {err['msg']}")
            else:
                problems.append(f"{'.'.join(str(p) for p in loc) or '(top level)'}: {err['msg']}")
        raise GateConfigError(f"{source}: invalid gate configuration: {'; '.join(problems)}") from None


def _check_metrics(config: GateConfig, sources: Sequence[str]) -> None:
    unknown = [g for g in config.gates if g.metric not in GATE_METRICS]
    if unknown:
        listed = ", ".join(f"{g.name!r} (metric {g.metric!r})" for g in unknown)
        raise GateConfigError(
            f"{' + '.join(sources)}: gate(s) {listed} test a metric search gate does not compute; "
            f"use one of {', '.join(GATE_METRICS)}"
        )


def resolve_gate_config(
    space: SpecSpace | None, gates_file: str | Path | None
) -> tuple[GateConfig, list[str]]:
    """The defaults, overridden by ``space.gates``, then by the YAML file ``gates_file``; also the sources."""
    config = GateConfig.default()
    sources = ["defaults"]
    if space is not None and space.gates:
        config = apply_overrides(config, space.gates, source=f"space {space.name!r}: gates")
        sources.append(f"space {space.name!r}")
    if gates_file is not None:
        path = Path(gates_file)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GateConfigError(f"{path}: gate file not found; check the --gates path") from None
        except yaml.YAMLError as exc:
            raise GateConfigError(f"{path}: not valid YAML: {exc}") from None
        config = apply_overrides(config, data, source=str(path))
        sources.append(str(path))
    _check_metrics(config, sources)
    return config, sources


# ---------------------------------------------------------------------------------------- series


@dataclass(frozen=True)
class Series:
    dates: np.ndarray  # datetime64[D], strictly increasing
    returns: np.ndarray


def _folds(record: TrialRecord) -> list[Any]:
    return sorted(record.folds, key=lambda f: f.fold)


def stitched_validation(record: TrialRecord) -> Series:
    """The trial's validation segments in fold order (test windows never overlap, so the dates increase)."""
    folds = _folds(record)
    if not folds:
        return Series(np.empty(0, "datetime64[D]"), np.empty(0))
    return Series(
        np.concatenate([np.asarray(f.val_dates, "datetime64[D]") for f in folds]),
        np.concatenate([np.asarray(f.val_returns, np.float64) for f in folds]),
    )


def session_returns(record: TrialRecord) -> Series:
    """One return per recorded session: validation where the session is in a test window, else the first fold's IS."""
    folds = _folds(record)
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
    for f in _folds(record):
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


# ---------------------------------------------------------------------------------------- study


def load_study_space(study: optuna.Study) -> SpecSpace:
    """The space the study searched, from the YAML text its provenance holds."""
    text = study.user_attrs.get("space_text")
    if not text:
        raise GateSetupError(
            f"study {study.study_name!r} has no 'space_text' attribute: it was not created by `search run`, "
            "so its space (and the specs of its trials) is unknown"
        )
    try:
        return SpecSpace.model_validate(yaml.safe_load(text))
    except Exception as exc:  # noqa: BLE001 - any parse/validation failure means the same thing here
        raise GateSetupError(
            f"study {study.study_name!r}: its stored space no longer validates with this code ({exc}); "
            "gate it with the code version that ran it"
        ) from None


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def select_candidates(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best feasible COMPLETE trials by the study's first objective (ties: lower number)."""
    sign = 1.0 if directions_of(study)[0] == "maximize" else -1.0
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _feasible(t)]
    return sorted(complete, key=lambda t: (-sign * t.values[0], t.number))[:k]


def gates_folder(study: optuna.Study, studies_root: Path) -> Path:
    """``<study folder>/gates``: next to the trial records (the study's ``records_dir`` when it exists)."""
    return records_folder(study, studies_root) / "gates"


def records_folder(study: optuna.Study, studies_root: Path) -> Path:
    stored = study.user_attrs.get("records_dir")
    if stored and Path(stored).is_dir():
        return Path(stored)
    return study_dir(studies_root, study.study_name)


@dataclass
class StudyStats:
    n_trials_raw: int
    n_trials_eff: float
    sr_variance: float
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


# ---------------------------------------------------------------------------------------- candidates


@dataclass
class CandidateResult:
    rank: int
    number: int
    params: dict[str, Any]
    objectives: dict[str, float]
    values: dict[str, float]  # everything the gates may read
    verdict: Verdict
    dsr: DSRResult
    dsr_raw: DSRResult
    stability: StabilityResult
    bootstrap: BootstrapResult
    holdout_metrics: dict[str, float]  # the KPIs: the holdout run's metrics
    val_metrics: dict[str, float]  # the stitched validation windows, for comparison only
    trades: pl.DataFrame = field(repr=False)  # holdout trades
    validation_trades: pl.DataFrame = field(repr=False)
    daily: pl.DataFrame = field(repr=False)
    rerun: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None


class _Markets:
    """Markets loaded once per traded instrument / bar size (candidates of one space usually share one)."""

    def __init__(self, store: Store, space: SpecSpace) -> None:
        self.store = store
        self.space = space
        self._cache: dict[tuple[object, ...], Market] = {}

    def get(self, spec: StrategySpec) -> Market:
        key = market_key(spec)  # the executor's key: what load_market reads
        if key not in self._cache:
            self._cache[key] = load_market(self.store, spec, self.space.data.start, self.space.data.end)
        return self._cache[key]


def _rerun(
    spec: StrategySpec, market: Market, folds: Mapping[int, Mapping[str, str]], record: TrialRecord
) -> tuple[pl.DataFrame, list[BacktestResult], dict[str, Any]]:
    """The candidate's validation windows re-run: trades (with a fold column), results, and the record check."""
    frames: list[pl.DataFrame] = []
    results: list[BacktestResult] = []
    worst = 0.0
    lengths_match = True
    for f in _folds(record):
        window = folds.get(f.fold)
        if window is None:
            raise GateSetupError(
                f"trial {record.number}: fold {f.fold} of its record is not among the study's folds "
                f"({sorted(folds)}); the record and the study disagree"
            )
        result = fast_run(
            spec,
            market,
            dt.date.fromisoformat(window["test_start"]),
            dt.date.fromisoformat(window["test_end"]),
        )
        results.append(result)
        frames.append(
            result.trades.with_columns(pl.lit(f.fold, dtype=pl.Int64).alias("fold")).select(
                "fold", *result.trades.columns
            )
        )
        recorded = np.asarray(f.val_returns, np.float64)
        again = result.daily_returns
        if recorded.shape != again.shape:
            lengths_match = False
        elif recorded.size:
            worst = max(worst, float(np.max(np.abs(recorded - again))))
    trades = pl.concat(frames) if frames else pl.DataFrame()
    recorded_trades = sum(
        int(f.val_metrics.get("n_trades", 0.0))
        for f in record.folds
        if math.isfinite(f.val_metrics.get("n_trades", 0.0))
    )
    check = {
        "engine": "fast",
        "max_abs_return_diff": worst if lengths_match else None,
        "sessions_match": lengths_match,
        "n_trades_record": recorded_trades,
        "n_trades_rerun": int(position_pnls(trades).size),  # positions, as the records count them
    }
    # 1e-9: returns are recomputed from the same float equity; anything larger means other data or code
    check["matches_record"] = bool(
        lengths_match and worst <= 1e-9 and recorded_trades == check["n_trades_rerun"]
    )
    return trades, results, check


def _chained_bar_equity(results: Sequence[BacktestResult], initial_cash: float) -> np.ndarray | None:
    """The windows' bar-marked equity as one account: each window starts from the previous one's end."""
    if not results:
        return None
    level = initial_cash
    parts = []
    for r in results:
        if len(r.bar_equity) == 0:
            continue
        part = np.asarray(r.bar_equity, np.float64) / initial_cash * level
        parts.append(part)
        level = float(part[-1])
    return np.concatenate(parts) if parts else None


def _stability(space: SpecSpace, candidate: FrozenTrial, trials: Sequence[FrozenTrial]) -> StabilityResult:
    """Neighbours by parameter; log-scale parameters compared in log space (how the sampler drew them)."""
    logs = {name for name, p in space.params.items() if isinstance(p, IntParam | FloatParam) and p.log}
    ranges: dict[str, tuple[float, float]] = {}
    for name, p in space.params.items():
        if isinstance(p, IntParam):
            low, high = float(p.int_range[0]), float(p.int_range[1])
        elif isinstance(p, FloatParam):
            low, high = p.float_range
        else:
            continue
        ranges[name] = (math.log(low), math.log(high)) if name in logs else (low, high)

    def transform(params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: (math.log(v) if k in logs and isinstance(v, int | float) and v > 0 else v)
            for k, v in params.items()
        }

    return parameter_stability(
        transform(candidate.params),
        [(transform(t.params), float(t.values[0])) for t in trials],
        space_ranges=ranges,
        candidate_value=float(candidate.values[0]),
    )


def _evaluate_candidate(
    rank: int,
    trial: FrozenTrial,
    record: TrialRecord,
    *,
    space: SpecSpace,
    stats: StudyStats,
    complete: Sequence[FrozenTrial],
    markets: _Markets,
    folds: Mapping[int, Mapping[str, str]],
    holdout: Mapping[str, Any],
    objectives: Sequence[str],
    config: GateConfig,
    bootstrap_samples: int,
    seed: int,
) -> CandidateResult:
    spec = space.build(record.params)
    market = markets.get(spec)
    # The lockbox opens here, after the candidate was chosen from in-sample values only.
    held = fast_run(spec, market, dt.date.fromisoformat(holdout["start"]), dt.date.fromisoformat(holdout["end"]))
    trial_sharpes = np.array(list(stats.trial_sharpes.values()), dtype=np.float64)
    dsr_eff = deflated_sharpe_ratio(held.daily_returns, trial_sharpes=trial_sharpes, n_trials=stats.n_trials_eff)
    dsr_raw = deflated_sharpe_ratio(held.daily_returns, trial_sharpes=trial_sharpes, n_trials=stats.n_trials_raw)
    wfe = walk_forward_efficiency(
        [f.is_returns for f in _folds(record)], [held.daily_returns], PERIODS_PER_YEAR
    )
    stability = _stability(space, trial, complete)
    boot = bootstrap_max_drawdown(
        _trade_pnls(held.trades), initial_cash=spec.initial_cash, n_samples=bootstrap_samples, seed=seed
    )
    validation_trades, results, check = _rerun(spec, market, folds, record)
    validation = stitched_validation(record)
    bars = sum(len(r.bar_ts) for r in results)
    exposure = sum(r.metrics["exposure"] * len(r.bar_ts) for r in results) / bars if bars else 0.0
    # the validation windows' bar-marked equity chained the way the daily returns are, when the re-run
    # reproduces the record (else its days differ)
    bar_equity = _chained_bar_equity(results, spec.initial_cash) if check["sessions_match"] else None
    val_metrics = compute_metrics(
        spec.initial_cash * np.cumprod(1.0 + validation.returns),
        validation.dates,
        _trade_pnls(validation_trades),
        initial_cash=spec.initial_cash,
        exposure=min(1.0, max(0.0, exposure)),
        bar_equity=bar_equity,
    )
    holdout_metrics = dict(held.metrics)
    pbo = stats.pbo.pbo if stats.pbo is not None else math.nan
    values: dict[str, float] = {
        "dsr": dsr_eff.dsr,
        "dsr_raw": dsr_raw.dsr,
        "psr": dsr_eff.psr,
        "pbo": pbo,
        "wfe": wfe,
        "stability_ratio": stability.stability_ratio,
        "stability_within": stability.fraction_within,
        "stability_neighbours": float(stability.n_neighbours),
        "max_drawdown_p95": boot.p95,
        **holdout_metrics,
    }
    return CandidateResult(
        rank=rank,
        number=trial.number,
        params=dict(record.params),
        objectives={m: float(v) for m, v in zip(objectives, trial.values, strict=False)},
        values=values,
        verdict=evaluate_gates(config, values),
        dsr=dsr_eff,
        dsr_raw=dsr_raw,
        stability=stability,
        bootstrap=boot,
        holdout_metrics=holdout_metrics,
        val_metrics=val_metrics,
        trades=held.trades,
        validation_trades=validation_trades,
        daily=fold_daily_frame(record, spec.initial_cash, held),
        rerun=check,
    )


def _trade_pnls(trades: pl.DataFrame) -> np.ndarray:
    """One net PnL per position (partial exits summed): the bootstrap reorders and the KPIs count positions."""
    return position_pnls(trades)


# ---------------------------------------------------------------------------------------- output


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars/arrays to Python, nan/inf to None, dates to ISO strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | Path):
        return str(value)
    return value


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(_plain(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {
        "passed": verdict.passed,
        "rejected_at_stage": verdict.rejected_at_stage,
        "summary": verdict.summary(),
        "results": [asdict(r) for r in verdict.results],
    }


def _dsr_dict(result: DSRResult, periods: int = PERIODS_PER_YEAR) -> dict[str, Any]:
    data = asdict(result)
    data["sr_annualised"] = result.sr * math.sqrt(periods)
    data["sr0_annualised"] = result.sr0 * math.sqrt(periods)
    return data


def _status(result: Any) -> str:
    if not result.evaluated:
        return "not evaluated"
    if result.value is None and not result.passed:
        return "missing"
    return "pass" if result.passed else "fail"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _gates_csv(candidates: Sequence[CandidateResult], objective: str) -> pl.DataFrame:
    """One row per candidate: verdict, reasons, and per gate its value (blank unless evaluated) and status."""
    rows: list[dict[str, Any]] = []
    for c in candidates:
        row: dict[str, Any] = {
            "rank": c.rank,
            "trial": c.number,
            f"is_{objective}": _finite(c.objectives.get(objective)),  # the study's objective: an IS mean
            "passed": c.verdict.passed,
            "rejected_at_stage": c.verdict.rejected_at_stage or "",
            "reasons": "; ".join(r.reason for r in c.verdict.failures),
        }
        for r in c.verdict.results:
            # a KPI of a rejected candidate stays blank: it was never read
            row[r.name] = _finite(r.value) if r.evaluated else None
            row[f"{r.name}_status"] = _status(r)
        for extra in ("dsr_raw", "max_drawdown_p95", "stability_ratio"):
            row.setdefault(extra, _finite(c.values[extra]))
        row["rerun_matches_record"] = c.rerun.get("matches_record")
        row["params"] = json.dumps(_plain(c.params), sort_keys=True)
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def _write_candidate(folder: Path, c: CandidateResult, spec_json: str) -> None:
    folder.mkdir(parents=True)
    c.trades.write_csv(folder / "holdout_trades.csv")
    c.validation_trades.write_csv(folder / "validation_trades.csv")
    c.daily.write_csv(folder / "daily.csv")
    _write_json(
        folder / "metrics.json",
        {
            "rank": c.rank,
            "trial": c.number,
            "params": c.params,
            "objectives": c.objectives,
            "holdout": c.holdout_metrics,
            "holdout_sessions": int(c.daily.filter(pl.col("window") == "holdout").height),
            "validation": c.val_metrics,
            "validation_sessions": int(c.daily.filter(pl.col("window") == "validation").height),
            "gate_values": c.values,
            "stability": {k: v for k, v in asdict(c.stability).items() if k != "neighbour_values"}
            | {"neighbour_values": c.stability.neighbour_values},
            "rerun": c.rerun,
            "verdict": verdict_dict(c.verdict),
            "spec": json.loads(spec_json),
        },
    )
    _write_json(folder / "dsr.json", {"effective": _dsr_dict(c.dsr), "raw": _dsr_dict(c.dsr_raw)})
    b = c.bootstrap
    _write_json(
        folder / "bootstrap.json",
        {
            "n_trades": int(position_pnls(c.trades).size),
            "n_samples": int(b.max_drawdowns.size),
            "observed": b.observed,
            "mean": b.mean,
            "p50": b.p50,
            "p95": b.p95,
            "p99": b.p99,
            "max_drawdowns": np.round(b.max_drawdowns, 8),
        },
    )


def _replace_folder(target: Path, build: Callable[[Path], None]) -> None:
    """Build the folder next to ``target`` and swap it in, so a failed run leaves the last good one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


# ---------------------------------------------------------------------------------------- notes


def _note_markdown(c: CandidateResult, total: int, folder: str, stamp: str) -> str:
    v = c.verdict
    head = "PASSED all gates" if v.passed else f"REJECTED at the {v.rejected_at_stage} stage"
    lines = [
        NOTE_BEGIN,
        f"**{head}** (candidate {c.rank} of {total}, `search gate` {stamp})",
        "",
        "| stage | gate | value | result |",
        "|---|---|---|---|",
    ]
    for r in v.results:
        value = "-" if r.value is None or not r.evaluated else f"{r.value:.4g}"
        result = r.reason if not r.evaluated else f"{_status(r)}: {r.reason}"
        lines.append(f"| {r.stage} | {r.name} {r.op} {r.threshold:g} | {value} | {result} |")
    lines += ["", f"artifacts: `{folder}`", NOTE_END]
    return "\n".join(lines)


_NOTE_RE = re.compile(re.escape(NOTE_BEGIN) + r".*?" + re.escape(NOTE_END), re.S)


def _set_trial_note(study: optuna.Study, trial: FrozenTrial, section: str | None) -> None:
    """Put ``section`` into the trial's dashboard note (replacing an earlier verdict, keeping user text).

    optuna-dashboard keeps trial notes in study system attributes, which stay writable after the trial
    finished; ``section=None`` removes an earlier verdict.
    """
    from optuna_dashboard import _note as note  # the dashboard's own note format and versioning

    storage = study._storage
    study_id = study._study_id
    current = note.get_note_from_system_attrs(storage.get_study_system_attrs(study_id), trial._trial_id)
    body = str(current["body"])
    if _NOTE_RE.search(body):
        body = _NOTE_RE.sub(lambda _m: section or "", body).strip()
    elif section is not None:
        body = f"{body.rstrip()}\n\n{section}".strip()
    else:
        return
    note.save_note_with_version(storage, study_id, trial._trial_id, int(current["version"]) + 1, body)


# ---------------------------------------------------------------------------------------- run


@dataclass
class GateRunConfig:
    """Options of ``search gate`` (see its ``--help``)."""

    study: str
    top: int = 5
    storage: str | None = None
    data_root: str | None = None
    gates_file: Path | None = None
    studies_root: Path | None = None
    n_blocks: int = 16
    bootstrap_samples: int = 2000
    seed: int = 0


@dataclass
class GateSummary:
    study_name: str
    storage: str  # masked
    folder: Path
    config: GateConfig
    sources: list[str]
    candidates: list[CandidateResult]
    stats: StudyStats
    objective: str
    direction: str
    notes: list[str] = field(default_factory=list)


def _open_study(url: str, name: str) -> optuna.Study:
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise GateSetupError(
            f"no study {name!r} in {mask_url(url)}; studies: {', '.join(names) or 'none'} "
            "(pass --storage if it lives elsewhere)"
        ) from None


def _store_for(study: optuna.Study, data_root: str | None) -> Store:
    root = data_root or study.user_attrs.get("data_root")
    if not root:
        raise GateSetupError(
            f"study {study.study_name!r} does not record its data store; pass --data with the store root"
        )
    if "***" in root:
        raise GateSetupError(
            f"the study's data store {root} was recorded with its credentials masked; pass --data with the "
            "full store URL (credentials from the environment)"
        )
    return Store(root)


def run_gates(config: GateRunConfig, *, echo: Callable[[str], None] = print) -> GateSummary:
    """Gate the study's top candidates (see the module docstring); writes the artifacts and verdicts."""
    from search.paths import studies_root as default_root

    if config.top < 1:
        raise ValueError(f"--top must be at least 1, got {config.top}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(config.studies_root) if config.studies_root is not None else default_root()
    url = storage_url(config.storage, root)
    study = _open_study(url, config.study)
    space = load_study_space(study)
    gate_config, sources = resolve_gate_config(space, config.gates_file)
    records_dir = records_folder(study, root)
    objectives = [o["metric"] for o in study.user_attrs.get("objectives") or []] or ["objective"]
    direction = directions_of(study)[0]
    notes: list[str] = []

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise GateSetupError(
            f"study {study.study_name!r} has no COMPLETE trial to gate; run `search run` first"
        )
    found, missing = load_records(records_dir, [t.number for t in complete])
    if missing:
        notes.append(
            f"{len(missing)} COMPLETE trial(s) have no record under {records_dir / 'trials'} and are left out: "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}"
        )
    records = {r.number: r for r in found}
    if not records:
        raise GateSetupError(
            f"no trial records under {records_dir / 'trials'}; gates are computed from them (pass --storage "
            "and FARM_STUDIES as used by `search run`)"
        )
    stats = study_stats(records, n_blocks=config.n_blocks)
    if stats.pbo_info.get("note"):
        notes.append(f"PBO: {stats.pbo_info['note']}")
    if stats.pbo_info["dropped"]:
        notes.append(
            f"PBO: {len(stats.pbo_info['dropped'])} trial(s) with too few returns dropped: "
            + ", ".join(f"#{k} ({v})" for k, v in list(stats.pbo_info["dropped"].items())[:5])
        )
    if stats.val_dropped:
        notes.append(f"effective N: {len(stats.val_dropped)} trial(s) with too few validation returns dropped")

    chosen = [t for t in select_candidates(study, len(complete)) if t.number in records][: config.top]
    if not chosen:
        raise GateSetupError(
            f"study {study.study_name!r} has no feasible COMPLETE trial with a record; nothing to gate"
        )
    if len(chosen) < config.top:
        notes.append(
            f"only {len(chosen)} feasible COMPLETE trial(s) with records; --top asked for {config.top}"
        )

    store = _store_for(study, config.data_root)
    manifest = study.user_attrs.get("data_manifest_hash")
    if manifest and study.user_attrs.get("data_symbol"):
        spec0 = space.build(records[chosen[0].number].params)
        warmup = 400 if spec0.timeframe == "1d" else 10
        now = store.manifest_hash(
            space.data.start - dt.timedelta(days=warmup), space.data.end, [signal_symbol(spec0)]
        )
        if now != manifest:
            notes.append(
                f"the data store {store.root} changed since the study ran (manifest {now[:12]} != {manifest[:12]}): "
                "re-run trades may differ from the records"
            )
    recorded_fill = study.user_attrs.get("fill_model_version")
    if recorded_fill is not None and str(recorded_fill) != str(FILL_MODEL_VERSION):
        notes.append(
            f"the study ran with fill model version {recorded_fill}, this code has {FILL_MODEL_VERSION}: "
            "re-run trades follow the new fill model and may differ from the records"
        )
    if study.user_attrs.get("engine", "fast") != "fast":
        notes.append(
            f"the study ran the {study.user_attrs.get('engine')} engine; holdout and validation trades are run with "
            "the fast engine"
        )
    folds = {int(f["index"]): f for f in study.user_attrs.get("folds") or []}
    holdout = study.user_attrs.get("holdout")
    if not holdout:
        raise GateSetupError(
            f"study {study.study_name!r} records no holdout window (it was searched by an older version, whose "
            "'out-of-sample' fold windows the search had seen); run the space again as a new study (--study NAME)"
        )
    notes.append(
        f"holdout (out-of-sample, unseen by the search): {holdout['start']} to {holdout['end']}, {holdout['days']} sessions"
    )
    markets = _Markets(store, space)
    results: list[CandidateResult] = []
    for rank, trial in enumerate(chosen, start=1):
        result = _evaluate_candidate(
            rank,
            trial,
            records[trial.number],
            space=space,
            stats=stats,
            complete=complete,
            markets=markets,
            folds=folds,
            holdout=holdout,
            objectives=objectives,
            config=gate_config,
            bootstrap_samples=config.bootstrap_samples,
            seed=config.seed,
        )
        if not result.rerun["matches_record"]:
            notes.append(
                f"trial #{trial.number}: the validation re-run does not reproduce its record ({result.rerun}); "
                "the data or the code changed since the search"
            )
        results.append(result)

    folder = gates_folder(study, root)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def build(tmp: Path) -> None:
        for c in results:
            _write_candidate(tmp / f"candidate_{c.rank}", c, space.build(c.params).model_dump_json())
        _gates_csv(results, objectives[0]).write_csv(tmp / "gates.csv")
        pbo = stats.pbo
        _write_json(
            tmp / "pbo.json",
            {
                **stats.pbo_info,
                "pbo": None if pbo is None else pbo.pbo,
                "n_combinations": None if pbo is None else pbo.n_combinations,
                "degradation_slope": None if pbo is None else pbo.degradation_slope,
                "prob_oos_loss": None if pbo is None else pbo.prob_oos_loss,
                "logits": [] if pbo is None else pbo.logits,
                "is_performance": [] if pbo is None else pbo.is_performance,
                "oos_performance": [] if pbo is None else pbo.oos_performance,
            },
        )
        _write_json(
            tmp / "gates.json",
            _gates_json(study, gate_config, sources, stats, results, objectives, direction, stamp, notes),
        )

    _replace_folder(folder, build)
    for c in results:
        c.folder = folder / f"candidate_{c.rank}"
    _store_verdicts(study, results, gate_config, sources, stats, folder, stamp)
    return GateSummary(
        study_name=study.study_name,
        storage=mask_url(url),
        folder=folder,
        config=gate_config,
        sources=sources,
        candidates=results,
        stats=stats,
        objective=objectives[0],
        direction=direction,
        notes=notes,
    )


def _gates_json(
    study: optuna.Study,
    config: GateConfig,
    sources: list[str],
    stats: StudyStats,
    results: Sequence[CandidateResult],
    objectives: Sequence[str],
    direction: str,
    stamp: str,
    notes: Sequence[str],
) -> dict[str, Any]:
    return {
        "format": GATE_FORMAT,
        "study": study.study_name,
        "created_utc": stamp,
        "objective": objectives[0],
        "direction": direction,
        "config": config.model_dump(),
        "sources": sources,
        "study_stats": {
            "n_trials_raw": stats.n_trials_raw,
            "n_trials_eff": stats.n_trials_eff,
            "sr_variance": stats.sr_variance,
            "periods_per_year": PERIODS_PER_YEAR,
            "trial_sharpes": [{"trial": n, "sr": v} for n, v in sorted(stats.trial_sharpes.items())],
            "val_dropped": {str(k): v for k, v in stats.val_dropped.items()},
            "pbo": None if stats.pbo is None else stats.pbo.pbo,
        },
        "candidates": [
            {
                "rank": c.rank,
                "trial": c.number,
                "folder": f"candidate_{c.rank}",
                "params": c.params,
                "objectives": c.objectives,
                "values": c.values,
                **verdict_dict(c.verdict),
            }
            for c in results
        ],
        "notes": list(notes),
    }


def _store_verdicts(
    study: optuna.Study,
    results: Sequence[CandidateResult],
    config: GateConfig,
    sources: list[str],
    stats: StudyStats,
    folder: Path,
    stamp: str,
) -> None:
    previous = study.user_attrs.get("gate") or {}
    before = {int(c["trial"]) for c in previous.get("candidates", []) if "trial" in c}
    study.set_user_attr(
        "gate",
        _plain(
            {
                "created_utc": stamp,
                "folder": str(folder),
                "sources": sources,
                "config": [f"{g.stage}: {g.name} {g.op} {g.threshold:g}" for g in config.gates],
                "pbo": None if stats.pbo is None else stats.pbo.pbo,
                "n_trials_raw": stats.n_trials_raw,
                "n_trials_eff": stats.n_trials_eff,
                "candidates": [
                    {
                        "rank": c.rank,
                        "trial": c.number,
                        "passed": c.verdict.passed,
                        "rejected_at_stage": c.verdict.rejected_at_stage,
                        "summary": c.verdict.summary(),
                        "max_drawdown_p95": c.values["max_drawdown_p95"],
                        "results": [
                            {
                                "name": r.name,
                                "value": r.value,
                                "passed": r.passed,
                                "evaluated": r.evaluated,
                                "reason": r.reason,
                            }
                            for r in c.verdict.results
                        ],
                    }
                    for c in results
                ],
            }
        ),
    )
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    gated = {c.number for c in results}
    for c in results:
        _set_trial_note(study, by_number[c.number], _note_markdown(c, len(results), str(c.folder), stamp))
    for number in sorted(before - gated):  # an earlier run's candidate that is no longer one
        if number in by_number:
            _set_trial_note(study, by_number[number], None)
