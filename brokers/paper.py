"""Paper (and approved live) trading of a deployment: its spec run as a Lumibot strategy in a supervised process.

Processes. Lumibot's ``Trader`` wants the main thread of its process (signal handlers, the strategy
executor's scheduler), and a deployment must outlive the command that started it, so each deployment
runs as two detached processes in its own folder ``studies/deployments/<id>/`` (the working
directory: Lumibot's files land there, never in the caller's directory):

* the **supervisor** (``python -m brokers.paper supervise ID``, ``supervisor.log``) starts the runner,
  restarts it after a crash (``max_restarts`` times, ``restart_backoff`` seconds apart) and forwards a
  stop (SIGTERM) to it. Its pid is the deployment's ``pid``.
* the **runner** (``python -m brokers.paper run ID``, ``runner.log`` and Lumibot's ``lumibot.log``)
  checks the credentials, reconciles with the broker (the positions as a ``reconcile`` snapshot; a
  ``reconciled`` event naming the positions and the working orders and exits, so a restart after a
  crash says what it found), builds the risk guard, the Lumibot broker and the strategy, and runs
  ``Trader.run_all()`` in its main thread. A monitor thread records PnL snapshots every
  ``monitor_seconds`` and checks the daily loss limit. The strategy adopts what it finds: a held
  position is not entered again, and its exits still working at the broker are kept (moved if they
  must), not placed twice (:mod:`brokers.live`).

One order path (:mod:`brokers.lumibot_broker`): the Lumibot broker of every deployment, paper or live,
whatever the market (stocks, options, futures, forex), is :class:`~brokers.lumibot_broker.AdapterBroker`
over the broker's :class:`~brokers.base.BrokerAdapter` (:class:`~brokers.lumibot_tradier.TradierBroker`,
:class:`~brokers.lumibot_tradelocker.TradeLockerBroker`, picked from :data:`BROKERS`), so every order has an
idempotent client id, is reconciled rather than re-sent after an uncertain submit, and passes the risk
guard inside the adapter. A registry entry's adapter options carry the market flags: the Tradier adapter
trades futures only with ``FARM_ENABLE_FUTURES=1`` (:mod:`brokers.markets`).

Exit codes of the runner: 0 done (stopped on request, or stopped itself after a risk breach),
2 setup failure (credentials, approval, spec: recorded as ``failed``; not restarted), anything
else a crash (restarted by the supervisor).

Risk limits (:class:`brokers.risk.RiskLimits`): the guard is the adapter's ``risk_guard``, so
:meth:`~brokers.base.BrokerAdapter.place_order` checks every order against it (``max_position_size``,
``max_orders_per_day``) before anything is sent; the monitor checks ``daily_loss_limit`` against the
account's realised + open PnL of the day (on the same guard, which then refuses further risk). A breach
refuses the order, stops the strategy, flattens the account through the adapter and records the
deployment ``stopped`` with the breach as the reason.

Secrets. Credentials are read from the environment (or the ``.env`` file named by ``$FARM_ENV_FILE``)
in each process that needs them; they are never passed on a command line, written to the database,
or written to the deployment folder. The database URL reaches the children in ``$FARM_DEPLOYMENTS_DB``.

The strategy: :func:`build_strategy`, ``brokers.live.LiveSpecStrategy`` (the backtests' position rules on a live broker)
(:func:`brokers.live.live_strategy`): the class that confirmed the candidate in backtests,
deciding on the broker's bars with the engines' own signal code.

Lumibot quirk worked around here: stopping a live ``Trader`` while an iteration runs deadlocks
Lumibot 4.6.30 (see :func:`stop_trader`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brokers.base import Balance, BrokerAdapter, Order, Position, Protection
from brokers.credentials import CredentialsError, load_tradelocker_credentials, load_tradier_credentials
from brokers.deployments import (
    DEPLOYMENTS_DB_ENV,
    Deployment,
    DeploymentStore,
    Mode,
    Status,
    scrub,
)
from brokers.errors import AuthenticationError, BrokerError
from brokers.markets import futures_enabled
from brokers.risk import RiskGuard, RiskLimitBreached
from brokers.tradelocker import TradeLockerAdapter
from brokers.tradier import TradierAdapter
from evaluator.lumibot.env import LIVE_SET, LIVE_UNSET, apply_lumibot_environment

if TYPE_CHECKING:
    from lumibot.brokers.broker import Broker as LumiBroker

logger = logging.getLogger(__name__)

__all__ = [
    "BROKERS",
    "BrokerEntry",
    "ENV_FILE_ENV",
    "PaperSettings",
    "PaperSetupError",
    "StopReport",
    "build_lumibot_broker",
    "build_strategy",
    "default_market",
    "strategy_problem",
    "kill_switch",
    "main",
    "make_adapter",
    "preflight",
    "process_alive",
    "reconcile_processes",
    "start_paper_trader",
    "stop_deployment",
    "stop_trader",
]

@dataclass(frozen=True)
class BrokerEntry:
    """What deploying on one broker takes: its adapter from the environment's credentials
    (``adapter(live, env_file, **adapter_options)``) and the Lumibot broker over that adapter
    (``lumibot(adapter, live, **AdapterBroker options)``); ``options()`` are the adapter options the
    environment sets (read at each call: a flag such as ``FARM_ENABLE_FUTURES`` may change between runs),
    which a caller's own options override."""

    adapter: Callable[..., BrokerAdapter]
    lumibot: Callable[..., LumiBroker]
    options: Callable[[], dict[str, Any]] = dict


def _tradier_adapter(live: bool, env_file: str | Path | None, **options: Any) -> BrokerAdapter:
    return TradierAdapter.from_credentials(load_tradier_credentials(live=live, env_file=env_file), **options)


def _tradier_lumibot(adapter: BrokerAdapter, live: bool, **options: Any) -> LumiBroker:
    from brokers.lumibot_tradier import TradierBroker

    assert isinstance(adapter, TradierAdapter)
    return TradierBroker(adapter, paper=not live, **options)


def _tradelocker_adapter(live: bool, env_file: str | Path | None, **options: Any) -> BrokerAdapter:
    return TradeLockerAdapter.from_credentials(
        load_tradelocker_credentials(live=live, env_file=env_file), **options
    )


def _tradelocker_lumibot(adapter: BrokerAdapter, live: bool, **options: Any) -> LumiBroker:
    from brokers.lumibot_tradelocker import TradeLockerBroker

    assert isinstance(adapter, TradeLockerAdapter)
    return TradeLockerBroker(adapter, **options)


# The brokers deployments trade: adding one is an adapter and an entry here.
BROKERS: dict[str, BrokerEntry] = {
    "tradier": BrokerEntry(
        _tradier_adapter,
        _tradier_lumibot,
        # futures orders only with FARM_ENABLE_FUTURES=1 (brokers.markets)
        lambda: {"enable_futures": futures_enabled()},
    ),
    "tradelocker": BrokerEntry(_tradelocker_adapter, _tradelocker_lumibot),
}
ENV_FILE_ENV = "FARM_ENV_FILE"
EXIT_DONE = 0
EXIT_CRASH = 1
EXIT_SETUP = 2


class PaperSetupError(RuntimeError):
    """The deployment cannot start; the message says what to fix (secrets masked)."""


@dataclass(frozen=True)
class PaperSettings:
    """How a deployment's processes behave (stored with the deployment; the defaults suit real use)."""

    polling_interval: float = 5.0  # seconds between Lumibot's order/position polls
    monitor_seconds: float = 30.0  # seconds between PnL snapshots / daily-loss checks
    max_restarts: int = 3
    restart_backoff: float = 10.0
    stop_timeout: float = 30.0  # seconds a stopped process gets before it is killed
    flatten_timeout: float = 30.0  # seconds to wait for the account to be flat after flattening
    strategy: str = "spec"  # the strategy builder (see build_strategy)
    sleeptime: str | None = None  # Lumibot sleeptime override (default: from the spec's timeframe)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PaperSettings:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def default_market(instrument_type: str) -> str:
    """The exchange calendar Lumibot follows for an instrument type (``--market`` overrides it)."""
    return {"stock": "NYSE", "option": "NYSE", "future": "us_futures", "forex": "24/5"}.get(
        instrument_type, "NYSE"
    )


# ----------------------------------------------------------------------------------------- adapters


def _env_file() -> str | None:
    value = os.environ.get(ENV_FILE_ENV, "").strip()
    return value or ".env"


def make_adapter(
    broker: str, mode: Mode | str, *, env_file: str | Path | None = None, **options: Any
) -> BrokerAdapter:
    """The adapter of ``broker`` from the environment's credentials; live only for ``mode == live``."""
    entry = BROKERS.get(broker)
    if entry is None:
        raise PaperSetupError(f"unknown broker {broker!r}; choose one of {', '.join(BROKERS)}")
    env_file = env_file if env_file is not None else _env_file()
    return entry.adapter(Mode(mode) is Mode.LIVE, env_file, **{**entry.options(), **options})


def account_id_of(adapter: BrokerAdapter) -> str:
    """The account the adapter trades (TradeLocker's is known after login)."""
    if isinstance(adapter, TradeLockerAdapter):
        adapter.connect()
        return f"{adapter.account_id}:{adapter.acc_num}"
    return str(getattr(adapter, "account_id", ""))


def preflight(broker: str, mode: Mode | str, *, env_file: str | Path | None = None) -> tuple[str, Balance]:
    """Check the credentials of ``broker`` by reading the balance: (account id, balance).

    Raises :class:`PaperSetupError` with a message that names the variables to fix; secrets masked.
    """
    try:
        adapter = make_adapter(broker, mode, env_file=env_file, retry_count=1, submit_settle_seconds=0.0)
    except (CredentialsError, ValueError) as exc:
        raise PaperSetupError(scrub(f"{broker} credentials: {exc}")) from None
    try:
        account = account_id_of(adapter)
        if isinstance(adapter, TradierAdapter):
            adapter.check_connection()
        balance = adapter.get_balances()
    except AuthenticationError as exc:
        raise PaperSetupError(scrub(f"{broker} refused the credentials: {exc}")) from None
    except BrokerError as exc:
        raise PaperSetupError(scrub(f"{broker} is not reachable with these credentials: {exc}")) from None
    finally:
        adapter.close()
    return account, balance


# ----------------------------------------------------------------------------------------- processes

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def process_alive(pid: int | None, deployment_id: str | None = None) -> bool:
    """True while process ``pid`` runs (and, when ``deployment_id`` is given and ``/proc`` exists, is
    one of that deployment's processes, so a reused pid is never taken for it)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else: certainly not ours to manage
    if _zombie(pid):
        return False
    if deployment_id is not None:
        cmd = _cmdline(pid)
        if cmd is not None and ("brokers.paper" not in cmd or deployment_id not in cmd):
            return False
    return True


def _child_env(store: DeploymentStore, env_file: str | Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env[DEPLOYMENTS_DB_ENV] = store.url
    if env_file is None and Path(".env").is_file():
        env_file = ".env"
    if env_file is not None:
        env[ENV_FILE_ENV] = str(Path(env_file).resolve())
    env.update(LIVE_SET)
    return env


def start_paper_trader(
    deployment: Deployment,
    *,
    store: DeploymentStore | None = None,
    env_file: str | Path | None = None,
    python: str = sys.executable,
) -> int:
    """Start the deployment's supervisor (detached, in the deployment's folder); return its pid.

    The deployment must be ``pending`` (freshly created) or final (a restart of a stopped one is a new
    deployment, so its history stays readable). ``env_file`` names a ``.env`` with the credentials
    (default: ``./.env`` when it exists; the environment always wins).
    """
    store = store or DeploymentStore()
    current = store.get(deployment.id)
    if current.status is not Status.PENDING:
        raise PaperSetupError(
            f"deployment {deployment.id} is {current.status.value}, not pending; promote the candidate again "
            "to start a new deployment"
        )
    folder = Path(current.folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(
            [python, "-m", "brokers.paper", "supervise", deployment.id],
            cwd=folder,
            env=_child_env(store, env_file),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the command that started it, and its Ctrl-C
        )
    _CHILDREN[proc.pid] = proc
    store.mark_running(deployment.id, pid=proc.pid)
    store.record_event(deployment.id, "started", f"supervisor pid {proc.pid} in {folder}")
    return proc.pid


def _terminate(pid: int | None, deployment_id: str, timeout: float) -> bool:
    """SIGTERM, wait ``timeout`` seconds, then SIGKILL. True if the process is gone."""
    if not process_alive(pid, deployment_id):
        return True
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid, deployment_id):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if not process_alive(pid, deployment_id):
            return True
        time.sleep(0.05)
    return not process_alive(pid, deployment_id)


@dataclass(frozen=True)
class StopReport:
    deployment_id: str
    status: Status
    reason: str
    flattened: tuple[str, ...] = ()  # positions closed, as "SYMBOL qty"
    errors: tuple[str, ...] = ()
    already_final: bool = False


def _positions_text(positions: Sequence[Position]) -> str:
    if not positions:
        return "flat"
    return ", ".join(f"{p.symbol} {p.quantity:+,g}" for p in positions)


def _positions_json(positions: Sequence[Position]) -> list[dict[str, Any]]:
    return [
        {
            "symbol": p.symbol,
            "quantity": p.quantity,
            "asset_class": p.asset_class.value,
            "avg_price": p.avg_price,
            "unrealized_pnl": p.unrealized_pnl,
        }
        for p in positions
    ]


def _working_text(orders: Sequence[Order], protections: Sequence[Protection]) -> str:
    """What still works at the broker: exits held for positions, then other orders."""
    hidden = {oid for p in protections for oid in (p.protection_id, *p.order_ids)}
    parts = [
        f"exits of {p.symbol} {p.side.value} {p.quantity:,g}"
        + (f" stop {p.stop_loss:g}" if p.stop_loss is not None else "")
        + (f" target {p.take_profit:g}" if p.take_profit is not None else "")
        for p in protections
    ]
    for o in orders:
        if o.order_id in hidden:
            continue
        level = o.stop_price if o.stop_price is not None else o.limit_price
        parts.append(
            f"{o.order_type.value} {o.symbol} {o.legs[0].side.value} {o.legs[0].quantity:,g}"
            + (f" at {level:g}" if level is not None else "")
        )
    return ", ".join(parts) or "nothing"


def flatten_account(adapter: BrokerAdapter, *, timeout: float) -> tuple[list[Position], list[str]]:
    """Cancel working orders and close every position; wait up to ``timeout`` s for the account to be
    flat. Returns (positions that were closed, problems)."""
    before = adapter.get_positions()
    result = adapter.flatten_all()
    errors = list(result.errors)
    deadline = time.monotonic() + timeout
    left = adapter.get_positions()
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = adapter.get_positions()
    if left:
        errors.append(f"still open after {timeout:g}s: {_positions_text(left)}")
    return before, errors


def _snapshot(store: DeploymentStore, deployment_id: str, adapter: BrokerAdapter, kind: str) -> Balance:
    balance = adapter.get_balances()
    positions = adapter.get_positions()
    store.record_snapshot(
        deployment_id,
        kind=kind,
        equity=balance.total_equity,
        cash=balance.cash,
        open_pnl=balance.open_pnl,
        closed_pnl_today=balance.closed_pnl_today,
        positions=_positions_json(positions),
    )
    return balance


def stop_deployment(
    store: DeploymentStore,
    deployment_id: str,
    *,
    reason: str,
    status: Status = Status.STOPPED,
    flatten: bool = True,
    env_file: str | Path | None = None,
) -> StopReport:
    """Stop a deployment: end its processes first (so the strategy cannot trade again), then flatten
    its account through the adapter, record a final snapshot and the final status with ``reason``."""
    dep = store.get(deployment_id)
    if not dep.status.is_active:
        return StopReport(dep.id, dep.status, dep.stop_reason or "", already_final=True)
    settings = PaperSettings.from_json(dep.settings)
    store.record_event(dep.id, "stop_requested", reason)
    errors: list[str] = []
    for pid in (dep.pid, dep.runner_pid):
        if not _terminate(pid, dep.id, settings.stop_timeout):
            errors.append(f"process {pid} did not exit")
    flattened: list[Position] = []
    if flatten:
        try:
            # closing futures must work whatever FARM_ENABLE_FUTURES says now (it gates opening them)
            is_future = dep.spec.get("instrument", {}).get("type") == "future"
            futures = {"enable_futures": True} if is_future else {}
            adapter = make_adapter(
                dep.broker, dep.mode, env_file=env_file, submit_settle_seconds=0.0, **futures
            )
        except (CredentialsError, ValueError) as exc:
            errors.append(scrub(f"cannot flatten: {exc}"))
        else:
            try:
                flattened, problems = flatten_account(adapter, timeout=settings.flatten_timeout)
                errors.extend(problems)
                _snapshot(store, dep.id, adapter, "final")
            except BrokerError as exc:
                errors.append(scrub(f"flatten failed: {exc}"))
            finally:
                adapter.close()
    summary = reason
    if flatten:
        summary += f"; flattened: {_positions_text(flattened)}"
    if errors:
        summary += "; problems: " + "; ".join(errors)
    store.finish(dep.id, status, summary)
    return StopReport(
        dep.id,
        status,
        summary,
        tuple(f"{p.symbol} {p.quantity:+g}" for p in flattened),
        tuple(errors),
    )


def kill_switch(
    store: DeploymentStore, *, reason: str = "kill switch", env_file: str | Path | None = None
) -> list[StopReport]:
    """Stop and flatten every active deployment."""
    return [stop_deployment(store, d.id, reason=reason, env_file=env_file) for d in store.active()]


def reconcile_processes(store: DeploymentStore) -> list[str]:
    """Mark running deployments whose supervisor is gone ``failed``; return their ids."""
    gone = []
    for dep in store.list_deployments(statuses=(Status.RUNNING,)):
        if not process_alive(dep.pid, dep.id):
            store.finish(
                dep.id,
                Status.FAILED,
                f"the supervisor process {dep.pid} is gone (machine restart or killed); positions left as they "
                f"were: stop it with `search stop {dep.id}` to flatten, then promote again",
            )
            gone.append(dep.id)
    return gone


# ----------------------------------------------------------------------------------------- supervisor


def _supervise(store: DeploymentStore, deployment_id: str) -> int:
    dep = store.get(deployment_id)
    settings = PaperSettings.from_json(dep.settings)
    if dep.status is Status.PENDING:
        store.mark_running(dep.id, pid=os.getpid())
    stop = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def on_term(signum: int, frame: Any) -> None:
        stop.set()
        for proc in child:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    crashes = 0
    folder = Path(dep.folder)
    while not stop.is_set():
        with open(folder / "runner.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "brokers.paper", "run", dep.id],
                cwd=folder,
                env=dict(os.environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        child[:] = [proc]
        store.set_runner_pid(dep.id, proc.pid)
        print(f"{_stamp()} runner pid {proc.pid} started", flush=True)
        while True:
            try:
                code = proc.wait(timeout=settings.stop_timeout if stop.is_set() else None)
                break
            except subprocess.TimeoutExpired:
                proc.kill()
        print(f"{_stamp()} runner pid {proc.pid} exited with code {code}", flush=True)
        if stop.is_set() or code in (EXIT_DONE, EXIT_SETUP):
            return EXIT_DONE
        crashes += 1
        if crashes > settings.max_restarts:
            store.finish(
                dep.id,
                Status.FAILED,
                f"the paper trader crashed {crashes} times (last exit code {code}); see {folder / 'runner.log'}",
            )
            return EXIT_CRASH
        store.count_restart(dep.id)
        store.record_event(
            dep.id,
            "restart",
            f"runner exited with code {code}; restart {crashes}/{settings.max_restarts} in {settings.restart_backoff:g}s",
        )
        stop.wait(settings.restart_backoff)
    return EXIT_DONE


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------- runner


def build_lumibot_broker(
    dep: Deployment,
    settings: PaperSettings,
    *,
    guard: RiskGuard | None = None,
    on_risk_breach: Callable[[RiskLimitBreached], None] | None = None,
    env_file: str | Path | None = None,
) -> LumiBroker:
    """The Lumibot broker of a deployment: :class:`~brokers.lumibot_broker.AdapterBroker` over the broker's
    adapter (every order through it, futures and forex included), with ``guard`` as the adapter's risk guard
    and ``on_risk_breach`` told of each order it refuses. Paper stays on the credentials' (sandbox / demo)
    URLs."""
    entry = BROKERS.get(dep.broker)
    if entry is None:
        raise PaperSetupError(f"unknown broker {dep.broker!r}; choose one of {', '.join(BROKERS)}")
    adapter = make_adapter(dep.broker, dep.mode, env_file=env_file, risk_guard=guard, submit_settle_seconds=0.5)
    return entry.lumibot(
        adapter,
        dep.mode is Mode.LIVE,
        polling_interval=settings.polling_interval,
        market=dep.market,
        strategy_tag=dep.id[:31],
        on_risk_breach=on_risk_breach,
    )


def strategy_problem(spec: Mapping[str, Any], broker: str | None = None) -> str | None:
    """Why a spec cannot be paper traded (on ``broker``, when given), or None."""
    from brokers.live import live_problem
    from spec_space.models import StrategySpec

    return live_problem(StrategySpec.model_validate(spec), broker)


def build_strategy(broker: LumiBroker, dep: Deployment, settings: PaperSettings) -> Any:
    """The Lumibot strategy of a deployment: its spec interpreted on the live broker by
    ``brokers.live.live_strategy(broker, spec, *, name, sleeptime)`` (the backtests' rules, live)."""
    from brokers.live import UnsupportedLive, live_strategy
    from spec_space.models import StrategySpec

    if settings.strategy != "spec":
        raise PaperSetupError(f"unknown strategy builder {settings.strategy!r}; the only one is 'spec'")
    spec = StrategySpec.model_validate(dep.spec)
    name = f"dep-{dep.id}"[:60]
    try:
        return live_strategy(broker, spec, name=name, sleeptime=settings.sleeptime)
    except UnsupportedLive as exc:
        raise PaperSetupError(str(exc)) from None


def stop_trader(trader: Any, *, timeout: float = 30.0) -> None:
    """Stop a running Lumibot ``Trader`` without deadlocking.

    Lumibot 4.6.30 deadlocks when a live trader is stopped while ``on_trading_iteration`` runs:
    ``StrategyExecutor.gracefully_exit`` calls APScheduler's ``shutdown(wait=True)``, which holds the
    scheduler's job-store lock while it waits for the running iteration, and the iteration ends by
    calling ``scheduler.get_jobs()``, which needs that lock (seen here with a stop 50 ms into an
    iteration). So: pause the scheduler (no new iteration starts), wait until no iteration job is
    running (APScheduler's per-job instance count), then stop.
    """
    for strategy in getattr(trader, "_strategies", []):
        scheduler = getattr(getattr(strategy, "_executor", None), "scheduler", None)
        if scheduler is None or not getattr(scheduler, "running", False):
            continue
        with contextlib.suppress(Exception):
            scheduler.pause()
        deadline = time.monotonic() + timeout
        executors = getattr(scheduler, "_executors", {}).values()
        while time.monotonic() < deadline and any(
            sum(getattr(ex, "_instances", {}).values()) for ex in executors
        ):
            time.sleep(0.05)
    trader.stop_all()


class _Runner:
    """One run of a deployment's trader (see the module docstring)."""

    def __init__(self, store: DeploymentStore, deployment_id: str) -> None:
        self.store = store
        self.dep = store.get(deployment_id)
        self.settings = PaperSettings.from_json(self.dep.settings)
        self.stop_requested = threading.Event()
        self.wake = threading.Event()
        self.breach: RiskLimitBreached | None = None
        self.trader: Any = None
        self.adapter: BrokerAdapter | None = None
        self.adapter_lock = threading.Lock()
        self._guard: RiskGuard | None = None

    def fail(self, message: str) -> int:
        message = scrub(message)
        print(f"{_stamp()} setup failed: {message}", flush=True)
        self.store.finish(self.dep.id, Status.FAILED, message)
        return EXIT_SETUP

    def on_breach(self, breach: RiskLimitBreached) -> None:
        if self.breach is None:
            self.breach = breach
            self.store.record_event(self.dep.id, "risk_breach", f"{breach.limit}: {breach.reason}")
        self.wake.set()

    def positions(self) -> list[Position]:
        assert self.adapter is not None
        with self.adapter_lock:
            return self.adapter.get_positions()

    def monitor(self) -> None:
        """PnL snapshots and the daily loss check; stops the trader on a breach or a stop request."""
        assert self.adapter is not None
        guard = self._guard
        while True:
            if self.breach is not None or self.stop_requested.is_set():
                break
            try:
                with self.adapter_lock:
                    balance = _snapshot(self.store, self.dep.id, self.adapter, "periodic")
                if guard is not None:
                    breach = guard.evaluate_pnl(balance.closed_pnl_today or 0.0, balance.open_pnl or 0.0)
                    if breach is not None:
                        self.on_breach(breach)
                        break
            except BrokerError as exc:
                logger.warning("monitor: %s", scrub(str(exc)))
            self.wake.wait(self.settings.monitor_seconds)
            self.wake.clear()
        if self.trader is not None:
            stop_trader(self.trader, timeout=max(30.0, self.settings.stop_timeout))

    def run(self) -> int:
        dep = self.dep
        if not dep.status.is_active:
            print(f"{_stamp()} deployment is {dep.status.value}; nothing to run", flush=True)
            return EXIT_DONE
        if dep.mode is Mode.LIVE and not self.store.approvals(dep.study, dep.trial_number):
            return self.fail(
                f"live trading of {dep.study} trial {dep.trial_number} has no recorded approval; "
                f"`search approve {dep.id} --by NAME --reason TEXT` first"
            )
        try:
            self.adapter = make_adapter(dep.broker, dep.mode, submit_settle_seconds=0.5)
            balance = _snapshot(self.store, dep.id, self.adapter, "reconcile")
        except (CredentialsError, ValueError) as exc:
            return self.fail(f"{dep.broker} credentials: {exc}")
        except AuthenticationError as exc:
            return self.fail(f"{dep.broker} refused the credentials: {exc}")
        positions = self.positions()
        with self.adapter_lock:
            working, protections = self.adapter.list_open_orders(), self.adapter.list_protections()
        self.store.set_starting_equity(dep.id, balance.total_equity)
        self.store.record_event(
            dep.id,
            "reconciled",
            f"positions at the broker: {_positions_text(positions)}; working at the broker: "
            f"{_working_text(working, protections)}; equity {balance.total_equity:,.2f}",
        )
        self._guard = RiskGuard(dep.risk_limits) if dep.risk_limits is not None else None
        # for good: this process exists to run one deployment
        apply_lumibot_environment(LIVE_UNSET, LIVE_SET)
        try:
            broker = build_lumibot_broker(
                dep, self.settings, guard=self._guard, on_risk_breach=self.on_breach
            )
            strategy = build_strategy(broker, dep, self.settings)
        except (CredentialsError, PaperSetupError, ValueError) as exc:
            return self.fail(str(exc))
        except AuthenticationError as exc:
            return self.fail(f"{dep.broker} refused the credentials: {exc}")
        from lumibot.traders import Trader

        self.trader = Trader(logfile=str(Path(dep.folder) / "lumibot.log"))
        self.trader.add_strategy(strategy)

        def on_term(signum: int, frame: Any) -> None:
            self.stop_requested.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, on_term)
        monitor = threading.Thread(target=self.monitor, name="deployment-monitor", daemon=True)
        monitor.start()
        print(
            f"{_stamp()} trading {dep.spec.get('name')} on {dep.broker} ({dep.mode.value}, {dep.market})",
            flush=True,
        )
        self.trader.run_all()
        self.wake.set()
        monitor.join(timeout=10)
        return self.finish()

    def finish(self) -> int:
        dep, adapter = self.dep, self.adapter
        assert adapter is not None
        if self.breach is not None:
            breach = self.breach
            closed, errors = flatten_account(adapter, timeout=self.settings.flatten_timeout)
            with contextlib.suppress(BrokerError):
                _snapshot(self.store, dep.id, adapter, "final")
            reason = (
                f"risk limit breached ({breach.limit}): {breach.reason}; flattened: {_positions_text(closed)}"
                + ("; problems: " + "; ".join(errors) if errors else "")
            )
            self.store.finish(dep.id, Status.STOPPED, reason)
            print(f"{_stamp()} stopped: {reason}", flush=True)
            return EXIT_DONE
        if self.stop_requested.is_set():
            print(f"{_stamp()} stop requested; leaving the flatten to the stopper", flush=True)
            return EXIT_DONE
        print(f"{_stamp()} the trader returned on its own: treating it as a crash", flush=True)
        return EXIT_CRASH


def _configure_logging() -> None:
    # Lumibot logs to the console (this process's stdout, i.e. runner.log) and to lumibot.log itself;
    # only this package's own records need a handler here (a root handler would print Lumibot's twice).
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("brokers")
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll request otherwise


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m brokers.paper {supervise,run} DEPLOYMENT_ID`` (started by :func:`start_paper_trader`)."""
    parser = argparse.ArgumentParser(prog="python -m brokers.paper", description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=("supervise", "run"))
    parser.add_argument("deployment_id")
    args = parser.parse_args(argv)
    _configure_logging()
    store = DeploymentStore(os.environ.get(DEPLOYMENTS_DB_ENV) or None)
    if args.role == "supervise":
        return _supervise(store, args.deployment_id)
    return _Runner(store, args.deployment_id).run()


if __name__ == "__main__":
    sys.exit(main())
