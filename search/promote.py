"""Promotion as functions: from gated, confirmed and reproduced candidates to paper trading, the expected
range each deployment is held to, its risk limits, and the scheduled promotion cycle.

The commands (``search promote``, ``deployments``, ``stop``, ``approve``) are in :mod:`search.promote_cli`.

Which trials are candidates: COMPLETE trials that passed the gates (``search gate``), the Lumibot
confirmation (``search confirm``) AND the reproduction (``search reproduce``: the trial re-run from its
records on today's data and code gives the stored results). Promote does not reproduce by itself: a
candidate needs a passed ``reproduce`` verdict, so a data or code change since the study ran stops it
until it is reproduced again. A verdict is read from, in order:

* the trial's user attribute ``gate`` / ``confirm`` / ``reproduce`` (``{"passed": bool, "summary": ...}``,
  or a bool);
* the study's user attribute of the same name: ``{"candidates": [{"trial": n, "passed": bool,
  "summary": ..., "rank": r}, ...], "folder": ...}``, the form ``search gate`` writes (Optuna 5 refuses
  user attributes on finished trials, so study-level verdicts are the norm).

A trial without all three verdicts passed is never promoted. Candidates are taken in gate rank order
(then trial number), ``--top K`` of them.

What the backtest predicts (stored with each deployment, compared with paper results): the mean and
standard deviation of the candidate's holdout (out-of-sample) daily returns (``daily.csv`` in its gate
folder ``candidate_<rank>/``), and the 95th
percentile of its bootstrapped max drawdown (``max_drawdown_p95`` in the gate folder's
``candidate_<rank>/metrics.json``, else ``bootstrap.json``'s ``p95``).

Safety: paper is the ceiling of automatic promotion. ``--live`` needs a recorded approval
(``search approve``) for the candidate, is refused with ``--schedule``, and uses the live credentials
only then (the Tradier base URL stays the sandbox otherwise). Credentials are checked before anything
is recorded; an error names the variable to fix and masks the secret.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data.safe import finite_float
from search.study_access import StudySetupError
from search.verdicts import CONFIRM_ATTR, GATE_ATTR, REPRODUCE_ATTR, VERDICT_ATTRS, read_verdict

if TYPE_CHECKING:
    import optuna
    from apscheduler.schedulers.base import BaseScheduler
    from optuna.trial import FrozenTrial

    from brokers.deployments import DeploymentStore, Expected
    from brokers.paper import PaperSettings, StopReport
    from brokers.risk import RiskLimits
    from spec_space.models import StrategySpec

__all__ = [
    "Candidate",
    "CycleReport",
    "PromoteError",
    "PromoteOptions",
    "PromoteResult",
    "Rejection",
    "daily_loss_amount",
    "expected_range",
    "find_candidates",
    "make_scheduler",
    "promote_candidates",
    "promotion_cycle",
    "retire_outliers",
]

class PromoteError(StudySetupError):
    """A promotion cannot go ahead; the message says what to fix."""


# ----------------------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    trial: int
    params: dict[str, Any]
    values: list[float]
    spec: StrategySpec
    gate_summary: str
    confirm_summary: str
    rank: int | None
    expected: Expected
    reproduce_summary: str = ""
    trial_provenance: dict[str, Any] = field(default_factory=dict)  # from the trial's record


@dataclass
class Rejection:
    trial: int
    reason: str


def expected_range(
    study: optuna.Study, trial: FrozenTrial, gate_entry: Mapping[str, Any], studies_root: Path
) -> Expected:
    """The backtest's prediction for ``trial`` (see the module docstring); unknown parts stay None."""
    import numpy as np
    import polars as pl

    from brokers.deployments import Expected

    sources: dict[str, str] = {}
    mean = std = None
    days = None
    gate_attr = study.user_attrs.get(GATE_ATTR)
    folder = gate_attr.get("folder") if isinstance(gate_attr, Mapping) else None
    rank = gate_entry.get("rank")
    # The prediction is the holdout's: the only returns the search never saw. (The validation windows
    # were seen by the objective and would predict too rosy a paper record.)
    daily_path = Path(folder) / f"candidate_{rank}" / "daily.csv" if folder and rank is not None else None
    if daily_path is not None and daily_path.exists():
        daily = pl.read_csv(daily_path).filter(pl.col("window") == "holdout")
        returns = daily.get_column("return").to_numpy().astype(np.float64)
        returns = returns[np.isfinite(returns)]
        if returns.size >= 2:
            mean, std, days = float(returns.mean()), float(returns.std(ddof=1)), int(returns.size)
            sources["daily"] = str(daily_path)
    dd_p95 = None
    for name, value in (
        (
            "gate results",
            next(
                (
                    r.get("value")
                    for r in gate_entry.get("results") or []
                    if r.get("name") == "max_drawdown_p95"
                ),
                None,
            ),
        ),
        ("gate entry", gate_entry.get("max_drawdown_p95")),
    ):
        if finite_float(value) is not None:
            dd_p95, sources["drawdown_p95"] = finite_float(value), name
            break
    if dd_p95 is None and folder and rank is not None:
        base = Path(folder) / f"candidate_{rank}"
        for file, keys in (
            ("metrics.json", ("gate_values", "max_drawdown_p95")),
            ("bootstrap.json", ("p95",)),
        ):
            try:
                data: Any = json.loads((base / file).read_text())
            except (OSError, ValueError):
                continue
            for key in keys:
                data = data.get(key) if isinstance(data, Mapping) else None
            if finite_float(data) is not None:
                dd_p95, sources["drawdown_p95"] = finite_float(data), str(base / file)
                break
    return Expected(daily_mean=mean, daily_std=std, days=days, drawdown_p95=dd_p95, sources=sources)


def _step_rejection(study: optuna.Study, trial: FrozenTrial, step: str, ok: bool | None, summary: str) -> Rejection:
    """Why ``trial`` failed ``step`` (``confirm`` or ``reproduce``, also the command that runs it): its verdict's
    summary, or, with no verdict yet, the command to run."""
    hint = f"; run `search {step} --study {study.study_name} --trial {trial.number}`" if ok is None else ""
    return Rejection(trial.number, f"{step}: {summary or 'not passed'}{hint}")


def find_candidates(
    study: optuna.Study, *, top: int, studies_root: Path
) -> tuple[list[Candidate], list[Rejection]]:
    """The ``top`` trials that passed the gates, the confirmation and the reproduction, and why the others
    did not."""
    from optuna.trial import TrialState

    from search.study_access import load_study_space

    space = load_study_space(study)
    eligible: list[tuple[tuple[int, int], FrozenTrial, dict[str, Any], str, str, str]] = []
    rejected: list[Rejection] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        gate_ok, gate_summary, gate_entry = read_verdict(study, trial, GATE_ATTR)
        confirm_ok, confirm_summary, _ = read_verdict(study, trial, CONFIRM_ATTR)
        if gate_ok is None and confirm_ok is None:
            continue  # never a candidate: not worth a line
        if not gate_ok:
            rejected.append(Rejection(trial.number, f"gate: {gate_summary or 'not passed'}"))
            continue
        if not confirm_ok:
            rejected.append(_step_rejection(study, trial, "confirm", confirm_ok, confirm_summary))
            continue
        reproduce_ok, reproduce_summary, _ = read_verdict(study, trial, REPRODUCE_ATTR)
        if not reproduce_ok:
            rejected.append(_step_rejection(study, trial, "reproduce", reproduce_ok, reproduce_summary))
            continue
        rank = gate_entry.get("rank")
        eligible.append(
            (
                (int(rank) if rank is not None else 10**9, trial.number),
                trial,
                gate_entry,
                gate_summary,
                confirm_summary,
                reproduce_summary,
            )
        )
    eligible.sort(key=lambda item: item[0])
    out = []
    for (rank, _), trial, gate_entry, gate_summary, confirm_summary, reproduce_summary in eligible[:top]:
        out.append(
            Candidate(
                trial=trial.number,
                params=dict(trial.params),
                values=list(trial.values or []),
                spec=space.build(trial.params),
                gate_summary=gate_summary,
                confirm_summary=confirm_summary,
                rank=None if rank == 10**9 else rank,
                expected=expected_range(study, trial, gate_entry, studies_root),
                reproduce_summary=reproduce_summary,
                trial_provenance=_trial_provenance(study, trial, studies_root),
            )
        )
    return out, rejected


def _trial_provenance(study: optuna.Study, trial: FrozenTrial, studies_root: Path) -> dict[str, Any]:
    """The trial's own provenance (spec JSON and hash, data manifest, code) from its record meta."""
    from search.records import read_meta, record_path
    from search.study_access import records_folder

    path = record_path(records_folder(study, studies_root), trial.number)
    try:
        return dict(read_meta(path).get("provenance") or {})
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------------------- options


_PCT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def daily_loss_amount(text: str | None, equity: float) -> float | None:
    """``"2%"`` of ``equity`` or a plain amount; None or "none" disables the limit."""
    if text is None or str(text).strip().lower() in ("", "none", "off"):
        return None
    match = _PCT.match(str(text))
    if match:
        return round(equity * float(match[1]) / 100.0, 2)
    try:
        return float(text)
    except ValueError:
        raise PromoteError(
            f"--daily-loss {text!r}: expected an amount (1500) or a percentage of equity (2%)"
        ) from None


@dataclass
class PromoteOptions:
    study: str
    top: int = 1
    storage: str | None = None
    db: str | None = None
    studies_root: Path = Path("studies")
    dry_run: bool = False
    broker: str | None = None  # None: by instrument type (brokers.markets)
    live: bool = False
    market: str | None = None  # Lumibot calendar override (default from the instrument type)
    max_position: float | None = None
    daily_loss: str | None = "2%"
    max_orders: int | None = 50
    env_file: Path | None = None
    scheduled: bool = False
    settings: PaperSettings | None = None
    start: Callable[..., int] | None = (
        None  # how to start a paper trader (default brokers.paper.start_paper_trader)
    )


@dataclass
class PromoteResult:
    started: list[str] = field(default_factory=list)  # deployment ids
    planned: list[str] = field(default_factory=list)  # dry-run lines
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    nothing_passed: bool = False  # no trial passed the gates, the confirmation and the reproduction


def _broker_for(spec: StrategySpec, wanted: str | None) -> tuple[str | None, str]:
    """(broker, "") for the spec's instrument type (``brokers.markets``: forex on TradeLocker, stocks and
    options on Tradier, futures on Tradier with FARM_ENABLE_FUTURES=1), else (None, why)."""
    from brokers.markets import UnsupportedMarket, broker_for

    try:
        return broker_for(spec.instrument.type, wanted), ""
    except UnsupportedMarket as exc:
        return None, f"{spec.instrument.type} {spec.instrument.symbol}: {exc}"


def _risk_limits(options: PromoteOptions, equity: float) -> RiskLimits | None:
    from brokers.risk import RiskLimits

    loss = daily_loss_amount(options.daily_loss, equity)
    if options.max_position is None and loss is None and options.max_orders is None:
        return None
    return RiskLimits(
        max_position_size=options.max_position, daily_loss_limit=loss, max_orders_per_day=options.max_orders
    )


def _provenance(study: optuna.Study, candidate: Candidate, storage_masked: str) -> dict[str, Any]:
    from search.provenance import code_provenance

    verdicts = ("space_text", *VERDICT_ATTRS, "wfo")
    attrs = {k: v for k, v in study.user_attrs.items() if k not in verdicts}
    return {
        "study": study.study_name,
        "storage": storage_masked,
        "trial": candidate.trial,
        "trial_values": candidate.values,
        "gate_rank": candidate.rank,
        "gate": candidate.gate_summary,
        "confirm": candidate.confirm_summary,
        "reproduce": candidate.reproduce_summary,
        "study_provenance": attrs,
        "trial_provenance": candidate.trial_provenance,
        "promoted_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": code_provenance(),  # the code promoting (and running) it, next to the code that found it
    }


def promote_candidates(
    options: PromoteOptions, store: DeploymentStore, *, echo: Callable[[str], None] = print
) -> PromoteResult:
    """One promotion pass (``search promote`` without ``--schedule``, or one scheduled run)."""
    from brokers.deployments import Mode, Status
    from brokers.paper import (
        PaperSettings,
        PaperSetupError,
        default_market,
        preflight,
        start_paper_trader,
        strategy_problem,
    )
    from search.study import mask_url, storage_url
    from search.study_access import open_study

    result = PromoteResult()
    mode = Mode.LIVE if options.live else Mode.PAPER
    if options.live and options.scheduled:
        raise PromoteError("live trading is never automatic: --live cannot be combined with --schedule")
    study = open_study(storage_url(options.storage, options.studies_root), options.study)
    candidates, rejected = find_candidates(study, top=options.top, studies_root=options.studies_root)
    for r in rejected:
        result.skipped.append(f"trial {r.trial}: {r.reason}")
    if not candidates:
        result.skipped.append(
            f"study {options.study!r}: no trial passed the gates ({GATE_ATTR!r}), the Lumibot confirmation "
            f"({CONFIRM_ATTR!r}) and the reproduction ({REPRODUCE_ATTR!r}); run `search gate`, `search confirm` "
            "and `search reproduce` first"
        )
        result.nothing_passed = True
        return result
    storage_masked = mask_url(storage_url(options.storage, options.studies_root))
    history = store.list_deployments(study=options.study)
    accounts: dict[str, tuple[str, float]] = {}
    start = options.start or start_paper_trader
    settings = options.settings or PaperSettings()
    for cand in candidates:
        label = f"{options.study} trial {cand.trial}"
        broker, why = _broker_for(cand.spec, options.broker)
        if broker is None:
            result.skipped.append(f"{label}: {why}")
            continue
        problem = strategy_problem(cand.spec.model_dump(mode="json"))
        if problem is not None:
            result.skipped.append(f"{label}: {problem}")
            continue
        mine = [d for d in history if d.trial_number == cand.trial]
        running = [d for d in mine if d.status.is_active and d.mode is mode]
        if running:
            result.skipped.append(f"{label}: already {running[0].status.value} as {running[0].id}")
            continue
        retired = [d for d in mine if d.status is Status.RETIRED]
        if retired:
            result.skipped.append(
                f"{label}: retired as {retired[-1].id} ({retired[-1].stop_reason}); not promoted again"
            )
            continue
        stopped = [d for d in mine if d.status is Status.STOPPED and d.mode is mode]
        if options.scheduled and stopped:
            result.skipped.append(
                f"{label}: stopped as {stopped[-1].id} ({stopped[-1].stop_reason}); the schedule does not restart "
                "what was stopped (promote it by hand)"
            )
            continue
        if mode is Mode.LIVE:
            approvals = store.approvals(options.study, cand.trial)
            if not approvals:
                paper = [d.id for d in mine] or ["<deployment id>"]
                result.errors.append(
                    f"{label}: live trading refused: no approval recorded for this candidate; a human must run "
                    f"`search approve {paper[-1]} --by NAME --reason TEXT` first"
                )
                continue
        market = options.market or default_market(cand.spec.instrument.type)
        if options.dry_run:
            result.planned.append(
                f"would deploy {label} ({cand.spec.name}, {cand.spec.instrument.type} {cand.spec.instrument.symbol}) "
                f"on {broker} as {mode.value}, market {market}; backtest: {_expected_text(cand.expected)}"
            )
            from search.order_preview import preview_lines

            result.planned.extend(preview_lines(study, cand.spec, tag=f"{options.study}-{cand.trial}"))
            continue
        if broker not in accounts:
            try:
                account, balance = preflight(broker, mode, env_file=options.env_file)
                accounts[broker] = (account, balance.total_equity)
            except PaperSetupError as exc:
                result.errors.append(f"{label}: {exc}")
                continue
        account_id, equity = accounts[broker]
        busy = store.active_on_account(broker, account_id)
        if busy:
            result.skipped.append(
                f"{label}: the {broker} account {busy[0].account_masked} already runs {busy[0].id} (one deployment "
                "per account: flattening, PnL and the daily loss limit are account-wide)"
            )
            continue
        limits = _risk_limits(options, equity)
        dep = store.create(
            study=options.study,
            trial_number=cand.trial,
            spec=cand.spec.model_dump(mode="json"),
            params=cand.params,
            broker=broker,
            account_id=account_id,
            mode=mode,
            market=market,
            risk_limits=limits,
            provenance=_provenance(study, cand, storage_masked),
            expected=cand.expected,
            folder_root=options.studies_root / "deployments",
            settings=settings.to_json(),
        )
        try:
            pid = start(dep, store=store, env_file=options.env_file)
        except (OSError, PaperSetupError) as exc:
            store.finish(dep.id, Status.FAILED, f"could not start the paper trader: {exc}")
            result.errors.append(f"{label}: could not start: {exc}")
            continue
        history.append(store.get(dep.id))
        result.started.append(dep.id)
        echo(
            f"started {dep.id}: {label} on {broker} ({mode.value}), supervisor pid {pid}, folder {dep.folder}"
        )
    return result


def _expected_text(expected: Expected) -> str:
    parts = []
    if expected.daily_mean is not None and expected.daily_std is not None:
        parts.append(
            f"holdout daily mean {expected.daily_mean:.3%} sd {expected.daily_std:.3%} ({expected.days} days)"
        )
    if expected.drawdown_p95 is not None:
        parts.append(f"drawdown p95 {expected.drawdown_p95:.2%}")
    return ", ".join(parts) or "no range recorded"


# ----------------------------------------------------------------------------------------- schedule


def retire_outliers(
    store: DeploymentStore,
    *,
    study: str | None = None,
    env_file: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[StopReport]:
    """Retire running deployments whose paper results left the range their backtest predicted."""
    from brokers.deployments import Status, check_expectation, paper_stats
    from brokers.paper import stop_deployment

    reports = []
    for dep in store.list_deployments(statuses=(Status.RUNNING,), study=study):
        stats = paper_stats(dep.starting_equity, store.snapshots(dep.id))
        check = check_expectation(dep.expected, stats)
        if not check.outside:
            continue
        report = stop_deployment(
            store, dep.id, reason=f"retired: {check.reason}", status=Status.RETIRED, env_file=env_file
        )
        echo(f"retired {dep.id}: {check.reason}")
        reports.append(report)
    return reports


@dataclass
class CycleReport:
    at: dt.datetime
    lost: list[str]
    retired: list[StopReport]
    promoted: PromoteResult


def promotion_cycle(
    options: PromoteOptions, store: DeploymentStore, *, echo: Callable[[str], None] = print
) -> CycleReport:
    """One scheduled run: mark deployments whose process died, retire those outside their predicted
    range, then promote new candidates (paper only)."""
    from brokers.paper import reconcile_processes

    now = dt.datetime.now(dt.UTC)
    lost = reconcile_processes(store)
    for dep_id in lost:
        echo(f"{dep_id}: its process is gone; marked failed")
    retired = retire_outliers(store, study=options.study, env_file=options.env_file, echo=echo)
    promoted = promote_candidates(options, store, echo=echo)
    for line in promoted.skipped + promoted.errors:
        echo(f"  {line}")
    return CycleReport(now, lost, retired, promoted)


def make_scheduler(
    options: PromoteOptions,
    store: DeploymentStore,
    cron: str,
    *,
    blocking: bool = True,
    echo: Callable[[str], None] = print,
) -> BaseScheduler:
    """An APScheduler running :func:`promotion_cycle` on ``cron`` (5 fields, UTC), once right away too."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    if options.live:
        raise PromoteError("live trading is never automatic: --live cannot be combined with --schedule")
    try:
        trigger = CronTrigger.from_crontab(cron, timezone=dt.UTC)
    except ValueError as exc:
        raise PromoteError(
            f"--schedule {cron!r} is not a crontab expression ({exc}); give 5 fields "
            "'minute hour day month weekday', e.g. '*/30 13-20 * * mon-fri' (UTC)"
        ) from None
    scheduled = dataclasses.replace(options, scheduled=True)

    def job() -> None:
        try:
            promotion_cycle(scheduled, store, echo=echo)
        except StudySetupError as exc:
            echo(f"promotion run failed: {exc}")

    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=dt.UTC)
    scheduler.add_job(
        job,
        trigger,
        id="promote",
        name=f"promote {options.study}",
        max_instances=1,
        coalesce=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    return scheduler
