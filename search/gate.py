"""``search gate`` as a function: overfitting checks first, then KPI gates, for a study's best candidates.

Out-of-sample means unseen. The study's objective read only the folds' training windows, and a later
fold's training window covers an earlier fold's test window, so the fold test windows are *validation*
windows: the search saw them. The only out-of-sample data is the **holdout** the study recorded (the
last sessions of the data window, see :func:`evaluator.walkforward.make_layout`), which no objective,
constraint, candidate ranking or fold pick read. It is opened here, for the chosen candidates only: each
candidate's spec is run with the fast engine on the holdout window (and, as a check that the records
still reproduce, on its validation windows).

Study level (every COMPLETE trial with a record; all of it validation data, chosen without the holdout):

* each trial's stitched validation daily returns and their per-period Sharpe ratios; the DSR deflates
  with V[SR] = 1 / (T - 1), the variance of a skill-less Sharpe estimate over the trials' T validation
  sessions (how much Sharpe the best of N tries shows by luck). The spread of the trials' Sharpes is
  that variance only when no trial has skill; with a real edge it adds the spread of true Sharpes and
  no candidate could pass (measured on a planted market: 0.064 against 0.0042, README "Calibration"),
  so it is reported as ``dsr_spread`` and not gated;
* the effective number of independent trials: correlation clustering of those validation series;
* PBO by CSCV over a sessions x trials matrix: each trial's return on every session its record holds
  (the validation return where the session lies in a test window, else the in-sample return of the
  first fold whose training window holds it). Trials covering fewer than ``min_coverage`` of the
  sessions are dropped and listed; remaining gaps are 0.0. PBO measures the selection process itself.

Per candidate (the ``top`` feasible COMPLETE trials by the first objective, an in-sample mean):

* DSR of its **holdout** daily returns with N = the raw trial count (``dsr_raw``) and N = the effective
  count: the holdout Sharpe must beat what the best of N noise trials shows. Every candidate judged on
  the holdout is one more test of it (``--top 50`` would be fifty chances for noise to pass), so the
  gated ``dsr`` is Bonferroni-adjusted over the m candidates the study's holdout has judged so far
  (this run's and earlier runs', the study attribute ``holdout_opened``): ``dsr = 1 - m (1 - DSR)``,
  floored at 0; the unadjusted value is ``dsr_single``;
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
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
from optuna.trial import FrozenTrial, TrialState

from data.safe import mask_url
from data.store import Store
from evaluator.fast import run as fast_run
from evaluator.fill_model import FILL_MODEL_VERSION
from evaluator.gates import GateConfig, Verdict, evaluate_gates
from evaluator.market import Market, load_market, market_key, signal_symbol
from evaluator.metrics import compute_metrics
from evaluator.overfitting import (
    BootstrapResult,
    DSRResult,
    StabilityResult,
    bootstrap_max_drawdown,
    deflated_sharpe_ratio,
    parameter_stability,
    walk_forward_efficiency,
)
from evaluator.results import BacktestResult, position_pnls
from evaluator.wfo import TrialRecord
from search.gate_artifacts import (
    gate_attr,
    gates_csv,
    gates_folder,
    gates_json,
    pbo_json,
    replace_folder,
    write_candidate,
    write_json,
)
from search.gate_config import resolve_gate_config
from search.gate_stats import PERIODS_PER_YEAR, StudyStats, study_stats
from search.records import load_records
from search.return_series import fold_daily_frame, folds_of, stitched_validation
from search.study import directions_of
from search.study_access import (
    StudySetupError,
    find_study,
    load_study_space,
    records_folder,
    select_candidates,
    store_for,
)
from search.trial_notes import note_markdown, set_trial_note
from search.verdicts import GATE_ATTR, write_verdicts
from spec_space.models import StrategySpec
from spec_space.space import FloatParam, IntParam, SpecSpace

__all__ = ["CandidateResult", "GateRunConfig", "GateSummary", "run_gates"]


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
        key = market_key(spec)
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
    for f in folds_of(record):
        window = folds.get(f.fold)
        if window is None:
            raise StudySetupError(
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
    holdout_tests: int = 1,
) -> CandidateResult:
    spec = space.build(record.params)
    market = markets.get(spec)
    # The lockbox opens here, after the candidate was chosen from in-sample values only.
    held = fast_run(spec, market, dt.date.fromisoformat(holdout["start"]), dt.date.fromisoformat(holdout["end"]))
    trial_sharpes = np.array(list(stats.trial_sharpes.values()), dtype=np.float64)
    null = stats.sr_variance_null
    dsr_eff = deflated_sharpe_ratio(
        held.daily_returns, trial_sharpes=trial_sharpes, n_trials=stats.n_trials_eff, sr_variance=null
    )
    dsr_raw = deflated_sharpe_ratio(
        held.daily_returns, trial_sharpes=trial_sharpes, n_trials=stats.n_trials_raw, sr_variance=null
    )
    dsr_spread = deflated_sharpe_ratio(held.daily_returns, trial_sharpes=trial_sharpes, n_trials=stats.n_trials_eff)
    wfe = walk_forward_efficiency(
        [f.is_returns for f in folds_of(record)], [held.daily_returns], PERIODS_PER_YEAR
    )
    stability = _stability(space, trial, complete)
    boot = bootstrap_max_drawdown(
        position_pnls(held.trades), initial_cash=spec.initial_cash, n_samples=bootstrap_samples, seed=seed
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
        position_pnls(validation_trades),  # one PnL per position: the KPIs count positions
        initial_cash=spec.initial_cash,
        exposure=min(1.0, max(0.0, exposure)),
        bar_equity=bar_equity,
    )
    holdout_metrics = dict(held.metrics)
    pbo = stats.pbo.pbo if stats.pbo is not None else math.nan
    values: dict[str, float] = {
        "dsr": bonferroni(dsr_eff.dsr, holdout_tests),
        "dsr_single": dsr_eff.dsr,
        "holdout_tests": float(holdout_tests),
        "dsr_raw": bonferroni(dsr_raw.dsr, holdout_tests),
        "dsr_spread": dsr_spread.dsr,
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


def bonferroni(probability: float, tests: int) -> float:
    """A probability of skill (DSR, PSR) held to a family of ``tests``: 1 - tests x (1 - p), floored at 0, so
    that the threshold 0.95 keeps a 5 % chance of any false pass across all of them."""
    if not math.isfinite(probability):
        return probability
    return max(0.0, 1.0 - max(1, tests) * (1.0 - probability))


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


def run_gates(config: GateRunConfig, *, echo: Callable[[str], None] = print) -> GateSummary:
    """Gate the study's top candidates (see the module docstring); writes the artifacts and verdicts."""
    if config.top < 1:
        raise ValueError(f"--top must be at least 1, got {config.top}")
    study, root, url = find_study(config.study, storage=config.storage, studies_root=config.studies_root)
    space = load_study_space(study)
    gate_config, sources = resolve_gate_config(space, config.gates_file)
    records_dir = records_folder(study, root)
    objectives = [o["metric"] for o in study.user_attrs.get("objectives") or []] or ["objective"]
    direction = directions_of(study)[0]
    notes: list[str] = []

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise StudySetupError(
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
        raise StudySetupError(
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
        raise StudySetupError(
            f"study {study.study_name!r} has no feasible COMPLETE trial with a record; nothing to gate"
        )
    if len(chosen) < config.top:
        notes.append(
            f"only {len(chosen)} feasible COMPLETE trial(s) with records; --top asked for {config.top}"
        )

    store = store_for(study, config.data_root)
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
        raise StudySetupError(
            f"study {study.study_name!r} records no holdout window (it was searched by an older version, whose "
            "'out-of-sample' fold windows the search had seen); run the space again as a new study (--study NAME)"
        )
    notes.append(
        f"holdout (out-of-sample, unseen by the search): {holdout['start']} to {holdout['end']}, {holdout['days']} sessions"
    )
    # every distinct candidate ever judged on this holdout counts as one test of it (Bonferroni)
    opened = sorted({*(study.user_attrs.get("holdout_opened") or []), *(t.number for t in chosen)})
    study.set_user_attr("holdout_opened", opened)
    notes.append(
        f"the holdout has judged {len(opened)} distinct candidate(s) of this study so far: the gated DSR is "
        f"Bonferroni-adjusted for {len(opened)} tests"
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
            holdout_tests=len(opened),
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
            write_candidate(tmp / f"candidate_{c.rank}", c, space.build(c.params).model_dump_json())
        gates_csv(results, objectives[0]).write_csv(tmp / "gates.csv")
        write_json(tmp / "pbo.json", pbo_json(stats))
        write_json(
            tmp / "gates.json",
            gates_json(study, gate_config, sources, stats, results, objectives, direction, stamp, notes),
        )

    replace_folder(folder, build)
    for c in results:
        c.folder = folder / f"candidate_{c.rank}"
    _store_verdicts(study, results, gate_attr(results, gate_config, sources, stats, folder, stamp), stamp)
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


def _store_verdicts(
    study: optuna.Study, results: Sequence[CandidateResult], attr: Mapping[str, Any], stamp: str
) -> None:
    """The study attribute ``gate`` (replaced whole: a gate run re-ranks every candidate) and the notes."""
    before = write_verdicts(study, GATE_ATTR, attr)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    gated = {c.number for c in results}
    for c in results:
        set_trial_note(study, by_number[c.number], note_markdown(c, len(results), str(c.folder), stamp))
    for number in sorted(before - gated):  # an earlier run's candidate that is no longer one
        if number in by_number:
            set_trial_note(study, by_number[number], None)
