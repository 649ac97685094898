"""Deployments of promoted candidates: one row per paper (or approved live) trader, in a SQL database.

Storage: any SQLAlchemy URL; by default the SQLite file ``<studies root>/deployments.db``
(``studies/deployments.db``). ``$FARM_DEPLOYMENTS_DB`` or ``--db`` choose another database.

Tables (created on first use):

* ``deployments``: what runs (study, trial, spec JSON, params, broker, masked account, mode, market),
  where it stands (status, pids, start/stop times and the stop reason), its risk limits, its provenance
  and the performance range its backtest predicts (``expected``).
* ``snapshots``: account equity / PnL readings taken by the paper trader (start, periodic, reconcile,
  final), with the open positions.
* ``events``: a log of what happened to a deployment (started, reconciled, restarted, breach, stopped).
* ``approvals``: human approvals for live trading (who, when, why), per candidate (study + trial).

Secrets never reach the database: credentials stay in the environment, account ids are masked, and
every text written here first goes through :func:`scrub`, which masks the current value of every
credential variable (``TRADIER_API_KEY``, ``TRADELOCKER_PASSWORD`` ...) should one slip into a message.

Status life cycle::

    pending -> running -> stopped   (kill switch, search stop, risk-limit breach)
                       -> retired   (paper results left the backtest's predicted range)
                       -> failed    (bad credentials, broker refused, crashed too often)

Ownership: a deployment owns its broker account. Flattening, paper PnL and the daily loss limit are
account-wide, so at most one deployment runs per broker account (see :meth:`DeploymentStore.active_on_account`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from brokers.errors import redact
from brokers.risk import RiskLimits
from data.safe import json_safe, mask_url

__all__ = [
    "DEPLOYMENTS_DB_ENV",
    "SECRET_ENV_VARS",
    "Approval",
    "Deployment",
    "DeploymentEvent",
    "DeploymentNotFound",
    "DeploymentStore",
    "ExpectationCheck",
    "Expected",
    "Mode",
    "PaperStats",
    "Snapshot",
    "Status",
    "account_key",
    "check_expectation",
    "default_db_url",
    "mask_account",
    "paper_stats",
    "scrub",
]

DEPLOYMENTS_DB_ENV = "FARM_DEPLOYMENTS_DB"
#: Environment variables whose values are credentials: masked out of everything stored or logged.
SECRET_ENV_VARS = (
    "TRADIER_API_KEY",
    "TRADELOCKER_PASSWORD",
    "TRADELOCKER_USERNAME",
    "LUMIWEALTH_API_KEY",
    "POLYGON_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
)
_NEW_YORK = ZoneInfo("America/New_York")


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    RETIRED = "retired"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        return self in (Status.PENDING, Status.RUNNING)


class Mode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class DeploymentNotFound(KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; this message is a sentence
        return str(self.args[0])


# ----------------------------------------------------------------------------------------- secrets


def _secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    # Values this short would mask ordinary words; real credentials are longer.
    return [env[name] for name in SECRET_ENV_VARS if len(env.get(name, "")) >= 6]


def scrub(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every current credential value (and ``extra`` secrets) masked."""
    return redact(text, [*_secret_values(), *extra])


def mask_account(account_id: str) -> str:
    """``VA12345678`` -> ``…5678``: enough to tell accounts apart in a listing, not to use one."""
    text = str(account_id)
    return "…" + text[-4:] if len(text) > 4 else "…"


def account_key(broker: str, account_id: str) -> str:
    """A stable key for "the same broker account" that does not store the account id itself."""
    return hashlib.sha256(f"{broker}:{account_id}".encode()).hexdigest()[:16]


def default_db_url(studies_root: str | Path | None = None) -> str:
    """``$FARM_DEPLOYMENTS_DB`` if set, else SQLite at ``<studies root>/deployments.db``."""
    from_env = os.environ.get(DEPLOYMENTS_DB_ENV, "").strip()
    if from_env:
        return from_env
    root = Path(studies_root if studies_root is not None else os.environ.get("FARM_STUDIES", "studies"))
    return f"sqlite:///{(root / 'deployments.db').as_posix()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite returns naive datetimes; everything here is stored in UTC.
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _dumps(value: Any) -> str:
    return scrub(json.dumps(value, sort_keys=True, default=str, allow_nan=False))



# ----------------------------------------------------------------------------------------- tables


class _Base(DeclarativeBase):
    pass


class _DeploymentRow(_Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    study: Mapped[str] = mapped_column(sa.String(200), index=True)
    trial_number: Mapped[int] = mapped_column(sa.Integer)
    spec_json: Mapped[str] = mapped_column(sa.Text)
    params_json: Mapped[str] = mapped_column(sa.Text)
    broker: Mapped[str] = mapped_column(sa.String(20))
    account_masked: Mapped[str] = mapped_column(sa.String(40))
    account_key: Mapped[str] = mapped_column(sa.String(32), index=True)
    mode: Mapped[str] = mapped_column(sa.String(10))
    market: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(10), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    risk_limits_json: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    pid: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    runner_pid: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    restarts: Mapped[int] = mapped_column(sa.Integer, default=0)
    provenance_json: Mapped[str] = mapped_column(sa.Text)
    expected_json: Mapped[str] = mapped_column(sa.Text)
    folder: Mapped[str] = mapped_column(sa.Text)
    starting_equity: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    settings_json: Mapped[str] = mapped_column(sa.Text, default="{}")


class _DeploymentLogRow:
    """A row of one deployment's append-only log (its snapshots, its events): numbered, keyed by the deployment."""

    # sort_order keeps them the first columns of the table, where they were before the mixin (the same DDL)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True, sort_order=-2)
    deployment_id: Mapped[str] = mapped_column(sa.ForeignKey("deployments.id"), index=True, sort_order=-1)


class _SnapshotRow(_DeploymentLogRow, _Base):
    __tablename__ = "snapshots"

    taken_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(sa.String(20))
    equity: Mapped[float] = mapped_column(sa.Float)
    cash: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    open_pnl: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    closed_pnl_today: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    positions_json: Mapped[str] = mapped_column(sa.Text, default="[]")


class _EventRow(_DeploymentLogRow, _Base):
    __tablename__ = "events"

    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(sa.String(30))
    message: Mapped[str] = mapped_column(sa.Text)


class _ApprovalRow(_Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str | None] = mapped_column(sa.String(80), nullable=True)
    study: Mapped[str] = mapped_column(sa.String(200), index=True)
    trial_number: Mapped[int] = mapped_column(sa.Integer)
    approved_by: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.Text)
    approved_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    scope: Mapped[str] = mapped_column(sa.String(20), default="live")


# ----------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Expected:
    """The performance range the backtest predicts for a candidate (any field may be unknown).

    ``daily_mean`` / ``daily_std``: out-of-sample daily simple returns (fractions) over ``days`` days;
    ``drawdown_p95``: the 95th percentile of the bootstrapped max drawdown (a positive fraction).
    """

    daily_mean: float | None = None
    daily_std: float | None = None
    days: int | None = None
    drawdown_p95: float | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return json_safe(
            {
                "daily_mean": self.daily_mean,
                "daily_std": self.daily_std,
                "days": self.days,
                "drawdown_p95": self.drawdown_p95,
                "sources": dict(self.sources),
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Expected:
        data = data or {}
        return cls(
            daily_mean=data.get("daily_mean"),
            daily_std=data.get("daily_std"),
            days=data.get("days"),
            drawdown_p95=data.get("drawdown_p95"),
            sources=dict(data.get("sources") or {}),
        )


@dataclass(frozen=True)
class Deployment:
    id: str
    study: str
    trial_number: int
    spec: dict[str, Any]
    params: dict[str, Any]
    broker: str
    account_masked: str
    account_key: str
    mode: Mode
    market: str
    status: Status
    created_at: dt.datetime
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None
    stop_reason: str | None
    risk_limits: RiskLimits | None
    pid: int | None
    runner_pid: int | None
    restarts: int
    provenance: dict[str, Any]
    expected: Expected
    folder: Path
    starting_equity: float | None
    settings: dict[str, Any]

    @property
    def candidate(self) -> tuple[str, int]:
        return (self.study, self.trial_number)


@dataclass(frozen=True)
class Snapshot:
    deployment_id: str
    taken_at: dt.datetime
    kind: str
    equity: float
    cash: float | None
    open_pnl: float | None
    closed_pnl_today: float | None
    positions: list[dict[str, Any]]


@dataclass(frozen=True)
class DeploymentEvent:
    deployment_id: str
    at: dt.datetime
    kind: str
    message: str


@dataclass(frozen=True)
class Approval:
    study: str
    trial_number: int
    approved_by: str
    reason: str
    approved_at: dt.datetime
    deployment_id: str | None
    scope: str = "live"


def _deployment(row: _DeploymentRow) -> Deployment:
    limits = json.loads(row.risk_limits_json) if row.risk_limits_json else None
    return Deployment(
        id=row.id,
        study=row.study,
        trial_number=row.trial_number,
        spec=json.loads(row.spec_json),
        params=json.loads(row.params_json),
        broker=row.broker,
        account_masked=row.account_masked,
        account_key=row.account_key,
        mode=Mode(row.mode),
        market=row.market,
        status=Status(row.status),
        created_at=_utc(row.created_at),  # type: ignore[arg-type]
        started_at=_utc(row.started_at),
        stopped_at=_utc(row.stopped_at),
        stop_reason=row.stop_reason,
        risk_limits=RiskLimits.model_validate(limits) if limits else None,
        pid=row.pid,
        runner_pid=row.runner_pid,
        restarts=row.restarts or 0,
        provenance=json.loads(row.provenance_json),
        expected=Expected.from_json(json.loads(row.expected_json)),
        folder=Path(row.folder),
        starting_equity=row.starting_equity,
        settings=json.loads(row.settings_json or "{}"),
    )


def _slug(text: str, limit: int = 40) -> str:
    return (re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "study")[:limit]


# ----------------------------------------------------------------------------------------- store


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # The paper trader writes snapshots while the CLI reads and the scheduler writes statuses: WAL
    # lets readers proceed during a write; busy_timeout makes a writer wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class DeploymentStore:
    """Deployments, snapshots, events and approvals in one database. Safe to use from several processes
    (each opens its own store); one store object is safe across threads (a session per call)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_db_url()
        if "://" not in self.url:
            raise ValueError(
                f"deployments database {mask_url(self.url)!r} is not a SQLAlchemy URL; "
                "give e.g. sqlite:///studies/deployments.db or postgresql://user@host/db"
            )
        kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite:///"):
            path = Path(self.url[len("sqlite:///") :]).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def close(self) -> None:
        self.engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    # ------------------------------------------------------------------ deployments
    def create(
        self,
        *,
        study: str,
        trial_number: int,
        spec: Mapping[str, Any],
        params: Mapping[str, Any],
        broker: str,
        account_id: str,
        mode: Mode | str,
        market: str,
        risk_limits: RiskLimits | None,
        provenance: Mapping[str, Any],
        expected: Expected,
        folder_root: str | Path,
        settings: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Record a new deployment (status ``pending``) and create its folder ``<folder_root>/<id>``."""
        mode = Mode(mode)
        stamp = _now().strftime("%Y%m%d%H%M%S")
        deployment_id = f"{_slug(study)}-t{trial_number}-{stamp}-{_secrets.token_hex(2)}"
        folder = Path(folder_root) / deployment_id
        folder.mkdir(parents=True, exist_ok=False)
        row = _DeploymentRow(
            id=deployment_id,
            study=study,
            trial_number=int(trial_number),
            spec_json=_dumps(dict(spec)),
            params_json=_dumps(json_safe(dict(params))),
            broker=broker,
            account_masked=mask_account(account_id),
            account_key=account_key(broker, account_id),
            mode=mode.value,
            market=market,
            status=Status.PENDING.value,
            created_at=_now(),
            risk_limits_json=risk_limits.model_dump_json() if risk_limits is not None else None,
            restarts=0,
            provenance_json=_dumps(json_safe(dict(provenance))),
            expected_json=_dumps(expected.to_json()),
            folder=str(folder.resolve()),
            settings_json=_dumps(dict(settings or {})),
        )
        with self._session() as session, session.begin():
            session.add(row)
        self.record_event(
            deployment_id, "created", f"{mode.value} deployment of {study} trial {trial_number} on {broker}"
        )
        return self.get(deployment_id)

    def get(self, deployment_id: str) -> Deployment:
        with self._session() as session:
            row = session.get(_DeploymentRow, deployment_id)
            if row is None:
                known = [
                    r
                    for (r,) in session.execute(
                        sa.select(_DeploymentRow.id).order_by(_DeploymentRow.created_at.desc()).limit(5)
                    )
                ]
                hint = f" (latest: {', '.join(known)})" if known else " (the database has no deployments)"
                raise DeploymentNotFound(
                    f"no deployment {deployment_id!r} in {self.masked_url}{hint}; `search deployments` lists them"
                )
            return _deployment(row)

    def list_deployments(
        self, *, statuses: Iterable[Status | str] | None = None, study: str | None = None
    ) -> list[Deployment]:
        query = sa.select(_DeploymentRow).order_by(_DeploymentRow.created_at)
        if statuses is not None:
            query = query.where(_DeploymentRow.status.in_([Status(s).value for s in statuses]))
        if study is not None:
            query = query.where(_DeploymentRow.study == study)
        with self._session() as session:
            return [_deployment(row) for row in session.scalars(query)]

    def active(self) -> list[Deployment]:
        return self.list_deployments(statuses=(Status.PENDING, Status.RUNNING))

    def active_on_account(self, broker: str, account_id: str) -> list[Deployment]:
        key = account_key(broker, account_id)
        return [d for d in self.active() if d.account_key == key]

    def _update(self, deployment_id: str, **values: Any) -> None:
        with self._session() as session, session.begin():
            row = session.get(_DeploymentRow, deployment_id)
            if row is None:
                raise DeploymentNotFound(f"no deployment {deployment_id!r} in {self.masked_url}")
            for key, value in values.items():
                setattr(row, key, value)

    def mark_running(self, deployment_id: str, *, pid: int) -> None:
        """The supervisor process ``pid`` owns the deployment now."""
        self._update(deployment_id, status=Status.RUNNING.value, pid=pid, started_at=_now(), stop_reason=None)

    def set_runner_pid(self, deployment_id: str, runner_pid: int | None) -> None:
        self._update(deployment_id, runner_pid=runner_pid)

    def count_restart(self, deployment_id: str) -> int:
        with self._session() as session, session.begin():
            row = session.get(_DeploymentRow, deployment_id)
            if row is None:
                raise DeploymentNotFound(f"no deployment {deployment_id!r} in {self.masked_url}")
            row.restarts = (row.restarts or 0) + 1
            return row.restarts

    def set_starting_equity(self, deployment_id: str, equity: float) -> None:
        """The equity paper PnL is measured from (set once, by the first run)."""
        with self._session() as session, session.begin():
            row = session.get(_DeploymentRow, deployment_id)
            if row is not None and row.starting_equity is None:
                row.starting_equity = float(equity)

    def finish(self, deployment_id: str, status: Status | str, reason: str) -> bool:
        """Move an active deployment to a final status with a reason. False if it was final already
        (the first reason recorded wins: a breach is not overwritten by the stop that follows it)."""
        status = Status(status)
        if status.is_active:
            raise ValueError(f"finish() needs a final status, not {status.value!r}")
        with self._session() as session, session.begin():
            row = session.get(_DeploymentRow, deployment_id)
            if row is None:
                raise DeploymentNotFound(f"no deployment {deployment_id!r} in {self.masked_url}")
            if not Status(row.status).is_active:
                return False
            row.status = status.value
            row.stop_reason = scrub(reason)
            row.stopped_at = _now()
            row.pid = None
            row.runner_pid = None
        self.record_event(deployment_id, status.value, reason)
        return True

    # ------------------------------------------------------------------ snapshots and events
    def record_snapshot(
        self,
        deployment_id: str,
        *,
        kind: str,
        equity: float,
        cash: float | None = None,
        open_pnl: float | None = None,
        closed_pnl_today: float | None = None,
        positions: Sequence[Mapping[str, Any]] = (),
        taken_at: dt.datetime | None = None,
    ) -> None:
        row = _SnapshotRow(
            deployment_id=deployment_id,
            taken_at=taken_at or _now(),
            kind=kind,
            equity=float(equity),
            cash=cash,
            open_pnl=open_pnl,
            closed_pnl_today=closed_pnl_today,
            positions_json=_dumps([dict(p) for p in positions]),
        )
        with self._session() as session, session.begin():
            session.add(row)

    def snapshots(self, deployment_id: str) -> list[Snapshot]:
        query = (
            sa.select(_SnapshotRow)
            .where(_SnapshotRow.deployment_id == deployment_id)
            .order_by(_SnapshotRow.taken_at, _SnapshotRow.id)
        )
        with self._session() as session:
            return [
                Snapshot(
                    deployment_id=r.deployment_id,
                    taken_at=_utc(r.taken_at),  # type: ignore[arg-type]
                    kind=r.kind,
                    equity=r.equity,
                    cash=r.cash,
                    open_pnl=r.open_pnl,
                    closed_pnl_today=r.closed_pnl_today,
                    positions=json.loads(r.positions_json or "[]"),
                )
                for r in session.scalars(query)
            ]

    def record_event(self, deployment_id: str, kind: str, message: str) -> None:
        row = _EventRow(deployment_id=deployment_id, at=_now(), kind=kind, message=scrub(message))
        with self._session() as session, session.begin():
            session.add(row)

    def events(self, deployment_id: str) -> list[DeploymentEvent]:
        query = sa.select(_EventRow).where(_EventRow.deployment_id == deployment_id).order_by(_EventRow.id)
        with self._session() as session:
            return [
                DeploymentEvent(r.deployment_id, _utc(r.at), r.kind, r.message)
                for r in session.scalars(query)
            ]  # type: ignore[arg-type]

    # ------------------------------------------------------------------ approvals
    def record_approval(self, deployment_id: str, *, approved_by: str, reason: str) -> Approval:
        """A human approves live trading of the candidate (study + trial) that ``deployment_id`` runs."""
        approved_by, reason = approved_by.strip(), reason.strip()
        if not approved_by:
            raise ValueError("an approval needs the approver's name (--by NAME)")
        if not reason:
            raise ValueError(
                "an approval needs a reason (--reason TEXT): why is this candidate fit for live trading?"
            )
        deployment = self.get(deployment_id)
        row = _ApprovalRow(
            deployment_id=deployment.id,
            study=deployment.study,
            trial_number=deployment.trial_number,
            approved_by=scrub(approved_by),
            reason=scrub(reason),
            approved_at=_now(),
            scope="live",
        )
        with self._session() as session, session.begin():
            session.add(row)
        self.record_event(deployment.id, "approved", f"live trading approved by {approved_by}: {reason}")
        return Approval(
            deployment.study,
            deployment.trial_number,
            row.approved_by,
            row.reason,
            row.approved_at,
            deployment.id,
        )

    def approvals(self, study: str, trial_number: int) -> list[Approval]:
        query = (
            sa.select(_ApprovalRow)
            .where(_ApprovalRow.study == study, _ApprovalRow.trial_number == int(trial_number))
            .order_by(_ApprovalRow.approved_at)
        )
        with self._session() as session:
            return [
                Approval(
                    r.study,
                    r.trial_number,
                    r.approved_by,
                    r.reason,
                    _utc(r.approved_at),
                    r.deployment_id,
                    r.scope,
                )  # type: ignore[arg-type]
                for r in session.scalars(query)
            ]


# ----------------------------------------------------------------------------------------- paper vs backtest


@dataclass(frozen=True)
class PaperStats:
    """Paper results from the snapshots: PnL since the start, daily returns, max drawdown."""

    starting_equity: float | None
    equity: float | None
    pnl: float | None
    daily_returns: list[float]
    max_drawdown: float  # positive fraction of the running peak
    last_at: dt.datetime | None

    @property
    def days(self) -> int:
        return len(self.daily_returns)

    @property
    def daily_mean(self) -> float | None:
        return sum(self.daily_returns) / len(self.daily_returns) if self.daily_returns else None


def paper_stats(starting_equity: float | None, snapshots: Sequence[Snapshot]) -> PaperStats:
    """Daily returns are the change of the last equity of each New York trading date (the first day
    against the starting equity); the drawdown runs over every snapshot."""
    ordered = sorted(snapshots, key=lambda s: s.taken_at)
    if not ordered:
        return PaperStats(starting_equity, None, None, [], 0.0, None)
    start = starting_equity if starting_equity is not None else ordered[0].equity
    by_day: dict[dt.date, float] = {}
    for snap in ordered:
        by_day[snap.taken_at.astimezone(_NEW_YORK).date()] = snap.equity
    returns, previous = [], start
    for day in sorted(by_day):
        equity = by_day[day]
        if previous:
            returns.append(equity / previous - 1.0)
        previous = equity
    peak, max_dd = start, 0.0
    for snap in ordered:
        peak = max(peak, snap.equity)
        if peak > 0:
            max_dd = max(max_dd, (peak - snap.equity) / peak)
    last = ordered[-1]
    return PaperStats(start, last.equity, last.equity - start, returns, max_dd, last.taken_at)


@dataclass(frozen=True)
class ExpectationCheck:
    """Whether paper results are inside the backtest's predicted range. ``outside`` means retire."""

    outside: bool
    reason: str
    low: float | None = None  # lowest acceptable mean daily return over the paper days
    z: float | None = None


def check_expectation(
    expected: Expected, stats: PaperStats, *, z_crit: float = 2.33, min_days: int = 5
) -> ExpectationCheck:
    """Compare paper results with the backtest's prediction; only the downside retires a deployment.

    * drawdown: paper max drawdown above the bootstrapped 95th percentile ``drawdown_p95``;
    * mean: after ``min_days`` paper days, the mean daily return below
      ``daily_mean - z_crit * daily_std / sqrt(days)`` (a one-sided 99% band by default: with returns
      like the backtest's, a deployment is retired by chance about once in a hundred checks).

    Better-than-predicted results are reported, not punished.
    """
    if expected.drawdown_p95 is not None and stats.max_drawdown > expected.drawdown_p95:
        return ExpectationCheck(
            True,
            f"paper max drawdown {stats.max_drawdown:.2%} exceeds the backtest's bootstrap p95 "
            f"{expected.drawdown_p95:.2%}",
        )
    if expected.daily_mean is None or expected.daily_std is None:
        return ExpectationCheck(False, "no backtest daily-return range to compare with (drawdown only)")
    if stats.days < min_days:
        return ExpectationCheck(
            False, f"{stats.days} paper day(s); the mean is compared from {min_days} days on"
        )
    mean = stats.daily_mean or 0.0
    se = expected.daily_std / math.sqrt(stats.days)
    low = expected.daily_mean - z_crit * se
    z = (mean - expected.daily_mean) / se if se > 0 else (0.0 if mean == expected.daily_mean else -math.inf)
    if mean < low:
        return ExpectationCheck(
            True,
            f"paper mean daily return {mean:.3%} over {stats.days} days is below the backtest's range "
            f"(OOS mean {expected.daily_mean:.3%} - {z_crit:g} x std {expected.daily_std:.3%}/sqrt({stats.days}) "
            f"= {low:.3%}; z = {z:.2f})",
            low,
            z,
        )
    return ExpectationCheck(
        False,
        f"paper mean daily return {mean:.3%} over {stats.days} days is within range (>= {low:.3%})",
        low,
        z,
    )
