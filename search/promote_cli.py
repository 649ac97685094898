"""``search promote``, ``search deployments``, ``search stop``, ``search approve``: from gated, confirmed
candidates to paper trading, and the controls around it.

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
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from search.paths import STUDIES_ROOT_ENV

if TYPE_CHECKING:
    import optuna
    from apscheduler.schedulers.base import BaseScheduler
    from optuna.trial import FrozenTrial

    from brokers.deployments import DeploymentStore, Expected
    from brokers.paper import PaperSettings, StopReport
    from brokers.risk import RiskLimits
    from spec_space.models import StrategySpec

__all__ = [
    "CONFIRM_ATTR",
    "GATE_ATTR",
    "REPRODUCE_ATTR",
    "Candidate",
    "CycleReport",
    "PromoteOptions",
    "PromoteResult",
    "approve",
    "deployments",
    "expected_range",
    "find_candidates",
    "make_scheduler",
    "promote",
    "promote_candidates",
    "promotion_cycle",
    "retire_outliers",
    "stop",
    "verdict",
]

#: The user attribute ``search gate`` writes (study level; trial level accepted too).
GATE_ATTR = "gate"
#: The user attribute ``search confirm`` (the Lumibot re-run of a candidate) writes, the same key as
#: ``search.confirm_cli.CONFIRM_ATTR`` (not imported: that module pulls the engines into every CLI start).
CONFIRM_ATTR = "confirm"
#: The user attribute ``search reproduce`` writes (``search.reproduce.REPRODUCE_ATTR``, not imported for
#: the same reason).
REPRODUCE_ATTR = "reproduce"

_STORAGE_HELP = (
    "Optuna storage of the study: a database URL or journal:PATH "
    f"(default: sqlite at <studies root>/farm.db; studies root = ${STUDIES_ROOT_ENV} or ./studies)."
)
_DB_HELP = "Deployments database (SQLAlchemy URL; default $FARM_DEPLOYMENTS_DB or sqlite at <studies root>/deployments.db)."


class PromoteError(click.ClickException):
    """A promotion cannot go ahead; the message says what to fix."""


# ----------------------------------------------------------------------------------------- verdicts


def _passed(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        passed = value.get("passed")
        if isinstance(passed, bool):
            return passed
        text = str(value.get("verdict", "")).lower()
        if text in ("pass", "passed"):
            return True
        if text in ("fail", "failed", "rejected"):
            return False
    return None


def verdict(study: optuna.Study, trial: FrozenTrial, key: str) -> tuple[bool | None, str, dict[str, Any]]:
    """(passed, summary, entry) of verdict ``key`` (``gate`` / ``confirm``) for ``trial``; passed is
    None when there is no verdict."""
    own = trial.user_attrs.get(key)
    if own is not None:
        entry = dict(own) if isinstance(own, Mapping) else {"passed": own}
        return _passed(own), str(entry.get("summary", "")), entry
    study_attr = study.user_attrs.get(key)
    if isinstance(study_attr, Mapping):
        for entry in study_attr.get("candidates") or []:
            if isinstance(entry, Mapping) and int(entry.get("trial", -1)) == trial.number:
                return _passed(entry), str(entry.get("summary", "")), dict(entry)
    return None, f"no {key} verdict", {}


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


def _open_study(storage: str | None, studies_root: Path, name: str) -> optuna.Study:
    import optuna

    from search.study import mask_url, open_storage, storage_url

    url = storage_url(storage, studies_root)
    store = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = optuna.get_all_study_names(store)
        raise PromoteError(
            f"no study {name!r} in {mask_url(url)}; studies: {', '.join(names) or 'none'} "
            "(pass --storage if it lives elsewhere)"
        ) from None


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


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
        if _finite(value) is not None:
            dd_p95, sources["drawdown_p95"] = _finite(value), name
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
            if _finite(data) is not None:
                dd_p95, sources["drawdown_p95"] = _finite(data), str(base / file)
                break
    return Expected(daily_mean=mean, daily_std=std, days=days, drawdown_p95=dd_p95, sources=sources)


def find_candidates(
    study: optuna.Study, *, top: int, studies_root: Path
) -> tuple[list[Candidate], list[Rejection]]:
    """The ``top`` trials that passed the gates, the confirmation and the reproduction, and why the others
    did not."""
    from optuna.trial import TrialState

    from search.gate import load_study_space

    space = load_study_space(study)
    eligible: list[tuple[tuple[int, int], FrozenTrial, dict[str, Any], str, str, str]] = []
    rejected: list[Rejection] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        gate_ok, gate_summary, gate_entry = verdict(study, trial, GATE_ATTR)
        confirm_ok, confirm_summary, _ = verdict(study, trial, CONFIRM_ATTR)
        if gate_ok is None and confirm_ok is None:
            continue  # never a candidate: not worth a line
        if not gate_ok:
            rejected.append(Rejection(trial.number, f"gate: {gate_summary or 'not passed'}"))
            continue
        if not confirm_ok:
            rejected.append(Rejection(trial.number, f"confirm: {confirm_summary or 'not passed'}"))
            continue
        reproduce_ok, reproduce_summary, _ = verdict(study, trial, REPRODUCE_ATTR)
        if not reproduce_ok:
            hint = (
                f"; run `search reproduce --study {study.study_name} --trial {trial.number}`"
                if reproduce_ok is None
                else ""
            )
            rejected.append(Rejection(trial.number, f"reproduce: {reproduce_summary or 'not passed'}{hint}"))
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
    from search.gate import records_folder
    from search.records import read_meta, record_path

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
    broker: str | None = None  # None: tradelocker for forex specs, tradier otherwise
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


def _broker_for(spec: StrategySpec, wanted: str | None) -> tuple[str | None, str]:
    kind = spec.instrument.type
    natural = "tradelocker" if kind == "forex" else "tradier"
    broker = wanted or natural
    if broker == "tradelocker" and kind != "forex":
        return (
            None,
            f"--broker tradelocker trades forex only; this spec trades {kind} {spec.instrument.symbol}",
        )
    if broker == "tradier" and kind == "forex":
        return (
            None,
            f"--broker tradier has no forex; this spec trades {spec.instrument.symbol} (use tradelocker)",
        )
    return broker, ""


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

    verdicts = ("space_text", GATE_ATTR, CONFIRM_ATTR, REPRODUCE_ATTR, "wfo")
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
    options: PromoteOptions, store: DeploymentStore, *, echo: Callable[[str], None] = click.echo
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

    result = PromoteResult()
    mode = Mode.LIVE if options.live else Mode.PAPER
    if options.live and options.scheduled:
        raise PromoteError("live trading is never automatic: --live cannot be combined with --schedule")
    study = _open_study(options.storage, options.studies_root, options.study)
    candidates, rejected = find_candidates(study, top=options.top, studies_root=options.studies_root)
    for r in rejected:
        result.skipped.append(f"trial {r.trial}: {r.reason}")
    if not candidates:
        result.skipped.append(
            f"study {options.study!r}: no trial passed the gates ({GATE_ATTR!r}), the Lumibot confirmation "
            f"({CONFIRM_ATTR!r}) and the reproduction ({REPRODUCE_ATTR!r}); run `search gate`, `search confirm` "
            "and `search reproduce` first"
        )
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
    echo: Callable[[str], None] = click.echo,
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
    options: PromoteOptions, store: DeploymentStore, *, echo: Callable[[str], None] = click.echo
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
    echo: Callable[[str], None] = click.echo,
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
        except click.ClickException as exc:
            echo(f"promotion run failed: {exc.format_message()}")

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


# ----------------------------------------------------------------------------------------- commands


def _store(db: str | None, studies_root: Path) -> DeploymentStore:
    from brokers.deployments import DeploymentStore, default_db_url

    return DeploymentStore(db or default_db_url(studies_root))


def _studies_root(value: Path | None) -> Path:
    from search.paths import studies_root

    return value if value is not None else studies_root()


_common_db = click.option("--db", default=None, help=_DB_HELP)
_common_root = click.option(
    "--studies-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Runtime folder (default ${STUDIES_ROOT_ENV} or ./studies); deployments go to <root>/deployments/<id>/.",
)
_common_env = click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A .env file with the broker credentials (default ./.env if present; the environment wins).",
)


@click.command("promote")
@click.option(
    "--study",
    "study_name",
    required=True,
    help="Study whose gated, confirmed and reproduced trials to deploy.",
)
@click.option(
    "--top", type=click.IntRange(min=1), default=1, show_default=True, help="Deploy at most K candidates."
)
@click.option("--dry-run", is_flag=True, help="Print what would be deployed; record and start nothing.")
@click.option(
    "--broker",
    type=click.Choice(["tradier", "tradelocker"]),
    default=None,
    help="Default: tradelocker for forex specs, tradier for stocks, options and futures.",
)
@click.option(
    "--schedule",
    "cron",
    default=None,
    help="Run promotion on this crontab schedule (UTC, e.g. '0 14 * * mon-fri'); each run also retires "
    "deployments whose paper results left the backtest's range. Runs until Ctrl-C.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Trade real money: needs a recorded approval (search approve); never scheduled.",
)
@click.option(
    "--market",
    default=None,
    help="Lumibot market calendar override (default NYSE / us_futures / 24/5 by instrument).",
)
@click.option(
    "--max-position", type=float, default=None, help="Risk limit: max |position| per symbol, in units."
)
@click.option(
    "--daily-loss",
    default="2%",
    show_default=True,
    help="Risk limit: max loss per day, an amount or a percentage of the account equity; 'none' disables.",
)
@click.option(
    "--max-orders",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Risk limit: orders per day.",
)
@click.option("--storage", default=None, help=_STORAGE_HELP)
@_common_db
@_common_root
@_common_env
def promote(
    study_name: str,
    top: int,
    dry_run: bool,
    broker: str | None,
    cron: str | None,
    live: bool,
    market: str | None,
    max_position: float | None,
    daily_loss: str,
    max_orders: int,
    storage: str | None,
    db: str | None,
    studies_root: Path | None,
    env_file: Path | None,
) -> None:
    """Deploy the study's best gated, confirmed and reproduced candidates to paper trading (or, approved,
    live)."""
    root = _studies_root(studies_root)
    options = PromoteOptions(
        study=study_name,
        top=top,
        storage=storage,
        db=db,
        studies_root=root,
        dry_run=dry_run,
        broker=broker,
        live=live,
        market=market,
        max_position=max_position,
        daily_loss=daily_loss,
        max_orders=max_orders,
        env_file=env_file,
    )
    store = _store(db, root)
    if cron:
        if dry_run:
            raise PromoteError("--dry-run and --schedule together would do nothing; drop one")
        scheduler = make_scheduler(options, store, cron)
        click.echo(
            f"promoting {study_name} on schedule '{cron}' (UTC); Ctrl-C stops the schedule (not the deployments)"
        )
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            click.echo("schedule stopped; running deployments keep running (`search stop --all` stops them)")
        return
    result = promote_candidates(options, store)
    for line in result.planned:
        click.echo(line)
    for line in result.skipped:
        click.echo(f"skipped: {line}")
    for line in result.errors:
        click.echo(f"error: {line}", err=True)
    if dry_run and not result.planned:
        click.echo("nothing to deploy")
    if result.errors and not result.started and not result.planned:
        sys.exit(1)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


@click.command("deployments")
@click.option("--study", "study_name", default=None, help="Only this study's deployments.")
@click.option("--active", is_flag=True, help="Only pending and running deployments.")
@_common_db
@_common_root
def deployments(study_name: str | None, active: bool, db: str | None, studies_root: Path | None) -> None:
    """List deployments with their paper PnL against the backtest's expectation."""
    from rich.console import Console
    from rich.table import Table

    from brokers.deployments import Status, check_expectation, paper_stats

    store = _store(db, _studies_root(studies_root))
    statuses = (Status.PENDING, Status.RUNNING) if active else None
    rows = store.list_deployments(statuses=statuses, study=study_name)
    if not rows:
        click.echo(f"no deployments in {store.masked_url}")
        return
    table = Table(title=f"deployments ({store.masked_url})")
    table.add_column("id", no_wrap=True)
    for name in (
        "trial",
        "broker",
        "mode",
        "status",
        "started (UTC)",
        "paper PnL",
        "days",
        "mean/day paper | backtest",
        "max DD paper | p95",
        "vs backtest",
        "reason",
    ):
        table.add_column(name)
    for dep in rows:
        stats = paper_stats(dep.starting_equity, store.snapshots(dep.id))
        check = check_expectation(dep.expected, stats)
        exp = dep.expected
        table.add_row(
            dep.id,
            str(dep.trial_number),
            f"{dep.broker} {dep.account_masked}",
            dep.mode.value,
            dep.status.value,
            dep.started_at.strftime("%Y-%m-%d %H:%M") if dep.started_at else "-",
            "-" if stats.pnl is None else f"{stats.pnl:+,.2f}",
            str(stats.days),
            f"{_pct(stats.daily_mean)} | {_pct(exp.daily_mean)}±{_pct(exp.daily_std)}",
            f"{_pct(stats.max_drawdown)} | {_pct(exp.drawdown_p95)}",
            "[red]outside[/red]" if check.outside else "within" if stats.days else "-",
            dep.stop_reason or check.reason,
        )
    Console(width=max(160, Console().width)).print(table)


@click.command("stop")
@click.argument("deployment_id", required=False)
@click.option(
    "--all", "stop_all", is_flag=True, help="Kill switch: stop and flatten every active deployment."
)
@click.option(
    "--reason", default=None, help="Recorded as the stop reason (default: 'stopped by hand' / 'kill switch')."
)
@_common_db
@_common_root
@_common_env
def stop(
    deployment_id: str | None,
    stop_all: bool,
    reason: str | None,
    db: str | None,
    studies_root: Path | None,
    env_file: Path | None,
) -> None:
    """Stop a deployment (or --all): end its process, flatten its positions through the broker adapter."""
    from brokers.deployments import DeploymentNotFound
    from brokers.paper import kill_switch, stop_deployment

    if bool(deployment_id) == stop_all:
        raise click.UsageError("give a deployment ID or --all (the kill switch), not both and not neither")
    store = _store(db, _studies_root(studies_root))
    if stop_all:
        reports = kill_switch(store, reason=reason or "kill switch", env_file=env_file)
        if not reports:
            click.echo("no active deployments")
    else:
        assert deployment_id is not None
        try:
            reports = [
                stop_deployment(store, deployment_id, reason=reason or "stopped by hand", env_file=env_file)
            ]
        except DeploymentNotFound as exc:
            raise click.ClickException(str(exc)) from None
    failed = False
    for report in reports:
        if report.already_final:
            click.echo(f"{report.deployment_id}: already {report.status.value} ({report.reason})")
            continue
        click.echo(f"{report.deployment_id}: {report.status.value}: {report.reason}")
        failed = failed or bool(report.errors)
    if failed:
        sys.exit(1)


@click.command("approve")
@click.argument("deployment_id")
@click.option("--by", "approved_by", required=True, help="Who approves live trading of this candidate.")
@click.option("--reason", required=True, help="Why (recorded with the approval).")
@_common_db
@_common_root
def approve(
    deployment_id: str, approved_by: str, reason: str, db: str | None, studies_root: Path | None
) -> None:
    """Record a human approval for live trading of the candidate a deployment runs."""
    from brokers.deployments import DeploymentNotFound

    store = _store(db, _studies_root(studies_root))
    try:
        approval = store.record_approval(deployment_id, approved_by=approved_by, reason=reason)
    except (DeploymentNotFound, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"approved {approval.study} trial {approval.trial_number} for live trading by {approval.approved_by} "
        f"at {approval.approved_at:%Y-%m-%d %H:%M} UTC; start it with `search promote --study {approval.study} --live`"
    )
